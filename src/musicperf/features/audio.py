"""Audio descriptors aligned with video samples: timbral texture features and log-mel patches.

Two audio inputs are built here, both on librosa, both aligned with the video samples that the
gesture models see (a sample is ``clip_frames`` consecutive frames, 16 frames = 0.64 s at
25 fps in paper 001):

* :func:`timbral_features` -- the timbral texture features of paper 001 (section 4.4, 5.1):
  per 0.64 s segment, 28 windows of 2048 samples, 27 base descriptors and their first, second
  and third derivatives, a ``(n_segments, 28, 108)`` array that :class:`musicperf.models.audio.AudioMLP`
  unrolls into a 3024-vector.
* :func:`mel_patches` -- log-mel spectrogram patches in dB, the 2-D input of the audio branches
  of papers 003 (instrument recognition) and 004 (piano skill, ResNet-2D on the mel spectrogram).

:func:`load_performance_audio` fetches the audio of a performance: the video's own track or a
separate recording (the contact microphone of 001) shifted by a time offset, mono, resampled.

Framing used by both features: every segment (or patch) that starts at sample ``s`` gets windows
*centred* at ``s + k * hop_length`` (``k = 0 .. n - 1``), exactly as librosa's ``center=True``
framing would place them, but the half-window on each side is filled with the recording's own
neighbouring samples rather than with zeros; only audio outside the recording is zero. A
segment's features therefore do not depend on where the file was cut.

This module imports librosa lazily (inside the functions); importing it is cheap. It must not
import torch or the CLI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from musicperf.errors import DecodeError, NoAudioError, ParameterError, require

log = logging.getLogger(__name__)

#: The sample length of paper 001: 16 frames at 25 fps (section 5.1).
PAPER_SEGMENT_DURATION = 16 / 25.0
#: Windows per segment in paper 001 ("28 x 108", section 5.1).
PAPER_N_WINDOWS = 28
#: Window size of paper 001 (section 5.1), in samples.
PAPER_N_FFT = 2048
#: Default sample rate for the timbral features. librosa loads at 22.05 kHz by default, and at
#: that rate librosa's default framing (hop 512, centred frames) gives exactly 28 windows in
#: 0.64 s (14112 samples) -- the paper's 28, which is why we believe the paper worked at 22.05 kHz.
TIMBRAL_SR = 22050

ContrastMode = Literal["mean", "bands"]

_BASE_SPECTRAL = ("centroid", "bandwidth", "rolloff", "flatness")


def _librosa():
    return require("librosa", purpose="audio features")


# ------------------------------------------------------------------------------------ helpers


def _check_signal(y: np.ndarray, sr: int, what: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ParameterError(
            f"{what} must be a mono signal of shape (n_samples,), got shape {y.shape} "
            "(mix stereo to mono first; load_performance_audio returns mono)"
        )
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"{what} must be floating point in [-1, 1], got dtype {y.dtype}")
    if not np.all(np.isfinite(y)):
        raise ParameterError(f"{what} contains NaN or infinite samples")
    if not (isinstance(sr, (int, np.integer)) and sr > 0):
        raise ParameterError(f"sr must be a positive integer sample rate in Hz, got {sr!r}")
    return y.astype(np.float32, copy=False)


def _segment_start_samples(
    y: np.ndarray, sr: int, starts: Sequence[float] | np.ndarray | None, seg_len: int,
    *, allow_negative: bool = False,
) -> np.ndarray:
    """Start sample of each segment; non-overlapping segments over the whole signal if None."""
    if starts is None:
        n = len(y) // seg_len
        if n == 0:
            raise ParameterError(
                f"signal of {len(y) / sr:.3f} s is shorter than one segment "
                f"({seg_len / sr:.3f} s); nothing to compute"
            )
        return np.arange(n, dtype=np.int64) * seg_len
    starts = np.asarray(starts, dtype=np.float64)
    if starts.ndim != 1:
        raise ParameterError(f"segment start times must be a 1-D array in seconds, got shape {starts.shape}")
    if not np.all(np.isfinite(starts)):
        raise ParameterError("segment start times must be finite numbers of seconds")
    if not allow_negative and np.any(starts < 0):
        raise ParameterError("segment start times must be >= 0 s")
    duration = len(y) / sr
    if len(starts) and starts.max() > duration + max(seg_len / sr, 1.0):
        log.warning(
            "segment start %.3f s lies beyond the end of the %.3f s signal (zero-padded); "
            "were frame indices given instead of seconds?", starts.max(), duration,
        )
    return np.round(starts * sr).astype(np.int64)


def _frame_chunks(y: np.ndarray, starts: np.ndarray, n_fft: int, hop: int, n_frames: int) -> np.ndarray:
    """Audio chunks whose ``center=False`` framing centres windows at ``start + k * hop``.

    Returns an array of shape ``(len(starts), n_fft + (n_frames - 1) * hop)`` float32; samples
    outside the recording are zero.
    """
    chunk_len = n_fft + (n_frames - 1) * hop
    left = n_fft // 2
    first = starts - left
    lo = int(max(0, -first.min())) if len(first) else 0
    hi = int(max(0, (first.max() + chunk_len) - len(y))) if len(first) else 0
    padded = np.pad(y, (lo, hi)) if (lo or hi) else y
    idx = (first + lo)[:, None] + np.arange(chunk_len)[None, :]
    return padded[idx]


# ---------------------------------------------------------------------------- timbral features


def timbral_feature_names(
    *, n_mfcc: int = 20, contrast: ContrastMode = "mean", deltas: int = 3
) -> list[str]:
    """Column names of :func:`timbral_features`, in order.

    The columns are the base descriptors (``mfcc_00 .. mfcc_19, centroid, bandwidth, rolloff,
    flatness, contrast, zcr, rms``; ``contrast_0 .. contrast_6`` with ``contrast="bands"``),
    followed by the same names with ``_d1``, ``_d2``, ``_d3`` for their derivatives.
    """
    if contrast not in ("mean", "bands"):
        raise ParameterError(f"contrast must be 'mean' or 'bands', got {contrast!r}")
    base = [f"mfcc_{i:02d}" for i in range(n_mfcc)] + list(_BASE_SPECTRAL)
    base += ["contrast"] if contrast == "mean" else [f"contrast_{i}" for i in range(7)]
    base += ["zcr", "rms"]
    return base + [f"{name}_d{k}" for k in range(1, deltas + 1) for name in base]


def default_hop_length(sr: int, segment_duration: float, n_windows: int) -> int:
    """The hop that tiles a segment with ``n_windows`` windows: ``round(segment samples / n_windows)``.

    With this hop the window grid continues seamlessly from one segment to the next (at 22.05 kHz
    and 0.64 s: 14112 / 28 = 504 samples exactly; at 48 kHz: 1097 samples).
    """
    return max(1, int(round(segment_duration * sr / n_windows)))


def timbral_features(
    y: np.ndarray,
    sr: int,
    *,
    segment_starts: Sequence[float] | np.ndarray | None = None,
    segment_duration: float = PAPER_SEGMENT_DURATION,
    n_windows: int = PAPER_N_WINDOWS,
    n_fft: int = PAPER_N_FFT,
    hop_length: int | None = None,
    n_mfcc: int = 20,
    roll_percent: float = 0.85,
    contrast: ContrastMode = "mean",
    deltas: int = 3,
    delta_width: int = 9,
    batch_size: int = 64,
) -> np.ndarray:
    """Timbral texture features of paper 001 (sections 4.4 and 5.1), one matrix per segment.

    For each segment ``[start, start + segment_duration)`` the function computes, on
    ``n_windows`` Hann windows of ``n_fft`` samples centred at ``start + k * hop_length``:

    ============  ================================================================  =========
    columns       descriptor                                                        unit
    ============  ================================================================  =========
    0 .. 19       MFCC (librosa: power mel spectrogram in dB, DCT-II, 128 bands)     dB-ish
    20            spectral centroid, Equation 7 of 001                              Hz
    21            spectral bandwidth (2nd-order spread around the centroid)         Hz
    22            spectral roll-off at ``roll_percent`` (85 %), Equation 8 of 001    Hz
    23            spectral flatness (geometric / arithmetic mean of the power)      0..1
    24            spectral contrast, mean of librosa's 7 octave-band contrasts      dB
    25            zero-crossing rate, Equation 9 of 001 divided by the window size  1/sample
    26            RMS, Equation 10 of 001                                           amplitude
    27 .. 107     the first, second and third derivatives of columns 0 .. 26        per window
    ============  ================================================================  =========

    **Why 108 columns (the paper's 28 x 108 vs 28 x 109 ambiguity).** Section 5.1 of 001 says
    "28 x 108 ... 108 constitutes 27 key features (20 MFCC + 7 rest) along with the first,
    second, and third-order derivatives"; section 5.2 says "28 x 109 ... unrolled in a vector
    (3052 x 1)", and 28 x 109 = 3052. Only the 108 is explained: 20 MFCC + 7 others
    (centroid, bandwidth, roll-off, flatness, contrast, ZCR, RMS) = 27, x 4 (the value and three
    derivative orders) = 108. The 109th column is described nowhere, so we build 108
    (unrolled: 3024 values) and treat 109 / 3052 as a typo. For the contrast to count as *one*
    of the 7, librosa's 7 octave-band contrasts (6 bands + the residual) are averaged;
    ``contrast="bands"`` keeps all 7 instead (33 base features, 132 columns).

    **Framing.** 28 windows of 2048 samples do not fit a 0.64 s segment without overlap, and
    the paper does not give the hop. We centre the windows at ``start + k * hop`` (librosa's
    ``center=True`` convention) with ``hop = round(segment samples / n_windows)`` by default, so
    the 28 windows tile the segment and the grid continues into the next segment (hop 504 at
    22.05 kHz, 1097 at 48 kHz). The half window before the first centre and after the last one
    is read from the neighbouring audio, not zero-padded. ``hop_length=512`` at 22.05 kHz
    reproduces librosa's default framing of a 0.64 s clip (which also gives 28 windows, the
    likely origin of the paper's 28).

    **Derivatives** are :func:`librosa.feature.delta` (Savitzky-Golay, ``width=delta_width``,
    ``mode="interp"``) of order 1, 2, 3 along the 28 windows *within* each segment, in units per
    window.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), float
        Mono audio in [-1, 1].
    sr : int
        Sample rate of ``y`` in Hz (22050 by the reasoning above; 48000 also works).
    segment_starts : array-like of float, shape (n_segments,), optional
        Start time of each segment in seconds, e.g. the start times of the video samples
        (``k * 16 / fps``). By default, non-overlapping segments from 0 s covering the whole
        signal (a trailing partial segment is dropped). Segments running past the end of the
        signal are zero-padded.
    segment_duration : float
        Segment length in seconds (0.64 s = 16 frames at 25 fps).
    n_windows : int
        Windows per segment (28).
    n_fft : int
        Window (and FFT) size in samples (2048).
    hop_length : int, optional
        Distance between window centres in samples; see *Framing*.
    n_mfcc : int
        Number of MFCCs (20).
    roll_percent : float
        Roll-off energy fraction (0.85).
    contrast : {"mean", "bands"}
        One averaged contrast value (paper count) or all 7 band contrasts.
    deltas : int
        Highest derivative order to append (3 in the paper; 0 for none).
    delta_width : int
        Savitzky-Golay window of the derivatives, odd, >= ``deltas + 1`` and <= ``n_windows``.
    batch_size : int
        Segments processed per librosa call (bounds memory; does not change the result).

    Returns
    -------
    np.ndarray, shape (n_segments, n_windows, n_features), float32
        ``n_features = (n_mfcc + 7) * (deltas + 1)`` (108 with defaults); column names from
        :func:`timbral_feature_names`.

    Examples
    --------
    >>> sr = 22050
    >>> y = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(2 * sr) / sr).astype(np.float32)
    >>> timbral_features(y, sr).shape      # 2 s -> 3 segments of 0.64 s
    (3, 28, 108)
    """
    y = _check_signal(y, sr)
    if contrast not in ("mean", "bands"):
        raise ParameterError(f"contrast must be 'mean' or 'bands', got {contrast!r}")
    if segment_duration <= 0:
        raise ParameterError(f"segment_duration must be > 0 s, got {segment_duration}")
    if n_windows < 1 or n_fft < 16 or n_mfcc < 1:
        raise ParameterError(
            f"need n_windows >= 1, n_fft >= 16, n_mfcc >= 1; got {n_windows}, {n_fft}, {n_mfcc}"
        )
    if not 0 < roll_percent < 1:
        raise ParameterError(f"roll_percent must be in (0, 1), got {roll_percent}")
    if deltas < 0 or deltas > 3:
        raise ParameterError(f"deltas must be 0, 1, 2 or 3, got {deltas}")
    if deltas and (delta_width % 2 == 0 or delta_width < 3 or delta_width <= deltas or delta_width > n_windows):
        raise ParameterError(
            f"delta_width must be odd, > deltas ({deltas}) and <= n_windows ({n_windows}); got {delta_width}"
        )
    hop = default_hop_length(sr, segment_duration, n_windows) if hop_length is None else int(hop_length)
    if hop < 1:
        raise ParameterError(f"hop_length must be >= 1 sample, got {hop_length}")
    seg_len = int(round(segment_duration * sr))
    starts = _segment_start_samples(y, sr, segment_starts, seg_len)
    n_bands = 6
    if 200.0 * 2.0 ** (n_bands - 1) >= sr / 2:
        # librosa's contrast uses octave bands from 200 Hz; the last band edge (6.4 kHz) must
        # stay below Nyquist.
        raise ParameterError(
            f"sample rate {sr} Hz is too low for the 7-band spectral contrast (needs > 12.8 kHz); "
            "resample to 22050 or 48000 Hz"
        )

    n_base = n_mfcc + 4 + (1 if contrast == "mean" else n_bands + 1) + 2
    out = np.empty((len(starts), n_windows, n_base * (deltas + 1)), dtype=np.float32)
    for b0 in range(0, len(starts), max(1, batch_size)):
        chunk = _frame_chunks(y, starts[b0 : b0 + batch_size], n_fft, hop, n_windows)
        base = _timbral_base(chunk, sr, n_fft=n_fft, hop=hop, n_mfcc=n_mfcc,
                             roll_percent=roll_percent, contrast=contrast, n_bands=n_bands)
        out[b0 : b0 + len(chunk)] = np.swapaxes(_with_deltas(base, deltas, delta_width), 1, 2)
    return out


def _timbral_base(chunk, sr, *, n_fft, hop, n_mfcc, roll_percent, contrast, n_bands) -> np.ndarray:
    """Base descriptors of each chunk: shape (B, n_base, n_windows) float64."""
    librosa = _librosa()
    feat = librosa.feature
    # One STFT shared by every spectral descriptor; center=False because the chunk already
    # carries the half-window of real context on each side (see _frame_chunks).
    S = np.abs(librosa.stft(chunk, n_fft=n_fft, hop_length=hop, center=False))
    power = S**2
    mel = feat.melspectrogram(S=power, sr=sr)
    parts = [
        feat.mfcc(S=librosa.power_to_db(mel), n_mfcc=n_mfcc),
        feat.spectral_centroid(S=S, sr=sr, n_fft=n_fft),
        feat.spectral_bandwidth(S=S, sr=sr, n_fft=n_fft),
        feat.spectral_rolloff(S=S, sr=sr, n_fft=n_fft, roll_percent=roll_percent),
        feat.spectral_flatness(S=S),
    ]
    con = feat.spectral_contrast(S=S, sr=sr, n_fft=n_fft, n_bands=n_bands)
    parts.append(con.mean(axis=-2, keepdims=True) if contrast == "mean" else con)
    parts.append(feat.zero_crossing_rate(chunk, frame_length=n_fft, hop_length=hop, center=False))
    parts.append(feat.rms(y=chunk, frame_length=n_fft, hop_length=hop, center=False))
    return np.concatenate(parts, axis=-2)


def _with_deltas(base: np.ndarray, deltas: int, width: int) -> np.ndarray:
    """Append derivative orders 1..deltas along the last (window) axis: (B, F, T) -> (B, F*(deltas+1), T)."""
    if deltas == 0:
        return base
    delta = _librosa().feature.delta
    return np.concatenate(
        [base] + [delta(base, width=width, order=k, axis=-1, mode="interp") for k in range(1, deltas + 1)],
        axis=-2,
    )


def mel_filterbank(sr: int, n_fft: int, n_mels: int, *, fmin: float = 0.0) -> np.ndarray:
    """Triangular filters evenly spaced on the HTK mel scale from ``fmin`` to ``sr / 2``, in
    numpy (no librosa, whose first call compiles for seconds): ``(n_mels, n_fft // 2 + 1)``."""
    def hz2mel(f):
        return 2595 * np.log10(1 + f / 700)

    def mel2hz(m):
        return 700 * (10 ** (m / 2595) - 1)

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    pts = mel2hz(np.linspace(hz2mel(fmin), hz2mel(sr / 2), n_mels + 2))
    lo, c, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    return np.maximum(0, np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)))


