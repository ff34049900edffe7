"""Frame-difference motion features (the Musical Gestures Toolbox's ``motion()`` outputs) and fast
dense optical flow, streamed from the video in one pass.

Motion (:func:`motion_features`), per frame ``t >= 1``, from the absolute difference of frames
``t - 1`` and ``t`` (each colour channel, or grey), with differences below ``threshold`` (a
fraction of 255) set to 0 (MGT's "Regular" filter):

* quantity of motion ``qom``: the sum of the grey motion image, in grey levels (MGT's raw
  ``QoM``); ``qom_norm`` divides it by ``255 * H * W`` (the fraction of the picture that changed,
  weighted by how much);
* centroid of motion ``com``: ``(x, y)`` in pixels of the motion-weighted mean position, with
  ``y`` counted upwards from the bottom as in MGT (0, 0 when nothing moved);
* motiongrams: ``motiongram_x`` (mean of the motion image over rows, one line of width ``W``
  per frame) and ``motiongram_y`` (mean over columns, one line of height ``H``).

Frame 0 has no predecessor; its row is zero. Only the previous frame is held while streaming,
so memory grows only with the outputs (``T * (W + H) * 3`` bytes of motiongrams).

Dense flow (:func:`dense_flow`): OpenCV's DIS optical flow (Kroeger et al. 2016; presets
``"ultrafast"``, ``"fast"``, ``"medium"``) or Farneback (as :mod:`musicperf.features.flow`) on
grey frames resized to ``size``, reduced per frame to the mean magnitude and a direction
histogram; the fields themselves go to an optional callback, never into memory all at once.

Imports numpy at module level; OpenCV and PyAV inside functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicperf.errors import ParameterError, require

__all__ = ["MotionData", "motion_features", "motion_from_frames", "FlowSummary", "dense_flow", "FLOW_METHODS"]

FLOW_METHODS = ("dis-ultrafast", "dis-fast", "dis-medium", "farneback")


def _cv2():
    return require("cv2", package="opencv-contrib-python", extra="landmarks", purpose="motion features")


@dataclass
class MotionData:
    """Per-frame motion of a video.

    Attributes
    ----------
    times : np.ndarray, shape (T,), float64
        Seconds.
    qom : np.ndarray, shape (T,), float64
        Quantity of motion: sum of the thresholded grey difference image, grey levels.
    qom_norm : np.ndarray, shape (T,), float64
        ``qom / (255 * H * W)``, in [0, 1].
    com : np.ndarray, shape (T, 2), float64
        Centroid of motion ``(x, y)`` in pixels, ``y`` upwards from the bottom edge.
    motiongram_x : np.ndarray, shape (T, W, C), uint8
        Motion averaged over rows (``C`` = 3 in colour, 1 in grey).
    motiongram_y : np.ndarray, shape (T, H, C), uint8
        Motion averaged over columns.
    fps : float
    meta : dict
        Parameters, frame size, seconds and frames per second of the computation.
    """

    times: np.ndarray
    qom: np.ndarray
    qom_norm: np.ndarray
    com: np.ndarray
    motiongram_x: np.ndarray
    motiongram_y: np.ndarray
    fps: float
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)


def _check_threshold(threshold: float) -> None:
    if not 0.0 <= threshold < 1.0:
        raise ParameterError(f"threshold must be in [0, 1) (a fraction of 255 grey levels), got {threshold}")


class _MotionAccumulator:
    """Streams frames in, keeps the previous frame and per-frame results."""

    def __init__(self, *, threshold: float, color: bool):
        _check_threshold(threshold)
        self.cv2 = _cv2()
        self.level = int(np.floor(threshold * 255))
        self.color = color
        self.prev = None
        self.qom, self.com, self.gx, self.gy = [], [], [], []
        self.shape = None
        self._weights = np.array([0.299, 0.587, 0.114])  # RGB -> grey (ITU-R BT.601)

    def add(self, frame: np.ndarray) -> None:
        cv2 = self.cv2
        if self.color:
            if frame.ndim != 3 or frame.shape[-1] != 3:
                raise ParameterError(f"colour motion needs (H, W, 3) frames, got {frame.shape}")
        elif frame.ndim == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if self.shape is None:
            self.shape = frame.shape
        elif frame.shape != self.shape:
            raise ParameterError(f"frame of shape {frame.shape} after frames of shape {self.shape}")
        h, w = frame.shape[:2]
        c = 3 if self.color else 1
        if self.prev is None:
            motion = np.zeros(frame.shape, np.uint8)
        else:
            motion = cv2.absdiff(frame, self.prev)
            # "Regular" filter: differences below the threshold are noise and become 0.
            cv2.threshold(motion, self.level, 0, cv2.THRESH_TOZERO, dst=motion)
        self.prev = frame
        # Exact integer row and column sums per channel plane (summing an interleaved (H, W, 3)
        # array along rows is many times slower than summing three contiguous planes); the grey
        # sums are the BT.601-weighted channel sums, grey being linear in the channels.
        planes = cv2.split(motion) if c > 1 else (motion,)
        col_sum = np.stack([p.sum(axis=0, dtype=np.uint32) for p in planes], axis=1).astype(np.float64)  # (W, C)
        row_sum = np.stack([p.sum(axis=1, dtype=np.uint32) for p in planes], axis=1).astype(np.float64)  # (H, C)
        weights = self._weights if self.color else np.ones(1)
        g_cols = col_sum @ weights  # (W,)
        g_rows = row_sum @ weights  # (H,)
        total = float(g_cols.sum())
        if total > 0:
            cx = float(np.dot(np.arange(w), g_cols) / total)
            cy = float(np.dot(np.arange(h), g_rows) / total)
            com = (cx, h - cy)  # y upwards, as MGT reports it
        else:
            com = (0.0, 0.0)
        col_mean, row_mean = col_sum / h, row_sum / w
        self.qom.append(total)
        self.com.append(com)
        self.gx.append(np.rint(col_mean).astype(np.uint8))
        self.gy.append(np.rint(row_mean).astype(np.uint8))

    def result(self, times, fps: float, meta: dict) -> MotionData:
        if self.shape is None:
            raise ParameterError("no frames to compute motion from")
        h, w = self.shape[:2]
        qom = np.asarray(self.qom, dtype=np.float64)
        return MotionData(
            times=np.asarray(times, dtype=np.float64),
            qom=qom,
            qom_norm=qom / (255.0 * h * w),
            com=np.asarray(self.com, dtype=np.float64).reshape(-1, 2),
            motiongram_x=np.stack(self.gx),
            motiongram_y=np.stack(self.gy),
            fps=float(fps),
            meta={**meta, "width": w, "height": h},
        )


def motion_from_frames(frames: np.ndarray, *, fps: float, threshold: float = 0.05, color: bool = True) -> MotionData:
    """Motion features of frames already in memory (see the module docstring).

    Parameters
    ----------
    frames : np.ndarray, shape (T, H, W, 3) or (T, H, W), uint8
        RGB (or grey) frames.
    fps : float
        Frames per second (for the times).
    threshold : float
        Differences below ``threshold * 255`` are set to 0 (MGT's default 0.05).
    color : bool
        Difference each colour channel (MGT's default) or the grey picture.

    Returns
    -------
    MotionData
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or len(frames) == 0:
        raise ParameterError(f"frames must be a non-empty (T, H, W[, 3]) uint8 array, got {frames.dtype} {frames.shape}")
    if not fps > 0:
        raise ParameterError(f"fps must be positive, got {fps}")
    acc = _MotionAccumulator(threshold=threshold, color=color and frames.ndim == 4)
    for f in frames:
        acc.add(f)
    return acc.result(np.arange(len(frames)) / fps, fps, {"threshold": threshold, "color": acc.color})


def motion_features(
    video: str | Path,
    *,
    threshold: float = 0.05,
    color: bool = True,
    size: tuple[int, int] | None = None,
    start: float = 0.0,
    end: float | None = None,
) -> MotionData:
    """Quantity and centroid of motion and motiongrams of a video, in one streamed pass.

    The same quantities as the Musical Gestures Toolbox's ``MgVideo(...).motion()`` (its data
    file and motiongrams; no motion video or plot is written). Decoding is threaded; frames
    stay in native resolution unless ``size`` is given.

    Parameters
    ----------
    video : str or Path
    threshold : float
        Differences below ``threshold * 255`` are set to 0.
    color : bool
        Colour differences (MGT's default) or grey.
    size : (int, int), optional
        ``(height, width)`` to resize frames to first (faster; pixel units change with it).
    start, end : float
        Seconds.

    Returns
    -------
    MotionData
    """
    from musicperf.features.fastpath import decode_frames
    from musicperf.io.video import probe

    _check_threshold(threshold)
    t0 = time.perf_counter()
    info = probe(video)
    acc = _MotionAccumulator(threshold=threshold, color=color)
    times = []
    if color or size is not None:
        frames = decode_frames(video, size=size, start=start, end=end)
    else:
        frames = _grey_frames(video, start=start, end=end)
    for t, frame in frames:
        acc.add(frame)
        times.append(t)
    seconds = time.perf_counter() - t0
    meta = {"threshold": threshold, "color": color, "size": size, "seconds": round(seconds, 3),
            "frames_per_second": round(len(times) / seconds, 1) if seconds > 0 else None}
    return acc.result(times, info.fps, meta)


def _grey_frames(video, *, start: float, end: float | None, size: tuple[int, int] | None = None):
    """``(t, (H, W) uint8)``: the luma plane (no colour conversion at all), optionally resized."""
    from musicperf.io.video import VideoReader

    cv2 = _cv2()
    with VideoReader(video) as reader:
        rotation = reader.info.rotation if reader.info is not None else 0
        for t, frame in reader._frames(float(start), end, size=None, convert=False):
            if frame.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuv444p", "gray"):
                p = frame.planes[0]
                y = np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[: frame.height, : frame.width]
            else:
                y = frame.to_ndarray(format="gray")
            if size is not None:
                hs, ws = (size[1], size[0]) if rotation in (90, 270) else size
                y = cv2.resize(y, (ws, hs), interpolation=cv2.INTER_AREA)
            if rotation:
                y = np.rot90(y, k=-(rotation // 90))
            yield t, np.ascontiguousarray(y)


# --------------------------------------------------------------------------- dense flow
@dataclass
class FlowSummary:
    """Per-frame summary of dense optical flow.

    Attributes
    ----------
    times : np.ndarray, shape (T,)
        Seconds.
    magnitude : np.ndarray, shape (T,), float32
        Mean flow magnitude in pixels per frame at the flow resolution (0 for frame 0).
    histogram : np.ndarray, shape (T, bins), float32
        Share of flow magnitude per direction (0 = image right, counter-clockwise on screen).
    meta : dict
    """

    times: np.ndarray
    magnitude: np.ndarray
    histogram: np.ndarray
    meta: dict = field(default_factory=dict)


def _flow_function(method: str, cv2):
    if method == "farneback":
        from musicperf.features.flow import farneback

        return farneback
    preset = {"dis-ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "dis-fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
              "dis-medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[method]
    dis = cv2.DISOpticalFlow_create(preset)
    return lambda a, b: dis.calc(a, b, None)


def dense_flow(
    video: str | Path,
    *,
    method: str = "dis-fast",
    size: tuple[int, int] | None = (240, 320),
    bins: int = 8,
    start: float = 0.0,
    end: float | None = None,
    on_flow: Callable[[int, np.ndarray], None] | None = None,
) -> FlowSummary:
    """Dense optical flow of every consecutive frame pair, streamed.

    Parameters
    ----------
    video : str or Path
    method : {"dis-ultrafast", "dis-fast", "dis-medium", "farneback"}
        DIS presets trade accuracy for speed (measured on ``pianist.avi`` at 320 x 240 in
        docs/performance.md); Farneback uses :data:`musicperf.features.flow.FARNEBACK`.
    size : (int, int) or None
        ``(height, width)`` of the grey frames the flow is computed on; None: native.
    bins : int
        Direction bins of the histogram.
    on_flow : callable, optional
        Called as ``on_flow(t_index, flow)`` with each ``(H, W, 2)`` float32 field (pixels per
        frame), e.g. to write a flow video; fields are not kept.

    Returns
    -------
    FlowSummary
    """
    if method not in FLOW_METHODS:
        raise ParameterError(f"method must be one of {', '.join(FLOW_METHODS)}, got {method!r}")
    if bins < 1:
        raise ParameterError(f"bins must be >= 1, got {bins}")
    cv2 = _cv2()
    flow_fn = _flow_function(method, cv2)
    t0 = time.perf_counter()
    times, mags, hists = [], [], []
    prev = None
    for i, (t, grey) in enumerate(_grey_frames(video, start=start, end=end, size=size)):
        times.append(t)
        if prev is None:
            mags.append(0.0)
            hists.append(np.zeros(bins, np.float32))
        else:
            flow = flow_fn(prev, grey)
            mag, ang = cv2.cartToPolar(flow[..., 0], -flow[..., 1])  # y up: counter-clockwise on screen
            total = float(mag.sum())
            mags.append(total / mag.size)
            idx = np.minimum((ang * (bins / (2 * np.pi))).astype(np.int32), bins - 1)
            h = np.bincount(idx.ravel(), weights=mag.ravel(), minlength=bins).astype(np.float32)
            hists.append(h / total if total > 0 else np.zeros(bins, np.float32))
            if on_flow is not None:
                on_flow(i, flow)
        prev = grey
    seconds = time.perf_counter() - t0
    return FlowSummary(
        times=np.asarray(times, dtype=np.float64),
        magnitude=np.asarray(mags, dtype=np.float32),
        histogram=np.stack(hists) if hists else np.zeros((0, bins), np.float32),
        meta={"method": method, "size": size, "bins": bins, "seconds": round(seconds, 3),
              "frames_per_second": round(len(times) / seconds, 1) if seconds > 0 else None},
    )
