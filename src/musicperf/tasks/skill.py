"""Piano performance skill assessment from hand/keyboard video and the mel spectrogram (paper ``004``).

The task wires the shared machinery together: clips from :class:`musicperf.io.video.VideoReader`,
cropped to the region of interest (hands and keyboard: from MediaPipe hand landmarks,
:mod:`musicperf.features.landmarks`, from a synthetic video's truth, or a user's box); a 3-D
ResNet-18 (:mod:`musicperf.models.resnet3d`, users' Hara / torchvision checkpoints through
:func:`~musicperf.models.checkpoints.load_video_backbone`) over the clips; a 2-D ResNet-18
(:mod:`musicperf.models.resnet2d`, one input channel) over the clip's mel spectrogram in dB
(:func:`musicperf.features.audio.mel_patches`).

Model (``004``, Section 2.3 and Figure 4): each backbone's pooled features are reduced "to 128
through a linear layer" and fed to a per-modality prediction layer; the multimodal branch
concatenates the two 128-vectors (``004``'s "feature stitching") and predicts with a linear layer,
"except that we do not back-propagate from the multimodal branch to a separate modal backbone to
avoid cross-modal contamination": its input is detached. Training minimises the sum of the three
branches' softmax cross-entropies. Clip predictions are aggregated per video by linear averaging
(Figure 3): the 128-d features are averaged over a video's clips and passed through the (linear)
heads, which equals averaging the clip logits. The video:audio feature ratio of Table 2 is the
pair ``(video_features, audio_features)`` (1:1 = 128:128; 8:1 = 1024:128; ...).

Skill levels: PISA (Parmar et al. 2021) grades players on a 1-10 scale; the synthetic performer's
``skill`` 0..9 is mapped to level ``skill + 1`` (:func:`synth_skill_level`). Class names are the
level strings found in the training annotations.

Choices (also in docs/instrument-skill.md): ``004`` gives no clip length, crop size or audio window; we
use 16-frame clips at 112 x 112 (the 3-D ResNet convention) and the mel window of each clip's own
time span (n_mels 128, FFT 2048, hop 512 at 22050 Hz). The region of interest is one box per
video (the union of all detected hand points, widened by ``margin`` on each side and downwards to
take in the keys), not a per-frame track. Our additions for learning from few videos (both can be
switched off): clip augmentation (``augment``: flips, colour-channel permutations) and modality
dropout on the fusion head's input (``modality_dropout``). Inputs can be cached per video as
``.npy`` files and trained from memory-mapped (``cache_dir``), and training checkpoints every
epoch and resumes exactly (``checkpoint_dir``).

Imports torch at module level; import lazily.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musicperf._util import atomic_path
from musicperf.errors import AnnotationError, DecodeError, MissingDependencyError, ModelError, ParameterError
from musicperf.models.classifiers import SkillNet
from musicperf.tasks._classify import (
    STATE_FILE,
    VIDEO_SUFFIXES,
    ClassLabelledVideo,
    RowSource,
    fit_classifier,
    load_task_model,
    save_task_model,
    stratified_split,
    write_labelled_videos,
)
from musicperf.train.loop import TrainConfig

log = logging.getLogger(__name__)

FORMAT = "musicperf-skill"
BRANCHES = ("video", "audio", "fusion")


def synth_skill_level(skill: int) -> int:
    """PISA-style level (1-10) of the synthetic performer's ``skill`` (0-9): ``skill + 1``."""
    if not 0 <= int(skill) <= 9:
        raise ParameterError(f"synthetic skill must be 0..9, got {skill}")
    return int(skill) + 1


