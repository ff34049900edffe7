"""Multi-label classification metrics of the gesture papers (numpy only; never imports torch).

Per-class precision, recall, F1 (Equations 11-13 of ``001``) and accuracy, and their averages as
reported in Tables 3 and 4 of ``000`` and Table 7 of ``001``: the "Average" row of those tables
is the **unweighted mean of the per-class values over all classes** (the macro average; Table 3's
F1 0.778 and accuracy 0.979 are the means of its 18 rows, zeros included). Micro (pooled counts)
and support-weighted averages are reported too.

Classes with no positive sample in ``y_true`` (recall and F1 undefined, 0/0) are handled by
``absent``: ``"exclude"`` (default) reports NaN precision/recall/F1 for them and leaves them out
of the macro and weighted averages of those three (their accuracy is still averaged, and false
positives on them still count in the micro average); ``"zero"`` scores them 0 and keeps them in,
like scikit-learn's ``zero_division=0``. A class with positives but no predicted positive has
precision 0 (the papers print 0.000 for such rows).

Binarisation: a score is a positive prediction when ``score >= threshold`` (0.5 by default, or
one threshold per class from :func:`tune_thresholds` on validation data).

Confusion matrices use scikit-learn's multilabel layout: ``cm[k] = [[TN, FP], [FN, TP]]``
(rows: true absent/present; columns: predicted absent/present), as in Figure 3 of ``000``.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from musicperf.errors import ParameterError


def validate(y_true, y_score, classes: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Check and convert inputs: ``(n, K)`` binary truth and ``(n, K)`` scores or predictions."""
    yt = np.asarray(y_true)
    ys = np.asarray(y_score)
    if yt.ndim == 1:
        yt = yt[:, None]
    if ys.ndim == 1:
        ys = ys[:, None]
    if yt.ndim != 2 or yt.shape != ys.shape:
        raise ParameterError(f"y_true {np.shape(y_true)} and y_score {np.shape(y_score)} must both be (n_samples, n_classes)")
    if yt.shape[0] == 0:
        raise ParameterError("no samples to evaluate (y_true is empty)")
    if not np.all(np.isfinite(ys)):
        raise ParameterError("y_score contains NaN or infinite values")
    ytf = yt.astype(float)
    if not np.all((ytf == 0) | (ytf == 1)):
        raise ParameterError("y_true must be binary (0/1); binarise smoothed labels first (e.g. labels >= 0.5)")
    k = yt.shape[1]
    if classes is None:
        classes = [f"class_{i}" for i in range(k)]
    classes = list(classes)
    if len(classes) != k:
        raise ParameterError(f"{len(classes)} class names for {k} columns")
    return ytf.astype(bool), ys, classes


def _thresholds(threshold, k: int) -> np.ndarray:
    th = np.asarray(threshold, dtype=float)
    if th.ndim == 0:
        return np.full(k, float(th))
    if th.shape != (k,):
        raise ParameterError(f"threshold must be a number or {k} numbers (one per class), got shape {th.shape}")
    return th.copy()


def binarize(y_score, threshold=0.5) -> np.ndarray:
    """Boolean predictions ``(n, K)``: ``y_score >= threshold`` (scalar or per-class ``(K,)``)."""
    ys = np.asarray(y_score, dtype=float)
    if ys.ndim == 1:
        ys = ys[:, None]
    return ys >= _thresholds(threshold, ys.shape[1])[None, :]


def confusion_matrices(y_true, y_score, *, threshold=0.5) -> np.ndarray:
    """Per-class 2x2 confusion matrices (Figure 3 of ``000``).

    Parameters
    ----------
    y_true : array, shape (n, K), 0/1
    y_score : array, shape (n, K)
        Scores in [0, 1] or 0/1 predictions.
    threshold : float or array of shape (K,)

    Returns
    -------
    ndarray, shape (K, 2, 2), int64
        ``[[TN, FP], [FN, TP]]`` per class.
    """
    yt, ys, _ = validate(y_true, y_score)
    yp = binarize(ys, threshold)
    tp = np.sum(yt & yp, axis=0)
    fp = np.sum(~yt & yp, axis=0)
    fn = np.sum(yt & ~yp, axis=0)
    tn = np.sum(~yt & ~yp, axis=0)
    return np.stack([np.stack([tn, fp], -1), np.stack([fn, tp], -1)], axis=1).astype(np.int64)


