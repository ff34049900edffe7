"""Distributed training of the workflow's head: ``musicperf train --distributed`` under torchrun.

Run one process per CPU socket / GPU / node with ``torchrun``; each process (rank) joins one
process group (``gloo`` on CPUs, ``nccl`` on GPUs) and:

1. computes the clip features of its shard of the videos (videos ``rank, rank + world, ...``),
   or reads them from ``--features DIR`` written by ``musicperf extract`` when the stored
   settings match; the feature matrices (``N x F`` floats, small) are then exchanged so every
   rank holds all samples;
2. trains the head with :class:`torch.nn.parallel.DistributedDataParallel`: every step takes the
   same global batch of ``batch_size`` samples (one shared shuffled order), and rank ``r`` runs
   the forward/backward pass on its contiguous slice of it. The effective batch is therefore
   ``batch_size`` whatever the number of processes, and the result matches single-process
   training (:func:`musicperf.tasks.gestures.fit_head`) up to floating-point summation order.

**Why the loss is rescaled.** DDP averages gradients over ranks. The workflow's losses are
means over the batch (MSE, BCE) or, for Dynamic Batch Balance (Equations 1-3 of 001), sums over
classes of means over the positives and negatives of each class *in the batch*. Each rank
therefore computes its share of the *global* batch loss: MSE/BCE as the sum of its elements
divided by the global ``B * K``; DBB with the factors ``F_b^c`` and the positive/negative
counts ``|P_b^c|, |N_b^c|`` of the global batch (all-reduced, Equation 1 of 001) and its rows'
sums. The shares add up exactly to the single-process loss, and the loss is multiplied by the
world size so that DDP's average becomes that sum. Dropout draws different masks per process,
so with ``dropout > 0`` the runs are equal in distribution, not bitwise (the equivalence test
uses ``dropout=0``).

**Extension points.** :func:`train_distributed` runs :func:`musicperf.tasks.gestures.train_model`
with three of its steps passed in a :class:`~musicperf.tasks.gestures.TrainSteps`
(``estimate_roi`` on rank 0 then broadcast, ``collect_samples`` by shard, ``fit_head`` by
:func:`fit_head_distributed`), so the model directory, thresholds and metadata are exactly what
``train`` writes and nothing of the gestures module is replaced. Rank 0 writes the model; the
other ranks write to a temporary folder that is removed.

Imports numpy and the standard library at module level; torch inside the functions.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musicperf.errors import ParameterError

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- process group
def dist_env() -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` from the variables torchrun sets, or None outside it."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    try:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ParameterError("RANK / WORLD_SIZE / LOCAL_RANK are not integers: start with torchrun") from None


def init_process_group(backend: str = "auto") -> tuple[int, int]:
    """Join the process group described by torchrun's environment; returns ``(rank, world)``.

    Parameters
    ----------
    backend : {"auto", "gloo", "nccl"}
        ``auto``: ``nccl`` when CUDA is available, else ``gloo``.
    """
    import torch
    import torch.distributed as dist

    env = dist_env()
    if env is None:
        raise ParameterError("--distributed needs the environment of torchrun (RANK, WORLD_SIZE, MASTER_ADDR); "
                             "start it as: torchrun --nproc-per-node N -m musicperf train --distributed ...")
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ParameterError(f"backend must be 'gloo', 'nccl' or 'auto', got {backend!r}")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if backend == "nccl":
        torch.cuda.set_device(env[2])
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def shard(n: int, rank: int, world: int) -> np.ndarray:
    """Indices ``rank, rank + world, ...`` below ``n``: the items of one rank (round robin, so
    ranks get about the same number of videos when they come sorted by name)."""
    if not 0 <= rank < world:
        raise ParameterError(f"rank {rank} is outside a world of {world}")
    return np.arange(rank, n, world)


def batch_slice(batch: np.ndarray, rank: int, world: int) -> np.ndarray:
    """Rank ``rank``'s contiguous part of a global batch (``np.array_split`` sizes)."""
    return np.array_split(np.asarray(batch), world)[rank]


