"""Audio-visual fusion: early fusion of paper 001 (Figure 4b) and a late-fusion option.

A fusion model holds one encoder per modality and a multi-label classifier:

* :class:`EarlyFusion` (001, sections 4.4 and 5.2, Figure 4b): the 400 video features and the
  400 audio features are concatenated into one 800-vector ("early fusion") and classified by a
  fully connected network (three hidden layers, ReLU, dropout after each activation, N outputs:
  :class:`musicperf.models.heads.SingleModelHead`).
  With one modality it is the unimodal model of 001 (400 video features -> classifier).
* :class:`LateFusion`: one classifier per modality; their per-class probabilities are averaged
  (``combine="mean"``) or mixed with learned per-class weights (``combine="learned"``).

The ``modalities`` switch (``["video"]``, ``["audio"]``, ``["video", "audio"]``) of the training
configuration selects which encoders exist and which inputs ``forward`` needs; build models with
:func:`build_fusion_model`. Every model returns **logits** ``(B, N)``; the sigmoid (001: "N
sigmoid activation functions") belongs to the loss / prediction step, so MSE-on-sigmoid,
BCE-with-logits and thresholding all work on the same output.

The video encoder is whatever maps a video input to ``video_dim`` features: the 3D-ResNet of
:mod:`musicperf.models` when training end to end, or ``nn.Identity`` when the 400 video features
are precomputed. Imports torch at module level: import this module lazily.
"""

from __future__ import annotations

from typing import Iterable, Literal, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from musicperf.errors import ParameterError
from musicperf.models.audio import (
    PAPER_AUDIO_FEATURES,
    PAPER_EMBEDDING,
    AudioMLP,
    MelCNN,
    audio_encoder_from_config,
)
from musicperf.models.heads import SingleModelHead

#: The modalities a model can use, in the order their features are concatenated.
MODALITIES = ("video", "audio")

Combine = Literal["mean", "learned"]


def parse_modalities(modalities: str | Iterable[str]) -> tuple[str, ...]:
    """Validate a ``modalities`` setting and return it in canonical order.

    Parameters
    ----------
    modalities : str or iterable of str
        ``"video"``, ``"audio"``, ``["video", "audio"]`` (a comma-separated string also works).

    Returns
    -------
    tuple of str
        A non-empty subset of :data:`MODALITIES`, in that order.
    """
    if isinstance(modalities, str):
        modalities = [m.strip() for m in modalities.split(",") if m.strip()]
    items = [str(m).strip().lower() for m in modalities]
    unknown = sorted(set(items) - set(MODALITIES))
    if unknown:
        raise ParameterError(
            f"unknown modalities {unknown}; choose from [video], [audio] or [video, audio]"
        )
    if not items:
        raise ParameterError("modalities is empty; choose [video], [audio] or [video, audio]")
    if len(set(items)) != len(items):
        raise ParameterError(f"modalities lists a modality twice: {items}")
    return tuple(m for m in MODALITIES if m in items)


