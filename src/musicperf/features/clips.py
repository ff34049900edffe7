"""Clips of a video and their feature vectors: the streaming front end of the gesture models.

* :func:`iter_clips` streams fixed-length clips on the model's frame grid (resampling a video
  whose frame rate differs), holding only about one clip of frames at a time;
* :class:`FeatureExtractor` turns a batch of clips into feature vectors (the grid statistics of
  :mod:`musicperf.features.clipfeatures`, optionally + a frozen 3D-CNN backbone);
* :func:`clip_features` runs both over a video with decoding in a background thread;
* :func:`estimate_roi` finds the part of the picture where things move.

Imports numpy and the standard library at module level; torch and PyAV inside the functions.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from musicperf.features.clipfeatures import FEATURE_VERSION, grid_features, n_grid_features
from musicperf.features.fastpath import decode_frames, prefetch
from musicperf.io.video import VideoReader, probe


def progress_bar(iterable, *, total=None, desc="", enabled=False, unit="clip"):
    """``tqdm`` over ``iterable`` on stderr when ``enabled``, else ``iterable`` itself."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)


def video_fps(video: Path) -> tuple[float, float]:
    """``(fps, duration in seconds)`` of a video, from :func:`musicperf.io.video.probe`."""
    info = probe(video)
    return float(info.fps), float(info.duration)


