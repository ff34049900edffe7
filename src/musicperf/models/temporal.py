"""Temporal models over windows of per-frame features (landmark gesture features, optical flow).

A sample is a window of ``L`` frames (16 as the papers' clips, Section 5.1 of ``001``, or
longer) of ``F`` per-frame features, shaped ``(B, L, F)``; a model maps it to logits ``(B, K)``
that :func:`musicperf.models.scores_from_logits` and the training loop
(:func:`musicperf.train.loop.fit`: MSE/BCE, Dynamic Batch Balance) treat like the 3D-CNN's.

* :class:`TemporalConvNet` - 1-D convolutions with growing dilation (receptive field
  ``1 + 2 (k - 1) (1 + 2 + 4)`` frames: 29 with three blocks of kernel 3), then mean and max
  pooling over time;
* :class:`TemporalGRU` - a bidirectional GRU, last states of both directions;
* :class:`FusionTemporalNet` - late fusion: a temporal branch over the first ``n_temporal``
  feature columns and an MLP over the time-mean of the remaining columns (per-window 3D-CNN
  features or audio features broadcast along the window), concatenated before the classifier.
  Inputs stay one tensor so the shared training loop and datasets work unchanged.

:func:`build_temporal_model` builds any of them by name from a JSON-able config, which
:func:`model_config` returns, so a saved model describes itself.

Imports torch (this module is only imported by code that trains or runs models).
"""

from __future__ import annotations

import torch
from torch import nn

from musicperf.errors import ParameterError

__all__ = ["TemporalConvNet", "TemporalGRU", "FusionTemporalNet", "TEMPORAL_MODELS", "build_temporal_model",
           "model_config"]


class _ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.conv = nn.Conv1d(c_in, c_out, kernel, padding=pad, dilation=dilation)
        self.norm = nn.BatchNorm1d(c_out)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.drop(torch.relu(self.norm(self.conv(x))))


class TemporalConvNet(nn.Module):
    """Dilated residual 1-D CNN over a window of per-frame features.

    Parameters
    ----------
    n_features : int
        F, features per frame.
    n_classes : int
        K.
    hidden : int
        Channels of every block.
    blocks : int
        Residual blocks; block ``b`` has dilation ``2**b``.
    kernel : int
        Odd kernel size.
    dropout : float

    Shapes
    ------
    input ``(B, L, F)`` float -> logits ``(B, K)``; :meth:`embed` gives ``(B, 2 * hidden)``.
    """

    kind = "tcn"

    def __init__(self, n_features: int, n_classes: int, *, hidden: int = 64, blocks: int = 3, kernel: int = 3,
                 dropout: float = 0.2):
        super().__init__()
        if kernel % 2 == 0 or kernel < 1:
            raise ParameterError(f"kernel must be an odd positive integer, got {kernel}")
        _check_sizes(n_features, n_classes, hidden)
        self.hparams = dict(n_features=n_features, n_classes=n_classes, hidden=hidden, blocks=blocks, kernel=kernel,
                            dropout=dropout)
        layers, c = [], n_features
        for b in range(blocks):
            layers.append(_ConvBlock(c, hidden, kernel, 2**b, dropout))
            c = hidden
        self.body = nn.Sequential(*layers)
        self.out_dim = 2 * hidden
        self.fc = nn.Linear(self.out_dim, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x.transpose(1, 2))  # (B, hidden, L)
        return torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(x))


