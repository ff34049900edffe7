"""Landmark and audio features in the labelling workflow (``musicperf train`` / ``label``).

The workflow (:mod:`musicperf.tasks.gestures`) streams 16-frame clips and turns each into one
feature vector. This module adds, per clip, two other descriptions of the same 0.64 s:

* ``frame_features: landmarks`` (or ``grid+landmarks``): the 32 per-frame gesture features of
  :mod:`musicperf.features.landmark_features` over the clip's frames, a ``(L, 32)`` window
 , read by a temporal network (:mod:`musicperf.models.temporal`: ``tcn`` or
  ``gru``; ``fusion`` when grid or audio features are also on);
* ``modalities: [audio]`` or ``[video, audio]``: the timbral texture features of 001
  (Section 4.4; :func:`musicperf.features.audio.timbral_features`) of the clip's segment,
  summarised as mean and standard deviation over its windows.

**How it fits the workflow.** Each clip's vector is the concatenation
``[grid (+ backbone) | landmark window flattened (L * 32) | audio (2 * 108)]``, of which the
configuration keeps the parts it asks for; the workflow then standardises the columns, tunes
thresholds by blocked cross-validation and labels exactly as for the grid model, so splits,
losses (MSE with Dynamic Batch Balance on Temporal-Smoothing targets, Equations 1-6 of 001)
and metrics are the same for every feature choice.
:class:`~musicperf.models.framehead.FrameFeatureHead` unflattens the window and runs the temporal model on it. The layout of the columns is recorded in the model
directory (``workflow.json``: ``config`` and ``head``), so ``musicperf label`` computes the
same features without flags.

Choices (see docs/gestures.md):

* A landmark value missing for longer than the bridged gap (NaN) is replaced by the video's
  median of that feature before the workflow standardises; the ``has_*`` flags tell the model.
  (:func:`~musicperf.features.landmark_features.feature_matrix` fills with the training mean
  instead; the workflow standardises later, on all columns at once.)
* Standardisation is per column of the flattened window (the same feature at different window
  positions gets nearly the same mean and deviation).
* ``landmark_source: truth`` (``--landmarks-from-truth``) reads a synthetic performance's
  ``truth.json`` beside the video through :func:`~musicperf.synth.landmarks.from_truth`
  (detector-like noise and drop-outs, seeded by the configuration's seed), because MediaPipe
  does not detect the drawn synthetic performer. It exists for tests and experiments only.
* When the landmark frame rate differs from the model's, grid frame ``i`` takes the landmark
  frame shown at ``i / fps`` (sample-and-hold, as :func:`~musicperf.tasks.gestures.iter_clips`
  does for pixels); windows reaching past the last landmark frame repeat it.

Imports numpy and the standard library at module level; torch, MediaPipe and librosa inside
functions. Must not import :mod:`musicperf.tasks.gestures` at module level (it imports this).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musicperf.errors import ModelError, ParameterError

log = logging.getLogger(__name__)

FRAME_FEATURE_SETS = ("grid", "landmarks", "grid+landmarks")
TEMPORAL_MODELS = ("tcn", "gru")
MODALITIES = ("video", "audio")
LANDMARK_SOURCES = ("detector", "truth")
#: Version of the columns this module appends (cache keys and model files).
VERSION = 1


# --------------------------------------------------------------------------- configuration
def parse_modalities(value) -> tuple[str, ...]:
    """``"video,audio"``, ``"video+audio"``, ``["video", "audio"]`` -> ``("video", "audio")``."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace("+", ",").split(",")]
    else:
        parts = [str(p).strip() for p in value]
    parts = [p for p in parts if p]
    bad = [p for p in parts if p not in MODALITIES]
    if not parts or bad:
        raise ParameterError(f"modalities must be video, audio or video,audio; got {value!r}")
    return tuple(m for m in MODALITIES if m in parts)


def validate(config) -> None:
    """Check the frame-feature settings of a :class:`~musicperf.tasks.gestures.GestureConfig`."""
    if config.frame_features not in FRAME_FEATURE_SETS:
        raise ParameterError(f"frame_features must be one of {', '.join(FRAME_FEATURE_SETS)}, got {config.frame_features!r}")
    if config.temporal not in TEMPORAL_MODELS:
        raise ParameterError(f"temporal must be one of {', '.join(TEMPORAL_MODELS)}, got {config.temporal!r}")
    if config.landmark_source not in LANDMARK_SOURCES:
        raise ParameterError(f"landmark_source must be 'detector' or 'truth', got {config.landmark_source!r}")
    if "audio" not in config.modalities and "video" not in config.modalities:
        raise ParameterError("modalities must include video or audio")  # pragma: no cover - parse_modalities


def is_default(config) -> bool:
    """Whether the configuration asks for the workflow's own clip features only."""
    return config.frame_features == "grid" and config.modalities == ("video",)


