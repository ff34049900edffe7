"""musicperf.distributed."""
