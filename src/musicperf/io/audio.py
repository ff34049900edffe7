"""Audio reading on PyAV: the audio stream of a video container, or a sidecar audio file
(wav, flac, mp3, ogg, ...), as float32 at a requested rate, aligned to video time.

Alignment convention
--------------------
The returned signal ``y`` is on the *video* timeline of :mod:`musicperf.io.video`: ``y[..., i]``
is the sound at video time ``start + i / sr`` seconds. For a video container, the audio
stream's own start time is placed relative to the video stream's start, as the container
says. ``offset`` then shifts the audio further: it is the video time, in seconds, of the
audio's first sample. ``offset = +2.0`` means the recorder started 2 s *after* video time 0
(the first 2 s are returned as silence); ``offset = -1.5`` means it started 1.5 s *before*
(the first 1.5 s of the recording are skipped). Audio that ends early is not padded at the end.

Known limitation: MP3 encoder delay (priming samples, typically ~1105 samples = 25 ms at
44.1 kHz) is kept, as ffmpeg decodes MP3 inside AVI without gapless metadata.

Must not import torch, librosa, OpenCV or matplotlib at module level.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from musicperf.errors import DecodeError, NoAudioError, ParameterError, require
from musicperf.io.video import _ffmpeg_reason, open_container

logger = logging.getLogger(__name__)

__all__ = ["load_audio", "has_audio"]

#: Seek instead of decoding from the start when the wanted part begins this many seconds in.
_SEEK_AFTER = 5.0


def has_audio(path) -> bool:
    """Whether a media file has an audio stream.

    Raises
    ------
    DecodeError
        The file is missing, empty or not a media file.
    """
    container = open_container(path)
    try:
        return bool(container.streams.audio)
    finally:
        container.close()


def load_audio(path, *, sr: int = 48000, mono: bool = True, offset: float = 0.0,
               duration: float | None = None, start: float = 0.0) -> tuple[np.ndarray, int]:
    """Decode audio from a video container or an audio file, resampled and aligned to video time.

    Parameters
    ----------
    path : str or Path
        Video container (its first audio stream is used) or audio file.
    sr : int
        Output sample rate in Hz (resampled with libswresample).
    mono : bool
        Average all channels into one (``(L + R) / 2`` for stereo).
    offset : float
        Seconds: video time of the audio's first sample (see the module docstring for the
        sign). 0 for the container's own audio track.
    duration : float or None
        Seconds of video time to return from ``start``; None returns everything.
    start : float
        Video time in seconds of the first returned sample.

    Returns
    -------
    y : np.ndarray, float32, shape (n,) if ``mono`` else (channels, n)
        Samples in [-1, 1]; ``y[..., i]`` is at video time ``start + i / sr`` s.
    sr : int
        The sample rate of ``y`` (the one requested).

    Raises
    ------
    DecodeError
        Missing, empty or unreadable file, or no audio stream ("has no audio stream").
    ParameterError
        Non-positive ``sr``, negative ``duration`` or ``start``.

    Examples
    --------
    >>> y, sr = load_audio("pianist.avi", sr=22050)   # doctest: +SKIP
    >>> y.shape, y.dtype                               # doctest: +SKIP
    ((2151360,), dtype('float32'))
    """
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ParameterError(f"sample rate must be a positive int in Hz, got {sr!r}")
    if duration is not None and duration < 0:
        raise ParameterError(f"duration must be >= 0 seconds, got {duration}")
    if start < 0:
        raise ParameterError(f"start must be >= 0 seconds, got {start}")
    av = require("av", purpose="reading audio")
    path = Path(path)
    container = open_container(path)
    try:
        if not container.streams.audio:
            raise NoAudioError(f"'{path}': has no audio stream")
        stream = container.streams.audio[0]
        channels = int(stream.codec_context.channels) or 1
        # Where the audio's first sample sits on the video timeline.
        a_start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        v_origin = 0.0
        if container.streams.video:
            v = container.streams.video[0]
            if v.start_time is not None:
                v_origin = float(v.start_time * v.time_base)
        place = (a_start - v_origin) + float(offset)
        # Wanted span in the audio's own seconds (0 = its first sample).
        want_from = start - place
        want_to = None if duration is None else start + duration - place
        pad_front = int(round(max(0.0, -want_from) * sr))
        n_want = None if duration is None else int(round(duration * sr))
        first = int(round(max(0.0, want_from) * sr))       # first output sample index wanted
        last = None if want_to is None else max(first, int(round(want_to * sr)))
        chunks: list[np.ndarray] = []
        if last is None or last > first:
            chunks = _decode_span(av, container, stream, path, sr=sr, first=first, last=last,
                                  a_start=a_start, seek_to=max(0.0, want_from))
    finally:
        container.close()
    body = np.concatenate(chunks, axis=1) if chunks else np.zeros((channels, 0), np.float32)
    if body.shape[0] != channels:  # decoders may change layout midway; keep the first
        channels = body.shape[0]
    if pad_front:
        body = np.concatenate([np.zeros((channels, pad_front), np.float32), body], axis=1)
    if n_want is not None:
        body = body[:, :n_want]
    y = body.mean(axis=0, dtype=np.float64).astype(np.float32) if mono else body
    return np.ascontiguousarray(y), int(sr)


def _decode_span(av, container, stream, path: Path, *, sr: int, first: int, last: int | None,
                 a_start: float, seek_to: float) -> list[np.ndarray]:
    """Decode and resample; return ``(channels, k)`` float32 pieces covering output samples
    ``first`` to ``last`` (exclusive, None = to the end), indices counted from the audio's
    first sample at rate ``sr``."""
    resampler = av.AudioResampler(format="fltp", rate=sr)
    base = None       # output pts (1/sr) of the audio's first sample
    if seek_to > _SEEK_AFTER:
        target = int((a_start + seek_to - 1.0) / float(stream.time_base))
        try:
            container.seek(max(0, target), stream=stream, backward=True)
        except av.error.FFmpegError as exc:
            raise DecodeError(f"'{path}': cannot seek in audio ({_ffmpeg_reason(exc)})") from exc
        base = int(round(a_start * sr))
    chunks: list[np.ndarray] = []
    pos = None        # output index of the next resampled sample
    failed = 0
    demux_error = None

    def take(frames):
        nonlocal pos, base
        for out in frames:
            arr = out.to_ndarray()
            if arr.ndim == 1:
                arr = arr[None, :]
            if pos is None:
                if base is None:
                    base = out.pts if out.pts is not None else 0
                pos = (out.pts - base) if out.pts is not None else 0
            lo, hi = pos, pos + arr.shape[1]
            pos = hi
            a = max(lo, first)
            b = hi if last is None else min(hi, last)
            if b > a:
                chunks.append(arr[:, a - lo:b - lo].astype(np.float32, copy=False))
            if last is not None and pos >= last:
                return True
        return False

    demux = container.demux(stream)
    done = False
    while not done:
        try:
            packet = next(demux)
        except StopIteration:
            break
        except av.error.FFmpegError as exc:
            demux_error = _ffmpeg_reason(exc)
            break
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            failed += 1
            continue
        for frame in frames:
            if take(resampler.resample(frame)):
                done = True
                break
    if not done:
        take(resampler.resample(None))
    if failed or demux_error:
        why = f"; reading stopped: {demux_error}" if demux_error else ""
        logger.warning("'%s': %d audio packet(s) could not be decoded%s", path, failed, why)
    return chunks
