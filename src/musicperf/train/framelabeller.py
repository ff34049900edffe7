"""The real-video labeller end to end: tracks -> feature sets -> model choice -> labels and queries.

The library face of the real-video labeller, for ``musicperf train`` / ``label`` to call:

1. :func:`feature_sets` turns each video's :class:`~musicperf.features.tracks.FrameTracks`
   into named feature sets (``all`` usable tracks, ``landmarks``, ``pixels`` = flow + grid),
   leaving out tracks whose detection rate is too low to be usable.
2. :func:`train_frame_labeller` cross-validates the candidates (MS-TCN, LightGBM) on each
   feature set against the constants (:func:`musicperf.train.selection.select_models`) and
   trains the choice of every class on all annotated frames.
3. :meth:`FrameLabeller.label` gives per-frame probabilities and decisions, the status of each
   class (``"model"`` or ``"constant"``: not learnable from these annotations), and
   :meth:`FrameLabeller.query` the stretches to annotate next.

Imports numpy; torch and lightgbm when training.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from musicperf.errors import ParameterError
from musicperf.train.selection import Selection, SelectedLabeller, fit_selection, select_models

__all__ = ["FEATURE_SETS", "feature_sets", "set_tracks", "FrameLabeller", "train_frame_labeller"]

#: Named feature sets: which tracks each one joins.
FEATURE_SETS = {
    "all": ("landmarks", "flow", "grid", "audio"),
    "landmarks": ("landmarks",),
    "pixels": ("flow", "grid"),
    "landmarks+flow": ("landmarks", "flow"),
}


def feature_sets(
    tracks: Sequence,
    *,
    sets: Sequence[str] = ("all", "landmarks", "pixels"),
    min_rate: float = 0.2,
) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    """Named feature sets over several videos' tracks, from the tracks usable in all of them.

    Parameters
    ----------
    tracks : sequence of FrameTracks
        One per video.
    sets : sequence of str
        Names from :data:`FEATURE_SETS`.
    min_rate : float
        A track is usable when found in at least this fraction of the frames of every video.

    Returns
    -------
    sets : dict of str to list of ndarray
        Set name -> one ``(T_i, F)`` array per video; sets left empty (or equal to an earlier
        one) are dropped.
    notes : list of str
        Tracks left out and why.

    The tracks each set joined are :func:`set_tracks` of the same arguments.
    """
    chosen_sets, notes = set_tracks(tracks, sets=sets, min_rate=min_rate)
    return {name: [tr.matrix(list(ts))[0] for tr in tracks] for name, ts in chosen_sets.items()}, notes


def set_tracks(tracks: Sequence, *, sets: Sequence[str], min_rate: float) -> tuple[dict[str, tuple], list[str]]:
    """The tracks each feature set joins, given what the videos' tracks found (see :func:`feature_sets`)."""
    bad = [s for s in sets if s not in FEATURE_SETS]
    if bad:
        raise ParameterError(f"unknown feature set(s) {bad}; choose from {', '.join(FEATURE_SETS)}")
    usable = None
    notes = []
    for tr in tracks:
        u = set(tr.usable(min_rate=min_rate))
        for t in tr.values:
            if t not in u:
                notes.append(f"track '{t}' left out: found in {tr.detection.get(t, 0.0):.0%} of the frames of "
                             f"{tr.meta.get('video', 'a video')}")
        usable = u if usable is None else usable & u
    usable = usable or set()
    out = {}
    for name in sets:
        chosen = [t for t in FEATURE_SETS[name] if t in usable]
        if not chosen:
            continue
        if tuple(chosen) in out.values():
            continue  # the same columns under another name
        out[name] = tuple(chosen)
    if not out:
        raise ParameterError("no usable track for any feature set (detection rates: "
                             + "; ".join(str(tr.detection) for tr in tracks) + ")")
    return out, notes


