"""2-D image networks in plain torch: ResNet-18/34/50 and Inception-v3, torchvision key layouts.

* :class:`ResNet2D` -- He et al. 2016 (the ResNet-2D of ``004``'s audio branch, also usable as
  the frame CNN of ``003``). Parameter names are torchvision's (``conv1``, ``bn1``,
  ``layer1.0.conv1``, ``layer2.0.downsample.0``, ``fc``), so a torchvision ``resnet18`` /
  ``resnet34`` / ``resnet50`` state dict loads without renaming. ``in_channels=1`` makes the
  spectrogram version (a 3-channel checkpoint's ``conv1`` is summed over its input channels by
  :func:`load_image_backbone` when asked, the usual way of feeding a mono image to ImageNet
  weights).
* :class:`InceptionV3` -- Szegedy et al. 2016, the frame CNN of ``003``. Names follow
  torchvision's ``inception_v3`` (``Conv2d_1a_3x3.conv``, ``Mixed_5b.branch1x1.bn``, ...,
  ``AuxLogits``, ``fc``). The auxiliary classifier exists only to receive checkpoints that carry
  it; it is not used by :meth:`InceptionV3.forward` (``003`` says nothing about it; we train
  with the main output only).

Both take images ``(B, C, H, W)`` already normalised (see :data:`IMAGE_NORMALIZATIONS`) and
expose ``forward_features`` (pooled, ``(B, feature_dim)``) and ``forward`` (``fc`` logits, or the
pooled features when built with ``n_classes=0``). ``width_factor`` scales every channel count
for tiny test models; key names do not change.

This module imports torch; import it lazily (never from a package ``__init__`` or a command
module).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from musicperf.errors import ModelError, ParameterError

#: mean / std of [0, 1] RGB images expected by each family's published weights.
IMAGE_NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # torchvision ImageNet ResNets
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # Inception-v3 (Google's weights; torchvision's transform_input maps ImageNet-normalised
    # input back to exactly this): x * 2 - 1
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


def _scale(c: int, f: float) -> int:
    return max(1, int(round(c * f)))


# ============================================================================ ResNet-2D


class BasicBlock2d(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck2d(nn.Module):
    """1x1 -> 3x3 (strided, torchvision "v1.5") -> 1x1 convolutions, 4x expansion (ResNet-50)."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_RESNET_DEPTHS = {18: (BasicBlock2d, (2, 2, 2, 2)), 34: (BasicBlock2d, (3, 4, 6, 3)), 50: (Bottleneck2d, (3, 4, 6, 3))}


@dataclass(frozen=True)
class ResNet2DConfig:
    """Constructor arguments of :class:`ResNet2D`; stored in model JSON files.

    Attributes
    ----------
    depth : {18, 34, 50}
    in_channels : int
        3 for RGB frames, 1 for (mel) spectrograms.
    n_classes : int
        Outputs of ``fc``; 0 for none (``forward`` returns pooled features).
    widths : tuple of 4 int
        Stage widths before expansion (``(64, 128, 256, 512)`` in He et al.).
    """

    depth: int = 18
    in_channels: int = 3
    n_classes: int = 1000
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return {"type": "resnet2d", **d}


