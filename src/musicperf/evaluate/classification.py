"""Single-label classification metrics: accuracy, Hit@k, per-class and macro F1, confusion matrix.

The metrics of the instrument-recognition tables of ``003`` (Hit@1, Hit@3, F1) and the accuracy
of ``004``. Numpy only (no torch, no scikit-learn), in the shape of :mod:`musicperf.evaluate.metrics`:
a :func:`validate` that checks inputs and guesses the cause of a mistake, pure metric functions
and :func:`classification_report` returning a dict with readable keys.

Conventions: ``y_true`` is an ``(n,)`` array of integer class indices in ``[0, K)``; ``y_score``
is an ``(n, K)`` array of scores (probabilities, logits: only their order within a row matters);
the prediction is the arg-max of a row, ties going to the lowest index (``numpy.argmax``).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from musicperf.errors import ParameterError


def validate(y_true, y_score, classes: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Check and convert reference labels and scores.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
        Reference class index of each sample.
    y_score : array-like of float, shape (n, K)
        Score of every class for each sample.
    classes : sequence of str, optional
        K class names (default ``"0"``, ``"1"``, ...).

    Returns
    -------
    y_true : ndarray of int64, shape (n,)
    y_score : ndarray of float64, shape (n, K)
    classes : list of str
    """
    t = np.asarray(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    if t.ndim != 1:
        raise ParameterError(f"y_true must be a 1-D array of class indices, got shape {t.shape}"
                             + (" (one-hot targets? pass their argmax)" if t.ndim == 2 else ""))
    if s.ndim != 2:
        raise ParameterError(f"y_score must be an (n, K) array of class scores, got shape {s.shape}")
    if len(t) != len(s):
        raise ParameterError(f"y_true has {len(t)} samples but y_score has {len(s)}")
    k = s.shape[1]
    if k < 1:
        raise ParameterError("y_score has no class column")
    if len(t) and not np.issubdtype(t.dtype, np.integer):
        if not np.all(np.equal(np.mod(t, 1), 0)):
            raise ParameterError("y_true must hold integer class indices (did you pass class names or scores?)")
    t = t.astype(np.int64)
    if len(t) and (t.min() < 0 or t.max() >= k):
        raise ParameterError(f"y_true holds class index {int(t.min() if t.min() < 0 else t.max())}, outside [0, {k}) of the {k} score columns")
    if not np.all(np.isfinite(s)):
        raise ParameterError("y_score holds NaN or infinite values")
    if classes is None:
        classes = [str(i) for i in range(k)]
    classes = [str(c) for c in classes]
    if len(classes) != k:
        raise ParameterError(f"{len(classes)} class names for {k} score columns")
    return t, s, classes


def predictions(y_score) -> np.ndarray:
    """Arg-max class of each row: ``(n, K)`` scores -> ``(n,)`` int64 (ties: lowest index)."""
    s = np.asarray(y_score)
    if s.ndim != 2:
        raise ParameterError(f"y_score must be (n, K), got shape {s.shape}")
    return np.argmax(s, axis=1).astype(np.int64)


def hit_at_k(y_true, y_score, k: int = 1) -> float:
    """Hit@k: fraction of samples whose reference class is among the ``k`` best-scored classes.

    Hit@1 is the accuracy; ``003`` reports Hit@1 and Hit@3. A tie at the k-th place counts as a
    hit only when the reference class wins it under the stable order (lower index first), so
    Hit@1 equals :func:`accuracy` of :func:`predictions`.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
    y_score : array-like of float, shape (n, K)
    k : int
        1 <= k; values above K count every sample as a hit.

    Returns
    -------
    float
        In [0, 1]; 0.0 with a warning for empty input.
    """
    t, s, _ = validate(y_true, y_score)
    if int(k) != k or k < 1:
        raise ParameterError(f"k must be a positive integer, got {k}")
    if len(t) == 0:
        warnings.warn("hit_at_k of an empty set is 0", stacklevel=2)
        return 0.0
    # stable descending order: sort -score with mergesort keeps lower indices first on ties
    order = np.argsort(-s, axis=1, kind="stable")[:, : int(k)]
    return float(np.mean(np.any(order == t[:, None], axis=1)))


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples where ``y_pred == y_true`` (both ``(n,)`` int); 0.0 with a warning when empty."""
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.shape != p.shape or t.ndim != 1:
        raise ParameterError(f"y_true {t.shape} and y_pred {p.shape} must be 1-D arrays of the same length")
    if len(t) == 0:
        warnings.warn("accuracy of an empty set is 0", stacklevel=2)
        return 0.0
    return float(np.mean(t == p))


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of reference class ``i`` predicted as ``j``.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n,)
    n_classes : int

    Returns
    -------
    ndarray of int64, shape (n_classes, n_classes)
        Rows are reference classes, columns predictions.
    """
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape or t.ndim != 1:
        raise ParameterError(f"y_true {t.shape} and y_pred {p.shape} must be 1-D arrays of the same length")
    if len(t) and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ParameterError(f"class indices must lie in [0, {n_classes})")
    c = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(c, (t, p), 1)
    return c


def per_class_prf(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support from a confusion matrix.

    Precision of a class never predicted is 0 and recall of a class absent from the reference is
    NaN (undefined; see :func:`f1_macro` for how averages treat it); F1 is ``2PR / (P + R)``,
    0 when ``P + R = 0``.

    Parameters
    ----------
    cm : ndarray, shape (K, K)
        From :func:`confusion_matrix`.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1`` (float64, shape (K,)) and ``support`` (int64, (K,)).
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), np.nan)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1), 0.0)
    f1 = np.where(support > 0, f1, np.nan)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def f1_macro(y_true, y_pred, n_classes: int) -> float:
    """Macro F1: the unweighted mean of per-class F1 over the classes present in ``y_true``.

    ``003`` does not say how its F1 is averaged; macro averaging (each instrument counts the
    same, whatever its number of videos) is our reading, since its datasets are undersampled to
    balance the classes. Classes with no reference sample have undefined recall and are left out
    (as ``absent="exclude"`` in :mod:`musicperf.evaluate.metrics`); a class predicted but absent
    still lowers the precision, hence F1, of the classes it took samples from.
    """
    prf = per_class_prf(confusion_matrix(y_true, y_pred, n_classes))
    f1 = prf["f1"][prf["support"] > 0]
    if len(f1) == 0:
        warnings.warn("f1_macro of an empty set is 0", stacklevel=2)
        return 0.0
    return float(np.mean(f1))


