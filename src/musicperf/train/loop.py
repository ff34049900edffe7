"""The training loop: Adam, validation-based early stopping, best-epoch selection, exact resume.

Defaults are the papers' (``001`` Section 5.3): Adam, learning rate 1e-3, weight decay 1e-2 (as
L2 added to the gradient, torch ``Adam(weight_decay=...)``; the paper says "weight decay (or L2
normalization)", so not AdamW), batch 32, MSE loss. The paper's 3000 epochs is a setting, not the
default.

Reproducibility: shuffling and dropout are seeded from ``(seed, epoch)`` at the start of every
epoch, so a run resumed from its checkpoint after epoch ``e`` continues exactly as the
uninterrupted run would (bit-identical on CPU with ``num_workers=0``). The checkpoint is one
safetensors file written atomically after each epoch: model, optimiser moments and best weights
as tensors, history and counters as JSON metadata. Nothing is pickled.

Works on any torch ``Dataset`` yielding ``(x, y)``: ``x`` clips ``(3, T, H, W)`` in [0, 1] or
cached conv4 activations (set ``model.input_stage = "conv4"``), ``y`` targets ``(K,)`` in [0, 1].
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from musicperf._util import atomic_path
from musicperf.errors import ModelError, ParameterError
from musicperf.evaluate.metrics import multilabel_report
from musicperf.train import losses as L

STATE_FILE = "train_state.safetensors"


@contextmanager
def one_torch_thread():
    """Run the block on one torch thread, then restore the count.

    The heads and temporal models trained here are small: a thread's share of them costs less
    than the overhead of several, and on a busy 2-core machine two torch threads ran 3.5x
    slower than one (benchmarks/bench_real_labelling.py).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (the papers' defaults).

    Attributes
    ----------
    lr, weight_decay, batch_size : the paper's 1e-3, 1e-2, 32.
    epochs : int
        Maximum epochs (``001`` trains 3000; default 100).
    patience : int or None
        Stop after this many epochs without improvement of ``monitor``; None never stops early.
    seed : int
    loss : {"mse", "bce"}
        The criterion (``001``: MSE on sigmoid outputs).
    dbb : bool
        Dynamic Batch Balance (Equations 1-3 of ``001``).
    class_weighted : bool
        With ``dbb``: the class-weighted form, Equations 4-5 (weights from the training targets).
    ts : bool
        Whether the targets are temporally smoothed (Equation 6, done by
        :func:`musicperf.labels.samples.sample_labels`); recorded with the model, and validation
        targets are binarised at ``pos_threshold`` either way.
    pos_threshold : float
        Targets ``>=`` this are positives (DBB sets, validation F1).
    threshold : float
        Score threshold for the validation F1.
    monitor : {"val_f1", "val_loss"}
        Early stopping and best-epoch criterion (macro F1 higher, or plain validation loss lower).
    device : str
        ``"cpu"`` or ``"cuda"``.
    amp : bool
        bfloat16 autocast for forward passes (CPU or CUDA).
    num_workers : int
        DataLoader workers (0 keeps runs bit-reproducible).
    """

    lr: float = 1e-3
    weight_decay: float = 1e-2
    batch_size: int = 32
    epochs: int = 100
    patience: int | None = 20
    seed: int = 0
    loss: Literal["mse", "bce"] = "mse"
    dbb: bool = False
    class_weighted: bool = False
    ts: bool = False
    pos_threshold: float = 0.5
    threshold: float = 0.5
    monitor: Literal["val_f1", "val_loss"] = "val_f1"
    device: str = "cpu"
    amp: bool = False
    num_workers: int = 0

    def __post_init__(self):
        if self.lr <= 0 or self.weight_decay < 0 or self.batch_size < 1 or self.epochs < 1:
            raise ParameterError(f"TrainConfig needs lr > 0, weight_decay >= 0, batch_size >= 1, epochs >= 1; got {self}")
        if self.patience is not None and self.patience < 1:
            raise ParameterError(f"patience must be >= 1 or None, got {self.patience}")
        if self.loss not in ("mse", "bce"):
            raise ParameterError(f"loss {self.loss!r} is not 'mse' or 'bce'")
        if self.class_weighted and not self.dbb:
            raise ParameterError("class_weighted (Equations 4-5 of 001) extends DBB; set dbb=True as well")
        if self.monitor not in ("val_f1", "val_loss"):
            raise ParameterError(f"monitor {self.monitor!r} is not 'val_f1' or 'val_loss'")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    """Outcome of :func:`fit`.

    Attributes
    ----------
    history : list of dict
        Per epoch: ``epoch`` (1-based), ``train_loss``, ``val_loss``, ``val_f1`` (macro),
        ``seconds``.
    best_epoch : int
        1-based epoch whose weights are in ``best_state`` (and in the model after ``fit``).
    best_metric : float
    best_state : dict of str to Tensor
    stopped_early : bool
    """

    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_metric: float = float("nan")
    best_state: dict = field(default_factory=dict)
    stopped_early: bool = False


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 12_345) % (2**63 - 1)


def dataset_targets(ds: Dataset) -> np.ndarray:
    """Targets ``(n, K)`` of a dataset: its ``targets`` attribute, else by iterating it."""
    t = getattr(ds, "targets", None)
    if t is None:
        t = [np.asarray(ds[i][1]) for i in range(len(ds))]
    return np.asarray(torch.as_tensor(np.asarray(t)), dtype=np.float32)


def compute_loss(logits: torch.Tensor, y: torch.Tensor, config: TrainConfig, class_weights: torch.Tensor | None) -> torch.Tensor:
    """The training loss of ``config``: DBB (optionally class-weighted) or plain MSE/BCE."""
    if config.dbb:
        return L.dbb_loss(logits, y, criterion=config.loss, class_weights=class_weights, pos_threshold=config.pos_threshold)
    return L.elementwise_loss(logits, y, config.loss).mean()


@torch.no_grad()
def predict(model: torch.nn.Module, ds: Dataset, *, batch_size: int = 32, device: str = "cpu", amp: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``model`` over a dataset in eval mode.

    Returns
    -------
    logits : ndarray, shape (n, K) or (n, K, 2)
    scores : ndarray, shape (n, K), presence probabilities
    targets : ndarray, shape (n, K)
    """
    from musicperf.models.gesturenet import scores_from_logits

    was_training = model.training
    model.eval()
    outs, ys = [], []
    for x, y in DataLoader(ds, batch_size=batch_size, shuffle=False):
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
            out = model(x.to(device).float())
        outs.append(out.float().cpu())
        ys.append(torch.as_tensor(y).float())
    model.train(was_training)
    logits = torch.cat(outs)
    return logits.numpy(), scores_from_logits(logits).numpy(), torch.cat(ys).numpy()


def evaluate_dataset(model, ds: Dataset, config: TrainConfig) -> tuple[float, float]:
    """Plain validation loss (DBB is training-only, ``001`` Section 4.2) and macro F1."""
    logits, scores, y = predict(model, ds, batch_size=config.batch_size, device=config.device, amp=config.amp)
    loss = float(L.elementwise_loss(torch.from_numpy(logits), torch.from_numpy(y), config.loss).mean())
    f1 = multilabel_report(y >= config.pos_threshold, scores, threshold=config.threshold)["macro"]["f1"]
    return loss, float(f1)


def _better(metric: float, best: float, monitor: str) -> bool:
    if math.isnan(metric):
        return False
    if math.isnan(best):
        return True
    return metric > best if monitor == "val_f1" else metric < best


# -- checkpoint (safetensors, no pickle) -------------------------------------------------------

def save_train_state(path: Path, model, opt, best_state, meta: dict, *, extra: dict | None = None) -> None:
    """Write a resumable training state atomically (safetensors): the model's and the best
    weights, the optimiser's tensors and scalars, ``extra`` tensors (random states) and ``meta``
    (JSON) in the file's metadata. Used by :func:`fit`, :func:`run_epochs` and the
    instrument/skill loop (:mod:`musicperf.tasks._classify`)."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v.detach().cpu().contiguous() for k, v in best_state.items()})
    tensors.update({f"extra.{k}": v.detach().cpu().contiguous() for k, v in (extra or {}).items()})
    sd = opt.state_dict()
    opt_scalars = {}
    for idx, st in sd["state"].items():
        for name, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"opt.{idx}.{name}"] = val.detach().cpu().contiguous().clone()
            else:
                opt_scalars[f"{idx}.{name}"] = val
    meta = {**meta, "param_groups": sd["param_groups"], "opt_scalars": opt_scalars}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"train_state": json.dumps(meta)})


def load_train_state(path: Path):
    """Read a file written by :func:`save_train_state`: ``(tensors, meta)``."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["train_state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ModelError(f"cannot read training checkpoint '{path}': {exc}") from exc
    return tensors, meta


#: Settings that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = ("epochs", "patience")


def check_resume_config(saved: dict, now: dict, path: Path, advice: str) -> None:
    """Refuse to resume from ``path`` when its configuration differs from ``now`` in anything
    but :data:`RESUMABLE_CHANGES`; ``advice`` ends the one-line error."""
    was = {k: v for k, v in saved.items() if k not in RESUMABLE_CHANGES}
    cur = {k: v for k, v in now.items() if k not in RESUMABLE_CHANGES}
    if was != cur:
        diff = sorted(k for k in cur if cur[k] != was.get(k))
        raise ParameterError(
            f"checkpoint '{path}' was written with a different configuration ({', '.join(diff)}); {advice}")


def apply_train_state(tensors: dict, meta: dict, model, opt, *, path: Path) -> dict:
    """Put a state read by :func:`load_train_state` back into ``model`` (strictly) and ``opt``;
    returns the saved best weights (empty when none were saved)."""
    from musicperf.models.checkpoints import load_state_strict

    load_state_strict(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
                      source=f"training checkpoint '{path}'")
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for k, v in meta["opt_scalars"].items():
        idx, name = k.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}


