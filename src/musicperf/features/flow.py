"""Dense optical-flow motion features (OpenCV Farneback): the visual representation for when
landmarks fail (no body found, heavy occlusion).

Per frame pair, the flow field ``(H, W, 2)`` (pixels per frame) is reduced to:

* ``energy``: mean flow magnitude over the picture, in frame heights per second;
* region energies: the same over each region: body regions from landmarks when given
  (head, torso, left hand, right hand: boxes around those points, see :func:`body_regions`),
  else the cells of a ``grid x grid`` split of the picture;
* a motion histogram: the share of flow magnitude in each of ``bins`` directions (0 = to the
  image right, counter-clockwise on screen), 0 when nothing moves.

Frames are resized (default 320 x 240) and turned to grey before the flow; the first frame,
which has no predecessor, copies the second's features.

Imports numpy at module level; OpenCV (``cv2``, from ``opencv-python`` or
``opencv-contrib-python``) inside functions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicperf.errors import DecodeError, ParameterError, require

log = logging.getLogger(__name__)

__all__ = ["FlowFeatures", "farneback", "flow_features", "orientation_histogram", "region_energy", "body_regions",
           "FLOW_VERSION", "FARNEBACK"]

FLOW_VERSION = "farneback-v1"

#: OpenCV's Farneback parameters (its documentation's example values, one pyramid level more
#: for motions of a few pixels at 320 x 240).
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)

REGIONS = ("head", "torso", "left_hand", "right_hand")


def _cv2():
    return require("cv2", package="opencv-contrib-python", extra="landmarks", purpose="optical flow")


@dataclass
class FlowFeatures:
    """Per-frame optical-flow features of a video.

    Attributes
    ----------
    values : np.ndarray, shape (T, F), float32
    names : list of str
    times : np.ndarray, shape (T,)
    fps : float
    meta : dict
        Parameters, size, seconds taken and ``frames_per_second`` of the flow computation.
    """

    values: np.ndarray
    names: list
    times: np.ndarray
    fps: float
    meta: dict = field(default_factory=dict)


def farneback(prev: np.ndarray, nxt: np.ndarray, **params) -> np.ndarray:
    """Dense flow from grey frame ``prev`` to ``nxt`` (Farneback): musicperf's one dense-flow helper.

    Every dense flow of the package goes through here (motion features, playing detection,
    region motion), so the parameters are named and checked in one place.

    Parameters
    ----------
    prev, nxt : np.ndarray, shape (H, W), uint8
    **params
        OpenCV's parameters (``pyr_scale, levels, winsize, iterations, poly_n, poly_sigma,
        flags``) that differ from :data:`FARNEBACK`.

    Returns
    -------
    np.ndarray, shape (H, W, 2), float32
        ``(dx, dy)`` in pixels per frame: where each pixel of ``prev`` moved to in ``nxt``.
    """
    cv2 = _cv2()
    if prev.shape != nxt.shape or prev.ndim != 2:
        raise ParameterError(f"farneback needs two grey frames of one shape, got {prev.shape} and {nxt.shape}")
    unknown = set(params) - set(FARNEBACK)
    if unknown:
        raise ParameterError(f"unknown Farneback parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(FARNEBACK)}")
    return cv2.calcOpticalFlowFarneback(prev, nxt, None, **{**FARNEBACK, **params})


def orientation_histogram(flow: np.ndarray, *, bins: int = 8, min_magnitude: float = 0.1) -> np.ndarray:
    """Magnitude-weighted histogram of flow directions, normalised to sum 1 (0 when still).

    Parameters
    ----------
    flow : np.ndarray, shape (H, W, 2)
    bins : int
        Direction bins; bin 0 is centred on 0 rad (to the image right), angles counter-clockwise
        on screen (``atan2(-dy, dx)``, since image y points down).
    min_magnitude : float
        Pixels per frame below which a pixel counts as still.

    Returns
    -------
    np.ndarray, shape (bins,)
    """
    dx, dy = flow[..., 0].ravel(), flow[..., 1].ravel()
    mag = np.hypot(dx, dy)
    keep = mag >= min_magnitude
    if not keep.any():
        return np.zeros(bins)
    ang = np.arctan2(-dy[keep], dx[keep])
    idx = np.floor((ang + np.pi / bins) / (2 * np.pi / bins)).astype(int) % bins
    h = np.bincount(idx, weights=mag[keep], minlength=bins)
    return h / h.sum()


def region_energy(flow: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Mean flow magnitude in each box.

    Parameters
    ----------
    flow : np.ndarray, shape (H, W, 2)
    boxes : np.ndarray, shape (R, 4)
        ``(x0, y0, x1, y1)`` in pixels of the flow field; NaN rows give NaN.

    Returns
    -------
    np.ndarray, shape (R,)
        Pixels per frame.
    """
    H, W = flow.shape[:2]
    mag = np.hypot(flow[..., 0], flow[..., 1])
    out = np.full(len(boxes), np.nan)
    for r, b in enumerate(np.asarray(boxes, dtype=float)):
        if not np.isfinite(b).all():
            continue
        x0, y0 = int(max(0, np.floor(b[0]))), int(max(0, np.floor(b[1])))
        x1, y1 = int(min(W, np.ceil(b[2]))), int(min(H, np.ceil(b[3])))
        if x1 > x0 and y1 > y0:
            out[r] = float(mag[y0:y1, x0:x1].mean())
    return out


