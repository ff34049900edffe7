"""Shared pieces of the single-label video tasks (instrument recognition ``003``, skill ``004``).

* :func:`fit_classifier` -- softmax cross-entropy training with validation-accuracy model
  selection and early stopping, configured by the shared
  :class:`~musicperf.train.loop.TrainConfig` (``lr``, ``weight_decay``, ``batch_size``,
  ``epochs``, ``patience``, ``seed``, ``device``). The shared :func:`musicperf.train.loop.fit`
  is multi-label (sigmoid outputs, MSE/BCE, macro F1 at a threshold); both papers here
  classify with a softmax, so their training uses this loop until ``fit`` gains a
  cross-entropy criterion. Like ``fit``, shuffling, dropout and
  augmentation are reseeded from ``(seed, epoch)`` every epoch, and a per-epoch checkpoint
  (``checkpoint=``, written with ``fit``'s safetensors helpers) makes an interrupted run resume
  bit-identically.
* :class:`RowSource` -- the rows of many per-video arrays (in memory or ``.npy`` files read
  memory-mapped per batch) as one training input, so training data is not concatenated in
  memory.
* :func:`read_labelled_videos` -- a dataset of labelled videos: a CSV of ``path,label`` (the
  FCVID / YouTube-8M subsets of ``003``) or one folder per class.
* :func:`save_task_model` / :func:`load_task_model` -- ``model.safetensors`` + ``model.json``
  (never a pickle), the layout of :mod:`musicperf.models.files` with a task-specific format.

Imports torch at module level: import lazily (tasks are imported by command functions only).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from musicperf._util import write_text_atomic
from musicperf.errors import AnnotationError, ParameterError
from musicperf.models import files
from musicperf.train.loop import TrainConfig

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


# ------------------------------------------------------------------------------ training

#: File name of :func:`fit_classifier`'s per-epoch checkpoint (the gesture loop's layout).
STATE_FILE = "train_state.safetensors"


@dataclass
class ClassifierHistory:
    """Outcome of :func:`fit_classifier`: per-epoch rows and the selected epoch (1-based).

    ``resumed_from`` is the number of epochs read from a checkpoint (0: a fresh run);
    ``stopped_early`` says whether early stopping ended the run.
    """

    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_accuracy: float = float("nan")
    resumed_from: int = 0
    stopped_early: bool = False


class RowSource:
    """Rows of several per-video arrays seen as one ``(N, ...)`` array, read on demand.

    The training sets of the tasks are the clips (or frames, or mel patches) of many videos.
    Concatenating them copies the whole collection into memory; a ``RowSource`` keeps the
    per-video arrays where they are -- in memory, or ``.npy`` files on disk, opened
    memory-mapped for each batch and closed again, so the resident memory of training does not
    grow with the collection (see :func:`musicperf.tasks.skill.load_skill_inputs` with
    ``cache_dir``).

    Parameters
    ----------
    parts : sequence of ndarray or str or Path
        Per-video arrays ``(n_i, ...)`` with equal trailing shapes and dtypes, or paths of
        ``.npy`` files holding them.

    Notes
    -----
    ``source[idx]`` with an integer index array (or tensor) returns the rows as one C-ordered
    ndarray in the order of ``idx``; ``len(source) = sum(n_i)``.
    """

    def __init__(self, parts: Sequence):
        self.parts = list(parts)
        shapes = [self._shape(p) for p in self.parts]
        if not shapes:
            raise ParameterError("a RowSource needs at least one array")
        tails = {tuple(sh[1:]) for sh, _ in shapes}
        if len(tails) != 1 or len({dt for _, dt in shapes}) != 1:
            raise ParameterError(f"per-video arrays differ in trailing shape or dtype: {sorted(tails)}")
        self.shape = (sum(sh[0] for sh, _ in shapes), *next(iter(tails)))
        self.dtype = shapes[0][1]
        self.offsets = np.concatenate([[0], np.cumsum([sh[0] for sh, _ in shapes])])

    @staticmethod
    def _shape(part):
        if isinstance(part, (str, Path)):
            a = np.load(part, mmap_mode="r")
            sh, dt = a.shape, a.dtype
            del a
            return sh, dt
        return np.shape(part), np.asarray(part[:0]).dtype

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, idx) -> np.ndarray:
        idx = np.asarray(idx.cpu() if isinstance(idx, torch.Tensor) else idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} rows")
        out = np.empty((idx.size, *self.shape[1:]), dtype=self.dtype)
        which = np.searchsorted(self.offsets, idx, side="right") - 1
        for v in np.unique(which):
            sel = np.flatnonzero(which == v)
            part = self.parts[v]
            arr = np.load(part, mmap_mode="r") if isinstance(part, (str, Path)) else part
            out[sel] = arr[idx[sel] - self.offsets[v]]
            del arr  # a memory map is closed when its last reference goes
        return out


def _take(x, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` of a tensor, an ndarray (memory-mapped or not) or a :class:`RowSource`."""
    if isinstance(x, torch.Tensor):
        return x[idx]
    return torch.from_numpy(np.ascontiguousarray(x[idx.numpy()]))


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 12_345) % (2**63 - 1)


