"""musicperf.tasks."""
