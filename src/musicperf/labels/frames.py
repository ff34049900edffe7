"""Per-frame label matrices from annotated intervals (Section 3.1 of ``001``).

The rule of the papers: "the gesture will be tagged as present in the frame if there is any
overlap between the label and the duration of said frame". We make the boundaries exact with a
half-open convention:

* frame ``i`` spans ``[start_time + i / fps, start_time + (i + 1) / fps)``;
* an annotation ``[s, e)`` with ``s < e`` covers frame ``i`` iff ``s < frame_end`` and
  ``e > frame_start``. An annotation that *ends* exactly on a frame edge therefore does not
  cover the frame that begins there, and one that *starts* exactly on an edge does not cover
  the frame that ends there: ``[0.04, 0.08)`` at 25 fps covers frame 1 only;
* a zero-length annotation (a point, ``s == e``) marks the one frame whose span contains it;
* times within ``1e-6`` frame of an edge are snapped onto it, so that edges written in decimal
  (``0.04``) or as fractions of NTSC rates (``1001 / 30000``) land on the intended side despite
  floating-point rounding.

Guards: interval times that are not finite are a :class:`~musicperf.errors.AnnotationError`
(the readers refuse them; sets built in code can hold them); frame indices of huge times are
clipped before the integer conversion (no overflow); a frame count beyond
:data:`MAX_FRAMES` is a :class:`~musicperf.errors.ParameterError` rather than an allocation
failure.

Imports numpy only.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from musicperf.errors import AnnotationError, ParameterError
from musicperf.io.annotations import MAX_TIME, AnnotationSet
from musicperf.labels.taxonomy import Taxonomy

#: Distance (in frames) within which a time is treated as lying exactly on a frame edge.
EDGE_TOLERANCE = 1e-6

#: Most frames labelled at once: the longest accepted annotation time (100 h) at 1000 fps.
MAX_FRAMES = int(MAX_TIME * 1000)

#: Frame indices are clipped to +-this before conversion to int64 (far beyond any frame count).
_INDEX_LIMIT = float(2**60)


def _check_rate(fps: float, n_frames: int) -> None:
    if not (isinstance(fps, (int, float, np.floating, np.integer)) and math.isfinite(fps) and fps > 0):
        raise ParameterError(f"fps must be a positive number, got {fps!r}")
    if not (isinstance(n_frames, (int, float, np.floating, np.integer)) and math.isfinite(n_frames)) or (
        int(n_frames) != n_frames or n_frames < 0
    ):
        raise ParameterError(f"n_frames must be a non-negative integer, got {n_frames!r}")
    if n_frames > MAX_FRAMES:
        raise ParameterError(
            f"n_frames {int(n_frames)} is more than {MAX_FRAMES} ({MAX_TIME / 3600:.0f} h at 1000 fps); "
            "is a duration or frame rate wrong?"
        )


def _snap(x: np.ndarray) -> np.ndarray:
    r = np.round(x)
    return np.where(np.abs(x - r) < EDGE_TOLERANCE, r, x)


def interval_frames(intervals: np.ndarray, *, fps: float, start_time: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last frame each interval covers, by the any-overlap rule.

    Parameters
    ----------
    intervals : ndarray, shape (n, 2)
        ``[start, end]`` in seconds, ``start <= end``.
    fps : float
        Frame rate in frames per second.
    start_time : float
        Time in seconds of the start of frame 0.

    Returns
    -------
    first, stop : ndarray of int64, shape (n,)
        The interval covers frames ``first .. stop - 1`` (not clipped to any frame count;
        may be negative for intervals before ``start_time``).
    """
    iv = np.asarray(intervals, dtype=float).reshape(-1, 2)
    if not np.isfinite(iv).all():
        bad = iv[~np.isfinite(iv).all(axis=1)][0]
        raise AnnotationError(f"an interval has a time that is not a finite number of seconds: {bad.tolist()}")
    xs = np.clip(_snap((iv[:, 0] - start_time) * fps), -_INDEX_LIMIT, _INDEX_LIMIT)
    xe = np.clip(_snap((iv[:, 1] - start_time) * fps), -_INDEX_LIMIT, _INDEX_LIMIT)
    first = np.floor(xs).astype(np.int64)
    stop = np.ceil(xe).astype(np.int64)
    # a point (or an interval shorter than the snapping tolerance) marks the frame containing it
    stop = np.maximum(stop, first + 1)
    return first, stop