def uses_grid(config) -> bool:
    return "video" in config.modalities and "grid" in config.frame_features.split("+")


def uses_landmarks(config) -> bool:
    return "video" in config.modalities and "landmarks" in config.frame_features.split("+")


def uses_audio(config) -> bool:
    return "audio" in config.modalities


def identity(config) -> dict:
    """What the appended columns depend on (JSON-able): keys the clip-feature cache."""
    d = {"version": VERSION, "frame_features": config.frame_features, "modalities": list(config.modalities)}
    if uses_landmarks(config):
        d["landmarks"] = _landmark_extractor(config).to_dict()
        d["landmark_source"] = config.landmark_source
        if config.landmark_source == "truth":
            d["truth_seed"] = config.seed
    return d


def describe(config) -> dict:
    """The record of the frame features saved in ``workflow.json`` (``features.frame``)."""
    d = identity(config)
    d["temporal"] = config.temporal if uses_landmarks(config) else None
    if uses_audio(config):
        from musicperf.features.audio import timbral_feature_names

        d["audio"] = {"kind": "timbral-001", "summary": "mean+std over windows",
                      "features": 2 * len(timbral_feature_names()), "sr": _timbral_sr()}
    return d


def check_inputs(config, videos: Sequence[Path]) -> None:
    """Fail early, before any decoding, when a video lacks what the configuration needs.

    Raises
    ------
    NoAudioError
        ``audio`` is among the modalities and a video has no audio stream.
    ParameterError
        ``landmark_source: truth`` and no ``truth.json`` lies beside a video.
    """
    if is_default(config):
        return
    for video in videos:
        video = Path(video)
        if uses_audio(config):
            from musicperf.errors import NoAudioError
            from musicperf.io.audio import has_audio

            if not has_audio(video):
                raise NoAudioError(f"'{video}' has no audio stream but the audio modality is on "
                                  "(train with --modalities video)")
        if uses_landmarks(config) and config.landmark_source == "truth":
            _truth_path(video)


def _truth_path(video: Path) -> Path:
    p = Path(video).parent / "truth.json"
    if not p.is_file():
        raise ParameterError(
            f"--landmarks-from-truth needs the synthetic truth '{p}' beside '{video}' "
            "(as 'musicperf synth' writes); real videos use MediaPipe landmarks"
        )
    return p


def _landmark_extractor(config):
    from musicperf.features.landmark_features import FRAME_FEATURES

    return FRAME_FEATURES["landmarks"](every=int(getattr(config, "landmark_every", 1)))


def _timbral_sr() -> int:
    from musicperf.features.audio import TIMBRAL_SR

    return int(TIMBRAL_SR)


# --------------------------------------------------------------------------- per-clip columns
def landmark_values(config, video: Path, *, fps: float, progress: bool = False) -> np.ndarray:
    """Per-frame landmark features of ``video`` on the model's frame grid.

    Parameters
    ----------
    config : GestureConfig
    video : Path
    fps : float
        The model's frame rate (frames per second).

    Returns
    -------
    np.ndarray, shape (T, 32), float32
        Gesture features (:data:`~musicperf.features.landmark_features.FEATURE_NAMES`), NaN
        where a part was not found (longer than the bridged gap).
    """
    if config.landmark_source == "truth":
        from musicperf.features.landmark_features import gesture_features
        from musicperf.synth.landmarks import from_truth

        lm = from_truth(_truth_path(video), seed=int(config.seed))
        extractor = _landmark_extractor(config)
        values, vfps = gesture_features(lm, max_gap=extractor.max_gap).values, float(lm.fps)
    else:
        values, vfps = _landmark_extractor(config)(video, progress=progress)
    values = np.asarray(values, dtype=np.float32)
    if abs(vfps - fps) > 1e-3 and len(values):
        n = int(np.floor(len(values) / vfps * fps + 1e-6))
        idx = np.minimum(np.floor(np.arange(n) / fps * vfps + 1e-6).astype(np.int64), len(values) - 1)
        values = values[idx]
    return values


def _fill_missing(values: np.ndarray) -> np.ndarray:
    """NaN -> the column's median over the video (0 when the column is never observed)."""
    values = np.array(values, dtype=np.float32)
    bad = ~np.isfinite(values)
    if bad.any():
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nan_to_num(np.nanmedian(np.where(bad, np.nan, values), axis=0))
        values[bad] = np.broadcast_to(med, values.shape)[bad]
    return values


def landmark_windows(values: np.ndarray, starts: np.ndarray, *, length: int) -> np.ndarray:
    """Windows ``(N, length, F)`` of per-frame values ``(T, F)`` at clip ``starts``.

    Frames past the end of ``values`` (the decoder may deliver a frame more than the landmark
    track holds) repeat its last frame.
    """
    from musicperf.features.landmark_features import windows

    starts = np.asarray(starts, dtype=np.int64)
    need = int(starts.max()) + length if len(starts) else 0
    if need > len(values):
        if not len(values):
            raise ParameterError("no landmark frame to cut windows from")
        values = np.concatenate([values, np.repeat(values[-1:], need - len(values), axis=0)])
    return windows(values, starts, length=length)


