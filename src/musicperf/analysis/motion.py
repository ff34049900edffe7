"""Motion measurements inside image regions: dense optical flow, KLT region tracking, speeds.

The analyses of Sections V-B and VI-B of 002 need two kinds of motion signal:

* the average motion vector ``u(t) = [u_x(t), u_y(t)]`` of the pixels inside a (tracked) hand
  region (vibrato, Figure 4), from dense optical flow;
* the average motion *speed* of the pixels inside a few regions (one or more per musician), the
  columns of the motion matrix ``M`` of Equation 2 (source separation), also used for
  playing/non-playing detection and player-to-track association.

OpenCV (Farneback dense flow, ``goodFeaturesToTrack``/``calcOpticalFlowPyrLK``) is imported inside
the functions. Must not import torch or matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from musicperf.errors import ParameterError, require
from musicperf.features.flow import farneback

__all__ = ["Region", "parse_region", "RegionMotion", "region_motion", "auto_downscale", "keypoint_velocity",
           "keypoint_region", "split_region"]


@dataclass(frozen=True)
class Region:
    """An axis-aligned box in pixels: ``x, y`` top-left corner, ``w, h`` size."""

    x: float
    y: float
    w: float
    h: float

    def clip(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Integer ``(x0, y0, x1, y1)`` inside a ``width x height`` image (at least 2x2 pixels)."""
        x0 = int(np.clip(np.floor(self.x), 0, width - 2))
        y0 = int(np.clip(np.floor(self.y), 0, height - 2))
        x1 = int(np.clip(np.ceil(self.x + self.w), x0 + 2, width))
        y1 = int(np.clip(np.ceil(self.y + self.h), y0 + 2, height))
        return x0, y0, x1, y1

    def shifted(self, dx: float, dy: float) -> "Region":
        return Region(self.x + dx, self.y + dy, self.w, self.h)


def parse_region(text: str) -> Region:
    """Parse ``"X,Y,W,H"`` (pixels) into a :class:`Region`; raises :class:`ParameterError`."""
    try:
        x, y, w, h = (float(v) for v in str(text).split(","))
    except ValueError:
        raise ParameterError(f"region must look like X,Y,W,H in pixels, got {text!r}") from None
    if w < 2 or h < 2:
        raise ParameterError(f"region {text!r} is smaller than 2x2 pixels")
    return Region(x, y, w, h)


def split_region(region: Region, grid: int) -> list[Region]:
    """Split a region into ``grid x grid`` equal cells (row-major): the motion clusters of a source."""
    if grid < 1:
        raise ParameterError(f"grid must be >= 1, got {grid}")
    cw, ch = region.w / grid, region.h / grid
    return [Region(region.x + i * cw, region.y + j * ch, cw, ch) for j in range(grid) for i in range(grid)]


def keypoint_region(points: np.ndarray, *, margin: float = 0.5, min_size: float = 8.0) -> Region:
    """The box around key points (e.g. a hand's 21 landmarks), grown by ``margin`` of its size.

    Parameters
    ----------
    points : np.ndarray, shape (T, J, 2) or (J, 2)
        Pixel coordinates; NaN for missing points. With a time axis, the box covers all frames.
    margin : float
        Fraction of the box size added on each side.
    min_size : float
        Minimum width and height in pixels.
    """
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    p = p[np.isfinite(p).all(1)]
    if p.size == 0:
        raise ParameterError("keypoint_region: no finite key points")
    lo, hi = p.min(0), p.max(0)
    size = np.maximum(hi - lo, min_size)
    c = (lo + hi) / 2
    size = size * (1 + 2 * margin)
    return Region(float(c[0] - size[0] / 2), float(c[1] - size[1] / 2), float(size[0]), float(size[1]))


def keypoint_velocity(points: np.ndarray, fps: float) -> np.ndarray:
    """Mean velocity of a group of key points, the landmark counterpart of ``u(t)`` (002, V-B).

    Parameters
    ----------
    points : np.ndarray, shape (T, J, 2)
        Pixel coordinates per frame; NaN where missing.
    fps : float
        Frame rate.

    Returns
    -------
    np.ndarray, shape (T, 2)
        Pixels per frame; row 0 is 0 and missing values are linearly interpolated.
    """
    p = np.asarray(points, dtype=float)
    if p.ndim != 3 or p.shape[-1] != 2:
        raise ParameterError(f"points must have shape (T, J, 2), got {p.shape}")
    with np.errstate(invalid="ignore"):
        c = np.nanmean(p, axis=1) if p.shape[1] else np.full((p.shape[0], 2), np.nan)
    t = np.arange(len(c))
    for k in range(2):
        ok = np.isfinite(c[:, k])
        if not ok.any():
            raise ParameterError("keypoint_velocity: no finite key points")
        c[:, k] = np.interp(t, t[ok], c[ok, k])
    v = np.zeros_like(c)
    v[1:] = np.diff(c, axis=0)
    return v


