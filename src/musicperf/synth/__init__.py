"""musicperf.synth."""
