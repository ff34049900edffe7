"""The frame labeller in the gesture workflow: ``musicperf train --labeller frame`` and its ``label``.

The clip path (:mod:`.train`, :mod:`.label`) scores fixed-length clips with a head on clip
features. The frame path labels every frame from per-frame tracks
(:func:`musicperf.features.tracks.frame_tracks`) with the model chosen per class by blocked
cross-validation (:func:`musicperf.train.framelabeller.train_frame_labeller`): MS-TCN,
LightGBM, their mean, the clip labeller's head (:mod:`musicperf.train.cliphead`), or a constant
where nothing beats it ("not learnable").

* :func:`train_frame_model` reads the annotated videos (classes: the tiers, ``tiers`` to choose
  them; the annotated spans: ``annotated`` / ``until`` / a tier named ``annotated`` / up to the
  last annotation), computes the tracks, trains and writes the model folder.
* :func:`save_frame_model` / :func:`load_frame_model`: the folder, ``workflow.json`` with
  ``"labeller": "frame"`` beside ``labeller.safetensors`` (MS-TCN and clip-head weights,
  feature normalisation, clip-head thresholds) and one LightGBM model text per class and model
  (``lightgbm-*.txt``), all through :mod:`musicperf.models.files`. Nothing is unpickled.
* :func:`label_frame_video` labels one video; the outputs are written by the clip path's
  :func:`musicperf.tasks.gestures.label.write_outputs` (same files, sidecar and fingerprints),
  plus the ``auto-query`` tier of the stretches to annotate next.

Imports numpy and the standard library at module level; torch, lightgbm and PyAV inside.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicperf._util import check_output_location
from musicperf.errors import AnnotationError, ModelError, ParameterError
from musicperf.models import files

log = logging.getLogger(__name__)

#: ``workflow.json`` value of ``labeller`` for this layout (absent: the clip head).
LABELLER = "frame"
FRAME_FORMAT = 1
WEIGHTS_FILE = "labeller.safetensors"
#: Name of a tier marking the annotated spans (its annotations are the spans).
SPANS_TIER = "annotated"
#: A tier with more distinct values than this is free text (comments, transcripts), not a class,
#: unless named with ``tiers``. Gesture tiers hold one or a few values (often the class name).
FREE_TEXT_VALUES = 10
DEFAULT_TRACKS = ("landmarks", "flow", "grid", "audio")
DEFAULT_SETS = ("all", "landmarks", "pixels")


# --------------------------------------------------------------------------- classes and spans
def choose_tiers(asets, tiers: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """The class tiers of the annotation files and notes on the tiers left out.

    Without ``tiers``: every top-level tier except predictions (``auto...``), the spans tier
    and free-text tiers (more than :data:`FREE_TEXT_VALUES` distinct values). With ``tiers``:
    exactly those (each must exist in some file).
    """
    from musicperf.labels.taxonomy import normalize_name

    found: dict[str, str] = {}
    values: dict[str, set] = {}
    for aset in asets:
        for t in aset:
            found.setdefault(normalize_name(t.name), t.name)
            values.setdefault(normalize_name(t.name), set()).update(a.value for a in t.annotations if a.value.strip())
    if tiers:
        missing = [t for t in tiers if normalize_name(t) not in found]
        if missing:
            raise AnnotationError(f"tier(s) {missing} not found in the annotations; tiers are: {', '.join(found.values())}")
        return [found[normalize_name(t)] for t in tiers], []
    classes, notes = [], []
    for key, name in found.items():
        if name.startswith("auto") or key == normalize_name(SPANS_TIER):
            continue
        if len(values[key]) > FREE_TEXT_VALUES:
            notes.append(f"tier '{name}' left out: {len(values[key])} distinct values look like free text "
                         "(name it with --tiers to learn it)")
            continue
        classes.append(name)
    if not classes:
        raise AnnotationError("no class tier in the annotations" + (f" ({'; '.join(notes)})" if notes else ""))
    return classes, notes


def _taxonomy(classes: list[str]):
    from musicperf.labels import Taxonomy

    return Taxonomy(tuple(classes), {c: c for c in classes}, background=None, by="tier", name="tiers")


# --------------------------------------------------------------------------- the model folder
def _labeller_doc(lab, key: str, tensors: dict, texts: dict) -> dict:
    """JSON description of one fitted candidate; its arrays go into ``tensors``/``texts``."""
    import torch

    from musicperf.train.candidates import (ConstantLabeller, EnsembleLabeller, LightGBMLabeller, MSTCNLabeller,
                                            SparseLinearLabeller)
    from musicperf.train.cliphead import ClipHeadLabeller

    def arr(name, x):
        tensors[f"{key}.{name}"] = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
        return f"{key}.{name}"

    doc = {"cleanup": None if lab.cleanup is None else lab.cleanup.to_dict()}
    if isinstance(lab, ConstantLabeller):
        doc.update(kind="constant", value=lab.value, n_classes=lab.n_classes)
    elif isinstance(lab, MSTCNLabeller):
        doc.update(kind="mstcn", step=lab.step, config=lab.model.config.to_dict(), n_features=lab.model.n_features,
                   n_classes=lab.model.n_classes, mean=arr("mean", lab.mean), std=arr("std", lab.std))
        for k, v in lab.model.state_dict().items():
            tensors[f"{key}.net.{k}"] = v
    elif isinstance(lab, LightGBMLabeller):
        boosters = []
        for c, b in enumerate(lab.models):
            if b is None:
                boosters.append(None)
                continue
            name = f"lightgbm-{key}-{c}.txt"
            texts[name] = b.model_to_string()
            boosters.append(name)
        doc.update(kind="lightgbm", fps=lab.fps, windows=list(lab.windows), params=lab.params, boosters=boosters,
                   constant=[None if math.isnan(v) else float(v) for v in lab.constant],
                   mean=arr("mean", lab.mean), std=arr("std", lab.std))
    elif isinstance(lab, SparseLinearLabeller):
        doc.update(kind="linear", fps=lab.fps, k=lab.k, C=lab.C, window=lab.window, row_step=lab.row_step,
                   mean=arr("mean", lab.mean), std=arr("std", lab.std),
                   columns=[None if c is None else [int(i) for i in c] for c in lab.columns],
                   coefs=[arr(f"coefs{c}", b) for c, b in enumerate(lab.coefs)])
    elif isinstance(lab, EnsembleLabeller):
        doc.update(kind="ensemble", name=lab.name,
                   members=[_labeller_doc(m, f"{key}.m{i}", tensors, texts) for i, m in enumerate(lab.members)])
    elif isinstance(lab, ClipHeadLabeller):
        state, arrays = lab.to_state()
        # float32 weights stored as float64 and read back into float32 parameters: exact.
        doc.update(kind="cliphead", **state, arrays={name: arr(name, a) for name, a in arrays.items()})
    else:
        raise ParameterError(f"cannot save a labeller of type {type(lab).__name__}")
    return doc


def _labeller_from_doc(doc: dict, tensors: dict, model_dir: Path, key: str):
    from musicperf.train.candidates import (Cleanup, ConstantLabeller, EnsembleLabeller, LightGBMLabeller,
                                            MSTCNLabeller, SparseLinearLabeller)

    def arr(name):
        if name not in tensors:
            raise ModelError(f"'{model_dir / WEIGHTS_FILE}' lacks {name}")
        return tensors[name].numpy()

    kind = doc.get("kind")
    if kind == "constant":
        lab = ConstantLabeller(doc["value"])
        lab.n_classes = int(doc["n_classes"])
    elif kind == "mstcn":
        from musicperf.models.mstcn import MSTCN, MSTCNConfig

        cfg = MSTCNConfig(**doc["config"])
        lab = MSTCNLabeller(cfg, step=int(doc["step"]))
        net = MSTCN(int(doc["n_features"]), int(doc["n_classes"]), cfg)
        prefix = f"{key}.net."
        try:
            net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        except RuntimeError as exc:
            raise ModelError(f"'{model_dir / WEIGHTS_FILE}' does not fit the recorded MS-TCN: "
                             f"{str(exc).splitlines()[0]}") from None
        lab.model = net.eval()
        lab.mean, lab.std = arr(doc["mean"]), arr(doc["std"])
    elif kind == "lightgbm":
        from musicperf.errors import require

        lgb = require("lightgbm", extra="labelling", purpose="the LightGBM labeller of this model")
        lab = LightGBMLabeller(fps=float(doc["fps"]), windows=doc["windows"], params=doc["params"])
        lab.mean, lab.std = arr(doc["mean"]), arr(doc["std"])
        lab.models = [None if n is None else lgb.Booster(model_str=files.read_model_text(model_dir / n))
                      for n in doc["boosters"]]
        lab.constant = np.array([np.nan if v is None else v for v in doc["constant"]], dtype=float)
    elif kind == "linear":
        lab = SparseLinearLabeller(fps=float(doc["fps"]), k=int(doc["k"]), C=float(doc["C"]), window=float(doc["window"]),
                                   row_step=int(doc["row_step"]))
        lab.mean, lab.std = arr(doc["mean"]), arr(doc["std"])
        lab.columns = [None if c is None else np.asarray(c, dtype=int) for c in doc["columns"]]
        lab.coefs = [arr(n) for n in doc["coefs"]]
        if len(lab.columns) != len(lab.coefs) or any(
                c is not None and len(b) != len(c) + 1 for c, b in zip(lab.columns, lab.coefs)):
            raise ModelError(f"'{model_dir / WEIGHTS_FILE}': the linear labeller's columns and coefficients differ")
    elif kind == "cliphead":
        from musicperf.train.cliphead import ClipHeadLabeller

        lab = ClipHeadLabeller.from_state(doc, {name: arr(stored) for name, stored in doc["arrays"].items()},
                                          where=f"'{model_dir}'")
    elif kind == "ensemble":
        lab = EnsembleLabeller([lambda: None], name=doc["name"])
        lab.members = [_labeller_from_doc(m, tensors, model_dir, f"{key}.m{i}") for i, m in enumerate(doc["members"])]
    else:
        raise ModelError(f"'{model_dir}' holds a labeller of unknown kind {kind!r}")
    c = doc.get("cleanup")
    if c is not None:
        lab.cleanup = Cleanup(threshold=float(c["threshold"]),
                              min_on=None if c["min_on"] is None else np.asarray(c["min_on"], dtype=int),
                              min_off=None if c["min_off"] is None else np.asarray(c["min_off"], dtype=int))
    return lab


def save_frame_model(model_dir: str | Path, labeller, meta: dict) -> dict:
    """Write a :class:`~musicperf.train.framelabeller.FrameLabeller` and ``meta`` to ``model_dir``.

    ``workflow.json`` (format ``musicperf-workflow``, ``"labeller": "frame"``) holds the classes,
    the chosen candidate and feature set per class, the tracks each set reads, the clean-up
    thresholds, the per-class status and the cross-validation table; the weights go to
    ``labeller.safetensors`` and the LightGBM model texts beside it. Returns the document.
    """
    from musicperf._version import __version__
    from musicperf.tasks.gestures.model import FORMAT, META_FILE

    model_dir = Path(model_dir)
    tensors: dict = {}
    texts: dict = {}
    models = []
    for i, ((name, fset), lab) in enumerate(labeller.model.models.items()):
        models.append({"model": name, "features": fset, "labeller": _labeller_doc(lab, f"c{i}", tensors, texts)})
    for name, text in texts.items():
        files.write_model_text(model_dir / name, text)
    if not tensors:  # constants only: an empty file still marks the layout
        import torch

        tensors["empty"] = torch.zeros(1)
    files.write_weights(model_dir / WEIGHTS_FILE, tensors, metadata={"format": FORMAT, "labeller": LABELLER})
    digest = hashlib.sha256((model_dir / WEIGHTS_FILE).read_bytes())
    for name in sorted(texts):
        digest.update(texts[name].encode())
    doc = {
        "format": FORMAT, "format_version": FRAME_FORMAT, "labeller": LABELLER, "musicperf_version": __version__,
        "model_id": digest.hexdigest()[:16],
        "classes": list(labeller.classes), "fps": float(labeller.fps),
        "status": dict(labeller.status),
        "set_tracks": {k: list(v) for k, v in labeller.set_tracks.items()},
        "selection": labeller.selection.to_dict(),
        "selection_table": labeller.selection.format_table(),
        "models": models,
        "notes": list(labeller.notes),
        **meta,
    }
    files.write_meta(model_dir, doc, name=META_FILE, newline=False)
    return doc


@dataclass
class FrameModel:
    """A frame-labeller model folder, loaded by :func:`load_frame_model`."""

    path: Path
    meta: dict
    labeller: object  # FrameLabeller

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def model_id(self) -> str:
        return str(self.meta["model_id"])

    @property
    def status(self) -> dict:
        return dict(self.meta["status"])


def load_frame_model(model_dir: str | Path, meta: dict | None = None) -> FrameModel:
    """Read a folder written by :func:`save_frame_model` (``meta``: its ``workflow.json``, if read)."""
    from musicperf.tasks.gestures.model import FORMAT, META_FILE
    from musicperf.train.framelabeller import FrameLabeller
    from musicperf.train.selection import SelectedLabeller, Selection

    model_dir = Path(model_dir)
    if meta is None:
        meta = files.read_meta(model_dir, name=META_FILE, formats=(FORMAT,), what="labelling model",
                               hint=" (train one with 'musicperf train')")
    files.check_version(meta, model_dir, readable=(FRAME_FORMAT,))
    try:
        classes = list(meta["classes"])
        sel = Selection(**meta["selection"])
        tensors = files.read_weights(model_dir / WEIGHTS_FILE,
                                     missing=f"model '{model_dir}' is incomplete: {WEIGHTS_FILE} is missing")
        models = {(m["model"], m["features"]): _labeller_from_doc(m["labeller"], tensors, model_dir, f"c{i}")
                  for i, m in enumerate(meta["models"])}
        lab = FrameLabeller(classes=classes, fps=float(meta["fps"]), selection=sel,
                            model=SelectedLabeller(sel, models, len(classes)),
                            set_tracks={k: tuple(v) for k, v in meta["set_tracks"].items()}, notes=list(meta["notes"]))
        meta["tracks"]["names"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"'{model_dir / META_FILE}' is incomplete or malformed: {exc!r}") from None
    return FrameModel(path=model_dir, meta=meta, labeller=lab)


# --------------------------------------------------------------------------- training
def _tracks(video: Path, settings: dict, *, progress: bool = False):
    from musicperf.features.tracks import frame_tracks

    return frame_tracks(video, tracks=settings["names"], landmark_every=settings["landmark_every"],
                        grid=settings["grid"], flow_width=settings["flow_width"], progress=progress)


def train_frame_model(
    data,
    model_dir: str | Path,
    *,
    until: float | None = None,
    annotated: str | None = None,
    tiers: Sequence[str] | None = None,
    tracks: Sequence[str] = DEFAULT_TRACKS,
    sets: Sequence[str] = DEFAULT_SETS,
    candidates: Sequence[str] | None = None,
    landmark_every: int = 2,
    overwrite: bool = False,
    progress: bool = False,
    say=None,
) -> dict:
    """Train a frame labeller on annotated videos and write its model folder.

    Parameters
    ----------
    data
        Videos with annotations (see :func:`musicperf.io.discover.discover`).
    model_dir : str or Path
    until, annotated : optional
        Where absence of an annotation means absent: ``0-until`` or ``"START-END,..."`` spans
        (the same for every video). Default: a tier named ``annotated`` when the file has one,
        else up to the file's last annotation (and a warning says so).
    tiers : sequence of str, optional
        The class tiers (default: see :func:`choose_tiers`).
    tracks : sequence of str
        Per-frame tracks to compute (:data:`musicperf.features.tracks.TRACKS`).
    sets : sequence of str
        Feature sets to compare (:data:`musicperf.train.framelabeller.FEATURE_SETS`).
    candidates : sequence of str, optional
        Names from :func:`musicperf.train.candidates.default_candidates` (default: all).
    landmark_every : int
    overwrite, progress : bool
    say : callable, optional
        Called with each line for the user (tracks, warnings, the table); default: the log.

    Returns
    -------
    dict
        The ``workflow.json`` document.
    """
    from musicperf.features.clips import video_fps
    from musicperf.io import read_annotations
    from musicperf.io.discover import discover
    from musicperf.labels.frames import frame_labels
    from musicperf.labels.spans import annotated_extent, spans_to_mask
    from musicperf.tasks.gestures.train import _check_output_dir
    from musicperf.train.candidates import default_candidates
    from musicperf.train.framelabeller import train_frame_labeller

    from musicperf.features.tracks import TRACKS
    from musicperf.train.framelabeller import FEATURE_SETS

    say = say or log.info
    t0 = time.perf_counter()
    # Every option is checked before any track is computed (landmarks take minutes).
    for what, given, known in (("track", tracks, TRACKS), ("feature set", sets, FEATURE_SETS),
                               ("candidate", candidates or (), tuple(default_candidates(fps=25.0)))):
        bad = [g for g in given if g not in known]
        if bad or (what != "candidate" and not given):
            raise ParameterError(f"unknown {what}(s) {bad or list(given)}; choose from {', '.join(known)}")
    if not _has_lightgbm() and any("lightgbm" in c for c in candidates or ()):
        raise ParameterError("the LightGBM candidates need lightgbm (a dependency of musicperf): pip install lightgbm==4.6.0")
    model_dir = check_output_location(model_dir, kind="dir", what="model directory")
    _check_output_dir(model_dir, overwrite=overwrite, what="model directory")
    items = discover(data, need_annotations=True)
    asets = [read_annotations(it.annotations) for it in items]
    classes, notes = choose_tiers(asets, tiers)
    for n in notes:
        say(f"note: {n}")
    tax = _taxonomy(classes)
    settings = {"names": list(tracks), "landmark_every": int(landmark_every), "grid": 6, "flow_width": 320}
    all_tracks, labels, masks, videos = [], [], [], []
    for it, aset in zip(items, asets):
        duration = video_fps(it.video)[1]
        has_tier = any(t.name == SPANS_TIER for t in aset) and until is None and annotated is None
        ext = annotated_extent(aset, duration=duration, until=until, annotated=annotated,
                               tier=SPANS_TIER if has_tier else None, ignore_tiers=(SPANS_TIER,))
        say(f"{it.video.name}: {ext.describe()}")
        for w in ext.warnings:
            say(f"warning: {it.video.name}: {w}")
        tr = _tracks(it.video, settings, progress=progress)
        say(f"{it.video.name} tracks:\n  " + tr.describe().replace("\n", "\n  "))
        y = frame_labels(aset, tax, fps=tr.fps, n_frames=len(tr), check=False, unknown="ignore")
        m = spans_to_mask(ext.spans, n_frames=len(tr), fps=tr.fps)
        if not m.any():
            raise ParameterError(f"no annotated frame in '{it.video}' ({ext.describe()})")
        all_tracks.append(tr)
        labels.append(y.astype(np.float32))
        masks.append(m)
        videos.append({"video": str(it.video.resolve()), "annotations": str(it.annotations.resolve()),
                       "annotated": ext.spans.tolist(), "annotated_from": ext.source, "warnings": ext.warnings,
                       "frames": len(tr), "annotated_frames": int(m.sum()),
                       "positives": {c: int(y[m, k].sum()) for k, c in enumerate(classes)},
                       "detection": {k: round(float(v), 3) for k, v in tr.detection.items()}})
    fps = float(all_tracks[0].fps)
    pool = default_candidates(fps=fps, lightgbm=_has_lightgbm())
    if candidates:
        pool = {c: pool[c] for c in candidates}
    from musicperf.train.loop import one_torch_thread

    # One thread, as the clip head (MS-TCN on a few hundred frames is small; LightGBM is on one
    # thread already).
    with one_torch_thread():
        lab = train_frame_labeller(all_tracks, labels, masks, classes=classes, sets=list(sets), candidates=pool)
    say(lab.summary())
    meta = {"tracks": settings, "feature_sets": list(sets), "candidates": list(pool),
            "training": {"videos": videos, "tier_notes": notes, "seconds": lab.seconds,
                         "seconds_total": round(time.perf_counter() - t0, 2)}}
    doc = save_frame_model(model_dir, lab, meta)
    return doc


def _has_lightgbm() -> bool:
    try:
        import lightgbm  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- labelling
def label_frame_video(model: FrameModel, item, out_dir: Path, *, after: float | None = None, queries: int = 5,
                      progress: bool = False) -> dict:
    """Label one video with a frame model; the outputs as the clip path's plus the ``auto-query`` tier.

    Classes the model could not learn get the constant's prediction; the summary lists them
    (``not_learnable``) and a warning says so.
    """
    from musicperf.io import read_annotations
    from musicperf.labels import intervals_from_frames
    from musicperf.labels.spans import QUERY_TIER, annotated_extent, query_tier, spans_to_mask
    from musicperf.tasks.gestures.label import human_base, write_outputs
    from musicperf.tasks.gestures.outputs import first_labelled_frame

    t0 = time.perf_counter()
    tr = _tracks(item.video, model.meta["tracks"], progress=progress)
    probs, dec = model.labeller.label([tr])
    probs, dec = probs[0].astype(np.float32), dec[0]
    fps, n = float(tr.fps), len(tr)
    duration = n / fps
    first = first_labelled_frame(after, duration=duration, fps=fps, video=item.video)
    classes = model.classes
    ivs = intervals_from_frames(dec[first:].astype(np.float32), fps=fps, threshold=0.5, start_time=first / fps)
    not_learnable = [c for c in classes if model.status.get(c) != "model"]
    for c in not_learnable:
        b = model.meta["selection"]["best"][c]
        log.warning("'%s' is not learnable from the training annotations: labelled '%s' (the constant that "
                    "scored best), not detected", c, b["constant"])
    human = read_annotations(item.annotations) if item.annotations is not None else None
    out, kept, replaced, unknown = human_base(human, item, knows=lambda name: name in classes, by_tier=True,
                                              also_replace=(QUERY_TIER,))
    # Where not to ask: the human's annotated part of this video, and before --from.
    done = np.zeros(n, dtype=bool)
    if human is not None and any(t.annotations for t in human if not t.name.startswith("auto")):
        has_tier = any(t.name == SPANS_TIER for t in human)
        ext = annotated_extent(human, duration=duration, tier=SPANS_TIER if has_tier else None,
                               ignore_tiers=(SPANS_TIER,))
        done |= spans_to_mask(ext.spans, n_frames=n, fps=fps)
    done[:first] = True
    stretches = model.labeller.query(probs, n=queries, annotated=done) if queries > 0 else []
    extra = {
        "labeller": LABELLER,
        "status": model.status,
        "not_learnable": not_learnable,
        "queries": [{"rank": i, "start": round(s, 3), "end": round(e, 3), "uncertainty": round(u, 3)}
                    for i, (s, e, u) in enumerate(stretches, start=1)],
        "thresholds": [0.5] * len(classes),
        "video_fps": fps, "fps": fps, "resampled": False, "duration": duration, "n_frames": n,
        "feature_cache_hit": all(tr.meta.get("cache_hit", {}).values()) if tr.meta.get("cache_hit") else False,
        "backbone_mode": None,
        "labelled_from": first / fps if after is None else max(after, first / fps),
    }
    tiers = [query_tier(stretches)] if stretches else []
    return write_outputs(model, item, out_dir, out=out, probs=probs[first:], first=first, fps=fps, ivs=ivs,
                         after=after, kept=kept, replaced=replaced, unknown=unknown, extra=extra, extra_tiers=tiers,
                         t0=t0)
