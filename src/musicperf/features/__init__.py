"""musicperf.features."""
