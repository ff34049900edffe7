"""The gesture model folder: what ``musicperf train`` writes and ``musicperf label`` reads.

A folder holds ``workflow.json`` (format ``musicperf-workflow``, version :data:`MODEL_FORMAT`:
classes, taxonomy, thresholds, frame rate, feature description, head architecture, the
settings and the training summary), ``head.safetensors`` (the head's weights and the feature
normalisation ``features.mean`` / ``features.std``) and, with a 3D-CNN backbone,
``backbone.safetensors``. Nothing is unpickled on loading. :class:`GestureModel` is the loaded
folder; :func:`load_gesture_model` (old name ``load_workflow_model``) reads it and
:func:`save_weights` writes its weights.

Imports numpy and the standard library at module level; torch and safetensors inside the
functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicperf.errors import AnnotationError, ModelError, ParameterError
from musicperf.features.clipfeatures import FEATURE_VERSION
from musicperf.features.clips import FeatureExtractor
from musicperf.features.numeric_mode import parse_numeric_mode
from musicperf.labels import Taxonomy
from musicperf.models import files
from musicperf.tasks import framefeatures
from musicperf.tasks.gestures.config import GestureConfig
from musicperf.train.head import predict_head

#: Version of the model directory layout written by :func:`musicperf.tasks.gestures.train_model`;
#: bumped on any change that an older or newer musicperf could not read.
MODEL_FORMAT = 1
MODEL_FILE = "head.safetensors"
BACKBONE_FILE = "backbone.safetensors"
META_FILE = "workflow.json"
FORMAT = "musicperf-workflow"


def make_backbone(config: GestureConfig):
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



def save_weights(model_dir: Path, head, mean: np.ndarray, std: np.ndarray, backbone) -> None:
    """Write ``head.safetensors`` (head + feature normalisation) and, with a backbone, ``backbone.safetensors``.

    Through :mod:`musicperf.models.files`, the one writer of model folders.
    """
    import torch


    tensors = {f"head.{k}": v for k, v in head.state_dict().items()}
    tensors["features.mean"] = torch.from_numpy(np.asarray(mean, dtype=np.float32))
    tensors["features.std"] = torch.from_numpy(np.asarray(std, dtype=np.float32))
    files.write_weights(model_dir / MODEL_FILE, tensors)
    if backbone is not None:
        files.write_weights(model_dir / BACKBONE_FILE, backbone.state_dict())


def save_meta(model_dir: Path, meta: dict) -> None:
    """Write ``workflow.json`` (last: it marks the folder complete)."""

    files.write_meta(model_dir, meta, name=META_FILE, newline=False)


@dataclass
class GestureModel:
    """A trained workflow model, loaded from its directory by :func:`load_gesture_model`."""

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


def load_gesture_model(model_dir: str | Path, *, compile: bool = False, numeric_mode: str | None = None) -> GestureModel:
    """Load a model directory written by :func:`~musicperf.tasks.gestures.train_model`.

    ``compile=True`` wraps the frozen backbone (if the model has one) in ``torch.compile``
    (inductor with freezing): slow to start (tens of seconds), faster per clip; see
    README.md (section 'Performance') for what it gains here.

    Raises
    ------
    ModelError
        The directory or one of its files is missing, it was written by an incompatible
        version, or the weights do not fit the recorded architecture.
    """

    model_dir = Path(model_dir)
    meta_path = model_dir / META_FILE
    meta = files.read_meta(model_dir, name=META_FILE, formats=(FORMAT,), what="labelling model",
                           hint=" (train one with 'musicperf train')")
    files.check_version(meta, model_dir, readable=(MODEL_FORMAT,))
    grid = meta.get("features", {}).get("grid", {})
    if grid.get("version") != FEATURE_VERSION:
        raise ModelError(
            f"model '{model_dir}' uses clip features of version {grid.get('version')}; this musicperf computes "
            f"version {FEATURE_VERSION}: retrain it"
        )
    try:
        config = GestureConfig.from_dict(meta["config"], where=str(meta_path))
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
    tensors = files.read_weights(weights, missing=f"model '{model_dir}' is incomplete: {MODEL_FILE} is missing")
    head = framefeatures.head_from_config(head_cfg, where=str(meta_path))
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
        state = files.read_weights(path, missing=f"model '{model_dir}' is incomplete: {BACKBONE_FILE} is missing")
        backbone = backbone_from_config(bb["config"])
        try:
            backbone.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelError(f"'{path}' does not fit the recorded backbone: {str(exc).splitlines()[0]}") from None
        backbone.eval()
        norm = Normalization.from_dict(bb["normalization"]) if bb.get("normalization") else None
    try:
        roi = tuple(float(v) for v in meta["features"].get("roi", (0.0, 1.0, 0.0, 1.0)))
        if len(roi) != 4 or not (0 <= roi[0] < roi[1] <= 1 and 0 <= roi[2] < roi[3] <= 1):
            raise ValueError(roi)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"'{meta_path}' has a malformed region of interest {exc}") from None
    # None / "auto": BackboneRunner decides once per machine (or MUSICPERF_NUMERIC_MODE);
    # "fp32" / "bf16" / a mode name: forced, nothing timed
    mode = "auto" if numeric_mode is None else parse_numeric_mode(numeric_mode, source="numeric_mode")
    extractor = FeatureExtractor(config, backbone, norm, roi=roi, compile=compile, backbone_mode=mode)
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



#: The name used before the gesture vocabulary was settled; the same function.
load_workflow_model = load_gesture_model