@dataclass(frozen=True)
class SkillConfig:
    """Data and architecture settings of the skill task.

    Attributes
    ----------
    clip_length, clip_stride : int
        Frames per clip and between clip starts.
    clip_size : (int, int)
        ``(height, width)`` the cropped region is resized to (112 x 112).
    max_clips : int
        At most this many clips per video, spread evenly (long videos).
    roi : str or tuple
        ``"auto"`` (hands from a synthetic ``truth.json`` beside the video, else MediaPipe hand
        landmarks, else the full frame with a warning), ``"full"``, or a pixel box
        ``(x0, y0, x1, y1)``.
    margin : float
        Widening of the hands box on each side, as a fraction of its size (downwards twice as
        much, for the keys below the fingers).
    video_backbone : str
        3-D ResNet name of :func:`musicperf.models.resnet3d.build_backbone` (``004``: resnet18).
    video_weights : str or None
        A Hara or torchvision 3-D ResNet checkpoint to start from.
    audio_backbone : {"resnet18", "resnet34", "resnet50"}
        2-D ResNet over the mel spectrogram (``004``: resnet18).
    video_features, audio_features : int
        Sizes of the linear reductions (128 : 128 in ``004``; Table 2 varies the ratio).
    audio_seconds : float or None
        Length of each clip's mel window, centred on the clip; None: the clip's own span
        (``clip_length / fps``). Rhythm and wrong notes need a few notes: a longer window helps.
    sr, n_mels, n_fft, hop_length : int
        Mel spectrogram settings.
    width_factor, audio_width_factor : float
        Channel scale of the backbones (1.0 = published; small for tests).
    modality_dropout : float
        Training only (our addition; ``004`` does not describe one): each clip's fusion input
        loses its video features with this probability, else its audio features with this
        probability. The fusion head learns on the training clips, where both branches end up
        separating the levels perfectly -- one of them by memorising the few training videos --
        and then leans on whichever does; dropping a modality makes it use both. 0 is the
        plain recipe.
    augment : {"none", "flip", "flip+color"}
        Training-time augmentation of the clips (our addition; ``004`` does not say): a random
        horizontal flip per clip, and with ``flip+color`` a random permutation of the colour
        channels per clip, so that the video network cannot tell the few training players
        apart by the colours of their clothes and must look at the motion.
    """

    clip_length: int = 16
    clip_stride: int = 16
    clip_size: tuple[int, int] = (112, 112)
    max_clips: int = 32
    roi: str | tuple = "auto"
    margin: float = 0.15
    video_backbone: str = "resnet18"
    video_weights: str | None = None
    audio_backbone: str = "resnet18"
    video_features: int = 128
    audio_features: int = 128
    audio_seconds: float | None = None
    sr: int = 22050
    n_mels: int = 128
    n_fft: int = 2048
    hop_length: int = 512
    width_factor: float = 1.0
    audio_width_factor: float = 1.0
    modality_dropout: float = 0.3
    augment: str = "flip+color"

    def __post_init__(self):
        if self.clip_length < 1 or self.clip_stride < 1 or self.max_clips < 1 or min(self.clip_size) < 8:
            raise ParameterError(f"clip_length, clip_stride, max_clips >= 1 and clip_size >= 8 needed: {self}")
        if self.audio_seconds is not None and self.audio_seconds <= 0:
            raise ParameterError(f"audio_seconds must be > 0 or None, got {self.audio_seconds}")
        if self.augment not in ("none", "flip", "flip+color"):
            raise ParameterError(f"augment must be 'none', 'flip' or 'flip+color', got {self.augment!r}")
        if not 0 <= self.modality_dropout <= 0.5:
            raise ParameterError(f"modality_dropout must be in [0, 0.5], got {self.modality_dropout}")
        if self.video_features < 1 or self.audio_features < 1:
            raise ParameterError(f"feature sizes must be >= 1, got {self.video_features}:{self.audio_features}")
        parse_roi(self.roi)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["clip_size"] = list(self.clip_size)
        d["roi"] = list(self.roi) if isinstance(self.roi, tuple) else self.roi
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SkillConfig":
        d = dict(d)
        d["clip_size"] = tuple(d["clip_size"])
        if isinstance(d.get("roi"), list):
            d["roi"] = tuple(d["roi"])
        return cls(**d)


def parse_roi(roi) -> str | tuple[int, int, int, int]:
    """``"auto"``, ``"full"``, a box ``(x0, y0, x1, y1)`` or its text ``"x0,y0,x1,y1"`` (pixels)."""
    if roi in ("auto", "full"):
        return roi
    if isinstance(roi, str):
        try:
            roi = tuple(int(round(float(v))) for v in roi.split(","))
        except ValueError:
            raise ParameterError(f"roi must be 'auto', 'full' or 'x0,y0,x1,y1' in pixels, got {roi!r}") from None
    if not isinstance(roi, (tuple, list)) or len(roi) != 4:
        raise ParameterError(f"roi must be 'auto', 'full' or 4 pixel coordinates x0,y0,x1,y1, got {roi!r}")
    x0, y0, x1, y1 = (int(v) for v in roi)
    if x1 <= x0 or y1 <= y0 or min(x0, y0) < 0:
        raise ParameterError(f"roi box {roi!r} is empty or negative (expected x0 < x1, y0 < y1, pixels)")
    return (x0, y0, x1, y1)


