"""Compact per-frame landmark rows: what the per-frame tracks read of the landmarks, one float32 row per frame.

A MediaPipe Holistic frame is 553 points (pose 33, face mesh 478, hands 2 x 21), 6.8 kB as
float32 :class:`musicperf.features.landmarks.Landmarks` arrays: 122 MB for 10 minutes at 30 fps,
and several times that while the frames between model frames are interpolated and the features
computed in float64. :mod:`musicperf.features.tracks` needs far less per frame, and
:func:`extract_landmark_rows` reduces each frame to it as the model
frames come (in the worker processes), so no whole-video landmark array is ever held:

============  =====  ===========================================================================
block         width  contents
============  =====  ===========================================================================
``pose``      66     the 33 pose points, x and y (frame fractions)
``face``      52     the face-mesh points of :data:`~musicperf.features.landmark_features.FACE_POINTS`
                     (the 26 the gesture features read), x and y
``left_hand`` 42     21 points, x and y
``right_hand`` 42    21 points, x and y
``found``     5      1/0: any pose, face, left-hand, right-hand value found; any face-mesh x found
``regions``   15     per region (left hand, right hand, head): source (1 its own points, 2 the
                     pose's points for it, 0 none), then x0, y0, x1, y1: the extent of the finite
                     points (head: face-mesh points 0-467), the boxes of the flow track
============  =====  ===========================================================================

222 float32 (888 bytes) per frame: 16 MB for 10 minutes. The frames between model frames are
interpolated exactly as :func:`musicperf.features.landmarks.interpolate_samples` does (the
same float32 weights and arithmetic) before they are reduced, so every value equals the one
computed from the whole :class:`~musicperf.features.landmarks.Landmarks` of the video
(:func:`rows_from_landmarks`).

NumPy at module level; :func:`extract_landmark_rows` runs MediaPipe through
:mod:`musicperf.features.landmarks` (imported inside functions).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicperf.errors import DecodeError, ParameterError
from musicperf.features.landmark_features import FACE_POINTS

log = logging.getLogger(__name__)

__all__ = ["extract_landmark_rows", "LAYOUT", "WIDTH", "FOUND", "REGIONS", "ROWS_VERSION", "LandmarkRows", "reduce_frames",
           "interpolated_rows", "RowStream", "rows_from_landmarks"]

#: Part of the cache key of stored rows: bumped whenever a column changes.
ROWS_VERSION = "rows-v1"
#: Blocks of a row: name -> (first column, width).
LAYOUT: dict[str, tuple[int, int]] = {}
_w = 0
for _name, _width in (("pose", 66), ("face", 2 * len(FACE_POINTS)), ("left_hand", 42), ("right_hand", 42),
                      ("found", 5), ("regions", 15)):
    LAYOUT[_name] = (_w, _width)
    _w += _width
#: Columns of a row.
WIDTH = _w
del _w, _name, _width
#: Columns of the ``found`` block.
FOUND = ("pose", "face", "left_hand", "right_hand", "face_x")
#: Regions of the ``regions`` block and the pose points that stand in for their own.
REGIONS = ("left_hand", "right_hand", "head")
_REGION_POSE = {"left_hand": (15, 17, 19, 21), "right_hand": (16, 18, 20, 22), "head": (0, 2, 5, 7, 8, 9, 10)}
_FACE_COLS = np.asarray(FACE_POINTS, dtype=int)
_N_POINTS = {"pose": 33, "face": 478, "left_hand": 21, "right_hand": 21}
_SHAPES = {"pose": (33, 2), "face": (len(FACE_POINTS), 2), "left_hand": (21, 2), "right_hand": (21, 2),
           "found": (len(FOUND),), "regions": (len(REGIONS), 5)}


@dataclass
class LandmarkRows:
    """Compact per-frame landmarks of one video (see the module's table).

    Attributes
    ----------
    times : np.ndarray, shape (T,), float64
    values : np.ndarray, shape (T, WIDTH), float32
    fps : float
    width, height : int
        Frame size in pixels.
    meta : dict
    """

    times: np.ndarray
    values: np.ndarray
    fps: float
    width: int
    height: int
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.times))

    def block(self, name: str) -> np.ndarray:
        """Block ``name`` of :data:`LAYOUT` as a view: pose ``(T, 33, 2)``, face ``(T, 26, 2)``,
        hands ``(T, 21, 2)``, found ``(T, 5)``, regions ``(T, 3, 5)``."""
        if name not in LAYOUT:
            raise ParameterError(f"unknown landmark row block {name!r}; choose from {', '.join(LAYOUT)}")
        a, w = LAYOUT[name]
        return self.values[:, a:a + w].reshape((len(self.values),) + _SHAPES[name])

    def found(self, name: str) -> np.ndarray:
        """``(T,)`` bool: frames where ``name`` (one of :data:`FOUND`) was found."""
        return self.block("found")[:, FOUND.index(name)] > 0

    def arrays(self) -> dict[str, np.ndarray]:
        return {"times": self.times, "rows": self.values}

    def file_meta(self) -> dict:
        return {"format": "musicperf-landmark-rows", "rows_version": ROWS_VERSION, "fps": float(self.fps),
                "width": int(self.width), "height": int(self.height), **self.meta}

    @classmethod
    def from_arrays(cls, arrays: dict, meta: dict, *, where: str = "landmark rows") -> "LandmarkRows":
        if meta.get("format") != "musicperf-landmark-rows" or "rows" not in arrays or "times" not in arrays:
            raise DecodeError(f"{where} is not a musicperf landmark-rows file")
        values = np.asarray(arrays["rows"], dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != WIDTH or len(values) != len(arrays["times"]):
            raise DecodeError(f"{where}: rows of shape {values.shape}, need ({len(arrays['times'])}, {WIDTH})")
        rest = {k: v for k, v in meta.items() if k not in ("format", "rows_version", "fps", "width", "height")}
        return cls(times=np.asarray(arrays["times"], dtype=np.float64), values=values, fps=float(meta["fps"]),
                   width=int(meta["width"]), height=int(meta["height"]), meta=rest)


def _extent(p: np.ndarray):
    """Min and max of the rows of ``p`` (N, 2) that are finite; None when fewer than 2."""
    p = p[np.isfinite(p).all(axis=1)]
    return (p.min(axis=0), p.max(axis=0)) if len(p) >= 2 else None


def reduce_frames(pose: np.ndarray, face: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The compact rows of ``n`` whole frames.

    Parameters
    ----------
    pose, face, left, right : np.ndarray, float32
        ``(n, 33, 3)``, ``(n, 478, 3)`` (or 468 points), ``(n, 21, 3)``, ``(n, 21, 3)``, NaN
        where missing (the :class:`~musicperf.features.landmarks.Landmarks` layout).

    Returns
    -------
    np.ndarray, shape (n, WIDTH), float32
    """
    n = len(pose)
    out = np.full((n, WIDTH), np.nan, np.float32)
    for name, a in (("pose", pose), ("left_hand", left), ("right_hand", right)):
        c, w = LAYOUT[name]
        out[:, c:c + w] = a[:, :, :2].reshape(n, w)
    c, w = LAYOUT["face"]
    out[:, c:c + w] = face[:, _FACE_COLS, :2].reshape(n, w)
    found = lambda a: np.isfinite(a.reshape(n, -1)).any(axis=1)  # noqa: E731
    c, _ = LAYOUT["found"]
    out[:, c:c + 5] = np.column_stack([found(pose), found(face), found(left), found(right),
                                       np.isfinite(face[..., 0]).any(axis=1)])
    c, _ = LAYOUT["regions"]
    for i in range(n):
        for k, (name, pts) in enumerate((("left_hand", left[i]), ("right_hand", right[i]), ("head", face[i, :468]))):
            ext, src = _extent(pts[:, :2]), 1.0
            if ext is None:
                ext, src = _extent(pose[i, list(_REGION_POSE[name]), :2]), 2.0
            j = c + 5 * k
            if ext is None:
                out[i, j] = 0.0
            else:
                out[i, j] = src
                out[i, j + 1:j + 3] = ext[0]
                out[i, j + 3:j + 5] = ext[1]
    return out


def _blend(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``(1 - w) a + w b`` per frame, as :func:`~musicperf.features.landmarks.interpolate_samples` computes it."""
    w = w.reshape((len(w),) + (1,) * a.ndim).astype(np.float32)
    return (1 - w) * a[None] + w * b[None]


def interpolated_rows(a: tuple, b: tuple, left: int, right: int, frames: np.ndarray) -> np.ndarray:
    """Compact rows of ``frames`` (indices) interpolated between model frames ``left`` and ``right``.

    ``a``, ``b``: the whole landmarks ``(pose, face, left_hand, right_hand)`` (each ``(J, 3)``)
    of frames ``left`` and ``right``; ``left == right`` holds ``a`` (the frames after the last
    model frame, and the model frame itself).
    """
    frames = np.asarray(frames, dtype=np.int64)
    span = float(right - left)
    w = (frames - left) / span if span > 0 else np.zeros(len(frames))
    return reduce_frames(*(_blend(x, y, w) for x, y in zip(a, b)))


class RowStream:
    """Model frames in, compact rows of every frame out, holding two model frames at a time.

    :meth:`add` each model frame (increasing indices, the first at frame 0); :meth:`finish`
    returns the rows of frames ``0 .. last model frame``. The frames after the last model frame
    need the next model frame (in the next stretch of video, or none: then they hold the last),
    so they are left to the caller (:func:`interpolated_rows`), with :attr:`first` and
    :attr:`last` (the whole landmarks of the first and last model frames) and :attr:`last_index`.
    """

    def __init__(self):
        self.chunks: list[np.ndarray] = []
        self.first = self.last = None
        self.last_index = -1

    def add(self, index: int, frame: tuple) -> None:
        """Model frame ``index`` with its whole landmarks ``(pose, face, left_hand, right_hand)``."""
        if self.last is None:
            if index != 0:
                raise ParameterError(f"the first model frame must be frame 0, got {index}")
            self.first = frame
        else:
            if index <= self.last_index:
                raise ParameterError(f"model frames must increase: {index} after {self.last_index}")
            self._flush(frame, index)
        self.last, self.last_index = frame, int(index)

    def _flush(self, nxt: tuple | None, index: int | None) -> None:
        i = self.last_index
        self.chunks.append(interpolated_rows(self.last, self.last, i, i, np.array([i])))
        if nxt is not None and index > i + 1:
            self.chunks.append(interpolated_rows(self.last, nxt, i, index, np.arange(i + 1, index)))

    def finish(self) -> np.ndarray:
        """Rows of frames ``0 .. last_index``, ``(last_index + 1, WIDTH)`` float32."""
        if self.last is None:
            return np.zeros((0, WIDTH), np.float32)
        self._flush(None, None)
        out = np.concatenate(self.chunks)
        self.chunks = []
        return out


def rows_from_landmarks(lm, *, chunk: int = 1024) -> LandmarkRows:
    """The compact rows of a whole :class:`~musicperf.features.landmarks.Landmarks` (in chunks of frames)."""
    n = len(lm)
    values = np.empty((n, WIDTH), np.float32)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        values[a:b] = reduce_frames(lm.pose[a:b], lm.face[a:b], lm.left_hand[a:b], lm.right_hand[a:b])
    return LandmarkRows(times=np.asarray(lm.times, dtype=np.float64), values=values, fps=float(lm.fps),
                        width=int(lm.width), height=int(lm.height), meta=dict(lm.meta))


def extract_landmark_rows(
    video: str | Path,
    *,
    hands: str = "fallback",
    start: float = 0.0,
    end: float | None = None,
    every: int = 1,
    workers: int | None = 1,
    progress: bool = False,
    cache: bool = True,
    cache_dir: str | Path | None = None,
):
    """The landmarks of every frame of ``video`` reduced to compact rows as they come
    (:class:`LandmarkRows`: 222 float32 per frame, what the per-frame tracks read), for long
    videos: memory does not grow with the landmarks.

    Same extraction as :func:`~musicperf.features.landmarks.extract_landmarks` (Holistic, refined
    face, default thresholds) and the same values, reduced: each worker keeps two model frames at
    a time and interpolates the frames between them before reducing them; no whole-video
    ``(T, 478, 3)`` array exists. Cached apart from the whole landmarks; when the cache holds the
    whole landmarks of the same settings (written by ``extract_landmarks``), they are reduced
    instead of running MediaPipe.

    Parameters
    ----------
    video : str or Path
    hands, start, end, every, workers, progress, cache, cache_dir
        See :func:`~musicperf.features.landmarks.extract_landmarks`.

    Returns
    -------
    LandmarkRows
    """
    from musicperf.features import landmarks as L
    from musicperf.features.cache import cached, entry_path

    video, params, segments = L._job(
        video, hands=hands, refine_face=True, min_detection_confidence=0.5, min_tracking_confidence=0.5, start=start,
        end=end, max_frames=None, every=every, workers=workers, parts=None, max_every=None, motion_threshold=3.0)

    def compute():
        whole = entry_path(video, extractor=L.EXTRACTOR, version=L.EXTRACTOR_VERSION, params=params, cache_dir=cache_dir)
        if cache and whole.is_file():
            try:
                rows = rows_from_landmarks(L.load_landmarks(whole))
                rows.meta["from_cache"] = str(whole)
                return rows.arrays(), rows.file_meta()
            except DecodeError as exc:
                log.warning("ignoring unreadable cache entry: %s", exc)
        rows = _extract_rows(video, params=params, segments=segments, every=int(every), progress=progress)
        return rows.arrays(), rows.file_meta()

    arrays, meta, hit = cached(video, extractor=L.EXTRACTOR + "-rows", version=f"{L.EXTRACTOR_VERSION}/{ROWS_VERSION}",
                               params=params, compute=compute, cache_dir=cache_dir, use_cache=cache)
    rows = LandmarkRows.from_arrays(arrays, meta, where=f"the landmark-rows cache of '{video}'")
    rows.meta["cache_hit"] = hit
    return rows


def _extract_rows(video: Path, *, params: dict, segments, every: int, progress: bool):
    """:func:`musicperf.features.landmarks._extract_segments` in compact rows: the stretches' rows side by side, and the frames
    after each stretch's last model frame interpolated towards the next stretch's first (held
    after the last), as :func:`~musicperf.features.landmarks.interpolate_samples` does over the whole video."""
    from musicperf.features import landmarks as L

    t0 = time.perf_counter()
    if len(segments) == 1:
        a, b = segments[0]
        parts = [_run_segment_rows(str(video), params, a, b, every, progress)]
    else:
        parts = L._run_segments_in_processes(video, params, segments, every, rows=True)
    whole = lambda p, which: tuple(p[f"{which}_{n}"] for n in ("pose", "face", "left_hand", "right_hand"))  # noqa: E731
    sizes = [len(p["times"]) for p in parts]
    n = int(sum(sizes))
    if n == 0:
        raise DecodeError(f"'{video}': no frames between {params['start']} s and {params['end']} s")
    values = np.empty((n, WIDTH), np.float32)
    offsets = np.cumsum([0] + sizes)
    for k, p in enumerate(parts):
        off, m, last = int(offsets[k]), sizes[k], int(p["last_index"])
        values[off:off + last + 1] = p["rows"]
        if last + 1 < m:
            tail = np.arange(off + last + 1, off + m)
            nxt = next((j for j in range(k + 1, len(parts)) if _has_model_frames(parts[j])), None)
            if nxt is None:
                values[off + last + 1:off + m] = interpolated_rows(whole(p, "last"), whole(p, "last"), off + last,
                                                                   off + last, tail)
            else:
                values[off + last + 1:off + m] = interpolated_rows(whole(p, "last"), whole(parts[nxt], "first"),
                                                                   off + last, int(offsets[nxt]), tail)
        p.pop("rows")
    times = np.concatenate([p["times"] for p in parts])
    seconds = time.perf_counter() - t0
    meta = {"extractor": L.EXTRACTOR, "version": L.EXTRACTOR_VERSION, "params": params, "video": str(video),
            "model_frames": int(sum(p["sampled"] for p in parts)), "segments": len(segments),
            "seconds": round(seconds, 3), "frames_per_second": round(n / seconds, 3) if seconds > 0 else None}
    return LandmarkRows(times=times, values=values, fps=parts[0]["fps"], width=parts[0]["width"],
                        height=parts[0]["height"], meta=meta)


def _has_model_frames(part: dict) -> bool:
    """Whether a stretch's result has a model frame."""
    return int(part["sampled"]) > 0


def _run_segment_rows(video: str, params: dict, start: float, end: float | None, every: int,
                      progress: bool) -> dict:
    """:func:`musicperf.features.landmarks._run_segment` reduced to compact rows as the model frames come
    (:class:`RowStream`): ``rows`` of frames ``0 .. last_index``,
    ``times``, ``sampled`` (how many model frames), the whole landmarks of the ``first_*`` and
    ``last_*`` model frames (``pose``, ``face``, ``left_hand``, ``right_hand``), ``last_index``,
    ``fps``, ``width``, ``height``. Only two model frames are held at a time."""
    from musicperf.features import landmarks as L

    info: dict = {}
    stream = RowStream()
    k = 0
    for i, row in L._model_frames(video, params, start, end, every, progress, info):
        stream.add(i, _whole(row))
        k += 1
    out = {"rows": stream.finish(), "times": np.asarray(info["times"], dtype=np.float64), "sampled": k,
           "last_index": stream.last_index, "fps": info["fps"], "width": info["width"], "height": info["height"]}
    for which, frame in (("first", stream.first), ("last", stream.last)):
        if frame is not None:
            for name, a in zip(("pose", "face", "left_hand", "right_hand"), frame):
                out[f"{which}_{name}"] = a
    return out


def _whole(row) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(pose, face, left_hand, right_hand)`` ``(J, 3)`` float32 arrays of a runner row, NaN where not found."""
    pose, _, face, left, right, _ = row
    return tuple(np.full((_N_POINTS[p], 3), np.nan, np.float32) if a is None else a
                 for p, a in (("pose", pose), ("face", face), ("left_hand", left), ("right_hand", right)))
