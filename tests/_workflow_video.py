"""A tiny synthetic "performance" for the workflow tests: known gestures, known pixels.

Class ``Wave`` is a bright square oscillating in the top-left quarter, class ``Nod`` a square
moving up and down in the bottom-right quarter; outside their intervals the squares rest
in place. Written with PyAV (libx264), small and fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def schedule(seconds: float, rng: np.random.Generator) -> dict[str, list[tuple[float, float]]]:
    """Alternating random intervals of 0.8-2 s per class, covering about 40 % of the time."""
    out = {}
    for name in ("Wave", "Nod"):
        t, iv = rng.uniform(0.2, 1.0), []
        while t < seconds - 1.0:
            d = rng.uniform(0.8, 2.0)
            iv.append((round(t, 2), round(min(t + d, seconds), 2)))
            t += d + rng.uniform(0.8, 2.5)
        out[name] = iv
    return out


def write_video(path: Path, seconds: float, events: dict, *, fps: float = 25.0, size=(64, 80)) -> Path:
    import av

    h, w = size
    n = int(round(seconds * fps))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=int(fps) if float(fps).is_integer() else fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for i in range(n):
            t = i / fps
            img = np.full((h, w, 3), 40, np.uint8)
            active = {k: any(s <= t < e for s, e in iv) for k, iv in events.items()}
            dx = int(6 * np.sin(2 * np.pi * 3 * t)) if active.get("Wave") else 0
            img[8:20, 10 + dx : 22 + dx] = (250, 200, 60)
            dy = int(6 * np.sin(2 * np.pi * 2 * t)) if active.get("Nod") else 0
            img[h - 22 + dy : h - 10 + dy, w - 22 : w - 10] = (60, 200, 250)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_performance(folder: Path, name: str, seconds: float, seed: int, *, fps: float = 25.0) -> tuple[Path, Path, dict]:
    """Video + EAF with tiers ``Wave`` and ``Nod``; returns ``(video, eaf, events)``."""
    from musicperf.io.annotations import Annotation, AnnotationSet, Tier
    from musicperf.io.elan import write_eaf

    folder.mkdir(parents=True, exist_ok=True)
    events = schedule(seconds, np.random.default_rng(seed))
    video = write_video(folder / f"{name}.mp4", seconds, events, fps=fps)
    aset = AnnotationSet(tiers={k: Tier(k, [Annotation(s, e, k) for s, e in iv]) for k, iv in events.items()})
    eaf = folder / f"{name}.eaf"
    write_eaf(aset, eaf, media=video)
    return video, eaf, events