# ============================================================================ region of interest


def _box_from_points(xy: np.ndarray, width: int, height: int, margin: float) -> tuple[int, int, int, int] | None:
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    if len(xy) < 3:
        return None
    x0, y0 = np.percentile(xy, 1, axis=0)
    x1, y1 = np.percentile(xy, 99, axis=0)
    w, h = max(x1 - x0, 8.0), max(y1 - y0, 8.0)
    x0, x1 = x0 - margin * w, x1 + margin * w
    y0, y1 = y0 - margin * h, y1 + 2 * margin * h
    box = (int(max(0, np.floor(x0))), int(max(0, np.floor(y0))), int(min(width, np.ceil(x1))), int(min(height, np.ceil(y1))))
    return box if box[2] - box[0] >= 4 and box[3] - box[1] >= 4 else None


def find_roi(path: str | Path, roi="auto", *, margin: float = 0.15, max_frames: int = 90) -> tuple[tuple[int, int, int, int], str]:
    """The hands-and-keyboard box of a video, in pixels of the displayed frame.

    Parameters
    ----------
    path : str or Path
    roi : "auto", "full" or (x0, y0, x1, y1)
        See :class:`SkillConfig`.
    margin : float
    max_frames : int
        Frames MediaPipe looks at (spread over the first part of the video) in ``"auto"`` mode.

    Returns
    -------
    box : (x0, y0, x1, y1)
    source : str
        ``"given"``, ``"full"``, ``"synthetic truth"``, ``"hand landmarks"`` or
        ``"full (no hands found)"``.
    """
    from musicperf.io.video import probe

    info = probe(path)
    W, H = int(info.width), int(info.height)
    roi = parse_roi(roi)
    if isinstance(roi, tuple):
        x0, y0, x1, y1 = roi
        if x0 >= W or y0 >= H:
            raise ParameterError(f"roi {roi} lies outside the {W}x{H} frames of '{path}'")
        return (x0, y0, min(x1, W), min(y1, H)), "given"
    if roi == "full":
        return (0, 0, W, H), "full"
    truth = Path(path).with_name("truth.json")
    if truth.is_file():
        doc = json.loads(truth.read_text(encoding="utf-8"))
        kp = doc["performers"][0]["keypoints"]
        pts = []
        for hand in ("left_hand", "right_hand"):
            px = np.asarray(kp[hand]["pixels"], dtype=np.float64)
            vis = np.asarray(kp[hand]["visible"], dtype=bool)
            pts.append(px[vis])
        box = _box_from_points(np.concatenate(pts), W, H, margin)
        if box is not None:
            return box, "synthetic truth"
    try:
        from musicperf.features.landmarks import extract_landmarks

        lm = extract_landmarks(path, max_frames=max_frames, cache=False)
        pts = np.concatenate([lm.left_hand[..., :2].reshape(-1, 2), lm.right_hand[..., :2].reshape(-1, 2)])
        box = _box_from_points(pts * np.array([lm.width, lm.height]), W, H, margin)
        if box is not None:
            return box, "hand landmarks"
    except MissingDependencyError as exc:
        log.warning("no hand detector (%s); using the full frame of '%s'", exc, path)
        return (0, 0, W, H), "full (no hand detector)"
    log.warning("no hands found in '%s'; using the full frame (give --roi x0,y0,x1,y1 to crop)", path)
    return (0, 0, W, H), "full (no hands found)"


# ============================================================================ inputs


