"""2-D CNNs over log-mel spectrograms for instrument recognition (``003``, "Audio" section).

* :class:`HanCNN` -- Han, Kim & Lee 2016 (predominant instrument recognition): four stages of
  two 3x3 convolutions with leaky ReLU (alpha 0.33), a 3x3 max-pool and dropout 0.25, with
  32/64/128/256 filters, then global max pooling. ``003``'s baseline (1.5M parameters with its
  1024-unit dense layer, which here is the task's embedding layer).
* :class:`ChoiCNN` -- after Choi, Fazekas & Sandler 2016 (fully convolutional tagger): 3x3
  convolutions with batch normalisation, ELU and max-pooling, then global max pooling. ``003``
  says it "has a larger receptive field and exploits a more advanced activation function and
  batch normalisation" than Han's.
* :class:`XceptionAudio` -- after Chollet 2017 as modified by ``003``: a first layer of
  rectangular 48x3 (frequency x time) filters "for better capturing the timbral characteristics"
  and residual blocks of depthwise-separable convolutions with 768 filters.

Every network maps ``(B, n_mels, n_frames)`` (or ``(B, 1, n_mels, n_frames)``) log-mel dB
patches to pooled features ``(B, feature_dim)``; the classifier (an embedding of size ``n``, the
penultimate layer whose output ``003``'s late fusion consumes, and a softmax layer) is added by
the task (:mod:`musicperf.tasks.instrument`). The input passes through a batch normalisation of
its single channel first (as in Choi's code): dB values around -100..40 then reach the
convolutions centred and scaled. ``width_factor`` scales every channel count for tiny test
models.

Choices where ``003`` and its references leave sizes open (documented in docs/instrument-skill.md):
Choi et al. do not fix one width; we use an FCN-5 of 64/128/256/256/512 channels (2.7M
parameters with a 1024 embedding; ``003`` reports 2.4M); pool sizes ``(2, 2)`` per stage with
ceil mode so any patch of at least 1x1 works (Choi's (2,4)...(4,4) pools assume 29 s inputs).
Xception: 5 middle-flow blocks of three separable convolutions (9.8M parameters with a 1024
embedding; ``003`` reports 9.6M). Han's network is 1.4M with its 1024-unit layer (``003``: 1.5M). Han's network has no batch normalisation in the original (``003`` names it as a
difference from Choi's); ``batch_norm=True`` adds it.

This module imports torch; import it lazily.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from musicperf.errors import ModelError, ParameterError


def _scale(c: int, f: float) -> int:
    return max(1, int(round(c * f)))


def _as_image(x: torch.Tensor, n_mels: int, name: str) -> torch.Tensor:
    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != n_mels:
        raise ParameterError(f"{name} expects log-mel patches (B, {n_mels}, n_frames), got shape {tuple(x.shape)}")
    return x


class HanCNN(nn.Module):
    """Han et al. 2016's convolutional stack (the baseline audio network of ``003``).

    Parameters
    ----------
    n_mels : int
        Mel bands of the input (128 in Han et al.).
    width_factor : float
        Scales the 32/64/128/256 filters.
    batch_norm : bool
        Add batch normalisation after each convolution (not in the original).
    dropout : float
        Dropout after each stage (0.25 in Han et al.).

    Examples
    --------
    >>> HanCNN(n_mels=32, width_factor=0.125)(torch.zeros(2, 32, 40)).shape
    torch.Size([2, 32])
    """

    def __init__(self, n_mels: int = 128, *, width_factor: float = 1.0, batch_norm: bool = False, dropout: float = 0.25):
        super().__init__()
        if n_mels < 1 or width_factor <= 0 or not 0 <= dropout < 1:
            raise ParameterError(f"bad HanCNN sizes: n_mels={n_mels}, width_factor={width_factor}, dropout={dropout}")
        self.n_mels, self.width_factor, self.batch_norm, self.dropout = int(n_mels), float(width_factor), bool(batch_norm), float(dropout)
        self.input_norm = nn.BatchNorm2d(1)
        layers: list[nn.Module] = []
        c_in = 1
        for c in (32, 64, 128, 256):
            c = _scale(c, width_factor)
            for _ in range(2):
                layers.append(nn.Conv2d(c_in, c, 3, padding=1, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(c))
                layers.append(nn.LeakyReLU(0.33, inplace=True))
                c_in = c
            layers += [nn.MaxPool2d(3, stride=3, ceil_mode=True), nn.Dropout(dropout)]
        self.features = nn.Sequential(*layers)
        self.feature_dim = c_in

    def config(self) -> dict:
        return {"type": "han", "n_mels": self.n_mels, "width_factor": self.width_factor,
                "batch_norm": self.batch_norm, "dropout": self.dropout}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, n_frames)`` dB -> globally max-pooled features ``(B, feature_dim)``."""
        h = self.features(self.input_norm(_as_image(x, self.n_mels, "HanCNN")))
        return torch.amax(h, dim=(2, 3))


