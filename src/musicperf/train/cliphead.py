"""The clip labeller's head as a candidate of the frame labeller's automatic choice.

The clip labeller (``musicperf train`` without ``--labeller frame``,
:mod:`musicperf.tasks.gestures.train`) scores 16-frame clips with an MLP head on per-clip
statistics, trained with Dynamic Batch Balance on temporally smoothed targets (paper 001),
tunes one threshold per class on out-of-fold predictions, and spreads the clip scores back to
frames. :class:`ClipHeadLabeller` does the same on the per-frame tracks the other candidates
read (:class:`musicperf.features.tracks.FrameTracks`), with their interface (``fit(X, Y, M)``,
``predict_proba(X)``, ``predict(X)``, ``cleanup``), so the choice can compare it with MS-TCN and
LightGBM and keep it where it is better.

**Clips.** ``length`` frames (16, the clip labeller's) at the video's frame rate (the clip
labeller's default sampling: its ``fps`` is the first video's), starts every ``stride`` frames
(4, the clip labeller's training stride; also when labelling, where the clip labeller uses 8:
the features here are cheap and the finer stride gives the frames more clips to average).

**Clip vector.** Per column of the per-frame features, its mean and standard deviation over the
clip (NaN frames, e.g. undetected landmarks, left out; a column never found in the clip is 0).
On the grid track that is the clip labeller's statistics (per cell: mean motion, its standard
deviation over the clip, mean colour) plus the standard deviation of the colour, which the
clip labeller leaves out: a candidate sees plain ``(T, F)`` arrays, not which column is which,
and the colour's variation over a clip is itself a motion cue (a limb crossing the cell). The
per-frame motion of the grid track is the difference to the previous frame, so a clip's 16 rows
hold 16 differences where the clip labeller's 16 frames give 15. Then, as the clip labeller,
each column is standardised with the mean and standard deviation of the training clips.

**Training.** Only clips whose frames are all annotated (for every class). Targets: Temporal
Smoothing (Equation 6 of 001, :func:`musicperf.labels.sample_labels` ``how="ts"``); head, loss
and optimiser: :class:`musicperf.train.head.HeadSettings` (the clip labeller's defaults: a
:class:`~musicperf.models.SingleModelHead` of 128 and 64 units, dropout 0.2, DBB with MSE, AdamW
2e-3, 80 epochs of batches of 32, seed 0, one thread).

**Thresholds.** As the clip labeller: ``folds``-fold blocked cross-validation over the training
clips (:func:`musicperf.train.head.clip_fold_indices`), out-of-fold clip scores spread onto
frames, one threshold per class maximising F1 there
(:func:`musicperf.evaluate.metrics.tune_thresholds`); a class without a positive training clip
is never predicted. The probabilities are then mapped piecewise linearly so that each class's
threshold falls on 0.5 (0 and 1 stay in place, the order of the scores is kept): the shared
:class:`~musicperf.train.candidates.Cleanup` thresholds at 0.5 as for every candidate, and
"annotate next" reads 0.5 as the most uncertain. ``folds=0`` keeps the raw scores (threshold
0.5). The clean-up after thresholding is the other candidates' (minimum run and gap lengths
from the annotations) rather than the clip labeller's fixed 0.2 s / 0.24 s.

**Frames.** A frame's probability is the mean over the clips that contain it
(:func:`musicperf.labels.spread.spread_to_frames`); a video shorter than a clip is padded with
its last frame.

Stored in a frame model folder through :meth:`ClipHeadLabeller.to_state` /
:meth:`ClipHeadLabeller.from_state` (JSON settings and tensors; no pickle).

Imports numpy at module level; torch when fitted.
"""

from __future__ import annotations

import warnings
import numpy as np

from musicperf.errors import ModelError, ParameterError
from musicperf.train.candidates import Cleanup, _Labeller, _masks
from musicperf.train.head import HeadSettings

__all__ = ["ClipHeadLabeller", "clip_statistics", "clip_starts"]

#: Threshold of a class that must never be predicted (the clip labeller's ``NEVER``).
NEVER = 1.5


def clip_starts(mask: np.ndarray, *, length: int, stride: int) -> np.ndarray:
    """First frames of the clips lying wholly in the True runs of ``mask``, every ``stride`` frames.

    Each run of True frames gets its own grid of starts from its first frame, so a run that
    starts at an odd frame loses nothing to a global grid.
    """
    from musicperf.evaluate.segmental import segments

    out = [np.arange(s, e - length + 1, stride) for s, e in segments(np.asarray(mask, dtype=bool))
           if e - s >= length]
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def _all_starts(n: int, *, length: int, stride: int) -> np.ndarray:
    """Starts covering all ``n >= length`` frames: every ``stride`` frames and one ending on the last."""
    st = np.arange(0, n - length + 1, stride)
    if st[-1] != n - length:
        st = np.append(st, n - length)
    return st.astype(np.int64)