@dataclass
class RegionMotion:
    """Motion measured inside regions over a frame sequence.

    Attributes
    ----------
    velocity : np.ndarray, shape (T, C, 2)
        Mean optical-flow vector ``[u_x, u_y]`` of the pixels inside each region, pixels per
        frame (row 0 is 0: no previous frame). ``u(t)`` of 002 Section V-B.
    speed : np.ndarray, shape (T, C)
        Mean flow magnitude inside each region (above the noise floor with ``compensate``),
        pixels per frame: the "average motion speed"
        of a motion cluster (the columns of ``M`` in Equation 2 of 002).
    boxes : np.ndarray, shape (T, C, 4)
        ``(x0, y0, x1, y1)`` integer box used in each frame (moves when tracking).
    fps : float
    """

    velocity: np.ndarray
    speed: np.ndarray
    boxes: np.ndarray
    fps: float

    @property
    def times(self) -> np.ndarray:
        """Frame times in seconds, shape (T,)."""
        return np.arange(len(self.speed)) / self.fps


def _gray(frame: np.ndarray) -> np.ndarray:
    f = np.asarray(frame)
    if f.ndim == 2:
        return f.astype(np.uint8)
    if f.ndim != 3 or f.shape[2] != 3:
        raise ParameterError(f"frames must be (H, W, 3) RGB or (H, W) grey, got shape {f.shape}")
    # ITU-R 601 luma, the weights OpenCV uses
    return np.clip(f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114, 0, 255).astype(np.uint8)


