"""Segmental scores of temporal action segmentation: F1@k and the edit score.

The definitions are those of MS-TCN (Farha & Gall, CVPR 2019, Section 5 "Metrics", and its
released ``eval.py``), which Lea et al. (2017) introduced and the field (MS-TCN++, ASFormer)
reports beside frame accuracy:

* **F1@k** (k = 0.10, 0.25, 0.50): each predicted segment is matched to the reference segment of
  the same label with the highest intersection over union (IoU); it is a true positive when that
  IoU is at least ``k`` and that reference segment has not been matched already, else a false
  positive. Reference segments left unmatched are false negatives. ``F1 = 2 P R / (P + R)``.
* **Edit score**: ``1 - L(P, R) / max(|P|, |R|)``, where ``L`` is the Levenshtein distance
  between the ordered label sequences of the predicted and reference segments. MS-TCN reports it
  and F1@k in percent; here both are fractions in [0, 1] like frame F1.

musicperf's classes overlap (multi-label), so each class is scored as its own binary track: the
segments are the runs of frames where the class is present, and "absent" is the background that
MS-TCN's ``bg_class`` excludes. With one label per track the Levenshtein distance between the
segment sequences is the difference of their lengths, so the edit score of a class penalises
over- and under-segmentation (a fragmented prediction), which frame F1 hides.

A class with no segment in either track has no defined score (``None``), the convention of
:mod:`musicperf.evaluate.metrics` (``absent="exclude"``). Imports numpy only; never torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from musicperf.errors import ParameterError

#: The IoU thresholds MS-TCN reports.
OVERLAPS = (0.10, 0.25, 0.50)


def segments(track: np.ndarray) -> np.ndarray:
    """The runs of present frames of a binary track.

    Parameters
    ----------
    track : ndarray, shape (T,)
        0/1 (or bool) per frame.

    Returns
    -------
    ndarray, shape (n, 2), int
        ``[first, stop)`` frame indices of each run, in time order.
    """
    a = np.asarray(track).astype(bool).ravel()
    if a.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    d = np.diff(np.concatenate([[0], a.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    stops = np.flatnonzero(d == -1)
    return np.stack([starts, stops], axis=1).astype(np.int64)


def _check_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim == 1:
        t = t[:, None]
    if p.ndim == 1:
        p = p[:, None]
    if t.shape != p.shape or t.ndim != 2:
        raise ParameterError(
            f"reference and prediction must both be (frames, classes) arrays of one shape, got {t.shape} and {p.shape}"
        )
    return t > 0.5, p > 0.5


def f1_counts(ref: np.ndarray, pred: np.ndarray, overlap: float) -> tuple[int, int, int]:
    """True positives, false positives and false negatives of one binary track at IoU ``overlap``.

    The matching rule of MS-TCN's ``eval.py`` (``f_score``): predicted segments in time order,
    each against its best-IoU reference segment, which may be claimed once.
    """
    if not 0.0 <= overlap <= 1.0:
        raise ParameterError(f"overlap must be in [0, 1], got {overlap!r}")
    r = segments(ref)
    p = segments(pred)
    if len(p) == 0:
        return 0, 0, int(len(r))
    if len(r) == 0:
        return 0, int(len(p)), 0
    inter = np.minimum(p[:, None, 1], r[None, :, 1]) - np.maximum(p[:, None, 0], r[None, :, 0])
    inter = np.clip(inter, 0, None)
    union = np.maximum(p[:, None, 1], r[None, :, 1]) - np.minimum(p[:, None, 0], r[None, :, 0])
    iou = inter / union
    hit = np.zeros(len(r), dtype=bool)
    tp = fp = 0
    for i in range(len(p)):
        j = int(np.argmax(iou[i]))
        if iou[i, j] >= overlap and not hit[j]:
            tp += 1
            hit[j] = True
        else:
            fp += 1
    return tp, fp, int(len(r) - hit.sum())


def _f1(tp: int, fp: int, fn: int) -> float | None:
    if tp + fp + fn == 0:
        return None
    return 2.0 * tp / (2.0 * tp + fp + fn)


def edit_score(ref: np.ndarray, pred: np.ndarray) -> float | None:
    """Segmental edit score of one binary track, in [0, 1] (``None`` when both are empty).

    ``1 - L / max(|P|, |R|)`` with ``L`` the Levenshtein distance of the segment label
    sequences; with one label per track, ``L = abs(|P| - |R|)``.
    """
    n_r = len(segments(ref))
    n_p = len(segments(pred))
    if max(n_r, n_p) == 0:
        return None
    return 1.0 - abs(n_r - n_p) / max(n_r, n_p)


def segmental_scores(
    y_true,
    y_pred,
    *,
    classes: Sequence[str] | None = None,
    overlaps: Sequence[float] = OVERLAPS,
) -> dict:
    """F1@k and edit score per class and their macro averages.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (T, K) or (T,)
        Per-frame presence (values above 0.5 count as present).
    classes : sequence of str, optional
        Class names (default ``"0"``, ``"1"``, ...).
    overlaps : sequence of float
        IoU thresholds (default 0.10, 0.25, 0.50).

    Returns
    -------
    dict
        ``{"per_class": {name: {"f1@10": ..., "f1@25": ..., "f1@50": ..., "edit": ...,
        "segments": n_ref, "predicted_segments": n_pred}}, "macro": {...}}``; keys are named
        ``f1@`` plus the threshold in percent. The macro averages run over the classes with at
        least one reference segment (a class the reference never shows is left out, as frame F1
        does).

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 0])
    >>> pred = np.array([0, 1, 1, 0, 0, 0, 0, 1, 1, 1])
    >>> r = segmental_scores(ref, pred)["per_class"]["0"]
    >>> r["f1@50"], r["edit"]
    (0.5, 1.0)
    """
    t, p = _check_pair(y_true, y_pred)
    k = t.shape[1]
    names = [str(i) for i in range(k)] if classes is None else [str(c) for c in classes]
    if len(names) != k:
        raise ParameterError(f"{len(names)} class names for {k} classes")
    keys = [f"f1@{round(o * 100):d}" for o in overlaps]
    per_class: dict = {}
    for c, name in enumerate(names):
        row: dict = {}
        for key, o in zip(keys, overlaps):
            row[key] = _f1(*f1_counts(t[:, c], p[:, c], o))
        row["edit"] = edit_score(t[:, c], p[:, c])
        row["segments"] = int(len(segments(t[:, c])))
        row["predicted_segments"] = int(len(segments(p[:, c])))
        per_class[name] = row
    scored = [row for row in per_class.values() if row["segments"] > 0]
    macro = {}
    for key in [*keys, "edit"]:
        vals = [row[key] for row in scored if row[key] is not None]
        macro[key] = float(np.mean(vals)) if vals else None
    return {"per_class": per_class, "macro": macro}