def intervals_to_frames(
    intervals: np.ndarray, *, fps: float, n_frames: int, start_time: float = 0.0
) -> np.ndarray:
    """Binary per-frame presence of one class from its intervals (any-overlap rule).

    Parameters
    ----------
    intervals : ndarray, shape (n, 2)
        ``[start, end]`` seconds.
    fps : float
        Frames per second.
    n_frames : int
        Number of frames to label; parts of intervals outside them are ignored.
    start_time : float
        Time in seconds of the start of frame 0.

    Returns
    -------
    ndarray of bool, shape (n_frames,)
    """
    _check_rate(fps, n_frames)
    n_frames = int(n_frames)
    out = np.zeros(n_frames, dtype=bool)
    first, stop = interval_frames(intervals, fps=fps, start_time=start_time)
    first = np.clip(first, 0, n_frames)
    stop = np.clip(stop, 0, n_frames)
    # difference array: +1 at first, -1 at stop; a running sum > 0 means covered
    diff = np.zeros(n_frames + 1, dtype=np.int64)
    keep = stop > first
    np.add.at(diff, first[keep], 1)
    np.add.at(diff, stop[keep], -1)
    out[:] = np.cumsum(diff[:-1]) > 0
    return out


def frame_labels(
    aset: AnnotationSet,
    taxonomy: Taxonomy,
    *,
    fps: float,
    n_frames: int,
    start_time: float = 0.0,
    check: bool = True,
    unknown: Literal["warn", "ignore", "error"] = "warn",
) -> np.ndarray:
    """The per-frame multi-label matrix of an annotation set (Section 3.1 of ``001``).

    A class is on in frame ``i`` when any of its (mapped) annotations overlaps the frame's
    half-open span ``[start_time + i / fps, start_time + (i + 1) / fps)``; see the module
    docstring for edges and points. The background class (``taxonomy.background``, "Normal
    play") is on exactly in the frames where no other class is on.

    Parameters
    ----------
    aset : AnnotationSet
        Annotations in seconds.
    taxonomy : Taxonomy
        Classes and the name mapping; columns follow ``taxonomy.classes``.
    fps : float
        Video frame rate (frames per second), e.g. ``25.0`` or ``30000 / 1001``.
    n_frames : int
        Number of frames of the video (or of the labelled span).
    start_time : float
        Time in seconds of the start of frame 0 (to label a span that starts later).
    check : bool
        Raise :class:`~musicperf.errors.AnnotationError` (via
        :meth:`AnnotationSet.check_duration`, 0.5 s tolerance) when annotations end after
        ``start_time + n_frames / fps``. Pass ``False`` to label a part of a longer video.
    unknown : {"warn", "ignore", "error"}
        Handling of tiers/values the taxonomy does not know, see
        :meth:`Taxonomy.class_intervals`.

    Returns
    -------
    ndarray of float32, shape (n_frames, K)
        1.0 where the class is present, else 0.0; ``K = len(taxonomy.classes)``.

    Examples
    --------
    At 25 fps, ``[0.04, 0.08)`` covers frame 1 only; ``[0.05, 0.09)`` covers frames 1 and 2.
    """
    _check_rate(fps, n_frames)
    n_frames = int(n_frames)
    if check:
        aset.check_duration(start_time + n_frames / fps)
    per_class = taxonomy.class_intervals(aset, unknown=unknown)
    labels = np.zeros((n_frames, len(taxonomy.classes)), dtype=np.float32)
    for c, iv in per_class.items():
        labels[:, taxonomy.classes.index(c)] = intervals_to_frames(iv, fps=fps, n_frames=n_frames, start_time=start_time)
    return add_background(labels, taxonomy)


def add_background(labels: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """Recompute the background column of a ``(T, K)`` binary label matrix in place and return it."""
    if taxonomy.background is None:
        return labels
    b = taxonomy.classes.index(taxonomy.background)
    others = np.delete(labels, b, axis=1)
    labels[:, b] = ~(others > 0).any(axis=1) if others.shape[1] else 1.0
    return labels


def frames_to_time(frames: np.ndarray | int, *, fps: float, start_time: float = 0.0) -> np.ndarray:
    """Start time in seconds of frame index (or indices) ``frames``."""
    return start_time + np.asarray(frames, dtype=float) / fps


def time_to_frames(times: np.ndarray | float, *, fps: float, start_time: float = 0.0) -> np.ndarray:
    """Index of the frame whose half-open span contains each time (edges snapped, see module)."""
    x = _snap((np.asarray(times, dtype=float) - start_time) * fps)
    if not np.isfinite(x).all():
        raise AnnotationError("a time is not a finite number of seconds")
    return np.floor(np.clip(x, -_INDEX_LIMIT, _INDEX_LIMIT)).astype(np.int64)
