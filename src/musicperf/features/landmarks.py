"""Body, face and hand landmarks per frame: MediaPipe extraction and files (synthetic-truth landmarks: musicperf.synth.landmarks).

The representation follows the body rather than the pixels (the papers' models fall
to F1 0.19-0.29 on an unseen video, Table 8 of ``001``, blamed on backgrounds). Layouts are
MediaPipe's: pose 33 points, face mesh 468 (+10 iris points, 468-477, with
``refine_face=True``), 21 per hand. Left/right are the performer's anatomical sides, as
MediaPipe's pose and Holistic use them (the left hand appears on the image right for a
performer facing the camera).

Array conventions (:class:`Landmarks`): ``(T, J, 3)`` float32 ``(x, y, z)`` with x and y
normalised by the frame width and height (MediaPipe's convention: 0..1 across the picture),
z MediaPipe's relative depth (NaN where unknown, e.g. from synthetic truth). A part not
detected in a frame is all-NaN in that frame, never zeros.

Extraction (:func:`extract_landmarks`) runs ``mp.solutions.holistic`` on every frame, or on
every ``every``-th frame with linear interpolation in between, in one process or several on
contiguous stretches of the video (``workers``) (video mode, ``model_complexity=1``: the only one whose model ships in the ``mediapipe==0.10.21``
wheel; 0 and 2 try to download). Holistic finds hands only through a body, so with
``hands="fallback"`` (default) the stand-alone hand detector (``mp.solutions.hands``) runs on
the frames where Holistic found no pose: a camera above a keyboard or on a guitar neck.
``hands="fill"`` also runs it where Holistic found a pose but missed a hand. Hands from the
stand-alone detector are assigned to a side by the nearest pose wrist when a pose exists,
otherwise by its handedness label swapped: MediaPipe labels handedness for mirrored (selfie)
images, and performance videos are not mirrored.

A model that needs only some landmark groups (``parts=``, :func:`parts_for_classes`) runs only
their graphs: the pose and/or hand graphs without the face (``mp.solutions.pose``,
``mp.solutions.hands``), Holistic whenever the face is needed. With ``max_every`` the frames
given to the model are chosen by motion (:class:`MotionSampler`): still frames, measured in a
box that follows the performer, are skipped and interpolated like the others.

Results are cached per video, extractor version and parameters (:mod:`musicperf.features.cache`).

Imports numpy at module level; mediapipe (and PyAV through the video reader) inside functions.
Must not import torch, OpenCV or matplotlib at module level.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from musicperf.errors import DecodeError, MissingDependencyError, ParameterError
from musicperf.features.landmark_sampling import (  # noqa: F401 - re-exported
    GESTURE_PARTS,
    MOTION_NOISE,
    PART_GROUPS,
    MotionSampler,
    parse_parts,
    parts_for_classes,
)

log = logging.getLogger(__name__)

__all__ = [
    "PART_GROUPS", "GESTURE_PARTS", "parse_parts", "parts_for_classes", "MotionSampler", "MOTION_NOISE",
    "Landmarks", "extract_landmarks", "load_landmarks", "PARTS", "N_POINTS",
    "EXTRACTOR", "EXTRACTOR_VERSION", "POSE", "HAND_CONNECTIONS", "POSE_CONNECTIONS", "interpolate_samples",
]

#: Name and version of the extractor, part of every cache key and saved file.
EXTRACTOR = "mediapipe-holistic"
EXTRACTOR_VERSION = "mediapipe-0.10.21/holistic-c1/hands-c1/v1"

PARTS = ("pose", "face", "left_hand", "right_hand")
N_POINTS = {"pose": 33, "face": 478, "left_hand": 21, "right_hand": 21}

#: Pose indices used by name elsewhere (MediaPipe BlazePose layout).
POSE = {
    "nose": 0, "left_eye": 2, "right_eye": 5, "left_ear": 7, "right_ear": 8,
    "mouth_left": 9, "mouth_right": 10, "left_shoulder": 11, "right_shoulder": 12,
    "left_elbow": 13, "right_elbow": 14, "left_wrist": 15, "right_wrist": 16,
    "left_hip": 23, "right_hip": 24,
}

#: Segments drawn by overlays (subsets of MediaPipe's connection lists).
POSE_CONNECTIONS = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24),
    (23, 25), (25, 27), (24, 26), (26, 28), (0, 2), (2, 7), (0, 5), (5, 8), (9, 10),
    (15, 17), (15, 19), (15, 21), (16, 18), (16, 20), (16, 22),
)
HAND_CONNECTIONS = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (17, 18), (18, 19), (19, 20), (0, 17),
)

#: Values of :attr:`Landmarks.hand_source`.
SOURCE_NONE, SOURCE_HOLISTIC, SOURCE_HANDS, SOURCE_TRUTH = 0, 1, 2, 3

HandsMode = Literal["never", "fallback", "fill"]


@dataclass
class Landmarks:
    """Per-frame landmarks of one performer in one video.

    Attributes
    ----------
    times : np.ndarray, shape (T,), float64
        Seconds of each frame on the video timeline.
    pose : np.ndarray, shape (T, 33, 3), float32
        ``(x, y, z)``: x, y normalised to [0, 1] by width and height; NaN when not detected.
    pose_visibility : np.ndarray, shape (T, 33), float32
        MediaPipe's visibility in [0, 1]; NaN when no pose.
    face : np.ndarray, shape (T, 478, 3), float32
        Face mesh; points 468-477 (irises) NaN when not refined.
    left_hand, right_hand : np.ndarray, shape (T, 21, 3), float32
    hand_source : np.ndarray, shape (T, 2), int8
        Per frame, for (left, right): 0 none, 1 Holistic, 2 stand-alone hand detector,
        3 synthetic truth.
    fps : float
    width, height : int
        Frame size in pixels (to turn normalised coordinates into pixels).
    meta : dict
        Extractor, version, parameters, video, seconds taken.
    """

    times: np.ndarray
    pose: np.ndarray
    pose_visibility: np.ndarray
    face: np.ndarray
    left_hand: np.ndarray
    right_hand: np.ndarray
    hand_source: np.ndarray
    fps: float
    width: int
    height: int
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.times))

    def part(self, name: str) -> np.ndarray:
        """The ``(T, J, 3)`` array of ``name`` (one of :data:`PARTS`)."""
        if name not in PARTS:
            raise ParameterError(f"unknown landmark part {name!r}; choose from {', '.join(PARTS)}")
        return getattr(self, name)

    def detected(self, name: str) -> np.ndarray:
        """``(T,)`` bool: frames where part ``name`` has at least one point."""
        return np.isfinite(self.part(name)[..., 0]).any(axis=1)

    def pixels(self, name: str) -> np.ndarray:
        """``(T, J, 2)`` float64 pixel coordinates of part ``name`` (NaN where missing)."""
        return self.part(name)[..., :2].astype(np.float64) * [self.width, self.height]

    def detection_rates(self) -> dict[str, float]:
        """Fraction of frames in which each part was detected (0 for an empty sequence)."""
        n = max(len(self), 1)
        return {p: float(self.detected(p).sum()) / n if len(self) else 0.0 for p in PARTS}

    def summary(self) -> dict:
        """A JSON-able summary: frames, fps, size, detection rates, hands found by the fallback."""
        src = self.hand_source
        return {
            "frames": len(self),
            "fps": float(self.fps),
            "width": int(self.width),
            "height": int(self.height),
            "duration": float(len(self) / self.fps) if self.fps else 0.0,
            "detection_rate": {k: round(v, 4) for k, v in self.detection_rates().items()},
            "hands_from_fallback": int((src == SOURCE_HANDS).sum()),
            "extractor": self.meta.get("extractor"),
            "version": self.meta.get("version"),
            "seconds": self.meta.get("seconds"),
        }

    # -- files
    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "times": self.times, "pose": self.pose, "pose_visibility": self.pose_visibility,
            "face": self.face, "left_hand": self.left_hand, "right_hand": self.right_hand,
            "hand_source": self.hand_source,
        }

    def file_meta(self) -> dict:
        return {"format": "musicperf-landmarks", "format_version": 1, "fps": float(self.fps),
                "width": int(self.width), "height": int(self.height), **self.meta}

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` file (arrays + JSON metadata, no pickles) atomically."""
        from musicperf.features.cache import save_arrays

        path = Path(path)
        if path.suffix != ".npz":
            raise ParameterError(f"landmark files are .npz; got '{path}'")
        return save_arrays(path, self.arrays(), self.file_meta())

    @classmethod
    def from_arrays(cls, arrays: dict, meta: dict, *, where: str = "landmark data") -> "Landmarks":
        missing = [k for k in ("times", "pose", "pose_visibility", "face", "left_hand", "right_hand", "hand_source")
                   if k not in arrays]
        if missing or meta.get("format") != "musicperf-landmarks":
            raise DecodeError(f"{where} is not a musicperf landmark file (missing {', '.join(missing) or 'format'})")
        rest = {k: v for k, v in meta.items() if k not in ("format", "format_version", "fps", "width", "height")}
        return cls(times=arrays["times"], pose=arrays["pose"], pose_visibility=arrays["pose_visibility"],
                   face=arrays["face"], left_hand=arrays["left_hand"], right_hand=arrays["right_hand"],
                   hand_source=arrays["hand_source"], fps=float(meta["fps"]), width=int(meta["width"]),
                   height=int(meta["height"]), meta=rest)

    def slice(self, start: int, stop: int) -> "Landmarks":
        """Frames ``start:stop`` as a new object (views of the arrays)."""
        sl = slice(start, stop)
        return dataclasses.replace(
            self, times=self.times[sl], pose=self.pose[sl], pose_visibility=self.pose_visibility[sl],
            face=self.face[sl], left_hand=self.left_hand[sl], right_hand=self.right_hand[sl],
            hand_source=self.hand_source[sl], meta=dict(self.meta))