def _box(points: np.ndarray, margin: float) -> np.ndarray:
    p = points[np.isfinite(points).all(axis=1)]
    if len(p) == 0:
        return np.full(4, np.nan)
    lo, hi = p.min(axis=0), p.max(axis=0)
    pad = margin * max(hi[0] - lo[0], hi[1] - lo[1], 1.0) + margin * 10
    return np.array([lo[0] - pad, lo[1] - pad, hi[0] + pad, hi[1] + pad])


def body_regions(lm, frame: int, *, width: int, height: int, margin: float = 0.25) -> np.ndarray:
    """Boxes ``(4, 4)`` for head, torso, left hand, right hand of one frame, in pixels of a
    ``width x height`` picture (NaN rows where the part is missing).

    Head: face-mesh points, else the pose's face points (0-10); torso: shoulders and hips
    (11, 12, 23, 24); hands: the hand's 21 points, else the pose's wrist, pinky, index and
    thumb (15/17/19/21 left, 16/18/20/22 right).
    """
    sx, sy = width, height
    pose = lm.pose[frame, :, :2] * [sx, sy]
    face = lm.face[frame, :, :2] * [sx, sy]
    head = face if np.isfinite(face).all(axis=1).any() else pose[:11]
    boxes = [_box(head, margin), _box(pose[[11, 12, 23, 24]], 0.1)]
    for hand, idx in ((lm.left_hand, [15, 17, 19, 21]), (lm.right_hand, [16, 18, 20, 22])):
        h = hand[frame, :, :2] * [sx, sy]
        boxes.append(_box(h if np.isfinite(h).all(axis=1).any() else pose[idx], margin))
    return np.stack(boxes)