def iter_clips(
    video: Path,
    *,
    fps: float,
    size: tuple[int, int],
    length: int,
    stride: int,
    start: float = 0.0,
    end: float | None = None,
    batch: int = 8,
    decode: str = "auto",
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream clips of a video on a frame grid of ``fps`` frames per second, in batches.

    Frames are decoded once, in order, with threads, by
    :func:`musicperf.features.fastpath.decode_frames` (the timestamps of
    :class:`musicperf.io.video.VideoReader`, resizing on the YUV planes). When the
    video's frame rate differs from ``fps`` (the model's) the frames are resampled: grid frame
    ``i`` (time ``i / fps``) is the last video frame shown at that time (sample-and-hold), so a
    clip always spans ``length / fps`` seconds as in training. At equal rates every video frame
    is used once. Only about ``length + stride`` frames are held at any time, so memory does
    not grow with the video's duration.

    Parameters
    ----------
    video : Path
    fps : float
        Frame rate of the clips (the model's), frames per second.
    size : (int, int)
        ``(height, width)`` of the frames.
    length, stride : int
        Frames per clip and between clip starts, on the ``fps`` grid.
    start, end : float
        Only clips lying entirely inside ``[start, end)`` seconds (``end`` None: to the end).
    batch : int
        Clips per yielded batch.
    decode : {"auto", "opencv", "pyav"}
        How frames are converted to RGB (see :func:`~musicperf.features.fastpath.decode_frames`).

    Yields
    ------
    starts : np.ndarray, shape (B,), int64
        First frame index of each clip on the ``fps`` grid.
    clips : np.ndarray, shape (B, length, H, W, 3), uint8
    """
    eps = 1e-6
    first = max(0, int(math.ceil(start * fps - eps)))
    if first % stride:
        first += stride - first % stride
    stop = None if end is None else int(math.floor(end * fps + eps))  # exclusive grid bound
    starts_buf: list[int] = []
    clips_buf: list[np.ndarray] = []
    window: list[np.ndarray] = []  # grid frames window_start, window_start + 1, ...
    state = {"window_start": 0, "next_clip": first}

    def push(frame: np.ndarray):
        window.append(frame)
        while state["next_clip"] + length <= state["window_start"] + len(window):
            if stop is not None and state["next_clip"] + length > stop:
                return
            a = state["next_clip"] - state["window_start"]
            starts_buf.append(state["next_clip"])
            clips_buf.append(np.stack(window[a : a + length]))
            state["next_clip"] += stride
        drop = min(len(window), max(0, state["next_clip"] - state["window_start"]))
        if drop:
            del window[:drop]
            state["window_start"] += drop

    def flush():
        out = (np.asarray(starts_buf, dtype=np.int64), np.stack(clips_buf))
        starts_buf.clear()
        clips_buf.clear()
        return out

    def done() -> bool:
        return stop is not None and state["next_clip"] + length > stop

    prev = None
    last_t = 0.0
    seek = max(0.0, first / fps - 1.0)  # a little before the first clip: sample-and-hold needs it
    grid = int(math.floor(seek * fps + eps))  # next grid frame to fill
    state["window_start"] = grid
    video_rate = video_fps(Path(video))[0] or fps
    period = 1.0 / video_rate
    for t, frame in decode_frames(video, size=size, start=seek, method=decode):
        # Grid frames shown before this video frame repeat the previous video frame.
        while prev is not None and grid / fps < t - eps:
            push(prev)
            grid += 1
            if len(clips_buf) >= batch:
                yield flush()
            if done():
                break
        if done():
            break
        if prev is None:
            # Grid frames before the first decoded frame (start offset) take that frame.
            while grid / fps < t - eps:
                push(frame)
                grid += 1
        prev = frame
        last_t = t
    else:
        # After the last video frame: grid frames until its display ends.
        if prev is not None:
            while grid / fps < last_t + period - eps and not done():
                push(prev)
                grid += 1
                if len(clips_buf) >= batch:
                    yield flush()
    if clips_buf:
        yield flush()



class FeatureExtractor:
    """Turns batches of clips into feature vectors: grid statistics, optionally + a backbone.

    Parameters
    ----------
    config : GestureConfig-like
        Any object with ``grid``, ``size`` and ``clip_length`` (the gesture task's
        :class:`~musicperf.tasks.gestures.GestureConfig`).
    backbone : torch.nn.Module or None
        A frozen :class:`~musicperf.models.ResNet3D` whose pooled features are appended.
    normalization : Normalization or None
        Input normalisation of the backbone.
    roi : (float, float, float, float)
        ``(top, bottom, left, right)`` in [0, 1]: the part of the picture the features describe.
    backbone_mode : {"auto", "fp32", "fp32-cl3d", "bf16-cl3d"}
        Numeric mode of the backbone (:class:`musicperf.features.fastpath.BackboneRunner`):
        ``"auto"`` times the modes on the first batch and takes the fastest whose features are
        within :data:`~musicperf.features.fastpath.BF16_TOLERANCE` of fp32's. The head was
        trained on features of whichever mode the training machine chose; the modes agree to
        that tolerance, far inside the spread the features are standardised by.
    compile : bool
        ``torch.compile`` the backbone (slow to start; pays off on hours of video).
    """

    def __init__(self, config, backbone=None, normalization=None,
                 roi: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0), *,
                 backbone_mode: str = "auto", compile: bool = False):
        self.config = config
        self.backbone = backbone
        self.normalization = normalization
        self.roi = tuple(float(v) for v in roi)
        self.backbone_mode = backbone_mode
        self.compile = bool(compile)
        self._runner = None

    @property
    def runner(self):
        """The :class:`~musicperf.features.fastpath.BackboneRunner` of the backbone (None without one)."""
        if self.backbone is None:
            return None
        if self._runner is None:
            from musicperf.features.fastpath import BackboneRunner

            self._runner = BackboneRunner(self.backbone, self.normalization, mode=self.backbone_mode,
                                          compile=self.compile)
        return self._runner

    def identity(self) -> dict:
        """What the features depend on (JSON-able): keys the feature cache."""
        d = {"version": FEATURE_VERSION, "grid": self.config.grid, "size": list(self.config.size),
             "roi": list(self.roi), "decode_size": list(self.decode_size), "clip_length": self.config.clip_length,
             "backbone": None}
        if self.backbone is not None:
            d["backbone"] = {"config": self.backbone.config.to_dict(), "weights": _weights_hash(self.backbone),
                             "normalization": None if self.normalization is None else self.normalization.to_dict()}
        return d

    @property
    def decode_size(self) -> tuple[int, int]:
        """``(height, width)`` to decode frames at so that the region of interest is ``config.size``."""
        y0, y1, x0, x1 = self.roi
        h, w = self.config.size
        return (max(2, int(round(h / (y1 - y0)))), max(2, int(round(w / (x1 - x0)))))

    @property
    def n_features(self) -> int:
        n = n_grid_features(self.config.grid)
        if self.backbone is not None:
            n += int(self.backbone.config.widths[-1] * (4 if self.backbone.config.depth >= 50 else 1))
        return n

    def crop(self, clips: np.ndarray) -> np.ndarray:
        """The region of interest of clips ``(B, T, H, W, 3)`` decoded at :attr:`decode_size`."""
        y0, y1, x0, x1 = self.roi
        H, W = clips.shape[2:4]
        h, w = self.config.size
        top, left = int(round(y0 * H)), int(round(x0 * W))
        return clips[:, :, top : top + h, left : left + w]

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        """``(B, T, H, W, 3)`` uint8 clips (at :attr:`decode_size`) -> ``(B, F)`` float32 features."""
        clips = self.crop(clips)
        feats = [grid_features(clips, grid=self.config.grid)]
        if self.backbone is not None:
            feats.append(self.runner(clips))
        return np.concatenate(feats, axis=1)


def _weights_hash(net) -> str:
    """16 hex digits identifying a network's weights and buffers (cached per object)."""
    cached = getattr(net, "_musicperf_weights_hash", None)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    digest = h.hexdigest()[:16]
    try:
        net._musicperf_weights_hash = digest
    except AttributeError:  # pragma: no cover - modules accept attributes
        pass
    return digest


def estimate_roi(videos: Sequence[Path], *, until: float | None, size: tuple[int, int] = (96, 128),
                 step: int = 2, margin: float = 0.08, min_fraction: float = 0.35) -> tuple[float, float, float, float]:
    """The part of the picture where things move: ``(top, bottom, left, right)`` in [0, 1].

    The mean absolute difference between frames ``step`` apart is accumulated per pixel over
    the training part of every video; the region is the bounding box of the pixels whose
    motion exceeds a quarter of the 99th percentile, widened by ``margin`` on each side and to
    at least ``min_fraction`` of each dimension. A fixed camera filming a performer (the
    papers' setting) puts the performer there; the features then describe the performer at a
    finer grain than the whole picture would.

    Parameters
    ----------
    videos : sequence of Path
    until : float or None
        Seconds of each video to look at.
    size : (int, int)
        ``(height, width)`` of the motion map.
    """
    acc = np.zeros(size, dtype=np.float64)
    n = 0
    for video in videos:
        prev = None
        with VideoReader(video, size=size) as reader:
            for i, (t, frame) in enumerate(reader.frames(0.0, until)):
                if i % step:
                    continue
                grey = frame.astype(np.float32).mean(axis=-1)
                if prev is not None:
                    acc += np.abs(grey - prev)
                    n += 1
                prev = grey
    if n == 0:
        return (0.0, 1.0, 0.0, 1.0)
    motion = acc / n
    level = np.percentile(motion, 99)
    if level <= 0:
        return (0.0, 1.0, 0.0, 1.0)
    ys, xs = np.nonzero(motion > 0.25 * level)
    box = []
    for lo, hi, length in ((ys.min(), ys.max() + 1, size[0]), (xs.min(), xs.max() + 1, size[1])):
        a, b = lo / length - margin, hi / length + margin
        if b - a < min_fraction:
            mid = (a + b) / 2
            a, b = mid - min_fraction / 2, mid + min_fraction / 2
        a, b = max(0.0, a), min(1.0, b)
        box += [round(float(a), 4), round(float(b), 4)]
    return tuple(box)


def clip_features(extractor: FeatureExtractor, video: Path, *, fps: float, first: int, n_frames: int, stride: int,
                  end: float | None = None, batch: int = 8, progress: bool = False,
                  desc: str = "labelling") -> tuple[np.ndarray, np.ndarray]:
    """Features of the clips of ``video`` starting every ``stride`` grid frames from ``first``.

    Decoding (:func:`iter_clips`) runs in a background thread two batches ahead, so it overlaps
    with the feature computation; memory holds at most three batches of clips. ``end``
    (seconds): only clips that end by then (training on the annotated part); ``desc`` names the
    progress bar.

    Returns
    -------
    starts : np.ndarray, shape (N,), int64
        Clip starts on the ``fps`` grid (clips ending after ``n_frames`` are left out).
    features : np.ndarray, shape (N, F), float32
    """
    length = extractor.config.clip_length
    all_starts, all_feats = [], []
    last = n_frames if end is None else min(n_frames, int(end * fps))
    total = max(0, (last - first - length) // stride + 1)
    bar = progress_bar(None, total=total, desc=f"{desc} {video.name}", enabled=progress)
    batches = prefetch(iter_clips(video, fps=fps, size=extractor.decode_size, length=length, stride=stride,
                                  start=first / fps, end=end, batch=batch), depth=2)
    for starts, clips in batches:
        keep = starts + length <= n_frames
        starts, clips = starts[keep], clips[keep]
        if not len(starts):
            continue
        all_starts.append(starts)
        all_feats.append(extractor(clips))
        if progress:
            bar.update(len(starts))
    if progress:
        bar.close()
    if not all_starts:
        return np.zeros(0, np.int64), np.zeros((0, extractor.n_features), np.float32)
    return np.concatenate(all_starts), np.concatenate(all_feats).astype(np.float32)