def load_landmarks(path: str | Path) -> Landmarks:
    """Read a file written by :meth:`Landmarks.save` (or the ``landmarks`` command)."""
    from musicperf.features.cache import load_arrays

    arrays, meta = load_arrays(path)
    return Landmarks.from_arrays(arrays, meta, where=f"'{path}'")


def empty_landmarks(n: int, *, fps: float, width: int, height: int) -> Landmarks:
    """All-missing landmarks for ``n`` frames."""
    nan = lambda j: np.full((n, j, 3), np.nan, np.float32)  # noqa: E731
    return Landmarks(
        times=np.arange(n, dtype=np.float64) / fps, pose=nan(33),
        pose_visibility=np.full((n, 33), np.nan, np.float32), face=nan(478), left_hand=nan(21),
        right_hand=nan(21), hand_source=np.zeros((n, 2), np.int8), fps=float(fps), width=int(width),
        height=int(height))


# --------------------------------------------------------------------------- MediaPipe
def _mediapipe():
    """Import mediapipe quietly or raise :class:`MissingDependencyError`."""
    # Quiets TensorFlow Lite and glog where the build honours them (0.10.21's does not fully,
    # hence also :func:`_quiet_stderr` around graph start-up).
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise MissingDependencyError("mediapipe", "landmarks", purpose="landmark extraction") from exc
    try:
        from google.protobuf import __version__ as pb_version
    except ImportError:  # pragma: no cover - mediapipe depends on protobuf
        pb_version = "0"
    if int(pb_version.split(".")[0]) >= 7:
        # protobuf 7 removed FieldDescriptor.label, which mediapipe 0.10.21's graph set-up uses;
        # 4.25 (what mediapipe declares) works cleanly, 5-6 work with a printed warning.
        raise MissingDependencyError("protobuf<7", "landmarks",
                                     purpose=f"mediapipe 0.10.21 (protobuf {pb_version} is installed)")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl comes with mediapipe
        pass
    return mp


