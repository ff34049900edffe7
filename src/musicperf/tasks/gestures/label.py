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

from musicperf._version import __version__
from musicperf._util import write_text_atomic
from musicperf.errors import ParameterError
from musicperf.evaluate.agreement import AUTO_PREFIX
from musicperf.features.clipfeatures import FEATURE_VERSION
from musicperf.features.clips import clip_features, video_fps
from musicperf.io import read_annotations
from musicperf.io.annotations import Annotation, AnnotationSet, Tier
from musicperf.io.discover import Item, discover
from musicperf.io.probs import write_probs_csv
from musicperf.labels.spread import spread_to_frames
from musicperf.tasks import framefeatures
from musicperf.tasks.gestures.model import GestureModel, load_gesture_model, predict_head

log = logging.getLogger(__name__)

#: Clips per backbone call when labelling (see :func:`predict_video`).
BACKBONE_BATCH = 16


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
        Probabilities of frames ``first, first + 1, ...`` on the model's grid (``fps``).
    first : int
        Index of the first returned frame (0 unless ``after`` is given).
    info : dict
        ``video_fps``, ``fps``, ``resampled``, ``duration``, ``n_frames``.
    """
    cfg = model.extractor.config
    fps = model.fps
    vfps, duration = video_fps(Path(video))
    n_frames = int(math.floor(duration * fps + 1e-6))
    length, stride = cfg.clip_length, cfg.label_stride
    first = 0
    if after is not None:
        if after < 0:
            raise ParameterError(f"--from must be >= 0 seconds, got {after}")
        if after >= duration:
            raise ParameterError(f"--from {after} s is beyond the end of '{video}' ({duration:.2f} s)")
        first = int(math.floor(after * fps + 1e-6)) // stride * stride
    if n_frames - first < length:
        raise ParameterError(
            f"'{video}' is too short to label: {(n_frames - first) / fps:.2f} s from {first / fps:.2f} s, "
            f"a clip needs {length / fps:.2f} s"
        )
    resampled = abs(vfps - fps) > 1e-3
    if resampled:
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
        from musicperf.features.cache import cached

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
    info = {"video_fps": vfps, "fps": fps, "resampled": resampled, "duration": duration, "n_frames": n_frames,
            "feature_cache_hit": hit}
    runner = model.extractor.runner
    if runner is not None and runner.choice is not None:
        info["backbone_mode"] = runner.choice.to_dict()
    return probs, first, info



def output_paths(out_dir: Path, video: Path) -> dict[str, Path]:
    """The three outputs of labelling ``video`` into ``out_dir``."""
    stem = video.stem
    return {
        "eaf": out_dir / f"{stem}.eaf",
        "csv": out_dir / f"{stem}.probs.csv",
        "json": out_dir / f"{stem}.labels.json",
    }


def _finished(paths: dict[str, Path], model: GestureModel, after: float | None) -> bool:
    """Whether a complete labelling by the same model (and ``after``) is already there."""
    if not all(p.is_file() for p in paths.values()):
        return False
    try:
        done = json.loads(paths["json"].read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    return done.get("model_id") == model.model_id and done.get("after") == after and done.get("complete") is True


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
        Redo videos whose outputs exist. Without it, videos already labelled by the same model
        (a complete JSON summary is there) are skipped, and other existing outputs are refused.
    progress : bool
    feature_cache : str, Path or bool, optional
        Clip-feature cache folder (see :func:`predict_video`); True for the default folder.
    compile : bool
        ``torch.compile`` the backbone (see :func:`~.model.load_gesture_model`).

    Returns
    -------
    list of dict
        The JSON summary of each video (``"skipped": True`` for those already done).
    """
    model = load_gesture_model(model_dir, compile=compile)
    items = discover(videos, need_annotations=False)
    out_dir = Path(out_dir)
    stems: dict[str, Path] = {}
    for it in items:
        if it.video.stem in stems:
            raise ParameterError(
                f"videos '{stems[it.video.stem]}' and '{it.video}' would write the same outputs in '{out_dir}' "
                "(same file name); label them into different folders"
            )
        stems[it.video.stem] = it.video
        paths = output_paths(out_dir, it.video)
        if it.annotations is not None and paths["eaf"].resolve() == it.annotations.resolve():
            raise ParameterError(
                f"the output '{paths['eaf']}' would replace the human annotations of '{it.video}'; "
                "choose another output folder"
            )
    results = []
    for it in items:
        paths = output_paths(out_dir, it.video)
        if not overwrite:
            if _finished(paths, model, after):
                log.info("'%s' is already labelled in '%s', skipping", it.video, out_dir)
                done = json.loads(paths["json"].read_text(encoding="utf-8"))
                done["skipped"] = True
                results.append(done)
                continue
            existing = [str(p) for p in paths.values() if p.exists()]
            if existing:
                raise ParameterError(
                    f"output {existing[0]} already exists and is not a finished labelling of '{it.video}' by this "
                    "model; pass --overwrite to replace it"
                )
        results.append(label_video(model, it, out_dir, after=after, progress=progress, feature_cache=feature_cache))
    return results


