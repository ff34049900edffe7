"""The gesture task's classifier over ``[grid | landmark window | audio]`` feature rows.

Kept apart from :mod:`musicperf.tasks.framefeatures` because it imports torch at module level;
:mod:`~musicperf.tasks.framefeatures` imports it only when a head is built.
"""

from __future__ import annotations

import torch
from torch import nn

from musicperf.errors import ParameterError
from musicperf.models.temporal import build_temporal_model, model_config

#: Width of the hidden layers of the temporal models (the landmark experiment's).
TEMPORAL_HIDDEN = 64
TEMPORAL_MODELS = ("tcn", "gru")


class FrameFeatureHead(nn.Module):
    """A temporal model over a flattened landmark window, fused with per-clip columns.

    Parameters
    ----------
    n_grid : int
        Leading columns of per-clip video features (grid statistics, + backbone); 0 for none.
    length : int
        Frames per window (the clip length, 16 in the papers).
    n_landmarks : int
        Landmark features per frame (32).
    n_audio : int
        Trailing columns of per-clip audio features; 0 for none.
    n_classes : int
    temporal : {"tcn", "gru"}
    dropout : float

    Notes
    -----
    Input ``(B, n_grid + length * n_landmarks + n_audio)`` standardised rows -> logits
    ``(B, K)``. The window ``(B, length, n_landmarks)`` (frame-major, as
    :func:`~musicperf.tasks.framefeatures.clip_matrix` flattens it) goes to a TCN or GRU
    (:mod:`musicperf.models.temporal`); with grid or audio columns the model is
    :class:`~musicperf.models.temporal.FusionTemporalNet`, the other columns repeated along the
    window (its MLP branch reads their window mean, i.e. the columns themselves).
    """

    kind = "frame-temporal"

    def __init__(self, *, n_grid: int, length: int, n_landmarks: int, n_audio: int, n_classes: int,
                 temporal: str = "tcn", dropout: float = 0.2):
        super().__init__()
        if temporal not in TEMPORAL_MODELS:
            raise ParameterError(f"temporal must be one of {', '.join(TEMPORAL_MODELS)}, got {temporal!r}")
        self.n_grid, self.length = int(n_grid), int(length)
        self.n_landmarks, self.n_audio = int(n_landmarks), int(n_audio)
        self.n_classes, self.temporal_name, self.dropout = int(n_classes), str(temporal), float(dropout)
        n_other = self.n_grid + self.n_audio
        if n_other:
            self.net = build_temporal_model("fusion", n_temporal=self.n_landmarks, n_other=n_other,
                                            n_classes=self.n_classes, temporal=self.temporal_name,
                                            hidden=TEMPORAL_HIDDEN, dropout=self.dropout)
        else:
            self.net = build_temporal_model(self.temporal_name, n_features=self.n_landmarks, n_classes=self.n_classes,
                                            hidden=TEMPORAL_HIDDEN, dropout=self.dropout)

    @property
    def in_features(self) -> int:
        return self.n_grid + self.length * self.n_landmarks + self.n_audio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ParameterError(f"expected feature rows (B, {self.in_features}), got {tuple(x.shape)}")
        g, n_w = self.n_grid, self.length * self.n_landmarks
        w = x[:, g : g + n_w].reshape(-1, self.length, self.n_landmarks)
        other = torch.cat([x[:, :g], x[:, g + n_w :]], dim=1)
        if other.shape[1]:
            w = torch.cat([w, other[:, None, :].expand(-1, self.length, -1)], dim=2)
        return self.net(w)

    def config(self) -> dict:
        """JSON that rebuilds this head (:func:`musicperf.tasks.framefeatures.head_from_config`)."""
        return {"type": self.kind, "in_features": self.in_features, "n_grid": self.n_grid, "length": self.length,
                "n_landmarks": self.n_landmarks, "n_audio": self.n_audio, "n_classes": self.n_classes,
                "temporal": self.temporal_name, "dropout": self.dropout, "model": model_config(self.net)}
