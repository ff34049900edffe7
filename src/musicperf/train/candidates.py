"""Frame labellers compared by the automatic model choice: constants, MS-TCN and LightGBM.

Every candidate labels whole sequences of per-frame features (``(T, F)`` arrays, one per video)
with per-frame, per-class presence, and learns from the annotated frames only (a mask). They
are *transductive* on purpose: the unannotated frames of the same video are seen (as features,
never as labels) when training, because they are the ones to label.

* :class:`ConstantLabeller` - ``"always"`` or ``"never"`` present: the floor every model must
  beat (a class present 60 % of the time gets frame F1 0.75 from "always").
* :class:`MSTCNLabeller` - :mod:`musicperf.models.mstcn` on standardised features.
* :class:`LightGBMLabeller` - one gradient-boosted tree model per class on sliding-window
  statistics of the per-frame features (:func:`window_statistics`), the recipe of Ienaga et al.
  (Language Resources and Evaluation 56:673-700, 2022: OpenPose keypoints, statistics over
  sliding windows, LightGBM, trained on the part an annotator labelled in ELAN).
* :class:`SparseLinearLabeller` - per class, logistic regression on the few features that best
  separate it in the annotations (univariate AUC): with a handful of annotated events, the
  model that generalises is the one that uses the feature the annotator looked at (a hand's
  position) and nothing that merely happened to differ during those events.

The learned candidates share :class:`Cleanup`: threshold 0.5 (their losses are class-balanced)
then the minimum-duration clean-up of :func:`musicperf.models.mstcn.clean_min_duration`, with
the shortest run and gap lengths taken from the annotations.

Imports numpy at module level; torch and lightgbm when a candidate is fitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from musicperf.errors import ParameterError, require

__all__ = ["ConstantLabeller", "MSTCNLabeller", "LightGBMLabeller", "SparseLinearLabeller", "EnsembleLabeller",
           "Cleanup", "window_statistics", "standardise", "moments", "rows_at", "column_auc", "fit_logistic", "blockwise",
           "default_candidates"]


def _masks(M: Sequence[np.ndarray], Y: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Masks broadcast to ``(T, K)`` bool."""
    out = []
    for m, y in zip(M, Y):
        m = np.asarray(m).astype(bool)
        out.append(np.broadcast_to(m[:, None] if m.ndim == 1 else m, y.shape))
    return out


@dataclass
class Cleanup:
    """Thresholding and minimum-duration clean-up learned from the annotations.

    ``min_on[k]`` / ``min_off[k]`` are half the 10th percentile of the annotated present runs /
    gaps of class ``k`` in frames (at least 1): shorter runs are almost surely flicker. Half, so
    that a genuinely short event survives.
    """

    threshold: float = 0.5
    min_on: np.ndarray | None = None
    min_off: np.ndarray | None = None

    @classmethod
    def from_labels(cls, Y: Sequence[np.ndarray], M: Sequence[np.ndarray], *, threshold: float = 0.5) -> "Cleanup":
        from musicperf.evaluate.segmental import segments

        k = Y[0].shape[1]
        on = np.ones(k, dtype=int)
        off = np.ones(k, dtype=int)
        for c in range(k):
            runs, gaps = [], []
            for y, m in zip(Y, _masks(M, Y)):
                for s, e in segments(m[:, c]):  # each annotated stretch on its own
                    seg = y[s:e, c] > 0.5
                    runs += [b - a for a, b in segments(seg)]
                    gaps += [b - a for a, b in segments(~seg) if a > 0 and b < len(seg)]
            if runs:
                on[c] = max(1, int(0.5 * np.percentile(runs, 10)))
            if gaps:
                off[c] = max(1, int(0.5 * np.percentile(gaps, 10)))
        return cls(threshold=threshold, min_on=on, min_off=off)

    def apply(self, probs: np.ndarray) -> np.ndarray:
        from musicperf.models.mstcn import clean_min_duration

        active = probs >= self.threshold
        if self.min_on is None:
            return active
        return clean_min_duration(active, min_on=self.min_on, min_off=self.min_off)

    def to_dict(self) -> dict:
        return {"threshold": self.threshold,
                "min_on": None if self.min_on is None else self.min_on.tolist(),
                "min_off": None if self.min_off is None else self.min_off.tolist()}


