"""The settings of a gesture model: one validated object, grouped in four sections.

:class:`GestureConfig` (old name ``WorkflowConfig``, kept) holds every setting that decides how a
gesture model is trained and how it labels. Its fields are grouped in four sections:

``features``
    what a clip is and how it becomes a feature vector (clip length, strides, frame size, grid,
    region of interest, backbone, landmark and audio features);
``model``
    the classes, the training target, the loss, the head and its training;
``cross_validation``
    the blocked cross-validation that tunes the thresholds (``folds``);
``post_processing``
    how frame probabilities become intervals (``min_gap``, ``min_duration``).

A YAML file may give them nested (``features: {grid: 8}``, ``model: {epochs: 40}``) or flat
(``grid: 8``, as the files and model folders written before the sections existed); both read
into the same object and are validated in one place (:meth:`GestureConfig.__post_init__`). A
model folder stores the flat form, so its ``workflow.json`` is unchanged.

The command-line options of ``musicperf train`` that override settings are derived from the
fields' metadata (:func:`add_cli_options`, :func:`overrides_from_args`), not mapped by hand.

Imports the standard library at module level; PyYAML inside :meth:`GestureConfig.from_yaml`.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from musicperf.errors import ParameterError, require
from musicperf.tasks import framefeatures
from musicperf.train.head import HEAD_DEFAULTS

#: The sections of the settings, in the order they are written.
SECTIONS = ("features", "model", "cross_validation", "post_processing")


def _setting(default, section: str, *, cli: str | None = None, help: str | None = None, **cli_kw):
    """A field of :class:`GestureConfig` in ``section``; ``cli`` names its ``musicperf train`` option
    (``order``: its place in the help; ``flag_value``: a flag that sets this value; ``implies``:
    other settings it sets unless given; the rest goes to ``argparse.add_argument``)."""
    meta = {"section": section}
    if cli:
        meta["cli"] = {"flag": cli, "help": help, **cli_kw}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class GestureConfig:
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
        Cells per side of the motion/appearance grid (:mod:`musicperf.features.clipfeatures`).
    roi : {"auto", "full"}
        Compute the features on the region where things move in the training videos
        (:func:`musicperf.features.clips.estimate_roi`), or on the whole picture.
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
        Head training. The defaults of ``loss`` and of these are
        :data:`musicperf.train.head.HEAD_DEFAULTS`, shared with the frame labeller's clip-head
        candidate (:mod:`musicperf.train.cliphead`).
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

    clip_length: int = _setting(16, "features")
    train_stride: int = _setting(4, "features")
    label_stride: int = _setting(8, "features")
    size: tuple[int, int] = _setting((96, 128), "features")
    grid: int = _setting(12, "features")
    roi: str = _setting("auto", "features")
    backbone: str = _setting("none", "features", cli="--backbone", order=1,
                             help="add frozen 3D-ResNet features: resnet10/18/34/50 (default: none)")
    backbone_weights: str | None = _setting(None, "features", cli="--backbone-weights", order=2, metavar="FILE",
                                            help="checkpoint for --backbone, e.g. Hara et al.'s Kinetics ResNet-34 .pth",
                                            implies={"backbone": "resnet34"})
    target: str = _setting("ts", "model")
    loss: str = _setting(HEAD_DEFAULTS.loss, "model")
    hidden: tuple[int, ...] = _setting(HEAD_DEFAULTS.hidden, "model")
    dropout: float = _setting(HEAD_DEFAULTS.dropout, "model")
    epochs: int = _setting(HEAD_DEFAULTS.epochs, "model", cli="--epochs", order=3, type=int, help="training epochs of the head")
    batch_size: int = _setting(HEAD_DEFAULTS.batch_size, "model")
    lr: float = _setting(HEAD_DEFAULTS.lr, "model")
    weight_decay: float = _setting(HEAD_DEFAULTS.weight_decay, "model")
    seed: int = _setting(HEAD_DEFAULTS.seed, "model")
    folds: int = _setting(4, "cross_validation")
    min_gap: float = _setting(0.2, "post_processing")
    min_duration: float = _setting(0.24, "post_processing")
    classes_by: str = _setting("tier", "model", cli="--by", order=0, choices=("tier", "value"),
                               help="classes from tier names (default) or from annotation values")
    background: str | None = _setting(None, "model")
    frame_features: str = _setting("grid", "features", cli="--frame-features", order=4,
                                   choices=("grid", "landmarks", "grid+landmarks"),
                                   help="visual clip features: motion/colour grid (default), a temporal model over "
                                        "MediaPipe landmark features, or both fused")
    temporal: str = _setting("tcn", "features", cli="--temporal", order=5, choices=("tcn", "gru"),
                             help="temporal model over the landmark window (default tcn)")
    modalities: tuple[str, ...] = _setting(("video",), "features", cli="--modalities", order=6,
                                           metavar="video|audio|video,audio",
                                           help="video (default), audio (timbral features of each clip's segment) "
                                                "or both")
    landmark_source: str = _setting("detector", "features", cli="--landmarks-from-truth", order=8, flag_value="truth",
                                    help="testing/experiments only: landmarks from the synthetic truth.json beside "
                                         "each video (with detector-like noise) instead of MediaPipe")
    landmark_every: int = _setting(1, "features", cli="--landmark-every", order=7, type=int, metavar="N",
                                   help="MediaPipe on every N-th frame, interpolated in between (default 1: every "
                                        "frame; 2 halves the landmark time)")

    def __post_init__(self) -> None:
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

    def to_nested(self) -> dict:
        """The settings grouped by section: ``{"features": {...}, "model": {...}, ...}``."""
        flat = self.to_dict()
        return {s: {f.name: flat[f.name] for f in dataclasses.fields(self) if f.metadata["section"] == s}
                for s in SECTIONS}

    def section(self, name: str) -> dict:
        """The settings of one section (see :data:`SECTIONS`)."""
        if name not in SECTIONS:
            raise ParameterError(f"unknown section {name!r}; sections: {', '.join(SECTIONS)}")
        return self.to_nested()[name]

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "the configuration") -> GestureConfig:
        """Settings from a flat mapping (old files, model folders) or one nested by section."""
        d = _flatten(d, where=where)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ParameterError(f"unknown setting(s) {', '.join(unknown)} in {where}; known: {', '.join(sorted(known))}")
        try:
            return cls(**d)
        except TypeError as exc:
            raise ParameterError(f"bad value in {where}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> GestureConfig:
        """Read a YAML mapping of the attributes above, flat or by section (unknown keys are an error)."""
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



#: The name used before the gesture vocabulary was settled; the same class.
WorkflowConfig = GestureConfig


def _flatten(d: dict, *, where: str) -> dict:
    """A flat mapping of settings from one that may group them by section (not both for one key)."""
    if not isinstance(d, dict):
        raise ParameterError(f"{where} must hold a mapping of settings")
    flat = {k: v for k, v in d.items() if k not in SECTIONS}
    owner = {f.name: f.metadata["section"] for f in dataclasses.fields(GestureConfig)}
    for s in SECTIONS:
        if s not in d:
            continue
        part = d[s]
        if not isinstance(part, dict):
            raise ParameterError(f"section '{s}' of {where} must be a mapping of settings, got {part!r}")
        for k, v in part.items():
            if k in owner and owner[k] != s:
                raise ParameterError(f"setting '{k}' of {where} belongs to section '{owner[k]}', not '{s}'")
            if k in flat:
                raise ParameterError(f"setting '{k}' is given twice in {where} (flat and in section '{s}')")
            flat[k] = v
    return flat


def cli_fields() -> list[dataclasses.Field]:
    """The fields of :class:`GestureConfig` that ``musicperf train`` exposes as options, in help order."""
    return sorted((f for f in dataclasses.fields(GestureConfig) if "cli" in f.metadata),
                  key=lambda f: f.metadata["cli"]["order"])


def add_cli_options(parser) -> None:
    """Add one option per exposed setting (see :func:`_setting`) to an argparse parser."""
    for f in cli_fields():
        spec = dict(f.metadata["cli"])
        flag = spec.pop("flag")
        spec.pop("implies", None)
        spec.pop("order")
        if "choices" not in spec and "flag_value" not in spec:
            spec.setdefault("metavar", flag.lstrip("-").upper().replace("-", "_"))
        if "flag_value" in spec:
            spec.pop("flag_value")
            parser.add_argument(flag, dest=f"cfg_{f.name}", action="store_true", help=spec["help"])
        else:
            parser.add_argument(flag, dest=f"cfg_{f.name}", default=None, **spec)


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The settings the options of :func:`add_cli_options` change, as ``{field: value}``."""
    changes: dict = {}
    implied: dict = {}
    for f in cli_fields():
        value = getattr(args, f"cfg_{f.name}", None)
        spec = f.metadata["cli"]
        if value is None or value is False:
            continue
        changes[f.name] = spec["flag_value"] if "flag_value" in spec else value
        implied.update(spec.get("implies", {}))
    for k, v in implied.items():
        changes.setdefault(k, v)
    return changes


def config_from_args(args: argparse.Namespace) -> GestureConfig:
    """The settings of ``--config FILE`` (or the defaults) with the command-line overrides applied."""
    cfg = GestureConfig.from_yaml(args.config) if getattr(args, "config", None) else GestureConfig()
    changes = overrides_from_args(args)
    return dataclasses.replace(cfg, **changes) if changes else cfg
