"""musicperf.labels."""
