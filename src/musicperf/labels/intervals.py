"""From per-frame predictions back to intervals and annotation tiers, and interval helpers.

:func:`intervals_from_frames` is the inverse of the any-overlap rule of
:mod:`musicperf.labels.frames` for frame-aligned intervals: a run of active frames ``a .. b-1``
becomes ``[start_time + a / fps, start_time + b / fps)``, which covers exactly those frames
again. Imports numpy only.
"""

from __future__ import annotations

import numpy as np

from musicperf.errors import ParameterError
from musicperf.io.annotations import Annotation, AnnotationSet, Tier
from musicperf.labels.taxonomy import Taxonomy


def merge_intervals(intervals: np.ndarray, *, gap: float = 0.0) -> np.ndarray:
    """Union of intervals: overlapping ones, touching ones and those less than ``gap`` apart.

    Parameters
    ----------
    intervals : ndarray, shape (n, 2)
        ``[start, end]`` seconds, any order.
    gap : float
        Intervals whose gap (next start minus current end) is ``<= 0`` (overlapping or
        touching) are always merged; with ``gap > 0`` those closer than ``gap`` seconds too.

    Returns
    -------
    ndarray, shape (m, 2)
        Sorted, disjoint, ``m <= n``.
    """
    iv = np.asarray(intervals, dtype=float).reshape(-1, 2)
    if len(iv) == 0:
        return iv.copy()
    iv = iv[np.lexsort((iv[:, 1], iv[:, 0]))]
    out = [list(iv[0])]
    for s, e in iv[1:]:
        d = s - out[-1][1]
        if d <= 0 or d < gap:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return np.asarray(out, dtype=float)


def true_runs(active: np.ndarray) -> np.ndarray:
    """``(n, 2)`` int array of ``[first, stop)`` frame indices of the runs of True."""
    a = np.concatenate([[False], np.asarray(active, dtype=bool), [False]])
    d = np.diff(a.astype(np.int8))
    return np.stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)], axis=1).astype(np.int64)


def intervals_from_frames(
    probs: np.ndarray,
    *,
    fps: float,
    threshold: float | np.ndarray = 0.5,
    min_gap: float = 0.0,
    min_duration: float = 0.0,
    start_time: float = 0.0,
) -> list[np.ndarray]:
    """Turn per-frame scores into intervals, one array per class.

    Steps, per class: (1) a frame is active when its score is ``>= threshold``; (2) each run
    of active frames ``a .. b-1`` becomes ``[start_time + a / fps, start_time + b / fps)``;
    (3) runs separated by a gap shorter than ``min_gap`` seconds are joined; (4) joined runs
    shorter than ``min_duration`` seconds are dropped. Gaps are closed before short runs are
    dropped, so two short runs close together survive as one long enough run.

    Parameters
    ----------
    probs : ndarray, shape (T, K) or (T,)
        Per-frame scores (probabilities in [0, 1] or binary labels).
    fps : float
        Frame rate of the scores, frames per second.
    threshold : float or ndarray of shape (K,)
        Activation threshold, one for all classes or one per class.
    min_gap : float
        Seconds; gaps strictly shorter than this are closed.
    min_duration : float
        Seconds; intervals strictly shorter than this are dropped.
    start_time : float
        Time in seconds of the start of frame 0.

    Returns
    -------
    list of ndarray, length K
        ``(n_k, 2)`` float arrays of ``[start, end]`` seconds, sorted and disjoint.
    """
    p = np.asarray(probs, dtype=float)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2:
        raise ParameterError(f"probs must be a (frames, classes) array, got shape {p.shape}")
    if not (np.isfinite(fps) and fps > 0):
        raise ParameterError(f"fps must be a positive number, got {fps!r}")
    if min_gap < 0 or min_duration < 0:
        raise ParameterError(f"min_gap and min_duration must be >= 0 seconds, got {min_gap!r} and {min_duration!r}")
    th = np.asarray(threshold, dtype=float)
    if th.ndim == 0:
        th = np.full(p.shape[1], float(th))
    elif th.shape != (p.shape[1],):
        raise ParameterError(f"threshold must be a number or one per class ({p.shape[1]}), got shape {th.shape}")
    # 1 ns of slack so that float rounding of run lengths (k / fps) never flips a comparison
    eps = 1e-9
    out = []
    for k in range(p.shape[1]):
        runs = true_runs(p[:, k] >= th[k])
        iv = start_time + runs.astype(float) / fps
        if len(iv) and min_gap > 0:
            keep = [iv[0].copy()]
            for s, e in iv[1:]:
                if s - keep[-1][1] < min_gap - eps:
                    keep[-1][1] = e
                else:
                    keep.append(np.array([s, e]))
            iv = np.asarray(keep, dtype=float)
        if len(iv) and min_duration > 0:
            iv = iv[(iv[:, 1] - iv[:, 0]) >= min_duration - eps]
        out.append(iv.reshape(-1, 2))
    return out


def labels_to_annotationset(
    probs_or_binary: np.ndarray,
    taxonomy: Taxonomy,
    *,
    fps: float,
    threshold: float | np.ndarray = 0.5,
    min_gap: float = 0.0,
    min_duration: float = 0.0,
    start_time: float = 0.0,
    include_background: bool = True,
    annotator: str = "musicperf",
) -> AnnotationSet:
    """Per-frame scores as an annotation set with one tier per class (e.g. to write as EAF).

    Parameters
    ----------
    probs_or_binary : ndarray, shape (T, K)
        Per-frame scores or binary labels, columns in ``taxonomy.classes`` order.
    taxonomy : Taxonomy
        Names the tiers; ``K`` must equal ``len(taxonomy.classes)``.
    fps, threshold, min_gap, min_duration, start_time
        As in :func:`intervals_from_frames`.
    include_background : bool
        Whether the background class ("Normal play") gets a tier too.
    annotator : str
        Written into each tier's ``annotator`` attribute.

    Returns
    -------
    AnnotationSet
        Tiers named after the classes, in taxonomy order; every annotation's value is its
        class name, so the set reads back with either ``by="tier"`` or ``by="value"``.
    """
    p = np.asarray(probs_or_binary)
    if p.ndim != 2 or p.shape[1] != len(taxonomy.classes):
        raise ParameterError(
            f"scores of shape {p.shape} do not match the {len(taxonomy.classes)} classes of taxonomy {taxonomy.name!r}"
        )
    ivs = intervals_from_frames(
        p, fps=fps, threshold=threshold, min_gap=min_gap, min_duration=min_duration, start_time=start_time
    )
    aset = AnnotationSet()
    for c, iv in zip(taxonomy.classes, ivs):
        if c == taxonomy.background and not include_background:
            continue
        anns = [Annotation(float(s), float(e), c) for s, e in iv]
        aset.add_tier(Tier(c, anns, annotator=annotator))
    return aset