# -------------------------------------------------------------------------------- mel patches


def mel_patches(
    y: np.ndarray,
    sr: int,
    sample_times: Sequence[float] | np.ndarray,
    *,
    duration: float,
    n_mels: int = 128,
    n_fft: int = 2048,
    hop_length: int = 512,
    fmin: float = 0.0,
    fmax: float | None = None,
    amin: float = 1e-10,
) -> np.ndarray:
    """Log-mel spectrogram patches (dB) aligned with video samples, for 2-D CNN audio branches.

    Papers 003 and 004 feed a mel spectrogram in decibels to a 2-D CNN (004: "the obtained
    spectrogram is mapped to the corresponding Mel-spectrogram using the Mel-scale ... expressed
    in decibels"). Patch ``i`` covers ``[sample_times[i], sample_times[i] + duration)``: its
    ``n_frames = ceil(duration * sr / hop_length)`` columns are windows centred at
    ``sample_times[i] + j * hop_length / sr``, with real neighbouring audio as context and zeros
    outside the recording (so a patch that runs past the end, or starts before 0 s, e.g. a
    window centred on the first clip, is padded with silence).

    The dB scale is absolute (``10 log10(power)``, reference 1.0, floor ``amin``, no
    ``top_db`` clipping), not relative to each patch's maximum: loudness differences between
    samples (playing vs silence) stay visible to the network. Digital silence is
    ``10 log10(amin)`` = -100 dB.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,), float
        Mono audio.
    sr : int
        Sample rate in Hz.
    sample_times : array-like of float, shape (n,)
        Start time of each patch in seconds (may be negative: silence before the recording).
    duration : float
        Patch length in seconds (e.g. 16 / fps).
    n_mels, n_fft, hop_length : int
        Mel bands, FFT size and hop in samples (defaults as librosa).
    fmin, fmax : float
        Mel filterbank range in Hz (``fmax=None``: sr / 2).
    amin : float
        Power floor before the logarithm.

    Returns
    -------
    np.ndarray, shape (n, n_mels, n_frames), float32
        Power in dB, low mel bands first, time along the last axis.

    Examples
    --------
    >>> sr = 22050
    >>> y = np.zeros(3 * sr, dtype=np.float32)
    >>> mel_patches(y, sr, [0.0, 0.64], duration=0.64, n_mels=64).shape
    (2, 64, 28)
    """
    y = _check_signal(y, sr)
    if sample_times is None:
        raise ParameterError("sample_times (start of each video sample, in seconds) is required")
    if duration <= 0:
        raise ParameterError(f"duration must be > 0 s, got {duration}")
    if n_mels < 1 or n_fft < 16 or hop_length < 1:
        raise ParameterError(f"need n_mels >= 1, n_fft >= 16, hop_length >= 1; got {n_mels}, {n_fft}, {hop_length}")
    if fmax is not None and not fmin < fmax <= sr / 2:
        raise ParameterError(f"need fmin < fmax <= sr / 2 = {sr / 2} Hz; got fmin={fmin}, fmax={fmax}")
    if amin <= 0:
        raise ParameterError(f"amin must be > 0, got {amin}")
    starts = _segment_start_samples(y, sr, sample_times, int(round(duration * sr)), allow_negative=True)
    n_frames = int(np.ceil(duration * sr / hop_length - 1e-9))
    librosa = _librosa()
    out = np.empty((len(starts), n_mels, n_frames), dtype=np.float32)
    for b0 in range(0, len(starts), 64):
        chunk = _frame_chunks(y, starts[b0 : b0 + 64], n_fft, hop_length, n_frames)
        mel = librosa.feature.melspectrogram(
            y=chunk, sr=sr, n_fft=n_fft, hop_length=hop_length, center=False,
            n_mels=n_mels, fmin=fmin, fmax=fmax, power=2.0,
        )
        out[b0 : b0 + len(chunk)] = librosa.power_to_db(mel, ref=1.0, amin=amin, top_db=None)
    return out


