"""Audio encoders: the fully connected audio network of paper 001 and a small 2-D mel CNN.

* :class:`AudioMLP` -- Figure 4a of 001: the timbral feature matrix of a 0.64 s segment
  (28 windows x 108 features, :func:`musicperf.features.audio.timbral_features`) unrolled into a
  3024-vector, three hidden fully connected layers with ReLU, dropout, and a 400-unit output
  (the size of the 3D-ResNet's video features, so both modalities weigh the same in the fused
  vector).
* :class:`MelCNN` -- a compact 2-D CNN over log-mel patches
  (:func:`musicperf.features.audio.mel_patches`), the audio branch of papers 003 / 004.

Both map a batch of audio inputs to a ``(B, out_features)`` representation; classification and
fusion live in :mod:`musicperf.models.fusion`. Imports torch at module level: import this module
lazily (never from a package ``__init__`` or a command module).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from musicperf.errors import ParameterError

#: Unrolled size of the 001 timbral matrix: 28 windows x 108 features (see
#: :func:`musicperf.features.audio.timbral_features` for why 108 and not 109).
PAPER_AUDIO_FEATURES = 28 * 108
#: Size of the audio (and video) representation in 001 (section 5.2).
PAPER_EMBEDDING = 400


class AudioMLP(nn.Module):
    """The audio network of paper 001, Figure 4a.

    ``flatten -> standardise -> [Linear -> ReLU] x 3 -> Dropout -> Linear(out_features)``.

    The paper gives three hidden layers with ReLU, a dropout layer at the end and 400 outputs,
    but not the hidden widths or the dropout rate; we use 1024, 512, 512 and p = 0.5 (a funnel
    from 3024 inputs to 400 outputs). The timbral descriptors have wildly different scales (MFCC
    0 in the hundreds of dB, centroid in kHz, flatness near 0), which the paper does not
    address; the network therefore standardises its input with per-feature ``mean`` / ``std``
    buffers, set from training data with :meth:`fit_normalization`. They are part of the
    ``state_dict``, so a saved model carries its normalisation.

    Parameters
    ----------
    in_features : int
        Size of the unrolled input (3024 = 28 x 108 for the paper's features; 3696 = 28 x 132
        with all 7 contrast bands).
    hidden : sequence of int
        Widths of the hidden layers (three in the paper).
    out_features : int
        Size of the representation (400).
    dropout : float
        Dropout probability before the output layer.

    Examples
    --------
    >>> net = AudioMLP()
    >>> net(torch.zeros(2, 28, 108)).shape
    torch.Size([2, 400])
    """

    def __init__(
        self,
        in_features: int = PAPER_AUDIO_FEATURES,
        *,
        hidden: Sequence[int] = (1024, 512, 512),
        out_features: int = PAPER_EMBEDDING,
        dropout: float = 0.5,
    ):
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        if in_features < 1 or out_features < 1 or any(h < 1 for h in hidden):
            raise ParameterError(
                f"AudioMLP sizes must be positive: in={in_features}, hidden={hidden}, out={out_features}"
            )
        if not 0 <= dropout < 1:
            raise ParameterError(f"dropout must be in [0, 1), got {dropout}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.hidden = hidden
        self.dropout = float(dropout)
        self.register_buffer("mean", torch.zeros(self.in_features))
        self.register_buffer("std", torch.ones(self.in_features))
        layers: list[nn.Module] = []
        width = self.in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        layers += [nn.Dropout(dropout), nn.Linear(width, self.out_features)]
        self.net = nn.Sequential(*layers)

    def config(self) -> dict:
        """JSON-serialisable constructor arguments (the weights and normalisation are in the state dict)."""
        return {"type": "audio_mlp", "in_features": self.in_features, "hidden": list(self.hidden),
                "out_features": self.out_features, "dropout": self.dropout}

    @torch.no_grad()
    def fit_normalization(self, x: torch.Tensor, *, eps: float = 1e-6) -> "AudioMLP":
        """Set the input standardisation from training inputs.

        Parameters
        ----------
        x : torch.Tensor, shape (N, ...) with prod(...) = in_features
            Training inputs, e.g. timbral matrices ``(N, 28, 108)``; N >= 2.
        eps : float
            Floor of the standard deviation (constant features are left centred, not blown up).
        """
        flat = self._flatten(x).double()
        if flat.shape[0] < 2:
            raise ParameterError(f"fit_normalization needs at least 2 samples, got {flat.shape[0]}")
        self.mean.copy_(flat.mean(0).to(self.mean.dtype))
        self.std.copy_(flat.std(0).clamp_min(eps).to(self.std.dtype))
        return self

    def _flatten(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1) if x.dim() > 1 else x[None]
        if flat.shape[1] != self.in_features:
            raise ParameterError(
                f"AudioMLP expects {self.in_features} values per sample, got input of shape "
                f"{tuple(x.shape)} (were the features computed with another contrast/deltas setting?)"
            )
        return flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map audio features to the representation.

        Parameters
        ----------
        x : torch.Tensor, shape (B, 28, 108) or (B, in_features), float

        Returns
        -------
        torch.Tensor, shape (B, out_features)
        """
        flat = self._flatten(x)
        return self.net((flat - self.mean) / self.std)


