"""Drawn landmarks for checking extraction by eye: a contact sheet (PNG) or an overlay video.

Pose in white/yellow (the performer's left side yellow, right side cyan, as seen), face-mesh
points in green, left hand in orange, right hand in magenta; a caption per frame gives the
time and which parts were found (``P F L R``; lower case when missing). Hands found by the
stand-alone detector (the fallback, see :mod:`musicperf.features.landmarks`) are drawn
the same way and marked ``*`` in the caption.

Imports numpy at module level; Pillow (and PyAV for video) inside functions. Never matplotlib.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicperf._util import atomic_path
from musicperf.errors import ParameterError

__all__ = ["draw_landmarks", "contact_sheet", "overlay_video"]

_LEFT, _RIGHT = (255, 210, 0), (0, 220, 255)
_FACE, _LHAND, _RHAND = (60, 230, 90), (255, 140, 0), (255, 60, 220)


def draw_landmarks(frame: np.ndarray, lm, index: int, *, point: float = 2.0) -> np.ndarray:
    """Draw the landmarks of frame ``index`` of ``lm`` onto an RGB ``frame``.

    Parameters
    ----------
    frame : np.ndarray, shape (H, W, 3), uint8
        Any size: normalised coordinates are scaled to it.
    lm : musicperf.features.landmarks.Landmarks
    index : int
    point : float
        Radius of drawn points in pixels.

    Returns
    -------
    np.ndarray, shape (H, W, 3), uint8
    """
    from PIL import Image, ImageDraw

    from musicperf.features.landmarks import HAND_CONNECTIONS, POSE_CONNECTIONS

    img = Image.fromarray(np.ascontiguousarray(frame))
    d = ImageDraw.Draw(img)
    H, W = frame.shape[:2]

    def px(arr):
        return arr[..., :2] * [W, H]

    face = px(lm.face[index])
    for x, y in face[np.isfinite(face).all(axis=1)]:
        d.point((float(x), float(y)), fill=_FACE)
    pose = px(lm.pose[index])
    for a, b in POSE_CONNECTIONS:
        if np.isfinite(pose[[a, b]]).all():
            col = _LEFT if a % 2 == 1 and b % 2 == 1 else _RIGHT if a % 2 == 0 and b % 2 == 0 and a > 0 else (255, 255, 255)
            d.line([tuple(pose[a]), tuple(pose[b])], fill=col, width=2)
    for j, (x, y) in enumerate(pose):
        if np.isfinite([x, y]).all():
            d.ellipse([x - point, y - point, x + point, y + point], fill=(255, 255, 255))
    for hand, col in ((lm.left_hand, _LHAND), (lm.right_hand, _RHAND)):
        h = px(hand[index])
        for a, b in HAND_CONNECTIONS:
            if np.isfinite(h[[a, b]]).all():
                d.line([tuple(h[a]), tuple(h[b])], fill=col, width=2)
        for x, y in h[np.isfinite(h).all(axis=1)]:
            d.ellipse([x - point * 0.7, y - point * 0.7, x + point * 0.7, y + point * 0.7], fill=col)
    return np.asarray(img)


def _caption(lm, i: int) -> str:
    parts = []
    for name, key in (("P", "pose"), ("F", "face"), ("L", "left_hand"), ("R", "right_hand")):
        ok = np.isfinite(lm.part(key)[i, :, 0]).any()
        s = name if ok else name.lower()
        if key.endswith("hand") and lm.hand_source[i, 0 if key == "left_hand" else 1] == 2:
            s += "*"
        parts.append(s)
    return f"{lm.times[i]:.2f} s  " + " ".join(parts)


def _frames_at(video, indices: list[int], *, size=None):
    """Decode the frames at the given indices (streaming, one pass)."""
    from musicperf.io.video import VideoReader

    want = set(indices)
    got = {}
    with VideoReader(video, size=size) as reader:
        for i, (_, frame) in enumerate(reader):
            if i in want:
                got[i] = frame
                if len(got) == len(want):
                    break
    return got


def contact_sheet(video: str | Path, lm, out_path: str | Path, *, n: int = 12, cols: int = 4,
                  thumb_width: int = 320, frames: list[int] | None = None) -> Path:
    """Write a PNG grid of ``n`` frames spread over the video with their landmarks drawn.

    Parameters
    ----------
    video : str or Path
        The video the landmarks were extracted from.
    lm : Landmarks
    out_path : str or Path
        ``.png`` file, written atomically.
    n, cols : int
        Frames and columns.
    thumb_width : int
        Pixels per thumbnail (height follows the aspect ratio).
    frames : list of int, optional
        Frame indices to show instead of ``n`` evenly spread ones.

    Returns
    -------
    Path
    """
    from PIL import Image, ImageDraw

    if len(lm) == 0:
        raise ParameterError(f"no landmark frames to draw for '{video}'")
    if frames is None:
        if n < 1 or cols < 1:
            raise ParameterError(f"n and cols must be >= 1, got {n}, {cols}")
        frames = sorted({int(round(v)) for v in np.linspace(0, len(lm) - 1, min(n, len(lm)))})
    bad = [f for f in frames if not 0 <= f < len(lm)]
    if bad:
        raise ParameterError(f"frame indices {bad[:5]} are outside the {len(lm)} landmark frames")
    tw = int(thumb_width)
    th = max(2, int(round(tw * lm.height / lm.width)))
    got = _frames_at(video, frames, size=(th, tw))
    rows = (len(frames) + cols - 1) // cols
    cap = 16
    sheet = Image.new("RGB", (cols * tw, rows * (th + cap)), (20, 20, 20))
    d = ImageDraw.Draw(sheet)
    for k, i in enumerate(frames):
        if i not in got:
            continue
        img = draw_landmarks(got[i], lm, i)
        x, y = (k % cols) * tw, (k // cols) * (th + cap)
        sheet.paste(Image.fromarray(img), (x, y))
        d.text((x + 4, y + th + 2), f"#{i}  " + _caption(lm, i), fill=(235, 235, 235))
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        sheet.save(tmp, format="PNG")
    return out_path


def overlay_video(video: str | Path, lm, out_path: str | Path, *, max_frames: int | None = None, crf: int = 23) -> Path:
    """Write an H.264 ``.mp4`` of ``video`` with the landmarks drawn on every frame (no audio).

    Parameters
    ----------
    max_frames : int, optional
        Stop after this many frames.
    """
    from musicperf.errors import require
    from musicperf.io.video import VideoReader

    av = require("av", purpose="writing the overlay video")
    out_path = Path(out_path)
    n = len(lm) if max_frames is None else min(len(lm), max_frames)
    with atomic_path(out_path) as tmp, VideoReader(video) as reader:
        with av.open(str(tmp), "w", format="mp4") as out:
            from fractions import Fraction

            stream = out.add_stream("libx264", rate=Fraction(lm.fps).limit_denominator(1001))
            stream.width, stream.height = (lm.width // 2) * 2, (lm.height // 2) * 2
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast"}
            for i, (_, frame) in enumerate(reader):
                if i >= n:
                    break
                img = draw_landmarks(frame, lm, i)[: stream.height, : stream.width]
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return out_path
