"""3D ResNets: Hara et al. (2018) depths 10/18/34/50 and torchvision's ``r3d_18`` layout.

Written in plain torch (torchvision is not a dependency). One :class:`ResNet3D` class covers
both families; they differ only in the stem:

* Hara et al. 2018 (kenshohara/3D-ResNets-PyTorch): ``conv1`` kernel ``(t, 7, 7)`` (``t = 7`` by
  default, ``conv1_t_size``), stride ``(conv1_t_stride, 2, 2)``, padding ``(t // 2, 3, 3)``, then a
  max-pool of kernel 3, stride 2, padding 1 (unless ``no_max_pool``).
* torchvision ``r3d_18``: ``conv1`` kernel ``(3, 7, 7)``, stride ``(1, 2, 2)``, padding ``(1, 3, 3)``
  and no max-pool.

Parameter names follow the Hara repository (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layer2.0.downsample.0``, ``fc``) so its checkpoints load without renaming; torchvision names are
mapped in :mod:`musicperf.models.checkpoints`.

For the papers' transfer learning the network is split into ``trunk`` (``conv1`` .. ``layer3``,
the paper's conv1-conv4) and the rest (``layer4`` = conv5, pooling, ``fc``), see
:meth:`ResNet3D.forward_conv4` and :meth:`ResNet3D.forward_from_conv4`.

This module imports torch; it is only imported by :mod:`musicperf.models`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from musicperf.errors import ParameterError

Shortcut = Literal["A", "B"]


class BasicBlock(nn.Module):
    """Two 3x3x3 convolutions with a residual connection (ResNet-10/18/34).

    Parameters
    ----------
    in_planes, planes : int
        Input and output channels.
    stride : int
        Stride of the first convolution (spatio-temporal down-sampling when 2).
    downsample : nn.Module or None
        Projection of the identity when its shape changes (shortcut B) or a
        :class:`ZeroPadShortcut` (shortcut A).
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv3d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv3d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1x1 -> 3x3x3 (strided) -> 1x1x1 convolutions, 4x channel expansion (ResNet-50)."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv3d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ZeroPadShortcut(nn.Module):
    """Parameter-free shortcut A of Hara et al.: sub-sample, then zero-pad the channels.

    Follows the reference definition exactly: ``F.avg_pool3d(x, kernel_size=1, stride=stride)``
    (a kernel of 1 keeps every ``stride``-th voxel) and concatenation of zeros up to ``planes``
    channels. Unlike the reference (which concatenates ``out.data``) the gradient flows through
    the kept channels; the forward values are identical.
    """

    def __init__(self, planes: int, stride: int):
        super().__init__()
        self.planes = planes
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.avg_pool3d(x, kernel_size=1, stride=self.stride)
        pad = self.planes - out.shape[1]
        if pad > 0:
            zeros = out.new_zeros((out.shape[0], pad) + tuple(out.shape[2:]))
            out = torch.cat([out, zeros], dim=1)
        return out


@dataclass(frozen=True)
class ResNetConfig:
    """Everything needed to rebuild a :class:`ResNet3D`; stored in model JSON files.

    Attributes
    ----------
    depth : int
        10, 18, 34 or 50.
    shortcut : {"A", "B"}
        A: zero-padded identity (no parameters); B: 1x1x1 convolution + batch norm.
    n_classes : int
        Outputs of ``fc``; 0 means no ``fc`` (pooled features are the output).
    widths : tuple of 4 ints
        Channels of layer1..layer4 before block expansion; ``(64, 128, 256, 512)`` in the papers.
        Smaller widths give tiny debug models.
    stem : {"hara", "torchvision"}
        The ``conv1`` / max-pool layout, see the module docstring.
    conv1_t_size, conv1_t_stride : int
        Temporal kernel size and stride of ``conv1`` (Hara stem only).
    no_max_pool : bool
        Skip the max-pool after ``conv1`` (Hara stem only).
    """

    depth: int = 34
    shortcut: Shortcut = "B"
    n_classes: int = 400
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    stem: Literal["hara", "torchvision"] = "hara"
    conv1_t_size: int = 7
    conv1_t_stride: int = 1
    no_max_pool: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d


#: blocks per stage and block type of each depth (Hara et al. 2018, Table 1).
DEPTHS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    10: (BasicBlock, (1, 1, 1, 1)),
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


