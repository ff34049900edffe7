"""musicperf model files: a folder with ``model.safetensors`` (weights) and ``model.json`` (metadata).

Loading never unpickles. ``model.json`` holds ``format``, ``format_version``, ``architecture``
(everything needed to rebuild the :class:`~musicperf.models.GestureNet`: backbone configuration,
design, head, normalisation) and the caller's metadata (``classes``, ``fps``, ``clip_length``,
``taxonomy``, training split and metrics, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from musicperf._util import atomic_path, write_text_atomic
from musicperf.errors import ModelError, ParameterError

FORMAT = "musicperf-gesturenet"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
META = "model.json"
#: metadata every saved model must carry so it can be used without its training code.
REQUIRED_META = ("classes", "fps", "clip_length")


def save_model(model_dir: str | Path, model, meta: dict) -> Path:
    """Write ``model`` (a :class:`~musicperf.models.GestureNet`) and ``meta`` to ``model_dir``.

    Parameters
    ----------
    model_dir : str or Path
        Folder to create or overwrite; both files are written atomically.
    model : GestureNet
    meta : dict
        JSON-serialisable; must contain ``classes`` (list of K str), ``fps`` (float, frames per
        second the clips were sampled at) and ``clip_length`` (int, frames per clip). Add e.g.
        ``taxonomy``, ``split``, ``metrics``.

    Returns
    -------
    Path
        ``model_dir``.
    """
    from safetensors.torch import save_file

    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ParameterError(f"model metadata lacks {', '.join(missing)}; a saved model must say its classes, fps and clip length")
    if len(meta["classes"]) != model.n_classes:
        raise ParameterError(f"metadata names {len(meta['classes'])} classes but the model has {model.n_classes} outputs")
    model_dir = Path(model_dir)
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": model.architecture(), **meta}
    try:
        text = json.dumps(doc, indent=2, sort_keys=False)
    except TypeError as exc:
        raise ParameterError(f"model metadata is not JSON-serialisable: {exc}") from exc
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    write_text_atomic(model_dir / META, text + "\n")
    return model_dir


def read_model_meta(model_dir: str | Path) -> dict:
    """Read and check ``model.json`` of a saved model folder."""
    path = Path(model_dir) / META
    if not path.is_file():
        raise ModelError(f"'{model_dir}' is not a musicperf model folder: {META} is missing")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"'{path}' is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelError(f"'{path}' is not a {FORMAT} file (format={doc.get('format') if isinstance(doc, dict) else None!r})")
    if int(doc.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(f"'{path}' has format version {doc['format_version']}; this musicperf reads up to {FORMAT_VERSION}")
    return doc


def build_from_architecture(arch: dict):
    """Rebuild an untrained :class:`~musicperf.models.GestureNet` from ``architecture`` metadata."""
    from musicperf.models.gesturenet import GestureNet
    from musicperf.models.resnet3d import backbone_from_config

    try:
        backbone = backbone_from_config(arch["backbone"])
        head = arch["head"]
        kwargs = {}
        if head["type"] == "single":
            kwargs = {"hidden": tuple(head["hidden"]), "dropout": float(head["dropout"])}
        else:
            kwargs = {"variant": head["variant"], "per_class_conv5": bool(head["own_conv5"])}
        return GestureNet(backbone, int(head["n_classes"]), design=arch["design"], keep_fc=bool(arch["keep_fc"]),
                          normalization=arch["normalization"], trainable=arch.get("trainable", "conv5"), **kwargs)
    except (KeyError, TypeError) as exc:
        raise ModelError(f"model architecture metadata is incomplete: {exc!r}") from exc


def load_model(model_dir: str | Path):
    """Load a model folder written by :func:`save_model`.

    Returns
    -------
    model : GestureNet
        In eval mode, on CPU, ``input_stage="clips"``.
    meta : dict
        The whole ``model.json`` (``classes``, ``fps``, ``clip_length``, ``architecture``, ...).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from musicperf.models.checkpoints import load_state_strict

    doc = read_model_meta(model_dir)
    model = build_from_architecture(doc["architecture"])
    wpath = Path(model_dir) / WEIGHTS
    if not wpath.is_file():
        raise ModelError(f"'{model_dir}' lacks {WEIGHTS}")
    try:
        state = load_file(str(wpath))
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"cannot read '{wpath}': {exc}") from exc
    load_state_strict(model, state, source=f"'{wpath}'")
    return model.eval(), doc


def state_dict_to_cpu(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``model.state_dict()``."""
    return {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