def region_motion(frames: Iterable[np.ndarray], regions: Sequence[Region] | Region, *, fps: float,
                  track: bool = False, compensate: bool = False, pyr_scale: float = 0.5, levels: int = 2,
                  winsize: int = 9, max_frames: int | None = None, downscale: int = 1) -> RegionMotion:
    """Dense optical flow (Farneback) averaged inside regions, optionally KLT-tracked.

    Parameters
    ----------
    frames : iterable of np.ndarray, shape (H, W, 3) uint8 RGB (or (H, W) grey)
        Consumed once, streaming (never all in memory).
    regions : Region or sequence of Region
        Boxes in pixels of the first frame.
    fps : float
        Frame rate of ``frames`` (stored in the result).
    track : bool
        Move each box with the median displacement of Shi-Tomasi corners inside it, followed by
        pyramidal Lucas-Kanade (the KLT tracker of 002 V-B) from frame to frame.
    compensate : bool
        Subtract the median flow vector of the area covering all regions from every pixel's
        flow first: camera shake and pans move the whole picture, players do not. Use it with
        large regions (a whole player, half the picture) where the background dominates.
        Speeds are then measured above a noise floor, the 75th percentile of the flow magnitude
        over that area (pixel noise gives every pixel a small random flow; in a large region
        its mean would hide the few pixels of a moving bow).
    pyr_scale, levels, winsize : Farneback parameters
        Small windows keep the flow of thin moving parts (fingers, bow) sharp.
    max_frames : int, optional
        Stop after this many frames.
    downscale : int
        Compute the flow on frames shrunk by this factor (area averaging), then report
        velocities, speeds and boxes in the frames' own pixels. Flow costs about the square of
        the factor less. For whole-player regions of a large frame (see
        :func:`auto_downscale`) the speed's course over time is kept (correlation 0.9999 with
        the full-size flow on a textured bar moving 0-6 px per frame, at factor 2) while its size
        changes by a constant factor (x1.34 there: Farneback's smoothing spreads the flow past the
        bar's edges differently at the two sizes); what uses it is relative (playing/non-playing,
        Equation 2's column-normalised motion, onset correlation). Fine hand motion (vibrato)
        needs every pixel: 1 (the default) keeps them.

    Returns
    -------
    RegionMotion
    """
    cv2 = require("cv2", extra="analysis", purpose="optical flow")
    regs = [regions] if isinstance(regions, Region) else list(regions)
    if not regs:
        raise ParameterError("region_motion: give at least one region")
    k = int(downscale)
    if k < 1:
        raise ParameterError(f"region_motion: downscale must be an integer >= 1, got {downscale}")
    cur = list(regs)
    prev = None
    vel, spd, boxes = [], [], []
    for i, frame in enumerate(frames):
        if max_frames is not None and i >= max_frames:
            break
        g = _gray(frame)
        H0, W0 = g.shape
        if k > 1:
            g = cv2.resize(g, (max(W0 // k, 1), max(H0 // k, 1)), interpolation=cv2.INTER_AREA)
        H, W = g.shape
        small = [Region(r.x / k, r.y / k, r.w / k, r.h / k) for r in cur] if k > 1 else cur
        if prev is None:
            vel.append(np.zeros((len(cur), 2)))
            spd.append(np.zeros(len(cur)))
            boxes.append([r.clip(W0, H0) for r in cur])
            prev = g
            continue
        if track:
            small = [_klt_shift(cv2, prev, g, r) for r in small]
            cur = [Region(s_.x * k, s_.y * k, r.w, r.h) for s_, r in zip(small, cur)] if k > 1 else small
        bxs = [r.clip(W, H) for r in small]
        # one flow over the union of the boxes (plus a margin) instead of one per box
        ux0 = max(min(b[0] for b in bxs) - 8, 0)
        uy0 = max(min(b[1] for b in bxs) - 8, 0)
        ux1 = min(max(b[2] for b in bxs) + 8, W)
        uy1 = min(max(b[3] for b in bxs) + 8, H)
        flow = farneback(prev[uy0:uy1, ux0:ux1], g[uy0:uy1, ux0:ux1], pyr_scale=pyr_scale, levels=levels,
                         winsize=winsize, poly_sigma=1.1)
        floor = 0.0
        if compensate:
            flow = flow - np.median(flow.reshape(-1, 2), axis=0)
            floor = float(np.percentile(np.hypot(flow[..., 0], flow[..., 1]), 75))
        v_i, s_i = [], []
        for x0, y0, x1, y1 in bxs:
            f = flow[y0 - uy0:y1 - uy0, x0 - ux0:x1 - ux0].reshape(-1, 2)
            v_i.append(f.mean(0))
            s_i.append(float(np.maximum(np.hypot(f[:, 0], f[:, 1]) - floor, 0.0).mean()))
        vel.append(np.array(v_i) * k)
        spd.append(np.array(s_i) * k)
        boxes.append([r.clip(W0, H0) for r in cur] if k > 1 else bxs)
        prev = g
    if not vel:
        raise ParameterError("region_motion: no frames")
    return RegionMotion(velocity=np.asarray(vel, dtype=float), speed=np.asarray(spd, dtype=float),
                        boxes=np.asarray(boxes, dtype=int), fps=float(fps))


def auto_downscale(height: int, target: int = 240) -> int:
    """Integer shrink factor that brings a frame of ``height`` pixels down to about ``target``.

    Used by the commands that average flow over whole players (``playing``, ``separate``,
    ``associate``): 1 up to 479 px, 2 for 480-719 px (e.g. 640x480), 4 for 1080 px.
    """
    return max(1, int(height) // int(target))


def _klt_shift(cv2, prev: np.ndarray, cur: np.ndarray, region: Region) -> Region:
    H, W = prev.shape
    x0, y0, x1, y1 = region.clip(W, H)
    mask = np.zeros_like(prev)
    mask[y0:y1, x0:x1] = 255
    pts = cv2.goodFeaturesToTrack(prev, maxCorners=40, qualityLevel=0.01, minDistance=2, mask=mask)
    if pts is None or len(pts) < 3:
        return region
    nxt, st, _err = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, winSize=(11, 11), maxLevel=2)
    ok = st.reshape(-1) == 1
    if ok.sum() < 3:
        return region
    d = np.median((nxt - pts).reshape(-1, 2)[ok], axis=0)
    # keep the box inside the image
    nx = float(np.clip(region.x + d[0], -region.w / 2, W - region.w / 2))
    ny = float(np.clip(region.y + d[1], -region.h / 2, H - region.h / 2))
    return Region(nx, ny, region.w, region.h)