def _prf(tp, fp, fn):
    tp, fp, fn = (np.asarray(v, dtype=float) for v in (tp, fp, fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), np.nan)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1), 0.0)
    f1 = np.where(np.isnan(recall), np.nan, f1)
    return precision, recall, f1


def multilabel_report(
    y_true,
    y_score,
    *,
    classes: Sequence[str] | None = None,
    threshold=0.5,
    absent: Literal["exclude", "zero"] = "exclude",
) -> dict:
    """Per-class and averaged precision, recall, F1 and accuracy (Tables 3, 4 of ``000``, 7 of ``001``).

    Parameters
    ----------
    y_true : array, shape (n, K), 0/1
        Ground truth, one row per clip.
    y_score : array, shape (n, K)
        Presence probabilities in [0, 1], or 0/1 predictions.
    classes : sequence of K str, optional
    threshold : float or array of shape (K,)
        Positive when ``score >= threshold``.
    absent : {"exclude", "zero"}
        Policy for classes without positives in ``y_true`` (see the module docstring).

    Returns
    -------
    dict
        ``per_class``: {name: {precision, recall, f1, accuracy, support, tp, fp, fn, tn}};
        ``macro``, ``weighted``, ``micro``: {precision, recall, f1, accuracy}; ``macro`` is the
        papers' "Average" row. Also ``classes``, ``threshold`` (list of K), ``n_samples``,
        ``absent_classes`` (names), ``absent_policy``.

    Examples
    --------
    >>> r = multilabel_report([[1, 0], [0, 1], [1, 0]], [[0.9, 0.2], [0.6, 0.7], [0.4, 0.1]], classes=["a", "b"])
    >>> round(r["per_class"]["a"]["f1"], 3), r["macro"]["accuracy"]
    (0.5, 0.6666666666666666)
    """
    if absent not in ("exclude", "zero"):
        raise ParameterError(f"absent must be 'exclude' or 'zero', got {absent!r}")
    yt, ys, classes = validate(y_true, y_score, classes)
    th = _thresholds(threshold, yt.shape[1])
    cm = confusion_matrices(yt, ys, threshold=th)
    tn, fp, fn, tp = cm[:, 0, 0], cm[:, 0, 1], cm[:, 1, 0], cm[:, 1, 1]
    n = yt.shape[0]
    support = tp + fn
    precision, recall, f1 = _prf(tp, fp, fn)
    is_absent = support == 0
    if absent == "zero":
        precision, recall, f1 = (np.where(is_absent, 0.0, v) for v in (precision, recall, f1))
    else:
        precision = np.where(is_absent, np.nan, precision)
    accuracy = (tp + tn) / n

    def avg(values, weights=None):
        keep = ~np.isnan(values)
        if not keep.any():
            return float("nan")
        if weights is None:
            return float(np.mean(values[keep]))
        w = weights[keep].astype(float)
        return float(np.sum(values[keep] * w) / w.sum()) if w.sum() > 0 else float("nan")

    mp, mr, mf = _prf(tp.sum(), fp.sum(), fn.sum())
    per_class = {
        name: {
            "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
            "accuracy": float(accuracy[i]), "support": int(support[i]),
            "tp": int(tp[i]), "fp": int(fp[i]), "fn": int(fn[i]), "tn": int(tn[i]),
        }
        for i, name in enumerate(classes)
    }
    return {
        "classes": classes,
        "threshold": [float(t) for t in th],
        "n_samples": int(n),
        "per_class": per_class,
        "macro": {"precision": avg(precision), "recall": avg(recall), "f1": avg(f1), "accuracy": float(np.mean(accuracy))},
        "weighted": {"precision": avg(precision, support), "recall": avg(recall, support), "f1": avg(f1, support),
                     "accuracy": float(np.sum(accuracy * support) / support.sum()) if support.sum() else float("nan")},
        "micro": {"precision": float(mp), "recall": float(mr), "f1": float(mf),
                  "accuracy": float((tp.sum() + tn.sum()) / (n * len(classes)))},
        "absent_classes": [c for c, a in zip(classes, is_absent) if a],
        "absent_policy": absent,
    }


