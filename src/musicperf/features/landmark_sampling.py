"""Which landmark groups a model needs, and motion-driven choice of the frames the model runs on.

Pure NumPy (no MediaPipe): :func:`musicperf.features.landmarks.extract_landmarks` uses them, and
they are re-exported there.
"""

from __future__ import annotations

import numpy as np

from musicperf.errors import ParameterError

__all__ = ["PART_GROUPS", "GESTURE_PARTS", "parse_parts", "parts_for_classes", "MOTION_NOISE", "MotionSampler"]


#: Landmark groups a model can ask for (``extract_landmarks(parts=...)``); ``"hands"`` is both.
PART_GROUPS = ("pose", "face", "hands")

#: Which landmark groups each gesture of Table 2 of ``001`` (and each Table 4 super-class) needs,
#: after the features of :mod:`musicperf.features.landmark_features` that describe it: head
#: rotation, eyes, brows and mouth come from the face mesh; wrists, shoulders and torso from the
#: pose; vibrato and the hand gestures from the hand landmarks (the wrist of the pose is their
#: fallback). The pose is always included: every feature is normalised by the shoulder width.
#: Names are matched like annotation names (:func:`musicperf.labels.taxonomy.normalize_name`).
GESTURE_PARTS = {
    "facial expression": ("face",), "eyes closed": ("face",), "frowning": ("face",),
    "nodding": ("face",), "lifting head": ("face",), "expressive head movement": ("face",),
    "upbeat in head movement": ("face",), "head related action": ("face",),
    "right hand round": ("hands",), "left hand gesture": ("hands",), "vibrato": ("hands",),
    "repositioning guitar": ("hands",), "right hand action": ("hands",), "left hand action": ("hands",),
    "expressive shoulder movement": (), "sympathetic body movement": (), "upper body movement": (),
    "minimal movement": (), "freeze": (), "relative stillness": (), "expressive preparation": (),
    "physical energy": (), "normal play": (),
}


def parse_parts(parts) -> tuple[str, ...] | None:
    """Landmark groups from a setting: None or ``"all"`` (every group, Holistic), else an iterable
    or comma-separated string of :data:`PART_GROUPS` (``left_hand`` / ``right_hand`` read as
    ``hands``). Returns them in :data:`PART_GROUPS` order, or None for all.

    Raises
    ------
    ParameterError
        For an unknown or empty list.
    """
    if parts is None:
        return None
    items = parts.split(",") if isinstance(parts, str) else list(parts)
    names = {str(p).strip().lower() for p in items if str(p).strip()}
    if names == {"all"}:
        return None
    names = {"hands" if n in ("left_hand", "right_hand", "hand") else n for n in names}
    unknown = sorted(names - set(PART_GROUPS))
    if unknown or not names:
        raise ParameterError(f"landmark parts must be some of {', '.join(PART_GROUPS)} (or 'all'), "
                             f"got {', '.join(unknown) if unknown else 'none'}")
    out = tuple(p for p in PART_GROUPS if p in names)
    return None if out == PART_GROUPS else out


def parts_for_classes(classes) -> tuple[str, ...] | None:
    """The landmark groups a model of ``classes`` needs (:data:`GESTURE_PARTS`), for ``parts=``.

    The pose always; the face mesh for facial and head gestures; the hands for hand gestures. A
    class not in the table (a custom taxonomy) needs everything: returns None (all groups).
    """
    from musicperf.labels.taxonomy import normalize_name

    need = {"pose"}
    for c in classes:
        key = normalize_name(c)
        if key not in GESTURE_PARTS:
            return None
        need.update(GESTURE_PARTS[key])
    out = tuple(p for p in PART_GROUPS if p in need)
    return None if out == PART_GROUPS else out



#: Grey levels a luma sample must change by to count as moving in :class:`MotionSampler`: above
#: the noise of compressed video (a still frame's re-encoding changes pixels by a few levels).
MOTION_NOISE = 15


