"""Automatic model choice: blocked cross-validation of candidates against the constant predictors.

The annotated frames of each video are cut into ``n_folds`` contiguous blocks of equal size
(blocked, not shuffled: neighbouring frames are nearly identical, so a random split would score a
model on frames it has as good as seen). Each candidate (a model x a feature set) is trained on
all blocks but one, minus a guard of ``guard`` frames on each side of the held-out block, and
predicts the held-out block; the predictions of all folds are pooled and scored per class with
frame F1, F1@25 and the edit score (:mod:`musicperf.evaluate.segmental`).

The constant predictors ("always" and "never" present) are scored the same way. A class keeps
the candidate with the best cross-validated frame F1 only when it beats the best constant by at
least ``margin``; otherwise the class is reported as *not learnable from these annotations* and
its choice is the constant, so ``label`` can say so instead of writing confident nonsense.

:func:`select_models` returns a :class:`Selection` (the table and the choice);
:func:`fit_selection` trains the chosen candidates on every annotated frame and returns a
:class:`SelectedLabeller`. Imports numpy; candidates import torch / lightgbm when fitted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from musicperf.errors import ParameterError
from musicperf.train.candidates import Cleanup, ConstantLabeller

__all__ = ["blocked_folds", "select_models", "Selection", "fit_selection", "SelectedLabeller", "CONSTANTS",
           "ensemble_members"]

CONSTANTS = ("constant-always", "constant-never")


def blocked_folds(masks: Sequence[np.ndarray], *, n_folds: int = 4, guard: int = 0) -> list[tuple[list, list]]:
    """Blocked cross-validation folds over the annotated frames of several videos.

    Parameters
    ----------
    masks : sequence of ndarray of bool, each (T_i,)
        Annotated frames of each video (need not be one prefix).
    n_folds : int
        Blocks per video; fold ``f`` holds out block ``f`` of every video.
    guard : int
        Frames around a held-out block dropped from training (window features and the temporal
        model see neighbours: without a guard they would see the labels next to the block).

    Returns
    -------
    list of (train_masks, val_masks)
        One pair of per-video bool mask lists per fold.
    """
    if not (isinstance(n_folds, int) and n_folds >= 2):
        raise ParameterError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    folds = [([], []) for _ in range(n_folds)]
    for m in masks:
        m = np.asarray(m, dtype=bool)
        idx = np.flatnonzero(m)
        blocks = np.array_split(idx, n_folds)
        for f, block in enumerate(blocks):
            val = np.zeros_like(m)
            val[block] = True
            train = m & ~val
            if len(block) and guard > 0:
                lo = max(0, block[0] - guard)
                hi = min(len(m), block[-1] + 1 + guard)
                train[lo:hi] = False
            folds[f][0].append(train)
            folds[f][1].append(val)
    return folds


@dataclass
class Selection:
    """The cross-validation table and the choice per class.

    Attributes
    ----------
    classes : list of str
    table : list of dict
        One row per (candidate, feature set, class): ``model``, ``features``, ``class``, ``f1``,
        ``f1@25``, ``edit``, ``seconds`` (training and prediction over all folds, whole candidate).
    best : dict
        class -> ``{"model", "features", "f1", "constant", "constant_f1", "learnable"}``;
        ``learnable`` is False where no candidate beats the best constant by ``margin``, and
        then ``model`` is that constant.
    margin : float
    n_folds : int
    """

    classes: list[str]
    table: list[dict]
    best: dict
    margin: float
    n_folds: int
    choice: str = "global"
    notes: list[str] = field(default_factory=list)
    prefer: str | None = None
    prefer_margin: float = 0.0

    def rows(self, cls: str) -> list[dict]:
        return [r for r in self.table if r["class"] == cls]

    def to_dict(self) -> dict:
        return {"classes": self.classes, "table": self.table, "best": self.best, "margin": self.margin,
                "n_folds": self.n_folds, "choice": self.choice, "notes": self.notes, "prefer": self.prefer,
                "prefer_margin": self.prefer_margin}

    def format_table(self) -> str:
        """A fixed-width table: one line per candidate and class, the choice marked ``*``."""
        cw = max([5] + [len(c) for c in self.classes])
        mw = max([5] + [len(f"{r['model']}/{r['features']}") for r in self.table])
        pref = (f"; models using '{self.prefer}' kept unless another is better by {self.prefer_margin:g}"
                if self.prefer else "")
        lines = [f"cross-validated on the annotated frames ({self.n_folds} blocks{pref})",
                 f"{'class':<{cw}}  {'model':<{mw}}     f1  F1@25   edit"]
        for c in self.classes:
            b = self.best[c]
            for r in self.rows(c):
                name = f"{r['model']}/{r['features']}" if r["features"] else r["model"]
                mark = "*" if (r["model"], r["features"] or None) == (b["model"], b["features"]) else " "
                lines.append(f"{c:<{cw}}  {name:<{mw}} {mark} {_f(r['f1'])}  {_f(r['f1@25'])}  {_f(r['edit'])}")
            if not b["learnable"]:
                lines.append(f"{c:<{cw}}  nothing beats the constant '{b['constant']}' by {self.margin:g}: "
                             "not learnable from these annotations")
        return "\n".join(lines + self.notes)


def _f(x) -> str:
    return "    -" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:5.3f}"


def _score_pooled(Y, val_masks_per_fold, preds_per_fold, c: int) -> dict:
    """Frame F1, F1@25 and edit of class ``c`` over the held-out frames of all folds."""
    from musicperf.evaluate.segmental import segmental_scores

    truth, pred = [], []
    for v in range(len(Y)):
        # Stitch the held-out predictions of every fold into one track per video, then keep the
        # annotated frames in time order (a held-out block is contiguous: segments stay intact).
        track = np.zeros(len(Y[v]), dtype=bool)
        held = np.zeros(len(Y[v]), dtype=bool)
        for val, preds in zip(val_masks_per_fold, preds_per_fold):
            track[val[v]] = preds[v][val[v], c]
            held |= val[v]
        truth.append(Y[v][held, c] > 0.5)
        pred.append(track[held])
    t = np.concatenate(truth)
    p = np.concatenate(pred)
    tp = int((t & p).sum())
    fp = int((~t & p).sum())
    fn = int((t & ~p).sum())
    f1 = None if tp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    seg = segmental_scores(np.concatenate(truth), np.concatenate(pred))["per_class"]["0"]
    return {"f1": f1, "f1@25": seg["f1@25"], "edit": seg["edit"]}


def select_models(
    features: Mapping[str, Sequence[np.ndarray]],
    Y: Sequence[np.ndarray],
    M: Sequence[np.ndarray],
    *,
    classes: Sequence[str],
    candidates: Mapping[str, Callable[[], object]],
    n_folds: int = 4,
    guard: int = 0,
    margin: float = 0.02,
    choice: str = "global",
    prefer: str | None = "linear",
    prefer_margin: float = 0.05,
    progress: Callable[[str], None] | None = None,
) -> Selection:
    """Compare candidates (models x feature sets) per class by blocked cross-validation.

    Parameters
    ----------
    features : mapping of str to sequence of ndarray
        Feature set name -> one ``(T_i, F)`` array per video (the sets may differ in ``F``).
    Y : sequence of ndarray, each (T_i, K)
        0/1 per class and frame; only annotated frames are read.
    M : sequence of ndarray, each (T_i,)
        True on annotated frames.
    classes : sequence of str
        K names.
    candidates : mapping of str to callable
        Model name -> factory returning an unfitted labeller (``fit``, ``predict``).
    n_folds, guard : see :func:`blocked_folds`
    margin : float
        Frame F1 a candidate must gain over the best constant for a class to count as learnable.
    choice : {"global", "class"}
        ``"global"`` (default): one candidate for every learnable class, the one with the best
        macro cross-validated F1; ``"class"``: the best candidate of each class. With a few
        events per held-out block the per-class estimates are noisy and picking the maximum of
        each over-fits the choice (on the real videos of ``benchmarks/data`` the per-class pick
        scored below the best single candidate on the unannotated part).
    prefer : str or None
        The simplest model of the pool (default ``"linear"``, :class:`SparseLinearLabeller`). The
        candidate chosen is the best (by cross-validated F1: macro over classes with
        ``"global"``, per class with ``"class"``) among those that use it (itself and the
        ensembles it is a member of, e.g. ``linear+lightgbm``), unless another candidate is
        better by at least ``prefer_margin``. A few events per held-out block make the
        estimates noisy, and the maximum over many candidates is then biased upwards; keeping
        to the family of the model that generalised from few events, within that noise (the
        "one standard error" rule of model selection), chose better on the real videos of
        ``benchmarks/data``: +0.200 macro F1 over the constant on average over 12 settings,
        against +0.180 for the plain maximum (docs/labelling-real.md). ``None`` or a name no
        candidate uses: the plain maximum.
    prefer_margin : float
    progress : callable, optional
        Called with a short line after each candidate.

    Returns
    -------
    Selection
    """
    if not features:
        raise ParameterError("no feature set to compare")
    k = len(classes)
    for v, y in enumerate(Y):
        if np.ndim(y) != 2 or y.shape[1] != k:
            raise ParameterError(f"video {v}: labels must be (frames, {k}) for classes {list(classes)}, got "
                                 f"{np.shape(y)}")
    masks = [np.asarray(m, dtype=bool) for m in M]
    for v, m in enumerate(masks):
        if m.ndim != 1 or len(m) != len(Y[v]):
            raise ParameterError(f"video {v}: the annotated mask must be ({len(Y[v])},) frames, got {m.shape}")
    if sum(int(m.sum()) for m in masks) < 2 * n_folds:
        raise ParameterError(f"only {sum(int(m.sum()) for m in masks)} annotated frames: too few for "
                             f"{n_folds}-fold cross-validation")
    folds = blocked_folds(masks, n_folds=n_folds, guard=guard)
    table: list[dict] = []
    any_set = next(iter(features.values()))
    runs = [(name, None, lambda name=name: ConstantLabeller(name.split("-")[1]), any_set) for name in CONSTANTS]
    runs += [(m, fs, factory, X) for m, factory in candidates.items() for fs, X in features.items()]
    members = ensemble_members(candidates)
    # Per (model, feature set): per fold, the probabilities of every video and the seconds. An
    # ensemble of other candidates is scored from its members' probabilities (the mean, then
    # the clean-up of the fold's labels, as EnsembleLabeller.fit/predict): nothing is trained
    # twice. The ensembles come last so that their members are there.
    probs: dict = {}
    seconds: dict = {}
    runs.sort(key=lambda r: r[0] in members)
    notes: list[str] = []
    failed: dict = {}
    for model_name, fs, factory, X in runs:
        t0 = time.perf_counter()
        preds_per_fold, vals = [], []
        try:
            for f, (train, val) in enumerate(folds):
                if model_name in members:
                    bad = [m for m in members[model_name] if (m, fs) in failed]
                    if bad:
                        raise ParameterError(f"its member {bad[0]} could not be trained")
                    p = [np.mean([probs[(m, fs)][f][v] for m in members[model_name]], axis=0) for v in range(len(X))]
                    cleanup = Cleanup.from_labels(Y, train)
                    preds_per_fold.append([cleanup.apply(x) for x in p])
                else:
                    lab = factory()
                    lab.fit(X, Y, train)
                    if hasattr(lab, "predict_proba") and lab.cleanup is not None:
                        p = lab.predict_proba(X)
                        probs.setdefault((model_name, fs), []).append(p)
                        preds_per_fold.append([lab.cleanup.apply(x) for x in p])
                    else:
                        preds_per_fold.append(lab.predict(X))
                vals.append(val)
        except ParameterError as exc:
            # A candidate that cannot learn from so little (e.g. the clip head without one run of
            # 16 annotated frames in a fold) is left out of the choice, and the table says why.
            failed[(model_name, fs)] = str(exc)
            notes.append(f"{model_name}{'/' + fs if fs else ''} left out: {exc}")
        secs = time.perf_counter() - t0
        if model_name in members:
            secs = sum(seconds.get((m, fs), 0.0) for m in members[model_name])
        seconds[(model_name, fs)] = secs
        for c, name in enumerate(classes):
            scored = ({"f1": None, "f1@25": None, "edit": None, "failed": True} if (model_name, fs) in failed
                      else _score_pooled(Y, vals, preds_per_fold, c))
            table.append({"model": model_name, "features": fs, "class": name, **scored, "seconds": secs})
        if progress is not None:
            progress(f"{model_name}{'/' + fs if fs else ''}: {secs:.1f} s")
    if choice not in ("global", "class"):
        raise ParameterError(f"choice must be 'global' or 'class', got {choice!r}")
    key = lambda r: -1.0 if r["f1"] is None else r["f1"]  # noqa: E731
    overall = None
    if choice == "global":
        combos = sorted({(r["model"], r["features"]) for r in table
                         if r["model"] not in CONSTANTS and not r.get("failed")},
                        key=lambda mf: (mf[0], mf[1] or ""))
        mean_f1 = {mf: np.mean([max(key(r), 0.0) for r in table if (r["model"], r["features"]) == mf])
                   for mf in combos}
        overall = max(combos, key=lambda mf: mean_f1[mf]) if combos else None
        simple = [mf for mf in combos if _uses(mf[0], prefer)]
        if overall is not None and simple:
            s = max(simple, key=lambda mf: mean_f1[mf])
            if mean_f1[overall] < mean_f1[s] + prefer_margin:
                overall = s
    best = {}
    for name in classes:
        rows = [r for r in table if r["class"] == name]
        const = [r for r in rows if r["model"] in CONSTANTS]
        learned = [r for r in rows if r["model"] not in CONSTANTS and not r.get("failed")]
        if overall is not None:
            learned = [r for r in learned if (r["model"], r["features"]) == overall]
        bc = max(const, key=key)
        if bc["f1"] is None:  # no positive annotated frame: "never" is the only sensible answer
            bc = next(r for r in const if r["model"] == "constant-never")
        bl = max(learned, key=key) if learned else None
        simple = [r for r in learned if _uses(r["model"], prefer)]
        if overall is None and bl is not None and simple:
            s = max(simple, key=key)
            if key(bl) < key(s) + prefer_margin:
                bl = s
        learnable = bl is not None and bl["f1"] is not None and key(bl) >= key(bc) + margin
        chosen = bl if learnable else bc
        best[name] = {"model": chosen["model"], "features": chosen["features"], "f1": chosen["f1"],
                      "constant": bc["model"], "constant_f1": bc["f1"], "learnable": bool(learnable),
                      "best_candidate": None if bl is None else bl["model"],
                      "best_candidate_features": None if bl is None else bl["features"],
                      "best_candidate_f1": None if bl is None else bl["f1"]}
    return Selection(classes=list(classes), table=table, best=best, margin=margin, n_folds=n_folds, choice=choice,
                     notes=notes, prefer=prefer if any(_uses(r["model"], prefer) for r in table) else None,
                     prefer_margin=prefer_margin)


def _uses(model: str, prefer: str | None) -> bool:
    """True for the preferred model and every ensemble that has it as a member ('linear+lightgbm')."""
    return prefer is not None and prefer in model.split("+")


def ensemble_members(candidates: Mapping[str, Callable[[], object]]) -> dict[str, list[str]]:
    """Ensemble candidates whose members are all other candidates of the mapping (by factory
    identity, as :func:`musicperf.train.candidates.default_candidates` builds them): name ->
    the members' names."""
    from musicperf.train.candidates import EnsembleLabeller

    by_factory = {id(f): name for name, f in candidates.items()}
    out = {}
    for name, factory in candidates.items():
        probe = factory()
        if isinstance(probe, EnsembleLabeller):
            names = [by_factory.get(id(f)) for f in probe.factories]
            if all(n is not None and n != name for n in names) and not any(n in out for n in names):
                out[name] = names
    return out