class ChoiCNN(nn.Module):
    """A fully convolutional tagger after Choi et al. 2016 (Conv3x3 -> BN -> ELU -> MaxPool).

    Parameters
    ----------
    n_mels : int
        Mel bands (96 in Choi et al.).
    channels : sequence of int
        Filters per stage (default FCN-5 ``(64, 128, 256, 256, 512)``, our choice).
    width_factor : float
        Scales ``channels``.

    Examples
    --------
    >>> ChoiCNN(n_mels=32, width_factor=0.125)(torch.zeros(2, 32, 40)).shape
    torch.Size([2, 64])
    """

    def __init__(self, n_mels: int = 96, *, channels: Sequence[int] = (64, 128, 256, 256, 512), width_factor: float = 1.0):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if n_mels < 1 or width_factor <= 0 or not channels or min(channels) < 1:
            raise ParameterError(f"bad ChoiCNN sizes: n_mels={n_mels}, channels={channels}, width_factor={width_factor}")
        self.n_mels, self.channels, self.width_factor = int(n_mels), channels, float(width_factor)
        self.input_norm = nn.BatchNorm2d(1)
        layers: list[nn.Module] = []
        c_in = 1
        for c in channels:
            c = _scale(c, width_factor)
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ELU(inplace=True),
                       nn.MaxPool2d(2, ceil_mode=True)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.feature_dim = c_in

    def config(self) -> dict:
        return {"type": "choi", "n_mels": self.n_mels, "channels": list(self.channels), "width_factor": self.width_factor}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, n_frames)`` dB -> globally max-pooled features ``(B, feature_dim)``."""
        h = self.features(self.input_norm(_as_image(x, self.n_mels, "ChoiCNN")))
        return torch.amax(h, dim=(2, 3))


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 convolution followed by a pointwise 1x1 convolution (Chollet 2017)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    """Xception middle-flow block: 3 x (ReLU -> SeparableConv -> BN) plus the identity."""

    def __init__(self, c: int):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(3):
            layers += [nn.ReLU(inplace=False), SeparableConv2d(c, c), nn.BatchNorm2d(c)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class XceptionAudio(nn.Module):
    """Xception-style audio network of ``003``: 48x3 first filters, separable convolutions of 768.

    Entry: ``Conv(48x3, 64) -> BN -> ReLU -> MaxPool 2 -> Conv1x1(768) -> BN``; then ``blocks``
    residual separable blocks (:class:`XceptionBlock`), ReLU and global average pooling.

    Parameters
    ----------
    n_mels : int
        Mel bands (>= 48 for the full 48-band first filter; smaller inputs get a filter as tall
        as the input).
    filters : int
        Filters of the separable convolutions (768 in ``003``).
    blocks : int
        Middle-flow blocks (5 by default, our choice: 9.8M parameters with a 1024 embedding).
    width_factor : float
        Scales ``filters`` and the entry width.

    Examples
    --------
    >>> XceptionAudio(n_mels=32, width_factor=0.0625, blocks=1)(torch.zeros(2, 32, 40)).shape
    torch.Size([2, 48])
    """

    def __init__(self, n_mels: int = 96, *, filters: int = 768, blocks: int = 5, width_factor: float = 1.0):
        super().__init__()
        if n_mels < 1 or filters < 1 or blocks < 0 or width_factor <= 0:
            raise ParameterError(f"bad XceptionAudio sizes: n_mels={n_mels}, filters={filters}, blocks={blocks}")
        self.n_mels, self.filters, self.blocks, self.width_factor = int(n_mels), int(filters), int(blocks), float(width_factor)
        c0, c = _scale(64, width_factor), _scale(filters, width_factor)
        kh = min(48, self.n_mels)
        self.input_norm = nn.BatchNorm2d(1)
        self.entry = nn.Sequential(
            # "rectangular filters of size 48 x 3 at the first layer" (003), stride 1, 'same' in time
            nn.Conv2d(1, c0, (kh, 3), padding=(0, 1), bias=False), nn.BatchNorm2d(c0), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(c0, c, 1, bias=False), nn.BatchNorm2d(c),
        )
        self.middle = nn.Sequential(*[XceptionBlock(c) for _ in range(self.blocks)])
        self.feature_dim = c

    def config(self) -> dict:
        return {"type": "xception", "n_mels": self.n_mels, "filters": self.filters, "blocks": self.blocks,
                "width_factor": self.width_factor}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, n_frames)`` dB -> globally average-pooled features ``(B, feature_dim)``."""
        h = self.middle(self.entry(self.input_norm(_as_image(x, self.n_mels, "XceptionAudio"))))
        return torch.relu(h).mean(dim=(2, 3))


AUDIO_NETWORKS = ("han", "choi", "xception")


def build_audio_cnn(name: str = "choi", *, n_mels: int = 96, width_factor: float = 1.0) -> nn.Module:
    """Build ``"han"``, ``"choi"`` or ``"xception"`` (see the module docstring)."""
    if name == "han":
        return HanCNN(n_mels, width_factor=width_factor)
    if name == "choi":
        return ChoiCNN(n_mels, width_factor=width_factor)
    if name == "xception":
        return XceptionAudio(n_mels, width_factor=width_factor)
    raise ParameterError(f"unknown audio network {name!r}; choose one of {', '.join(AUDIO_NETWORKS)}")


def audio_cnn_from_config(config: dict) -> nn.Module:
    """Rebuild a network from its ``config()``."""
    cfg = dict(config)
    kind = cfg.pop("type", None)
    classes = {"han": HanCNN, "choi": ChoiCNN, "xception": XceptionAudio}
    if kind not in classes:
        raise ModelError(f"unknown audio network type {kind!r} in the model file")
    try:
        return classes[kind](cfg.pop("n_mels"), **cfg)
    except (TypeError, KeyError) as exc:
        raise ModelError(f"audio network configuration is incomplete: {exc!r}") from exc
