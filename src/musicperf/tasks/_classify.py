"""Shared pieces of the single-label video tasks (instrument recognition ``003``, skill ``004``).

* :func:`fit_classifier` -- softmax cross-entropy training with validation-accuracy model
  selection and early stopping, configured by the shared
  :class:`~musicperf.train.loop.TrainConfig` (``lr``, ``weight_decay``, ``batch_size``,
  ``epochs``, ``patience``, ``seed``, ``device``). The shared :func:`musicperf.train.loop.fit`
  is multi-label (sigmoid outputs, MSE/BCE, macro F1 at a threshold); both papers here
  classify with a softmax, so their training uses this loop until ``fit`` gains a
  cross-entropy criterion (requested from the lead). Like ``fit``, shuffling and dropout are
  reseeded from ``(seed, epoch)`` every epoch.
* :func:`read_labelled_videos` -- a dataset of labelled videos: a CSV of ``path,label`` (the
  FCVID / YouTube-8M subsets of ``003``) or one folder per class.
* :func:`save_task_model` / :func:`load_task_model` -- ``model.safetensors`` + ``model.json``
  (never a pickle), the layout of :mod:`musicperf.models.files` with a task-specific format.

Imports torch at module level: import lazily (tasks are imported by command functions only).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from musicperf._util import atomic_path, write_text_atomic
from musicperf.errors import AnnotationError, ModelError, ParameterError
from musicperf.train.loop import TrainConfig

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


# ------------------------------------------------------------------------------ training


@dataclass
class ClassifierHistory:
    """Outcome of :func:`fit_classifier`: per-epoch rows and the selected epoch (1-based)."""

    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_accuracy: float = float("nan")


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 12_345) % (2**63 - 1)


def _batches(n: int, batch_size: int, gen: torch.Generator | None):
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def fit_classifier(
    model: torch.nn.Module,
    x_train: torch.Tensor | Sequence[torch.Tensor],
    y_train: torch.Tensor,
    x_val: torch.Tensor | Sequence[torch.Tensor] | None,
    y_val: torch.Tensor | None,
    config: TrainConfig,
    *,
    prepare: Callable | None = None,
    loss_fn: Callable | None = None,
    predict_fn: Callable | None = None,
    augment: Callable | None = None,
) -> ClassifierHistory:
    """Train ``model`` with Adam on softmax cross-entropy; keep the best validation epoch.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(*inputs)``.
    x_train : Tensor or sequence of Tensors, each of shape (N, ...)
        Inputs (several tensors for several modalities), kept on the CPU; batches are moved
        to ``config.device`` after ``prepare``.
    y_train : Tensor of int64, shape (N,)
        Class indices.
    x_val, y_val : like ``x_train`` / ``y_train``, optional
        Validation set for model selection (highest accuracy, then lowest loss) and early
        stopping (``config.patience``); without it the last epoch is kept.
    config : TrainConfig
        ``lr``, ``weight_decay``, ``batch_size``, ``epochs``, ``patience``, ``seed``, ``device``.
    prepare : callable, optional
        Maps the list of a batch's input tensors to model inputs (e.g. uint8 frames to
        normalised floats); default: cast to float.
    loss_fn : callable, optional
        ``loss_fn(output, y) -> scalar``; default ``F.cross_entropy`` on logits ``(B, K)``.
    predict_fn : callable, optional
        ``predict_fn(output) -> (B, K)`` logits used for validation accuracy; default identity.
    augment : callable, optional
        Applied to the prepared training inputs (list of tensors) only, e.g. random flips.

    Returns
    -------
    ClassifierHistory
        The model holds the selected epoch's weights on return.
    """
    xs_train = [x_train] if isinstance(x_train, torch.Tensor) else list(x_train)
    xs_val = None if x_val is None else ([x_val] if isinstance(x_val, torch.Tensor) else list(x_val))
    n = len(y_train)
    if n == 0:
        raise ParameterError("the training set is empty")
    if any(len(x) != n for x in xs_train):
        raise ParameterError("training inputs and labels differ in length")
    prepare = prepare or (lambda xs: [x.float() for x in xs])
    loss_fn = loss_fn or F.cross_entropy
    predict_fn = predict_fn or (lambda out: out)
    device = torch.device(config.device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ParameterError("the model has no trainable parameter")
    opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    result = ClassifierHistory()
    best_key = (-math.inf, -math.inf)
    best_state = None
    bad = 0
    has_val = xs_val is not None and y_val is not None and len(y_val) > 0
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        torch.manual_seed(_epoch_seed(config.seed, epoch))
        gen = torch.Generator().manual_seed(_epoch_seed(config.seed, epoch) + 1)
        model.train()
        total = 0.0
        for idx in _batches(n, config.batch_size, gen):
            if len(idx) < 2 and n >= 2:
                continue  # batch norm cannot train on one sample; it is seen next epoch
            inputs = [x.to(device) for x in prepare([x[idx] for x in xs_train])]
            if augment is not None:
                inputs = augment(inputs)
            y = y_train[idx].to(device)
            loss = loss_fn(model(*inputs), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        row = {"epoch": epoch + 1, "train_loss": total / n}
        if has_val:
            logits = predict_logits(model, xs_val, batch_size=config.batch_size, prepare=prepare,
                                    predict_fn=predict_fn, device=device)
            yv = y_val.long()
            row["val_loss"] = float(F.cross_entropy(logits, yv))
            row["val_accuracy"] = float((logits.argmax(1) == yv).float().mean())
            key = (row["val_accuracy"], -row["val_loss"])
        else:
            key = (float(epoch), 0.0)
        row["seconds"] = time.perf_counter() - t0
        result.history.append(row)
        if key > best_key:
            best_key, bad = key, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            result.best_epoch = epoch + 1
            result.best_accuracy = row.get("val_accuracy", float("nan"))
        else:
            bad += 1
            if has_val and config.patience is not None and bad >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


@torch.no_grad()
def predict_logits(model, xs: Sequence[torch.Tensor], *, batch_size: int = 32, prepare: Callable | None = None,
                   predict_fn: Callable | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
    """Eval-mode outputs over inputs ``xs`` (each ``(N, ...)``), batch by batch, on the CPU: ``(N, K)``."""
    prepare = prepare or (lambda b: [x.float() for x in b])
    predict_fn = predict_fn or (lambda out: out)
    was = model.training
    model.eval()
    n = len(xs[0])
    outs = []
    for i in range(0, n, batch_size):
        inputs = [x.to(device) for x in prepare([x[i : i + batch_size] for x in xs])]
        outs.append(predict_fn(model(*inputs)).float().cpu())
    model.train(was)
    return torch.cat(outs) if outs else torch.zeros(0)


# ------------------------------------------------------------------------------ datasets


@dataclass(frozen=True)
class LabelledVideo:
    """One video of a labelled dataset: ``path`` and its class ``label`` (a string)."""

    path: Path
    label: str


def read_labelled_videos(source: str | Path) -> list[LabelledVideo]:
    """Read a dataset of labelled videos.

    Parameters
    ----------
    source : str or Path
        Either a CSV file with columns ``path,label`` (a header row with those names is optional;
        relative paths are relative to the CSV's folder; ``#`` lines are comments), or a folder
        holding one sub-folder per class with the videos inside (``guitar/a.mp4``, ...).

    Returns
    -------
    list of LabelledVideo
        In file order (CSV) or sorted by class then name (folders).

    Raises
    ------
    AnnotationError
        Missing file, malformed rows, videos that do not exist, or no video at all.
    """
    source = Path(source)
    if source.is_dir():
        items = []
        for cls in sorted(p for p in source.iterdir() if p.is_dir()):
            for v in sorted(cls.iterdir()):
                if v.suffix.lower() in VIDEO_SUFFIXES:
                    items.append(LabelledVideo(v, cls.name))
        if not items:
            raise AnnotationError(f"'{source}' has no class folders with videos ({', '.join(VIDEO_SUFFIXES)})")
        return items
    if not source.is_file():
        raise AnnotationError(f"dataset '{source}' does not exist (give a CSV of path,label or a folder of class folders)")
    items = []
    with open(source, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r and not r[0].lstrip().startswith("#")]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    for i, r in enumerate(rows, start=1):
        if len(r) < 2 or not r[0].strip() or not r[1].strip():
            raise AnnotationError(f"'{source}' row {i}: expected 'path,label', got {','.join(r)!r}")
        p = Path(r[0].strip())
        if not p.is_absolute():
            p = source.parent / p
        if not p.is_file():
            raise AnnotationError(f"'{source}' row {i}: video '{p}' does not exist")
        items.append(LabelledVideo(p, r[1].strip()))
    if not items:
        raise AnnotationError(f"'{source}' lists no video")
    return items


def write_labelled_videos(path: str | Path, items: Sequence[LabelledVideo]) -> Path:
    """Write a ``path,label`` CSV (paths relative to the CSV's folder when inside it)."""
    path = Path(path)
    lines = ["path,label"]
    for it in items:
        p = Path(it.path)
        try:
            p = p.absolute().relative_to(path.parent.absolute())
        except ValueError:
            pass
        lines.append(f"{p},{it.label}")
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def stratified_split(labels: Sequence[int], val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` with about ``val_fraction`` of each class in ``val`` (at least one
    per class with 2+ samples when ``val_fraction > 0``), randomly with ``seed``."""
    if not 0 <= val_fraction < 1:
        raise ParameterError(f"val_fraction must be in [0, 1), got {val_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(len(idx) * val_fraction))
        if val_fraction > 0 and len(idx) >= 2:
            n_val = max(1, min(n_val, len(idx) - 1))
        else:
            n_val = 0
        val += idx[:n_val].tolist()
        train += idx[n_val:].tolist()
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(val, dtype=np.int64))


# ------------------------------------------------------------------------------ model files

WEIGHTS = "model.safetensors"
META = "model.json"


def save_task_model(model_dir: str | Path, fmt: str, state: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write ``state`` (tensors) and ``meta`` (JSON) to ``model_dir`` atomically, format ``fmt``."""
    from safetensors.torch import save_file

    model_dir = Path(model_dir)
    doc = {"format": fmt, "format_version": 1, **meta}
    try:
        text = json.dumps(doc, indent=2)
    except TypeError as exc:
        raise ParameterError(f"model metadata is not JSON-serialisable: {exc}") from exc
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / WEIGHTS) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp), metadata={"format": fmt})
    write_text_atomic(model_dir / META, text + "\n")
    return model_dir


def load_task_model(model_dir: str | Path, fmt: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a folder written by :func:`save_task_model`; raise :class:`ModelError` if it is not ``fmt``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    mpath = model_dir / META
    if not mpath.is_file():
        raise ModelError(f"'{model_dir}' is not a musicperf model folder: {META} is missing")
    try:
        doc = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"'{mpath}' is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        got = doc.get("format") if isinstance(doc, dict) else None
        raise ModelError(f"'{model_dir}' holds a {got!r} model, not a {fmt!r} model")
    try:
        state = load_file(str(model_dir / WEIGHTS))
    except (SafetensorError, OSError, FileNotFoundError) as exc:
        raise ModelError(f"cannot read '{model_dir / WEIGHTS}': {exc}") from exc
    return state, doc
