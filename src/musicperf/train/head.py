"""Training the clip head: the MLP of paper 001 on standardised clip features, and its folds.

The pieces of the clip labeller (:mod:`musicperf.tasks.gestures.train`) that do not depend on
how the clips were made, shared with the frame labeller's clip-head candidate
(:mod:`musicperf.train.cliphead`):

* :class:`HeadSettings`: the head and its training (hidden widths, dropout, epochs, batch, AdamW,
  seed, loss); the defaults are :class:`~musicperf.tasks.gestures.GestureConfig`'s;
* :func:`loss_function`: Dynamic Batch Balance (Section 4.2 of 001), MSE or BCE by name;
* :func:`train_head`: the epochs of shuffled mini-batches (resumable through
  :func:`musicperf.train.loop.run_epochs`);
* :func:`fit_single_head`: seed, one torch thread, a :class:`~musicperf.models.SingleModelHead`,
  :func:`train_head`;
* :func:`predict_head`: sigmoid scores;
* :func:`clip_fold_indices`: blocked cross-validation folds over the clips of several videos
  (used to tune the thresholds on out-of-fold predictions).

Imports numpy at module level; torch inside the functions.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicperf.errors import ParameterError

__all__ = ["HeadSettings", "HEAD_DEFAULTS", "loss_function", "head_run_key", "train_head", "fit_single_head",
           "predict_head", "clip_fold_indices"]


@dataclass(frozen=True)
class HeadSettings:
    """The clip head and its training (the ``model`` section of ``GestureConfig``, same defaults).

    Attributes
    ----------
    hidden : tuple of int
        Hidden layer widths of the :class:`~musicperf.models.SingleModelHead`.
    dropout, epochs, batch_size, lr, weight_decay, seed
        AdamW on shuffled mini-batches.
    loss : {"dbb", "mse", "bce"}
        MSE with Dynamic Batch Balance (Section 4.2 of 001), plain MSE, or BCE.
    """

    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.2
    epochs: int = 80
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    loss: str = "dbb"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.loss not in ("dbb", "mse", "bce"):
            raise ParameterError(f"loss must be 'dbb', 'mse' or 'bce', got {self.loss!r}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d


#: The defaults, read by ``GestureConfig`` so that both heads train alike.
HEAD_DEFAULTS = HeadSettings()


def loss_function(name: str):
    """The training loss from :mod:`musicperf.train.losses`, as ``loss(logits, targets)``."""
    from musicperf.train import losses

    if name == "dbb":
        return lambda logits, y: losses.dbb_loss(logits, y)
    if name == "mse":
        return lambda logits, y: losses.mse_loss(logits, y)
    return lambda logits, y: losses.bce_loss(logits, y)


def head_run_key(X: np.ndarray, Y: np.ndarray, config, n_classes: int) -> dict:
    """What a head's checkpoint must have been trained on: the settings and the data's hash."""
    h = hashlib.sha256()
    for a in (X, Y):
        a = np.ascontiguousarray(a, dtype=np.float32)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return {"config": config.to_dict(), "n_classes": int(n_classes), "data": h.hexdigest()[:16]}


def train_head(head, X: np.ndarray, Y: np.ndarray, config, *, progress: bool = False,
               checkpoint: str | Path | None = None, key: dict | None = None) -> list[float]:
    """Train ``head`` in place on standardised features; returns the mean loss per epoch.

    ``config`` has the attributes of :class:`HeadSettings` (a ``GestureConfig`` does). The
    batches are drawn by a generator seeded with ``config.seed``; the head's initial weights are
    the caller's (seed torch before building it). ``checkpoint``/``key``: see
    :func:`musicperf.train.loop.run_epochs`. The head ends in eval mode.
    """
    import torch

    from musicperf.train.loop import run_epochs

    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = loss_function(config.loss)
    xt, yt = torch.from_numpy(np.asarray(X, dtype=np.float32)), torch.from_numpy(np.asarray(Y, dtype=np.float32))
    gen = torch.Generator().manual_seed(config.seed)

    def epoch(_):
        order = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for b in range(0, len(order), config.batch_size):
            idx = order[b : b + config.batch_size]
            opt.zero_grad()
            loss = loss_fn(head(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        return total / len(xt)

    head.train()
    history = run_epochs(head, opt, epoch, epochs=config.epochs, generator=gen, checkpoint=checkpoint, key=key,
                         progress=progress)
    head.eval()
    return history


def fit_single_head(X: np.ndarray, Y: np.ndarray, settings: HeadSettings, *, n_classes: int):
    """A :class:`~musicperf.models.SingleModelHead` trained on ``X`` (standardised) and ``Y``.

    Seeded with ``settings.seed``, on one torch thread (a head this small trains faster on one
    thread than with the overhead of several), as the clip labeller's ``fit_head``.

    Returns
    -------
    head : SingleModelHead, in eval mode
    history : list of float
    """
    import torch

    from musicperf.models import SingleModelHead
    from musicperf.train.loop import one_torch_thread

    if len(X) == 0:
        raise ParameterError("no training clips: no run of annotated frames is as long as one clip")
    torch.manual_seed(settings.seed)
    with one_torch_thread():
        head = SingleModelHead(X.shape[1], n_classes, hidden=settings.hidden, dropout=settings.dropout)
        history = train_head(head, X, Y, settings)
    return head, history


def predict_head(head, X: np.ndarray) -> np.ndarray:
    """Sigmoid scores ``(N, K)`` of a head on standardised features ``(N, F)``."""
    import torch

    with torch.inference_mode():
        return torch.sigmoid(head(torch.from_numpy(np.asarray(X, dtype=np.float32)))).numpy()


def clip_fold_indices(starts: Sequence[np.ndarray], *, folds: int, length: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Blocked cross-validation folds over the clips of several videos.

    Each video's clips (``starts[v]``: their first frames, increasing) are cut into ``folds``
    contiguous blocks of time; fold ``k`` validates on block ``k`` of every video and trains on
    the other clips that do not overlap that block (overlapping clips share frames and would
    leak). Videos too short for ``folds`` blocks of two clip lengths use fewer.

    Returns
    -------
    list of (train, val)
        Indices into the concatenated clips of all videos; folds without validation or training
        clips are left out.
    """
    out: list[tuple[list, list]] = [([], []) for _ in range(folds)]
    offset = 0
    for st in starts:
        st = np.asarray(st)
        n = len(st)
        span = (int(st[-1]) + length - int(st[0])) if n else 0
        k_here = max(1, min(folds, span // (2 * length)))
        edges = np.linspace(int(st[0]) if n else 0, int(st[-1]) + length if n else 0, k_here + 1)
        for k in range(folds):
            if k >= k_here or k_here == 1:
                out[k][0].append(offset + np.arange(n))
                continue
            lo, hi = edges[k], edges[k + 1]
            val = (st >= lo) & (st + length <= hi + 1e-9)
            train = (st + length <= lo + 1e-9) | (st >= hi - 1e-9)
            out[k][0].append(offset + np.flatnonzero(train))
            out[k][1].append(offset + np.flatnonzero(val))
        offset += n
    folds_out = []
    for tr, va in out:
        tr = np.concatenate(tr) if tr else np.zeros(0, np.int64)
        va = np.concatenate(va) if va else np.zeros(0, np.int64)
        if len(va) and len(tr):
            folds_out.append((tr, va))
    return folds_out
