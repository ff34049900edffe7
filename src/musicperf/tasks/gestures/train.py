"""Training a gesture model: samples of the annotated part, blocked cross-validation, the head.

:func:`train_model` is the one entry point (``musicperf train``, :func:`musicperf.api.train`).
It reads in this order, each step a named function:

1. :func:`~musicperf.io.discover.discover` the ``(video, annotations)`` pairs;
2. the taxonomy (:func:`merged_taxonomy`), the backbone (:func:`~.model.make_backbone`) and the
   region of interest (:func:`~musicperf.features.clips.estimate_roi`);
3. :func:`collect_samples`: the clips of the annotated part of each video, their features and
   targets (Equation 6 of 001);
4. :func:`fold_indices`: blocked cross-validation; a head per fold, whose out-of-fold scores are
   spread onto frames as labelling does, and one threshold per class tuned on them (:func:`tune`);
5. the final head on all clips (:func:`fit_head`), written with :func:`~.model.save_weights`.

**Extension points.** The distributed trainer (:mod:`musicperf.distributed.ddp`) changes three
of these steps; it passes them in a :class:`TrainSteps` (``estimate_roi``, ``collect_samples``,
``fit_head``) instead of replacing module attributes, so a renamed step is an error at once.

Imports numpy and the standard library at module level; torch inside the functions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicperf._util import check_output_location
from musicperf._version import __version__
from musicperf.errors import AnnotationError, ParameterError
from musicperf.evaluate import metrics
from musicperf.features import clips as clipmod
from musicperf.features.clipfeatures import FEATURE_VERSION
from musicperf.features.clips import FeatureExtractor, clip_features, video_fps
from musicperf.io import read_annotations
from musicperf.io.annotations import AnnotationSet
from musicperf.io.discover import Item, discover
from musicperf.labels import Taxonomy, frame_labels, sample_labels
from musicperf.labels.spread import spread_to_frames
from musicperf.tasks import framefeatures
from musicperf.tasks.gestures.config import GestureConfig
from musicperf.tasks.gestures.model import (
    MODEL_FILE,
    MODEL_FORMAT,
    make_backbone,
    predict_head,
    save_meta,
    save_weights,
)
from musicperf.tasks.gestures.state import STATE_DIR, TrainState, run_key
from musicperf.train.head import clip_fold_indices, head_run_key, train_head

log = logging.getLogger(__name__)

#: Threshold of a class that must never be predicted (probabilities never exceed 1).
NEVER = 1.5


@dataclass
class VideoSamples:
    """Features and targets of the clips of one video."""

    video: Path
    starts: np.ndarray  # (N,) int64, frames on the model's grid
    features: np.ndarray  # (N, F) float32
    targets: np.ndarray  # (N, K) float32, the training target (Eq. 6 or any)
    present: np.ndarray  # (N, K) float32, 1 when the class is in any frame of the clip
    fps: float
    frame_labels: np.ndarray  # (T, K) float32 on the model's frame grid
    resampled_from: float | None = None



def collect_samples(
    item: Item,
    taxonomy,
    extractor: FeatureExtractor,
    *,
    fps: float,
    until: float | None,
    stride: int,
    progress: bool = False,
) -> VideoSamples:
    """Features and labels of the training clips of one video (those ending before ``until``)."""
    cfg = extractor.config
    vfps, duration = video_fps(item.video)
    aset = read_annotations(item.annotations)
    aset.check_duration(duration, media=item.video)
    end = duration if until is None else min(until, duration)
    n_frames = int(math.floor(duration * fps + 1e-6))
    labels = frame_labels(aset, taxonomy, fps=fps, n_frames=n_frames, check=False, unknown="warn")
    resampled = None
    if abs(vfps - fps) > 1e-3:
        resampled = vfps
        log.warning("'%s' runs at %.3f fps, the model at %.3f fps: frames are resampled", item.video, vfps, fps)
    # Decoding runs in a background thread, overlapping the feature computation.
    starts, feats = clip_features(extractor, item.video, fps=fps, first=0, n_frames=n_frames, stride=stride, end=end,
                                  progress=progress, desc="features")
    if not len(starts):
        raise ParameterError(
            f"no complete {cfg.clip_length}-frame clip in the first {end:.2f} s of '{item.video}'"
            + (" (is --until too small?)" if until is not None else "")
        )
    return VideoSamples(
        video=item.video,
        starts=starts,
        features=framefeatures.clip_matrix(cfg, item.video, starts, feats, fps=fps, progress=progress),
        targets=sample_labels(labels, starts, length=cfg.clip_length, how=cfg.target),
        present=sample_labels(labels, starts, length=cfg.clip_length, how="any"),
        fps=fps,
        frame_labels=labels,
        resampled_from=resampled,
    )


def fold_indices(per_video: list[VideoSamples], *, folds: int, length: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Blocked cross-validation folds over the clips of all videos.

    Each video's clips are cut into ``folds`` contiguous blocks of time; fold ``k`` validates on
    block ``k`` of every video and trains on the other clips that do not overlap that block
    (overlapping clips share frames and would leak). Videos too short for ``folds`` blocks of
    two clip lengths use fewer (:func:`musicperf.train.head.clip_fold_indices`).

    Returns
    -------
    list of (train, val)
        Indices into the concatenated clips of ``per_video``.
    """
    return clip_fold_indices([vs.starts for vs in per_video], folds=folds, length=length)


