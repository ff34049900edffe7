"""Per-frame values from per-clip values: a frame takes the mean over the clips that contain it.

Used by labelling (clip probabilities to frame probabilities) and by the threshold tuning of
training, which must see frames exactly as labelling does. Imports numpy only.
"""

from __future__ import annotations

import numpy as np


def spread_to_frames(starts: np.ndarray, scores: np.ndarray, *, length: int, first: int, n: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame probabilities from per-clip scores: the mean over the clips covering a frame.

    Parameters
    ----------
    starts : np.ndarray, shape (N,), int
        First frame of each clip.
    scores : np.ndarray, shape (N, K)
        Clip probabilities.
    length : int
        Frames per clip.
    first, n : int
        The frames ``first .. first + n - 1`` to fill.

    Returns
    -------
    probs : np.ndarray, shape (n, K), float32
        0 where no clip covers a frame.
    covered : np.ndarray, shape (n,), bool
    """
    scores = np.asarray(scores, dtype=np.float64)
    sums = np.zeros((n, scores.shape[1]), dtype=np.float64)
    counts = np.zeros(n, dtype=np.int64)
    for s, row in zip(np.asarray(starts) - first, scores):
        a, b = max(int(s), 0), min(int(s) + length, n)
        if b > a:
            sums[a:b] += row
            counts[a:b] += 1
    covered = counts > 0
    probs = np.zeros_like(sums, dtype=np.float32)
    probs[covered] = (sums[covered] / counts[covered, None]).astype(np.float32)
    return probs, covered