class SelectedLabeller:
    """The chosen candidate of every class, trained on all annotated frames.

    ``predict_proba`` / ``predict`` take the feature sets by name (as :func:`select_models`)
    and return ``(T_i, K)`` arrays with each class from its own model. ``status`` tells per
    class whether it is learned (``"model"``) or a constant because nothing beat it.
    """

    def __init__(self, selection: Selection, models: dict, n_classes: int):
        self.selection = selection
        self.models = models  # (model, features) -> fitted labeller
        self.n_classes = n_classes

    @property
    def status(self) -> dict:
        return {c: ("model" if b["learnable"] else "constant") for c, b in self.selection.best.items()}

    def _collect(self, features: Mapping[str, Sequence[np.ndarray]], method: str) -> list[np.ndarray]:
        any_set = next(iter(features.values()))
        out = [np.zeros((len(x), self.n_classes)) for x in any_set]
        cache: dict = {}
        for c, name in enumerate(self.selection.classes):
            b = self.selection.best[name]
            key = (b["model"], b["features"])
            if key not in cache:
                X = features[b["features"]] if b["features"] else any_set
                cache[key] = getattr(self.models[key], method)(X)
            for v, p in enumerate(cache[key]):
                out[v][:, c] = p[:, c]
        return out

    def predict_proba(self, features) -> list[np.ndarray]:
        return self._collect(features, "predict_proba")

    def predict(self, features) -> list[np.ndarray]:
        return [p.astype(bool) for p in self._collect(features, "predict")]


def fit_selection(
    selection: Selection,
    features: Mapping[str, Sequence[np.ndarray]],
    Y: Sequence[np.ndarray],
    M: Sequence[np.ndarray],
    *,
    candidates: Mapping[str, Callable[[], object]],
) -> SelectedLabeller:
    """Train every candidate chosen for at least one class on all annotated frames."""
    models = {}
    for b in selection.best.values():
        key = (b["model"], b["features"])
        if key in models:
            continue
        if b["model"] in CONSTANTS:
            lab = ConstantLabeller(b["model"].split("-")[1])
            X = next(iter(features.values()))
        else:
            lab = candidates[b["model"]]()
            X = features[b["features"]]
        models[key] = lab.fit(X, Y, M)
    return SelectedLabeller(selection, models, len(selection.classes))