def audio_columns(video: Path, starts: np.ndarray, *, fps: float, length: int) -> np.ndarray:
    """Timbral features of 001 (Section 4.4) of each clip's segment, mean and std over windows.

    Parameters
    ----------
    video : Path
    starts : np.ndarray, shape (N,), int
        Clip starts on the ``fps`` grid; segment ``k`` is ``[starts[k] / fps, + length / fps)``
        seconds (0.64 s for 16 frames at 25 fps).

    Returns
    -------
    np.ndarray, shape (N, 216), float32
        The 108 timbral columns averaged over the segment's 28 windows, then their standard
        deviations.

    Raises
    ------
    NoAudioError
        The video has no audio stream (one line naming the file).
    """
    from musicperf.features.audio import load_performance_audio, timbral_features

    pa = load_performance_audio(video)
    f = timbral_features(pa.y, pa.sr, segment_starts=np.asarray(starts, dtype=np.float64) / fps,
                         segment_duration=length / fps)
    return np.concatenate([f.mean(axis=1), f.std(axis=1)], axis=1).astype(np.float32)


def clip_matrix(config, video: Path, starts: np.ndarray, base: np.ndarray, *, fps: float,
                progress: bool = False) -> np.ndarray:
    """The feature rows the configuration asks for, from the workflow's clip features.

    Parameters
    ----------
    config : GestureConfig
    video : Path
    starts : np.ndarray, shape (N,), int
        Clip starts on the model's frame grid.
    base : np.ndarray, shape (N, G), float32
        The workflow's clip features (grid statistics, + backbone features when configured).
    fps : float
        The model's frame rate.

    Returns
    -------
    np.ndarray, shape (N, F), float32
        ``[base if grid | landmark window (length * 32) if landmarks | audio (216) if audio]``;
        ``base`` itself for the default configuration.
    """
    if is_default(config):
        return base
    parts = []
    if uses_grid(config):
        parts.append(np.asarray(base, dtype=np.float32))
    if uses_landmarks(config):
        values = _fill_missing(landmark_values(config, Path(video), fps=fps, progress=progress))
        w = landmark_windows(values, starts, length=config.clip_length)
        parts.append(w.reshape(len(w), -1))
    if uses_audio(config):
        parts.append(audio_columns(Path(video), starts, fps=fps, length=config.clip_length))
    return np.concatenate(parts, axis=1).astype(np.float32)


# --------------------------------------------------------------------------- the head
def build_head(n_features: int, n_classes: int, config):
    """The classifier over a clip's feature row for ``config``.

    A :class:`~musicperf.models.SingleModelHead` (the papers' single-model head, Section 5.2 of
    001) when no landmark window is among the features, else a
    :class:`~musicperf.models.framehead.FrameFeatureHead`.
    """
    from musicperf.models import SingleModelHead

    if not uses_landmarks(config):
        return SingleModelHead(n_features, n_classes, hidden=config.hidden, dropout=config.dropout)
    n_lm = _landmark_extractor(config).n_features
    n_window = config.clip_length * n_lm
    n_grid = 0
    if uses_grid(config):
        n_grid = n_features - n_window - (audio_width() if uses_audio(config) else 0)
    n_audio = n_features - n_grid - n_window
    if n_grid < 0 or n_audio != (audio_width() if uses_audio(config) else 0):
        raise ParameterError(f"{n_features} feature columns do not fit the layout of {identity(config)}")
    from musicperf.models.framehead import FrameFeatureHead

    return FrameFeatureHead(n_grid=n_grid, length=config.clip_length, n_landmarks=n_lm, n_audio=n_audio,
                            n_classes=n_classes, temporal=config.temporal, dropout=config.dropout)


def audio_width() -> int:
    from musicperf.features.audio import timbral_feature_names

    return 2 * len(timbral_feature_names())


def head_from_config(cfg: dict, *, where: str = "the model"):
    """Rebuild the head recorded in ``workflow.json`` (``head``) by :meth:`config`."""
    from musicperf.models import SingleModelHead

    try:
        if cfg.get("type") == "frame-temporal":
            from musicperf.models.framehead import FrameFeatureHead

            return FrameFeatureHead(**{k: cfg[k] for k in ("n_grid", "length", "n_landmarks", "n_audio", "n_classes",
                                                         "temporal", "dropout")})
        return SingleModelHead(int(cfg["in_features"]), int(cfg["n_classes"]), hidden=tuple(cfg["hidden"]),
                               dropout=float(cfg["dropout"]))
    except (KeyError, TypeError, ValueError, ParameterError) as exc:
        raise ModelError(f"the head recorded in {where} is malformed: {exc!r}") from None
