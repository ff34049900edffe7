"""Labelling videos with a gesture model: ``musicperf label`` from top to bottom.

:func:`label_videos` (the command, :func:`musicperf.api.label`) loads the model
(:func:`~.model.load_gesture_model`), finds the inputs (:func:`~musicperf.io.discover.discover`),
decides per video whether it is done, to redo or refused (:func:`plan`), and calls
:func:`label_video` for each one to do. :func:`label_video` reads the human annotations, gets
per-frame probabilities from :func:`predict_video` (clip features streamed by
:func:`~musicperf.features.clips.clip_features`, scored by the head, spread onto frames by
:func:`~musicperf.labels.spread.spread_to_frames`), turns them into intervals
(:func:`~musicperf.labels.intervals_from_frames`) and writes the ``.eaf``, the probability CSV
(:func:`~musicperf.io.probs.write_probs_csv`) and, last, the ``.labels.json`` summary that marks
the video complete.

Imports numpy and the standard library at module level; torch and PyAV inside the functions
it calls.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musicperf._util import check_output_location, write_text_atomic
from musicperf._version import __version__
from musicperf.errors import ParameterError
from musicperf.evaluate.agreement import AUTO_PREFIX
from musicperf.features.cache import cached
from musicperf.features.clipfeatures import FEATURE_VERSION
from musicperf.features.clips import clip_features, video_fps
from musicperf.io import read_annotations
from musicperf.io.annotations import AnnotationSet
from musicperf.io.discover import Item, discover
from musicperf.io.elan import add_prediction_tiers, write_eaf
from musicperf.io.probs import write_probs_csv
from musicperf.labels import intervals_from_frames
from musicperf.labels.spread import spread_to_frames
from musicperf.tasks import framefeatures
from musicperf.models import files
from musicperf.tasks.gestures.frame import LABELLER, FrameModel, label_frame_video, load_frame_model
from musicperf.tasks.gestures.model import GestureModel, load_gesture_model, predict_head
from musicperf.tasks.gestures.outputs import (
    WRITER,
    check_batch_outputs,
    file_sha256,
    fingerprint,
    first_labelled_frame,
    output_paths,
    plan,
)

log = logging.getLogger(__name__)

#: Clips per backbone call when labelling (see :func:`predict_video`).
BACKBONE_BATCH = 16
#: Video frame rates outside this range are not resampled to the model's (see :func:`predict_video`).
MIN_VIDEO_FPS, MAX_VIDEO_FPS = 1.0, 1000.0


# --------------------------------------------------------------------------- labelling
def predict_video(
    model: GestureModel,
    video: str | Path,
    *,
    after: float | None = None,
    progress: bool = False,
    feature_cache: str | Path | bool | None = None,
    batch: int | None = None,
) -> tuple[np.ndarray, int, dict]:
    """Per-frame class probabilities of a video, streamed clip by clip.

    Clips of ``clip_length`` frames start every ``label_stride`` frames on the model's frame
    grid (the video is resampled when its frame rate differs). A frame's probability is the
    mean over the clips that contain it; frames after the last complete clip take the last
    clip's probabilities. Only the ``(n_frames, K)`` probabilities are kept in memory.

    Parameters
    ----------
    model : GestureModel
    video : str or Path
    after : float, optional
        Only label from this time (seconds) on; earlier frames are not computed.
    progress : bool
    feature_cache : str, Path or bool, optional
        Folder of the clip-feature cache (True: :func:`musicperf.features.cache.default_cache_dir`).
        The clip features of a video are stored keyed by the video and by everything they
        depend on (:meth:`FeatureExtractor.identity`, frame grid, clip starts), not by the head:
        relabelling with a retrained head on the same features reads them instead of decoding
        the video again. None or False: no cache.
    batch : int, optional
        Clips per model call; default :data:`BACKBONE_BATCH` with a 3D-CNN backbone (larger
        batches are more efficient per clip on a CPU: batch 8 cost 1.5 times as much per clip
        as one batch of 38 in the same run; 16 keeps the peak memory of ResNet-34 labelling
        near 1 GB), 8 without.

    Returns
    -------
    probs : np.ndarray, shape (n, K), float32
        Probabilities of frames ``first, first + 1, ...`` on the frame grid (``info["fps"]``: the
        model's rate, or the video's own when it is under 1 or over 1000 fps).
    first : int
        Index of the first returned frame (0 unless ``after`` is given).
    info : dict
        ``video_fps``, ``fps`` (of the grid), ``resampled``, ``own_frames``, ``duration``,
        ``n_frames``, ``feature_cache_hit``.
    """
    cfg = model.extractor.config
    fps = model.fps
    vfps, duration = video_fps(Path(video))
    own_frames = 0 < vfps < MIN_VIDEO_FPS or vfps > MAX_VIDEO_FPS
    if own_frames:
        # Resampling to the model's rate would invent (or drop) frames by the thousand: a
        # 0.001 fps video of 3 frames would become 75,000 copies. Its own frames are labelled
        # instead, one grid frame each, and the times stay the video's.
        log.warning("'%s' runs at %g fps, outside %g-%g fps: labelled on its own frames (one clip = %d of them), "
                    "not resampled to the model's %g fps", video, vfps, MIN_VIDEO_FPS, MAX_VIDEO_FPS,
                    cfg.clip_length, fps)
        fps = vfps
    n_frames = int(math.floor(duration * fps + 1e-6))
    length, stride = cfg.clip_length, cfg.label_stride
    # clips start on the label stride's grid: the first one at or before --from
    first = first_labelled_frame(after, duration=duration, fps=fps, video=video) // stride * stride
    if own_frames and n_frames - first < length:
        raise ParameterError(f"'{video}' is too short to label: {n_frames - first} frames at {vfps:g} fps, a clip needs "
                             f"{length}")
    if n_frames - first < length:
        raise ParameterError(
            f"'{video}' is too short to label: {(n_frames - first) / fps:.2f} s from {first / fps:.2f} s, "
            f"a clip needs {length / fps:.2f} s"
        )
    resampled = abs(vfps - fps) > 1e-3
    if resampled and vfps > 0:
        log.warning("'%s' runs at %.3f fps but the model was trained at %.3f fps: frames are resampled to %.3f fps",
                    video, vfps, fps, fps)
    if batch is None:
        batch = BACKBONE_BATCH if model.extractor.backbone is not None else 8
    if batch < 1:
        raise ParameterError(f"batch must be a positive number of clips, got {batch}")

    framefeatures.check_inputs(cfg, [Path(video)])

    def compute():
        starts, feats = clip_features(model.extractor, Path(video), fps=fps, first=first, n_frames=n_frames,
                                      stride=stride, batch=batch, progress=progress)
        if len(starts):
            feats = framefeatures.clip_matrix(cfg, Path(video), starts, feats, fps=fps, progress=progress)
        return {"starts": starts, "features": feats}, {"video": str(video)}

    if feature_cache in (None, False):
        arrays, hit = compute()[0], False
    else:
        params = {"extractor": model.extractor.identity(), "fps": fps, "first": first, "n_frames": n_frames,
                  "stride": stride}
        if not framefeatures.is_default(cfg):
            params["frame_features"] = framefeatures.identity(cfg)
        arrays, _, hit = cached(Path(video), extractor="clipfeatures", version=str(FEATURE_VERSION), params=params,
                                compute=compute, cache_dir=None if feature_cache is True else feature_cache)
    all_starts, feats = arrays["starts"].astype(np.int64), arrays["features"].astype(np.float32)
    if not len(all_starts):
        raise ParameterError(f"no frame of '{video}' could be labelled (is the video shorter than announced?)")
    scores = predict_head(model.head, (feats - model.mean) / model.std)
    probs, covered = spread_to_frames(all_starts, scores, length=length, first=first, n=n_frames - first)
    last = np.flatnonzero(covered)[-1]
    probs[last + 1 :] = probs[last]  # tail shorter than a clip: hold the last clip's output
    info = {"video_fps": vfps, "fps": fps, "resampled": resampled, "own_frames": own_frames, "duration": duration,
            "n_frames": n_frames,
            "feature_cache_hit": hit}
    runner = model.extractor.runner
    if runner is not None and runner.choice is not None:
        info["backbone_mode"] = runner.choice.to_dict()
    return probs, first, info



def label_videos(
    videos: Sequence[str | Path] | str | Path,
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    after: float | None = None,
    overwrite: bool = False,
    progress: bool = False,
    feature_cache: str | Path | bool | None = None,
    compile: bool = False,
    queries: int = 5,
    numeric_mode: str | None = None,
) -> list[dict]:
    """Label videos with a trained model; one ``.eaf``, CSV and JSON per video in ``out_dir``.

    Parameters
    ----------
    videos : str, Path or sequence of them
        Videos, folders of videos, ``VIDEO=ANNOTATIONS`` pairs or a manifest (see
        :func:`discover`). A video's human annotations (the pair's, or a same-named ``.eaf``
        beside it) are copied untouched into the output ``.eaf``.
    model_dir : str or Path
        Written by :func:`train_model`.
    out_dir : str or Path
        Output folder (created).
    after : float, optional
        Predict intervals only from this time on (seconds), e.g. the end of the annotated part.
    overwrite : bool
        Redo videos already labelled by this model, and replace labellings by another model or
        ``--from``. Without it those are skipped (same model and inputs) or refused (another
        model). Videos whose inputs changed since (video, annotation file, the model retrained
        in the same folder) and half-written ones are redone either way. Files musicperf did
        not write, or that were edited since, are never replaced (see
        :mod:`musicperf.tasks.gestures.outputs`).
    progress : bool
    feature_cache : str, Path or bool, optional
        Clip-feature cache folder (see :func:`predict_video`); True for the default folder.
    compile : bool
        ``torch.compile`` the backbone (see :func:`~.model.load_gesture_model`).
    numeric_mode : {None, "auto", "fp32", "bf16", ...}, optional
        The backbone's numeric mode (see :func:`~.model.load_gesture_model`).
    queries : int
        With a frame-labeller model (:mod:`~.frame`): the stretches to annotate next written as
        the ``auto-query`` tier (0: none).

    Returns
    -------
    list of dict
        The JSON summary of each video (``"skipped": True`` for those already done, ``"redone"``:
        why for those labelled again).
    """
    out_dir = check_output_location(out_dir, kind="dir", what="output")
    model = load_any_model(model_dir, compile=compile, numeric_mode=numeric_mode)
    if not (isinstance(queries, int) and queries >= 0):
        raise ParameterError(f"queries must be a non-negative integer, got {queries!r}")
    items = discover(videos, need_annotations=False)
    check_batch_outputs(items, out_dir)
    # Every video's outputs are checked before any is computed: a human file refuses the batch
    # at once, not after hours of labelling.
    plans = [plan(output_paths(out_dir, it.video), video=it.video, annotations=it.annotations,
                  model_dir=model.path, model_id=model.model_id, after=after, overwrite=overwrite) for it in items]
    results = []
    for it, todo in zip(items, plans):
        if todo.action == "skip":
            log.info("'%s' is already labelled in '%s', skipping", it.video, out_dir)
            results.append(dict(todo.summary, skipped=True))
            continue
        if isinstance(model, FrameModel):
            summary = label_frame_video(model, it, out_dir, after=after, queries=queries, progress=progress)
        else:
            summary = label_video(model, it, out_dir, after=after, progress=progress, feature_cache=feature_cache)
        if todo.action == "redo":
            log.info("relabelled '%s': %s", it.video, todo.reason)
            summary = dict(summary, redone=todo.reason)  # in the returned summary, not in the file
        results.append(summary)
    return results


def load_any_model(model_dir: str | Path, *, compile: bool = False, numeric_mode: str | None = None):
    """A :class:`GestureModel` (clip head) or a :class:`~.frame.FrameModel`, as the folder says."""
    from musicperf.tasks.gestures.model import FORMAT, META_FILE

    meta = files.read_meta(model_dir, name=META_FILE, formats=(FORMAT,), what="labelling model",
                           hint=" (train one with 'musicperf train')")
    if meta.get("labeller", "clip") == LABELLER:
        return load_frame_model(model_dir, meta)
    return load_gesture_model(model_dir, compile=compile, numeric_mode=numeric_mode)


def label_video(model: GestureModel, item: Item, out_dir: Path, *, after: float | None = None,
                progress: bool = False, feature_cache: str | Path | bool | None = None) -> dict:
    """Label one video and write its ``.eaf``, CSV and JSON.

    The JSON sidecar is written first marked incomplete, then the CSV and the EAF, then the JSON
    again, complete, with their hashes and the fingerprints of the inputs (see
    :mod:`musicperf.tasks.gestures.outputs`). Paths in it are absolute, so the summary can be
    used (``musicperf report``) from any working directory.
    """
    t0 = time.perf_counter()
    cfg = model.extractor.config
    probs, first, info = predict_video(model, item.video, after=after, progress=progress, feature_cache=feature_cache)
    fps = info["fps"]
    start_time = first / fps
    ivs = intervals_from_frames(
        probs, fps=fps, threshold=model.thresholds, min_gap=cfg.min_gap, min_duration=cfg.min_duration,
        start_time=start_time,
    )

    human = read_annotations(item.annotations) if item.annotations is not None else None
    out, kept, replaced, unknown = human_base(human, item, knows=model.taxonomy.knows,
                                              by_tier=model.taxonomy.by == "tier")
    extra = {
        "thresholds": [float(t) for t in model.thresholds],
        "fps": fps,
        "video_fps": info["video_fps"],
        "resampled": info["resampled"],
        "duration": info["duration"],
        "n_frames": info["n_frames"],
        "feature_cache_hit": info["feature_cache_hit"],
        "backbone_mode": info.get("backbone_mode"),
        "labelled_from": start_time if after is None else max(after, start_time),
    }
    return write_outputs(model, item, out_dir, out=out, probs=probs, first=first, fps=fps, ivs=ivs, after=after,
                         kept=kept, replaced=replaced, unknown=unknown, extra=extra, t0=t0)


def human_base(human: AnnotationSet | None, item: Item, *, knows, by_tier: bool, also_replace: tuple = ()):
    """The document the predictions are added to: the human file (or a new one) without old predictions.

    Returns ``(out, kept, replaced, unknown)``: the set, the human tiers kept, the earlier
    predicted tiers removed (``auto: ...`` and ``also_replace``), and the top-level tiers that are
    not classes of the model (``knows(name)`` False; only when classes are tiers).
    """
    # The human file is written back whole (an EAF keeps its document: header, vocabularies,
    # unaligned slots...) with the predicted tiers added under a linguistic type of their own
    # whose controlled vocabulary is the model's classes.
    out = human if human is not None else AnnotationSet()
    kept, replaced, unknown = [], [], []
    if human is not None:
        for tier in list(human):
            if tier.name.startswith(AUTO_PREFIX) or tier.name in also_replace:
                replaced.append(tier.name)  # an earlier prediction, not human work
                del out.tiers[tier.name]
                continue
            kept.append(tier.name)
            if tier.parent is None and not knows(tier.name) and by_tier:
                unknown.append(tier.name)
        if unknown:
            log.warning("tier(s) %s of '%s' are not classes of the model; kept as they are, not predicted",
                        ", ".join(map(repr, unknown)), item.annotations)
        if replaced:
            log.warning("earlier predicted tier(s) %s in '%s' are replaced by this prediction",
                        ", ".join(map(repr, replaced)), item.annotations)
    return out, kept, replaced, unknown


def write_outputs(model, item: Item, out_dir: Path, *, out: AnnotationSet, probs: np.ndarray, first: int, fps: float,
                  ivs: list, after: float | None, kept: list, replaced: list, unknown: list, extra: dict,
                  extra_tiers: Sequence = (), t0: float) -> dict:
    """Write a video's ``.eaf`` (predicted tiers + ``extra_tiers``), probability CSV and ``.labels.json``.

    Shared by the clip and frame labellers: the JSON sidecar is written first marked incomplete,
    then the CSV and the EAF, then the JSON again, complete, with their hashes and the
    fingerprints of the inputs (see :mod:`musicperf.tasks.gestures.outputs`). ``extra`` adds
    the labeller's own fields to the summary.
    """
    classes = list(model.classes)
    if after is not None:
        ivs = [_clip_intervals(iv, after) for iv in ivs]
    paths = output_paths(Path(out_dir), item.video)
    inputs = {"video": fingerprint(item.video), "annotations": fingerprint(item.annotations),
              "model": {"path": str(Path(model.path).resolve()), "model_id": model.model_id}}
    add_prediction_tiers(out, {c: [(float(s), float(e)) for s, e in iv] for c, iv in zip(classes, ivs)},
                         classes=classes, prefix=AUTO_PREFIX)
    for tier in extra_tiers:
        out.add_tier(tier)

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    outputs = {k: str(v.resolve()) for k, v in paths.items()}
    write_text_atomic(paths["json"], json.dumps({"writer": WRITER, "complete": False, "video": inputs["video"]["path"],
                                                 "outputs": outputs}, indent=2))
    write_probs_csv(paths["csv"], probs, first=first, fps=fps, classes=classes)
    write_eaf(out, paths["eaf"], media=item.video)
    summary = {
        "writer": WRITER,
        "video": inputs["video"]["path"],
        "human_annotations": None if item.annotations is None else inputs["annotations"]["path"],
        "model": inputs["model"]["path"],
        "model_id": model.model_id,
        "classes": classes,
        "after": after,
        **extra,
        "human_tiers_kept": kept,
        "auto_tiers_replaced": replaced,
        "tiers_unknown_to_model": unknown,
        "predicted": {
            c: {"intervals": int(len(iv)), "seconds": round(float((iv[:, 1] - iv[:, 0]).sum()), 3) if len(iv) else 0.0}
            for c, iv in zip(classes, ivs)
        },
        "outputs": outputs,
        "written": {k: file_sha256(paths[k]) for k in ("eaf", "csv")},
        "inputs": inputs,
        "seconds": round(time.perf_counter() - t0, 2),
        "musicperf_version": __version__,
        "complete": True,
    }
    write_text_atomic(paths["json"], json.dumps(summary, indent=2))
    return summary


def _clip_intervals(iv: np.ndarray, after: float) -> np.ndarray:
    """Cut ``(n, 2)`` intervals so none starts before ``after`` seconds."""
    iv = iv[iv[:, 1] > after].copy()
    if len(iv):
        iv[:, 0] = np.maximum(iv[:, 0], after)
    return iv