@dataclass
class SkillInputs:
    """Clips and mel patches of one video.

    Attributes
    ----------
    clips : ndarray, shape (n, T, H, W, 3), uint8, or Path
        Cropped, resized clips, or the ``.npy`` file holding them (inputs cached on disk by
        :func:`load_skill_inputs`, read memory-mapped when needed).
    mel : ndarray, shape (n, n_mels, n_frames), float32, or Path
        dB mel spectrogram of each clip's time span, or its ``.npy`` file.
    times : ndarray, shape (n,), float
        Start time of each clip in seconds.
    roi : (x0, y0, x1, y1)
    roi_source : str
    """

    clips: np.ndarray | Path
    mel: np.ndarray | Path
    times: np.ndarray
    roi: tuple
    roi_source: str

    @property
    def n_clips(self) -> int:
        return len(self.times)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(clips, mel)`` as arrays (memory-mapped, read-only, when cached on disk)."""
        load = lambda a: np.load(a, mmap_mode="r") if isinstance(a, (str, Path)) else a  # noqa: E731
        return load(self.clips), load(self.mel)


def _resize_frames(frames: np.ndarray, box, size) -> np.ndarray:
    x0, y0, x1, y1 = box
    t = torch.from_numpy(np.ascontiguousarray(frames[:, y0:y1, x0:x1])).permute(0, 3, 1, 2).float()
    t = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return t.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def skill_inputs(path: str | Path, config: SkillConfig, *, max_seconds: float | None = None) -> SkillInputs:
    """Read the clips of a video (cropped to its region of interest) and their mel patches.

    Parameters
    ----------
    path : str or Path
    config : SkillConfig
    max_seconds : float, optional
        Only use the first ``max_seconds`` of the video.

    Raises
    ------
    DecodeError
        The video is shorter than one clip, or unreadable.
    """
    from musicperf.features.audio import load_performance_audio, mel_patches
    from musicperf.io.video import VideoReader

    box, source = find_roi(path, config.roi, margin=config.margin)
    with VideoReader(path) as reader:
        fps = reader.info.fps or 25.0
        duration = reader.info.duration or 0.0
        if max_seconds is not None:
            duration = min(duration, max_seconds) if duration else max_seconds
        n_frames = int(round(duration * fps)) if duration else 0
        stride = config.clip_stride
        if n_frames and config.max_clips > 1:
            room = (n_frames - config.clip_length) // (config.max_clips - 1)
            stride = max(stride, room)
        clips, times = [], []
        for clip in reader.clips(config.clip_length, stride):
            if max_seconds is not None and clip.times[-1] >= max_seconds:
                break
            clips.append(_resize_frames(clip.frames, box, config.clip_size))
            times.append(float(clip.times[0]))
            if len(clips) >= config.max_clips:
                break
    if not clips:
        raise DecodeError(f"'{path}' is shorter than one clip of {config.clip_length} frames")
    times = np.asarray(times)
    from musicperf.io.audio import has_audio

    if has_audio(path):
        y = load_performance_audio(path, sr=config.sr).y
    else:
        log.warning("'%s' has no sound; the audio branch sees silence", path)
        y = np.zeros(config.sr, dtype=np.float32)
    span = config.clip_length / fps
    window = span if config.audio_seconds is None else float(config.audio_seconds)
    # centred on the clip; mel_patches pads with silence before 0 and after the end
    starts = times + (span - window) / 2.0
    mel = mel_patches(y, config.sr, starts, duration=window, n_mels=config.n_mels,
                      n_fft=config.n_fft, hop_length=config.hop_length)
    return SkillInputs(np.stack(clips), mel, times, box, source)


# ============================================================================ networks (in musicperf.models.classifiers)


def skill_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum over the three branches of the softmax cross-entropy: logits ``(B, 3, K)``, ``y`` ``(B,)``."""
    return sum(F.cross_entropy(logits[:, b], y) for b in range(logits.shape[1]))


