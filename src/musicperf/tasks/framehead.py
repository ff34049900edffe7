"""Moved to :mod:`musicperf.models.framehead` (networks live in models/); kept importable."""

from musicperf.models.framehead import TEMPORAL_HIDDEN, TEMPORAL_MODELS, FrameFeatureHead  # noqa: F401