def flow_features(
    video: str | Path,
    *,
    size: tuple[int, int] = (240, 320),
    grid: int = 3,
    bins: int = 8,
    landmarks=None,
    start: float = 0.0,
    end: float | None = None,
    max_frames: int | None = None,
    progress: bool = False,
    cache: bool = True,
    cache_dir: str | Path | None = None,
) -> FlowFeatures:
    """Farneback optical-flow features of every frame of ``video``.

    Parameters
    ----------
    video : str or Path
    size : (int, int)
        ``(height, width)`` frames are resized to before the flow.
    grid : int
        Region grid per side when no ``landmarks`` are given.
    bins : int
        Direction bins of the motion histogram.
    landmarks : Landmarks, optional
        Per-frame landmarks of the same video: region energies are then taken over the head,
        torso and hands (:func:`body_regions`) instead of grid cells.
    start, end, max_frames, progress, cache, cache_dir
        As :func:`musicperf.features.landmarks.extract_landmarks`.

    Returns
    -------
    FlowFeatures
        ``values`` columns: ``energy``, then ``region_<name>`` (grid ``r<i>c<j>`` or body
        regions), then ``hist_<k>``. Energies in frame heights per second.
    """
    if grid < 1 or bins < 2:
        raise ParameterError(f"grid must be >= 1 and bins >= 2, got grid={grid}, bins={bins}")
    video = Path(video)
    if not video.is_file():
        raise DecodeError(f"video '{video}' does not exist")
    _cv2()
    params = {"size": list(size), "grid": grid, "bins": bins, "start": start, "end": end, "max_frames": max_frames,
              "farneback": FARNEBACK, "body_regions": landmarks is not None}
    if landmarks is not None:
        cache = False  # the regions depend on the landmark array, not only on the video

    def compute():
        f = _compute(video, params=params, landmarks=landmarks, progress=progress)
        return {"values": f.values, "times": f.times}, {"names": f.names, "fps": f.fps, **f.meta}

    from musicperf.features.cache import cached

    arrays, meta, _ = cached(video, extractor="flow", version=FLOW_VERSION, params=params, compute=compute,
                             cache_dir=cache_dir, use_cache=cache)
    meta = dict(meta)
    names = meta.pop("names")
    fps = meta.pop("fps")
    return FlowFeatures(values=arrays["values"], names=list(names), times=arrays["times"], fps=float(fps), meta=meta)


def _compute(video: Path, *, params: dict, landmarks, progress: bool) -> FlowFeatures:
    cv2 = _cv2()
    from musicperf.io.video import VideoReader

    h, w = params["size"]
    grid, bins = params["grid"], params["bins"]
    if landmarks is None:
        ys, xs = np.linspace(0, h, grid + 1), np.linspace(0, w, grid + 1)
        fixed = np.array([[xs[j], ys[i], xs[j + 1], ys[i + 1]] for i in range(grid) for j in range(grid)])
        rnames = [f"region_r{i}c{j}" for i in range(grid) for j in range(grid)]
    else:
        fixed = None
        rnames = [f"region_{r}" for r in REGIONS]
    names = ["energy", *rnames, *[f"hist_{k}" for k in range(bins)]]
    rows, times = [], []
    t0 = time.perf_counter()
    t_flow = 0.0
    prev = None
    with VideoReader(video, size=(h, w)) as reader:
        fps = reader.info.fps
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=params["max_frames"] or reader.info.n_frames, desc=f"flow {video.name}", unit="frame",
                       leave=False, dynamic_ncols=True)
        for i, (t, frame) in enumerate(reader.frames(params["start"], params["end"])):
            grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            times.append(t)
            if prev is not None:
                t1 = time.perf_counter()
                flow = farneback(prev, grey)
                t_flow += time.perf_counter() - t1
                boxes = fixed if fixed is not None else body_regions(landmarks, min(i, len(landmarks) - 1), width=w, height=h)
                scale = fps / h  # pixels per frame -> frame heights per second
                mag = np.hypot(flow[..., 0], flow[..., 1])
                rows.append(np.concatenate([[mag.mean() * scale], region_energy(flow, boxes) * scale,
                                            orientation_histogram(flow, bins=bins)]))
            prev = grey
            if bar is not None:
                bar.update(1)
            if params["max_frames"] is not None and len(times) >= params["max_frames"]:
                break
        if bar is not None:
            bar.close()
    if not rows:
        values = np.full((len(times), len(names)), np.nan, np.float32)
    else:
        values = np.array([rows[0], *rows], dtype=np.float32)
    n_pairs = max(len(times) - 1, 0)
    total = time.perf_counter() - t0
    meta = {"extractor": "flow", "version": FLOW_VERSION, "params": params, "video": str(video),
            "seconds": round(total, 3), "frames_per_second": round(len(times) / total, 2) if total > 0 else None,
            "flow_pairs_per_second": round(n_pairs / t_flow, 2) if t_flow > 0 else None}
    return FlowFeatures(values=values, names=names, times=np.asarray(times), fps=float(fps), meta=meta)