class _FusionBase(nn.Module):
    """Shared input handling of the fusion models."""

    def __init__(self, encoders: Mapping[str, nn.Module], dims: Mapping[str, int]):
        super().__init__()
        self.modalities = parse_modalities(list(encoders))
        missing = [m for m in self.modalities if m not in dims]
        if missing:
            raise ParameterError(f"no feature size given for modalities {missing}")
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        self.dims = {m: int(dims[m]) for m in self.modalities}

    def config(self) -> dict:
        """JSON-serialisable description from which :func:`fusion_from_config` rebuilds the model.

        Encoders with a ``config()`` method (:class:`AudioMLP`, :class:`MelCNN`) are described;
        any other encoder (the video backbone, ``nn.Identity``) is recorded by class name and
        must be passed to :func:`fusion_from_config` again.
        """
        head = next(iter(self._heads()))
        enc = {}
        for m, e in self.encoders.items():
            enc[m] = e.config() if hasattr(e, "config") else {"type": "external", "class": type(e).__name__}
        return {
            "fusion": self.fusion, "modalities": list(self.modalities), "dims": dict(self.dims),
            "n_classes": head.n_classes, "hidden": list(head.hidden), "dropout": head.dropout,
            "combine": getattr(self, "combine", None), "encoders": enc,
        }

    def _heads(self):
        raise NotImplementedError

    def _encode(self, inputs: Mapping[str, torch.Tensor | None]) -> dict[str, torch.Tensor]:
        feats: dict[str, torch.Tensor] = {}
        batch = None
        for m in self.modalities:
            x = inputs.get(m)
            if x is None:
                raise ParameterError(
                    f"this model uses modalities {list(self.modalities)} but no {m} input was given"
                )
            f = self.encoders[m](x)
            if f.dim() != 2 or f.shape[1] != self.dims[m]:
                raise ParameterError(
                    f"the {m} encoder returned shape {tuple(f.shape)}, expected (B, {self.dims[m]})"
                )
            if batch is not None and f.shape[0] != batch:
                raise ParameterError(
                    f"batch sizes differ between modalities: {batch} vs {f.shape[0]} ({m})"
                )
            batch = f.shape[0]
            feats[m] = f
        return feats


class EarlyFusion(_FusionBase):
    """Early fusion by concatenation (paper 001, section 4.4 and Figure 4b).

    ``logits = classifier(concat([video_encoder(video), audio_encoder(audio)]))`` with the
    modalities in :data:`MODALITIES` order; with one encoder this is the unimodal model.

    Parameters
    ----------
    encoders : mapping of str to nn.Module
        ``{"video": ..., "audio": ...}`` (a non-empty subset); each maps its input to
        ``(B, dims[m])``.
    dims : mapping of str to int
        Output size of each encoder (400 in 001).
    n_classes : int
        Number of labels N.
    hidden, dropout
        Classifier settings, see :class:`musicperf.models.heads.SingleModelHead` (the
        classifier of 001, Figure 4b: three hidden layers, ReLU, dropout after each).
    """

    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        dims: Mapping[str, int],
        n_classes: int,
        *,
        hidden: Sequence[int] = (256, 128, 64),
        dropout: float = 0.5,
    ):
        super().__init__(encoders, dims)
        self.fusion = "early"
        self.classifier = SingleModelHead(sum(self.dims.values()), n_classes, hidden=tuple(hidden), dropout=dropout)

    def forward(self, video: torch.Tensor | None = None, audio: torch.Tensor | None = None) -> torch.Tensor:
        """Classify a batch.

        Parameters
        ----------
        video : torch.Tensor, optional
            Input of the video encoder, e.g. clips ``(B, 3, 16, 112, 112)`` or precomputed
            features ``(B, 400)``; required when "video" is among the modalities.
        audio : torch.Tensor, optional
            Input of the audio encoder, e.g. timbral matrices ``(B, 28, 108)`` or log-mel
            patches ``(B, n_mels, n_frames)``; required when "audio" is among the modalities.

        Returns
        -------
        torch.Tensor, shape (B, n_classes)
            Logits.
        """
        feats = self._encode({"video": video, "audio": audio})
        return self.classifier(torch.cat([feats[m] for m in self.modalities], dim=1))

    def _heads(self):
        return [self.classifier]


