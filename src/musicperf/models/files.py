"""musicperf model folders: the one reader and writer of every model folder musicperf writes.

A model folder is a JSON document (``format``, ``format_version`` and the metadata) beside one
or more safetensors files of weights. Loading never unpickles. Three layouts exist, all read and
written through :func:`write_meta` / :func:`read_meta` and :func:`write_weights` /
:func:`read_weights`:

``musicperf-gesturenet``
    ``model.json`` + ``model.safetensors``: a :class:`~musicperf.models.GestureNet`
    (:func:`save_model`, :func:`load_model`). ``model.json`` holds ``architecture``
    (everything needed to rebuild it: backbone configuration, design, head, normalisation) and
    the caller's metadata (``classes``, ``fps``, ``clip_length``, ``taxonomy``, training split
    and metrics, ...).
``musicperf-instrument``, ``musicperf-skill``
    ``model.json`` + ``model.safetensors``
    (:func:`musicperf.tasks._classify.save_task_model` / ``load_task_model``).
``musicperf-workflow``
    ``workflow.json`` + ``head.safetensors`` (+ ``backbone.safetensors``): the gesture task's
    clip-head model (:mod:`musicperf.tasks.gestures.model`). With ``"labeller": "frame"`` in
    ``workflow.json`` (absent: the clip head) it is the frame labeller
    (:mod:`musicperf.tasks.gestures.frame`): ``workflow.json`` (classes, chosen candidate and
    feature set per class, tracks, clean-up thresholds, per-class status, the cross-validation
    table) + ``labeller.safetensors`` (MS-TCN weights, feature normalisation) + one LightGBM
    model text per class (``lightgbm-*.txt``, :func:`write_model_text` / :func:`read_model_text`).

The file names and formats are those of the folders already written; they stay readable.
"""

from __future__ import annotations

import json
from pathlib import Path

from musicperf._util import atomic_path, output_errors, write_text_atomic
from musicperf.errors import ModelError, ParameterError

FORMAT = "musicperf-gesturenet"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
META = "model.json"
#: metadata every saved model must carry so it can be used without its training code.
REQUIRED_META = ("classes", "fps", "clip_length")


# --------------------------------------------------------------------------- the generic folder
def write_weights(path: str | Path, tensors: dict, *, metadata: dict | None = None) -> Path:
    """Write ``tensors`` (name -> torch tensor) to a safetensors file atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    # disk full / read-only while saving: a one-line OutputError naming the file (safetensors
    # raises its own SafetensorError, not an OSError), and no half-written file
    with output_errors(path, what="model weights"):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    return path


def read_weights(path: str | Path, *, missing: str | None = None) -> dict:
    """The tensors of a safetensors file (never unpickled).

    Raises
    ------
    ModelError
        ``missing`` (when given) if the file is absent, else "cannot read" with the reason.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if missing is not None and not path.is_file():
        raise ModelError(missing)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"cannot read '{path}': {exc}") from None


def write_model_text(path: str | Path, text: str) -> Path:
    """Write a model's text form (a LightGBM booster's ``model_to_string()``) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return path


def read_model_text(path: str | Path) -> str:
    """The text written by :func:`write_model_text`; a missing file is a one-line ModelError."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read '{path}': {exc.__class__.__name__}: {exc}") from None


def check_json(doc: dict) -> str:
    """``doc`` as the JSON text written, or a one-line error when it cannot be serialised."""
    try:
        return json.dumps(doc, indent=2)
    except TypeError as exc:
        raise ParameterError(f"model metadata is not JSON-serialisable: {exc}") from exc


def write_meta(model_dir: str | Path, doc: dict, *, name: str = META, newline: bool = True) -> Path:
    """Write a model folder's JSON document atomically (the weights first: the JSON marks it complete)."""
    text = check_json(doc)
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(model_dir / name, text + ("\n" if newline else ""))
    return model_dir / name


def read_meta(model_dir: str | Path, *, name: str = META, formats: tuple[str, ...] | None = None,
              what: str = "model folder", hint: str | None = None) -> dict:
    """Read and check the JSON document of a model folder.

    Parameters
    ----------
    model_dir : str or Path
    name : str
        The document's file name (``model.json``, ``workflow.json``).
    formats : tuple of str, optional
        Accepted ``format`` values.
    what : str
        How the folder is named in messages ("model folder", "labelling model").
    hint : str, optional
        When given, a missing folder is refused first, with this appended to the message.

    Raises
    ------
    ModelError
        The folder or document is missing, not JSON, or of another format.
    """
    model_dir = Path(model_dir)
    if hint is not None and not model_dir.is_dir():
        raise ModelError(f"model directory '{model_dir}' does not exist{hint}")
    path = model_dir / name
    if not path.is_file():
        raise ModelError(f"'{model_dir}' is not a musicperf {what}: {name} is missing")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"'{path}' is not valid JSON: {exc}") from None
    if formats is not None and (not isinstance(doc, dict) or doc.get("format") not in formats):
        got = doc.get("format") if isinstance(doc, dict) else None
        raise ModelError(f"'{model_dir}' holds a {got!r} model, not a {' or '.join(map(repr, formats))} model")
    return doc


def check_version(doc: dict, model_dir: str | Path, *, readable: tuple[int, ...]) -> None:
    """Refuse a document whose ``format_version`` this musicperf cannot read."""
    from musicperf._version import __version__

    version = doc.get("format_version")
    if version not in readable:
        raise ModelError(
            f"model '{model_dir}' has format version {version} (written by musicperf "
            f"{doc.get('musicperf_version', '?')}); this musicperf {__version__} reads version "
            f"{', '.join(map(str, readable))}: retrain it"
        )


# --------------------------------------------------------------------------- GestureNet folders
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
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ParameterError(f"model metadata lacks {', '.join(missing)}; a saved model must say its classes, fps and clip length")
    if len(meta["classes"]) != model.n_classes:
        raise ParameterError(f"metadata names {len(meta['classes'])} classes but the model has {model.n_classes} outputs")
    model_dir = Path(model_dir)
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": model.architecture(), **meta}
    check_json(doc)
    write_weights(model_dir / WEIGHTS, model.state_dict(), metadata={"format": FORMAT})
    write_meta(model_dir, doc, name=META)
    return model_dir


def read_model_meta(model_dir: str | Path) -> dict:
    """Read and check ``model.json`` of a saved model folder."""
    doc = read_meta(model_dir, name=META)
    path = Path(model_dir) / META
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
    from musicperf.models.checkpoints import load_state_strict

    doc = read_model_meta(model_dir)
    model = build_from_architecture(doc["architecture"])
    wpath = Path(model_dir) / WEIGHTS
    state = read_weights(wpath, missing=f"'{model_dir}' lacks {WEIGHTS}")
    load_state_strict(model, state, source=f"'{wpath}'")
    return model.eval(), doc


def state_dict_to_cpu(model) -> dict:
    """A detached CPU copy of ``model.state_dict()``."""
    return {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
