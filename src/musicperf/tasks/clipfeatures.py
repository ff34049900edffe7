"""Moved to :mod:`musicperf.features.clipfeatures` (features are not task logic); kept importable."""

from musicperf.features.clipfeatures import FEATURE_VERSION, grid_features, n_grid_features  # noqa: F401
