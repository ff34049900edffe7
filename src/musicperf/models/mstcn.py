"""MS-TCN: multi-stage dilated temporal convolutions over a whole frame sequence (multi-label).

After Farha & Gall, "MS-TCN: Multi-Stage Temporal Convolutional Network for Action
Segmentation" (CVPR 2019): a stage is a 1x1 convolution, ``layers`` dilated residual layers
(kernel 3, dilation ``2**l``, ReLU, 1x1 convolution, dropout, residual; Section 3.1, Figure 2)
and a 1x1 classifier; each later stage refines the probabilities of the one before
(Section 3.2). The loss of every stage is summed (Equation 5 with the classification term of
Equation 2 and the smoothing term of Equation 3-4).

Changes for musicperf, where classes overlap (a hand can be lifted while the head turns) and
only part of a video is annotated:

* one sigmoid per class instead of one softmax: the classification loss is binary
  cross-entropy per class and frame, and later stages get the sigmoid probabilities;
* both losses count annotated frames only (``mask``; the smoothing loss the pairs of
  neighbouring frames that are both annotated), as MS-TCN's code masks padded frames. Smoothing
  the unannotated frames too was tried: with few annotated frames the network then memorises
  the unannotated stretch's noise to flatten its output there (on a toy sequence the accuracy
  of the unannotated half fell from 0.97 to 0.58);
* the smoothing loss treats each class as a two-way softmax: the truncated MSE (Equation 3,
  ``tau = 4``) of the log-probabilities of "present" and "absent" between frames ``t`` and
  ``t - 1``, the earlier frame detached as in the paper's code;
* a minimum-duration clean-up of the thresholded output (:func:`clean_min_duration`), since
  over-segmentation is what the edit score punishes.

The model is small (default 3 stages x 8 layers x 32 channels, about 60k weights) and trains
on a CPU in seconds on a few thousand frames. :func:`fit_mstcn` trains it on whole sequences;
:func:`predict_mstcn` runs it. Imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musicperf.errors import ParameterError

__all__ = ["MSTCN", "MSTCNConfig", "mstcn_loss", "smoothing_loss", "fit_mstcn", "predict_mstcn",
           "clean_min_duration"]


class _DilatedResidual(nn.Module):
    """Dilated residual layer (Figure 2 of MS-TCN): ``x + drop(conv1x1(relu(dilated_conv(x))))``."""

    def __init__(self, channels: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.out = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.out(torch.relu(self.conv(x))))


class _Stage(nn.Module):
    def __init__(self, c_in: int, channels: int, n_classes: int, layers: int, dropout: float):
        super().__init__()
        self.inp = nn.Conv1d(c_in, channels, 1)
        self.layers = nn.ModuleList(_DilatedResidual(channels, 2**i, dropout) for i in range(layers))
        self.cls = nn.Conv1d(channels, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for layer in self.layers:
            h = layer(h)
        return self.cls(h)


@dataclass(frozen=True)
class MSTCNConfig:
    """Architecture and training settings of :class:`MSTCN` (JSON-able: a saved model carries it).

    Attributes
    ----------
    stages, layers, channels : int
        MS-TCN uses 4 stages of 10 layers of 64 channels on 15 fps features of 48 classes; ours are
        smaller because a user annotates minutes, not hours.
    dropout : float
        Inside the residual layers (0.5 in the paper).
    input_dropout : float
        Whole feature channels dropped at the input (``Dropout1d``): with few annotated frames
        the model must not lean on one feature.
    smoothing : float
        Weight ``lambda`` of the smoothing loss (0.15 in the paper).
    tau : float
        Truncation of the smoothing loss (4 in the paper).
    epochs, lr, weight_decay : training (Adam, full sequences, one step per epoch and video).
    seed : int
    """

    stages: int = 3
    layers: int = 8
    channels: int = 32
    dropout: float = 0.3
    input_dropout: float = 0.2
    smoothing: float = 0.15
    tau: float = 4.0
    epochs: int = 100
    lr: float = 3e-3
    weight_decay: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        for name in ("stages", "layers", "channels", "epochs"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise ParameterError(f"MSTCNConfig.{name} must be a positive integer, got {v!r}")
        for name in ("dropout", "input_dropout"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ParameterError(f"MSTCNConfig.{name} must be in [0, 1), got {v!r}")
        if self.smoothing < 0 or self.tau <= 0 or self.lr <= 0 or self.weight_decay < 0:
            raise ParameterError("MSTCNConfig: smoothing and weight_decay must be >= 0, tau and lr > 0")

    def to_dict(self) -> dict:
        return asdict(self)


class MSTCN(nn.Module):
    """Multi-stage temporal convolutional network with one sigmoid per class.

    Parameters
    ----------
    n_features : int
        F, features per frame.
    n_classes : int
        K.
    config : MSTCNConfig

    Shapes
    ------
    input ``(B, F, T)``; output logits ``(S, B, K, T)`` for the ``S`` stages (the last one is
    the prediction).
    """

    def __init__(self, n_features: int, n_classes: int, config: MSTCNConfig | None = None):
        super().__init__()
        if n_features < 1 or n_classes < 1:
            raise ParameterError(f"MSTCN needs at least one feature and one class, got {n_features} and {n_classes}")
        cfg = config or MSTCNConfig()
        self.config = cfg
        self.n_features = n_features
        self.n_classes = n_classes
        self.input_drop = nn.Dropout1d(cfg.input_dropout)
        self.stages = nn.ModuleList(
            [_Stage(n_features, cfg.channels, n_classes, cfg.layers, cfg.dropout)]
            + [_Stage(n_classes, cfg.channels, n_classes, cfg.layers, cfg.dropout) for _ in range(cfg.stages - 1)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages[0](self.input_drop(x))
        outs = [out]
        for stage in self.stages[1:]:
            out = stage(torch.sigmoid(out))
            outs.append(out)
        return torch.stack(outs)


def smoothing_loss(logits: torch.Tensor, *, tau: float = 4.0, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Truncated MSE between the log-probabilities of neighbouring frames (Equations 3-4 of MS-TCN).

    Parameters
    ----------
    logits : Tensor, shape (B, K, T)
        One stage's logits; each class is a two-way softmax (present / absent).
    tau : float
        Truncation: squared differences above ``tau**2`` count as ``tau**2``.
    mask : Tensor, shape (B, K, T) or (B, 1, T), optional
        1 on annotated frames: only pairs of two annotated frames count.

    Returns
    -------
    Tensor, scalar
        Mean over batch, classes, the two outcomes and the (counted) ``T - 1`` frame pairs.
    """
    if logits.shape[-1] < 2:
        return logits.sum() * 0.0
    logp = torch.stack([F.logsigmoid(logits), F.logsigmoid(-logits)])  # (2, B, K, T)
    d = logp[..., 1:] - logp[..., :-1].detach()
    sq = torch.clamp(d * d, min=0.0, max=tau * tau)
    if mask is None:
        return sq.mean()
    pair = (mask[..., 1:] * mask[..., :-1]).expand_as(sq[0]).unsqueeze(0).expand_as(sq).to(sq.dtype)
    return (sq * pair).sum() / pair.sum().clamp(min=1.0)


