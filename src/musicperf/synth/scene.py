"""Backgrounds, camera and walking distractors of the synthetic performance.

Backgrounds are drawn once per video at the supersampled resolution with a margin for camera
shake; a frame crops them at the shaken position. Distractors (people-like shapes walking
behind the performer, ``background="cluttered"``) are drawn per frame. Imports numpy and
Pillow (only when called).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BACKGROUNDS = ("plain", "textured", "cluttered")


@dataclass(frozen=True)
class Camera:
    """Seeded camera of one video.

    Attributes
    ----------
    zoom : float
        Multiplies the figure scale (0.88-1.12).
    offset : tuple of float
        Figure anchor shift in output pixels (x, y).
    shake : numpy.ndarray
        ``(T, 2)`` per-frame translation in output pixels, quantised to the supersampling step.
    noise : float
        Standard deviation of the added Gaussian pixel noise (grey levels, 0-255 scale).
    """

    zoom: float
    offset: tuple
    shake: np.ndarray
    noise: float


def make_camera(n_frames: int, fps: float, rng: np.random.Generator, *, shake: float, noise: float,
                size: tuple[int, int], supersample: int) -> Camera:
    """Draw a :class:`Camera`: zoom, anchor offset and a smooth shake of RMS ~``shake`` px."""
    w, h = size
    zoom = float(rng.uniform(0.88, 1.12))
    offset = (float(rng.uniform(-0.05, 0.05) * w), float(rng.uniform(-0.03, 0.03) * h))
    t = np.arange(n_frames) / fps
    sh = np.zeros((n_frames, 2))
    for axis in range(2):
        f = rng.uniform(0.3, 2.5, 5)
        ph = rng.uniform(0, 2 * np.pi, 5)
        sig = sum(np.sin(2 * np.pi * f[i] * t + ph[i]) for i in range(5)) / math.sqrt(5 / 2)
        sh[:, axis] = shake * sig
    sh = np.round(sh * supersample) / supersample
    return Camera(zoom=zoom, offset=offset, shake=sh, noise=float(noise))


def make_background(kind: str, size: tuple[int, int], margin: int, supersample: int, rng: np.random.Generator):
    """Static background as a Pillow RGB image of ``((W + 2 m) * ss, (H + 2 m) * ss)`` pixels.

    ``plain``: one seeded colour with a gentle vertical gradient. ``textured``: a wall with
    low-frequency blotches and stripes over a floor. ``cluttered``: textured plus furniture
    (shelves with books, frames, a plant); the walkers are added per frame.
    """
    from PIL import Image, ImageDraw

    w, h = size
    ss = supersample
    W, H = (w + 2 * margin) * ss, (h + 2 * margin) * ss
    base = rng.uniform(60, 220, 3)
    grad = np.linspace(1.06, 0.92, H)[:, None, None]
    img = np.broadcast_to(base[None, None, :] * grad, (H, W, 3)).copy()
    if kind in ("textured", "cluttered"):
        small = rng.normal(0, 1, (8, 10, 3))
        blot = np.asarray(Image.fromarray(((small - small.min()) / np.ptp(small) * 255).astype(np.uint8)).resize((W, H), Image.BICUBIC), dtype=float)
        img += (blot - 128) * 0.25
        fine = rng.normal(0, 1, (H // 2 + 1, W // 2 + 1))
        img += np.repeat(np.repeat(fine, 2, 0), 2, 1)[:H, :W, None] * 6
        period = int(rng.integers(10, 28)) * ss
        stripes = (np.arange(W) // period) % 2
        img *= (1 - 0.06 * stripes)[None, :, None]
        floor = int(H * rng.uniform(0.72, 0.82))
        floor_col = rng.uniform(40, 160, 3)
        boards = ((np.arange(W)[None, :] + 7 * np.arange(H - floor)[:, None]) // (40 * ss)) % 2
        img[floor:] = floor_col * (0.92 + 0.08 * boards[..., None]) + (img[floor:] - img[floor:].mean()) * 0.2
    img = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if kind == "cluttered":
        d = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(2, 4))):  # shelves with books
            x0 = rng.uniform(0, W * 0.8)
            y0 = rng.uniform(H * 0.08, H * 0.4)
            sw = rng.uniform(0.15, 0.3) * W
            d.rectangle([x0, y0 + 22 * ss, x0 + sw, y0 + 25 * ss], fill=(90, 60, 35))
            x = x0 + 2 * ss
            while x < x0 + sw - 6 * ss:
                bw = rng.uniform(3, 7) * ss
                bh = rng.uniform(12, 21) * ss
                d.rectangle([x, y0 + 22 * ss - bh, x + bw, y0 + 22 * ss], fill=tuple(int(v) for v in rng.uniform(30, 230, 3)))
                x += bw + ss
        for _ in range(int(rng.integers(1, 3))):  # picture frames
            x0, y0 = rng.uniform(0, W * 0.85), rng.uniform(H * 0.05, H * 0.35)
            fw, fh = rng.uniform(20, 40) * ss, rng.uniform(15, 30) * ss
            d.rectangle([x0, y0, x0 + fw, y0 + fh], fill=tuple(int(v) for v in rng.uniform(20, 240, 3)), outline=(40, 30, 20), width=2 * ss)
        px = rng.uniform(0.05, 0.95) * W  # a plant
        py = H * 0.8
        d.rectangle([px - 8 * ss, py - 14 * ss, px + 8 * ss, py], fill=(150, 80, 50))
        for k in range(9):
            a = -math.pi / 2 + (k - 4) * 0.3
            d.line([px, py - 14 * ss, px + math.cos(a) * 30 * ss, py - 14 * ss + math.sin(a) * 30 * ss], fill=(40, 120, 50), width=3 * ss)
    return img


@dataclass(frozen=True)
class Walker:
    """A people-like distractor walking across the background (output pixels, seconds)."""

    x0: float
    speed: float
    feet_y: float
    height: float
    color: tuple
    head_color: tuple
    step_hz: float

    def x(self, t: float, width: int) -> float:
        span = width + 2 * self.height
        return (self.x0 + self.speed * t) % span - self.height


def make_walkers(size: tuple[int, int], rng: np.random.Generator) -> list[Walker]:
    """Two to four walkers at different depths and speeds."""
    w, h = size
    out = []
    for _ in range(int(rng.integers(2, 5))):
        height = float(rng.uniform(0.45, 0.75) * h)
        out.append(Walker(
            x0=float(rng.uniform(0, w + height)), speed=float(rng.choice([-1, 1]) * rng.uniform(15, 40) * w / 320),
            feet_y=float(rng.uniform(0.78, 0.9) * h), height=height,
            color=tuple(int(v) for v in rng.uniform(30, 200, 3)), head_color=tuple(int(v) for v in rng.uniform(90, 230, 3)),
            step_hz=float(rng.uniform(1.4, 2.2)),
        ))
    return out


def draw_walker(draw, wk: Walker, t: float, width: int, ss: int, shift: tuple[float, float]) -> tuple[float, float, float, float]:
    """Draw one walker at time ``t``; returns its box (x0, y0, x1, y1) in output pixels."""
    x = wk.x(t, width) + shift[0]
    fy = wk.feet_y + shift[1]
    hgt = wk.height
    ph = math.sin(2 * math.pi * wk.step_hz * t)
    hip = (x, fy - 0.48 * hgt)
    sh = (x, fy - 0.8 * hgt)
    lw = max(1, int(0.07 * hgt * ss))

    def L(a, b, width=lw, fill=wk.color):
        draw.line([(a[0] * ss, a[1] * ss), (b[0] * ss, b[1] * ss)], fill=fill, width=width)

    for sgn in (1, -1):
        L(hip, (x + sgn * ph * 0.16 * hgt, fy))
        L(sh, (x - sgn * ph * 0.12 * hgt, fy - 0.5 * hgt), width=max(1, int(lw * 0.7)))
    draw.rounded_rectangle([(x - 0.09 * hgt) * ss, sh[1] * ss, (x + 0.09 * hgt) * ss, hip[1] * ss], radius=lw // 2, fill=wk.color)
    r = 0.075 * hgt
    draw.ellipse([(x - r) * ss, (fy - 0.9 * hgt - r) * ss, (x + r) * ss, (fy - 0.9 * hgt + r) * ss], fill=wk.head_color)
    return (x - 0.2 * hgt, fy - hgt, x + 0.2 * hgt, fy)
