"""The gesture-labelling workflow: annotate part of a video, train, label the rest.

Paper 001 concludes that "one could annotate a part of the video and the rest of the annotation
could be automated, with corrections added by a human expert". This module wires the pieces of
musicperf into that path:

1. :func:`discover` finds ``(video, annotations)`` pairs from ``VIDEO=ANNOTATIONS`` strings,
   folders of videos with same-named ``.eaf`` files, or a YAML manifest.
2. :func:`train_model` streams 16-frame clips (Section 5.1 of 001) of the annotated part of each
   video (``until`` seconds), turns each clip into a feature vector (cheap motion/appearance
   statistics, optionally concatenated with features of a frozen 3D-ResNet backbone), trains a
   small multi-label head on them and tunes one threshold per class on a held-out block, then
   writes a self-describing model directory.
3. :func:`label_videos` streams every video through the model (memory stays flat: only the
   per-frame probabilities are kept, never the frames), spreads the per-clip probabilities onto
   frames, turns them into intervals (threshold, gap closing, minimum duration) and writes, per
   video, an ``.eaf`` (human tiers kept untouched, predicted tiers named ``auto: <class>``), a
   CSV of per-frame probabilities and a JSON summary, each atomically. Decoding runs in a
   background thread overlapping the feature computation, the 3D-CNN backbone runs in the
   numeric mode chosen online (:class:`musicperf.features.fastpath.BackboneRunner`), and with
   ``feature_cache`` the clip features are stored so a retrained head relabels without
   decoding again (README.md (section 'Performance')).

Choices where the papers are silent or do not fit a short annotated part (see README.md (section 'Label a performance')):

* training clips overlap (``train_stride`` 4 frames, the papers use none) because the annotated
  part of one video is short; labelling clips overlap by half (``label_stride`` 8) and the
  probability of a frame is the mean over the clips that contain it;
* the sample target is the temporal-smoothing label of Equation 6 of 001 and the loss MSE with
  Dynamic Batch Balance (Section 4.2 of 001);
* one threshold per class is tuned on out-of-fold predictions of a blocked cross-validation
  over the annotated part (contiguous blocks of time: neighbouring overlapping clips would leak
  into a random split), then the head is trained on all annotated clips.

Imports numpy and the standard library at module level; torch, PyAV and PyYAML are imported
inside the functions that need them.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicperf import __version__
from musicperf._util import atomic_path, write_text_atomic
from musicperf.errors import AnnotationError, ModelError, ParameterError
from musicperf.evaluate.agreement import AUTO_PREFIX
from musicperf.io.annotations import Annotation, AnnotationSet, Tier
from musicperf.tasks.clipfeatures import FEATURE_VERSION, grid_features, n_grid_features

log = logging.getLogger(__name__)

#: Version of the model directory layout written by :func:`train_model`; bumped on any change
#: that an older or newer musicperf could not read.
MODEL_FORMAT = 1
MODEL_FILE = "head.safetensors"
BACKBONE_FILE = "backbone.safetensors"
META_FILE = "workflow.json"

#: Clips per backbone call when labelling (see :func:`predict_video`).
BACKBONE_BATCH = 16

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
ANNOTATION_SUFFIXES = (".eaf", ".textgrid", ".txt", ".csv", ".tsv")


# --------------------------------------------------------------------------- data discovery
@dataclass(frozen=True)
class Item:
    """One video and, when known, its annotation file."""

    video: Path
    annotations: Path | None = None


def discover(data: Sequence[str | Path] | str | Path, *, need_annotations: bool = True) -> list[Item]:
    """Find ``(video, annotations)`` pairs.

    Parameters
    ----------
    data : str, Path or sequence of them
        Each entry is one of

        * ``VIDEO=ANNOTATIONS`` (an explicit pair);
        * a folder: every video in it (``.mp4``, ``.avi``, ``.mov``, ...) with the annotation
          file of the same stem (``.eaf`` first, then ``.TextGrid``, tab-delimited ``.txt``);
        * a YAML manifest (``.yaml``/``.yml``): a list of ``{video: ..., annotations: ...}``
          mappings or ``VIDEO=ANNOTATIONS`` strings, or a mapping with such a list under
          ``videos``; relative paths are relative to the manifest;
        * a single video file (its same-stem annotation file is used when present).
    need_annotations : bool
        Raise :class:`AnnotationError` when a video has no annotation file (training), or
        accept it with ``annotations=None`` (labelling).

    Returns
    -------
    list of Item
        In the order given; folders in sorted file-name order.
    """
    if isinstance(data, (str, Path)):
        data = [data]
    items: list[Item] = []
    for entry in data:
        items.extend(_discover_one(str(entry), need_annotations=need_annotations))
    if not items:
        raise ParameterError(f"no videos found in {', '.join(map(str, data)) or 'the arguments'}")
    seen: set[Path] = set()
    for it in items:
        if not it.video.is_file():
            raise ParameterError(f"video '{it.video}' does not exist")
        if it.annotations is not None and not it.annotations.is_file():
            raise AnnotationError(f"annotation file '{it.annotations}' for video '{it.video}' does not exist")
        key = it.video.resolve()
        if key in seen:
            raise ParameterError(f"video '{it.video}' is listed twice")
        seen.add(key)
    return items


def _discover_one(entry: str, *, need_annotations: bool) -> list[Item]:
    path = Path(entry)
    if "=" in entry and not path.exists():
        # Split at the first '=' whose left side is an existing file (paths may contain '=').
        for i, ch in enumerate(entry):
            if ch == "=" and Path(entry[:i]).is_file():
                return [Item(Path(entry[:i]), Path(entry[i + 1 :]))]
        left, _, right = entry.partition("=")
        raise ParameterError(f"video '{left}' of the pair '{entry}' does not exist")
    if path.is_dir():
        videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        out = []
        for v in videos:
            ann = companion_annotations(v)
            if ann is None and need_annotations:
                log.warning("skipping '%s': no annotation file with the same name beside it", v)
                continue
            out.append(Item(v, ann))
        if not out:
            what = "videos with same-named annotation files" if need_annotations else "videos"
            raise ParameterError(f"no {what} found in folder '{path}'")
        return out
    if path.suffix.lower() in (".yaml", ".yml"):
        return _read_manifest(path, need_annotations=need_annotations)
    if path.suffix.lower() in VIDEO_SUFFIXES or path.is_file():
        if not path.is_file():
            raise ParameterError(f"video '{path}' does not exist")
        ann = companion_annotations(path)
        if ann is None and need_annotations:
            raise AnnotationError(
                f"no annotation file for video '{path}': give VIDEO=ANNOTATIONS or put '{path.stem}.eaf' beside it"
            )
        return [Item(path, ann)]
    raise ParameterError(f"'{entry}' is neither a video, a folder, a YAML manifest nor a VIDEO=ANNOTATIONS pair")


def companion_annotations(video: Path) -> Path | None:
    """The annotation file beside ``video`` with the same stem (``.eaf`` preferred), or None."""
    for suffix in (".eaf", ".EAF", ".TextGrid", ".textgrid"):
        p = video.with_suffix(suffix)
        if p.is_file():
            return p
    return None


def _read_manifest(path: Path, *, need_annotations: bool) -> list[Item]:
    from musicperf.errors import require

    yaml = require("yaml", purpose="YAML manifests")
    if not path.is_file():
        raise ParameterError(f"manifest '{path}' does not exist")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParameterError(f"manifest '{path}' is not valid YAML: {str(exc).splitlines()[0]}") from None
    if isinstance(doc, dict):
        doc = doc.get("videos", doc.get("items"))
    if not isinstance(doc, list):
        raise ParameterError(f"manifest '{path}' must be a list of {{video, annotations}} entries (or have one under 'videos')")
    base = path.parent
    items = []
    for k, e in enumerate(doc):
        if isinstance(e, str):
            video, _, ann = e.partition("=")
        elif isinstance(e, dict) and "video" in e:
            video, ann = str(e["video"]), str(e.get("annotations") or e.get("eaf") or "")
        else:
            raise ParameterError(f"entry {k + 1} of manifest '{path}' needs a 'video' key, got {e!r}")
        v = (base / video) if not Path(video).is_absolute() else Path(video)
        a = ((base / ann) if not Path(ann).is_absolute() else Path(ann)) if ann else companion_annotations(v)
        if a is None and need_annotations:
            raise AnnotationError(f"entry {k + 1} of manifest '{path}' gives no annotations for '{v}'")
        items.append(Item(v, a))
    return items


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class WorkflowConfig:
    """Everything that decides how a gesture model is trained and how it labels.

    Attributes
    ----------
    clip_length : int
        Frames per sample (16 in the papers: 0.64 s at 25 fps).
    train_stride, label_stride : int
        Frames between the starts of consecutive clips when training and when labelling.
    size : (int, int)
        ``(height, width)`` the frames are resized to (the papers use 112 x 112 for the
        3D-ResNet; the default 96 x 128 keeps the 4:3 shape of most videos for the grid).
    grid : int
        Cells per side of the motion/appearance grid (:mod:`musicperf.tasks.clipfeatures`).
    roi : {"auto", "full"}
        Compute the features on the region where things move in the training videos
        (:func:`estimate_roi`), or on the whole picture.
    backbone : str
        ``"none"`` (grid features only) or a 3D-ResNet name (``"resnet34"`` is the papers')
        whose frozen pooled features are appended.
    backbone_weights : str or None
        Checkpoint for the backbone (e.g. Hara et al.'s Kinetics ResNet-34); random weights
        when None.
    target : {"ts", "any"}
        Sample target: temporal smoothing (Equation 6 of 001) or "any frame present".
    loss : {"dbb", "mse", "bce"}
        Training loss: MSE with Dynamic Batch Balance (Section 4.2 of 001), plain MSE, or BCE.
    hidden : tuple of int
        Hidden layer widths of the head.
    dropout, epochs, batch_size, lr, weight_decay, seed
        Head training.
    folds : int
        Blocks of blocked cross-validation used to tune the thresholds (see :func:`train_model`).
    min_gap, min_duration : float
        Seconds: predicted intervals closer than ``min_gap`` are merged, shorter than
        ``min_duration`` dropped.
    classes_by : {"tier", "value"}
        Classes from tier names or from annotation values (when no taxonomy file is given).
    background : str or None
        Name of a derived background class ("Normal play") to add, or None.
    frame_features : {"grid", "landmarks", "grid+landmarks"}
        Visual features of a clip: the grid statistics (+ backbone), a window of the 32
        landmark gesture features read by a temporal model, or both fused
        (:mod:`musicperf.tasks.framefeatures`).
    temporal : {"tcn", "gru"}
        Temporal model over the landmark window.
    modalities : tuple of {"video", "audio"}
        ``("video",)``, ``("audio",)`` or ``("video", "audio")``: audio adds the timbral
        features of 001 (Section 4.4) of each clip's segment.
    landmark_source : {"detector", "truth"}
        MediaPipe landmarks, or (tests and experiments on synthetic videos only) the
        ``truth.json`` beside the video with detector-like noise.
    landmark_every : int
        MediaPipe runs on every ``landmark_every``-th frame and the frames in between are
        interpolated (:func:`musicperf.features.landmarks.extract_landmarks`); 1: every frame.
        2 halves the landmark time; what it costs is measured in README.md (section
        'Performance').
    """

    clip_length: int = 16
    train_stride: int = 4
    label_stride: int = 8
    size: tuple[int, int] = (96, 128)
    grid: int = 12
    roi: str = "auto"
    backbone: str = "none"
    backbone_weights: str | None = None
    target: str = "ts"
    loss: str = "dbb"
    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.2
    epochs: int = 80
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    folds: int = 4
    min_gap: float = 0.2
    min_duration: float = 0.24
    classes_by: str = "tier"
    background: str | None = None
    frame_features: str = "grid"
    temporal: str = "tcn"
    modalities: tuple[str, ...] = ("video",)
    landmark_source: str = "detector"
    landmark_every: int = 1

    def __post_init__(self) -> None:
        from musicperf.tasks import framefeatures

        object.__setattr__(self, "modalities", framefeatures.parse_modalities(self.modalities))
        framefeatures.validate(self)
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.clip_length < 2:
            raise ParameterError(f"clip_length must be at least 2 frames, got {self.clip_length}")
        for name in ("train_stride", "label_stride", "epochs", "batch_size", "grid", "landmark_every"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.label_stride > self.clip_length:
            raise ParameterError(f"label_stride {self.label_stride} exceeds clip_length {self.clip_length}: frames would go unlabelled")
        if len(self.size) != 2 or min(self.size) < self.grid:
            raise ParameterError(f"size must be (height, width) of at least {self.grid} pixels, got {self.size}")
        if self.roi not in ("auto", "full"):
            raise ParameterError(f"roi must be 'auto' or 'full', got {self.roi!r}")
        if self.target not in ("ts", "any"):
            raise ParameterError(f"target must be 'ts' or 'any', got {self.target!r}")
        if self.loss not in ("dbb", "mse", "bce"):
            raise ParameterError(f"loss must be 'dbb', 'mse' or 'bce', got {self.loss!r}")
        if self.classes_by not in ("tier", "value"):
            raise ParameterError(f"classes_by must be 'tier' or 'value', got {self.classes_by!r}")
        if not 2 <= int(self.folds) <= 20:
            raise ParameterError(f"folds must be between 2 and 20, got {self.folds}")
        if self.min_gap < 0 or self.min_duration < 0:
            raise ParameterError("min_gap and min_duration must be non-negative seconds")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        d["hidden"] = list(self.hidden)
        d["modalities"] = list(self.modalities)
        return d

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "the configuration") -> WorkflowConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ParameterError(f"unknown setting(s) {', '.join(unknown)} in {where}; known: {', '.join(sorted(known))}")
        try:
            return cls(**d)
        except TypeError as exc:
            raise ParameterError(f"bad value in {where}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> WorkflowConfig:
        """Read a YAML mapping of the attributes above (unknown keys are an error)."""
        from musicperf.errors import require

        yaml = require("yaml", purpose="configuration files")
        path = Path(path)
        if not path.is_file():
            raise ParameterError(f"configuration file '{path}' does not exist")
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ParameterError(f"configuration file '{path}' is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(doc, dict):
            raise ParameterError(f"configuration file '{path}' must hold a mapping of settings")
        return cls.from_dict(doc, where=f"'{path}'")


# --------------------------------------------------------------------------- video streaming
def video_fps(video: Path) -> tuple[float, float]:
    """``(fps, duration in seconds)`` of a video, from :func:`musicperf.io.video.probe`."""
    from musicperf.io.video import probe

    info = probe(video)
    return float(info.fps), float(info.duration)


def iter_clips(
    video: Path,
    *,
    fps: float,
    size: tuple[int, int],
    length: int,
    stride: int,
    start: float = 0.0,
    end: float | None = None,
    batch: int = 8,
    decode: str = "auto",
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream clips of a video on a frame grid of ``fps`` frames per second, in batches.

    Frames are decoded once, in order, with threads, by
    :func:`musicperf.features.fastpath.decode_frames` (the timestamps of
    :class:`musicperf.io.video.VideoReader`, resizing on the YUV planes). When the
    video's frame rate differs from ``fps`` (the model's) the frames are resampled: grid frame
    ``i`` (time ``i / fps``) is the last video frame shown at that time (sample-and-hold), so a
    clip always spans ``length / fps`` seconds as in training. At equal rates every video frame
    is used once. Only about ``length + stride`` frames are held at any time, so memory does
    not grow with the video's duration.

    Parameters
    ----------
    video : Path
    fps : float
        Frame rate of the clips (the model's), frames per second.
    size : (int, int)
        ``(height, width)`` of the frames.
    length, stride : int
        Frames per clip and between clip starts, on the ``fps`` grid.
    start, end : float
        Only clips lying entirely inside ``[start, end)`` seconds (``end`` None: to the end).
    batch : int
        Clips per yielded batch.
    decode : {"auto", "opencv", "pyav"}
        How frames are converted to RGB (see :func:`~musicperf.features.fastpath.decode_frames`).

    Yields
    ------
    starts : np.ndarray, shape (B,), int64
        First frame index of each clip on the ``fps`` grid.
    clips : np.ndarray, shape (B, length, H, W, 3), uint8
    """
    from musicperf.features.fastpath import decode_frames

    eps = 1e-6
    first = max(0, int(math.ceil(start * fps - eps)))
    if first % stride:
        first += stride - first % stride
    stop = None if end is None else int(math.floor(end * fps + eps))  # exclusive grid bound
    starts_buf: list[int] = []
    clips_buf: list[np.ndarray] = []
    window: list[np.ndarray] = []  # grid frames window_start, window_start + 1, ...
    state = {"window_start": 0, "next_clip": first}

    def push(frame: np.ndarray):
        window.append(frame)
        while state["next_clip"] + length <= state["window_start"] + len(window):
            if stop is not None and state["next_clip"] + length > stop:
                return
            a = state["next_clip"] - state["window_start"]
            starts_buf.append(state["next_clip"])
            clips_buf.append(np.stack(window[a : a + length]))
            state["next_clip"] += stride
        drop = min(len(window), max(0, state["next_clip"] - state["window_start"]))
        if drop:
            del window[:drop]
            state["window_start"] += drop

    def flush():
        out = (np.asarray(starts_buf, dtype=np.int64), np.stack(clips_buf))
        starts_buf.clear()
        clips_buf.clear()
        return out

    def done() -> bool:
        return stop is not None and state["next_clip"] + length > stop

    prev = None
    last_t = 0.0
    seek = max(0.0, first / fps - 1.0)  # a little before the first clip: sample-and-hold needs it
    grid = int(math.floor(seek * fps + eps))  # next grid frame to fill
    state["window_start"] = grid
    video_rate = video_fps(Path(video))[0] or fps
    period = 1.0 / video_rate
    for t, frame in decode_frames(video, size=size, start=seek, method=decode):
        # Grid frames shown before this video frame repeat the previous video frame.
        while prev is not None and grid / fps < t - eps:
            push(prev)
            grid += 1
            if len(clips_buf) >= batch:
                yield flush()
            if done():
                break
        if done():
            break
        if prev is None:
            # Grid frames before the first decoded frame (start offset) take that frame.
            while grid / fps < t - eps:
                push(frame)
                grid += 1
        prev = frame
        last_t = t
    else:
        # After the last video frame: grid frames until its display ends.
        if prev is not None:
            while grid / fps < last_t + period - eps and not done():
                push(prev)
                grid += 1
                if len(clips_buf) >= batch:
                    yield flush()
    if clips_buf:
        yield flush()


# --------------------------------------------------------------------------- features
class FeatureExtractor:
    """Turns batches of clips into feature vectors: grid statistics, optionally + a backbone.

    Parameters
    ----------
    config : WorkflowConfig
    backbone : torch.nn.Module or None
        A frozen :class:`~musicperf.models.ResNet3D` whose pooled features are appended.
    normalization : Normalization or None
        Input normalisation of the backbone.
    roi : (float, float, float, float)
        ``(top, bottom, left, right)`` in [0, 1]: the part of the picture the features describe.
    backbone_mode : {"auto", "fp32", "fp32-cl3d", "bf16-cl3d"}
        Numeric mode of the backbone (:class:`musicperf.features.fastpath.BackboneRunner`):
        ``"auto"`` times the modes on the first batch and takes the fastest whose features are
        within :data:`~musicperf.features.fastpath.BF16_TOLERANCE` of fp32's. The head was
        trained on features of whichever mode the training machine chose; the modes agree to
        that tolerance, far inside the spread the features are standardised by.
    compile : bool
        ``torch.compile`` the backbone (slow to start; pays off on hours of video).
    """

    def __init__(self, config: WorkflowConfig, backbone=None, normalization=None,
                 roi: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0), *,
                 backbone_mode: str = "auto", compile: bool = False):
        self.config = config
        self.backbone = backbone
        self.normalization = normalization
        self.roi = tuple(float(v) for v in roi)
        self.backbone_mode = backbone_mode
        self.compile = bool(compile)
        self._runner = None

    @property
    def runner(self):
        """The :class:`~musicperf.features.fastpath.BackboneRunner` of the backbone (None without one)."""
        if self.backbone is None:
            return None
        if self._runner is None:
            from musicperf.features.fastpath import BackboneRunner

            self._runner = BackboneRunner(self.backbone, self.normalization, mode=self.backbone_mode,
                                          compile=self.compile)
        return self._runner

    def identity(self) -> dict:
        """What the features depend on (JSON-able): keys the feature cache."""
        d = {"version": FEATURE_VERSION, "grid": self.config.grid, "size": list(self.config.size),
             "roi": list(self.roi), "decode_size": list(self.decode_size), "clip_length": self.config.clip_length,
             "backbone": None}
        if self.backbone is not None:
            d["backbone"] = {"config": self.backbone.config.to_dict(), "weights": _weights_hash(self.backbone),
                             "normalization": None if self.normalization is None else self.normalization.to_dict()}
        return d

    @property
    def decode_size(self) -> tuple[int, int]:
        """``(height, width)`` to decode frames at so that the region of interest is ``config.size``."""
        y0, y1, x0, x1 = self.roi
        h, w = self.config.size
        return (max(2, int(round(h / (y1 - y0)))), max(2, int(round(w / (x1 - x0)))))

    @property
    def n_features(self) -> int:
        n = n_grid_features(self.config.grid)
        if self.backbone is not None:
            n += int(self.backbone.config.widths[-1] * (4 if self.backbone.config.depth >= 50 else 1))
        return n

    def crop(self, clips: np.ndarray) -> np.ndarray:
        """The region of interest of clips ``(B, T, H, W, 3)`` decoded at :attr:`decode_size`."""
        y0, y1, x0, x1 = self.roi
        H, W = clips.shape[2:4]
        h, w = self.config.size
        top, left = int(round(y0 * H)), int(round(x0 * W))
        return clips[:, :, top : top + h, left : left + w]

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        """``(B, T, H, W, 3)`` uint8 clips (at :attr:`decode_size`) -> ``(B, F)`` float32 features."""
        clips = self.crop(clips)
        feats = [grid_features(clips, grid=self.config.grid)]
        if self.backbone is not None:
            feats.append(self.runner(clips))
        return np.concatenate(feats, axis=1)


def _weights_hash(net) -> str:
    """16 hex digits identifying a network's weights and buffers (cached per object)."""
    cached = getattr(net, "_musicperf_weights_hash", None)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    digest = h.hexdigest()[:16]
    try:
        net._musicperf_weights_hash = digest
    except AttributeError:  # pragma: no cover - modules accept attributes
        pass
    return digest


def estimate_roi(videos: Sequence[Path], *, until: float | None, size: tuple[int, int] = (96, 128),
                 step: int = 2, margin: float = 0.08, min_fraction: float = 0.35) -> tuple[float, float, float, float]:
    """The part of the picture where things move: ``(top, bottom, left, right)`` in [0, 1].

    The mean absolute difference between frames ``step`` apart is accumulated per pixel over
    the training part of every video; the region is the bounding box of the pixels whose
    motion exceeds a quarter of the 99th percentile, widened by ``margin`` on each side and to
    at least ``min_fraction`` of each dimension. A fixed camera filming a performer (the
    papers' setting) puts the performer there; the features then describe the performer at a
    finer grain than the whole picture would.

    Parameters
    ----------
    videos : sequence of Path
    until : float or None
        Seconds of each video to look at.
    size : (int, int)
        ``(height, width)`` of the motion map.
    """
    from musicperf.io.video import VideoReader

    acc = np.zeros(size, dtype=np.float64)
    n = 0
    for video in videos:
        prev = None
        with VideoReader(video, size=size) as reader:
            for i, (t, frame) in enumerate(reader.frames(0.0, until)):
                if i % step:
                    continue
                grey = frame.astype(np.float32).mean(axis=-1)
                if prev is not None:
                    acc += np.abs(grey - prev)
                    n += 1
                prev = grey
    if n == 0:
        return (0.0, 1.0, 0.0, 1.0)
    motion = acc / n
    level = np.percentile(motion, 99)
    if level <= 0:
        return (0.0, 1.0, 0.0, 1.0)
    ys, xs = np.nonzero(motion > 0.25 * level)
    box = []
    for lo, hi, length in ((ys.min(), ys.max() + 1, size[0]), (xs.min(), xs.max() + 1, size[1])):
        a, b = lo / length - margin, hi / length + margin
        if b - a < min_fraction:
            mid = (a + b) / 2
            a, b = mid - min_fraction / 2, mid + min_fraction / 2
        a, b = max(0.0, a), min(1.0, b)
        box += [round(float(a), 4), round(float(b), 4)]
    return tuple(box)


def _make_backbone(config: WorkflowConfig):
    """Build the frozen backbone the config asks for: ``(model or None, normalization or None)``."""
    if config.backbone == "none":
        return None, None
    import torch

    from musicperf.models import build_backbone, get_normalization, load_video_backbone

    if config.backbone_weights:
        net = load_video_backbone(config.backbone_weights, keep_head=False)
        norm = net.normalization
    else:
        torch.manual_seed(config.seed)
        net = build_backbone(config.backbone, n_classes=0)
        norm = get_normalization("hara2018")
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, norm


# --------------------------------------------------------------------------- training
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


def _progress(iterable, *, total=None, desc="", enabled=False, unit="clip"):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)


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
    from musicperf.io import read_annotations
    from musicperf.labels import frame_labels, sample_labels

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
    starts, feats = [], []
    total = max(0, (int(end * fps) - cfg.clip_length) // stride + 1)
    from musicperf.features.fastpath import prefetch

    # Decoding runs in a background thread, overlapping the feature computation.
    batches = prefetch(iter_clips(item.video, fps=fps, size=extractor.decode_size, length=cfg.clip_length,
                                  stride=stride, end=end), depth=2)
    bar = _progress(None, total=total, desc=f"features {item.video.name}", enabled=progress)
    for s, clips in batches:
        s = s[s + cfg.clip_length <= n_frames]
        clips = clips[: len(s)]
        if not len(s):
            continue
        starts.append(s)
        feats.append(extractor(clips))
        if progress:
            bar.update(len(s))
    if progress:
        bar.close()
    if not starts:
        raise ParameterError(
            f"no complete {cfg.clip_length}-frame clip in the first {end:.2f} s of '{item.video}'"
            + (" (is --until too small?)" if until is not None else "")
        )
    starts = np.concatenate(starts)
    from musicperf.tasks.framefeatures import clip_matrix

    return VideoSamples(
        video=item.video,
        starts=starts,
        features=clip_matrix(cfg, item.video, starts, np.concatenate(feats), fps=fps, progress=progress),
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
    two clip lengths use fewer.

    Returns
    -------
    list of (train, val)
        Indices into the concatenated clips of ``per_video``.
    """
    out: list[tuple[list, list]] = [([], []) for _ in range(folds)]
    offset = 0
    for vs in per_video:
        st = vs.starts
        n = len(st)
        span = (int(st[-1]) + length - int(st[0])) if n else 0
        k_here = max(1, min(folds, span // (2 * length)))
        edges = np.linspace(int(st[0]) if n else 0, int(st[-1]) + length if n else 0, k_here + 1)
        for k in range(folds):
            if k >= k_here or k_here == 1:
                out[k][0].append(offset + np.arange(n))
                continue
            lo, hi = edges[k], edges[k + 1]
            val = (st >= lo) & (st + length <= hi + 1e-9)
            train = (st + length <= lo + 1e-9) | (st >= hi - 1e-9)
            out[k][0].append(offset + np.flatnonzero(train))
            out[k][1].append(offset + np.flatnonzero(val))
        offset += n
    folds_out = []
    for tr, va in out:
        tr = np.concatenate(tr) if tr else np.zeros(0, np.int64)
        va = np.concatenate(va) if va else np.zeros(0, np.int64)
        if len(va) and len(tr):
            folds_out.append((tr, va))
    return folds_out


def _merged_taxonomy(asets: list[AnnotationSet], config: WorkflowConfig, taxonomy):
    """The taxonomy to train with: given (object, YAML path or built-in name) or from the files."""
    from musicperf.labels import Taxonomy

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
        if path.is_dir() and not any(path.iterdir()):
            return
        raise ParameterError(f"{what} '{path}' already exists; choose another path or pass --overwrite")


def train_model(
    data: Sequence[str | Path] | str | Path,
    model_dir: str | Path,
    *,
    until: float | None = None,
    config: WorkflowConfig | str | Path | None = None,
    taxonomy=None,
    overwrite: bool = False,
    progress: bool = False,
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
    config : WorkflowConfig, str or Path, optional
        Settings, or a YAML file of them; defaults to :class:`WorkflowConfig()`.
    taxonomy : Taxonomy, str or Path, optional
        Classes: a :class:`~musicperf.labels.Taxonomy`, a built-in name (``"gestures18"``,
        ``"superclasses7"``) or a YAML mapping file; default: one class per tier name (or
        annotation value, ``config.classes_by``) found in the annotation files.
    overwrite : bool
    progress : bool
        Show progress bars on stderr.

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
        config = WorkflowConfig()
    elif not isinstance(config, WorkflowConfig):
        config = WorkflowConfig.from_yaml(config)
    model_dir = Path(model_dir)
    _check_output_dir(model_dir, overwrite=overwrite, what="model directory")
    items = discover(data, need_annotations=True)
    from musicperf.tasks.framefeatures import check_inputs, describe

    check_inputs(config, [it.video for it in items])
    asets = [read_annotations(it.annotations) for it in items]
    tax = _merged_taxonomy(asets, config, taxonomy)
    classes = list(tax.classes)
    fps = video_fps(items[0].video)[0]

    torch.manual_seed(config.seed)
    backbone, norm = _make_backbone(config)
    roi = (0.0, 1.0, 0.0, 1.0)
    if config.roi == "auto":
        roi = estimate_roi([it.video for it in items], until=until)
        log.info("region of interest (top, bottom, left, right): %s", roi)
    extractor = FeatureExtractor(config, backbone, norm, roi=roi)
    per_video = []
    for it in items:
        per_video.append(
            collect_samples(it, tax, extractor, fps=fps, until=until, stride=config.train_stride, progress=progress)
        )
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
        fold_head, _ = fit_head(Xn[tr], Y[tr], config, n_classes=K, progress=False)
        for v, vs in enumerate(per_video):
            local = va[(va >= offsets[v]) & (va < offsets[v + 1])] - offsets[v]
            if len(local):
                lab, probs = _frame_scores(vs, local, predict_head(fold_head, Xn[offsets[v] + local]),
                                           config.clip_length)
                oof_true.append(lab)
                oof_score.append(probs)
        if progress:
            log.info("cross-validation fold %d/%d done", k + 1, len(folds))
    oof_true = np.concatenate(oof_true) if oof_true else np.zeros((0, K), np.float32)
    oof_score = np.concatenate(oof_score) if oof_score else np.zeros((0, K), np.float32)
    thresholds, val_metrics = _tune(oof_true, oof_score, classes)
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
    head, history = fit_head(Xn, Y, config, n_classes=K, progress=progress)

    model_dir.mkdir(parents=True, exist_ok=True)
    _save(model_dir, head, mean, std, backbone)
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
            "frame": describe(config),
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
    write_text_atomic(model_dir / META_FILE, json.dumps(meta, indent=2))
    return meta


def fit_head(X: np.ndarray, Y: np.ndarray, config: WorkflowConfig, *, n_classes: int, progress: bool = False):
    """Train a :class:`~musicperf.models.SingleModelHead` on standardised clip features.

    Parameters
    ----------
    X : np.ndarray, shape (N, F), float32
        Standardised features.
    Y : np.ndarray, shape (N, K), float32
        Targets in [0, 1] (temporal-smoothing labels, Equation 6 of 001, by default).
    config : WorkflowConfig
    n_classes : int

    Returns
    -------
    head : SingleModelHead
        In eval mode.
    history : list of float
        Mean training loss per epoch.
    """
    import torch

    if len(X) == 0:
        raise ParameterError("no training clips: the annotated part is shorter than one clip plus the validation block")
    torch.manual_seed(config.seed)
    threads = torch.get_num_threads()
    # A head this small trains faster on one thread than with the overhead of several.
    torch.set_num_threads(1)
    try:
        return _fit_head(X, Y, config, n_classes=n_classes, progress=progress)
    finally:
        torch.set_num_threads(threads)


def _fit_head(X, Y, config, *, n_classes, progress):
    import torch

    from musicperf.tasks.framefeatures import build_head

    head = build_head(X.shape[1], n_classes, config)
    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = _loss_function(config.loss)
    xt, yt = torch.from_numpy(X), torch.from_numpy(np.asarray(Y, dtype=np.float32))
    gen = torch.Generator().manual_seed(config.seed)
    history = []
    epochs = _progress(range(config.epochs), total=config.epochs, desc="training", enabled=progress, unit="epoch")
    head.train()
    for _ in epochs:
        order = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for b in range(0, len(order), config.batch_size):
            idx = order[b : b + config.batch_size]
            opt.zero_grad()
            loss = loss_fn(head(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / len(xt))
    head.eval()
    return head, history


def predict_head(head, X: np.ndarray) -> np.ndarray:
    """Sigmoid scores ``(N, K)`` of a head on standardised features ``(N, F)``."""
    import torch

    with torch.inference_mode():
        return torch.sigmoid(head(torch.from_numpy(np.asarray(X, dtype=np.float32)))).numpy()


def _drop_empty_classes(tax, per_video: list[VideoSamples]):
    """Classes found in the files but never present in the training part are not learnable:
    leave them out of the model (only when the classes come from the annotation files)."""
    from musicperf.labels import Taxonomy

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


#: Threshold of a class that must never be predicted (probabilities never exceed 1).
NEVER = 1.5


def _frame_scores(vs: VideoSamples, local: np.ndarray, scores: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame labels and frame probabilities ``(n, K)`` of the contiguous clips ``local`` of a video."""
    first = int(vs.starts[local].min())
    n = int(vs.starts[local].max()) + length - first
    probs, covered = spread_to_frames(vs.starts[local], scores, length=length, first=first, n=n)
    lab = vs.frame_labels[first : first + n]
    covered = covered[: len(lab)]
    return lab[covered], probs[: len(lab)][covered]


def _loss_function(name: str):
    """The training loss from :mod:`musicperf.train.losses`, as ``loss(logits, targets)``."""
    from musicperf.train import losses

    if name == "dbb":
        return lambda logits, y: losses.dbb_loss(logits, y)
    if name == "mse":
        return lambda logits, y: losses.mse_loss(logits, y)
    return lambda logits, y: losses.bce_loss(logits, y)


def _tune(present: np.ndarray, scores: np.ndarray, classes: list[str]) -> tuple[np.ndarray, dict]:
    """Per-class thresholds tuned on the validation clips, and the validation metrics."""
    from musicperf.evaluate import metrics

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


def _save(model_dir: Path, head, mean: np.ndarray, std: np.ndarray, backbone) -> None:
    from safetensors.torch import save_file
    import torch

    tensors = {f"head.{k}": v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    tensors["features.mean"] = torch.from_numpy(np.asarray(mean, dtype=np.float32))
    tensors["features.std"] = torch.from_numpy(np.asarray(std, dtype=np.float32))
    with atomic_path(model_dir / MODEL_FILE) as tmp:
        save_file(tensors, str(tmp))
    if backbone is not None:
        state = {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}
        with atomic_path(model_dir / BACKBONE_FILE) as tmp:
            save_file(state, str(tmp))


# --------------------------------------------------------------------------- the trained model
@dataclass
class GestureModel:
    """A trained workflow model, loaded from its directory by :func:`load_workflow_model`."""

    path: Path
    meta: dict
    head: object
    mean: np.ndarray
    std: np.ndarray
    extractor: FeatureExtractor
    taxonomy: object

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @property
    def thresholds(self) -> np.ndarray:
        return np.asarray(self.meta["thresholds"], dtype=float)

    @property
    def model_id(self) -> str:
        return str(self.meta["model_id"])

    def predict_clips(self, clips: np.ndarray) -> np.ndarray:
        """Probabilities ``(B, K)`` of clips ``(B, T, H, W, 3)`` uint8."""
        x = (self.extractor(clips) - self.mean) / self.std
        return predict_head(self.head, x)


def load_workflow_model(model_dir: str | Path, *, compile: bool = False) -> GestureModel:
    """Load a model directory written by :func:`train_model`.

    ``compile=True`` wraps the frozen backbone (if the model has one) in ``torch.compile``
    (inductor with freezing): slow to start (tens of seconds), faster per clip; see
    README.md (section 'Performance') for what it gains here.

    Raises
    ------
    ModelError
        The directory or one of its files is missing, it was written by an incompatible
        version, or the weights do not fit the recorded architecture.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from musicperf.labels import Taxonomy

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"model directory '{model_dir}' does not exist (train one with 'musicperf train')")
    meta_path = model_dir / META_FILE
    if not meta_path.is_file():
        raise ModelError(f"'{model_dir}' is not a musicperf labelling model: {META_FILE} is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"'{meta_path}' is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != "musicperf-workflow":
        raise ModelError(f"'{meta_path}' does not describe a musicperf labelling model")
    version = meta.get("format_version")
    if version != MODEL_FORMAT:
        raise ModelError(
            f"model '{model_dir}' has format version {version} (written by musicperf "
            f"{meta.get('musicperf_version', '?')}); this musicperf {__version__} reads version {MODEL_FORMAT}: retrain it"
        )
    grid = meta.get("features", {}).get("grid", {})
    if grid.get("version") != FEATURE_VERSION:
        raise ModelError(
            f"model '{model_dir}' uses clip features of version {grid.get('version')}; this musicperf computes "
            f"version {FEATURE_VERSION}: retrain it"
        )
    try:
        config = WorkflowConfig.from_dict(meta["config"], where=str(meta_path))
        classes = list(meta["classes"])
        thresholds = meta["thresholds"]
        head_cfg = meta["head"]
        float(meta["fps"])
        meta["model_id"]
    except (KeyError, TypeError, ValueError, ParameterError) as exc:
        raise ModelError(f"'{meta_path}' is incomplete or malformed: {exc}") from None
    if len(thresholds) != len(classes):
        raise ModelError(f"'{meta_path}' has {len(thresholds)} thresholds for {len(classes)} classes")
    weights = model_dir / MODEL_FILE
    if not weights.is_file():
        raise ModelError(f"model '{model_dir}' is incomplete: {MODEL_FILE} is missing")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"'{weights}' is not a readable safetensors file ({exc})") from None
    from musicperf.tasks.framefeatures import head_from_config

    head = head_from_config(head_cfg, where=str(meta_path))
    state = {k[len("head."):]: v for k, v in tensors.items() if k.startswith("head.")}
    try:
        head.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"the weights in '{weights}' do not fit the head recorded in {META_FILE}: {str(exc).splitlines()[0]}") from None
    head.eval()
    if "features.mean" not in tensors or "features.std" not in tensors:
        raise ModelError(f"'{weights}' lacks the feature normalisation (features.mean/std)")
    backbone, norm = None, None
    bb = meta["features"].get("backbone")
    if bb:
        from musicperf.models import Normalization
        from musicperf.models.resnet3d import backbone_from_config

        path = model_dir / BACKBONE_FILE
        if not path.is_file():
            raise ModelError(f"model '{model_dir}' is incomplete: {BACKBONE_FILE} is missing")
        backbone = backbone_from_config(bb["config"])
        try:
            backbone.load_state_dict(load_file(str(path)))
        except (RuntimeError, SafetensorError) as exc:
            raise ModelError(f"'{path}' does not fit the recorded backbone: {str(exc).splitlines()[0]}") from None
        backbone.eval()
        norm = Normalization.from_dict(bb["normalization"]) if bb.get("normalization") else None
    try:
        roi = tuple(float(v) for v in meta["features"].get("roi", (0.0, 1.0, 0.0, 1.0)))
        if len(roi) != 4 or not (0 <= roi[0] < roi[1] <= 1 and 0 <= roi[2] < roi[3] <= 1):
            raise ValueError(roi)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"'{meta_path}' has a malformed region of interest {exc}") from None
    extractor = FeatureExtractor(config, backbone, norm, roi=roi, compile=compile)
    try:
        taxonomy = Taxonomy.from_dict(meta["taxonomy"])
    except (KeyError, ParameterError, AnnotationError) as exc:
        raise ModelError(f"'{meta_path}' has a malformed taxonomy: {exc}") from None
    return GestureModel(
        path=model_dir,
        meta=meta,
        head=head,
        mean=tensors["features.mean"].numpy(),
        std=tensors["features.std"].numpy(),
        extractor=extractor,
        taxonomy=taxonomy,
    )


def read_annotations(path: str | Path) -> AnnotationSet:
    """Read any annotation file musicperf knows (adapter over :mod:`musicperf.io`)."""
    import musicperf.io as mio

    reader = getattr(mio, "read_annotations", None)
    if reader is None:  # io/__init__ without the dispatcher: EAF only
        from musicperf.io.elan import read_eaf as reader
    return reader(path)


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

    from musicperf.tasks import framefeatures

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


def clip_features(extractor: FeatureExtractor, video: Path, *, fps: float, first: int, n_frames: int, stride: int,
                  batch: int = 8, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Features of the clips of ``video`` starting every ``stride`` grid frames from ``first``.

    Decoding (:func:`iter_clips`) runs in a background thread two batches ahead, so it overlaps
    with the feature computation; memory holds at most three batches of clips.

    Returns
    -------
    starts : np.ndarray, shape (N,), int64
        Clip starts on the ``fps`` grid (clips ending after ``n_frames`` are left out).
    features : np.ndarray, shape (N, F), float32
    """
    from musicperf.features.fastpath import prefetch

    length = extractor.config.clip_length
    all_starts, all_feats = [], []
    total = max(0, (n_frames - first - length) // stride + 1)
    bar = _progress(None, total=total, desc=f"labelling {video.name}", enabled=progress)
    batches = prefetch(iter_clips(video, fps=fps, size=extractor.decode_size, length=length, stride=stride,
                                  start=first / fps, batch=batch), depth=2)
    for starts, clips in batches:
        keep = starts + length <= n_frames
        starts, clips = starts[keep], clips[keep]
        if not len(starts):
            continue
        all_starts.append(starts)
        all_feats.append(extractor(clips))
        if progress:
            bar.update(len(starts))
    if progress:
        bar.close()
    if not all_starts:
        return np.zeros(0, np.int64), np.zeros((0, extractor.n_features), np.float32)
    return np.concatenate(all_starts), np.concatenate(all_feats).astype(np.float32)


def spread_to_frames(starts: np.ndarray, scores: np.ndarray, *, length: int, first: int, n: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame probabilities from per-clip scores: the mean over the clips covering a frame.

    Parameters
    ----------
    starts : np.ndarray, shape (N,), int
        First frame of each clip.
    scores : np.ndarray, shape (N, K)
        Clip probabilities.
    length : int
        Frames per clip.
    first, n : int
        The frames ``first .. first + n - 1`` to fill.

    Returns
    -------
    probs : np.ndarray, shape (n, K), float32
        0 where no clip covers a frame.
    covered : np.ndarray, shape (n,), bool
    """
    scores = np.asarray(scores, dtype=np.float64)
    sums = np.zeros((n, scores.shape[1]), dtype=np.float64)
    counts = np.zeros(n, dtype=np.int64)
    for s, row in zip(np.asarray(starts) - first, scores):
        a, b = max(int(s), 0), min(int(s) + length, n)
        if b > a:
            sums[a:b] += row
            counts[a:b] += 1
    covered = counts > 0
    probs = np.zeros_like(sums, dtype=np.float32)
    probs[covered] = (sums[covered] / counts[covered, None]).astype(np.float32)
    return probs, covered


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
        ``torch.compile`` the backbone (see :func:`load_workflow_model`).

    Returns
    -------
    list of dict
        The JSON summary of each video (``"skipped": True`` for those already done).
    """
    model = load_workflow_model(model_dir, compile=compile)
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
    _write_probs_csv(paths["csv"], probs, first=first, fps=fps, classes=model.classes)
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


def _write_probs_csv(path: Path, probs: np.ndarray, *, first: int, fps: float, classes: list[str]) -> None:
    """CSV: ``frame, time_s`` then one probability column per class, one row per frame."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "time_s", *classes])
        for i, row in enumerate(probs):
            f = first + i
            w.writerow([f, f"{f / fps:.4f}", *(f"{v:.4f}" for v in row)])


def read_probs_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a probabilities CSV: ``(times (n,) s, probs (n, K), classes)``."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise ParameterError(f"cannot read '{path}': {exc.strerror}") from None
    if not rows or rows[0][:2] != ["frame", "time_s"]:
        raise ParameterError(f"'{path}' is not a musicperf probabilities CSV (header 'frame,time_s,...' expected)")
    classes = rows[0][2:]
    try:
        data = np.array([[float(v) for v in r[1:]] for r in rows[1:] if r], dtype=float).reshape(-1, 1 + len(classes))
    except ValueError as exc:
        raise ParameterError(f"'{path}' has a non-numeric value: {exc}") from None
    return data[:, 0], data[:, 1:], classes
