"""Instrument recognition from sampled frames and the soundtrack, with late fusion (paper ``003``).

The task wires the shared machinery together: frames from :class:`musicperf.io.video.VideoReader`,
audio from :func:`musicperf.features.audio.load_performance_audio` and
:func:`~musicperf.features.audio.mel_patches`, a 2-D frame CNN from
:mod:`musicperf.models.resnet2d` (Inception-v3 in ``003``; users' torchvision weights accepted,
random initialisation otherwise), an audio CNN from :mod:`musicperf.models.audio2d` (Han et al.,
Choi et al. or Xception-style), metrics from :mod:`musicperf.evaluate.classification`.

Recipe (``003``, "Multimodality"): "We individually train audio and video representation models
and then exploit learned features from the last layers of the networks to train and evaluate the
joint model."

1. **Frames**: ``k`` frames sampled per video (evenly, at the centres of ``k`` equal spans;
   ``003`` compares k = 20, 30, 50, 100 and does not say how it samples), each labelled with the
   video's class; the frame network is ``backbone -> Linear(n) -> ReLU`` (the penultimate layer,
   size ``n``) ``-> Dropout -> Linear(K)`` softmax.
2. **Audio**: log-mel patches of ``audio_seconds`` (non-overlapping, at most
   ``max_audio_patches`` spread over the video), each labelled with the video's class; the
   audio network has the same ``n``-unit penultimate layer. The video's audio feature vector is
   the mean of its patches' penultimate features (``003``'s "one vector of the audio features").
3. **Late fusion**: the ``(k + 1, n)`` matrix of the k frame vectors and the audio vector,
   flattened, through "two fully-connected layers (each layer contains 1024 neurons and ReLU
   activation function) preceding the batch normalization, and a softmax prediction layer".

Choices (also in docs/instrument-skill.md): ``n`` must be the same for both networks for a ``(k+1, n)``
matrix; we add an ``n``-unit embedding layer (default 1024, as Han's dense layer) to each
network rather than rely on equal backbone widths. The fusion network is trained on the
training videos' features (``003`` gives no separate split) with the validation videos for model
selection. Video-only predictions average the k frames' softmax outputs. A video without sound
gets a silent (-100 dB) spectrogram, with a warning.

Imports torch at module level; import lazily.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musicperf.errors import DecodeError, ModelError, ParameterError
from musicperf.models.classifiers import BranchClassifier, LateFusion
from musicperf.tasks._classify import (
    ClassLabelledVideo,
    RowSource,
    fit_classifier,
    load_task_model,
    read_labelled_videos,
    save_task_model,
    stratified_split,
    write_labelled_videos,
)
from musicperf.train.loop import TrainConfig

log = logging.getLogger(__name__)

FORMAT = "musicperf-instrument"


@dataclass(frozen=True)
class InstrumentConfig:
    """Data and architecture settings of the instrument task (the paper's where it gives them).

    Attributes
    ----------
    k_frames : int
        Frames sampled per video (``003``: 20, 30, 50, 100; best 50).
    frame_backbone : {"inception_v3", "resnet18", "resnet34", "resnet50"}
        The 2-D frame CNN (``003``: Inception-v3).
    frame_size : (int, int)
        ``(height, width)`` of the frames fed to it (299 x 299 for Inception-v3).
    frame_weights : str or None
        A torchvision ``inception_v3`` / ``resnet*`` state dict to start from (``003``'s
        "PT" rows); random initialisation when None.
    audio_network : {"han", "choi", "xception"}
    sr, n_mels, n_fft, hop_length : int
        Mel spectrogram: 22050 Hz, 96 bands, 1024-sample FFT, 512-sample hop (Han et al. use
        128 bands, Choi et al. 96; our defaults).
    audio_seconds : float
        Length of each audio patch in seconds.
    max_audio_patches : int
        At most this many patches per video, spread evenly (bounds the cost of long videos).
    embed_dim : int
        ``n``, the penultimate layer size of both networks (1024).
    fusion_hidden : int
        Width of the two fusion layers (1024 in ``003``).
    width_factor, audio_width_factor : float
        Channel scale of the frame / audio CNN (1.0 = the published sizes; small for tests).
    dropout : float
        Dropout before each network's softmax layer.
    modality_dropout : float
        While the fusion trains, each video's k frame vectors are zeroed with this probability,
        else its audio vector with the same probability (our addition, see
        :func:`modality_dropout`); 0 trains the fusion exactly as described in ``003``.
    augment : {"none", "flip", "flip+color"}
        Frame augmentation while the frame network trains (:func:`augment_frames`).
    """

    k_frames: int = 30
    frame_backbone: str = "inception_v3"
    frame_size: tuple[int, int] = (299, 299)
    frame_weights: str | None = None
    audio_network: str = "choi"
    sr: int = 22050
    n_mels: int = 96
    n_fft: int = 1024
    hop_length: int = 512
    audio_seconds: float = 3.0
    max_audio_patches: int = 10
    embed_dim: int = 1024
    fusion_hidden: int = 1024
    width_factor: float = 1.0
    audio_width_factor: float = 1.0
    dropout: float = 0.5
    modality_dropout: float = 0.3
    augment: str = "flip"

    def __post_init__(self):
        if self.augment not in ("none", "flip", "flip+color"):
            raise ParameterError(f"augment must be 'none', 'flip' or 'flip+color', got {self.augment!r}")
        if not 0 <= self.modality_dropout < 0.5:
            raise ParameterError(f"modality_dropout must be in [0, 0.5), got {self.modality_dropout}")
        if self.k_frames < 1 or self.embed_dim < 1 or self.fusion_hidden < 1 or self.max_audio_patches < 1:
            raise ParameterError(f"k_frames, embed_dim, fusion_hidden, max_audio_patches must be >= 1: {self}")
        if self.audio_seconds <= 0 or min(self.frame_size) < 8:
            raise ParameterError(f"audio_seconds must be > 0 and frames at least 8x8: {self}")
        if self.frame_backbone == "inception_v3" and min(self.frame_size) < 75:
            raise ParameterError(f"inception_v3 needs frames of at least 75x75, got {self.frame_size}")
        if self.audio_network not in ("han", "choi", "xception"):
            raise ParameterError(f"audio_network {self.audio_network!r} is not han, choi or xception")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["frame_size"] = list(self.frame_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "InstrumentConfig":
        d = dict(d)
        d["frame_size"] = tuple(d["frame_size"])
        return cls(**d)


# ============================================================================ inputs


@dataclass
class VideoInputs:
    """What the networks see of one video.

    Attributes
    ----------
    frames : ndarray, shape (k, H, W, 3), uint8, or Path
        The sampled frames, RGB, or the ``.npy`` file holding them (inputs cached on disk by
        :func:`video_inputs`, read memory-mapped when needed).
    frame_times : ndarray, shape (k,), float
        Their times in seconds.
    mel : ndarray, shape (p, n_mels, n_frames), float32, or Path
        Log-mel dB patches of the soundtrack, or their ``.npy`` file.
    has_audio : bool
    """

    frames: np.ndarray | Path
    frame_times: np.ndarray
    mel: np.ndarray | Path
    has_audio: bool

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(frames, mel)`` as arrays (memory-mapped, read-only, when cached on disk)."""
        load = lambda a: np.load(a, mmap_mode="r") if isinstance(a, (str, Path)) else a  # noqa: E731
        return load(self.frames), load(self.mel)

    @property
    def n_mel(self) -> int:
        """Number of mel patches."""
        return len(self.arrays()[1]) if isinstance(self.mel, (str, Path)) else len(self.mel)


def sample_frames(path: str | Path, k: int, *, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``k`` frames spread evenly over a video: the frame at or after ``(i + 0.5) * duration / k``.

    Each frame is reached by seeking (:meth:`VideoReader.frames` with a start time), so a long
    video is not decoded in full.

    Returns
    -------
    frames : ndarray, shape (k, H, W, 3), uint8
    times : ndarray, shape (k,), float seconds
    """
    from musicperf.io.video import VideoReader

    with VideoReader(path, size=size) as reader:
        info = reader.info
        fps = info.fps or 25.0
        duration = info.duration or (info.n_frames / fps if info.n_frames else None)
        if not duration or duration <= 0:
            raise DecodeError(f"'{path}': cannot tell the video's duration to sample frames from")
        targets = (np.arange(k) + 0.5) * duration / k
        frames, times = [], []
        last = None
        for t in targets:
            got = None
            for ft, fr in reader.frames(float(t), float(t) + 3.0 / fps):
                got = (ft, fr)
                break
            if got is None:  # past the last decodable frame (announced duration too long)
                if last is None:
                    for ft, fr in reader.frames(0.0, float(t) + 3.0 / fps):
                        last = (ft, fr)
                if last is None:
                    raise DecodeError(f"'{path}': no frame could be decoded")
                got = last
            last = got
            times.append(got[0])
            frames.append(got[1])
    return np.stack(frames), np.asarray(times, dtype=np.float64)


def audio_patches(path: str | Path, config: InstrumentConfig, *, duration: float | None = None) -> tuple[np.ndarray, bool]:
    """Log-mel dB patches ``(p, n_mels, n_frames)`` of a video's soundtrack and whether it has one.

    Patches are ``audio_seconds`` long, non-overlapping, at most ``max_audio_patches`` spread
    evenly; a recording shorter than one patch gives one zero-padded patch. Without an audio
    stream, one silent patch (-100 dB) is returned with ``False`` and a warning is logged.
    """
    from musicperf.features.audio import load_performance_audio, mel_patches
    from musicperf.io.audio import has_audio

    if has_audio(path):
        y, has = load_performance_audio(path, sr=config.sr).y, True
    else:
        log.warning("'%s' has no sound; the audio branch sees silence", path)
        y, has = np.zeros(int(config.audio_seconds * config.sr), dtype=np.float32), False
    seconds = len(y) / config.sr if duration is None else duration
    n_total = max(1, int(np.floor(seconds / config.audio_seconds + 1e-9)))
    starts = np.arange(n_total) * config.audio_seconds
    if n_total > config.max_audio_patches:
        pick = np.round(np.linspace(0, n_total - 1, config.max_audio_patches)).astype(int)
        starts = starts[pick]
    mel = mel_patches(y, config.sr, starts, duration=config.audio_seconds, n_mels=config.n_mels,
                      n_fft=config.n_fft, hop_length=config.hop_length)
    return mel, has


def video_inputs(path: str | Path, config: InstrumentConfig, *, cache_dir: str | Path | None = None) -> VideoInputs:
    """Sampled frames and mel patches of one video, kept on disk in ``cache_dir`` when given.

    The cache is a folder per video (named after it and a key) holding ``frames.npy``,
    ``mel.npy`` and ``inputs.json``; the key covers the file's path, size and modification
    time and every data setting of ``config``; model settings do not invalidate it. With a
    cache, the returned ``frames`` and ``mel`` are the paths of the ``.npy`` files (nothing of
    the video stays in memory; training reads them memory-mapped batch by batch).
    """
    import json

    from musicperf._util import atomic_path, write_text_atomic

    path = Path(path)
    if cache_dir is None:
        frames, times = sample_frames(path, config.k_frames, size=config.frame_size)
        mel, has = audio_patches(path, config)
        return VideoInputs(frames, times, mel, has)
    st = path.stat()
    keys = {k: v for k, v in config.to_dict().items()
            if k in ("k_frames", "frame_size", "sr", "n_mels", "n_fft", "hop_length", "audio_seconds", "max_audio_patches")}
    h = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{sorted(keys.items())}".encode()).hexdigest()[:16]
    folder = Path(cache_dir) / f"{path.parent.name}_{path.stem}.{h}"
    doc_path = folder / "inputs.json"
    if not doc_path.is_file():
        frames, times = sample_frames(path, config.k_frames, size=config.frame_size)
        mel, has = audio_patches(path, config)
        folder.mkdir(parents=True, exist_ok=True)
        for name, arr in (("frames", frames), ("mel", mel)):
            with atomic_path(folder / f"{name}.npy") as tmp:
                np.save(tmp, arr)
        # written last: its presence says the arrays are complete
        write_text_atomic(doc_path, json.dumps({"video": str(path), "frame_times": times.tolist(), "has_audio": bool(has)}) + "\n")
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
        return VideoInputs(folder / "frames.npy", np.asarray(doc["frame_times"], dtype=np.float64), folder / "mel.npy",
                           bool(doc["has_audio"]))
    except (json.JSONDecodeError, KeyError) as exc:
        raise DecodeError(f"instrument input cache '{doc_path}' is damaged ({exc}); delete the folder") from exc


# ============================================================================ networks (in musicperf.models.classifiers)


def _frame_backbone(config: InstrumentConfig) -> tuple[nn.Module, dict]:
    """The frame CNN without its ``fc`` and the configuration that rebuilds it."""
    from musicperf.models.resnet2d import (
        InceptionV3,
        InceptionV3Config,
        ResNet2D,
        ResNet2DConfig,
        build_image_backbone,
        load_image_backbone,
    )

    if config.frame_weights:
        net = load_image_backbone(config.frame_weights)
        kind = "inception_v3" if isinstance(net, InceptionV3) else f"resnet{net.config.depth}"
        if kind != config.frame_backbone:
            raise ParameterError(f"frame weights '{config.frame_weights}' are a {kind}, but frame_backbone is {config.frame_backbone!r}")
    else:
        net = build_image_backbone(config.frame_backbone, n_classes=0, width_factor=config.width_factor)
    net.fc = nn.Identity()
    if isinstance(net, InceptionV3):
        net.AuxLogits = None
        cfg = InceptionV3Config(n_classes=0, aux_logits=False, width_factor=net.config.width_factor, dropout=net.config.dropout)
        net.config = cfg
    else:
        assert isinstance(net, ResNet2D)
        c = net.config
        net.config = ResNet2DConfig(depth=c.depth, in_channels=c.in_channels, n_classes=0, widths=c.widths)
    return net.train(), net.config.to_dict()


def _frame_normalization(backbone: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from musicperf.models.resnet2d import IMAGE_NORMALIZATIONS

    return IMAGE_NORMALIZATIONS["inception" if backbone == "inception_v3" else "imagenet"]


def frames_to_tensor(frames: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 frames ``(B, H, W, 3)`` -> normalised float ``(B, 3, H, W)``: ``(x / 255 - mean) / std``."""
    # contiguous: the permuted view is channels-last, and torch 2.13's CPU convolution backward
    # crashes (segmentation fault) on channels-last inputs of tiny networks with one thread
    x = frames.permute(0, 3, 1, 2).contiguous().float() / 255.0
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def augment_frames(xs: list[torch.Tensor], *, max_shift: float = 0.1, color: bool = False) -> list[torch.Tensor]:
    """Training-time augmentation of normalised frames ``(B, 3, H, W)``.

    A random horizontal flip per frame and one random translation of up to ``max_shift`` of the
    size per batch (edge padding); with ``color``, also a random permutation of the colour
    channels per frame (so a network cannot tell classes apart by the colours of the scene,
    e.g. the random backdrops of synthetic videos). Our addition: ``003`` trains on millions of
    frames and does not mention augmentation.
    """
    x = xs[0]
    if color:
        perms = torch.stack([torch.randperm(3) for _ in range(len(x))]).to(x.device)
        x = torch.gather(x, 1, perms[:, :, None, None].expand_as(x))
    flip = torch.rand(len(x), device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    h, w = x.shape[2:]
    ph, pw = int(h * max_shift), int(w * max_shift)
    if ph or pw:
        dy = int(torch.randint(0, 2 * ph + 1, (1,)))
        dx = int(torch.randint(0, 2 * pw + 1, (1,)))
        x = F.pad(x, (pw, pw, ph, ph), mode="replicate")[:, :, dy : dy + h, dx : dx + w]
    return [x] + list(xs[1:])


def modality_dropout(feats: torch.Tensor, p: float, *, n_audio: int = 1) -> torch.Tensor:
    """Zero all frame vectors of a sample with probability ``p``, else its audio vector(s) with
    probability ``p``.

    The fusion network is trained on the training videos' penultimate features, which both
    branches separate perfectly once they have fitted the training set; the fusion then leans on
    whichever block is larger (k frame vectors against one audio vector: the imbalance ``004``'s
    Table 2 is about) and ignores the other. Dropping a whole modality at random makes it learn
    to use each. Our addition; ``003`` does not describe its fusion training.

    Parameters
    ----------
    feats : Tensor, shape (B, k + n_audio, n)
    p : float
    """
    if p <= 0:
        return feats
    u = torch.rand(len(feats), device=feats.device)
    keep_frames = (u >= p).to(feats.dtype)[:, None, None]
    keep_audio = ((u < p) | (u >= 2 * p)).to(feats.dtype)[:, None, None]
    k = feats.shape[1] - n_audio
    return torch.cat([feats[:, :k] * keep_frames, feats[:, k:] * keep_audio], 1)


@dataclass
class InstrumentModel:
    """A trained instrument recogniser: frame network, audio network, late fusion.

    Attributes
    ----------
    classes : list of str
    config : InstrumentConfig
    frame_net, audio_net : BranchClassifier
    fusion : LateFusion
    meta : dict
        Training information saved with the model (split, histories, metrics).
    """

    classes: list[str]
    config: InstrumentConfig
    frame_net: BranchClassifier
    audio_net: BranchClassifier
    fusion: LateFusion
    frame_backbone_config: dict
    audio_backbone_config: dict
    meta: dict = field(default_factory=dict)

    @property
    def normalization(self):
        return _frame_normalization(self.config.frame_backbone)

    def prepare_frames(self, xs):
        mean, std = self.normalization
        return [frames_to_tensor(xs[0], mean, std)]

    @torch.no_grad()
    def features(self, inputs: VideoInputs) -> torch.Tensor:
        """The ``(k + 1, n)`` fusion input of one video: k frame vectors, then the audio vector."""
        self.frame_net.eval()
        self.audio_net.eval()
        frames, mel = (np.array(a) for a in inputs.arrays())
        fr = self.prepare_frames([torch.from_numpy(frames)])[0]
        f = torch.cat([self.frame_net.embed(fr[i : i + 32]) for i in range(0, len(fr), 32)])
        a = self.audio_net.embed(torch.from_numpy(mel).float()).mean(0, keepdim=True)
        return torch.cat([f, a], 0)

    @torch.no_grad()
    def predict_inputs(self, inputs: VideoInputs) -> dict[str, np.ndarray]:
        """Class probabilities ``(K,)`` of one video: ``video`` (mean over the k frames),
        ``audio`` (mean over the patches) and ``fusion``."""
        self.frame_net.eval()
        self.audio_net.eval()
        self.fusion.eval()
        frames, mel = (np.array(a) for a in inputs.arrays())
        fr = self.prepare_frames([torch.from_numpy(frames)])[0]
        pv = torch.cat([F.softmax(self.frame_net(fr[i : i + 32]), 1) for i in range(0, len(fr), 32)]).mean(0)
        pa = F.softmax(self.audio_net(torch.from_numpy(mel).float()), 1).mean(0)
        pf = F.softmax(self.fusion(self.features(inputs)[None]), 1)[0]
        return {"video": pv.numpy(), "audio": pa.numpy(), "fusion": pf.numpy()}

    def predict(self, path: str | Path, *, cache_dir: str | Path | None = None) -> dict[str, np.ndarray]:
        """:meth:`predict_inputs` of a video file."""
        inputs = video_inputs(path, self.config, cache_dir=cache_dir)
        if len(inputs.frame_times) != self.config.k_frames:
            raise ParameterError(f"'{path}': got {len(inputs.frame_times)} frames, the model needs {self.config.k_frames}")
        return self.predict_inputs(inputs)

    # -- files
    def save(self, model_dir: str | Path) -> Path:
        """Write ``model.safetensors`` + ``model.json`` (classes, configuration, normalisation, training info)."""
        state = {}
        for prefix, mod in (("frame.", self.frame_net), ("audio.", self.audio_net), ("fusion.", self.fusion)):
            state.update({prefix + k: v for k, v in mod.state_dict().items()})
        mean, std = self.normalization
        meta = {"task": "instrument recognition (003)", "classes": list(self.classes), "config": self.config.to_dict(),
                "frame_backbone": self.frame_backbone_config, "audio_backbone": self.audio_backbone_config,
                "frame_normalization": {"mean": list(mean), "std": list(std)},
                "versions": {"torch": torch.__version__}, **self.meta}
        return save_task_model(model_dir, FORMAT, state, meta)

    @classmethod
    def load(cls, model_dir: str | Path) -> "InstrumentModel":
        """Read a model folder written by :meth:`save` (eval mode, CPU)."""
        from musicperf.models.audio2d import audio_cnn_from_config
        from musicperf.models.checkpoints import load_state_strict
        from musicperf.models.resnet2d import image_backbone_from_config

        state, doc = load_task_model(model_dir, FORMAT)
        try:
            config = InstrumentConfig.from_dict(doc["config"])
            classes = list(doc["classes"])
            fb = image_backbone_from_config(doc["frame_backbone"])
            ab = audio_cnn_from_config(doc["audio_backbone"])
        except (KeyError, TypeError) as exc:
            raise ModelError(f"'{model_dir}/model.json' is incomplete: {exc!r}") from exc
        k = len(classes)
        model = cls(classes, config,
                    BranchClassifier(fb, fb.feature_dim, config.embed_dim, k, config.dropout),
                    BranchClassifier(ab, ab.feature_dim, config.embed_dim, k, config.dropout),
                    LateFusion(config.k_frames + 1, config.embed_dim, k, config.fusion_hidden),
                    doc["frame_backbone"], doc["audio_backbone"],
                    {k2: v for k2, v in doc.items() if k2 in ("split", "training", "validation")})
        for prefix, mod in (("frame.", model.frame_net), ("audio.", model.audio_net), ("fusion.", model.fusion)):
            load_state_strict(mod, {k2[len(prefix):]: v for k2, v in state.items() if k2.startswith(prefix)},
                              source=f"'{model_dir}' ({prefix[:-1]} network)")
        for mod in (model.frame_net, model.audio_net, model.fusion):
            mod.eval()
        return model


# ============================================================================ training, evaluation


def load_inputs(items: Sequence[ClassLabelledVideo], config: InstrumentConfig, *, cache_dir=None,
                progress: Callable[[int, int, Path], None] | None = None) -> list[VideoInputs]:
    """:func:`video_inputs` of every video, with an optional ``progress(i, n, path)`` callback."""
    out = []
    for i, it in enumerate(items):
        if progress:
            progress(i, len(items), it.path)
        out.append(video_inputs(it.path, config, cache_dir=cache_dir))
    return out


def _stack_frames(inputs: Sequence[VideoInputs], labels: np.ndarray) -> tuple[RowSource, torch.Tensor]:
    """The frames of several videos as one training input (not concatenated) and their labels."""
    x = RowSource([v.frames for v in inputs])
    y = torch.from_numpy(np.concatenate([np.full(len(v.frame_times), c) for v, c in zip(inputs, labels)])).long()
    return x, y


def _stack_mel(inputs: Sequence[VideoInputs], labels: np.ndarray) -> tuple[RowSource, torch.Tensor]:
    """The mel patches of several videos as one training input (not concatenated) and their labels."""
    x = RowSource([v.mel for v in inputs])
    y = torch.from_numpy(np.concatenate([np.full(v.n_mel, c) for v, c in zip(inputs, labels)])).long()
    return x, y


def train_instrument(
    items: Sequence[ClassLabelledVideo],
    config: InstrumentConfig = InstrumentConfig(),
    train_config: TrainConfig = TrainConfig(weight_decay=1e-4, patience=10),
    *,
    val_fraction: float = 0.2,
    fusion_epochs: int | None = None,
    cache_dir: str | Path | None = None,
    inputs: Sequence[VideoInputs] | None = None,
    progress: Callable[[int, int, Path], None] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
) -> InstrumentModel:
    """Train the frame network, the audio network, then the late fusion (``003``).

    Parameters
    ----------
    items : sequence of ClassLabelledVideo
        The training videos (see :func:`~musicperf.tasks._classify.read_labelled_videos`).
    config : InstrumentConfig
    train_config : TrainConfig
        Adam settings, epochs, patience and seed of each of the three stages (``003`` gives none;
        our defaults: lr 1e-3, weight decay 1e-4, batch 32, early stopping after 10 epochs).
    val_fraction : float
        Share of each class's videos held out for model selection (0 keeps the last epoch).
    fusion_epochs : int, optional
        Epochs of the fusion stage (default ``train_config.epochs``).
    cache_dir : str or Path, optional
        Where sampled frames and mel patches are kept as ``.npy`` files (see
        :func:`video_inputs`); training then reads them memory-mapped, batch by batch. The
        frames are never concatenated in memory either way.
    inputs : sequence of VideoInputs, optional
        Already loaded inputs of ``items`` (skips decoding).
    progress : callable, optional
        ``progress(i, n, path)`` while videos are read.
    checkpoint_dir : str or Path, optional
        Each stage writes ``train_state.<frame|audio|fusion>.safetensors`` there after every
        epoch; with ``resume``, an interrupted run continues exactly where it stopped
        (finished stages are restored from their checkpoints without training again; see
        :func:`~musicperf.tasks._classify.fit_classifier`).
    resume : bool

    Returns
    -------
    InstrumentModel
        With ``meta["training"]`` (per-stage histories) and ``meta["split"]``.
    """
    classes = sorted({it.label for it in items})
    if len(classes) < 2:
        raise ParameterError(f"instrument training needs at least 2 classes, got {classes}")
    labels = np.array([classes.index(it.label) for it in items])
    if inputs is None:
        inputs = load_inputs(items, config, cache_dir=cache_dir, progress=progress)
    tr, va = stratified_split(labels, val_fraction, train_config.seed)
    torch.manual_seed(train_config.seed)
    k = len(classes)
    fb, fb_cfg = _frame_backbone(config)
    from musicperf.models.audio2d import build_audio_cnn

    ab = build_audio_cnn(config.audio_network, n_mels=config.n_mels, width_factor=config.audio_width_factor)
    model = InstrumentModel(classes, config,
                            BranchClassifier(fb, fb.feature_dim, config.embed_dim, k, config.dropout),
                            BranchClassifier(ab, ab.feature_dim, config.embed_dim, k, config.dropout),
                            LateFusion(config.k_frames + 1, config.embed_dim, k, config.fusion_hidden),
                            fb_cfg, ab.config())
    sub = lambda idx: [inputs[i] for i in idx]  # noqa: E731
    import json

    data_id = json.dumps({"train": [[str(items[i].path), items[i].label] for i in tr],
                          "val": [[str(items[i].path), items[i].label] for i in va], "config": config.to_dict()})
    ckpt = {stage: (None if checkpoint_dir is None else Path(checkpoint_dir) / f"train_state.{stage}.safetensors")
            for stage in ("frame", "audio", "fusion")}

    # 1. frames
    xf, yf = _stack_frames(sub(tr), labels[tr])
    xfv, yfv = _stack_frames(sub(va), labels[va]) if len(va) else (None, None)
    h_frame = fit_classifier(model.frame_net, xf, yf, xfv, yfv, train_config, prepare=model.prepare_frames,
                             augment=None if config.augment == "none" else
                             (lambda xs: augment_frames(xs, color=config.augment == "flip+color")),
                             checkpoint=ckpt["frame"], resume=resume, data_id=data_id)
    # 2. audio
    xa, ya = _stack_mel(sub(tr), labels[tr])
    xav, yav = _stack_mel(sub(va), labels[va]) if len(va) else (None, None)
    h_audio = fit_classifier(model.audio_net, xa, ya, xav, yav, train_config, prepare=lambda xs: [x.float() for x in xs],
                             checkpoint=ckpt["audio"], resume=resume, data_id=data_id)
    # 3. late fusion on the frozen networks' penultimate features
    feats = torch.stack([model.features(v) for v in inputs])
    ytr, yva = torch.from_numpy(labels[tr]).long(), torch.from_numpy(labels[va]).long()
    fcfg = replace(train_config, epochs=fusion_epochs or train_config.epochs)
    h_fusion = fit_classifier(model.fusion, feats[tr], ytr, feats[va] if len(va) else None, yva if len(va) else None, fcfg,
                              augment=lambda xs: [modality_dropout(xs[0], config.modality_dropout)],
                              checkpoint=ckpt["fusion"], resume=resume, data_id=data_id)
    model.meta = {
        "split": {"train": [str(items[i].path) for i in tr], "val": [str(items[i].path) for i in va],
                  "name": f"stratified by class, val_fraction={val_fraction}, seed={train_config.seed}"},
        "training": {"config": train_config.to_dict(), "frame": asdict(h_frame), "audio": asdict(h_audio),
                     "fusion": asdict(h_fusion)},
    }
    return model


def evaluate_instrument(model: InstrumentModel, items: Sequence[ClassLabelledVideo], *,
                        inputs: Sequence[VideoInputs] | None = None, cache_dir=None, progress=None) -> dict:
    """Hit@1, Hit@3, macro F1 (``003``'s tables) of the video-only, audio-only and fused predictions.

    Returns
    -------
    dict
        ``{"video": report, "audio": report, "fusion": report, "n_videos": int, "chance": float}``
        where each report is :func:`musicperf.evaluate.classification.classification_report`;
        ``chance`` is the accuracy of always answering the most frequent class.
        Labels unknown to the model raise a :class:`ParameterError`.
    """
    from musicperf.evaluate.classification import chance_accuracy, classification_report

    unknown = sorted({it.label for it in items} - set(model.classes))
    if unknown:
        raise ParameterError(f"labels {unknown} are not among the model's classes {model.classes}")
    if inputs is None:
        inputs = load_inputs(items, model.config, cache_dir=cache_dir, progress=progress)
    y = np.array([model.classes.index(it.label) for it in items])
    probs = [model.predict_inputs(v) for v in inputs]
    out = {}
    for m in ("video", "audio", "fusion"):
        out[m] = classification_report(y, np.stack([p[m] for p in probs]), classes=model.classes)
    out["n_videos"] = len(items)
    out["chance"] = chance_accuracy(y, len(model.classes))
    return out


# ============================================================================ synthetic data


def synth_instrument_dataset(out_dir: str | Path, *, instruments: Sequence[str] = ("guitar", "violin", "flute", "drums", "piano"),
                             per_class: int = 4, seconds: float = 3.0, size: tuple[int, int] = (128, 96),
                             seed: int = 0, background: str = "plain") -> Path:
    """Write ``per_class`` synthetic performances of each instrument and ``labels.csv``.

    Each video is :func:`musicperf.synth.synthesize` with its own seed (appearance, camera,
    score and sound vary), no expressive gestures, ``size`` = (width, height). Returns the CSV.
    """
    from musicperf.synth import synthesize

    out_dir = Path(out_dir)
    items = []
    for ci, ins in enumerate(instruments):
        for j in range(per_class):
            s = seed * 10_000 + ci * 100 + j
            res = synthesize(out_dir / ins / f"{ins}_{j:03d}", seconds=seconds, seed=s, size=size,
                             instrument=ins, gestures=[], background=background)
            items.append(ClassLabelledVideo(res.video, ins))
    return write_labelled_videos(out_dir / "labels.csv", items)


__all__ = [
    "InstrumentConfig", "InstrumentModel", "VideoInputs", "BranchClassifier", "LateFusion",
    "sample_frames", "audio_patches", "video_inputs", "load_inputs", "train_instrument", "evaluate_instrument",
    "synth_instrument_dataset", "read_labelled_videos", "ClassLabelledVideo",
]


def __getattr__(name):
    # Deprecated alias, kept importable for code written before the rename.
    from musicperf.tasks._classify import deprecated_alias

    return deprecated_alias(__name__, name)
