"""GestureNet: a 3D ResNet backbone plus a gesture head (the networks of ``000`` and ``001``).

Two designs:

* ``"single"`` (``001``): one network, pooled conv5 features (or, with ``keep_fc=True``, the
  fine-tuned ``fc`` output: "the 400 hidden features extracted from 3D RESNET") into a
  :class:`~musicperf.models.heads.SingleModelHead`; logits ``(B, K)``.
* ``"per_class"`` (``000``): one network per class, each with its own fine-tuned conv5
  (``layer4``) copy and a :class:`~musicperf.models.heads.PerClassHead` with present/absent
  outputs; conv1-conv4 are shared (they are frozen in the paper, so sharing them changes nothing);
  logits ``(B, K, 2)``. ``per_class_conv5=False`` shares one conv5 to save memory.

The model takes clips with values in [0, 1] and applies the backbone's normalisation itself, so a
saved model is self-contained. With ``input_stage="conv4"`` it takes cached ``layer3``
activations instead (see :mod:`musicperf.train.cache`).
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import nn

from musicperf.errors import ParameterError
from musicperf.models.checkpoints import Normalization, get_normalization
from musicperf.models.heads import PerClassHead, SingleModelHead
from musicperf.models.resnet3d import ResNet3D, set_trainable

Design = Literal["single", "per_class"]


class PerClassHeads(nn.Module):
    """``K`` per-class networks of ``000``: optional own conv5 copies and a :class:`PerClassHead` each."""

    def __init__(self, backbone: ResNet3D, n_classes: int, *, variant: str = "200+50+relu", own_conv5: bool = True):
        super().__init__()
        self.n_classes = int(n_classes)
        self.variant = variant
        self.own_conv5 = bool(own_conv5)
        self.heads = nn.ModuleList([PerClassHead(backbone.feature_dim, variant) for _ in range(n_classes)])
        self.conv5 = nn.ModuleList([copy.deepcopy(backbone.layer4) for _ in range(n_classes)]) if own_conv5 else None

    def config(self) -> dict:
        return {"type": "per_class", "n_classes": self.n_classes, "variant": self.variant, "own_conv5": self.own_conv5}


class GestureNet(nn.Module):
    """Backbone + gesture head; ``forward`` maps clips to per-class logits.

    Parameters
    ----------
    backbone : ResNet3D
        E.g. from :func:`~musicperf.models.load_video_backbone` (pretrained) or
        :func:`~musicperf.models.build_backbone`. Its ``fc`` is dropped unless ``keep_fc``.
    n_classes : int
        Number of gesture classes ``K``.
    design : {"single", "per_class"}
        ``001``'s single model or ``000``'s one network per class.
    keep_fc : bool
        Single design only: feed the (fine-tuned) ``fc`` outputs to the head as ``001`` does.
        False feeds the pooled conv5 features, as ``000`` does.
    hidden, dropout
        :class:`SingleModelHead` options.
    variant : str
        :class:`PerClassHead` variant (Table 2 of ``000``).
    per_class_conv5 : bool
        Per-class design: give each class its own conv5 (``000``'s 18 networks).
    normalization : str or Normalization, optional
        Defaults to the backbone's ``normalization`` attribute (set by ``load_video_backbone``),
        else ``"hara2020"``.
    trainable : {"conv5", "none", "all"}
        See :func:`~musicperf.models.set_trainable`; the papers fine-tune conv5.
    input_stage : {"clips", "conv4"}
        What ``forward`` receives: clips ``(B, 3, T, H, W)`` in [0, 1], or cached ``layer3``
        activations ``(B, C, T', H', W')``.
    """

    def __init__(
        self,
        backbone: ResNet3D,
        n_classes: int,
        *,
        design: Design = "single",
        keep_fc: bool = False,
        hidden: tuple[int, ...] = (256, 128, 64),
        dropout: float = 0.5,
        variant: str = "200+50+relu",
        per_class_conv5: bool = True,
        normalization: str | Normalization | dict | None = None,
        trainable: Literal["conv5", "none", "all"] = "conv5",
        input_stage: Literal["clips", "conv4"] = "clips",
    ):
        super().__init__()
        if not isinstance(backbone, ResNet3D):
            raise ParameterError(f"GestureNet needs a ResNet3D backbone, got {type(backbone).__name__}")
        if design not in ("single", "per_class"):
            raise ParameterError(f"design {design!r} is not 'single' or 'per_class'")
        if keep_fc and (design != "single" or not isinstance(backbone.fc, nn.Linear)):
            raise ParameterError("keep_fc needs the single design and a backbone with an fc layer")
        if normalization is None:
            normalization = getattr(backbone, "normalization", None) or "hara2020"
        self.normalization = get_normalization(normalization)
        self.register_buffer("norm_mean", torch.tensor(self.normalization.mean).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("norm_std", torch.tensor(self.normalization.std).view(1, 3, 1, 1, 1), persistent=False)
        if not keep_fc:
            backbone.fc = nn.Identity()
        self.backbone = backbone
        self.design = design
        self.keep_fc = bool(keep_fc)
        self.n_classes = int(n_classes)
        self.input_stage = input_stage
        if design == "single":
            in_features = backbone.fc.out_features if keep_fc else backbone.feature_dim
            self.head: nn.Module = SingleModelHead(in_features, n_classes, hidden=hidden, dropout=dropout)
        else:
            self.head = PerClassHeads(backbone, n_classes, variant=variant, own_conv5=per_class_conv5)
            if per_class_conv5:
                # every class has its own conv5 copy; the shared one would be dead weight
                backbone.layer4 = nn.Identity()
        set_trainable(self, trainable)

    @property
    def input_stage(self) -> str:
        return self._input_stage

    @input_stage.setter
    def input_stage(self, value: str) -> None:
        if value not in ("clips", "conv4"):
            raise ParameterError(f"input_stage {value!r} is not 'clips' or 'conv4'")
        self._input_stage = value

    @property
    def trainable(self) -> str:
        return self.backbone.trainable

    def architecture(self) -> dict:
        """JSON-serialisable description from which :func:`musicperf.models.load_model` rebuilds it."""
        return {
            "backbone": self.backbone.config.to_dict(),
            "design": self.design,
            "keep_fc": self.keep_fc,
            "head": self.head.config(),
            "normalization": self.normalization.to_dict(),
            "trainable": self.trainable,
        }

    def conv4(self, clips: torch.Tensor) -> torch.Tensor:
        """Normalise clips ``(B, 3, T, H, W)`` in [0, 1] and return ``layer3`` activations."""
        x = (clips - self.norm_mean.to(clips.dtype)) / self.norm_std.to(clips.dtype)
        return self.backbone.forward_conv4(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Input of the head(s).

        Returns
        -------
        Tensor
            Single design: ``(B, D)`` (pooled features, or ``fc`` output with ``keep_fc``).
            Per-class design: ``(B, K, D)`` pooled conv5 features of each class's network.
        """
        h = x if self.input_stage == "conv4" else self.conv4(x)
        bb = self.backbone
        if self.design == "single":
            return bb.fc(bb.forward_features_from_conv4(h))
        if self.head.conv5 is None:
            f = bb.forward_features_from_conv4(h)
            return f.unsqueeze(1).expand(-1, self.n_classes, -1)
        return torch.stack([torch.flatten(bb.avgpool(layer(h)), 1) for layer in self.head.conv5], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits: ``(B, K)`` (single design) or ``(B, K, 2)`` present/absent (per-class design)."""
        f = self.forward_features(x)
        if self.design == "single":
            return self.head(f)
        return torch.stack([head(f[:, k]) for k, head in enumerate(self.head.heads)], dim=1)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Per-class presence probabilities ``(B, K)`` in [0, 1] (eval mode is the caller's job)."""
        return scores_from_logits(self(x))


def scores_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Presence probability per class from model logits.

    ``(B, K)`` logits -> ``sigmoid``; ``(B, K, 2)`` present/absent logits of the per-class design
    -> ``sigmoid`` of the "present" output (the paper's "likelihood that the input belongs to the
    class"; the "absent" output only shapes training).
    """
    if logits.ndim == 3:
        return torch.sigmoid(logits[..., 0])
    return torch.sigmoid(logits)