class LateFusion(_FusionBase):
    """Late fusion: one classifier per modality, per-class probabilities combined.

    ``p = sum_m w_m * sigmoid(z_m)`` per class, with ``w = 1 / M`` (``combine="mean"``) or
    ``w = softmax`` over modalities of a learned ``(M, n_classes)`` parameter
    (``combine="learned"``, initialised uniform, so it starts as the mean). The output is the
    logit of ``p``, computed stably as ``logsumexp(log w + logsigmoid(z)) -
    logsumexp(log w + logsigmoid(-z))``, so the same loss and threshold as for
    :class:`EarlyFusion` apply.

    Parameters
    ----------
    encoders, dims, n_classes, hidden, dropout
        As for :class:`EarlyFusion`; each modality gets its own
        :class:`~musicperf.models.heads.SingleModelHead`.
    combine : {"mean", "learned"}
        How the per-modality probabilities are combined.
    """

    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        dims: Mapping[str, int],
        n_classes: int,
        *,
        combine: Combine = "mean",
        hidden: Sequence[int] = (256, 128, 64),
        dropout: float = 0.5,
    ):
        super().__init__(encoders, dims)
        if combine not in ("mean", "learned"):
            raise ParameterError(f"combine must be 'mean' or 'learned', got {combine!r}")
        self.fusion = "late"
        self.combine = combine
        self.heads = nn.ModuleDict(
            {m: SingleModelHead(self.dims[m], n_classes, hidden=tuple(hidden), dropout=dropout) for m in self.modalities}
        )
        n_mod = len(self.modalities)
        if combine == "learned":
            self.mix = nn.Parameter(torch.zeros(n_mod, n_classes))
        else:
            self.register_buffer("mix", torch.zeros(n_mod, n_classes))

    def modality_logits(
        self, video: torch.Tensor | None = None, audio: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Each modality's own logits ``{modality: (B, n_classes)}``."""
        feats = self._encode({"video": video, "audio": audio})
        return {m: self.heads[m](feats[m]) for m in self.modalities}

    def _heads(self):
        return list(self.heads.values())

    def weights(self) -> torch.Tensor:
        """Combination weights, shape ``(n_modalities, n_classes)``, summing to 1 per class."""
        return torch.softmax(self.mix, dim=0)

    def forward(self, video: torch.Tensor | None = None, audio: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, n_classes)`` of the combined probability; inputs as :meth:`EarlyFusion.forward`."""
        z = torch.stack(list(self.modality_logits(video, audio).values()), dim=0)  # (M, B, N)
        log_w = torch.log_softmax(self.mix, dim=0)[:, None, :]  # (M, 1, N)
        log_p = torch.logsumexp(log_w + F.logsigmoid(z), dim=0)
        log_q = torch.logsumexp(log_w + F.logsigmoid(-z), dim=0)
        return log_p - log_q


def build_audio_encoder(
    kind: Literal["timbral", "mel"] = "timbral",
    *,
    in_features: int = PAPER_AUDIO_FEATURES,
    n_mels: int = 128,
    out_features: int = PAPER_EMBEDDING,
    dropout: float | None = None,
) -> nn.Module:
    """The audio encoder for an audio input kind: :class:`AudioMLP` (timbral) or :class:`MelCNN` (mel)."""
    if kind == "timbral":
        return AudioMLP(in_features, out_features=out_features, **({} if dropout is None else {"dropout": dropout}))
    if kind == "mel":
        return MelCNN(n_mels, out_features=out_features, **({} if dropout is None else {"dropout": dropout}))
    raise ParameterError(f"audio input must be 'timbral' or 'mel', got {kind!r}")


def build_fusion_model(
    *,
    modalities: str | Iterable[str],
    n_classes: int,
    fusion: Literal["early", "late"] = "early",
    combine: Combine = "mean",
    video_encoder: nn.Module | None = None,
    video_dim: int = PAPER_EMBEDDING,
    audio_encoder: nn.Module | None = None,
    audio_dim: int = PAPER_EMBEDDING,
    audio_input: Literal["timbral", "mel"] = "timbral",
    audio_features: int = PAPER_AUDIO_FEATURES,
    n_mels: int = 128,
    hidden: Sequence[int] = (256, 128, 64),
    dropout: float = 0.5,
) -> EarlyFusion | LateFusion:
    """Build the classifier for a ``modalities`` setting of the training configuration.

    Parameters
    ----------
    modalities : str or iterable of str
        ``[video]``, ``[audio]`` or ``[video, audio]``.
    n_classes : int
        Number of labels.
    fusion : {"early", "late"}
        Concatenate features (001) or combine per-modality predictions.
    combine : {"mean", "learned"}
        Late fusion only: average probabilities or learn per-class weights.
    video_encoder : nn.Module, optional
        Maps the video input to ``(B, video_dim)``; default ``nn.Identity`` (precomputed
        features, e.g. the 400 outputs of the 3D-ResNet).
    video_dim : int
        Size of the video features (400).
    audio_encoder : nn.Module, optional
        Maps the audio input to ``(B, audio_dim)``; default :func:`build_audio_encoder` for
        ``audio_input``.
    audio_dim : int
        Size of the audio representation (400).
    audio_input : {"timbral", "mel"}
        The audio input the default encoder expects: timbral matrices (001) or log-mel patches.
    audio_features : int
        Unrolled timbral size for the default :class:`AudioMLP` (3024 = 28 x 108).
    n_mels : int
        Mel bands for the default :class:`MelCNN`.
    hidden, dropout
        Classifier settings.

    Returns
    -------
    EarlyFusion or LateFusion
        With ``.modalities`` telling the data pipeline which inputs to feed.

    Examples
    --------
    >>> model = build_fusion_model(modalities=["video", "audio"], n_classes=7)
    >>> model(video=torch.zeros(2, 400), audio=torch.zeros(2, 28, 108)).shape
    torch.Size([2, 7])
    """
    mods = parse_modalities(modalities)
    encoders: dict[str, nn.Module] = {}
    dims: dict[str, int] = {}
    if "video" in mods:
        encoders["video"] = video_encoder if video_encoder is not None else nn.Identity()
        dims["video"] = video_dim
    if "audio" in mods:
        encoders["audio"] = (
            audio_encoder
            if audio_encoder is not None
            else build_audio_encoder(audio_input, in_features=audio_features, n_mels=n_mels, out_features=audio_dim)
        )
        dims["audio"] = audio_dim
    if fusion == "early":
        return EarlyFusion(encoders, dims, n_classes, hidden=hidden, dropout=dropout)
    if fusion == "late":
        return LateFusion(encoders, dims, n_classes, combine=combine, hidden=hidden, dropout=dropout)
    raise ParameterError(f"fusion must be 'early' or 'late', got {fusion!r}")


def fusion_from_config(
    config: dict, *, video_encoder: nn.Module | None = None, audio_encoder: nn.Module | None = None
) -> EarlyFusion | LateFusion:
    """Rebuild a fusion model from :meth:`EarlyFusion.config` / :meth:`LateFusion.config`.

    Parameters
    ----------
    config : dict
        The saved description.
    video_encoder : nn.Module, optional
        The video backbone (not described by the config); default ``nn.Identity``.
    audio_encoder : nn.Module, optional
        An audio encoder built by the caller, for encoders other than :class:`AudioMLP` /
        :class:`MelCNN` (e.g. the 003 CNNs of :mod:`musicperf.models.audio2d`); by default it is
        rebuilt from the config.

    Returns
    -------
    EarlyFusion or LateFusion
        With freshly initialised weights; load the saved state dict into it.
    """
    try:
        enc = config["encoders"]
        if audio_encoder is None and "audio" in config["modalities"]:
            audio_encoder = audio_encoder_from_config(enc["audio"])
        return build_fusion_model(
            modalities=config["modalities"], n_classes=int(config["n_classes"]), fusion=config["fusion"],
            combine=config.get("combine") or "mean", video_encoder=video_encoder,
            video_dim=int(config["dims"].get("video", PAPER_EMBEDDING)), audio_encoder=audio_encoder,
            audio_dim=int(config["dims"].get("audio", PAPER_EMBEDDING)), hidden=tuple(config["hidden"]),
            dropout=float(config["dropout"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ParameterError(f"fusion model configuration is incomplete or malformed: {exc!r}") from exc