def merged_taxonomy(asets: list[AnnotationSet], config: GestureConfig, taxonomy):
    """The taxonomy to train with: given (object, YAML path or built-in name) or from the files."""
    if taxonomy is None:
        return Taxonomy.from_annotations(asets, by=config.classes_by, background=config.background)
    if isinstance(taxonomy, Taxonomy):
        return taxonomy
    name = str(taxonomy)
    if name in ("gestures18", "superclasses7"):
        return Taxonomy.builtin(name, by=config.classes_by)
    return Taxonomy.from_yaml(name)


def _check_output_dir(path: Path, *, overwrite: bool, what: str) -> None:
    if path.exists() and not overwrite:
        # Empty, or holding only what an interrupted run left (resumed, see .state).
        if path.is_dir() and all(p.name == STATE_DIR for p in path.iterdir()):
            return
        raise ParameterError(f"{what} '{path}' already exists; choose another path or pass --overwrite")


def train_model(
    data: Sequence[str | Path] | str | Path,
    model_dir: str | Path,
    *,
    until: float | None = None,
    config: GestureConfig | str | Path | None = None,
    taxonomy=None,
    overwrite: bool = False,
    progress: bool = False,
    steps: TrainSteps | None = None,
) -> dict:
    """Train a gesture labeller on annotated videos and write it to ``model_dir``.

    Parameters
    ----------
    data : str, Path or sequence of them
        Videos with annotations, see :func:`discover`.
    model_dir : str or Path
        Output folder; refused when it exists and is not empty, unless ``overwrite``.
    until : float, optional
        Train on the first ``until`` seconds of every video only (the annotated part).
    config : GestureConfig, str or Path, optional
        Settings, or a YAML file of them; defaults to :class:`GestureConfig()`.
    taxonomy : Taxonomy, str or Path, optional
        Classes: a :class:`~musicperf.labels.Taxonomy`, a built-in name (``"gestures18"``,
        ``"superclasses7"``) or a YAML mapping file; default: one class per tier name (or
        annotation value, ``config.classes_by``) found in the annotation files.
    overwrite : bool
    progress : bool
        Show progress bars on stderr.
    steps : TrainSteps, optional
        The replaceable steps (the distributed trainer's); default :class:`TrainSteps()`.

    Returns
    -------
    dict
        The training summary also stored in ``model_dir/workflow.json``: classes, thresholds,
        sample counts, validation metrics, timings.
    """
    import torch

    t0 = time.perf_counter()
    if until is not None and not (until > 0):
        raise ParameterError(f"--until must be a positive number of seconds, got {until}")
    if config is None:
        config = GestureConfig()
    elif not isinstance(config, GestureConfig):
        config = GestureConfig.from_yaml(config)
    steps = TrainSteps() if steps is None else steps
    model_dir = check_output_location(model_dir, kind="dir", what="model directory")
    _check_output_dir(model_dir, overwrite=overwrite, what="model directory")
    items = discover(data, need_annotations=True)
    framefeatures.check_inputs(config, [it.video for it in items])
    asets = [read_annotations(it.annotations) for it in items]
    tax = steps.merged_taxonomy(asets, config, taxonomy)
    classes = list(tax.classes)
    fps = video_fps(items[0].video)[0]

    state = TrainState(model_dir, run_key(config, until=until, taxonomy=taxonomy, items=items)) if steps.resume else None
    torch.manual_seed(config.seed)
    backbone, norm = make_backbone(config)
    roi = (0.0, 1.0, 0.0, 1.0)
    if config.roi == "auto":
        roi = state.roi() if state is not None else None
        if roi is None:
            roi = steps.estimate_roi([it.video for it in items], until=until)
            if state is not None:
                state.save_roi(roi)
        log.info("region of interest (top, bottom, left, right): %s", roi)
    extractor = FeatureExtractor(config, backbone, norm, roi=roi)
    per_video = []
    for i, it in enumerate(items):
        def make(it=it):
            return steps.collect_samples(it, tax, extractor, fps=fps, until=until, stride=config.train_stride,
                                         progress=progress)

        per_video.append(make() if state is None else state.samples(i, make, VideoSamples))
    t_features = time.perf_counter() - t0

    if taxonomy is None:
        tax, per_video = _drop_empty_classes(tax, per_video)
    classes = list(tax.classes)
    K = len(classes)
    X = np.concatenate([vs.features for vs in per_video])
    Y = np.concatenate([vs.targets for vs in per_video])
    P = np.concatenate([vs.present for vs in per_video])
    offsets = np.cumsum([0] + [len(vs.starts) for vs in per_video])
    # Unsupervised statistics of the features of every training clip (no labels involved).
    mean = X.mean(axis=0)
    std = X.std(axis=0) + 1e-6
    Xn = ((X - mean) / std).astype(np.float32)

    # Thresholds from blocked cross-validation: each of `folds` contiguous blocks of every
    # video is predicted by a head trained without it (and without the clips overlapping it);
    # the out-of-fold clip scores are spread onto frames the way labelling does, and one
    # threshold per class is tuned on all those frames. The final head is then trained on all
    # clips. A single held-out block would hold one or two occurrences of a gesture when only
    # a minute is annotated, too few to place a threshold.
    oof_true, oof_score = [], []
    folds = fold_indices(per_video, folds=config.folds, length=config.clip_length)
    for k, (tr, va) in enumerate(folds):
        done = state.fold(k) if state is not None else None
        if done is not None:
            oof_true.append(done[0])
            oof_score.append(done[1])
            continue
        kw = {} if state is None else {"checkpoint": state.head_checkpoint(f"fold-{k}")}
        fold_head, _ = steps.fit_head(Xn[tr], Y[tr], config, n_classes=K, progress=False, **kw)
        fold_true, fold_score = [], []
        for v, vs in enumerate(per_video):
            local = va[(va >= offsets[v]) & (va < offsets[v + 1])] - offsets[v]
            if len(local):
                lab, probs = _frame_scores(vs, local, predict_head(fold_head, Xn[offsets[v] + local]),
                                           config.clip_length)
                fold_true.append(lab)
                fold_score.append(probs)
        fold_true = np.concatenate(fold_true) if fold_true else np.zeros((0, K), np.float32)
        fold_score = np.concatenate(fold_score) if fold_score else np.zeros((0, K), np.float32)
        if state is not None:
            state.save_fold(k, fold_true, fold_score)
        oof_true.append(fold_true)
        oof_score.append(fold_score)
        if progress:
            log.info("cross-validation fold %d/%d done", k + 1, len(folds))
    oof_true = np.concatenate(oof_true) if oof_true else np.zeros((0, K), np.float32)
    oof_score = np.concatenate(oof_score) if oof_score else np.zeros((0, K), np.float32)
    thresholds, val_metrics = tune(oof_true, oof_score, classes)
    # A class never present in training is never predicted: its output is not trained (DBB
    # gives a class no loss in a batch without positives, Equation 3 of 001).
    tuned_on = []
    for k, c in enumerate(classes):
        if P[:, k].sum() == 0:
            thresholds[k] = NEVER
            tuned_on.append("never predicted: no positive frame in training")
            log.warning("class %r has no positive frame in the training part: it will never be predicted", c)
        elif len(oof_true) == 0 or oof_true[:, k].sum() == 0:
            tuned_on.append("default 0.5: no out-of-fold positive")
        else:
            tuned_on.append(f"{len(folds)}-fold blocked cross-validation")
    kw = {} if state is None else {"checkpoint": state.head_checkpoint("final")}
    head, history = steps.fit_head(Xn, Y, config, n_classes=K, progress=progress, **kw)

    model_dir.mkdir(parents=True, exist_ok=True)
    save_weights(model_dir, head, mean, std, backbone)
    meta = {
        "format": "musicperf-workflow",
        "format_version": MODEL_FORMAT,
        "musicperf_version": __version__,
        "classes": classes,
        "taxonomy": tax.to_dict(),
        "thresholds": [float(t) for t in thresholds],
        "fps": fps,
        "clip_length": config.clip_length,
        "features": {
            "grid": {"kind": "motion-appearance-grid", "version": FEATURE_VERSION, "grid": config.grid},
            "backbone": None if backbone is None else {
                "name": config.backbone,
                "weights": config.backbone_weights,
                "config": backbone.config.to_dict(),
                "normalization": norm.to_dict() if norm is not None else None,
            },
            "n_features": int(X.shape[1]),
            "roi": list(roi),
            "frame": framefeatures.describe(config),
        },
        "head": head.config(),
        "config": config.to_dict(),
        "training": {
            "videos": [
                {"video": str(vs.video), "annotations": str(it.annotations), "samples": int(len(vs.starts)),
                 "resampled_from_fps": vs.resampled_from}
                for vs, it in zip(per_video, items)
            ],
            "until": until,
            "n_train": int(len(X)),
            "folds": len(folds),
            "n_out_of_fold_frames": int(len(oof_true)),
            "positives_train": {c: int(n) for c, n in zip(classes, (P > 0.5).sum(axis=0))},
            "final_loss": history[-1] if history else None,
            "validation": val_metrics,
            "thresholds_tuned_on": dict(zip(classes, tuned_on)),
            "seconds_features": round(t_features, 2),
            "seconds_total": round(time.perf_counter() - t0, 2),
        },
    }
    meta["model_id"] = hashlib.sha256((model_dir / MODEL_FILE).read_bytes()).hexdigest()[:16]
    save_meta(model_dir, meta)
    if state is not None:
        state.remove()
    return meta


