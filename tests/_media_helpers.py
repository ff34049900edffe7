"""Writers for tiny synthetic media files used by the io tests (PyAV and soundfile only)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def write_video(path: Path, frames: np.ndarray, *, codec: str = "png", fps: int = 25,
                pix_fmt: str = "rgb24", pts: list[int] | None = None,
                time_base: Fraction | None = None, options: dict | None = None,
                rotation: float | None = None, audio: np.ndarray | None = None,
                audio_rate: int = 48000) -> Path:
    """Write ``frames`` (T, H, W, 3) uint8 RGB to ``path``.

    ``pts``/``time_base`` give explicit (e.g. variable-rate) timestamps; ``rotation`` is the
    counter-clockwise display-matrix angle (ffmpeg's convention); ``audio`` (channels, n)
    float32 adds a PCM audio stream starting at time 0.
    """
    import av

    container = av.open(str(path), "w", options=options or {})
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = pix_fmt
    if time_base is not None:
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
    if rotation is not None:
        stream.set_display_rotation(rotation)
    astream = None
    if audio is not None:
        astream = container.add_stream("pcm_s16le", rate=audio_rate)
        astream.layout = "stereo" if audio.shape[0] == 2 else "mono"
    for i, arr in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
        if pts is not None:
            frame.pts = pts[i]
            frame.time_base = time_base
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    if astream is not None:
        s16 = np.clip(np.round(audio.T * 32767), -32768, 32767).astype(np.int16)
        step = 1024
        for k in range(0, s16.shape[0], step):
            chunk = np.ascontiguousarray(s16[k:k + step].reshape(1, -1))
            af = av.AudioFrame.from_ndarray(chunk, format="s16", layout=astream.layout.name)
            af.sample_rate = audio_rate
            af.pts = k
            af.time_base = Fraction(1, audio_rate)
            for packet in astream.encode(af):
                container.mux(packet)
        for packet in astream.encode():
            container.mux(packet)
    container.close()
    return path


def colour_frames(n: int, h: int = 24, w: int = 32, *, seed: int = 0) -> np.ndarray:
    """``(n, h, w, 3)`` uint8 random pictures, distinct per frame."""
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)