def clip_statistics(x: np.ndarray, starts: np.ndarray, *, length: int) -> np.ndarray:
    """Per-clip mean and standard deviation of every column: ``(len(starts), 2 F)`` float32.

    Means first, then standard deviations (population), over the finite values of each column
    in ``x[s : s + length]``; 0 where a column has no finite value in the clip.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ParameterError(f"features must be (frames, features), got shape {x.shape}")
    st = np.asarray(starts, dtype=np.int64)
    ok = np.isfinite(x)
    v = np.where(ok, x, 0.0)
    zero = np.zeros((1, x.shape[1]))
    c1 = np.concatenate([zero, np.cumsum(v, axis=0)])
    c2 = np.concatenate([zero, np.cumsum(v * v, axis=0)])
    cn = np.concatenate([zero, np.cumsum(ok, axis=0, dtype=np.float64)])
    n = cn[st + length] - cn[st]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = (c1[st + length] - c1[st]) / n
        var = (c2[st + length] - c2[st]) / n - mean * mean
    mean = np.where(n > 0, mean, 0.0)
    std = np.where(n > 0, np.sqrt(np.clip(var, 0.0, None)), 0.0)
    return np.concatenate([mean, std], axis=1).astype(np.float32)


def _calibrate(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Map scores so that threshold ``t`` (per class) falls on 0.5, 0 and 1 fixed, monotone.

    ``t >= 1`` (a class never to predict): everything maps below 0.5.
    """
    p = np.asarray(p, dtype=np.float64)
    t = np.clip(np.asarray(t, dtype=np.float64), 1e-6, None)
    low = 0.5 * p / t
    high = 0.5 + 0.5 * (p - t) / np.clip(1.0 - t, 1e-6, None)
    return np.where(p < t, low, high)