@contextlib.contextmanager
def _quiet_stderr():
    """Send the process's stderr (file descriptor 2) to /dev/null for the block.

    MediaPipe's C++ graph prints a dozen glog/TFLite lines when it and its sub-models start,
    bypassing Python and ignoring GLOG_minloglevel. Only the graph's own calls are wrapped, so
    Python warnings and the progress bar stay visible between them.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture or no real stderr
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        sys.stderr.flush()
        _flush_c_stdio()
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def _flush_c_stdio() -> None:
    """Flush C stdio buffers, where the graph's log lines may wait until the process exits."""
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # pragma: no cover - no libc symbol table (not Linux/macOS)
        pass


def _to_array(landmark_list, n: int, *, visibility: bool = False):
    if landmark_list is None:
        return None, None
    pts = landmark_list.landmark
    a = np.array([(p.x, p.y, p.z) for p in pts], dtype=np.float32)
    out = np.full((n, 3), np.nan, np.float32)
    out[: min(n, len(a))] = a[:n]
    vis = None
    if visibility:
        vis = np.array([p.visibility for p in pts], dtype=np.float32)[:n]
    return out, vis


class _HolisticRunner:
    """One Holistic graph (and, lazily, one stand-alone Hands graph) over a frame stream."""

    def __init__(self, *, hands: HandsMode, refine_face: bool, min_detection_confidence: float,
                 min_tracking_confidence: float):
        self.mp = _mediapipe()
        self.hands_mode = hands
        self.kw = dict(model_complexity=1, min_detection_confidence=min_detection_confidence,
                       min_tracking_confidence=min_tracking_confidence)
        with _quiet_stderr():
            self.holistic = self.mp.solutions.holistic.Holistic(
                static_image_mode=False, refine_face_landmarks=refine_face, smooth_landmarks=True, **self.kw)
            _warm_up(self.holistic)
        self.hands = None

    def close(self) -> None:
        with _quiet_stderr():  # closing a graph also flushes its start-up log lines
            for g in (self.holistic, self.hands):
                if g is not None:
                    g.close()

    @staticmethod
    def _process(graph, frame):
        # Sub-models (hand landmarks, face refinement) start lazily on the first frame that
        # needs them and log then, so every call is wrapped, not only the first.
        with _quiet_stderr():
            return graph.process(frame)

    def __call__(self, frame: np.ndarray):
        """Landmarks of one RGB frame: ``(pose, vis, face, left, right, source)``."""
        frame = np.ascontiguousarray(frame)
        frame.flags.writeable = False
        res = self._process(self.holistic, frame)
        pose, vis = _to_array(res.pose_landmarks, 33, visibility=True)
        face, _ = _to_array(res.face_landmarks, 478)
        left, _ = _to_array(res.left_hand_landmarks, 21)
        right, _ = _to_array(res.right_hand_landmarks, 21)
        source = [SOURCE_HOLISTIC if left is not None else SOURCE_NONE,
                  SOURCE_HOLISTIC if right is not None else SOURCE_NONE]
        need = (self.hands_mode == "fallback" and pose is None) or (
            self.hands_mode == "fill" and (left is None or right is None))
        if need:
            if self.hands is None:
                with _quiet_stderr():
                    self.hands = self.mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, **self.kw)
                    _warm_up(self.hands)
            hres = self._process(self.hands, frame)
            for side, pts in _assign_hands(hres, pose):
                if side == "left" and left is None:
                    left, source[0] = pts, SOURCE_HANDS
                elif side == "right" and right is None:
                    right, source[1] = pts, SOURCE_HANDS
        return pose, vis, face, left, right, source