# --------------------------------------------------------------------------- losses
def partial_loss(name: str, logits, y, *, global_size: int, global_pos=None, pos_threshold: float = 0.5):
    """This rank's share of the global batch loss (shares over ranks sum to the full loss).

    Parameters
    ----------
    name : {"dbb", "mse", "bce"}
        The workflow's loss (:func:`musicperf.train.head.loss_function`).
    logits : Tensor, shape (b, K)
        This rank's rows of the global batch.
    y : Tensor, shape (b, K)
        Their targets in [0, 1].
    global_size : int
        ``B``, rows of the global batch.
    global_pos : Tensor, shape (K,), optional
        Positives per class in the global batch (``|P_b^c|``; needed for ``dbb``).

    Returns
    -------
    Tensor
        Scalar. For ``mse``/``bce``: ``sum(e) / (B K)``. For ``dbb`` (Equations 1-3 of 001):
        ``sum_c F_b^c (sum_{i in P} e_ic / |P_b^c| + sum_{i in N} e_ic / |N_b^c|)`` over this
        rank's rows, with ``F_b^c``, ``|P_b^c|``, ``|N_b^c| = B - |P_b^c|`` of the global batch.
    """
    import torch

    from musicperf.train.losses import elementwise_loss

    k = y.shape[1]
    if name in ("mse", "bce"):
        return elementwise_loss(logits, y, name).sum() / float(global_size * k)
    if name != "dbb":
        raise ParameterError(f"loss must be 'dbb', 'mse' or 'bce', got {name!r}")
    e = elementwise_loss(logits, y, "mse")
    pos = (y >= pos_threshold).to(e.dtype)
    n_pos = global_pos.to(e.dtype)
    n_neg = float(global_size) - n_pos
    factor = torch.where(n_pos >= n_neg, torch.ones_like(n_pos), float(global_size) / n_pos.clamp(min=1))  # Eq. 1
    factor = torch.where(n_pos == 0, torch.zeros_like(n_pos), factor)
    class_loss = (e * pos).sum(0) / n_pos.clamp(min=1) + (e * (1 - pos)).sum(0) / n_neg.clamp(min=1)  # Eq. 2
    class_loss = torch.where(n_pos > 0, class_loss, torch.zeros_like(class_loss))
    return (factor * class_loss).sum()  # Eq. 3


