"""musicperf.train."""