def _clips_to_tensor(clips: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, T, H, W, 3)`` -> float ``(B, 3, T, H, W)`` in [0, 1]."""
    return clips.permute(0, 4, 1, 2, 3).contiguous().float() / 255.0


def _prepare(xs):
    return [_clips_to_tensor(xs[0]), xs[1].float()]


def augment_clips(xs: list[torch.Tensor], *, color: bool = True) -> list[torch.Tensor]:
    """Training-time augmentation of clips ``(B, 3, T, H, W)`` in [0, 1] (the first input; the
    others pass through): a random horizontal flip per clip and, with ``color``, a random
    permutation of the colour channels per clip. Draws from torch's global generator (reseeded
    every epoch by the training loop, so resumed runs stay exact)."""
    x = xs[0]
    if color:
        perms = torch.stack([torch.randperm(3) for _ in range(len(x))]).to(x.device)
        x = torch.gather(x, 1, perms[:, :, None, None, None].expand_as(x))
    flip = torch.rand(len(x), device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None, None], x.flip(4), x)
    return [x] + list(xs[1:])


def _build_backbones(config: SkillConfig):
    from musicperf.models.checkpoints import load_video_backbone
    from musicperf.models.resnet2d import resnet2d
    from musicperf.models.resnet3d import build_backbone

    if config.video_weights:
        vb = load_video_backbone(config.video_weights, keep_head=False).train()
        norm = vb.normalization
    else:
        vb = build_backbone(config.video_backbone, n_classes=0, width_factor=config.width_factor)
        norm = None
    ab = resnet2d(config.audio_backbone, in_channels=1, n_classes=0, width_factor=config.audio_width_factor)
    return vb, ab, norm


@dataclass
class SkillModel:
    """A trained skill assessor: :class:`SkillNet` plus the level names and settings."""

    classes: list[str]
    config: SkillConfig
    net: SkillNet
    meta: dict = field(default_factory=dict)

    @torch.no_grad()
    def predict_inputs(self, inputs: SkillInputs, *, batch_size: int = 8) -> dict[str, np.ndarray]:
        """Per-video class probabilities ``(K,)`` of each branch (``video``, ``audio``, ``fusion``),
        by linear averaging of the clip features (``004`` Figure 3), and per-clip fused
        probabilities ``clips`` ``(n, K)``."""
        self.net.eval()
        fvs, fas = [], []
        clips, mel = inputs.arrays()
        for i in range(0, len(clips), batch_size):
            c, m = _prepare([torch.from_numpy(np.array(clips[i : i + batch_size])),
                             torch.from_numpy(np.array(mel[i : i + batch_size]))])
            fv, fa = self.net.features(c, m)
            fvs.append(fv)
            fas.append(fa)
        fv, fa = torch.cat(fvs), torch.cat(fas)
        per_clip = F.softmax(self.net.heads(fv, fa)[:, 2], dim=1)
        video = F.softmax(self.net.heads(fv.mean(0, keepdim=True), fa.mean(0, keepdim=True))[0], dim=1)
        return {"video": video[0].numpy(), "audio": video[1].numpy(), "fusion": video[2].numpy(), "clips": per_clip.numpy()}

    def predict(self, path: str | Path, *, max_seconds: float | None = None, roi=None) -> dict:
        """Predict the level of a video file: :meth:`predict_inputs` plus ``roi``, ``roi_source``
        and ``n_clips``. ``roi`` overrides the model's setting for this video."""
        cfg = self.config if roi is None else SkillConfig.from_dict({**self.config.to_dict(), "roi": parse_roi(roi)})
        inputs = skill_inputs(path, cfg, max_seconds=max_seconds)
        out = self.predict_inputs(inputs)
        out.update(roi=list(inputs.roi), roi_source=inputs.roi_source, n_clips=inputs.n_clips)
        return out

    def save(self, model_dir: str | Path) -> Path:
        """``model.safetensors`` + ``model.json`` (levels, settings, backbone configurations, normalisation)."""
        meta = {"task": "piano skill assessment (004)", "classes": list(self.classes), "config": self.config.to_dict(),
                # a checkpoint loaded with keep_head=False keeps its class count in the config
                "video_backbone": {**self.net.video_backbone.config.to_dict(),
                                   **({"n_classes": 0} if isinstance(self.net.video_backbone.fc, nn.Identity) else {})},
                "audio_backbone": self.net.audio_backbone.config.to_dict(),
                "normalization": self.net.normalization.to_dict(), "versions": {"torch": torch.__version__}, **self.meta}
        return save_task_model(model_dir, FORMAT, self.net.state_dict(), meta)

    @classmethod
    def load(cls, model_dir: str | Path) -> "SkillModel":
        from musicperf.models.checkpoints import Normalization, load_state_strict
        from musicperf.models.resnet2d import image_backbone_from_config
        from musicperf.models.resnet3d import backbone_from_config

        state, doc = load_task_model(model_dir, FORMAT)
        try:
            config = SkillConfig.from_dict(doc["config"])
            classes = list(doc["classes"])
            vb = backbone_from_config(doc["video_backbone"])
            ab = image_backbone_from_config(doc["audio_backbone"])
            norm = Normalization.from_dict(doc["normalization"])
        except (KeyError, TypeError, ParameterError) as exc:
            raise ModelError(f"'{model_dir}/model.json' is incomplete: {exc}") from exc
        net = SkillNet(vb, ab, len(classes), video_features=config.video_features,
                       audio_features=config.audio_features, normalization=norm)
        load_state_strict(net, state, source=f"'{model_dir}'")
        return cls(classes, config, net.eval(), {k: v for k, v in doc.items() if k in ("split", "training")})


# ============================================================================ annotations