# --------------------------------------------------------------------------- training
def fit_head_distributed(X: np.ndarray, Y: np.ndarray, config, *, n_classes: int, progress: bool = False,
                         checkpoint=None):
    """Train the workflow's head with DDP; same signature and result as
    :func:`musicperf.tasks.gestures.fit_head` (every rank passes the same ``X`` and ``Y``).

    Parameters
    ----------
    X : np.ndarray, shape (N, F), float32
        Standardised features, identical on every rank.
    Y : np.ndarray, shape (N, K), float32
        Targets in [0, 1].
    config : GestureConfig
    n_classes : int

    Returns
    -------
    head : SingleModelHead
        In eval mode; identical on every rank (DDP keeps replicas in step).
    history : list of float
        Mean training loss per epoch over all samples (all-reduced).
    """
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from musicperf.train.loop import one_torch_thread, run_epochs

    if checkpoint is not None:
        raise ParameterError("distributed training does not checkpoint the head (run it with TrainSteps(resume=False))")
    if not dist.is_initialized():
        raise ParameterError("fit_head_distributed needs an initialised process group (see init_process_group)")
    if len(X) == 0:
        raise ParameterError("no training clips: the annotated part is shorter than one clip plus the validation block")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    # The same initial weights and the same sample order as the one-process fit_head.
    torch.manual_seed(config.seed)
    with one_torch_thread():
        head = _build_head(X.shape[1], n_classes, config).to(device)
        if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in head.modules()):
            # Per-rank batch statistics would differ from the one-process run's.
            head = torch.nn.SyncBatchNorm.convert_sync_batchnorm(head)
        model = DistributedDataParallel(head, device_ids=[device.index] if device.type == "cuda" else None)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        yt = torch.from_numpy(np.ascontiguousarray(Y, dtype=np.float32))
        gen = torch.Generator().manual_seed(config.seed)

        def epoch(_):
            order = torch.randperm(len(xt), generator=gen)
            total = torch.zeros(1, dtype=torch.float64, device=device)
            for b in range(0, len(order), config.batch_size):
                idx = order[b : b + config.batch_size]
                mine = torch.from_numpy(batch_slice(idx.numpy(), rank, world))
                x, y = xt[mine].to(device), yt[mine].to(device)
                global_pos = None
                if config.loss == "dbb":
                    global_pos = (yt[idx] >= 0.5).sum(0).to(device)  # every rank holds the whole batch's targets
                opt.zero_grad()
                share = partial_loss(config.loss, model(x), y, global_size=len(idx), global_pos=global_pos)
                (share * world).backward()  # DDP averages: world * mean of shares = sum of shares
                opt.step()
                total += share.detach().double() * len(idx)
            dist.all_reduce(total)
            return float(total) / len(xt)

        model.train()
        # The one epoch loop of the gesture heads; no checkpoint: the ranks would have to agree
        # on resuming (train_distributed runs with TrainSteps(resume=False)).
        history = run_epochs(model, opt, epoch, epochs=config.epochs, generator=gen)
        head.eval()
        return head.cpu(), history


def _build_head(n_features: int, n_classes: int, config):
    """The head the one-process workflow builds for ``config`` (the same architecture and, after
    the same ``torch.manual_seed``, the same initial weights)."""
    try:
        from musicperf.tasks.framefeatures import build_head
    except ImportError:  # a workflow without frame-feature heads: the single-model head
        from musicperf.models import SingleModelHead

        return SingleModelHead(n_features, n_classes, hidden=config.hidden, dropout=config.dropout)
    return build_head(n_features, n_classes, config)