def _batches(n: int, batch_size: int, gen: torch.Generator | None):
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def _data_fingerprint(xs, y: torch.Tensor, data_id: str | None, *, max_bytes: int = 1 << 28) -> str:
    """What a checkpoint must have been trained on: shapes, labels, the caller's id, and the
    values of in-memory inputs up to ``max_bytes`` (e.g. the fusion stage's features, which
    change when the networks before it do); files of a :class:`RowSource` by path and size."""
    import hashlib

    h = hashlib.sha1()
    budget = max_bytes

    def add_array(a):
        nonlocal budget
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a
        h.update(repr((a.shape, str(a.dtype))).encode())
        if not isinstance(a, np.memmap) and a.nbytes <= budget:
            budget -= a.nbytes
            h.update(np.ascontiguousarray(a).tobytes())

    for x in xs:
        if isinstance(x, RowSource):
            for part in x.parts:
                if isinstance(part, (str, Path)):
                    h.update(f"{Path(part).resolve()}|{Path(part).stat().st_size}".encode())
                else:
                    add_array(np.asarray(part))
        else:
            add_array(x)
    h.update(np.ascontiguousarray(y.cpu().numpy().astype(np.int64)).tobytes())
    h.update((data_id or "").encode())
    return h.hexdigest()[:16]


def fit_classifier(
    model: torch.nn.Module,
    x_train,
    y_train: torch.Tensor,
    x_val,
    y_val: torch.Tensor | None,
    config: TrainConfig,
    *,
    prepare: Callable | None = None,
    loss_fn: Callable | None = None,
    predict_fn: Callable | None = None,
    augment: Callable | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = True,
    data_id: str | None = None,
) -> ClassifierHistory:
    """Train ``model`` with Adam on softmax cross-entropy; keep the best validation epoch.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(*inputs)``.
    x_train : Tensor, ndarray, RowSource, or a sequence of them, each with N rows
        Inputs (several for several modalities), kept where they are (a memory-mapped array or
        a :class:`RowSource` over ``.npy`` files stays on disk); each batch is gathered, turned
        into tensors, passed through ``prepare`` and moved to ``config.device``.
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
        It must draw from torch's global generator (reseeded every epoch) for exact resume.
    checkpoint : str or Path, optional
        A ``.safetensors`` file written atomically after every epoch: model, Adam moments, the
        best epoch's weights (tensors); history, best-so-far key, early-stopping counter,
        epochs done, configuration and a fingerprint of the data (JSON metadata). Nothing is
        pickled; the writer is the gesture loop's (:mod:`musicperf.train.loop`).
    resume : bool
        Continue from ``checkpoint`` when it exists. The configuration must match (apart from
        ``epochs`` and ``patience``) and so must the data (shapes, labels, ``data_id``, the
        values of in-memory inputs up to 256 MB, the paths and sizes of on-disk ones), else a
        :class:`ParameterError` says so. The random state needs no saving: shuffling, dropout
        and augmentation are reseeded from ``(seed, epoch)`` at the start of every epoch, so
        the resumed run is bit-identical to an uninterrupted one on the CPU.
    data_id : str, optional
        Identifies the training data in the fingerprint (e.g. the video paths and labels).

    Returns
    -------
    ClassifierHistory
        The model holds the selected epoch's weights on return.
    """
    from musicperf.train.loop import check_resume_config, run_loop

    def as_list(x):
        return [x] if isinstance(x, (torch.Tensor, np.ndarray, RowSource)) else list(x)

    xs_train = as_list(x_train)
    xs_val = None if x_val is None else as_list(x_val)
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
    has_val = xs_val is not None and y_val is not None and len(y_val) > 0
    cfg_dict = config.to_dict()
    fingerprint = _data_fingerprint(xs_train + (xs_val or []), torch.cat([y_train, y_val]) if has_val else y_train, data_id)
    ckpt = Path(checkpoint) if checkpoint is not None else None

    def accept(meta: dict) -> bool:
        if meta.get("kind") != "fit_classifier":
            raise ParameterError(f"'{ckpt}' is not a checkpoint of fit_classifier (written by another training loop?)")
        saved = meta.get("key") or meta  # checkpoints written before run_loop keep these at the top
        check_resume_config(saved["config"], cfg_dict, ckpt, "delete it or train into another folder")
        if saved["data"] != fingerprint:
            raise ParameterError(f"checkpoint '{ckpt}' was written for other training data (videos, labels or "
                                 "settings differ); delete it or train into another folder")
        return True

    def epoch_step(epoch: int) -> dict:
        t0 = time.perf_counter()
        torch.manual_seed(_epoch_seed(config.seed, epoch))
        gen = torch.Generator().manual_seed(_epoch_seed(config.seed, epoch) + 1)
        model.train()
        total = 0.0
        for idx in _batches(n, config.batch_size, gen):
            if len(idx) < 2 and n >= 2:
                continue  # batch norm cannot train on one sample; it is seen next epoch
            inputs = [x.to(device) for x in prepare([_take(x, idx) for x in xs_train])]
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
        row["seconds"] = time.perf_counter() - t0
        return row

    def select(row: dict, epoch: int) -> tuple:
        # Highest validation accuracy, then lowest loss; without validation the last epoch.
        return (row["val_accuracy"], -row["val_loss"]) if has_val else (float(epoch), 0.0)

    # Shuffling, dropout and augmentation are reseeded from (seed, epoch) in every epoch, so the
    # loop needs no random state to resume exactly.
    loop = run_loop(model, opt, epoch_step, epochs=config.epochs, select=select,
                    patience=config.patience if has_val else None, checkpoint=ckpt, kind="fit_classifier",
                    key={"config": cfg_dict, "data": fingerprint}, accept=accept, resume=resume)
    if loop.best_state:
        model.load_state_dict(loop.best_state)
    model.eval()
    best_row = loop.history[loop.best_epoch - 1] if loop.best_epoch else {}
    return ClassifierHistory(history=loop.history, best_epoch=loop.best_epoch,
                             best_accuracy=best_row.get("val_accuracy", float("nan")),
                             resumed_from=loop.resumed_from, stopped_early=loop.stopped_early)