class ResNet2D(nn.Module):
    """A 2-D ResNet for images ``(B, in_channels, H, W)`` (torchvision layout).

    Attributes
    ----------
    config : ResNet2DConfig
    feature_dim : int
        Channels of the pooled features (512 for ResNet-18/34, 2048 for ResNet-50 at full width).

    Examples
    --------
    >>> net = resnet2d("resnet18", in_channels=1, n_classes=0, width_factor=0.125)
    >>> net(torch.zeros(2, 1, 64, 40)).shape
    torch.Size([2, 64])
    """

    def __init__(self, config: ResNet2DConfig):
        super().__init__()
        if config.depth not in _RESNET_DEPTHS:
            raise ParameterError(f"2-D ResNet depth {config.depth} is not supported; choose 18, 34 or 50")
        if len(config.widths) != 4 or min(config.widths) < 1 or config.in_channels < 1:
            raise ParameterError(f"bad ResNet2D configuration {config}")
        self.config = config
        block, layers = _RESNET_DEPTHS[config.depth]
        w = config.widths
        self.in_planes = w[0]
        self.conv1 = nn.Conv2d(config.in_channels, w[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, w[0], layers[0], 1)
        self.layer2 = self._make_layer(block, w[1], layers[1], 2)
        self.layer3 = self._make_layer(block, w[2], layers[2], 2)
        self.layer4 = self._make_layer(block, w[3], layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = w[3] * block.expansion
        self.fc: nn.Module = nn.Linear(self.feature_dim, config.n_classes) if config.n_classes > 0 else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_planes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.in_planes, planes * block.expansion, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        mods = [block(self.in_planes, planes, stride, downsample)]
        self.in_planes = planes * block.expansion
        mods += [block(self.in_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> pooled features ``(B, feature_dim)``.

        The stem halves the size twice and each later stage once more, but the max-pool and
        strided convolutions pad, so any input of at least 1x1 works (a 64-band x 28-frame mel
        patch ends as a 2x1 map before pooling).
        """
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ParameterError(f"ResNet2D expects (B, {self.config.in_channels}, H, W) input, got shape {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)``, or pooled features when built with ``n_classes=0``."""
        return self.fc(self.forward_features(x))


def resnet2d(name: str = "resnet18", *, in_channels: int = 3, n_classes: int = 1000,
             width_factor: float = 1.0, widths: tuple[int, int, int, int] | None = None) -> ResNet2D:
    """Build a randomly initialised 2-D ResNet.

    Parameters
    ----------
    name : {"resnet18", "resnet34", "resnet50"}
    in_channels : int
        3 (RGB) or 1 (spectrogram).
    n_classes : int
        ``fc`` outputs; 0 for none.
    width_factor : float
        Scales ``(64, 128, 256, 512)``; e.g. 0.125 for a tiny test model.
    widths : tuple of 4 int, optional
        Explicit stage widths (overrides ``width_factor``).
    """
    if not (name.startswith("resnet") and name[6:].isdigit()):
        raise ParameterError(f"unknown 2-D ResNet {name!r}; choose resnet18, resnet34 or resnet50")
    if widths is None:
        if width_factor <= 0:
            raise ParameterError(f"width_factor must be positive, got {width_factor}")
        widths = tuple(_scale(c, width_factor) for c in (64, 128, 256, 512))
    return ResNet2D(ResNet2DConfig(depth=int(name[6:]), in_channels=int(in_channels), n_classes=int(n_classes),
                                   widths=tuple(int(c) for c in widths)))


# ============================================================================ Inception-v3


class BasicConv2d(nn.Module):
    """Convolution (no bias) -> batch norm (eps 1e-3, as Inception-v3) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int, s):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, s(64), kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, s(48), kernel_size=1)
        self.branch5x5_2 = BasicConv2d(s(48), s(64), kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, s(64), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(s(64), s(96), kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(s(96), s(96), kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)
        self.out_channels = s(64) + s(64) + s(96) + pool_features

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int, s):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, s(384), kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, s(64), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(s(64), s(96), kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(s(96), s(96), kernel_size=3, stride=2)
        self.out_channels = s(384) + s(96) + cin

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int, s):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, s(192), kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, s(192), kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, s(192), kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, s(192), kernel_size=1)
        self.out_channels = 4 * s(192)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for m in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = m(bd)
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int, s):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, s(192), kernel_size=1)
        self.branch3x3_2 = BasicConv2d(s(192), s(320), kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, s(192), kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(s(192), s(192), kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(s(192), s(192), kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(s(192), s(192), kernel_size=3, stride=2)
        self.out_channels = s(320) + s(192) + cin

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin: int, s):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, s(320), kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, s(384), kernel_size=1)
        self.branch3x3_2a = BasicConv2d(s(384), s(384), kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(s(384), s(384), kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, s(448), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(s(448), s(384), kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(s(384), s(384), kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(s(384), s(384), kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, s(192), kernel_size=1)
        self.out_channels = s(320) + 4 * s(384) + s(192)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([b1, b3, bd, bp], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier (present in torchvision checkpoints; unused in :meth:`InceptionV3.forward`)."""

    def __init__(self, cin: int, n_classes: int, s):
        super().__init__()
        self.conv0 = BasicConv2d(cin, s(128), kernel_size=1)
        self.conv1 = BasicConv2d(s(128), s(768), kernel_size=5)
        self.fc = nn.Linear(s(768), n_classes)

    def forward(self, x):
        x = F.avg_pool2d(x, kernel_size=5, stride=3)
        x = self.conv1(self.conv0(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@dataclass(frozen=True)
class InceptionV3Config:
    """Constructor arguments of :class:`InceptionV3`.

    Attributes
    ----------
    n_classes : int
        ``fc`` outputs (1000 for ImageNet); 0 for none.
    aux_logits : bool
        Whether the ``AuxLogits`` branch exists (torchvision checkpoints carry it).
    width_factor : float
        Scales every channel count (1.0 = the published network, 2048 pooled features).
    dropout : float
        Dropout before ``fc`` (0.5 in torchvision).
    """

    n_classes: int = 1000
    aux_logits: bool = False
    width_factor: float = 1.0
    dropout: float = 0.5

    def to_dict(self) -> dict:
        return {"type": "inception_v3", **asdict(self)}


class InceptionV3(nn.Module):
    """Inception-v3 (torchvision layout) for images ``(B, 3, H, W)``, ``H, W >= 75`` (299 in the paper).

    Examples
    --------
    >>> net = InceptionV3(InceptionV3Config(n_classes=0, width_factor=0.0625))
    >>> net(torch.zeros(2, 3, 75, 75)).shape
    torch.Size([2, 128])
    """

    def __init__(self, config: InceptionV3Config = InceptionV3Config()):
        super().__init__()
        if config.width_factor <= 0 or not 0 <= config.dropout < 1:
            raise ParameterError(f"bad InceptionV3 configuration {config}")
        self.config = config
        f = config.width_factor

        def s(c: int) -> int:
            return _scale(c, f)

        self.Conv2d_1a_3x3 = BasicConv2d(3, s(32), kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(s(32), s(32), kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(s(32), s(64), kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(s(64), s(80), kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(s(80), s(192), kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(3, stride=2)
        self.Mixed_5b = InceptionA(s(192), s(32), s)
        self.Mixed_5c = InceptionA(self.Mixed_5b.out_channels, s(64), s)
        self.Mixed_5d = InceptionA(self.Mixed_5c.out_channels, s(64), s)
        self.Mixed_6a = InceptionB(self.Mixed_5d.out_channels, s)
        c = self.Mixed_6a.out_channels
        self.Mixed_6b = InceptionC(c, s(128), s)
        self.Mixed_6c = InceptionC(self.Mixed_6b.out_channels, s(160), s)
        self.Mixed_6d = InceptionC(self.Mixed_6c.out_channels, s(160), s)
        self.Mixed_6e = InceptionC(self.Mixed_6d.out_channels, s(192), s)
        c6 = self.Mixed_6e.out_channels
        self.AuxLogits = InceptionAux(c6, config.n_classes, s) if config.aux_logits and config.n_classes > 0 else None
        self.Mixed_7a = InceptionD(c6, s)
        self.Mixed_7b = InceptionE(self.Mixed_7a.out_channels, s)
        self.Mixed_7c = InceptionE(self.Mixed_7b.out_channels, s)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(config.dropout)
        self.feature_dim = self.Mixed_7c.out_channels
        self.fc: nn.Module = nn.Linear(self.feature_dim, config.n_classes) if config.n_classes > 0 else nn.Identity()
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.1, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> pooled features ``(B, feature_dim)`` (2048 at full width)."""
        if x.dim() != 4 or x.shape[1] != 3 or min(x.shape[2:]) < 75:
            raise ParameterError(f"InceptionV3 expects (B, 3, H, W) images with H, W >= 75, got shape {tuple(x.shape)}")
        for m in (self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3, self.maxpool1, self.Conv2d_3b_1x1,
                  self.Conv2d_4a_3x3, self.maxpool2, self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,
                  self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = m(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)`` (pooled features when ``n_classes=0``); dropout before ``fc``."""
        return self.fc(self.dropout(self.forward_features(x)))


# ============================================================================ building, loading

FrameBackbone = Literal["inception_v3", "resnet18", "resnet34", "resnet50"]


def image_backbone_from_config(config: dict) -> nn.Module:
    """Rebuild a :class:`ResNet2D` or :class:`InceptionV3` from its ``config.to_dict()``."""
    cfg = dict(config)
    kind = cfg.pop("type", None)
    try:
        if kind == "resnet2d":
            cfg["widths"] = tuple(cfg["widths"])
            return ResNet2D(ResNet2DConfig(**cfg))
        if kind == "inception_v3":
            return InceptionV3(InceptionV3Config(**cfg))
    except TypeError as exc:
        raise ModelError(f"image backbone configuration is incomplete or unknown: {exc}") from exc
    raise ModelError(f"unknown image backbone type {kind!r} (expected 'resnet2d' or 'inception_v3')")


def build_image_backbone(name: str = "inception_v3", *, in_channels: int = 3, n_classes: int = 0,
                         width_factor: float = 1.0) -> nn.Module:
    """A randomly initialised 2-D backbone by name: ``inception_v3``, ``resnet18/34/50``."""
    if name == "inception_v3":
        if in_channels != 3:
            raise ParameterError("inception_v3 takes RGB images (in_channels=3)")
        return InceptionV3(InceptionV3Config(n_classes=n_classes, width_factor=width_factor))
    return resnet2d(name, in_channels=in_channels, n_classes=n_classes, width_factor=width_factor)


def _infer_resnet(state: dict[str, torch.Tensor], source: str) -> ResNet2DConfig:
    blocks = []
    for i in range(1, 5):
        idx = {int(k.split(".")[1]) for k in state if k.startswith(f"layer{i}.") and k.split(".")[1].isdigit()}
        blocks.append(max(idx) + 1 if idx else 0)
    bottleneck = "layer1.0.conv3.weight" in state
    depth = {(False, (2, 2, 2, 2)): 18, (False, (3, 4, 6, 3)): 34, (True, (3, 4, 6, 3)): 50}.get((bottleneck, tuple(blocks)))
    if depth is None:
        raise ModelError(f"{source}: a ResNet with blocks {blocks} ({'bottleneck' if bottleneck else 'basic'}) is not ResNet-18/34/50")
    widths = tuple(int(state[f"layer{i}.0.conv1.weight"].shape[0]) for i in range(1, 5))
    return ResNet2DConfig(depth=depth, in_channels=int(state["conv1.weight"].shape[1]),
                          n_classes=int(state["fc.weight"].shape[0]) if "fc.weight" in state else 0, widths=widths)


def load_image_backbone(path: str | Path, *, in_channels: int | None = None) -> nn.Module:
    """Load a user's 2-D weights: a torchvision ``resnet18/34/50`` or ``inception_v3`` state dict.

    The file is read with the restricted unpickler (:func:`musicperf.models.checkpoints.read_checkpoint`,
    ``module.`` prefixes removed), the architecture inferred from the keys and shapes (depth,
    widths, ``fc`` classes, presence of ``AuxLogits``), and the weights loaded strictly: any
    missing, unexpected or wrongly shaped key raises a :class:`~musicperf.errors.ModelError`
    listing them.

    Parameters
    ----------
    path : str or Path
        ``.pth`` file (a bare state dict or ``{"state_dict": ...}``).
    in_channels : int, optional
        1 to adapt a 3-channel ResNet to spectrograms: ``conv1`` is replaced by the sum of its
        weights over the input channels (a mono image replicated to RGB gives the same output).

    Returns
    -------
    ResNet2D or InceptionV3
        In eval mode, with the checkpoint's ``fc`` (drop it with ``model.fc = nn.Identity()``).
    """
    from musicperf.models.checkpoints import load_state_strict, read_checkpoint

    state, _ = read_checkpoint(path)
    source = f"checkpoint '{path}'"
    if any(k.startswith("Mixed_5b.") for k in state):
        n_classes = int(state["fc.weight"].shape[0]) if "fc.weight" in state else 0
        width = float(state["Conv2d_1a_3x3.conv.weight"].shape[0]) / 32.0 if "Conv2d_1a_3x3.conv.weight" in state else 1.0
        model = InceptionV3(InceptionV3Config(n_classes=n_classes, aux_logits=any(k.startswith("AuxLogits.") for k in state),
                                              width_factor=width))
    elif "conv1.weight" in state and "layer1.0.conv1.weight" in state and state["conv1.weight"].dim() == 4:
        model = ResNet2D(_infer_resnet(state, source))
    else:
        raise ModelError(f"{source} is neither a torchvision 2-D ResNet nor an Inception-v3 state dict; first keys: {list(state)[:5]}")
    load_state_strict(model, state, source=source)
    if in_channels is not None and in_channels != getattr(model.config, "in_channels", 3):
        if not isinstance(model, ResNet2D) or in_channels != 1:
            raise ParameterError(f"cannot adapt {source} to {in_channels} input channels (only 3 -> 1 for ResNets)")
        w = model.conv1.weight.detach().sum(dim=1, keepdim=True)
        model.conv1 = nn.Conv2d(1, w.shape[0], 7, stride=2, padding=3, bias=False)
        model.conv1.weight.data.copy_(w)
        cfg = model.config
        model.config = ResNet2DConfig(depth=cfg.depth, in_channels=1, n_classes=cfg.n_classes, widths=cfg.widths)
    return model.eval()