# --------------------------------------------------------------------------- the train command
def train_distributed(
    data: Sequence[str | Path] | str | Path,
    model_dir: str | Path,
    *,
    until: float | None = None,
    config=None,
    taxonomy=None,
    overwrite: bool = False,
    progress: bool = False,
    features_dir: str | Path | None = None,
    backend: str = "auto",
) -> dict:
    """``musicperf train --distributed``: :func:`~musicperf.tasks.gestures.train_model` on all ranks.

    Parameters
    ----------
    data, model_dir, until, config, taxonomy, overwrite, progress
        As for :func:`musicperf.tasks.gestures.train_model`.
    features_dir : str or Path, optional
        Folder of ``<stem>.features.npz`` written by ``musicperf extract`` with the same
        settings (``--config``, ``--until``, stride = ``train_stride``); a file whose stored
        settings differ is not used (the features are computed instead).
    backend : {"auto", "gloo", "nccl"}

    Returns
    -------
    dict
        The model's metadata, on every rank (only rank 0 writes ``model_dir``).
    """
    import torch.distributed as dist

    from musicperf.tasks import gestures

    created = not dist.is_initialized()
    rank, world = init_process_group(backend)
    items = gestures.discover(data, need_annotations=True)
    cache: dict[str, object] = {}
    default = gestures.TrainSteps()

    def estimate_roi(videos, **kw):
        box = [default.estimate_roi(videos, **kw) if rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return tuple(box[0])

    def collect_samples(item, tax, extractor, *, fps, until, stride, progress=False):
        if not cache:
            mine = {}
            for i in shard(len(items), rank, world):
                it = items[i]
                mine[str(it.video)] = _samples(it, tax, extractor, fps=fps, until=until, stride=stride,
                                               features_dir=features_dir, progress=progress,
                                               compute=default.collect_samples)
            gathered = [None] * world
            dist.all_gather_object(gathered, mine)
            for part in gathered:
                cache.update(part)
        return cache[str(item.video)]

    out = Path(model_dir)
    scratch = None
    if rank != 0:
        scratch = Path(tempfile.mkdtemp(prefix=f"musicperf-rank{rank}-"))
        out = scratch / "model"
    elif out.exists() and any(out.iterdir()) and not overwrite:
        raise ParameterError(f"model directory '{out}' exists and is not empty; pass --overwrite to replace it")
    try:
        steps = gestures.TrainSteps(estimate_roi=estimate_roi, collect_samples=collect_samples,
                                    fit_head=fit_head_distributed, resume=False)
        meta = gestures.train_model(data, out, until=until, config=config, taxonomy=taxonomy,
                                    overwrite=overwrite or rank != 0, progress=progress and rank == 0, steps=steps)
        meta["training"]["distributed"] = {"world_size": world, "backend": dist.get_backend(), "rank": rank}
        if rank == 0:
            stored = {k: v for k, v in meta.items()}
            stored["training"] = dict(meta["training"], distributed={"world_size": world, "backend": dist.get_backend()})
            gestures.save_meta(out, stored)
        dist.barrier()
        return meta
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if created and dist.is_initialized():
            dist.destroy_process_group()


def _samples(item, tax, extractor, *, fps, until, stride, features_dir, progress, compute):
    """One video's training samples: from an ``extract`` features file when it matches, else computed."""
    if features_dir is not None:
        from musicperf.distributed.extract import features_match, features_path, load_features
        from musicperf.errors import DecodeError

        path = features_path(features_dir, item.video)
        cfg = extractor.config
        wanted = {"grid": cfg.grid, "size": list(cfg.size), "roi": list(extractor.roi), "clip_length": cfg.clip_length,
                  "stride": stride, "backbone": cfg.backbone, "backbone_weights": cfg.backbone_weights,
                  "fps": fps, "until": until}
        if path.is_file():
            try:
                arrays, meta = load_features(path)
            except DecodeError as exc:
                log.warning("%s; computing the features instead", exc)
            else:
                if features_match(meta, wanted):
                    return _samples_from_features(item, tax, extractor, arrays, fps=fps)
                log.warning("'%s' was extracted with other settings; computing the features instead", path)
    return compute(item, tax, extractor, fps=fps, until=until, stride=stride, progress=progress)


def _samples_from_features(item, tax, extractor, arrays, *, fps):
    """A :class:`~musicperf.tasks.gestures.VideoSamples` from stored clip features and the
    video's annotations (what :func:`~musicperf.tasks.gestures.collect_samples` computes)."""
    import math

    from musicperf.labels import frame_labels, sample_labels
    from musicperf.tasks import gestures

    cfg = extractor.config
    vfps, duration = gestures.video_fps(item.video)
    aset = gestures.read_annotations(item.annotations)
    aset.check_duration(duration, media=item.video)
    n_frames = int(math.floor(duration * fps + 1e-6))
    labels = frame_labels(aset, tax, fps=fps, n_frames=n_frames, check=False, unknown="warn")
    starts = arrays["starts"].astype(np.int64)
    # Stored features are the workflow's clip features; landmark and audio columns are added the
    # way collect_samples adds them, so every frame-feature configuration trains on its own layout.
    from musicperf.tasks.framefeatures import clip_matrix

    features = clip_matrix(cfg, item.video, starts, arrays["clips"].astype(np.float32), fps=fps)
    return gestures.VideoSamples(
        video=item.video, starts=starts, features=features,
        targets=sample_labels(labels, starts, length=cfg.clip_length, how=cfg.target),
        present=sample_labels(labels, starts, length=cfg.clip_length, how="any"),
        fps=fps, frame_labels=labels, resampled_from=vfps if abs(vfps - fps) > 1e-3 else None,
    )
