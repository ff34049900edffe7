"""The experiments of paper 001 (Tables 6, 7, 8 and A1-A5) on any annotated videos.

Table 7 of 001 crosses four *methods* with two *taxonomies* and two *scopes*:

* methods, accumulated left to right (Section 6 of 001: "proposed methods are incorporated in
  accumulation"):

  ``SM``                single model: one network, K sigmoid outputs, MSE loss (Section 5.2);
  ``SM+BB``             + Dynamic Batch Balance (Equations 1-3, Section 4.2);
  ``SM+BB+TS``          + Temporal Smoothing of the training targets (Equation 6, Section 4.3);
  ``Bimodal+SM+BB+TS``  + the audio network of Figure 4a on the timbral features of Section 4.4,
                        fused early with the video features (Figure 4b);

* taxonomies ``gestures18`` (Table 2) and ``superclasses7`` (Table 4/5);
* scopes "one video" (001's Video-1: a random 80/10/10 split of its samples) and "all videos"
  (a random 80/10/10 split of the samples of every video pooled).

Table 8 is leave-one-video-out with SM+BB+TS (7 super-classes in 001).

Pipeline. Each video is cut into non-overlapping 16-frame samples resized to 112 x 112
(Section 5.1). With ``finetune="none"`` (the default) the 3D-ResNet backbone is **frozen
entirely** and run once per sample; its pooled conv5 features (512 for ResNet-18/34) are cached
on disk, and only the classifier of Figure 4b (three Linear-ReLU-Dropout layers,
:class:`musicperf.models.heads.SingleModelHead`, through
:func:`musicperf.models.fusion.build_fusion_model`) is trained -- with the audio network for the
bimodal method. ``finetune="conv5"`` is 001's setting: the conv4 activations are cached too
(float16) and conv5 trains with the classifier; on a CPU that costs about 90 s per epoch of 256
samples (docs/models.md). Every table says which was used.

Choices where 001 is silent or ambiguous (also in docs/experiments.md):

* evaluation targets are the binary "any frame" sample labels for every method, so the four
  columns are scored against the same truth; TS changes the *training* targets only, and the
  validation set used for early stopping is scored against the binary labels too;
* scores are thresholded at 0.5 (001: "after applying a suitable threshold");
* the average F1 is the macro average over classes with at least one positive in the scored set
  (:func:`musicperf.evaluate.metrics.multilabel_report`, ``absent="exclude"``); the number of
  classes averaged is written beside it;
* the video features are standardised with the training set's mean and standard deviation
  (the audio network standardises its own input the same way);
* "Video-1" is the first video given (``one_video`` picks another).

Outputs (all written atomically): ``cells/<key>.json`` per trained cell (skipped on rerun when
its fingerprint matches: the run is resumable), ``features/`` (per-video cached features),
``table7.csv`` / ``table7.md`` (or ``table8``), and per-class tables ``tableA_*.csv/md``.

Imports numpy and the standard library at module level; torch, PyAV and librosa only inside
the functions that need them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from musicperf._util import atomic_path, write_text_atomic
from musicperf.errors import NoAudioError, ParameterError

log = logging.getLogger(__name__)

METHODS = ("SM", "SM+BB", "SM+BB+TS", "Bimodal+SM+BB+TS")
TAXONOMIES = ("gestures18", "superclasses7")
#: Bumped whenever cached features or cell results would change meaning.
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class ExperimentConfig:
    """Settings of an experiment run (the papers' where they give one).

    Attributes
    ----------
    backbone : str
        ``resnet10``/``resnet18``/``resnet34`` (001)/``resnet50``/``r3d_18``.
    width_factor : float
        Scales the backbone widths (tiny test models); 1.0 is the real network.
    weights : str or None
        A Kinetics checkpoint for :func:`musicperf.models.load_video_backbone` (e.g. Hara et
        al.'s ``resnet-34-kinetics.pth``); None uses random weights seeded by ``seed``.
    size : int
        Frames are resized to ``size x size`` pixels (001: 112).
    clip_length : int
        Frames per sample, no overlap (001: 16).
    epochs, patience, batch_size, lr, weight_decay
        Classifier training (001: batch 32, lr 1e-3, weight decay 1e-2, 3000 epochs).
    hidden, dropout
        Classifier hidden sizes and dropout (001 gives neither; see docs/models.md).
    audio_dim : int
        Size of the audio representation (001 Figure 4a: 400).
    audio_hidden : tuple of int
        Hidden sizes of the audio network (001 Figure 4a has three; sizes not given, see
        :class:`musicperf.models.audio.AudioMLP`).
    threshold : float
        Score threshold for precision/recall/F1.
    fractions : (float, float, float)
        Train/validation/test fractions of the random splits (001: 0.8, 0.1, 0.1).
    val_fraction : float
        Validation share of the training videos in leave-one-video-out (001: about 10%).
    seed : int
        Seeds the splits and the training.
    backbone_seed : int
        Seeds the random backbone weights (unused with ``weights``); kept apart from ``seed`` so
        that several training seeds share one set of cached features.
    one_video : int
        Index (in the order given) of the video used for the "one video" scope.
    finetune : {"none", "conv5"}
        ``"none"``: the whole backbone is frozen and only the classifier (and the audio network)
        trains on pooled features. ``"conv5"``: the papers' setting: conv1-conv4 frozen, their
        activations computed once per sample and cached (float16), conv5 (``layer4``) trained
        with the classifier.
    """

    backbone: str = "resnet34"
    width_factor: float = 1.0
    weights: str | None = None
    size: int = 112
    clip_length: int = 16
    epochs: int = 100
    patience: int | None = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    hidden: tuple[int, ...] = (256, 128, 64)
    dropout: float = 0.5
    audio_dim: int = 400
    audio_hidden: tuple[int, ...] = (1024, 512, 512)
    threshold: float = 0.5
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    val_fraction: float = 0.1
    seed: int = 0
    backbone_seed: int = 0
    one_video: int = 0
    finetune: str = "none"

    def __post_init__(self):
        if self.finetune not in ("none", "conv5"):
            raise ParameterError(f"finetune must be 'none' or 'conv5', got {self.finetune!r}")
        if self.size < 16 or self.clip_length < 1:
            raise ParameterError(f"size must be >= 16 and clip_length >= 1, got {self.size} and {self.clip_length}")
        if self.width_factor <= 0:
            raise ParameterError(f"width_factor must be > 0, got {self.width_factor}")
        if self.one_video < 0:
            raise ParameterError(f"one_video must be >= 0, got {self.one_video}")

    def feature_key(self) -> dict:
        """The settings the cached per-video features depend on."""
        w = None
        if self.weights is not None:
            p = Path(self.weights)
            w = [str(p.resolve()), p.stat().st_size if p.is_file() else None]
        key = {"backbone": self.backbone, "width_factor": self.width_factor, "weights": w,
               "size": self.size, "clip_length": self.clip_length,
               "seed": self.backbone_seed if self.weights is None else None, "format": FORMAT_VERSION}
        if self.finetune == "conv5":
            key["conv4"] = True  # these caches also hold the conv4 activations
        return key

    def train_key(self) -> dict:
        """The settings a cell's result depends on besides its data."""
        return {k: v for k, v in asdict(self).items() if k not in ("one_video", "backbone_seed")}


# --------------------------------------------------------------------------- data
@dataclass
class VideoData:
    """Per-sample features and labels of one annotated video.

    Attributes
    ----------
    id : str
        Short name (file stem, made unique).
    path : Path
    fps : float
    starts : ndarray of int, shape (n,)
        First frame of each sample.
    video : ndarray of float32, shape (n, D)
        Pooled features of the frozen backbone.
    audio : ndarray of float32, shape (n, 28, 108), or None
        Timbral features of each sample's 0.64 s (None when the video has no sound).
    labels : dict of str to dict of str to ndarray
        ``labels[taxonomy]["any" | "ts"]``: ``(n, K)`` float32 sample labels (binary "any
        frame", or temporally smoothed, Equation 6 of 001).
    classes : dict of str to list of str
    background : str
        Plain or cluttered, from the video's synth truth when there is one, else "".
    """

    id: str
    path: Path
    fps: float
    starts: np.ndarray
    video: np.ndarray
    audio: np.ndarray | None
    labels: dict = field(default_factory=dict)
    classes: dict = field(default_factory=dict)
    background: str = ""
    conv4: np.ndarray | None = None  # (n, C, T', H', W') float16, with finetune="conv5"

    @property
    def n(self) -> int:
        return len(self.starts)


def _file_sig(path: Path) -> list:
    st = path.stat()
    return [str(path.resolve()), st.st_size, int(st.st_mtime)]


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _feature_extractor(config: ExperimentConfig):
    """A frozen GestureNet whose ``forward_features`` gives the pooled backbone features."""
    import torch

    from musicperf.models import build_backbone, load_video_backbone
    from musicperf.models.gesturenet import GestureNet

    if config.weights is not None:
        bb = load_video_backbone(config.weights, keep_head=False)
    else:
        torch.manual_seed(config.backbone_seed)
        bb = build_backbone(config.backbone, width_factor=config.width_factor)
    net = GestureNet(bb, 1, design="single", keep_fc=False, trainable="none")
    net.eval()
    return net


def _video_features(net, path: Path, config: ExperimentConfig, *,
                    batch: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Pooled features ``(n, D)``, sample starts ``(n,)`` and, with ``finetune="conv5"``, the
    conv4 activations ``(n, C, T', H', W')`` (float16) of every 16-frame sample of a video."""
    import torch

    from musicperf.io.video import VideoReader

    feats, starts, pending, conv4 = [], [], [], []
    fmt = torch.channels_last_3d  # the fastest checked fp32 mode on the development CPU
    keep_conv4 = config.finetune == "conv5"

    def flush():
        x = torch.from_numpy(np.stack(pending)).permute(0, 4, 1, 2, 3).float().div_(255.0)
        with torch.no_grad():
            h = net.conv4(x.contiguous(memory_format=fmt))
            feats.append(net.backbone.forward_features_from_conv4(h).float().numpy())
            if keep_conv4:
                conv4.append(h.contiguous().to(torch.float16).numpy())
        pending.clear()

    net.to(memory_format=fmt)
    try:
        with VideoReader(path, size=(config.size, config.size)) as reader:
            for clip in reader.clips(config.clip_length, config.clip_length):
                pending.append(clip.frames)
                starts.append(clip.start_frame)
                if len(pending) == batch:
                    flush()
            if pending:
                flush()
    finally:
        net.to(memory_format=torch.contiguous_format)
    if not starts:
        raise ParameterError(f"video '{path}' is shorter than one sample of {config.clip_length} frames")
    return (np.concatenate(feats).astype(np.float32), np.asarray(starts, dtype=np.int64),
            np.concatenate(conv4) if keep_conv4 else None)


def _audio_features(path: Path, starts: np.ndarray, fps: float, clip_length: int) -> np.ndarray | None:
    from musicperf.features.audio import load_performance_audio, timbral_features

    try:
        pa = load_performance_audio(path)
    except NoAudioError:
        log.warning("'%s' has no audio stream: the bimodal column is n/a for it", path)
        return None
    return timbral_features(pa.y, pa.sr, segment_starts=starts / fps, segment_duration=clip_length / fps).astype(np.float32)


def _unique_ids(paths: Sequence[Path]) -> list[str]:
    ids = []
    for p in paths:
        base = p.stem if p.stem != "performance" else p.parent.name  # synth folders all hold performance.mp4
        name, k = base, 2
        while name in ids:
            name, k = f"{base}-{k}", k + 1
        ids.append(name)
    return ids


def load_dataset(
    data: Sequence[str | Path] | str | Path,
    out_dir: str | Path,
    config: ExperimentConfig = ExperimentConfig(),
    *,
    taxonomies: Sequence[str] = TAXONOMIES,
    progress: Callable[[str], None] | None = None,
    features_dir: str | Path | None = None,
) -> list[VideoData]:
    """Features and labels of every annotated video, computed once and cached in ``out_dir/features``.

    Parameters
    ----------
    data : str, Path or sequence of them
        ``VIDEO=ANNOTATIONS`` pairs, folders (a ``musicperf synth`` folder holds
        ``performance.mp4`` and ``performance.eaf``), YAML manifests or videos with a same-named
        ``.eaf`` (see :func:`musicperf.tasks.gestures.discover`).
    out_dir : str or Path
    config : ExperimentConfig
    taxonomies : sequence of {"gestures18", "superclasses7"}
    progress : callable, optional
        Called with one line of text per video (the CLI prints it).
    features_dir : str or Path, optional
        Where the per-video features are cached (default ``out_dir/features``); runs that share
        it compute each video's features once.

    Returns
    -------
    list of VideoData
        In the order given.
    """
    from musicperf.io.video import probe
    from musicperf.labels.frames import frame_labels
    from musicperf.labels.samples import sample_labels
    from musicperf.labels.taxonomy import Taxonomy
    from musicperf.tasks.gestures import discover, read_annotations

    for t in taxonomies:
        if t not in TAXONOMIES:
            raise ParameterError(f"unknown taxonomy {t!r}; choose from {', '.join(TAXONOMIES)}")
    items = discover(data, need_annotations=True)
    ids = _unique_ids([it.video for it in items])
    feat_dir = Path(features_dir) if features_dir is not None else Path(out_dir) / "features"
    net = None
    out = []
    for vid, it in zip(ids, items):
        info = probe(it.video)
        fps = float(info.fps)
        key = _hash({"video": _file_sig(it.video), "config": config.feature_key()})
        cache = feat_dir / f"{vid}-{key}.npz"
        t0 = time.perf_counter()
        if cache.is_file():
            with np.load(cache) as z:
                video, starts = z["video"], z["starts"]
                audio = z["audio"] if "audio" in z.files else None
                conv4 = z["conv4"] if "conv4" in z.files else None
            how = "cached"
        else:
            if net is None:
                net = _feature_extractor(config)
            video, starts, conv4 = _video_features(net, it.video, config)
            audio = _audio_features(it.video, starts, fps, config.clip_length)
            arrays = {"video": video, "starts": starts}
            if audio is not None:
                arrays["audio"] = audio
            if conv4 is not None:
                arrays["conv4"] = conv4
            with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
            how = "computed"
        aset = read_annotations(it.annotations)
        n_frames = max(int(info.n_frames), int(starts.max()) + config.clip_length)
        vd = VideoData(vid, it.video, fps, starts, video, audio, conv4=conv4)
        for t in taxonomies:
            tax = Taxonomy.builtin(t)
            frames = frame_labels(aset, tax, fps=fps, n_frames=n_frames, unknown="ignore")
            vd.labels[t] = {h: sample_labels(frames, starts, length=config.clip_length, how=h) for h in ("any", "ts")}
            vd.classes[t] = list(tax.classes)
        truth = it.video.parent / "truth.json"
        if truth.is_file():
            try:
                vd.background = str(json.loads(truth.read_text(encoding="utf-8")).get("background", {}).get("kind", ""))
            except (OSError, ValueError):
                vd.background = ""
        if progress is not None:
            progress(f"{vid}: {vd.n} samples of {config.clip_length} frames, features {how} in "
                     f"{time.perf_counter() - t0:.1f} s" + ("" if audio is not None else " (no audio)"))
        out.append(vd)
    return out


# --------------------------------------------------------------------------- one cell
@dataclass(frozen=True)
class Cell:
    """One trained model: a scope, a taxonomy, a method and its split."""

    table: str  # "table7" | "table8"
    scope: str  # "one video: <id>" | "all videos" | "test video: <id>"
    taxonomy: str
    method: str

    @property
    def key(self) -> str:
        raw = f"{self.table}__{self.scope}__{self.taxonomy}__{self.method}"
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in raw)


def _method_flags(method: str) -> tuple[bool, bool, bool]:
    """``(dbb, ts, audio)`` of a method name."""
    if method not in METHODS:
        raise ParameterError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    return "BB" in method, "TS" in method, method.startswith("Bimodal")


def _report_dict(rep: dict) -> dict:
    """The JSON-safe part of a multilabel report (NaN -> None)."""
    def clean(v):
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, (np.floating, np.integer)):
            return clean(v.item())
        return v

    per = {c: {k: clean(rep["per_class"][c][k]) for k in ("precision", "recall", "f1", "support")} for c in rep["classes"]}
    macro = {k: clean(rep["macro"][k]) for k in ("precision", "recall", "f1", "accuracy")}
    n_avg = sum(1 for c in rep["classes"] if per[c]["support"])
    return {"per_class": per, "macro": macro, "n_classes_averaged": n_avg, "n_samples": int(rep["n_samples"])}


def train_cell(
    videos: Sequence[VideoData],
    cell: Cell,
    split,
    index: np.ndarray,
    config: ExperimentConfig,
) -> dict:
    """Train and score one cell.

    Parameters
    ----------
    videos : sequence of VideoData
    cell : Cell
    split : musicperf.train.splits.Split
        Positions into ``index``.
    index : ndarray of int, shape (n, 2)
        ``(video position, sample position)`` of every sample the split refers to.
    config : ExperimentConfig

    Returns
    -------
    dict
        ``train`` and ``test`` reports (per-class precision/recall/F1/support and macro
        averages), ``split`` (name and sizes), ``best_epoch``, ``epochs_run``, ``seconds``.
    """
    import torch
    from torch import nn

    from musicperf.evaluate.metrics import multilabel_report
    from musicperf.models.audio import AudioMLP
    from musicperf.models.fusion import build_fusion_model
    from musicperf.train.cache import CachedFeatureDataset
    from musicperf.train.loop import TrainConfig, fit, predict

    dbb, ts, use_audio = _method_flags(cell.method)
    t0 = time.perf_counter()
    tax = cell.taxonomy
    classes = videos[0].classes[tax]

    def gather(rows, what):
        parts = []
        for v, s in index[rows]:
            vd = videos[v]
            parts.append(vd.labels[tax][what][s] if what in ("any", "ts") else getattr(vd, what)[s])
        return np.stack(parts).astype(np.float32)

    tr, va, te = (np.asarray(s, dtype=np.int64) for s in (split.train, split.val, split.test))
    if len(tr) == 0 or len(te) == 0:
        raise ParameterError(f"cell {cell.key}: empty training or test set ({split.name})")
    xv = {k: gather(r, "video") for k, r in (("train", tr), ("val", va), ("test", te)) if len(r)}
    mu, sd = xv["train"].mean(0), xv["train"].std(0) + 1e-6
    xv = {k: (x - mu) / sd for k, x in xv.items()}
    d_video = xv["train"].shape[1]
    conv5 = None
    if config.finetune == "conv5":
        # The papers' setting: the rows carry the cached conv4 activations; conv5 (a trainable
        # copy of the backbone's layer4) turns them into pooled features, standardised with the
        # frozen backbone's training-set statistics so the classifier starts where the frozen
        # run does.
        from musicperf.models import set_trainable

        conv4_shape = videos[0].conv4.shape[1:]
        xv = {k: gather(r, "conv4").reshape(len(r), -1) for k, r in (("train", tr), ("val", va), ("test", te))
              if len(r)}
        backbone = _feature_extractor(config).backbone
        set_trainable(backbone, "conv5")
        conv5 = _Conv5(backbone, conv4_shape, mu, sd)
    d_rows = xv["train"].shape[1]
    if use_audio:
        xa = {k: gather(r, "audio") for k, r in (("train", tr), ("val", va), ("test", te)) if len(r)}
        audio_shape = xa["train"].shape[1:]
        x = {k: np.concatenate([xv[k], xa[k].reshape(len(xa[k]), -1)], axis=1) for k in xv}
    else:
        audio_shape = None
        x = xv
    y_fit = gather(tr, "ts" if ts else "any")
    y_any = {k: gather(r, "any") for k, r in (("train", tr), ("val", va), ("test", te)) if len(r)}

    torch.manual_seed(config.seed)
    if use_audio:
        enc = AudioMLP(int(np.prod(audio_shape)), hidden=config.audio_hidden, out_features=config.audio_dim)
        enc.fit_normalization(torch.from_numpy(xa["train"]))
        fusion = build_fusion_model(modalities=["video", "audio"], n_classes=len(classes), video_dim=d_video,
                                    audio_encoder=enc, audio_dim=config.audio_dim, hidden=config.hidden,
                                    dropout=config.dropout)
    else:
        fusion = build_fusion_model(modalities=["video"], n_classes=len(classes), video_dim=d_video,
                                    hidden=config.hidden, dropout=config.dropout)

    class Packed(nn.Module):
        """Feeds one flat row ``[video | unrolled audio]`` to the fusion model (fit takes one tensor)."""

        def __init__(self, model, conv5):
            super().__init__()
            self.model = model
            self.conv5 = conv5

        def forward(self, inp):
            video = inp[:, :d_rows]
            if self.conv5 is not None:
                video = self.conv5(video)
            if audio_shape is None:
                return self.model(video=video)
            return self.model(video=video, audio=inp[:, d_rows:].reshape(len(inp), *audio_shape))

    model = Packed(fusion, conv5)
    tc = TrainConfig(lr=config.lr, weight_decay=config.weight_decay, batch_size=config.batch_size,
                     epochs=config.epochs, patience=config.patience, seed=config.seed, loss="mse",
                     dbb=dbb, ts=ts, threshold=config.threshold)
    ds = {k: CachedFeatureDataset(torch.from_numpy(x[k]), y_any[k]) for k in x}
    train_ds = CachedFeatureDataset(torch.from_numpy(x["train"]), y_fit)
    res = fit(model, train_ds, ds.get("val"), tc, progress=False)
    out = {"cell": asdict(cell), "classes": classes, "split": {"name": split.name, "train": len(tr), "val": len(va),
                                                                "test": len(te)},
           "best_epoch": res.best_epoch, "epochs_run": len(res.history)}
    for k in ("train", "test"):
        _, scores, _ = predict(model, ds[k], batch_size=256)
        rep = multilabel_report(y_any[k] >= 0.5, scores, classes=classes, threshold=config.threshold)
        out[k] = _report_dict(rep)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def _Conv5(backbone, conv4_shape: tuple, mu: np.ndarray, sd: np.ndarray):
    """A module mapping flat conv4 rows ``(B, prod(conv4_shape))`` to standardised pooled
    features ``(B, D)`` through the backbone's (trainable) conv5."""
    import torch
    from torch import nn

    class Conv5(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = backbone
            self.shape = tuple(int(v) for v in conv4_shape)
            self.register_buffer("mu", torch.from_numpy(np.asarray(mu, dtype=np.float32)))
            self.register_buffer("sd", torch.from_numpy(np.asarray(sd, dtype=np.float32)))

        def forward(self, rows):
            h = rows.reshape(len(rows), *self.shape)
            return (self.backbone.forward_features_from_conv4(h) - self.mu) / self.sd

    return Conv5()


# --------------------------------------------------------------------------- the grid
def _random_cells(videos, config, taxonomies, methods):
    from musicperf.train.splits import random_split

    if config.one_video >= len(videos):
        raise ParameterError(f"one_video={config.one_video} but only {len(videos)} video(s) were given")
    one = config.one_video
    scopes = [(f"one video: {videos[one].id}", [one])]
    if len(videos) > 1:
        scopes.append(("all videos", list(range(len(videos)))))
    for scope, vids in scopes:
        index = np.array([(v, s) for v in vids for s in range(videos[v].n)], dtype=np.int64)
        split = random_split(len(index), config.fractions, seed=config.seed)
        over = videos[vids[0]].id if len(vids) == 1 else f"{len(vids)} videos"
        split_name = f"{split.name} over the samples of {over}"
        for tax in taxonomies:
            for m in methods:
                yield Cell("table7", scope, tax, m), split, split_name, index


def _lovo_cells(videos, config, taxonomies, methods):
    from musicperf.train.splits import leave_one_video_out

    if len(videos) < 2:
        raise ParameterError(f"table8 (leave-one-video-out) needs at least 2 videos, got {len(videos)}")
    index = np.array([(v, s) for v in range(len(videos)) for s in range(videos[v].n)], dtype=np.int64)
    ids = [videos[v].id for v, _ in index]
    for split in leave_one_video_out(ids, val_fraction=config.val_fraction, seed=config.seed):
        test_id = ids[int(split.test[0])]
        for tax in taxonomies:
            for m in methods:
                yield Cell("table8", f"test video: {test_id}", tax, m), split, split.name, index


def run_experiment(
    table: str,
    data: Sequence[str | Path] | str | Path,
    out_dir: str | Path,
    config: ExperimentConfig = ExperimentConfig(),
    *,
    taxonomies: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    features_dir: str | Path | None = None,
) -> list[dict]:
    """Run Table 7 (methods x taxonomies x {one video, all videos}) or Table 8 (leave-one-video-out).

    Parameters
    ----------
    table : {"table7", "table8"}
    data : str, Path or sequence of them
        Annotated videos, see :func:`load_dataset`.
    out_dir : str or Path
        Results folder; cells already in ``out_dir/cells`` with the same fingerprint are
        loaded, not retrained.
    config : ExperimentConfig
    taxonomies : sequence of str, optional
        Default both for table7; ``["superclasses7"]`` for table8 (as in 001).
    methods : sequence of str, optional
        Default all four for table7; ``["SM+BB+TS"]`` for table8 (as in 001).
    progress : callable, optional
        Called with one line of text per event.
    features_dir : str or Path, optional
        Feature cache folder shared between runs (default ``out_dir/features``).

    Returns
    -------
    list of dict
        One result per cell (see :func:`train_cell`), plus ``fingerprint`` and ``resumed``.
    """
    if table not in ("table7", "table8"):
        raise ParameterError(f"table must be 'table7' or 'table8', got {table!r}")
    taxonomies = list(taxonomies or (TAXONOMIES if table == "table7" else ("superclasses7",)))
    methods = list(methods or (METHODS if table == "table7" else ("SM+BB+TS",)))
    for m in methods:
        _method_flags(m)
    from musicperf.tasks.gestures import discover

    n_videos = len(discover(data, need_annotations=True))  # cheap: checks the request before any decoding
    if config.one_video >= n_videos and table == "table7":
        raise ParameterError(f"one_video={config.one_video} but only {n_videos} video(s) were given")
    if table == "table8" and n_videos < 2:
        raise ParameterError(f"table8 (leave-one-video-out) needs at least 2 videos, got {n_videos}")
    say = progress or (lambda _line: None)
    out_dir = Path(out_dir)
    videos = load_dataset(data, out_dir, config, taxonomies=taxonomies, progress=progress, features_dir=features_dir)
    has_audio = all(v.audio is not None for v in videos)
    data_sig = [[v.id, _file_sig(v.path)] for v in videos]
    cells = _random_cells if table == "table7" else _lovo_cells
    results = []
    for cell, split, split_name, index in cells(videos, config, taxonomies, methods):
        path = out_dir / "cells" / f"{cell.key}.json"
        fp = _hash({"cell": asdict(cell), "data": data_sig, "train": config.train_key(), "split": split.name,
                    "features": config.feature_key()})
        if path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
            if old is not None and old.get("fingerprint") == fp:
                old["resumed"] = True
                results.append(old)
                say(f"{cell.scope} | {cell.taxonomy} | {cell.method}: done before, skipped")
                continue
        if cell.method.startswith("Bimodal") and not has_audio:
            res = {"cell": asdict(cell), "classes": videos[0].classes[cell.taxonomy],
                   "split": {"name": split_name, "train": len(split.train), "val": len(split.val), "test": len(split.test)},
                   "skipped": "a video has no audio stream"}
        else:
            res = train_cell(videos, cell, split, index, config)
            res["split"]["name"] = split_name
        res["fingerprint"] = fp
        res["backgrounds"] = {v.id: v.background for v in videos}
        write_text_atomic(path, json.dumps(res, indent=1))
        res["resumed"] = False
        results.append(res)
        if "skipped" in res:
            say(f"{cell.scope} | {cell.taxonomy} | {cell.method}: skipped ({res['skipped']})")
        else:
            say(f"{cell.scope} | {cell.taxonomy} | {cell.method}: train F1 {_fmt(res['train']['macro']['f1'])}, "
                f"test F1 {_fmt(res['test']['macro']['f1'])} ({res['epochs_run']} epochs, {res['seconds']:.1f} s)")
    write_tables(table, results, out_dir, config, videos)
    return results


# --------------------------------------------------------------------------- tables
def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _csv_text(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _note(config: ExperimentConfig, videos: Sequence[VideoData]) -> str:
    bb = (f"{config.backbone} with the weights of '{config.weights}'" if config.weights else
          f"{config.backbone} (width x{config.width_factor:g}) with RANDOM weights (seed {config.backbone_seed}; no pretrained "
          f"weights were used, so the figures compare the methods on the same features, not with 001's absolute values)")
    vids = ", ".join(f"{v.id} ({v.n} samples{', ' + v.background if v.background else ''})" for v in videos)
    trained = ("conv1-conv4 frozen (their activations cached once per sample), conv5 trained with the classifier "
               "(and the audio network), as in 001" if config.finetune == "conv5" else
               "frozen entirely; only the classifier (and the audio network) is trained on its pooled features")
    return (f"Backbone: {bb}, {trained}; {config.size}x{config.size} x {config.clip_length}-frame "
            f"samples; up to {config.epochs} epochs, early stopping "
            f"on validation macro F1 (patience {config.patience}), MSE, Adam lr {config.lr:g}, weight decay "
            f"{config.weight_decay:g}, batch {config.batch_size}. Threshold {config.threshold:g}. F1 = macro average over "
            f"the classes with positives in the scored set; scored against the binary 'any frame' labels. Videos: {vids}.")


def write_tables(table: str, results: list[dict], out_dir: str | Path, config: ExperimentConfig,
                 videos: Sequence[VideoData]) -> list[Path]:
    """Write ``<table>.csv/.md`` (average F1, train and test) and per-class ``tableA_*`` files.

    Returns
    -------
    list of Path
        The files written.
    """
    out_dir = Path(out_dir)
    written = []
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["cell"]["scope"], r["cell"]["taxonomy"]), []).append(r)
    methods = list(dict.fromkeys(r["cell"]["method"] for r in results))

    def f1(r, part):
        return None if "skipped" in r else r[part]["macro"]["f1"]

    # long CSV: one row per cell
    head = ["no", "table", "scope", "taxonomy", "classes", "method", "split", "n_train", "n_val", "n_test",
            "train_f1", "test_f1", "train_classes_averaged", "test_classes_averaged", "best_epoch", "note"]
    rows = []
    for no, ((scope, tax), rs) in enumerate(groups.items(), 1):
        for r in rs:
            sk = "skipped" in r
            rows.append([no, table, scope, tax, len(r["classes"]), r["cell"]["method"], r["split"]["name"],
                         r["split"]["train"], r["split"]["val"], r["split"]["test"],
                         "" if sk else f"{f1(r, 'train') if f1(r, 'train') is not None else float('nan'):.4f}",
                         "" if sk else f"{f1(r, 'test') if f1(r, 'test') is not None else float('nan'):.4f}",
                         "" if sk else r["train"]["n_classes_averaged"], "" if sk else r["test"]["n_classes_averaged"],
                         "" if sk else r["best_epoch"], r.get("skipped", "")])
    p = out_dir / f"{table}.csv"
    write_text_atomic(p, _csv_text(head, rows))
    written.append(p)

    # Markdown shaped like Table 7 / Table 8 of 001
    title = ("Table 7: average F1 for training and testing" if table == "table7"
             else "Table 8: average F1, leave one video out")
    md_head = ["No.", "Experiment", "Split (train/val/test samples)"]
    for m in methods:
        md_head += [f"{m} Train", f"{m} Test"]
    md_rows = []
    for no, ((scope, tax), rs) in enumerate(groups.items(), 1):
        by_m = {r["cell"]["method"]: r for r in rs}
        s = rs[0]["split"]
        row = [str(no), f"{scope}, classes = {len(rs[0]['classes'])} ({tax})",
               f"{s['name']} ({s['train']}/{s['val']}/{s['test']})"]
        for m in methods:
            r = by_m.get(m)
            row += ["n/a", "n/a"] if r is None else [_fmt(f1(r, "train")), _fmt(f1(r, "test"))]
        md_rows.append(row)
    p = out_dir / f"{table}.md"
    write_text_atomic(p, f"### {title}\n\n" + _md_table(md_head, md_rows) + "\n" + _note(config, videos) + "\n")
    written.append(p)

    # per-class tables like A1-A5
    for (scope, tax), rs in groups.items():
        rs = [r for r in rs if "skipped" not in r]
        if not rs:
            continue
        classes = rs[0]["classes"]
        slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{table}_{scope}_{tax}")
        head_c = ["class"]
        for r in rs:
            m = r["cell"]["method"]
            head_c += [f"{m} {k} {part}" for k in ("precision", "recall", "f1") for part in ("train", "test")]
        head_c += ["train positives", "test positives"]
        rows_md, rows_csv = [], []
        for c in classes:
            vals = []
            for r in rs:
                vals += [r[part]["per_class"][c][k] for k in ("precision", "recall", "f1") for part in ("train", "test")]
            sup = [rs[0]["train"]["per_class"][c]["support"], rs[0]["test"]["per_class"][c]["support"]]
            rows_md.append([c] + [_fmt(v) for v in vals] + [str(s) for s in sup])
            rows_csv.append([c] + ["" if v is None else f"{v:.4f}" for v in vals] + sup)
        macro = ["macro average"]
        for r in rs:
            macro += [r[part]["macro"][k] for k in ("precision", "recall", "f1") for part in ("train", "test")]
        rows_md.append([macro[0]] + [_fmt(v) for v in macro[1:]] + ["", ""])
        rows_csv.append([macro[0]] + ["" if v is None else f"{v:.4f}" for v in macro[1:]] + ["", ""])
        p = out_dir / f"tableA_{slug}.csv"
        write_text_atomic(p, _csv_text(head_c, rows_csv))
        written.append(p)
        split = rs[0]["split"]
        p = out_dir / f"tableA_{slug}.md"
        write_text_atomic(p, f"### Per class: {scope}, {tax}; split: {split['name']} "
                             f"({split['train']}/{split['val']}/{split['test']} samples)\n\n"
                          + _md_table(head_c, rows_md) + "\n" + _note(config, videos) + "\n")
        written.append(p)
    return written