def macro_f1(y_true, y_score, *, threshold=0.5, absent: Literal["exclude", "zero"] = "exclude") -> float:
    """The papers' average F1 (unweighted mean of per-class F1); NaN when no class has positives."""
    return multilabel_report(y_true, y_score, threshold=threshold, absent=absent)["macro"]["f1"]


def tune_thresholds(y_true, y_score, *, default: float = 0.5) -> np.ndarray:
    """Per-class thresholds maximising F1 on validation data.

    Every distinct score of a class is a candidate (``score >= t`` is positive); the threshold is
    put midway between the chosen score and the next lower distinct score so that nearby test
    scores fall on the same side. Ties in F1 go to the candidate nearest ``default``. A class
    with no positives keeps ``default``.

    Parameters
    ----------
    y_true : array, shape (n, K), 0/1
    y_score : array, shape (n, K), in [0, 1]

    Returns
    -------
    ndarray, shape (K,)
    """
    yt, ys, _ = validate(y_true, y_score)
    out = np.full(yt.shape[1], float(default))
    for k in range(yt.shape[1]):
        pos = yt[:, k]
        if not pos.any():
            continue
        order = np.argsort(-ys[:, k], kind="stable")
        s, p = ys[order, k], pos[order]
        tp = np.cumsum(p)
        fp = np.cumsum(~p)
        last = np.r_[s[1:] != s[:-1], True]  # last index of each run of equal scores
        tp, fp, cand = tp[last], fp[last], s[last]
        f1 = 2 * tp / (tp + fp + pos.sum())
        lower = np.r_[cand[1:], cand[-1] - 1e-6]
        ths = (cand + lower) / 2
        best = np.flatnonzero(np.isclose(f1, f1.max()))
        out[k] = ths[best[np.argmin(np.abs(ths[best] - default))]]
    return out


def cohen_kappa(a, b) -> float | np.ndarray:
    """Cohen's kappa between two annotators' (or a model's and an annotator's) labels.

    ``kappa = (p_o - p_e) / (1 - p_e)`` with observed agreement ``p_o`` and chance agreement
    ``p_e`` from the marginals.

    Parameters
    ----------
    a, b : array, shape (n,) or (n, K)
        Categorical labels (any hashable values) or, for (n, K), binary labels per class.

    Returns
    -------
    float, or ndarray of shape (K,) for 2-D input
        1 for perfect agreement; 1.0 when both label everything identically with a single
        category (p_e = 1), else 0 in that degenerate case.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim not in (1, 2) or a.shape[0] == 0:
        raise ParameterError(f"cohen_kappa needs two non-empty arrays of the same shape (n,) or (n, K), got {a.shape} and {b.shape}")
    if a.ndim == 2:
        return np.array([cohen_kappa(a[:, k], b[:, k]) for k in range(a.shape[1])])
    cats, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    ia, ib = inv[: len(a)], inv[len(a):]
    m = np.zeros((len(cats), len(cats)))
    np.add.at(m, (ia, ib), 1)
    m /= m.sum()
    po = np.trace(m)
    pe = float(m.sum(1) @ m.sum(0))
    if np.isclose(pe, 1.0):
        return 1.0 if np.isclose(po, 1.0) else 0.0
    return float((po - pe) / (1 - pe))