class MelCNN(nn.Module):
    """A small 2-D CNN over log-mel patches: the audio branch of papers 003 and 004.

    003 uses the convolutional taggers of Han et al. / Choi et al. (stacked 3x3 convolutions
    with batch normalisation) and 004 a ResNet-2D; neither text gives a complete recipe for
    0.64 s patches, so this is a compact network of the same family: batch normalisation of
    the dB input, ``len(channels)`` blocks of ``Conv3x3 -> BN -> ReLU -> MaxPool2x2`` (ceil mode, so short
    patches never pool to an empty map), global average pooling, dropout and a linear layer to
    ``out_features``.

    Parameters
    ----------
    n_mels : int
        Mel bands of the input (only used to check the input).
    channels : sequence of int
        Output channels of the convolution blocks.
    out_features : int
        Size of the representation (400 to match the video features of 001).
    dropout : float
        Dropout before the output layer.

    Examples
    --------
    >>> MelCNN(n_mels=64)(torch.zeros(2, 64, 28)).shape
    torch.Size([2, 400])
    """

    def __init__(
        self,
        n_mels: int = 128,
        *,
        channels: Sequence[int] = (32, 64, 128, 256),
        out_features: int = PAPER_EMBEDDING,
        dropout: float = 0.3,
    ):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if n_mels < 1 or out_features < 1 or not channels or any(c < 1 for c in channels):
            raise ParameterError(f"MelCNN sizes must be positive: n_mels={n_mels}, channels={channels}")
        if not 0 <= dropout < 1:
            raise ParameterError(f"dropout must be in [0, 1), got {dropout}")
        self.n_mels = int(n_mels)
        self.out_features = int(out_features)
        self.channels = channels
        self.dropout = float(dropout)
        self.input_norm = nn.BatchNorm2d(1)
        blocks: list[nn.Module] = []
        c_in = 1
        for c in channels:
            blocks += [
                nn.Conv2d(c_in, c, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                # ceil_mode keeps a dimension of size 1 alive instead of pooling it to 0
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            c_in = c
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, self.out_features))

    def config(self) -> dict:
        """JSON-serialisable constructor arguments."""
        return {"type": "mel_cnn", "n_mels": self.n_mels, "channels": list(self.channels),
                "out_features": self.out_features, "dropout": self.dropout}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map log-mel patches to the representation.

        Parameters
        ----------
        x : torch.Tensor, shape (B, n_mels, n_frames) or (B, 1, n_mels, n_frames), float dB

        Returns
        -------
        torch.Tensor, shape (B, out_features)
        """
        if x.dim() == 3:
            x = x[:, None]
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != self.n_mels:
            raise ParameterError(
                f"MelCNN expects log-mel patches (B, {self.n_mels}, n_frames), got shape {tuple(x.shape)}"
            )
        h = self.features(self.input_norm(x))
        return self.head(h.mean(dim=(2, 3)))


def audio_encoder_from_config(config: dict) -> nn.Module:
    """Rebuild an :class:`AudioMLP` or :class:`MelCNN` from its :meth:`config` dict."""
    cfg = dict(config)
    kind = cfg.pop("type", None)
    if kind == "audio_mlp":
        return AudioMLP(cfg.pop("in_features"), **cfg)
    if kind == "mel_cnn":
        return MelCNN(cfg.pop("n_mels"), **cfg)
    raise ParameterError(f"unknown audio encoder type {kind!r} (expected 'audio_mlp' or 'mel_cnn')")