class ClipHeadLabeller(_Labeller):
    """The clip labeller's head on per-frame features: clips, MLP, DBB, tuned thresholds (see the module).

    Parameters
    ----------
    settings : HeadSettings, optional
        The head and its training (default: the clip labeller's).
    length : int
        Frames per clip (16).
    stride : int
        Frames between clip starts, in training and labelling (4).
    target : {"ts", "any"}
        Clip target: Temporal Smoothing (Equation 6 of 001) or "present in any frame".
    folds : int
        Blocks of the cross-validation that tunes the thresholds; 0: no tuning (0.5).
    """

    def __init__(self, settings: HeadSettings | None = None, *, length: int = 16, stride: int = 4,
                 target: str = "ts", folds: int = 4, name: str = "cliphead"):
        for what, v, lo in (("length", length, 2), ("stride", stride, 1)):
            if not (isinstance(v, (int, np.integer)) and v >= lo):
                raise ParameterError(f"{what} must be an integer >= {lo}, got {v!r}")
        if target not in ("ts", "any"):
            raise ParameterError(f"target must be 'ts' or 'any', got {target!r}")
        if not (isinstance(folds, (int, np.integer)) and (folds == 0 or folds >= 2)):
            raise ParameterError(f"folds must be 0 (no tuning) or an integer >= 2, got {folds!r}")
        self.settings = settings or HeadSettings()
        self.length, self.stride, self.target, self.folds = int(length), int(stride), target, int(folds)
        self.name = name
        self.head = None
        self.mean = self.std = None
        self.thresholds = None

    # ------------------------------------------------------------------ clips
    def _pad(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if len(x) == 0:
            raise ParameterError("cannot label an empty sequence of frames")
        if len(x) < self.length:
            x = np.concatenate([x, np.repeat(x[-1:], self.length - len(x), axis=0)])
        return x

    def _standard(self, feats: np.ndarray) -> np.ndarray:
        return ((feats - self.mean) / self.std).astype(np.float32)

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X, Y, M):
        from musicperf.labels import sample_labels
        from musicperf.train.head import fit_single_head

        if not (len(X) == len(Y) == len(M)) or not len(X):
            raise ParameterError("give one label matrix and one mask per feature sequence")
        k = int(Y[0].shape[1])
        starts, feats, targets, present = [], [], [], []
        for x, y, m in zip(X, Y, _masks(M, Y)):
            st = clip_starts(m.all(axis=1), length=self.length, stride=self.stride)
            lab = (np.asarray(y) > 0.5).astype(np.float32)
            starts.append(st)
            feats.append(clip_statistics(x, st, length=self.length))
            targets.append(sample_labels(lab, st, length=self.length, how=self.target))
            present.append(sample_labels(lab, st, length=self.length, how="any"))
        F = np.concatenate(feats)
        T = np.concatenate(targets)
        P = np.concatenate(present)
        if len(F) == 0:
            raise ParameterError(f"no run of {self.length} annotated frames: the clip head has no training clip")
        # As the clip labeller: the statistics of the training clips (no labels involved).
        self.mean = F.mean(axis=0).astype(np.float64)
        self.std = F.std(axis=0).astype(np.float64) + 1e-6
        Fn = self._standard(F)
        self.thresholds = self._tune(Fn, T, starts, [np.asarray(y) > 0.5 for y in Y], k) if self.folds else \
            np.full(k, 0.5)
        self.thresholds[P.sum(axis=0) == 0] = NEVER  # never seen present: never predicted
        self.head, self.history = fit_single_head(Fn, T, self.settings, n_classes=k)
        self.cleanup = Cleanup.from_labels(Y, M)
        return self

    def _tune(self, Fn, T, starts, labels, k) -> np.ndarray:
        """Per-class thresholds on the out-of-fold frame probabilities (the clip labeller's way)."""
        from musicperf.evaluate.metrics import tune_thresholds
        from musicperf.labels.spread import spread_to_frames
        from musicperf.train.head import clip_fold_indices, fit_single_head, predict_head

        offsets = np.cumsum([0] + [len(s) for s in starts])
        truth, score = [], []
        for tr, va in clip_fold_indices(starts, folds=self.folds, length=self.length):
            head, _ = fit_single_head(Fn[tr], T[tr], self.settings, n_classes=k)
            for v, st in enumerate(starts):
                local = va[(va >= offsets[v]) & (va < offsets[v + 1])] - offsets[v]
                if not len(local):
                    continue
                first = int(st[local].min())
                n = int(st[local].max()) + self.length - first
                probs, covered = spread_to_frames(st[local], predict_head(head, Fn[offsets[v] + local]),
                                                  length=self.length, first=first, n=n)
                truth.append(labels[v][first : first + n][covered])
                score.append(probs[covered])
        if not truth:
            return np.full(k, 0.5)
        return np.asarray(tune_thresholds(np.concatenate(truth), np.concatenate(score)), dtype=float).reshape(k)

    def raw_proba(self, X) -> list[np.ndarray]:
        """Per-frame probabilities of the head before the threshold mapping: ``(T_i, K)`` each."""
        from musicperf.labels.spread import spread_to_frames
        from musicperf.train.head import predict_head

        if self.head is None:
            raise ParameterError("the clip-head labeller is not trained yet")
        out = []
        for x in X:
            t = len(x)
            xp = self._pad(x)
            st = _all_starts(len(xp), length=self.length, stride=self.stride)
            scores = predict_head(self.head, self._standard(clip_statistics(xp, st, length=self.length)))
            probs, _ = spread_to_frames(st, scores, length=self.length, first=0, n=len(xp))
            out.append(probs[:t].astype(np.float64))
        return out

    def predict_proba(self, X) -> list[np.ndarray]:
        """Per-frame probabilities ``(T_i, K)``, mapped so that each class's threshold is 0.5."""
        return [_calibrate(p, self.thresholds) for p in self.raw_proba(X)]

    # ------------------------------------------------------------------ storage
    def to_state(self) -> tuple[dict, dict]:
        """``(settings, arrays)``: JSON-able settings and the named arrays (head weights, normalisation,
        thresholds) of a fitted labeller, for a model folder; :meth:`from_state` reads them back."""
        if self.head is None:
            raise ParameterError("the clip-head labeller is not trained yet")
        doc = {"settings": self.settings.to_dict(), "length": self.length, "stride": self.stride,
               "target": self.target, "folds": self.folds, "name": self.name, "head": self.head.config()}
        arrays = {"mean": np.asarray(self.mean, dtype=np.float64), "std": np.asarray(self.std, dtype=np.float64),
                  "thresholds": np.asarray(self.thresholds, dtype=np.float64)}
        arrays.update({f"head.{k}": v.detach().cpu().numpy() for k, v in self.head.state_dict().items()})
        return doc, arrays

    @classmethod
    def from_state(cls, doc: dict, arrays: dict, *, where: str = "the model") -> "ClipHeadLabeller":
        """The labeller :meth:`to_state` described (``arrays``: name -> numpy array or tensor)."""
        import torch

        from musicperf.models import SingleModelHead

        try:
            lab = cls(HeadSettings(**{**doc["settings"], "hidden": tuple(doc["settings"]["hidden"])}),
                      length=int(doc["length"]), stride=int(doc["stride"]), target=doc["target"],
                      folds=int(doc["folds"]), name=doc.get("name", "cliphead"))
            h = doc["head"]
            head = SingleModelHead(int(h["in_features"]), int(h["n_classes"]), hidden=tuple(h["hidden"]),
                                   dropout=float(h["dropout"]))
            state = {k[len("head."):]: torch.as_tensor(np.asarray(v)) for k, v in arrays.items()
                     if k.startswith("head.")}
            head.load_state_dict(state)
            lab.mean = np.asarray(arrays["mean"], dtype=np.float64)
            lab.std = np.asarray(arrays["std"], dtype=np.float64)
            lab.thresholds = np.asarray(arrays["thresholds"], dtype=np.float64)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ModelError(f"{where} holds a clip-head labeller that cannot be read: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        lab.head = head.eval()
        return lab