class _Labeller:
    name = "labeller"
    cleanup: Cleanup | None = None

    def fit(self, X, Y, M):  # pragma: no cover - interface
        raise NotImplementedError

    def predict_proba(self, X) -> list[np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, X) -> list[np.ndarray]:
        """Per-frame presence ``(T_i, K)`` bool after thresholding and clean-up."""
        cleanup = self.cleanup or Cleanup()
        return [cleanup.apply(p) for p in self.predict_proba(X)]


class ConstantLabeller(_Labeller):
    """Predicts every class present (``"always"``) or absent (``"never"``) on every frame."""

    def __init__(self, value: str = "always"):
        if value not in ("always", "never"):
            raise ParameterError(f"a constant labeller is 'always' or 'never', got {value!r}")
        self.value = value
        self.name = f"constant-{value}"
        self.n_classes = None

    def fit(self, X, Y, M):
        self.n_classes = Y[0].shape[1]
        return self

    def predict_proba(self, X) -> list[np.ndarray]:
        v = 1.0 if self.value == "always" else 0.0
        return [np.full((len(x), self.n_classes), v) for x in X]


def standardise(X: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Zero mean, unit variance per feature over all frames of all sequences (NaN -> 0).

    Returns the standardised sequences, the means and the standard deviations ``(F,)``.
    """
    import warnings

    allx = np.concatenate([np.asarray(x, dtype=np.float64) for x in X])
    with warnings.catch_warnings():
        # A column never found (e.g. the hand-region flow of a video without hands) is all NaN.
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(allx, axis=0)
        std = np.nanstd(allx, axis=0)
    mean = np.nan_to_num(mean)
    std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
    out = [np.nan_to_num((np.asarray(x, dtype=np.float64) - mean) / std).astype(np.float32) for x in X]
    return out, mean, std


def moments(X: Sequence[np.ndarray], *, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The means and standard deviations of :func:`standardise` without the standardised copies.

    Two passes over blocks of rows (NaN ignored; a column never found gets mean 0, std 1), so a
    long video is never copied whole in float64. Equal to :func:`standardise`'s up to rounding.
    """
    f = np.shape(X[0])[1]
    total = np.zeros(f)
    count = np.zeros(f)
    for x in X:
        for a in range(0, len(x), block):
            part = np.asarray(x[a : a + block], dtype=np.float64)
            ok = np.isfinite(part)
            total += np.where(ok, part, 0.0).sum(axis=0)
            count += ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    sq = np.zeros(f)
    for x in X:
        for a in range(0, len(x), block):
            part = np.asarray(x[a : a + block], dtype=np.float64) - mean
            sq += np.where(np.isfinite(part), part * part, 0.0).sum(axis=0)
    std = np.sqrt(sq / np.maximum(count, 1))
    std = np.where((count > 0) & np.isfinite(std) & (std > 1e-8), std, 1.0)
    return mean, std


def rows_at(fn, x: np.ndarray, rows: np.ndarray, *, margin: int, block: int = 1024) -> np.ndarray:
    """The rows ``rows`` (sorted) of ``fn(x)``, computing ``fn`` only on blocks that hold some
    (with ``margin`` rows of context, as :func:`blockwise`): the window statistics of the
    annotated minute of a long video, not of the whole video."""
    rows = np.asarray(rows, dtype=int)
    parts = []
    t = len(x)
    for a in range(0, t, block):
        b = min(t, a + block)
        sel = rows[(rows >= a) & (rows < b)]
        if not len(sel):
            continue
        lo, hi = max(0, a - margin), min(t, b + margin)
        parts.append(fn(x[lo:hi])[sel - lo])
    if not parts:
        return fn(x[:1])[:0]
    return np.concatenate(parts)


def window_frames(seconds: float, fps: float) -> int:
    """Frames of a sliding window of ``seconds``: odd (centred on its frame), at least 3."""
    return max(3, int(round(seconds * fps)) | 1)


def _class_training_sets(fn, X, Y, masks, *, row_step: int, margin: int):
    """Per class ``c``: ``(c, rows, target)``, the features ``fn`` of every ``row_step``-th
    annotated frame of the class in every video (computed once per video for the frames any
    class trains on, :func:`rows_at`) and their 0/1 presence (bool)."""
    feats, keeps = [], []
    for x, m in zip(X, masks):
        keep = [np.flatnonzero(m[:, c])[::row_step] for c in range(m.shape[1])]
        union = np.unique(np.concatenate(keep)) if keep else np.zeros(0, int)
        feats.append((rows_at(fn, x, union, margin=margin), union))
        keeps.append(keep)
    for c in range(Y[0].shape[1]):
        rows = np.concatenate([w[np.searchsorted(union, k[c])] for (w, union), k in zip(feats, keeps)])
        target = np.concatenate([y[k[c], c] > 0.5 for y, k in zip(Y, keeps)])
        yield c, rows, target


def _balanced_weights(target: np.ndarray) -> np.ndarray:
    """Sample weights of the "balanced" class weight: each outcome weighs half in total."""
    n, n_pos = len(target), int(target.sum())
    return np.where(target, n / (2.0 * n_pos), n / (2.0 * (n - n_pos)))


class MSTCNLabeller(_Labeller):
    """MS-TCN (:mod:`musicperf.models.mstcn`) on features standardised over the whole video.

    Parameters
    ----------
    config : MSTCNConfig, optional
    step : int
        Run the network on every ``step``-th frame (features averaged over each step, the
        output repeated back): 30 fps features at step 2 keep every gesture of 0.2 s and more
        and halve the cost. MS-TCN itself runs on 15 fps features.
    """

    def __init__(self, config=None, *, step: int = 2, name: str = "mstcn"):
        if not (isinstance(step, int) and step >= 1):
            raise ParameterError(f"step must be a positive integer, got {step!r}")
        self.config = config
        self.step = step
        self.name = name
        self.model = None

    def _pool(self, x: np.ndarray) -> np.ndarray:
        if self.step == 1:
            return x
        t = len(x)
        pad = (-t) % self.step
        if pad:
            x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
        return x.reshape(-1, self.step, *x.shape[1:]).mean(axis=1)

    def fit(self, X, Y, M):
        from musicperf.models.mstcn import fit_mstcn

        Xs, self.mean, self.std = standardise(X)
        masks = _masks(M, Y)
        Yp = [self._pool(np.asarray(y, dtype=np.float64)) for y in Y]
        # A pooled frame is annotated when all its frames are; its target is their majority.
        Mp = [self._pool(m.astype(np.float64)) >= 1.0 for m in masks]
        Yp = [(y >= 0.5).astype(np.float32) for y in Yp]
        self.model = fit_mstcn([self._pool(x) for x in Xs], Yp, Mp, config=self.config)
        self.cleanup = Cleanup.from_labels(Y, M)
        return self

    def predict_proba(self, X) -> list[np.ndarray]:
        from musicperf.models.mstcn import predict_mstcn

        if self.model is None:
            raise ParameterError("the MS-TCN labeller is not trained yet")
        Xs = [np.nan_to_num((np.asarray(x, dtype=np.float64) - self.mean) / self.std).astype(np.float32) for x in X]
        probs = predict_mstcn(self.model, [self._pool(x) for x in Xs])
        return [np.repeat(p, self.step, axis=0)[: len(x)] for p, x in zip(probs, X)]


def window_statistics(x: np.ndarray, *, fps: float, windows: Sequence[float] = (0.5, 2.0)) -> np.ndarray:
    """Sliding-window statistics of per-frame features, one row per frame (window centred on it).

    For each window length ``w`` seconds (``n = round(w * fps) | 1`` frames): the mean, standard
    deviation, minimum and maximum of every feature over the window, and the difference of the
    means of its second and first halves (the trend). Windows are clipped at the sequence ends.
    The frame's own values come first. This is the feature layout of Ienaga et al. (2022,
    Section 4.2: statistics of keypoint coordinates over sliding windows).

    Parameters
    ----------
    x : ndarray, shape (T, F)
        NaN (undetected landmarks) counts as 0 after standardisation by the caller.
    fps : float
    windows : sequence of float, seconds

    Returns
    -------
    ndarray, shape (T, F * (1 + 5 * len(windows))), float32
    """
    from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d

    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    if x.ndim != 2:
        raise ParameterError(f"features must be (frames, features), got shape {x.shape}")
    f = x.shape[1]
    out = np.empty((len(x), f * (1 + 5 * len(windows))), dtype=np.float32)
    out[:, :f] = x
    for i, w in enumerate(windows):
        n = window_frames(w, fps)
        mean = uniform_filter1d(x, n, axis=0, mode="nearest")
        sq = uniform_filter1d(x * x, n, axis=0, mode="nearest")
        o = f * (1 + 5 * i)
        out[:, o + f : o + 2 * f] = np.sqrt(np.clip(sq - mean * mean, 0, None))
        del sq
        out[:, o : o + f] = mean
        del mean
        out[:, o + 2 * f : o + 3 * f] = minimum_filter1d(x, n, axis=0, mode="nearest")
        out[:, o + 3 * f : o + 4 * f] = maximum_filter1d(x, n, axis=0, mode="nearest")
        after, before = _half_means(x, n // 2)
        out[:, o + 4 * f : o + 5 * f] = after - before
    return out


def blockwise(fn, x: np.ndarray, *, margin: int, block: int = 1024) -> np.ndarray:
    """``fn(x)`` computed ``block`` rows at a time, each block with ``margin`` rows of context.

    1024 rows (34 s at 30 fps): a 1-minute video is already cut in two, so a long one costs no
    more memory than a minute.

    For per-row outputs of sliding-window features (``fn`` reads at most ``margin - 1`` rows on
    either side of a row): the window statistics of a 10-minute video (11 values per feature
    per frame) are never held whole, so prediction memory does not grow with the length. The
    rows equal those of ``fn(x)`` up to the rounding of the running sums of the window filters.
    """
    t = len(x)
    if t <= block + 2 * margin:
        return fn(x)
    parts = []
    for a in range(0, t, block):
        b = min(t, a + block)
        lo, hi = max(0, a - margin), min(t, b + margin)
        parts.append(fn(x[lo:hi])[a - lo : a - lo + (b - a)])
    return np.concatenate(parts)


def _half_means(x: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``x[t : t + h + 1]`` and ``x[t - h : t + 1]`` for every frame ``t`` (clipped)."""
    t = len(x)
    c = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    idx = np.arange(t)
    hi = np.minimum(idx + h + 1, t)
    lo = np.maximum(idx - h, 0)
    after = (c[hi] - c[idx]) / (hi - idx)[:, None]
    before = (c[idx + 1] - c[lo]) / (idx + 1 - lo)[:, None]
    return after, before


class LightGBMLabeller(_Labeller):
    """One LightGBM classifier per class on :func:`window_statistics` of the features.

    Parameters
    ----------
    fps : float
        Frame rate of the features (window lengths are in seconds).
    windows : sequence of float
        Window lengths, seconds.
    params : dict, optional
        LightGBM parameters (``lightgbm.train`` names) over the defaults: 100 trees of 15
        leaves, learning rate 0.1, feature and row subsampling, 63 bins, one thread,
        deterministic; the classes are balanced by sample weights.
    row_step : int
        Train on every ``row_step``-th annotated frame (neighbouring frames are nearly
        identical; 2 halves the cost at 25-30 fps).
    """

    def __init__(self, *, fps: float, windows: Sequence[float] = (0.5, 2.0), params: dict | None = None,
                 row_step: int = 1, name: str = "lightgbm"):
        if not (isinstance(row_step, int) and row_step >= 1):
            raise ParameterError(f"row_step must be a positive integer, got {row_step!r}")
        self.row_step = row_step
        self.fps = float(fps)
        self.windows = tuple(windows)
        # One thread: on a shared or small machine LightGBM's OpenMP threads spin against other
        # processes (one class took 126 s with the default threads against 16 s with one, on 2
        # busy cores). max_bin 63 and 100 rounds at rate 0.1: a few hundred to a few thousand
        # annotated rows do not need more.
        self.params = dict(objective="binary", num_iterations=100, num_leaves=15, learning_rate=0.1,
                           min_data_in_leaf=20, bagging_fraction=0.8, bagging_freq=1, feature_fraction=0.3,
                           max_bin=63, lambda_l2=1.0, verbosity=-1, seed=0, deterministic=True, force_col_wise=True,
                           num_threads=1)
        self.params.update(params or {})
        self.name = name
        self.models: list = []

    def _features(self, X) -> list[np.ndarray]:
        Xs = [np.nan_to_num((np.asarray(x, dtype=np.float64) - self.mean) / self.std) for x in X]
        return [window_statistics(x, fps=self.fps, windows=self.windows) for x in Xs]

    def _margin(self) -> int:
        """Rows of context a frame's window statistics read, plus one."""
        return max(window_frames(w, self.fps) for w in self.windows) // 2 + 1

    def fit(self, X, Y, M):
        lgb = require("lightgbm", extra="labelling", purpose="the LightGBM baseline")
        self.mean, self.std = moments(X)
        masks = _masks(M, Y)
        self.models = []
        self.constant = np.full(Y[0].shape[1], np.nan)
        for c, rows, target in _class_training_sets(lambda x: self._features([x])[0], X, Y, masks,
                                                    row_step=self.row_step, margin=self._margin()):
            target = target.astype(int)
            if len(np.unique(target)) < 2:
                # One outcome only in the annotations: LightGBM cannot fit; predict it.
                self.models.append(None)
                self.constant[c] = float(target[0]) if len(target) else 0.0
                continue
            booster = lgb.train(self.params, lgb.Dataset(rows, target, weight=_balanced_weights(target == 1)))
            self.models.append(booster)
        self.cleanup = Cleanup.from_labels(Y, M)
        return self

    def predict_proba(self, X) -> list[np.ndarray]:
        if not self.models:
            raise ParameterError("the LightGBM labeller is not trained yet")
        def one(x):
            w = self._features([x])[0]
            p = np.zeros((len(w), len(self.models)))
            for c, clf in enumerate(self.models):
                p[:, c] = self.constant[c] if clf is None else clf.predict(w)
            return p

        return [blockwise(one, x, margin=self._margin()) for x in X]


def column_auc(rows: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Area under the ROC curve of every column of ``rows`` as a score for ``positive``.

    The Mann-Whitney statistic from average ranks (ties count half): 0.5 is no separation, 1.0
    (or 0.0) a column that puts every positive row above (below) every negative one.
    """
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ParameterError("the AUC needs positive and negative rows")
    ranks = rankdata(np.asarray(rows, dtype=np.float64), axis=0)
    return (ranks[positive].sum(axis=0) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def fit_logistic(x: np.ndarray, y: np.ndarray, *, weight: np.ndarray | None = None, C: float = 1.0,
                 iterations: int = 50) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method; returns ``[intercept, coefs...]``.

    Minimises ``C * sum_i w_i * logloss_i + ||coefs||^2 / 2`` (the intercept is not penalised),
    the objective of scikit-learn's ``LogisticRegression(C=C)`` with sample weights. For the few
    columns of :class:`SparseLinearLabeller` a Newton step is a tiny linear solve.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    a = np.column_stack([np.ones(n), x])
    reg = np.full(d + 1, 1.0)
    reg[0] = 0.0
    beta = np.zeros(d + 1)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ beta, -30, 30)))
        grad = C * (a.T @ (w * (p - y))) + reg * beta
        hess = C * (a.T * (w * p * (1 - p))) @ a + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta


class SparseLinearLabeller(_Labeller):
    """Per class, logistic regression on the ``k`` features that best separate it.

    The columns are each standardised per-frame feature and its mean over a ``window``-second
    window; per class the ``k`` columns whose univariate AUC on the annotated frames is furthest
    from 0.5 are kept and an L2 logistic regression (classes balanced) is fitted on them.

    Why: the annotated part of a real video holds a few events per class. Trees and networks
    on hundreds of columns separate those events by whatever differed during them (a colour
    cell, the body's position in the picture at that minute) and then miss the same gesture
    later. Ranking the columns by how cleanly each alone separates the annotations keeps the
    ones the annotator's criterion is about (on ``benchmarks/data/pianist.eaf``, "left hand
    low": the hands' horizontal position, AUC 0.96-0.97 in the annotated part and in the rest),
    and a linear model on them extrapolates to hands further out than any annotated example.
    On the two real videos of ``benchmarks/data`` it gained on average +0.26 macro F1 over the
    constant against +0.18-0.20 for LightGBM and MS-TCN (12 settings each; docs/labelling-real.md).

    Parameters
    ----------
    fps : float
    k : int
        Columns kept per class (16; 4 was close).
    C : float
        Inverse L2 strength of the logistic regression (on standardised columns).
    window : float
        Seconds of the window mean beside each frame's own value.
    row_step : int
        Train on every ``row_step``-th annotated frame.
    """

    def __init__(self, *, fps: float, k: int = 16, C: float = 1.0, window: float = 0.5, row_step: int = 1,
                 name: str = "linear"):
        for what, v in (("k", k), ("row_step", row_step)):
            if not (isinstance(v, (int, np.integer)) and v >= 1):
                raise ParameterError(f"{what} must be a positive integer, got {v!r}")
        if not (C > 0 and window > 0):
            raise ParameterError(f"C and window must be positive, got {C!r} and {window!r}")
        self.fps = float(fps)
        self.k = int(k)
        self.C = float(C)
        self.window = float(window)
        self.row_step = int(row_step)
        self.name = name
        self.columns: list = []  # per class: int array of kept columns, or None (a constant)
        self.coefs: list = []  # per class: [intercept, coefs...] or [constant probability]

    def _features(self, X) -> list[np.ndarray]:
        from scipy.ndimage import uniform_filter1d

        n = window_frames(self.window, self.fps)
        out = []
        for x in X:
            x = np.nan_to_num((np.asarray(x, dtype=np.float64) - self.mean) / self.std)
            out.append(np.concatenate([x, uniform_filter1d(x, n, axis=0, mode="nearest")], axis=1))
        return out

    def _margin(self) -> int:
        """Rows of context a frame's window mean reads, plus one."""
        return window_frames(self.window, self.fps) // 2 + 1

    def fit(self, X, Y, M):
        self.mean, self.std = moments(X)
        masks = _masks(M, Y)
        self.columns, self.coefs = [], []
        for c, rows, target in _class_training_sets(lambda x: self._features([x])[0], X, Y, masks,
                                                    row_step=self.row_step, margin=self._margin()):
            if target.all() or not target.any():
                self.columns.append(None)
                self.coefs.append(np.array([float(target[0]) if len(target) else 0.0]))
                continue
            auc = np.nan_to_num(column_auc(rows, target), nan=0.5)
            # Stable order: ties (e.g. several constant columns) keep the column order.
            cols = np.sort(np.argsort(-np.abs(auc - 0.5), kind="stable")[: self.k])
            self.columns.append(cols)
            self.coefs.append(fit_logistic(rows[:, cols], target, weight=_balanced_weights(target), C=self.C))
        self.cleanup = Cleanup.from_labels(Y, M)
        return self

    def predict_proba(self, X) -> list[np.ndarray]:
        if not self.coefs:
            raise ParameterError("the linear labeller is not trained yet")
        def one(x):
            w = self._features([x])[0]
            p = np.zeros((len(w), len(self.coefs)))
            for c, (cols, beta) in enumerate(zip(self.columns, self.coefs)):
                if cols is None:
                    p[:, c] = beta[0]
                else:
                    p[:, c] = 1.0 / (1.0 + np.exp(-np.clip(beta[0] + w[:, cols] @ beta[1:], -30, 30)))
            return p

        return [blockwise(one, x, margin=self._margin()) for x in X]


class EnsembleLabeller(_Labeller):
    """The mean of the probabilities of several labellers trained on the same data.

    Their errors differ (MS-TCN is smooth and context-aware, LightGBM sees each window alone),
    so the average is often better than either, and less dependent on a noisy choice.
    """

    def __init__(self, factories: Sequence, *, name: str = "ensemble"):
        if not factories:
            raise ParameterError("an ensemble needs at least one member")
        self.factories = list(factories)
        self.name = name
        self.members: list = []

    def fit(self, X, Y, M):
        self.members = [f().fit(X, Y, M) for f in self.factories]
        self.cleanup = Cleanup.from_labels(Y, M)
        return self

    def predict_proba(self, X) -> list[np.ndarray]:
        if not self.members:
            raise ParameterError("the ensemble is not trained yet")
        probs = [m.predict_proba(X) for m in self.members]
        return [np.mean([p[i] for p in probs], axis=0) for i in range(len(X))]


def default_candidates(*, fps: float, lightgbm: bool = True, ensemble: bool = True, cliphead: bool = True) -> dict:
    """The model candidates of the automatic choice, as name -> factory (no argument).

    ``mstcn``, ``linear``, (with ``lightgbm``) ``lightgbm`` and (with ``cliphead``) the clip
    labeller's head (:class:`musicperf.train.cliphead.ClipHeadLabeller`); with ``ensemble`` also
    the means of their probabilities: ``mstcn+lightgbm``, ``linear+lightgbm``, ``mstcn+linear``
    and ``mstcn+linear+lightgbm``. An ensemble's members are the factories of this mapping, so
    the cross-validation (:func:`musicperf.train.selection.select_models`) scores it from its
    members' predictions without training anything again.
    """
    from musicperf.models.mstcn import MSTCNConfig
    from musicperf.train.cliphead import ClipHeadLabeller

    # MS-TCN at about 8 frames per second (MS-TCN itself runs on 15 fps features): the visible
    # events a person annotates last half a second and more, and the cost falls with the rate.
    step = max(1, int(round(fps / 8.0)))
    row_step = 2 if fps > 20 else 1
    out = {"mstcn": lambda: MSTCNLabeller(MSTCNConfig(), step=step),
           "linear": lambda: SparseLinearLabeller(fps=fps, row_step=row_step)}
    if lightgbm:
        out["lightgbm"] = lambda: LightGBMLabeller(fps=fps, row_step=row_step)
    if cliphead:
        out["cliphead"] = ClipHeadLabeller
    if ensemble:
        bases = list(out)
        combos = [("mstcn", "lightgbm"), ("linear", "lightgbm"), ("mstcn", "linear"), ("mstcn", "linear", "lightgbm")]
        for combo in combos:
            if all(b in bases for b in combo):
                name = "+".join(combo)
                out[name] = lambda combo=combo, name=name: EnsembleLabeller([out[b] for b in combo], name=name)
    return out
