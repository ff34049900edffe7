"""The networks of the instrument and skill tasks (papers 003 and 004).

:class:`BranchClassifier` and :class:`LateFusion` are 003's modality networks and late fusion
(:mod:`musicperf.tasks.instrument` trains them); :class:`SkillNet` is 004's audio-visual fusion
model (:mod:`musicperf.tasks.skill`). Networks only: data, losses and training live in the
tasks. Imports torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from musicperf.errors import ParameterError
from musicperf.models.checkpoints import get_normalization


class BranchClassifier(nn.Module):
    """A modality network: ``backbone -> Linear(n) -> ReLU`` (penultimate) ``-> Dropout -> Linear(K)``.

    Parameters
    ----------
    backbone : nn.Module
        Maps inputs to pooled features ``(B, feature_dim)`` (``forward_features`` is used when
        it exists, so 2-D backbones with an ``fc`` work too).
    feature_dim : int
    embed_dim : int
        ``n`` of ``003``'s ``(k + 1, n)`` fusion input.
    n_classes : int
    dropout : float
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, embed_dim: int, n_classes: int, dropout: float = 0.5):
        super().__init__()
        self.backbone = backbone
        self.embedding = nn.Linear(feature_dim, embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(B, n)`` (after the ReLU)."""
        f = self.backbone.forward_features(x) if hasattr(self.backbone, "forward_features") else self.backbone(x)
        return F.relu(self.embedding(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K)`` (softmax applied by the loss and at prediction)."""
        return self.classifier(self.dropout(self.embed(x)))


class LateFusion(nn.Module):
    """``003``'s late-fusion model over the ``(k + 1, n)`` penultimate features.

    ``flatten -> Linear(1024) -> ReLU -> Linear(1024) -> ReLU -> BatchNorm -> Linear(K)``
    (softmax at prediction).

    Parameters
    ----------
    n_vectors : int
        ``k + 1`` (k frames and the audio vector).
    embed_dim : int
        ``n``.
    n_classes : int
    hidden : int
        1024 in ``003``.
    """

    def __init__(self, n_vectors: int, embed_dim: int, n_classes: int, hidden: int = 1024):
        super().__init__()
        self.n_vectors, self.embed_dim = int(n_vectors), int(embed_dim)
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(self.n_vectors * self.embed_dim, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.BatchNorm1d(hidden),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``(B, k + 1, n)`` -> logits ``(B, K)``."""
        if feats.dim() != 3 or feats.shape[1:] != (self.n_vectors, self.embed_dim):
            raise ParameterError(f"LateFusion expects (B, {self.n_vectors}, {self.embed_dim}) features, got {tuple(feats.shape)}")
        return self.net(feats)


class SkillNet(nn.Module):
    """``004``'s audio-visual fusion model (Figure 4).

    ``video: ResNet-3D -> Linear(video_features) -> Linear(K)``,
    ``audio: BN -> ResNet-2D -> Linear(audio_features) -> Linear(K)``,
    ``fusion: concat(detach(video), detach(audio)) -> Linear(K)``.

    Parameters
    ----------
    video_backbone : ResNet3D
        Without ``fc`` (pooled features); applies ``normalization`` to [0, 1] clips.
    audio_backbone : ResNet2D
        One input channel, without ``fc``.
    n_classes : int
    video_features, audio_features : int
        128 and 128 in ``004``.
    normalization : Normalization
        Clip normalisation of the video backbone.
    modality_dropout : float
        Training only: the fusion head's input loses its video half with this probability, else
        its audio half with this probability (per clip). Our addition, see
        :class:`SkillConfig`; 0 is ``004``'s plain fusion.
    """

    def __init__(self, video_backbone: nn.Module, audio_backbone: nn.Module, n_classes: int, *,
                 video_features: int = 128, audio_features: int = 128, normalization=None,
                 modality_dropout: float = 0.0):
        super().__init__()
        self.modality_dropout = float(modality_dropout)
        self.video_backbone = video_backbone
        self.audio_backbone = audio_backbone
        self.audio_norm = nn.BatchNorm2d(1)
        self.video_proj = nn.Linear(video_backbone.feature_dim, video_features)
        self.audio_proj = nn.Linear(audio_backbone.feature_dim, audio_features)
        self.video_head = nn.Linear(video_features, n_classes)
        self.audio_head = nn.Linear(audio_features, n_classes)
        self.fusion_head = nn.Linear(video_features + audio_features, n_classes)
        self.normalization = get_normalization(normalization or "torchvision")
        self.n_classes = int(n_classes)

    def features(self, clips: torch.Tensor, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two reduced feature vectors of a batch.

        Parameters
        ----------
        clips : Tensor, shape (B, 3, T, H, W), float in [0, 1]
        mel : Tensor, shape (B, n_mels, n_frames), dB

        Returns
        -------
        fv : Tensor, shape (B, video_features)
        fa : Tensor, shape (B, audio_features)
        """
        fv = self.video_proj(self.video_backbone(self.normalization.apply(clips)))
        fa = self.audio_proj(self.audio_backbone(self.audio_norm(mel[:, None])))
        return fv, fa

    def heads(self, fv: torch.Tensor, fa: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 3, K)`` of the video, audio and fusion branches; the fusion branch sees
        detached features, so its loss never reaches the backbones or the reductions."""
        fv_f, fa_f = fv.detach(), fa.detach()
        p = self.modality_dropout
        if self.training and p > 0:
            u = torch.rand(len(fv), device=fv.device)
            fv_f = fv_f * (u >= p).to(fv_f.dtype)[:, None]
            fa_f = fa_f * ((u < p) | (u >= 2 * p)).to(fa_f.dtype)[:, None]
        fused = torch.cat([fv_f, fa_f], dim=1)
        return torch.stack([self.video_head(fv), self.audio_head(fa), self.fusion_head(fused)], dim=1)

    def forward(self, clips: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` clips and ``(B, n_mels, F)`` mel -> logits ``(B, 3, K)``."""
        return self.heads(*self.features(clips, mel))
