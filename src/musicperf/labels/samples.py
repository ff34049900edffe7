"""Fixed-length samples (clips) of frames and their labels (Sections 4.3 and 5.1 of ``001``).

``001`` cuts each video into samples of 16 successive frames "without frame overlap" and labels
each sample by the gestures present in its frames; with Temporal Smoothing (Equation 6) the
label of a class is instead the weighted moving average of its per-frame presence, with weight
``i`` on the ``i``-th frame (``i = n`` the most recent).

The background class ("Normal play") is treated like every other column here: it is computed
per frame first (on where no other class is), then aggregated over the sample. A sample can
therefore be labelled both "Nodding" and "Normal play" under ``how="any"``.

Imports numpy only.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from musicperf.errors import ParameterError


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def sample_starts(n_frames: int, *, length: int = 16, stride: int = 16) -> np.ndarray:
    """First-frame indices of the samples of a video.

    Parameters
    ----------
    n_frames : int
        Number of frames of the video.
    length : int
        Frames per sample (16 in the papers).
    stride : int
        Frames between the starts of consecutive samples; ``stride == length`` (the default,
        as in ``001``) gives samples without overlap, a smaller stride overlapping ones.

    Returns
    -------
    ndarray of int64, shape (n,)
        ``0, stride, 2 * stride, ...``; an incomplete sample at the end is dropped, so
        ``n = max(0, (n_frames - length) // stride + 1)``.
    """
    length = _positive_int("length", length)
    stride = _positive_int("stride", stride)
    if int(n_frames) != n_frames or n_frames < 0:
        raise ParameterError(f"n_frames must be a non-negative integer, got {n_frames!r}")
    if n_frames < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, int(n_frames) - length + 1, stride, dtype=np.int64)


def temporal_smoothing(frame_labels_of_sample: np.ndarray) -> np.ndarray:
    """Temporal Smoothing label of a sample: Equation 6 of ``001``.

    ``Label_TS^c = sum_{i=1}^{n} i * Label_i^c / sum_{j=1}^{n} j``, where ``i = n`` is the most
    recent frame, so later frames weigh more (a weighted moving average).

    Parameters
    ----------
    frame_labels_of_sample : ndarray, shape (n,), (n, K) or (B, n, K)
        Per-frame labels in [0, 1] in temporal order; the time axis is the first axis of a
        1-D or 2-D input and the second-to-last otherwise.

    Returns
    -------
    ndarray of float32, shape (), (K,) or (B, K)
        Smoothed labels in [0, 1].

    Examples
    --------
    >>> x = np.zeros(16); x[-2:] = 1
    >>> float(temporal_smoothing(x)) == (15 + 16) / 136
    True
    """
    x = np.asarray(frame_labels_of_sample, dtype=np.float64)
    if x.ndim == 0:
        raise ParameterError("temporal_smoothing needs at least one frame, got a scalar")
    axis = 0 if x.ndim <= 2 else x.ndim - 2
    n = x.shape[axis]
    if n == 0:
        raise ParameterError("temporal_smoothing needs at least one frame, got none")
    w = np.arange(1, n + 1, dtype=np.float64)
    shape = [1] * x.ndim
    shape[axis] = n
    return ((x * w.reshape(shape)).sum(axis=axis) / w.sum()).astype(np.float32)


def sample_labels(
    labels: np.ndarray,
    starts: np.ndarray,
    *,
    length: int = 16,
    how: Literal["any", "ts"] = "any",
) -> np.ndarray:
    """Labels of fixed-length samples from per-frame labels.

    Parameters
    ----------
    labels : ndarray, shape (T, K)
        Per-frame labels in [0, 1] (see :func:`~musicperf.labels.frame_labels`).
    starts : array-like of int, shape (n,)
        First frame of each sample (see :func:`sample_starts`).
    length : int
        Frames per sample.
    how : {"any", "ts"}
        ``"any"``: 1 when the class is present in any frame of the sample (the rule of
        ``000`` and of the non-smoothed experiments of ``001``); ``"ts"``: Temporal
        Smoothing, Equation 6 of ``001`` (:func:`temporal_smoothing`).

    Returns
    -------
    ndarray of float32, shape (n, K)
    """
    length = _positive_int("length", length)
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ParameterError(f"labels must be a (frames, classes) matrix, got shape {lab.shape}")
    st = np.asarray(starts, dtype=np.int64).reshape(-1)
    if len(st) and (st.min() < 0 or st.max() + length > lab.shape[0]):
        raise ParameterError(
            f"samples of {length} frames starting at {int(st.min())}..{int(st.max())} do not fit in {lab.shape[0]} frames"
        )
    windows = lab[st[:, None] + np.arange(length)[None, :]]  # (n, length, K)
    if how == "any":
        return (windows > 0).any(axis=1).astype(np.float32)
    if how == "ts":
        if len(st) == 0:
            return np.zeros((0, lab.shape[1]), dtype=np.float32)
        return temporal_smoothing(windows)
    raise ParameterError(f"how must be 'any' or 'ts', got {how!r}")