def classification_report(y_true, y_score, *, classes: Sequence[str] | None = None, ks: Sequence[int] = (1, 3)) -> dict:
    """All the metrics of ``003``'s tables and ``004``'s accuracy for one set of predictions.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
        Reference class indices.
    y_score : array-like of float, shape (n, K)
        Class scores (probabilities or logits).
    classes : sequence of str, optional
        K class names.
    ks : sequence of int
        The k of each Hit@k to report (``003``: 1 and 3).

    Returns
    -------
    dict
        ``n``, ``accuracy``, ``hit@k`` for each k, ``f1_macro``, ``per_class`` (name ->
        precision, recall, f1, support), ``confusion`` (K x K nested list, rows = reference),
        ``classes``.
    """
    t, s, names = validate(y_true, y_score, classes)
    k = s.shape[1]
    pred = predictions(s) if len(s) else np.zeros(0, dtype=np.int64)
    cm = confusion_matrix(t, pred, k)
    prf = per_class_prf(cm)
    out: dict = {"n": int(len(t)), "accuracy": accuracy(t, pred)}
    for kk in ks:
        out[f"hit@{int(kk)}"] = hit_at_k(t, s, int(kk))
    out["f1_macro"] = f1_macro(t, pred, k)
    out["per_class"] = {
        name: {"precision": float(prf["precision"][i]), "recall": float(prf["recall"][i]),
               "f1": float(prf["f1"][i]), "support": int(prf["support"][i])}
        for i, name in enumerate(names)
    }
    out["confusion"] = cm.tolist()
    out["classes"] = names
    return out


def chance_accuracy(y_true, n_classes: int) -> float:
    """Accuracy of the best constant predictor (always the most frequent reference class)."""
    t = np.asarray(y_true, dtype=np.int64)
    if len(t) == 0:
        return 0.0
    return float(np.bincount(t, minlength=n_classes).max() / len(t))