class TemporalGRU(nn.Module):
    """Bidirectional GRU over a window of per-frame features.

    Parameters
    ----------
    n_features, n_classes, hidden : int
    layers : int
    dropout : float
        Between GRU layers and before the classifier.

    Shapes
    ------
    input ``(B, L, F)`` -> logits ``(B, K)``; :meth:`embed` gives ``(B, 2 * hidden)``.
    """

    kind = "gru"

    def __init__(self, n_features: int, n_classes: int, *, hidden: int = 64, layers: int = 1, dropout: float = 0.2):
        super().__init__()
        _check_sizes(n_features, n_classes, hidden)
        self.hparams = dict(n_features=n_features, n_classes=n_classes, hidden=hidden, layers=layers, dropout=dropout)
        self.inp = nn.Linear(n_features, hidden)
        self.gru = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                          dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.out_dim = 2 * hidden
        self.fc = nn.Linear(self.out_dim, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(torch.relu(self.inp(x)))  # h: (layers * 2, B, hidden)
        return self.drop(torch.cat([h[-2], h[-1]], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(x))


class FusionTemporalNet(nn.Module):
    """Late fusion of a temporal branch with per-window features (3D-CNN, audio).

    Parameters
    ----------
    n_temporal : int
        The first ``n_temporal`` columns of the input go to the temporal branch.
    n_other : int
        The remaining columns; their mean over the window goes through an MLP.
    n_classes : int
    temporal : {"tcn", "gru"}
    hidden : int
    other_hidden : int
    dropout : float

    Shapes
    ------
    input ``(B, L, n_temporal + n_other)`` -> logits ``(B, K)``.
    """

    kind = "fusion"

    def __init__(self, n_temporal: int, n_other: int, n_classes: int, *, temporal: str = "tcn", hidden: int = 64,
                 other_hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        _check_sizes(n_temporal, n_classes, hidden)
        if n_other < 1:
            raise ParameterError(f"n_other must be >= 1 for fusion, got {n_other}")
        self.hparams = dict(n_temporal=n_temporal, n_other=n_other, n_classes=n_classes, temporal=temporal,
                            hidden=hidden, other_hidden=other_hidden, dropout=dropout)
        if temporal not in ("tcn", "gru"):
            raise ParameterError(f"temporal branch must be 'tcn' or 'gru', got {temporal!r}")
        self.n_temporal = n_temporal
        cls = TemporalConvNet if temporal == "tcn" else TemporalGRU
        self.temporal = cls(n_temporal, n_classes, hidden=hidden, dropout=dropout)
        self.temporal.fc = nn.Identity()  # only its embedding is used
        self.other = nn.Sequential(nn.Linear(n_other, other_hidden), nn.ReLU(), nn.Dropout(dropout))
        self.fc = nn.Linear(self.temporal.out_dim + other_hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.temporal.embed(x[..., : self.n_temporal])
        b = self.other(x[..., self.n_temporal :].mean(dim=1))
        return self.fc(torch.cat([a, b], dim=1))


TEMPORAL_MODELS = {"tcn": TemporalConvNet, "gru": TemporalGRU, "fusion": FusionTemporalNet}


def _check_sizes(n_features: int, n_classes: int, hidden: int) -> None:
    if n_features < 1 or n_classes < 1 or hidden < 1:
        raise ParameterError(f"need n_features, n_classes, hidden >= 1; got {n_features}, {n_classes}, {hidden}")


def build_temporal_model(name: str, **kwargs) -> nn.Module:
    """Build a temporal model by name (``"tcn"``, ``"gru"``, ``"fusion"``) from its hyper-parameters.

    Examples
    --------
    >>> m = build_temporal_model("tcn", n_features=32, n_classes=18)   # doctest: +SKIP
    >>> m(torch.zeros(4, 16, 32)).shape                                 # doctest: +SKIP
    torch.Size([4, 18])
    """
    try:
        cls = TEMPORAL_MODELS[name]
    except KeyError:
        raise ParameterError(f"unknown temporal model {name!r}; choose from {', '.join(TEMPORAL_MODELS)}") from None
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ParameterError(f"bad hyper-parameters for temporal model {name!r}: {exc}") from None


def model_config(model: nn.Module) -> dict:
    """``{"name": ..., **hyper-parameters}``: what :func:`build_temporal_model` needs to rebuild it."""
    return {"name": model.kind, **model.hparams}