def label_video(model: GestureModel, item: Item, out_dir: Path, *, after: float | None = None,
                progress: bool = False, feature_cache: str | Path | bool | None = None) -> dict:
    """Label one video and write its ``.eaf``, CSV and JSON (the JSON last: it marks completion)."""
    from musicperf.io.elan import write_eaf
    from musicperf.labels import intervals_from_frames

    t0 = time.perf_counter()
    cfg = model.extractor.config
    paths = output_paths(Path(out_dir), item.video)
    human = read_annotations(item.annotations) if item.annotations is not None else None
    probs, first, info = predict_video(model, item.video, after=after, progress=progress, feature_cache=feature_cache)
    fps = model.fps
    start_time = first / fps
    ivs = intervals_from_frames(
        probs, fps=fps, threshold=model.thresholds, min_gap=cfg.min_gap, min_duration=cfg.min_duration,
        start_time=start_time,
    )
    if after is not None:
        ivs = [_clip_intervals(iv, after) for iv in ivs]

    out = AnnotationSet()
    kept, replaced, unknown = [], [], []
    if human is not None:
        out.media = list(human.media)
        out.vocabularies = dict(human.vocabularies)
        for tier in human:
            if tier.name.startswith(AUTO_PREFIX):
                replaced.append(tier.name)  # an earlier prediction, not human work
                continue
            out.add_tier(tier)
            kept.append(tier.name)
            if tier.parent is None and not model.taxonomy.knows(tier.name) and model.taxonomy.by == "tier":
                unknown.append(tier.name)
        if unknown:
            log.warning("tier(s) %s of '%s' are not classes of the model; kept as they are, not predicted",
                        ", ".join(map(repr, unknown)), item.annotations)
        if replaced:
            log.warning("earlier predicted tier(s) %s in '%s' are replaced by this prediction",
                        ", ".join(map(repr, replaced)), item.annotations)
    for c, iv in zip(model.classes, ivs):
        out.add_tier(Tier(AUTO_PREFIX + c, [Annotation(float(s), float(e), c) for s, e in iv], annotator="musicperf"))

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_probs_csv(paths["csv"], probs, first=first, fps=fps, classes=model.classes)
    write_eaf(out, paths["eaf"], media=item.video)
    summary = {
        "video": str(item.video),
        "human_annotations": None if item.annotations is None else str(item.annotations),
        "model": str(model.path),
        "model_id": model.model_id,
        "classes": model.classes,
        "thresholds": [float(t) for t in model.thresholds],
        "after": after,
        "fps": fps,
        "video_fps": info["video_fps"],
        "resampled": info["resampled"],
        "duration": info["duration"],
        "n_frames": info["n_frames"],
        "feature_cache_hit": info["feature_cache_hit"],
        "backbone_mode": info.get("backbone_mode"),
        "labelled_from": start_time if after is None else max(after, start_time),
        "human_tiers_kept": kept,
        "auto_tiers_replaced": replaced,
        "tiers_unknown_to_model": unknown,
        "predicted": {
            c: {"intervals": int(len(iv)), "seconds": round(float((iv[:, 1] - iv[:, 0]).sum()), 3) if len(iv) else 0.0}
            for c, iv in zip(model.classes, ivs)
        },
        "outputs": {k: str(v) for k, v in paths.items()},
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