def fit_head(X: np.ndarray, Y: np.ndarray, config: GestureConfig, *, n_classes: int, progress: bool = False,
             checkpoint: str | Path | None = None):
    """Train a :class:`~musicperf.models.SingleModelHead` on standardised clip features.

    Parameters
    ----------
    X : np.ndarray, shape (N, F), float32
        Standardised features.
    Y : np.ndarray, shape (N, K), float32
        Targets in [0, 1] (temporal-smoothing labels, Equation 6 of 001, by default).
    config : GestureConfig
    n_classes : int
    progress : bool
    checkpoint : str or Path, optional
        Per-epoch checkpoint; a run interrupted after epoch ``e`` resumes there and ends with
        the same weights as an uninterrupted one (:func:`musicperf.train.loop.run_epochs`).

    Returns
    -------
    head : SingleModelHead
        In eval mode.
    history : list of float
        Mean training loss per epoch.
    """
    import torch

    from musicperf.train.loop import one_torch_thread

    if len(X) == 0:
        raise ParameterError("no training clips: the annotated part is shorter than one clip plus the validation block")
    torch.manual_seed(config.seed)
    with one_torch_thread():
        return _fit_head(X, Y, config, n_classes=n_classes, progress=progress, checkpoint=checkpoint)


def _fit_head(X, Y, config, *, n_classes, progress, checkpoint=None):
    head = framefeatures.build_head(X.shape[1], n_classes, config)
    history = train_head(head, X, Y, config, progress=progress, checkpoint=checkpoint,
                         key=head_run_key(X, Y, config, n_classes) if checkpoint is not None else None)
    return head, history