def fit(
    model: torch.nn.Module,
    train_ds: Dataset,
    val_ds: Dataset | None,
    config: TrainConfig = TrainConfig(),
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    restore_best: bool = True,
) -> TrainResult:
    """Train ``model`` on ``train_ds``, selecting the best epoch on ``val_ds``.

    Parameters
    ----------
    model : nn.Module
        Maps a batch ``x`` to logits ``(B, K)`` or ``(B, K, 2)``; only parameters with
        ``requires_grad`` are optimised (see :func:`musicperf.models.set_trainable`).
    train_ds, val_ds : Dataset
        Yield ``(x, y)``; ``val_ds`` None trains for ``config.epochs`` and keeps the last epoch.
    config : TrainConfig
    checkpoint_dir : str or Path, optional
        Where ``train_state.safetensors`` is written after every epoch.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` if there is one (the configuration
        must match, apart from ``epochs`` and ``patience``).
    progress : bool
        tqdm bar over epochs showing training loss and validation F1.
    restore_best : bool
        Load the best epoch's weights into ``model`` before returning.

    Returns
    -------
    TrainResult
    """
    if len(train_ds) == 0:
        raise ParameterError("the training set is empty")
    device = torch.device(config.device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ParameterError("the model has no trainable parameter (check set_trainable)")
    opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    cw = None
    if config.class_weighted:
        cw = L.class_weights(dataset_targets(train_ds), pos_threshold=config.pos_threshold).to(device)

    ckpt = Path(checkpoint_dir) / STATE_FILE if checkpoint_dir is not None else None
    cfg_dict = config.to_dict()
    has_val = val_ds is not None and len(val_ds) > 0
    monitor = config.monitor if has_val else "val_f1"
    dev_type = device.type

    def accept(meta: dict) -> bool:
        saved = meta.get("key") or meta  # checkpoints written before run_loop keep the config at the top
        check_resume_config(saved["config"], cfg_dict, ckpt, "use another checkpoint_dir or resume=False")
        return True

    def epoch_step(epoch: int) -> dict:
        t0 = time.perf_counter()
        torch.manual_seed(_epoch_seed(config.seed, epoch))
        gen = torch.Generator().manual_seed(_epoch_seed(config.seed, epoch) + 1)
        loader = DataLoader(train_ds, batch_size=config.batch_size, shuffle=True, generator=gen, num_workers=config.num_workers)
        model.train()
        total, count = 0.0, 0
        for x, y in loader:
            x, y = x.to(device).float(), torch.as_tensor(y).to(device).float()
            with torch.autocast(device_type=dev_type, dtype=torch.bfloat16, enabled=config.amp):
                logits = model(x)
            loss = compute_loss(logits.float(), y, config, cw)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(x)
            count += len(x)
        row = {"epoch": epoch + 1, "train_loss": total / count}
        if has_val:
            row["val_loss"], row["val_f1"] = evaluate_dataset(model, val_ds, config)
        else:
            row["val_loss"], row["val_f1"] = float("nan"), float("nan")
        row["seconds"] = time.perf_counter() - t0
        return row

    def select(row: dict, epoch: int) -> float:
        # Without validation the latest epoch is the best (an increasing key).
        return row[config.monitor] if has_val else float(epoch)

    def better(metric, best) -> bool:
        return _better(metric, float("nan") if best is None else best, monitor if has_val else "val_f1")

    loop = run_loop(model, opt, epoch_step, epochs=config.epochs, select=select, better=better,
                    patience=config.patience if has_val else None, checkpoint=ckpt, kind="fit",
                    key={"config": cfg_dict}, accept=accept, resume=resume, progress=progress,
                    postfix=lambda row: {"loss": f"{row['train_loss']:.4f}", "val_f1": f"{row['val_f1']:.3f}"})
    result = TrainResult(history=loop.history, best_epoch=loop.best_epoch, best_state=loop.best_state,
                         stopped_early=loop.stopped_early)
    result.best_metric = float(loop.best_key) if has_val and loop.best_key is not None else float("nan")
    if restore_best and result.best_state:
        model.load_state_dict(result.best_state)
    return result


@dataclass
class LoopResult:
    """Outcome of :func:`run_loop`.

    ``history`` holds one row per epoch (resumed ones included); ``best_epoch`` (1-based),
    ``best_key`` and ``best_state`` the selected epoch (the last one without ``select``);
    ``resumed_from`` the epochs read from the checkpoint; ``stopped_early`` whether ``patience``
    ended the run.
    """

    history: list = field(default_factory=list)
    best_epoch: int = 0
    best_key: object = None
    best_state: dict = field(default_factory=dict)
    bad_epochs: int = 0
    stopped_early: bool = False
    resumed_from: int = 0


def _greater(key, best) -> bool:
    return best is None or key > best


def run_loop(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    epoch_step,
    *,
    epochs: int,
    select=None,
    better=_greater,
    patience: int | None = None,
    generator: torch.Generator | None = None,
    checkpoint: str | Path | None = None,
    kind: str = "run_epochs",
    key: dict | None = None,
    accept=None,
    resume: bool = True,
    progress: bool = False,
    postfix=None,
) -> LoopResult:
    """musicperf's one training loop: epochs, best-epoch selection, early stopping, exact resume.

    Every trainer builds its model and optimiser and says what one epoch is; this loop runs the
    epochs not done yet, keeps the history and the best epoch, stops early, and checkpoints
    after every epoch. Used by the gesture heads (:func:`musicperf.tasks.gestures.fit_head`,
    through :func:`run_epochs`), DDP (:func:`musicperf.distributed.ddp.fit_head_distributed`),
    the instrument and skill classifiers (:func:`musicperf.tasks._classify.fit_classifier`) and
    the GestureNet trainer (:func:`fit`).

    Parameters
    ----------
    model, opt
        Trained in place by ``epoch_step``; their states are checkpointed.
    epoch_step : callable
        ``epoch_step(epoch) -> row`` (0-based epoch; a dict of figures, or the mean loss).
    epochs : int
    select : callable, optional
        ``select(row, epoch) -> key`` of an epoch; the best key (:func:`better`) selects the
        weights kept in ``best_state``. None: no selection, the last epoch is the result.
    better : callable
        ``better(key, best_key) -> bool`` (``best_key`` None before the first epoch).
    patience : int, optional
        Stop after this many epochs in a row without a better key.
    generator : torch.Generator, optional
        A generator the epochs draw from, checkpointed with torch's global random state: a
        resumed run draws what the uninterrupted one would. (Trainers that reseed both from
        ``(seed, epoch)`` every epoch need neither.)
    checkpoint : str or Path, optional
        A ``.safetensors`` file written atomically after every epoch (:func:`save_train_state`:
        weights, optimiser moments, best weights, random states; JSON: ``kind``, ``key``,
        history and counters).
    kind, key
        What the checkpoint belongs to: the loop's caller and its run (settings, data).
    accept : callable, optional
        ``accept(saved_meta) -> bool``: whether an existing checkpoint is resumed (it may raise
        a one-line error instead). Default: the same ``kind`` and ``key``; others are ignored.
    resume : bool
        Read an existing checkpoint at all.
    progress : bool
        tqdm bar over the epochs; ``postfix(row) -> dict`` is shown on it.

    Returns
    -------
    LoopResult
    """
    from tqdm.auto import tqdm

    ckpt = Path(checkpoint) if checkpoint is not None else None
    out = LoopResult()
    if ckpt is not None and resume and ckpt.is_file():
        try:
            tensors, meta = load_train_state(ckpt)
        except ModelError:
            if accept is not None:
                raise
            tensors, meta = None, None
        if meta is not None:
            ok = accept(meta) if accept is not None else (meta.get("kind") == kind and meta.get("key") == key)
            if ok:
                out.best_state = apply_train_state(tensors, meta, model, opt, path=ckpt)
                if "extra.torch" in tensors:
                    torch.set_rng_state(tensors["extra.torch"])
                if generator is not None and "extra.generator" in tensors:
                    generator.set_state(tensors["extra.generator"])
                out.history = list(meta["history"])
                out.best_epoch = int(meta["best_epoch"])
                best = meta.get("best_key", meta.get("best_metric"))  # fit's checkpoints before run_loop
                out.best_key = tuple(best) if isinstance(best, list) else best
                out.bad_epochs = int(meta["bad_epochs"])
                out.stopped_early = bool(meta["stopped_early"])
                out.resumed_from = len(out.history)
    start = epochs if out.stopped_early else len(out.history)
    bar = tqdm(total=epochs, initial=min(start, epochs), disable=not progress, desc="epochs", unit="epoch",
               leave=False, dynamic_ncols=True)
    try:
        for epoch in range(start, epochs):
            row = epoch_step(epoch)
            out.history.append(row)
            if select is None:
                out.best_epoch = epoch + 1
            else:
                k = select(row, epoch)
                if better(k, out.best_key) or not out.best_state:
                    out.best_key, out.best_epoch, out.bad_epochs = k, epoch + 1, 0
                    out.best_state = {n: v.detach().clone().cpu() for n, v in model.state_dict().items()}
                else:
                    out.bad_epochs += 1
            out.stopped_early = patience is not None and out.bad_epochs >= patience
            if ckpt is not None:
                extra = {"torch": torch.get_rng_state()}
                if generator is not None:
                    extra["generator"] = generator.get_state()
                best_key = list(out.best_key) if isinstance(out.best_key, tuple) else out.best_key
                save_train_state(ckpt, model, opt, out.best_state,
                                 {"kind": kind, "key": key, "history": out.history, "best_epoch": out.best_epoch,
                                  "best_key": best_key, "bad_epochs": out.bad_epochs, "epochs_done": epoch + 1,
                                  "stopped_early": out.stopped_early}, extra=extra)
            bar.update(1)
            if postfix is not None:
                bar.set_postfix(**postfix(row))
            if out.stopped_early:
                break
    finally:
        bar.close()
    return out


def run_epochs(model, opt, epoch_step, *, epochs: int, generator=None, checkpoint=None, key: dict | None = None,
               progress: bool = False) -> list:
    """:func:`run_loop` without selection or early stopping; returns the history (the gesture heads' use)."""
    return run_loop(model, opt, epoch_step, epochs=epochs, generator=generator, checkpoint=checkpoint,
                    kind="run_epochs", key=key, progress=progress).history
