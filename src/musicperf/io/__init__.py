"""musicperf.io."""
