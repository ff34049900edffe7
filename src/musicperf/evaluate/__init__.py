"""musicperf.evaluate."""