def _warm_up(graph) -> None:
    """Run one blank frame so the graph's models load (and log) inside the quiet block.

    The calculators open asynchronously after construction; a ``process`` call waits for
    them. A blank frame detects nothing, so the tracker starts from scratch on the video.
    """
    blank = np.zeros((64, 64, 3), np.uint8)
    blank.flags.writeable = False
    graph.process(blank)


def _assign_hands(hres, pose):
    """``[(side, (21, 3) array)]`` for the stand-alone detector's hands.

    With a pose, each hand goes to the side whose pose wrist (15 left, 16 right) is nearer its
    wrist point; without one, MediaPipe's handedness label is swapped (it assumes mirrored
    selfie images). Two hands claiming the same side keep the more confident one.
    """
    if not hres.multi_hand_landmarks:
        return []
    out = {}
    for lm, handed in zip(hres.multi_hand_landmarks, hres.multi_handedness or [None] * len(hres.multi_hand_landmarks)):
        pts, _ = _to_array(lm, 21)
        score = handed.classification[0].score if handed is not None else 0.0
        if pose is not None and np.isfinite(pose[[15, 16], :2]).all():
            d = np.linalg.norm(pose[[15, 16], :2] - pts[0, :2], axis=1)
            side = "left" if d[0] <= d[1] else "right"
        elif handed is not None:
            side = "right" if handed.classification[0].label == "Left" else "left"
        else:  # pragma: no cover - mediapipe always gives handedness
            continue
        if side not in out or out[side][0] < score:
            out[side] = (score, pts)
    return [(s, v[1]) for s, v in out.items()]


class _PartsRunner:
    """The MediaPipe graphs for the pose and/or the hands, one graph per group (no face).

    Holistic runs its pose, face and hand models on every frame; a model that needs no face
    runs only ``mp.solutions.pose`` (33 points with visibility) and/or ``mp.solutions.hands``
    (two hands, assigned to a side by the nearest pose wrist when there is a pose, otherwise by
    the swapped handedness label, see :func:`_assign_hands`). Measured per frame on pianist.avi
    (loaded 2-core AMD EPYC, 60 frames, two runs): Holistic 143-162 ms, Pose 54-103 ms, Hands
    62-78 ms, Pose + Hands 83-130 ms. The face is left to Holistic, which finds it from the
    body: the stand-alone face mesh (``mp.solutions.face_mesh``, 5-9 ms a frame) relies on the
    short-range face detector and found no face in pianist.avi's first frames (a seated
    performer a few metres away, in profile). Same call signature and output as
    :class:`_HolisticRunner`; groups not asked for are None.
    """

    def __init__(self, parts: tuple[str, ...], *, refine_face: bool, min_detection_confidence: float,
                 min_tracking_confidence: float):
        self.mp = _mediapipe()
        self.parts = tuple(parts)
        conf = dict(min_detection_confidence=min_detection_confidence, min_tracking_confidence=min_tracking_confidence)
        sol = self.mp.solutions
        if "face" in parts:
            raise ParameterError("the face is extracted by Holistic (see _make_runner)")
        self.pose = self.hands = None
        with _quiet_stderr():
            if "pose" in parts:
                self.pose = sol.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True, **conf)
                _warm_up(self.pose)
            if "hands" in parts:
                self.hands = sol.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1, **conf)
                _warm_up(self.hands)

    def close(self) -> None:
        with _quiet_stderr():
            for g in (self.pose, self.hands):
                if g is not None:
                    g.close()

    def __call__(self, frame: np.ndarray):
        frame = np.ascontiguousarray(frame)
        frame.flags.writeable = False
        pose = vis = face = left = right = None
        source = [SOURCE_NONE, SOURCE_NONE]
        if self.pose is not None:
            res = _HolisticRunner._process(self.pose, frame)
            pose, vis = _to_array(res.pose_landmarks, 33, visibility=True)
        if self.hands is not None:
            hres = _HolisticRunner._process(self.hands, frame)
            for side, pts in _assign_hands(hres, pose):
                if side == "left":
                    left, source[0] = pts, SOURCE_HANDS
                else:
                    right, source[1] = pts, SOURCE_HANDS
        return pose, vis, face, left, right, source