@torch.no_grad()
def predict_logits(model, xs: Sequence, *, batch_size: int = 32, prepare: Callable | None = None,
                   predict_fn: Callable | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
    """Eval-mode outputs over inputs ``xs`` (each ``(N, ...)``: tensors, arrays or :class:`RowSource`),
    batch by batch, on the CPU: ``(N, K)``."""
    prepare = prepare or (lambda b: [x.float() for x in b])
    predict_fn = predict_fn or (lambda out: out)
    was = model.training
    model.eval()
    n = len(xs[0])
    outs = []
    for i in range(0, n, batch_size):
        idx = torch.arange(i, min(i + batch_size, n))
        inputs = [x.to(device) for x in prepare([_take(x, idx) for x in xs])]
        outs.append(predict_fn(model(*inputs)).float().cpu())
    model.train(was)
    return torch.cat(outs) if outs else torch.zeros(0)


# ------------------------------------------------------------------------------ datasets


@dataclass(frozen=True)
class ClassLabelledVideo:
    """One video of a class-labelled dataset (instrument, skill): ``path`` and its class ``label``
    (a string). Time-annotated videos are :class:`musicperf.labels.stats.AnnotatedVideo`."""

    path: Path
    label: str


def read_labelled_videos(source: str | Path) -> list[ClassLabelledVideo]:
    """Read a dataset of labelled videos.

    Parameters
    ----------
    source : str or Path
        Either a CSV file with columns ``path,label`` (a header row with those names is optional;
        relative paths are relative to the CSV's folder; ``#`` lines are comments), or a folder
        holding one sub-folder per class with the videos inside (``guitar/a.mp4``, ...).

    Returns
    -------
    list of ClassLabelledVideo
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
                    items.append(ClassLabelledVideo(v, cls.name))
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
        items.append(ClassLabelledVideo(p, r[1].strip()))
    if not items:
        raise AnnotationError(f"'{source}' lists no video")
    return items


def write_labelled_videos(path: str | Path, items: Sequence[ClassLabelledVideo]) -> Path:
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
    """Write ``state`` (tensors) and ``meta`` (JSON) to ``model_dir`` atomically, format ``fmt``
    (through :mod:`musicperf.models.files`, the one writer of model folders)."""
    model_dir = Path(model_dir)
    doc = {"format": fmt, "format_version": 1, **meta}
    files.check_json(doc)  # before the weights are written
    files.write_weights(model_dir / WEIGHTS, state, metadata={"format": fmt})
    files.write_meta(model_dir, doc, name=META)
    return model_dir


def load_task_model(model_dir: str | Path, fmt: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a folder written by :func:`save_task_model`; raise :class:`ModelError` if it is not ``fmt``."""
    model_dir = Path(model_dir)
    doc = files.read_meta(model_dir, name=META, formats=(fmt,))
    return files.read_weights(model_dir / WEIGHTS), doc


def deprecated_alias(module: str, name: str):
    """``module.LabelledVideo``, the old name of :class:`ClassLabelledVideo`, with a warning; for
    the module-level ``__getattr__`` of the modules that exported it."""
    if name == "LabelledVideo":
        import warnings

        warnings.warn(f"{module}.LabelledVideo is deprecated; use ClassLabelledVideo (a video with one class label)",
                      DeprecationWarning, stacklevel=3)
        return ClassLabelledVideo
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


def __getattr__(name):
    # Deprecated alias, kept importable for code written before the rename.
    return deprecated_alias(__name__, name)
