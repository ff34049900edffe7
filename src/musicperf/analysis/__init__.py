"""musicperf.analysis."""