class ResNet3D(nn.Module):
    """A 3D ResNet for clips ``(B, 3, T, H, W)`` (the papers use ``T=16, H=W=112``).

    Build it with :func:`build_backbone`; see :class:`ResNetConfig` for the options.

    Attributes
    ----------
    config : ResNetConfig
    feature_dim : int
        Channels of the pooled features (512 for ResNet-10/18/34, 2048 for ResNet-50).
    conv4_dim : int
        Channels of the ``layer3`` (conv4) activations.
    """

    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.trainable = "all"
        if config.depth not in DEPTHS:
            raise ParameterError(f"ResNet depth {config.depth} is not supported; choose one of {sorted(DEPTHS)}")
        if config.shortcut not in ("A", "B"):
            raise ParameterError(f"shortcut type {config.shortcut!r} is not 'A' or 'B'")
        if len(config.widths) != 4 or min(config.widths) < 1:
            raise ParameterError(f"widths must be 4 positive channel counts, got {config.widths!r}")
        block, layers = DEPTHS[config.depth]
        self.config = config
        w = config.widths
        self.in_planes = w[0]
        if config.stem == "hara":
            t = config.conv1_t_size
            self.conv1 = nn.Conv3d(3, w[0], (t, 7, 7), stride=(config.conv1_t_stride, 2, 2), padding=(t // 2, 3, 3), bias=False)
            self.maxpool = nn.Identity() if config.no_max_pool else nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        elif config.stem == "torchvision":
            self.conv1 = nn.Conv3d(3, w[0], (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False)
            self.maxpool = nn.Identity()
        else:
            raise ParameterError(f"stem {config.stem!r} is not 'hara' or 'torchvision'")
        self.bn1 = nn.BatchNorm3d(w[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, w[0], layers[0], 1)
        self.layer2 = self._make_layer(block, w[1], layers[1], 2)
        self.layer3 = self._make_layer(block, w[2], layers[2], 2)
        self.layer4 = self._make_layer(block, w[3], layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.feature_dim = w[3] * block.expansion
        self.conv4_dim = w[2] * block.expansion
        self.fc: nn.Module = nn.Linear(self.feature_dim, config.n_classes) if config.n_classes > 0 else nn.Identity()

        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        out_planes = planes * block.expansion
        if stride != 1 or self.in_planes != out_planes:
            if self.config.shortcut == "A":
                downsample = ZeroPadShortcut(out_planes, stride)
            else:
                downsample = nn.Sequential(
                    nn.Conv3d(self.in_planes, out_planes, 1, stride=stride, bias=False),
                    nn.BatchNorm3d(out_planes),
                )
        mods = [block(self.in_planes, planes, stride, downsample)]
        self.in_planes = out_planes
        mods += [block(self.in_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    # -- the papers' split: conv1-conv4 (frozen) | conv5 + pooling + fc (fine-tuned) -------------
    def forward_conv4(self, clips: torch.Tensor) -> torch.Tensor:
        """Activations of ``layer3`` (the papers' conv4).

        Parameters
        ----------
        clips : Tensor, shape (B, 3, T, H, W)
            Normalised clips.

        Returns
        -------
        Tensor, shape (B, conv4_dim, T', H', W')
            ``(B, 256, 2, 7, 7)`` for ResNet-34 on 16x112x112 clips.
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(clips))))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward_features_from_conv4(self, h: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(B, feature_dim)`` from ``layer3`` activations ``(B, C, T', H', W')``."""
        return torch.flatten(self.avgpool(self.layer4(h)), 1)

    def forward_from_conv4(self, h: torch.Tensor) -> torch.Tensor:
        """``fc`` output ``(B, n_classes)`` (or pooled features when there is no ``fc``) from conv4."""
        return self.fc(self.forward_features_from_conv4(h))

    def forward_features(self, clips: torch.Tensor) -> torch.Tensor:
        """Pooled features before ``fc``: ``(B, 3, T, H, W)`` -> ``(B, feature_dim)``."""
        return self.forward_features_from_conv4(self.forward_conv4(clips))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)`` (pooled features ``(B, feature_dim)`` without ``fc``)."""
        return self.fc(self.forward_features(clips))

    def train(self, mode: bool = True) -> "ResNet3D":
        """Set training mode, keeping frozen parts (see :func:`set_trainable`) in eval mode so
        their batch-norm running statistics stay those of the checkpoint."""
        super().train(mode)
        if mode and self.trainable == "none":
            super().train(False)
        elif mode and self.trainable == "conv5":
            for m in self.trunk_modules():
                m.train(False)
        return self

    def trunk_modules(self) -> list[nn.Module]:
        """The modules up to and including conv4 (``conv1``, ``bn1``, ``layer1``..``layer3``)."""
        return [self.conv1, self.bn1, self.layer1, self.layer2, self.layer3]


BACKBONES = ("resnet10", "resnet18", "resnet34", "resnet50", "r3d_18")


def build_backbone(
    name: str = "resnet34",
    *,
    shortcut: Shortcut = "B",
    n_classes: int = 400,
    widths: tuple[int, int, int, int] | None = None,
    width_factor: float = 1.0,
    conv1_t_size: int = 7,
    conv1_t_stride: int = 1,
    no_max_pool: bool = False,
) -> ResNet3D:
    """Build a randomly initialised 3D ResNet.

    Parameters
    ----------
    name : {"resnet10", "resnet18", "resnet34", "resnet50", "r3d_18"}
        Hara et al. 2018 depths, or the torchvision ``r3d_18`` layout (18 layers, shortcut B,
        ``(3, 7, 7)`` stem, no max-pool).
    shortcut : {"A", "B"}
        Shortcut type (ignored for ``r3d_18``, which is always B).
    n_classes : int
        Outputs of ``fc`` (400 for Kinetics-400); 0 for no ``fc``.
    widths : tuple of 4 ints, optional
        Stage widths; default ``(64, 128, 256, 512)`` scaled by ``width_factor``.
    width_factor : float
        Scale of the default widths (e.g. 0.125 for a tiny test model).
    conv1_t_size, conv1_t_stride, no_max_pool
        Hara stem options, see :class:`ResNetConfig`.

    Returns
    -------
    ResNet3D
        In training mode, like any freshly built torch module.

    Examples
    --------
    >>> net = build_backbone("resnet10", width_factor=0.125, n_classes=5)
    >>> net(torch.zeros(1, 3, 16, 32, 32)).shape
    torch.Size([1, 5])
    """
    if widths is None:
        if width_factor <= 0:
            raise ParameterError(f"width_factor must be positive, got {width_factor}")
        widths = tuple(max(1, int(round(c * width_factor))) for c in (64, 128, 256, 512))
    widths = tuple(int(c) for c in widths)
    if name == "r3d_18":
        cfg = ResNetConfig(depth=18, shortcut="B", n_classes=n_classes, widths=widths, stem="torchvision",
                           conv1_t_size=3, conv1_t_stride=1, no_max_pool=True)
    elif name.startswith("resnet") and name[6:].isdigit():
        cfg = ResNetConfig(depth=int(name[6:]), shortcut=shortcut, n_classes=n_classes, widths=widths,
                           stem="hara", conv1_t_size=conv1_t_size, conv1_t_stride=conv1_t_stride,
                           no_max_pool=no_max_pool)
    else:
        raise ParameterError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return ResNet3D(cfg)


def backbone_from_config(config: dict) -> ResNet3D:
    """Rebuild a :class:`ResNet3D` from :meth:`ResNetConfig.to_dict` output (model JSON files)."""
    try:
        cfg = ResNetConfig(
            depth=int(config["depth"]), shortcut=config["shortcut"], n_classes=int(config["n_classes"]),
            widths=tuple(int(c) for c in config["widths"]), stem=config["stem"],
            conv1_t_size=int(config["conv1_t_size"]), conv1_t_stride=int(config["conv1_t_stride"]),
            no_max_pool=bool(config["no_max_pool"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ParameterError(f"backbone configuration {config!r} is incomplete or malformed: {exc}") from exc
    return ResNet3D(cfg)


def set_trainable(model: nn.Module, mode: Literal["conv5", "none", "all"]) -> None:
    """Choose which backbone parameters are trained.

    Parameters
    ----------
    model : ResNet3D or a module with a ``backbone`` attribute (e.g. ``GestureNet``)
    mode : {"conv5", "none", "all"}
        ``"conv5"``: the papers' setting, conv1-conv4 (``conv1``, ``bn1``, ``layer1``..``layer3``)
        frozen, ``layer4`` (conv5), ``fc`` and any head trained. ``"none"``: the whole backbone
        frozen (only a head trains). ``"all"``: everything trains.

    Notes
    -----
    Frozen batch-norm layers also keep their running statistics: :meth:`ResNet3D.train` keeps
    the frozen modules in eval mode.
    """
    backbone = getattr(model, "backbone", model)
    if not isinstance(backbone, ResNet3D):
        raise ParameterError(f"set_trainable needs a ResNet3D or a model with one as .backbone, got {type(model).__name__}")
    if mode not in ("conv5", "none", "all"):
        raise ParameterError(f"trainable mode {mode!r} is not one of 'conv5', 'none', 'all'")
    for p in model.parameters():
        p.requires_grad_(True)
    if mode == "none":
        for p in backbone.parameters():
            p.requires_grad_(False)
    elif mode == "conv5":
        for m in backbone.trunk_modules():
            for p in m.parameters():
                p.requires_grad_(False)
    backbone.trainable = mode
    backbone.train(backbone.training)