# ------------------------------------------------------------------------- performance audio


@dataclass(frozen=True)
class PerformanceAudio:
    """Mono audio on the video's timeline.

    Attributes
    ----------
    y : np.ndarray, shape (n_samples,), float32
        Sample ``i`` is at video time ``i / sr`` seconds.
    sr : int
        Sample rate in Hz.
    source : pathlib.Path
        The file the audio was decoded from (the video or the separate recording).
    offset : float
        Video time, in seconds, of the source recording's first sample (the convention of
        :func:`musicperf.io.audio.load_audio`).
    """

    y: np.ndarray
    sr: int
    source: Path
    offset: float

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.y) / self.sr


def load_performance_audio(
    media: str | Path,
    *,
    audio: str | Path | None = None,
    offset: float = 0.0,
    sr: int = TIMBRAL_SR,
    duration: float | None = None,
) -> PerformanceAudio:
    """The audio of a performance on the video's timeline, mono, resampled to ``sr``.

    Decoding, down-mixing (stereo -> ``(L + R) / 2``), resampling and placement on the video
    timeline are done by :func:`musicperf.io.audio.load_audio`; this function picks the source
    and turns "the video has no sound" into an error that says what to do.

    Parameters
    ----------
    media : str or Path
        The performance video (or an audio file when there is no video).
    audio : str or Path, optional
        A separate recording of the same performance (e.g. the contact microphone of paper 001)
        to use instead of the video's own track.
    offset : float
        Video time in seconds of the audio source's first sample: ``+2.0`` when the recorder
        started 2 s after the camera (2 s of silence are prepended), ``-1.5`` when it started
        1.5 s before (its first 1.5 s are skipped). 0 for the video's own track.
    sr : int
        Target sample rate in Hz: 22050 for the timbral features of 001 (the default), 48000
        for the original rate of 001's recordings.
    duration : float, optional
        Seconds of video time to return (default: to the end of the audio).

    Returns
    -------
    PerformanceAudio

    Raises
    ------
    DecodeError
        The file is unreadable, or has no audio stream and no ``audio`` was given (the message
        says to train with ``modalities: [video]`` or to give ``--audio FILE``).
    """
    from musicperf.io.audio import has_audio, load_audio

    if not np.isfinite(offset):
        raise ParameterError(f"offset must be a finite number of seconds, got {offset}")
    source = Path(audio) if audio is not None else Path(media)
    if not has_audio(source):
        if audio is None:
            raise NoAudioError(
                f"'{source}' has no audio stream; train with modalities: [video] or give --audio FILE"
            )
        raise NoAudioError(f"audio recording '{source}' has no audio stream")
    y, got_sr = load_audio(source, sr=sr, mono=True, offset=offset, duration=duration)
    y = np.ascontiguousarray(y, dtype=np.float32)
    if duration is not None and len(y) < int(round(duration * got_sr)):
        # load_audio does not pad a recording that ends early; callers want the full span.
        missing = int(round(duration * got_sr)) - len(y)
        if missing > got_sr:
            log.warning("'%s' ends %.2f s before the requested %.2f s; padding with silence",
                        source, missing / got_sr, duration)
        y = np.pad(y, (0, missing))
    return PerformanceAudio(y=y, sr=int(got_sr), source=source, offset=float(offset))