class MotionSampler:
    """Decides, frame by frame, whether the landmark model must run: motion-driven sampling.

    A frame is a model frame when at least ``max_every`` frames have passed since the last
    model frame, or at least ``every`` have and more than ``threshold`` per cent of the luma
    samples inside the region of interest changed by more than :data:`MOTION_NOISE` grey levels
    since the last model frame. Still frames (a held note, duplicated frames of a frame-rate
    conversion) are skipped and later interpolated; a fast movement brings the model back
    after ``every`` frames.

    The region of interest follows the performer: the box around every point detected in the
    last model frame, widened by ``margin`` of its size on each side (the whole picture while
    nothing is detected), so motion in the background (audience, lights, other musicians)
    does not wake the model. The luma plane is read at every ``step``-th row and column (a
    640 x 480 frame: 160 x 120 samples), which costs microseconds and needs no conversion to RGB.

    Cropping the frame given to MediaPipe to this region was measured too and did not pay:
    MediaPipe already crops its own regions around the tracked person, and its cost is in the
    models (Holistic 159 ms per frame on the full 640 x 480 picture against 224 ms on the crop,
    within the noise of the loaded 2-core machine), so the model sees the full frame.
    """

    def __init__(self, *, every: int, max_every: int, threshold: float, margin: float = 0.25, step: int = 4):
        if max_every < every:
            raise ParameterError(f"max_every ({max_every}) must be >= every ({every})")
        if not threshold >= 0:
            raise ParameterError(f"motion threshold must be >= 0 per cent, got {threshold}")
        self.every, self.max_every, self.threshold = int(every), int(max_every), float(threshold)
        self.margin, self.step = float(margin), int(step)
        self.last = None  # luma samples of the last model frame
        self.last_index = None
        self.roi = None  # (y0, y1, x0, x1) in sample units, None: everything

    def luma(self, frame) -> np.ndarray:
        """Every ``step``-th luma sample of an ``av.VideoFrame`` (or an (H, W[, 3]) array) as int16."""
        if isinstance(frame, np.ndarray):
            y = frame if frame.ndim == 2 else frame.mean(axis=-1)
        elif frame.format.name.startswith(("yuv", "yuvj", "nv12", "nv21", "gray")):
            p = frame.planes[0]
            y = np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[: frame.height, : frame.width]
        else:
            y = frame.to_ndarray(format="gray")
        return np.asarray(y[:: self.step, :: self.step], dtype=np.int16)

    def motion(self, y: np.ndarray) -> float:
        """Per cent of the samples in the region of interest that moved since the last model frame."""
        if self.last is None or self.last.shape != y.shape:
            return 100.0
        a, b = y, self.last
        if self.roi is not None:
            y0, y1, x0, x1 = self.roi
            a, b = a[y0:y1, x0:x1], b[y0:y1, x0:x1]
        if a.size == 0:
            return 100.0
        return 100.0 * float((np.abs(a - b) > MOTION_NOISE).mean())

    def wants(self, index: int, y: np.ndarray) -> bool:
        """Whether frame ``index`` (with luma samples ``y``) is a model frame."""
        if self.last_index is None:
            return True
        gap = index - self.last_index
        if gap >= self.max_every:
            return True
        return gap >= self.every and self.motion(y) > self.threshold

    def ran(self, index: int, y: np.ndarray, points: np.ndarray | None) -> None:
        """The model ran on frame ``index``; ``points`` ``(N, 2)`` normalised x, y it found (NaN allowed)."""
        self.last, self.last_index = y, index
        self.roi = None
        if points is not None:
            pts = points[np.isfinite(points).all(axis=1)]
            if len(pts):
                h, w = y.shape
                (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
                mx, my = self.margin * max(x1 - x0, 0.05), self.margin * max(y1 - y0, 0.05)
                self.roi = (max(0, int((y0 - my) * h)), min(h, int(np.ceil((y1 + my) * h))),
                            max(0, int((x0 - mx) * w)), min(w, int(np.ceil((x1 + mx) * w))))
