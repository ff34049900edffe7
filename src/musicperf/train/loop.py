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
    from tqdm.auto import tqdm

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

    result = TrainResult()
    bad_epochs, start = 0, 0
    ckpt = Path(checkpoint_dir) / STATE_FILE if checkpoint_dir is not None else None
    cfg_dict = config.to_dict()
    if ckpt is not None and resume and ckpt.is_file():
        tensors, meta = load_train_state(ckpt)
        check_resume_config(meta["config"], cfg_dict, ckpt, "use another checkpoint_dir or resume=False")
        result.best_state = apply_train_state(tensors, meta, model, opt, path=ckpt)
        result.history = meta["history"]
        result.best_epoch = meta["best_epoch"]
        result.best_metric = float(meta["best_metric"]) if meta["best_metric"] is not None else float("nan")
        bad_epochs = meta["bad_epochs"]
        start = meta["epochs_done"]
        if meta.get("stopped_early"):
            start = config.epochs  # nothing left to do
            result.stopped_early = True

    dev_type = device.type
    bar = tqdm(total=config.epochs, initial=min(start, config.epochs), disable=not progress, desc="epochs", unit="epoch")
    try:
        for epoch in range(start, config.epochs):
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
            if val_ds is not None and len(val_ds):
                row["val_loss"], row["val_f1"] = evaluate_dataset(model, val_ds, config)
                metric = row[config.monitor]
            else:
                row["val_loss"], row["val_f1"] = float("nan"), float("nan")
                metric = -float(epoch)  # no validation: the latest epoch is the best
            row["seconds"] = time.perf_counter() - t0
            result.history.append(row)
            monitor = config.monitor if val_ds is not None and len(val_ds) else "val_f1"
            if _better(metric, result.best_metric, monitor) or not result.best_state:
                result.best_metric, result.best_epoch = float(metric), epoch + 1
                result.best_state = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
                bad_epochs = 0
            else:
                bad_epochs += 1
            if val_ds is None or not len(val_ds):
                result.best_state = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
                result.best_epoch, result.best_metric = epoch + 1, float("nan")
            stop = config.patience is not None and val_ds is not None and bad_epochs >= config.patience
            result.stopped_early = stop
            if ckpt is not None:
                meta = {"config": cfg_dict, "history": result.history, "best_epoch": result.best_epoch,
                        "best_metric": None if math.isnan(result.best_metric) else result.best_metric,
                        "bad_epochs": bad_epochs, "epochs_done": epoch + 1, "stopped_early": stop}
                save_train_state(ckpt, model, opt, result.best_state, meta)
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_f1=f"{row['val_f1']:.3f}")
            if stop:
                break
    finally:
        bar.close()
    if restore_best and result.best_state:
        model.load_state_dict(result.best_state)
    return result


def run_epochs(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    epoch_step,
    *,
    epochs: int,
    generator: torch.Generator | None = None,
    checkpoint: str | Path | None = None,
    key: dict | None = None,
    stop=None,
    progress: bool = False,
) -> list:
    """The epoch loop with an exact resume: ``epoch_step(epoch)`` for each epoch not done yet.

    The loop the gesture heads train with (one process, :func:`musicperf.tasks.gestures.fit_head`,
    and DDP, :func:`musicperf.distributed.ddp.fit_head_distributed`): the caller builds the model
    and optimiser and says what one epoch is; this loop runs the epochs, keeps the history,
    checkpoints after every epoch and resumes.

    Parameters
    ----------
    model, opt
        Trained in place; their states are checkpointed.
    epoch_step : callable
        ``epoch_step(epoch) -> value`` (the epoch's mean loss, or a dict of figures), appended to
        the returned history.
    epochs : int
    generator : torch.Generator, optional
        The sample-order generator, checkpointed with torch's global random state (dropout)
        so a resumed run draws what the uninterrupted one would.
    checkpoint : str or Path, optional
        A ``.safetensors`` file written atomically after each epoch
        (:func:`save_train_state`); when it exists and its ``key`` equals ``key``, the run goes
        on after its last epoch. A checkpoint of another run (another key) is ignored.
    key : dict, optional
        JSON-able identity of the run (settings, data) stored in the checkpoint.
    stop : callable, optional
        ``stop(history) -> bool`` after each epoch: early stopping.
    progress : bool
        tqdm bar over the epochs.

    Returns
    -------
    list
        The history, one value per epoch run (resumed epochs included).
    """
    from tqdm.auto import tqdm

    ckpt = Path(checkpoint) if checkpoint is not None else None
    history: list = []
    if ckpt is not None and ckpt.is_file():
        try:
            tensors, meta = load_train_state(ckpt)
        except ModelError:
            tensors, meta = None, None
        if meta is not None and meta.get("key") == key and meta.get("loop") == "run_epochs":
            apply_train_state(tensors, meta, model, opt, path=ckpt)
            if generator is not None:
                generator.set_state(tensors["extra.generator"])
            torch.set_rng_state(tensors["extra.torch"])
            history = list(meta["history"])
    start = len(history)
    bar = tqdm(total=epochs, initial=min(start, epochs), disable=not progress, desc="training", unit="epoch",
               leave=False, dynamic_ncols=True)
    try:
        for epoch in range(start, epochs):
            if stop is not None and history and stop(history):
                break
            history.append(epoch_step(epoch))
            if ckpt is not None:
                extra = {"torch": torch.get_rng_state()}
                if generator is not None:
                    extra["generator"] = generator.get_state()
                save_train_state(ckpt, model, opt, {}, {"loop": "run_epochs", "key": key, "history": history},
                                 extra=extra)
            bar.update(1)
    finally:
        bar.close()
    return history