def _drop_empty_classes(tax, per_video: list[VideoSamples]):
    """Classes found in the files but never present in the training part are not learnable:
    leave them out of the model (only when the classes come from the annotation files)."""
    present = np.concatenate([vs.present for vs in per_video]).sum(axis=0) > 0
    if present.all():
        return tax, per_video
    empty = [c for c, p in zip(tax.classes, present) if not p]
    keep = [k for k, p in enumerate(present) if p]
    if not keep:
        raise AnnotationError(
            "no annotation of any class lies in the training part of the videos"
            " (is --until too small, or are the annotation times in milliseconds?)"
        )
    log.warning("tier(s) %s have no annotation in the training part: they are not classes of the model",
                ", ".join(map(repr, empty)))
    kept = tuple(tax.classes[k] for k in keep)
    background = tax.background if tax.background in kept else None
    new = Taxonomy(kept, {c: c for c in kept}, background=background, by=tax.by, name=tax.name)
    out = [dataclasses.replace(vs, targets=vs.targets[:, keep], present=vs.present[:, keep],
                               frame_labels=vs.frame_labels[:, keep]) for vs in per_video]
    return new, out


def _frame_scores(vs: VideoSamples, local: np.ndarray, scores: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame labels and frame probabilities ``(n, K)`` of the contiguous clips ``local`` of a video."""
    first = int(vs.starts[local].min())
    n = int(vs.starts[local].max()) + length - first
    probs, covered = spread_to_frames(vs.starts[local], scores, length=length, first=first, n=n)
    lab = vs.frame_labels[first : first + n]
    covered = covered[: len(lab)]
    return lab[covered], probs[: len(lab)][covered]


def tune(present: np.ndarray, scores: np.ndarray, classes: list[str]) -> tuple[np.ndarray, dict]:
    """Per-class thresholds tuned on the validation clips, and the validation metrics."""
    k = len(classes)
    if len(present) == 0:
        return np.full(k, 0.5), {}
    thresholds = np.asarray(metrics.tune_thresholds(present, scores), dtype=float).reshape(k)
    report = metrics.multilabel_report(present, scores, classes=classes, threshold=thresholds)
    return thresholds, _jsonable(report)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x



@dataclass(frozen=True)
class TrainSteps:
    """The steps of :func:`train_model` a caller may replace (the extension points).

    Each default is the module function of the same name; the distributed trainer passes its
    own (:func:`musicperf.distributed.ddp.train_distributed`). Signatures:

    ``estimate_roi(videos, *, until) -> (top, bottom, left, right)``
    ``collect_samples(item, taxonomy, extractor, *, fps, until, stride, progress) -> VideoSamples``
    ``fit_head(X, Y, config, *, n_classes, progress) -> (head, history)``
    ``merged_taxonomy(annotation_sets, config, taxonomy) -> Taxonomy``
    """

    estimate_roi: Callable = clipmod.estimate_roi
    collect_samples: Callable = collect_samples
    fit_head: Callable = fit_head
    merged_taxonomy: Callable = merged_taxonomy
    #: Keep the progress in ``MODEL_DIR/.train-state`` and resume from it (see
    #: :mod:`musicperf.tasks.gestures.state`); ``fit_head`` then gets a ``checkpoint=`` path.
    resume: bool = True
