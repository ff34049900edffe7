"""musicperf.models."""