class _Only:
    """A runner whose groups not in ``parts`` are dropped (None), so a model trained on some
    groups sees the same missing values whichever graph produced the others."""

    def __init__(self, runner, parts):
        self.runner, self.parts = runner, tuple(parts)

    def close(self) -> None:
        self.runner.close()

    def __call__(self, frame):
        pose, vis, face, left, right, source = self.runner(frame)
        if "pose" not in self.parts:
            pose = vis = None
        if "hands" not in self.parts:
            left = right = None
            source = [SOURCE_NONE, SOURCE_NONE]
        return pose, vis, face, left, right, source


def _make_runner(params: dict):
    """The landmark model of one stretch: Holistic whenever the face is needed (it finds the face
    from the body; groups not asked for are dropped), else :class:`_PartsRunner`."""
    parts = params.get("parts")
    kw = dict(refine_face=params["refine_face"], min_detection_confidence=params["min_detection_confidence"],
              min_tracking_confidence=params["min_tracking_confidence"])
    if parts is None:
        return _HolisticRunner(hands=params["hands"], **kw)
    if "face" in parts:
        hands = params["hands"] if "hands" in parts else "never"
        return _Only(_HolisticRunner(hands=hands, **kw), parts)
    return _PartsRunner(tuple(parts), **kw)


def _points(row) -> np.ndarray | None:
    """All points a model row found, ``(N, 2)`` normalised x, y (None when nothing was found)."""
    found = [a[:, :2] for a in (row[0], row[2], row[3], row[4]) if a is not None]
    return np.concatenate(found) if found else None


def extract_landmarks(
    video: str | Path,
    *,
    hands: HandsMode = "fallback",
    refine_face: bool = True,
    min_detection_confidence: float = 0.5,
    min_tracking_confidence: float = 0.5,
    start: float = 0.0,
    end: float | None = None,
    max_frames: int | None = None,
    every: int = 1,
    workers: int | None = 1,
    progress: bool = False,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    parts=None,
    max_every: int | None = None,
    motion_threshold: float = 3.0,
) -> Landmarks:
    """Pose, face-mesh and hand landmarks of every frame of ``video`` with MediaPipe Holistic.

    Parameters
    ----------
    video : str or Path
    hands : {"fallback", "fill", "never"}
        When to run the stand-alone hand detector: on frames without a pose (default), also on
        frames where Holistic missed a hand, or never.
    refine_face : bool
        Refined face mesh with the 10 iris points (478 points instead of 468).
    min_detection_confidence, min_tracking_confidence : float
        MediaPipe's thresholds in [0, 1].
    start, end : float
        Seconds of the video to process (``end=None``: to the end).
    max_frames : int, optional
        Stop after this many frames.
    every : int
        Run the model on every ``every``-th frame (frames ``0, every, 2 every, ...`` of each
        segment) and fill the frames in between by linear interpolation of their neighbours
        (:func:`interpolate_samples`); the result still has one row per decoded frame. What
        it costs in accuracy is measured by ``benchmarks/bench_labelling.py landmarks`` and
        reported in docs/performance.md.
    workers : int or None
        Processes running MediaPipe at once, each on a contiguous stretch of the video (one
        MediaPipe graph uses about one core). ``None``: one per CPU, at most 4, and none
        shorter than :data:`MIN_SEGMENT_SECONDS`. With several, tracking restarts at each
        stretch's first frame, so the result can differ slightly from a single process; the
        number of stretches is part of the cache key.
    progress : bool
        tqdm progress bar on stderr.
    cache, cache_dir
        Read/write the per-video cache (:mod:`musicperf.features.cache`).
    parts : str or list of str, optional
        Landmark groups to compute, some of :data:`PART_GROUPS` (``"pose"``, ``"face"``,
        ``"hands"``; a comma-separated string is accepted); None or ``"all"``: every group with
        Holistic. Without the face, only the pose and/or hand graphs run
        (:class:`_PartsRunner`: about 2x faster for the pose alone); with it, Holistic (it finds
        the face from the body). Groups not asked for are all-NaN.
        :func:`parts_for_classes` gives the groups a model's classes need. ``hands`` does not
        apply without the face (the hand graph then runs on every model frame).
    max_every : int, optional
        Motion-driven sampling (:class:`MotionSampler`): the model runs on a frame when
        ``max_every`` frames have passed since the last model frame, or ``every`` have and more
        than ``motion_threshold`` per cent of the region around the performer changed; the last
        frame of each stretch is always a model frame. Still frames are skipped and
        interpolated like the others. None (default) or ``max_every == every``: fixed
        sampling, every ``every``-th frame.
    motion_threshold : float
        Per cent of the luma samples around the performer that must have changed (by more
        than :data:`MOTION_NOISE` grey levels) for a frame within ``max_every`` to be a model frame.

    Returns
    -------
    Landmarks

    Raises
    ------
    MissingDependencyError
        When mediapipe is not installed (``pip install 'musicperf[landmarks]'``).
    DecodeError
        When the video cannot be read.
    """
    video, params, segments = _job(
        video, hands=hands, refine_face=refine_face, min_detection_confidence=min_detection_confidence,
        min_tracking_confidence=min_tracking_confidence, start=start, end=end, max_frames=max_frames, every=every,
        workers=workers, parts=parts, max_every=max_every, motion_threshold=motion_threshold)

    def compute():
        lm = _extract_segments(video, params=params, segments=segments, every=int(every), progress=progress)
        return lm.arrays(), lm.file_meta()

    from musicperf.features.cache import cached

    arrays, meta, hit = cached(video, extractor=EXTRACTOR, version=EXTRACTOR_VERSION, params=params,
                               compute=compute, cache_dir=cache_dir, use_cache=cache)
    lm = Landmarks.from_arrays(arrays, meta, where=f"the landmark cache of '{video}'")
    lm.meta["cache_hit"] = hit
    return lm


