"""Cheap per-clip motion and appearance statistics: the default video features of the workflow.

The papers extract 400 features per 16-frame clip with a 3D-ResNet-34 pre-trained on Kinetics
(Section 5.2 of paper 001). No pre-trained weights can be shipped or downloaded here, and a
randomly initialised 3D-ResNet gives features that are both slow on a CPU and weak, so the
workflow's default features are hand-made statistics of each clip on a coarse spatial grid:

* motion energy: mean absolute difference of consecutive grey frames in each grid cell,
  averaged over the clip, and its standard deviation over the clip (how bursty the motion is);
* appearance: mean colour of each grid cell over the clip.

They describe *where* in the picture something moves and what is there, which is what a
gesture of a seated performer filmed by a fixed camera changes. A 3D-ResNet backbone can be
added on top (see :mod:`musicperf.tasks.gestures`), e.g. with the Kinetics weights of Hara et
al. when the user has them.

Imports numpy only.
"""

from __future__ import annotations

import numpy as np

from musicperf.errors import ParameterError

#: Bumped whenever the features below change, so a model trained on old features is refused.
FEATURE_VERSION = 1


def n_grid_features(grid: int) -> int:
    """Length of the vector :func:`grid_features` returns for a ``grid`` x ``grid`` grid."""
    return 5 * grid * grid


def grid_features(clips: np.ndarray, *, grid: int = 6) -> np.ndarray:
    """Motion energy and appearance statistics of clips on a ``grid`` x ``grid`` spatial grid.

    Parameters
    ----------
    clips : np.ndarray, shape (B, T, H, W, 3), uint8
        RGB clips of ``T >= 2`` frames; ``H`` and ``W`` at least ``grid``.
    grid : int
        Cells per side of the grid.

    Returns
    -------
    np.ndarray, shape (B, 5 * grid * grid), float32
        Per cell, in this order: mean motion energy, its standard deviation over the clip
        (both in grey levels / 255 per frame), then the mean R, G, B in [0, 1].
    """
    clips = np.asarray(clips)
    if clips.ndim != 5 or clips.shape[-1] != 3:
        raise ParameterError(f"clips must have shape (B, T, H, W, 3), got {clips.shape}")
    b, t, h, w, _ = clips.shape
    if t < 2 or h < grid or w < grid:
        raise ParameterError(f"clips of shape {clips.shape} are too small for a {grid}x{grid} grid of motion cells")
    x = clips.astype(np.float32) / 255.0
    grey = x.mean(axis=-1)  # (B, T, H, W)
    diff = np.abs(np.diff(grey, axis=1))  # (B, T-1, H, W)
    motion = _cell_means(diff, grid)  # (B, T-1, g, g)
    colour = _cell_means(x.mean(axis=1).transpose(0, 3, 1, 2), grid)  # (B, 3, g, g)
    feats = [
        motion.mean(axis=1).reshape(b, -1),
        motion.std(axis=1).reshape(b, -1),
        colour.reshape(b, -1),
    ]
    return np.concatenate(feats, axis=1).astype(np.float32)


def _cell_means(a: np.ndarray, grid: int) -> np.ndarray:
    """Average the last two axes of ``a`` (..., H, W) over a ``grid`` x ``grid`` grid of cells."""
    h, w = a.shape[-2:]
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    # Sum over row bands, then column bands, with reduceat (cells may differ by one pixel).
    rows = np.add.reduceat(a, ys[:-1], axis=-2)
    cells = np.add.reduceat(rows, xs[:-1], axis=-1)
    area = np.outer(np.diff(ys), np.diff(xs)).astype(np.float32)
    return cells / area