@dataclass
class FrameLabeller:
    """A trained labeller: the selection table, the models, the feature sets it reads."""

    classes: list[str]
    fps: float
    selection: Selection
    model: SelectedLabeller
    set_tracks: dict
    notes: list[str] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)

    @property
    def status(self) -> dict:
        return self.model.status

    def label(self, tracks: Sequence) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``(probabilities, decisions)`` per video, each ``(T_i, K)``.

        A class whose choice is a constant gets that constant (0 or 1) in both: check
        :attr:`status` and say so rather than present it as a detection.
        """
        fs = {}
        for name, ts in self.set_tracks.items():
            for tr in tracks:
                missing = [t for t in ts if t not in tr.values]
                if missing:
                    raise ParameterError(f"the labeller reads track(s) {missing} that were not computed for "
                                         f"{tr.meta.get('video', 'this video')}")
            fs[name] = [tr.matrix(list(ts))[0] for tr in tracks]
        return self.model.predict_proba(fs), self.model.predict(fs)

    def query(self, probs: np.ndarray, *, n: int = 5, length: float = 3.0, annotated: np.ndarray | None = None):
        """The ``n`` least certain stretches of one video (:func:`musicperf.labels.spans.query_stretches`).

        Classes answered by a constant are left out (their probability is 0 or 1 and says
        nothing about where the model is unsure).
        """
        from musicperf.labels.spans import query_stretches

        learned = [c for c, name in enumerate(self.classes) if self.status[name] == "model"]
        p = probs[:, learned] if learned else np.full((len(probs), 1), 0.5)
        return query_stretches(p, fps=self.fps, n=n, length=length, annotated=annotated)

    def summary(self) -> str:
        lines = [self.selection.format_table()]
        for c in self.classes:
            b = self.selection.best[c]
            if b["learnable"]:
                lines.append(f"{c}: {b['model']} on '{b['features']}' (cross-validated F1 {b['f1']:.3f} against "
                             f"{_fmt(b['constant_f1'])} for {b['constant']})")
            else:
                lines.append(f"{c}: not learnable from these annotations; labelled '{b['constant']}'")
        return "\n".join(lines + self.notes)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def train_frame_labeller(
    tracks: Sequence,
    labels: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    classes: Sequence[str],
    sets: Sequence[str] = ("all", "landmarks", "pixels"),
    candidates: Mapping[str, Callable[[], object]] | None = None,
    n_folds: int = 3,
    margin: float = 0.02,
    choice: str = "global",
    min_rate: float = 0.2,
    progress: Callable[[str], None] | None = None,
) -> FrameLabeller:
    """Choose and train a labeller per class from partly annotated videos.

    Parameters
    ----------
    tracks : sequence of FrameTracks
        One per video.
    labels : sequence of ndarray, each (T_i, K)
        0/1 per frame and class (read on annotated frames only).
    masks : sequence of ndarray of bool, each (T_i,)
        Annotated frames.
    classes : sequence of str
    sets, min_rate : see :func:`feature_sets`
    candidates : mapping, optional
        Model name -> factory; default :func:`musicperf.train.candidates.default_candidates`.
    n_folds, margin, choice : see :func:`musicperf.train.selection.select_models`
    progress : callable, optional

    Returns
    -------
    FrameLabeller
    """
    from musicperf.train.candidates import default_candidates

    if not (len(tracks) == len(labels) == len(masks)) or not tracks:
        raise ParameterError("give one label matrix and one mask per video's tracks")
    fps = float(tracks[0].fps)
    if candidates is None:
        try:
            import lightgbm  # noqa: F401

            candidates = default_candidates(fps=fps)
        except ImportError:
            candidates = default_candidates(fps=fps, lightgbm=False)
    st, notes = set_tracks(tracks, sets=sets, min_rate=min_rate)
    fs = {name: [tr.matrix(list(ts))[0] for tr in tracks] for name, ts in st.items()}
    guard = int(round(fps))  # 1 s: the LightGBM windows reach 1 s around a frame
    t0 = time.perf_counter()
    sel = select_models(fs, labels, masks, classes=classes, candidates=candidates, n_folds=n_folds, guard=guard,
                        margin=margin, choice=choice, progress=progress)
    t1 = time.perf_counter()
    model = fit_selection(sel, fs, labels, masks, candidates=candidates)
    t2 = time.perf_counter()
    return FrameLabeller(classes=list(classes), fps=fps, selection=sel, model=model, set_tracks=st, notes=notes, seconds={"cross_validation": round(t1 - t0, 2), "final_fit": round(t2 - t1, 2)})