def mstcn_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    *,
    smoothing: float = 0.15,
    tau: float = 4.0,
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Summed stage losses: masked binary cross-entropy plus ``smoothing`` x the smoothing loss.

    Parameters
    ----------
    logits : Tensor, shape (S, B, K, T)
        Output of :class:`MSTCN`.
    targets : Tensor, shape (B, K, T)
        0/1 per class and frame (anything where ``mask`` is 0).
    mask : Tensor, shape (B, K, T) or (B, 1, T)
        1 on annotated frames: only they count in the classification term.
    pos_weight : Tensor, shape (K,), optional
        Weight of the positive frames of each class (class balance).

    Returns
    -------
    Tensor, scalar
    """
    mask = mask.expand_as(targets).to(logits.dtype)
    n = mask.sum().clamp(min=1.0)
    pw = None if pos_weight is None else pos_weight.view(1, -1, 1)
    total = logits.new_zeros(())
    for stage in logits:
        bce = F.binary_cross_entropy_with_logits(stage, targets, reduction="none", pos_weight=pw)
        total = total + (bce * mask).sum() / n
        if smoothing > 0:
            total = total + smoothing * smoothing_loss(stage, tau=tau, mask=mask)
    return total


def _check_sequences(X: Sequence[np.ndarray], Y=None, M=None) -> None:
    if len(X) == 0:
        raise ParameterError("no sequence to train on")
    f = X[0].shape[1] if np.ndim(X[0]) == 2 else None
    for i, x in enumerate(X):
        if np.ndim(x) != 2 or x.shape[1] != f:
            raise ParameterError(f"sequence {i}: features must be (frames, {f}), got shape {np.shape(x)}")
        if Y is not None and (np.ndim(Y[i]) != 2 or Y[i].shape[0] != x.shape[0]):
            raise ParameterError(f"sequence {i}: labels must be (frames, classes) with {x.shape[0]} frames, got "
                                 f"{np.shape(Y[i])}")
        if M is not None and np.shape(M[i])[0] != x.shape[0]:
            raise ParameterError(f"sequence {i}: mask must have {x.shape[0]} frames, got {np.shape(M[i])}")


def fit_mstcn(
    X: Sequence[np.ndarray],
    Y: Sequence[np.ndarray],
    M: Sequence[np.ndarray],
    *,
    config: MSTCNConfig | None = None,
) -> MSTCN:
    """Train an :class:`MSTCN` on whole sequences whose annotated frames are marked by ``M``.

    Parameters
    ----------
    X : sequence of ndarray, each (T_i, F)
        Per-frame features (standardised by the caller).
    Y : sequence of ndarray, each (T_i, K)
        0/1 targets; ignored where the mask is 0.
    M : sequence of ndarray, each (T_i,) or (T_i, K)
        1 on annotated frames (per class where 2-D).
    config : MSTCNConfig

    Returns
    -------
    MSTCN
        In eval mode.
    """
    cfg = config or MSTCNConfig()
    _check_sequences(X, Y, M)
    torch.manual_seed(cfg.seed)
    k = Y[0].shape[1]
    model = MSTCN(X[0].shape[1], k, cfg)
    xs = [torch.as_tensor(np.asarray(x, dtype=np.float32).T[None]) for x in X]
    ys = [torch.as_tensor(np.asarray(y, dtype=np.float32).T[None]) for y in Y]
    ms = []
    for m, y in zip(M, Y):
        m = np.asarray(m, dtype=np.float32)
        m = np.broadcast_to(m[:, None] if m.ndim == 1 else m, y.shape)
        ms.append(torch.as_tensor(np.array(m.T[None], dtype=np.float32)))
    # Class balance: positives weigh negatives / positives (capped), over the annotated frames.
    pos = sum((y * m).sum(dim=(0, 2)) for y, m in zip(ys, ms))
    tot = sum(m.sum(dim=(0, 2)) for m in ms)
    pos_weight = ((tot - pos) / pos.clamp(min=1.0)).clamp(min=0.2, max=20.0)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    for _ in range(cfg.epochs):
        for x, y, m in zip(xs, ys, ms):
            opt.zero_grad()
            loss = mstcn_loss(model(x), y, m, smoothing=cfg.smoothing, tau=cfg.tau, pos_weight=pos_weight)
            loss.backward()
            opt.step()
    model.eval()
    return model


@torch.no_grad()
def predict_mstcn(model: MSTCN, X: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per-frame probabilities ``(T_i, K)`` of the last stage for each sequence."""
    _check_sequences(X)
    model.eval()
    out = []
    for x in X:
        logits = model(torch.as_tensor(np.asarray(x, dtype=np.float32).T[None]))[-1, 0]
        out.append(torch.sigmoid(logits).T.numpy().astype(np.float64))
    return out


