"""musicperf.report."""
