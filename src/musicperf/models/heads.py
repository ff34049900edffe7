"""Classification heads of the two papers.

* :class:`PerClassHead` (``000``, Section 4 and Table 2): one small dense network per gesture class
  with two outputs, "present" and "absent", each through a sigmoid.
* :class:`SingleModelHead` (``001``, Section 5.2): one network for all classes, three hidden
  layers with ReLU and dropout, ``N`` outputs each through its own sigmoid.

Heads return logits; the sigmoid is applied by the loss (MSE on probabilities, BCE with logits)
and by ``GestureNet.predict_proba``.
"""

from __future__ import annotations

import torch
from torch import nn

from musicperf.errors import ParameterError

#: Table 2 of 000: hidden layer sizes and whether ReLUs follow the hidden layers.
PER_CLASS_VARIANTS: dict[str, tuple[tuple[int, ...], bool]] = {
    "100+50": ((100, 50), False),
    "300+150+100+50": ((300, 150, 100, 50), False),
    "200+50": ((200, 50), False),
    "200+50+relu": ((200, 50), True),
}


def _parse_variant(variant: str) -> tuple[tuple[int, ...], bool]:
    key = variant.lower().replace(" ", "").replace("relus", "relu")
    if key not in PER_CLASS_VARIANTS:
        raise ParameterError(f"per-class head variant {variant!r} is not one of {', '.join(PER_CLASS_VARIANTS)} (Table 2 of 000)")
    return PER_CLASS_VARIANTS[key]


class PerClassHead(nn.Module):
    """Dense head of one per-class network of ``000`` (Table 2), two outputs: present, absent.

    Parameters
    ----------
    in_features : int
        Size of the pooled backbone features (512 for ResNet-34).
    variant : {"100+50", "300+150+100+50", "200+50", "200+50+relu"}
        Hidden layer sizes of Table 2. The paper distinguishes "200 + 50" from "200 + 50 + ReLUs"
        (its best, 97.9% training accuracy); we read that as: only the "+relu" variant has ReLU
        activations after its hidden layers, the others are purely linear stacks before the
        output sigmoid.

    Notes
    -----
    ``forward`` maps ``(B, in_features)`` to logits ``(B, 2)``: column 0 "present", column 1
    "absent". Trained with targets ``(y, 1 - y)``.
    """

    def __init__(self, in_features: int, variant: str = "200+50+relu"):
        super().__init__()
        hidden, relu = _parse_variant(variant)
        self.variant = variant
        self.in_features = int(in_features)
        layers: list[nn.Module] = []
        prev = self.in_features
        for h in hidden:
            layers.append(nn.Linear(prev, h))
            if relu:
                layers.append(nn.ReLU(inplace=True))
            prev = h
        layers.append(nn.Linear(prev, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, in_features)`` -> logits ``(B, 2)`` (present, absent)."""
        return self.net(features)

    def config(self) -> dict:
        return {"type": "per_class", "in_features": self.in_features, "variant": self.variant}


class SingleModelHead(nn.Module):
    """Single-model classifier of ``001`` (Section 5.2, Figure 4b).

    Three hidden fully connected layers, each followed by ReLU then dropout, and ``n_classes``
    outputs (one sigmoid each, applied outside).

    Parameters
    ----------
    in_features : int
        Input size: 400 when fed the fine-tuned ``fc`` output as in ``001`` ("the 400 hidden
        features extracted from 3D RESNET"), 512 for pooled ResNet-34 features.
    n_classes : int
        Number of gestures (7 super classes or 18 classes in ``001``).
    hidden : tuple of 3 ints
        Hidden sizes. ``001`` does not give them; the default ``(256, 128, 64)`` halves the width
        at each layer (our choice).
    dropout : float
        Dropout probability after each ReLU; ``001`` gives no value, default 0.5 (our choice).
    """

    def __init__(self, in_features: int, n_classes: int, *, hidden: tuple[int, ...] = (256, 128, 64), dropout: float = 0.5):
        super().__init__()
        if n_classes < 1:
            raise ParameterError(f"n_classes must be at least 1, got {n_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ParameterError(f"dropout must be in [0, 1), got {dropout}")
        self.in_features = int(in_features)
        self.n_classes = int(n_classes)
        self.hidden = tuple(int(h) for h in hidden)
        self.dropout = float(dropout)
        layers: list[nn.Module] = []
        prev = self.in_features
        for h in self.hidden:
            layers += [nn.Linear(prev, h), nn.ReLU(inplace=True), nn.Dropout(self.dropout)]
            prev = h
        layers.append(nn.Linear(prev, self.n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, in_features)`` -> logits ``(B, n_classes)``."""
        return self.net(features)

    def config(self) -> dict:
        return {"type": "single", "in_features": self.in_features, "n_classes": self.n_classes,
                "hidden": list(self.hidden), "dropout": self.dropout}