def _job(video, *, hands, refine_face, min_detection_confidence, min_tracking_confidence, start, end, max_frames,
         every, workers, parts, max_every, motion_threshold) -> tuple[Path, dict, list]:
    """Check the settings of :func:`extract_landmarks`; ``(video, params, segments)``: ``params`` is
    the cache key's and the workers' (MediaPipe settings, stretch, sampling)."""
    if hands not in ("never", "fallback", "fill"):
        raise ParameterError(f"hands must be 'never', 'fallback' or 'fill', got {hands!r}")
    for name, v in (("min_detection_confidence", min_detection_confidence),
                    ("min_tracking_confidence", min_tracking_confidence)):
        if not 0.0 <= v <= 1.0:
            raise ParameterError(f"{name} must be in [0, 1], got {v}")
    if max_frames is not None and max_frames < 1:
        raise ParameterError(f"max_frames must be >= 1, got {max_frames}")
    if not (isinstance(every, (int, np.integer)) and every >= 1):
        raise ParameterError(f"every must be a positive number of frames, got {every!r}")
    if workers is not None and not (isinstance(workers, (int, np.integer)) and workers >= 1):
        raise ParameterError(f"workers must be a positive number of processes or None, got {workers!r}")
    parts = parse_parts(parts)
    if max_every is not None:
        if not (isinstance(max_every, (int, np.integer)) and max_every >= every):
            raise ParameterError(f"max_every must be a number of frames >= every ({every}), got {max_every!r}")
        if not (np.isfinite(motion_threshold) and 0 <= motion_threshold <= 100):
            raise ParameterError(f"motion_threshold must be a percentage in [0, 100], got {motion_threshold!r}")
        if max_every == every:
            max_every = None
    video = Path(video)
    if not video.is_file():
        raise DecodeError(f"video '{video}' does not exist")
    _mediapipe()  # fail early, before decoding anything, when it is missing
    params = {"hands": hands, "refine_face": bool(refine_face), "min_detection_confidence": float(min_detection_confidence),
              "min_tracking_confidence": float(min_tracking_confidence), "start": float(start),
              "end": None if end is None else float(end), "max_frames": max_frames}
    segments = _segments(video, float(start), end, workers) if max_frames is None else [(float(start), end)]
    # Keys only when not the defaults, so caches written before these options stay valid.
    if every != 1:
        params["every"] = int(every)
    if len(segments) > 1:
        params["segments"] = len(segments)
    if parts is not None:
        params["parts"] = list(parts)
    if max_every is not None:
        params["max_every"] = int(max_every)
        params["motion_threshold"] = float(motion_threshold)

    return video, params, segments


#: Shortest stretch of video (seconds) worth a MediaPipe process of its own when ``workers=None``
#: (starting one costs about 2 s: the interpreter, MediaPipe and its graph).
MIN_SEGMENT_SECONDS = 10.0