_ID_NAMES = ("video", "video_id", "id", "path", "file", "name")
_LEVEL_NAMES = ("player_level", "pl", "skill", "skill_level", "level", "label")


def _level_key(s: str):
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


def read_skill_annotations(path: str | Path, *, video_dir: str | Path | None = None) -> list[ClassLabelledVideo]:
    """A PISA-style annotation file: video id -> skill level.

    Accepts CSV, TSV or whitespace-separated text with one video per line: the video id (a
    file name with or without extension, or a path) and the player's skill level, optionally
    more columns (e.g. PISA's song difficulty level). A header naming the columns is optional;
    when present, the id column is the first of ``video, video_id, id, path, file, name`` and
    the level column the first of ``player_level, PL, skill, skill_level, level, label``;
    without one, the first two columns are used. ``#`` lines are comments.

    Parameters
    ----------
    path : str or Path
    video_dir : str or Path, optional
        Where the videos are (default: the annotation file's folder); an id ``"12"`` finds
        ``12.mp4`` (any of the usual video extensions) there, recursively.

    Returns
    -------
    list of ClassLabelledVideo
        ``label`` is the level as written (e.g. ``"7"``).
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"skill annotation file '{path}' does not exist")
    root = Path(video_dir) if video_dir is not None else path.parent
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise AnnotationError(f"'{path}' holds no annotation")
    sample = lines[0]
    if "," in sample:
        rows = list(csv.reader(lines))
    elif "\t" in sample:
        rows = [ln.split("\t") for ln in lines]
    else:
        rows = [ln.split() for ln in lines]
    rows = [[c.strip() for c in r] for r in rows]
    id_col, level_col = 0, 1
    head = [c.lower() for c in rows[0]]
    if any(h in _ID_NAMES for h in head) or any(h in _LEVEL_NAMES for h in head):
        id_col = next((head.index(n) for n in _ID_NAMES if n in head), 0)
        level_col = next((head.index(n) for n in _LEVEL_NAMES if n in head), 1)
        rows = rows[1:]
    index: dict[str, Path] | None = None
    items = []
    for i, r in enumerate(rows, start=1):
        if len(r) <= max(id_col, level_col) or not r[id_col] or not r[level_col]:
            raise AnnotationError(f"'{path}' line {i}: expected a video id and a level, got {r!r}")
        vid, level = r[id_col], r[level_col]
        if re.fullmatch(r"-?\d+\.0+", level):
            level = level.split(".")[0]
        p = Path(vid)
        if not p.is_absolute():
            p = root / p
        if not p.is_file():
            if index is None:
                index = {}
                for f in sorted(root.rglob("*")):
                    if f.suffix.lower() in VIDEO_SUFFIXES:
                        index.setdefault(f.stem, f)
                        index.setdefault(str(f.relative_to(root).with_suffix("")), f)
            p = index.get(vid) or index.get(str(Path(vid).with_suffix("")))
            if p is None:
                raise AnnotationError(f"'{path}' line {i}: no video for id {vid!r} under '{root}'")
        items.append(ClassLabelledVideo(p, level))
    return items


# ============================================================================ training, evaluation


_DATA_KEYS = ("clip_length", "clip_stride", "clip_size", "max_clips", "roi", "margin", "audio_seconds", "sr",
              "n_mels", "n_fft", "hop_length")


def cached_skill_inputs(path: str | Path, config: SkillConfig, cache_dir: str | Path, *,
                        max_seconds: float | None = None) -> SkillInputs:
    """:func:`skill_inputs` of one video, kept on disk: ``clips.npy``, ``mel.npy`` and
    ``inputs.json`` in a folder of ``cache_dir`` named after the video and a key.

    The key covers the file's resolved path, size and modification time, ``max_seconds`` and
    every data setting of ``config`` (clip length/stride/size, region of interest, audio);
    model settings do not invalidate it. Returns :class:`SkillInputs` whose ``clips`` and
    ``mel`` are the paths of the ``.npy`` files: nothing of the video stays in memory.
    """
    import hashlib

    from musicperf._util import write_text_atomic

    path = Path(path)
    st = path.stat()
    keys = {k: v for k, v in config.to_dict().items() if k in _DATA_KEYS}
    h = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{max_seconds}|{sorted(keys.items())}".encode())
    folder = Path(cache_dir) / f"{path.parent.name}_{path.stem}.{h.hexdigest()[:16]}"
    doc_path = folder / "inputs.json"
    if not doc_path.is_file():
        x = skill_inputs(path, config, max_seconds=max_seconds)
        folder.mkdir(parents=True, exist_ok=True)
        for name, arr in (("clips", x.clips), ("mel", x.mel)):
            with atomic_path(folder / f"{name}.npy") as tmp:
                np.save(tmp, arr)
        # written last: its presence says the arrays are complete
        write_text_atomic(doc_path, json.dumps({"video": str(path), "times": x.times.tolist(), "roi": list(x.roi),
                                                "roi_source": x.roi_source}) + "\n")
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
        return SkillInputs(folder / "clips.npy", folder / "mel.npy", np.asarray(doc["times"], dtype=np.float64),
                           tuple(doc["roi"]), doc["roi_source"])
    except (json.JSONDecodeError, KeyError) as exc:
        raise DecodeError(f"skill input cache '{doc_path}' is damaged ({exc}); delete the folder") from exc


def load_skill_inputs(items: Sequence[ClassLabelledVideo], config: SkillConfig, *, max_seconds=None,
                      progress: Callable | None = None, cache_dir: str | Path | None = None) -> list[SkillInputs]:
    """:func:`skill_inputs` of every video, with an optional ``progress(i, n, path)`` callback.

    With ``cache_dir``, each video's inputs are written there once (:func:`cached_skill_inputs`)
    and returned as file paths, so memory does not grow with the collection: training reads
    the rows of each batch memory-mapped (:class:`~musicperf.tasks._classify.RowSource`).
    """
    out = []
    for i, it in enumerate(items):
        if progress:
            progress(i, len(items), it.path)
        if cache_dir is not None:
            out.append(cached_skill_inputs(it.path, config, cache_dir, max_seconds=max_seconds))
        else:
            out.append(skill_inputs(it.path, config, max_seconds=max_seconds))
    return out


def train_skill(
    items: Sequence[ClassLabelledVideo],
    config: SkillConfig = SkillConfig(),
    train_config: TrainConfig = TrainConfig(weight_decay=1e-4, patience=10, batch_size=16),
    *,
    val_fraction: float = 0.2,
    inputs: Sequence[SkillInputs] | None = None,
    progress: Callable | None = None,
    cache_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
) -> SkillModel:
    """Train :class:`SkillNet` on the clips of labelled videos (each clip takes its video's level).

    The three branches train together (sum of their cross-entropies); model selection and early
    stopping use the validation videos' clip accuracy of the fusion branch.

    Parameters
    ----------
    items : sequence of ClassLabelledVideo
    config : SkillConfig
    train_config : TrainConfig
    val_fraction : float
        Share of each level's videos held out for model selection (0: keep the last epoch).
    inputs : sequence of SkillInputs, optional
        Already read inputs of ``items`` (arrays or cached files).
    progress : callable, optional
        ``progress(i, n, path)`` while videos are read.
    cache_dir : str or Path, optional
        Keep each video's clips and mel windows there as ``.npy`` files and train from them
        memory-mapped (see :func:`load_skill_inputs`); the clips are never concatenated in
        memory either way.
    checkpoint_dir : str or Path, optional
        Write ``train_state.safetensors`` there after every epoch; with ``resume``, an
        interrupted run continues from it exactly (see
        :func:`~musicperf.tasks._classify.fit_classifier`).
    resume : bool

    Returns
    -------
    SkillModel
        With ``meta["training"]`` and ``meta["split"]``.
    """
    classes = sorted({it.label for it in items}, key=_level_key)
    if len(classes) < 2:
        raise ParameterError(f"skill training needs at least 2 levels, got {classes}")
    labels = np.array([classes.index(it.label) for it in items])
    if inputs is None:
        inputs = load_skill_inputs(items, config, progress=progress, cache_dir=cache_dir)
    tr, va = stratified_split(labels, val_fraction, train_config.seed)
    torch.manual_seed(train_config.seed)
    vb, ab, norm = _build_backbones(config)
    net = SkillNet(vb, ab, len(classes), video_features=config.video_features, audio_features=config.audio_features,
                   normalization=norm, modality_dropout=config.modality_dropout)

    def rows(idx):
        # the clips of the selected videos as one input, without concatenating them
        if not len(idx):
            return None, None, None
        c = RowSource([inputs[i].clips for i in idx])
        m = RowSource([inputs[i].mel for i in idx])
        y = torch.from_numpy(np.concatenate([np.full(inputs[i].n_clips, labels[i]) for i in idx])).long()
        return c, m, y

    c, m, y = rows(tr)
    cv, mv, yv = rows(va)
    data_id = json.dumps({"train": [[str(items[i].path), items[i].label] for i in tr],
                          "val": [[str(items[i].path), items[i].label] for i in va], "config": config.to_dict()})
    hist = fit_classifier(net, [c, m], y, None if cv is None else [cv, mv], yv, train_config, prepare=_prepare,
                          loss_fn=skill_loss, predict_fn=lambda out: out[:, 2],
                          augment=None if config.augment == "none" else
                          (lambda xs: augment_clips(xs, color=config.augment == "flip+color")),
                          checkpoint=None if checkpoint_dir is None else Path(checkpoint_dir) / STATE_FILE,
                          resume=resume, data_id=data_id)
    model = SkillModel(classes, config, net.eval())
    model.meta = {
        "split": {"train": [str(items[i].path) for i in tr], "val": [str(items[i].path) for i in va],
                  "name": f"stratified by level, val_fraction={val_fraction}, seed={train_config.seed}"},
        "training": {"config": train_config.to_dict(), **asdict(hist)},
    }
    return model


def evaluate_skill(model: SkillModel, items: Sequence[ClassLabelledVideo], *, inputs: Sequence[SkillInputs] | None = None,
                   progress: Callable | None = None, cache_dir: str | Path | None = None) -> dict:
    """Per-video accuracy (``004``'s metric) of each branch, with the full classification report.

    Returns
    -------
    dict
        ``{"video": report, "audio": report, "fusion": report, "n_videos": int, "chance": float}``.
    """
    from musicperf.evaluate.classification import chance_accuracy, classification_report

    unknown = sorted({it.label for it in items} - set(model.classes), key=_level_key)
    if unknown:
        raise ParameterError(f"levels {unknown} are not among the model's levels {model.classes}")
    if inputs is None:
        inputs = load_skill_inputs(items, model.config, progress=progress, cache_dir=cache_dir)
    y = np.array([model.classes.index(it.label) for it in items])
    probs = [model.predict_inputs(v) for v in inputs]
    out = {b: classification_report(y, np.stack([p[b] for p in probs]), classes=model.classes, ks=(1,)) for b in BRANCHES}
    out["n_videos"] = len(items)
    out["chance"] = chance_accuracy(y, len(model.classes))
    return out


def synth_skill_dataset(out_dir: str | Path, *, skills: Sequence[int] = (0, 9), per_level: int = 4, seconds: float = 6.0,
                        size: tuple[int, int] = (128, 96), seed: int = 0, camera_shake: float = 0.0) -> Path:
    """Write ``per_level`` synthetic piano performances per synthetic ``skill`` and a PISA-style
    ``annotations.csv`` (``video_id,player_level``, level = skill + 1). Returns the annotation file.

    Each video is :func:`musicperf.synth.synthesize` of a piano, no expressive gestures, its own
    seed, ``size = (width, height)``. ``camera_shake`` defaults to 0 (a fixed camera, as PISA's
    recordings are), not the synthesizer's 0.6: a shaking camera moves every key edge of the
    keyboard between frames, which drowns the hand motion a small model has to learn from a
    few videos (measured in docs/instrument-skill.md).
    """
    from musicperf._util import write_text_atomic
    from musicperf.synth import synthesize

    out_dir = Path(out_dir)
    lines = ["video_id,player_level"]
    for si, skill in enumerate(skills):
        level = synth_skill_level(skill)
        for j in range(per_level):
            vid = f"skill{skill}_{j:03d}"
            synthesize(out_dir / vid, seconds=seconds, seed=seed * 10_000 + si * 100 + j, size=size,
                       instrument="piano", skill=int(skill), gestures=[], camera_shake=camera_shake)
            lines.append(f"{vid}/performance,{level}")
    path = out_dir / "annotations.csv"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


__all__ = ["SkillConfig", "SkillModel", "SkillNet", "SkillInputs", "skill_loss", "find_roi", "skill_inputs",
           "load_skill_inputs", "cached_skill_inputs", "read_skill_annotations", "train_skill", "evaluate_skill", "synth_skill_dataset",
           "synth_skill_level", "parse_roi", "write_labelled_videos", "ClassLabelledVideo"]


def __getattr__(name):
    # Deprecated alias, kept importable for code written before the rename.
    from musicperf.tasks._classify import deprecated_alias

    return deprecated_alias(__name__, name)