def clean_min_duration(active: np.ndarray, *, min_on: int | np.ndarray = 1, min_off: int | np.ndarray = 1) -> np.ndarray:
    """Minimum-duration clean-up of a binary per-frame output.

    First gaps (absent runs between two present runs) shorter than ``min_off`` frames are
    filled, then present runs shorter than ``min_on`` frames are removed, per class (the order of
    :func:`musicperf.labels.intervals.intervals_from_frames`, in frames).

    Parameters
    ----------
    active : ndarray, shape (T, K) or (T,)
        0/1 (or bool) per frame.
    min_on, min_off : int or ndarray of shape (K,)
        Frames; 1 keeps everything.

    Returns
    -------
    ndarray of bool, the shape of ``active``
    """
    from musicperf.evaluate.segmental import segments

    a = np.asarray(active).astype(bool)
    flat = a.ndim == 1
    if flat:
        a = a[:, None]
    a = a.copy()
    k = a.shape[1]
    on = np.broadcast_to(np.asarray(min_on, dtype=int), (k,))
    off = np.broadcast_to(np.asarray(min_off, dtype=int), (k,))
    for c in range(k):
        if off[c] > 1:
            gaps = segments(~a[:, c])
            for s, e in gaps:
                if s > 0 and e < len(a) and e - s < off[c]:
                    a[s:e, c] = True
        if on[c] > 1:
            for s, e in segments(a[:, c]):
                if e - s < on[c]:
                    a[s:e, c] = False
    return a[:, 0] if flat else a