def _segments(video: Path, start: float, end: float | None, workers: int | None) -> list[tuple[float, float | None]]:
    """Contiguous half-open time stretches ``[a, b)`` covering ``[start, end)``, one per worker."""
    if workers == 1:
        return [(start, end)]
    from musicperf.io.video import probe

    info = probe(video)
    stop = info.duration if end is None else min(float(end), info.duration)
    span = max(0.0, stop - start)
    if workers is None:
        workers = max(1, min(os.cpu_count() or 1, 4, int(span // MIN_SEGMENT_SECONDS)))
    n = max(1, min(int(workers), int(span * info.fps) // 2 or 1))
    if n == 1:
        return [(start, end)]
    # Cut on frame boundaries (half a frame before a frame time), so each frame belongs to
    # exactly one stretch whatever rounding the timestamps carry.
    cuts = [start + (np.floor(span * k / n * info.fps) - 0.5) / info.fps for k in range(1, n)]
    bounds = [start, *cuts, end]
    return [(float(a), None if b is None else float(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _model_frames(video: str, params: dict, start: float, end: float | None, every: int, progress: bool,
                  info_out: dict):
    """MediaPipe on one stretch ``[start, end)``: yields ``(index, row)`` per model frame (local
    index; ``row`` as :class:`_HolisticRunner` returns it); ``info_out`` receives ``times`` (every
    decoded frame's), ``fps``, ``width`` and ``height``."""
    from musicperf.io.video import VideoReader, _to_array

    runner = _make_runner(params)
    sampler = None
    if params.get("max_every") is not None:
        sampler = MotionSampler(every=every, max_every=int(params["max_every"]),
                                threshold=float(params["motion_threshold"]))
    times = info_out.setdefault("times", [])
    held = None  # (index, frame) of the last decoded frame when it was not a model frame
    try:
        with VideoReader(video) as reader:
            info = reader.info
            info_out.update(fps=float(info.fps), width=int(info.width), height=int(info.height))
            rotation = info.rotation if info is not None else 0
            total = info.n_frames if end is None else int((end - start) * info.fps)
            if params["max_frames"] is not None:
                total = min(total, params["max_frames"])
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, desc=f"landmarks {Path(video).name}", unit="frame", dynamic_ncols=True,
                           leave=False)
            # Frames the model skips are decoded (the stream needs it) but never converted to RGB.
            for i, (t, frame) in enumerate(reader._frames(start, end, size=None, convert=False)):
                times.append(t)
                if sampler is None:
                    if i % every == 0:
                        yield i, runner(_to_array(frame, size=None, rotation=rotation, fmt="rgb24"))
                else:
                    # The motion is measured on the stored picture; with a rotated video the
                    # performer's box (display coordinates) does not apply: the whole picture counts.
                    y = sampler.luma(frame)
                    if sampler.wants(i, y):
                        row = runner(_to_array(frame, size=None, rotation=rotation, fmt="rgb24"))
                        yield i, row
                        sampler.ran(i, y, None if rotation else _points(row))
                        held = None
                    else:
                        held = (i, frame)
                if bar is not None:
                    bar.update(1)
                if params["max_frames"] is not None and len(times) >= params["max_frames"]:
                    break
            if held is not None:  # end on a model frame: nothing after the last sample is merely held
                yield held[0], runner(_to_array(held[1], size=None, rotation=rotation, fmt="rgb24"))
            if bar is not None:
                bar.close()
    finally:
        runner.close()


def _run_segment(video: str, params: dict, start: float, end: float | None, every: int, progress: bool) -> dict:
    """MediaPipe on one stretch ``[start, end)``: a dict of arrays (``times``, ``sampled`` local
    indices of the model frames, and per model frame ``pose``, ``pose_visibility``, ``face``,
    ``left_hand``, ``right_hand``, ``hand_source``) plus ``fps``, ``width``, ``height``."""
    info: dict = {}
    rows, sampled = [], []
    for i, row in _model_frames(video, params, start, end, every, progress, info):
        rows.append(row)
        sampled.append(i)
    lm = empty_landmarks(len(rows), fps=info["fps"], width=info["width"], height=info["height"])
    for j, (pose, vis, face, left, right, source) in enumerate(rows):
        if pose is not None:
            lm.pose[j], lm.pose_visibility[j] = pose, vis
        if face is not None:
            lm.face[j] = face
        if left is not None:
            lm.left_hand[j] = left
        if right is not None:
            lm.right_hand[j] = right
        lm.hand_source[j] = source
    out = {name: getattr(lm, name) for name in ("pose", "pose_visibility", "face", "left_hand", "right_hand",
                                                 "hand_source")}
    out.update(times=np.asarray(info["times"], dtype=np.float64), sampled=np.asarray(sampled, dtype=np.int64),
               fps=info["fps"], width=info["width"], height=info["height"])
    return out


def _run_segments_in_processes(video: Path, params: dict, segments, every: int, *, rows: bool = False) -> list[dict]:
    """One fresh interpreter per stretch (``python -m musicperf.features._landmark_worker``);
    ``rows``: each returns compact rows (:func:`musicperf.features.landmark_rows._run_segment_rows`),
    not whole landmarks.

    Fresh interpreters rather than a ``multiprocessing`` pool: a forked child would inherit the
    caller's torch/OpenMP thread pools and locks, and a spawned one re-imports the caller's
    ``__main__`` (a script without a main guard would run again).
    """
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="musicperf-landmarks-") as tmp:
        procs = []
        try:
            for k, (a, b) in enumerate(segments):
                out = Path(tmp) / f"segment{k}.npz"
                job = json.dumps({"video": str(video), "params": params, "start": a, "end": b, "every": every,
                                  "out": str(out), "parent": os.getpid(), "rows": bool(rows)})
                env = dict(os.environ, GLOG_minloglevel="2", OMP_NUM_THREADS="1")
                procs.append((out, subprocess.Popen([sys.executable, "-m", "musicperf.features._landmark_worker", job],
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)))
            results = []
            for out, proc in procs:
                _, err = proc.communicate()
                if proc.returncode != 0:
                    lines = [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
                    reason = lines[-1] if lines else f"exit status {proc.returncode}"
                    raise DecodeError(f"'{video}': landmark worker failed: {reason}")
                with np.load(out, allow_pickle=False) as z:
                    d = {k: z[k] for k in z.files}
                for key in ("fps", "width", "height", "sampled", "last_index"):
                    if key in d and d[key].ndim == 0:
                        d[key] = d[key].item()
                results.append(d)
            return results
        finally:
            for _, proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _extract_segments(video: Path, *, params: dict, segments, every: int, progress: bool) -> Landmarks:
    t0 = time.perf_counter()
    if len(segments) == 1:
        a, b = segments[0]
        parts = [_run_segment(str(video), params, a, b, every, progress)]
    else:
        parts = _run_segments_in_processes(video, params, segments, every)
    fps, width, height = parts[0]["fps"], parts[0]["width"], parts[0]["height"]
    names = ("pose", "pose_visibility", "face", "left_hand", "right_hand", "hand_source")
    offsets = np.cumsum([0] + [len(p["times"]) for p in parts[:-1]])
    times = np.concatenate([p["times"] for p in parts])
    sampled = np.concatenate([off + p["sampled"] for off, p in zip(offsets, parts)])
    n, k = len(times), len(sampled)
    if n == 0:
        raise DecodeError(f"'{video}': no frames between {params['start']} s and {params['end']} s")
    lm = empty_landmarks(n, fps=fps, width=width, height=height)
    for name in names:
        values = np.concatenate([p[name] for p in parts])
        if k < n:
            if name == "hand_source":  # categorical: the nearest model frame's
                values = values[np.clip(np.rint(np.interp(np.arange(n), sampled, np.arange(k))).astype(int), 0, k - 1)]
            else:
                values = interpolate_samples(values, sampled, n)
        setattr(lm, name, values)
    lm.times = times
    seconds = time.perf_counter() - t0
    lm.meta = {"extractor": EXTRACTOR, "version": EXTRACTOR_VERSION, "params": params, "video": str(video),
               "model_frames": k, "segments": len(segments), "seconds": round(seconds, 3),
               "frames_per_second": round(n / seconds, 3) if seconds > 0 else None}
    return lm


def interpolate_samples(values: np.ndarray, sampled: np.ndarray, n: int) -> np.ndarray:
    """Fill frames between sampled frames by linear interpolation in time.

    Parameters
    ----------
    values : np.ndarray, shape (k, ...)
        Values at the sampled frames (NaN where not detected).
    sampled : np.ndarray, shape (k,), int
        Increasing frame indices of the samples.
    n : int
        Frames in all.

    Returns
    -------
    np.ndarray, shape (n, ...), values.dtype
        Sampled frames unchanged; a frame between two samples is their time-weighted mean (NaN
        if either is NaN: a point missing on one side is not invented); frames after the last
        sample hold it, frames before the first take it.
    """
    values = np.asarray(values)
    sampled = np.asarray(sampled, dtype=np.int64)
    if len(sampled) != len(values) or len(sampled) == 0:
        raise ParameterError(f"need one value per sampled frame, got {len(values)} values for {len(sampled)} frames")
    idx = np.arange(n)
    right = np.clip(np.searchsorted(sampled, idx, side="left"), 0, len(sampled) - 1)
    left = np.clip(np.searchsorted(sampled, idx, side="right") - 1, 0, len(sampled) - 1)
    span = (sampled[right] - sampled[left]).astype(np.float64)
    w = np.where(span > 0, (idx - sampled[left]) / np.where(span > 0, span, 1), 0.0)
    w = w.reshape((n,) + (1,) * (values.ndim - 1)).astype(np.float32)
    out = (1 - w) * values[left] + w * values[right]
    return out.astype(values.dtype, copy=False)
