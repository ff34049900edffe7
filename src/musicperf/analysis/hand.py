"""The fingering hand's box from MediaPipe landmarks: the hand detector of 002 Section V-B.

002 (V-B, Figure 4) "detect[s] and track[s] the left hand for each player using the KLT
tracker". Here the detection is MediaPipe Holistic (through
:func:`musicperf.features.landmarks.extract_landmarks`) on a few frames at the start of the
analysed span; the box it gives is then KLT-tracked by
:func:`musicperf.analysis.motion.region_motion` like a box given by the user.

The box of a frame comes from the hand's 21 landmarks where MediaPipe found the hand; where it
found only the body (the synthetic performer's cartoon hands, small or blurred hands), from the
pose's wrist, pinky and index points of that side, which mark the wrist and the knuckles: the
box is then a square centred on the knuckles, three wrist-to-knuckle distances wide (a hand with
curled fingers is about that size). Per-frame boxes are combined by
their median (one bad detection does not move it).

"Left" is the performer's anatomical left, MediaPipe's convention: the fingering hand of a
right-handed violinist or guitarist, seen on the image right when they face the camera.

Imports numpy; mediapipe and PyAV only inside :func:`detect_hand_region` (through
:mod:`musicperf.features.landmarks`). Must not import torch, OpenCV or matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicperf.analysis.motion import Region
from musicperf.errors import ParameterError

__all__ = ["HandDetection", "hand_box_from_landmarks", "detect_hand_region", "POSE_HAND_POINTS"]

#: MediaPipe pose indices of each side's wrist, pinky, index and thumb points.
POSE_HAND_POINTS = {"left": (15, 17, 19, 21), "right": (16, 18, 20, 22)}

#: A hand is about this many times as long as the wrist-to-knuckle distance of the pose points.
_HAND_LENGTHS = 3.0


@dataclass
class HandDetection:
    """Where the fingering hand is, and how that was found.

    Attributes
    ----------
    region : Region or None
        Box in pixels (None when no frame showed the hand or the body).
    source : str
        ``"hand landmarks"``, ``"pose wrist"`` or ``"none"``.
    frames : int
        Frames examined.
    found : int
        Frames that gave a box.
    """

    region: Region | None
    source: str
    frames: int
    found: int


def _median_box(boxes: list[np.ndarray], margin: float, width: int, height: int) -> Region:
    b = np.median(np.asarray(boxes, dtype=float), axis=0)
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    x0, y0 = max(0.0, x0 - margin * w), max(0.0, y0 - margin * h)
    x1, y1 = min(float(width), x1 + margin * w), min(float(height), y1 + margin * h)
    return Region(float(x0), float(y0), float(max(x1 - x0, 2.0)), float(max(y1 - y0, 2.0)))


def hand_box_from_landmarks(lm, *, side: str = "left", margin: float = 0.25, min_size: float = 8.0,
                            min_visibility: float = 0.1) -> HandDetection:
    """The box of one hand over the frames of a :class:`~musicperf.features.landmarks.Landmarks`.

    Parameters
    ----------
    lm : Landmarks
        Landmarks of a few frames (normalised coordinates; ``lm.width``, ``lm.height`` pixels).
    side : {"left", "right"}
        The performer's anatomical side.
    margin : float
        Fraction of the box's size added on every side (the hand moves during vibrato; the KLT
        tracker needs corners of the hand inside the box).
    min_size : float
        Smallest width and height in pixels of a frame's box before the margin.
    min_visibility : float
        Frames whose pose wrist has a lower MediaPipe visibility are not used, nor frames below
        80 % of the highest visibility seen (video-mode Holistic starts a clearly visible wrist
        at 0.15-0.3 and raises it over the first 10-20 frames while its location converges).

    Returns
    -------
    HandDetection
        Hand landmarks are used where any frame has them (they outline the whole hand); the
        pose's points otherwise.
    """
    if side not in POSE_HAND_POINTS:
        raise ParameterError(f"side must be 'left' or 'right', got {side!r}")
    n = len(lm)
    hand = lm.pixels(f"{side}_hand")  # (T, 21, 2)
    boxes = []
    for t in range(n):
        p = hand[t][np.isfinite(hand[t]).all(1)]
        if len(p) >= 5:
            lo, hi = p.min(0), p.max(0)
            c, size = (lo + hi) / 2, np.maximum(hi - lo, min_size)
            boxes.append(np.r_[c - size / 2, c + size / 2])
    if boxes:
        return HandDetection(_median_box(boxes, margin, lm.width, lm.height), "hand landmarks", n, len(boxes))
    pose = lm.pixels("pose")  # (T, 33, 2)
    vis = np.nan_to_num(lm.pose_visibility, nan=0.0)
    wi, pi, ii, _ti = POSE_HAND_POINTS[side]
    ok = np.isfinite(pose[:, [wi, pi, ii]]).all(axis=(1, 2)) & (vis[:, wi] >= min_visibility)
    if ok.any():
        # video-mode Holistic smooths the pose: its points converge over the first 10-15 frames
        # while their visibility rises, so the frames near the highest visibility are used
        ok &= vis[:, wi] >= 0.8 * vis[ok, wi].max()
    for t in np.flatnonzero(ok):
        wrist = pose[t, wi]
        knuckles = (pose[t, pi] + pose[t, ii]) / 2
        reach = float(np.linalg.norm(knuckles - wrist))
        size = max(_HAND_LENGTHS * reach, min_size)
        c = knuckles  # the pose's pinky and index points lie at the knuckles: mid-hand for curled fingers
        boxes.append(np.r_[c - size / 2, c + size / 2])
    if boxes:
        return HandDetection(_median_box(boxes, margin, lm.width, lm.height), "pose wrist", n, len(boxes))
    return HandDetection(None, "none", n, 0)


def detect_hand_region(video, *, side: str = "left", start: float = 0.0, n_frames: int = 20,
                       margin: float = 0.25, cache: bool = True, cache_dir=None) -> HandDetection:
    """Find the fingering hand in the first frames of a video with MediaPipe (002 V-B).

    Runs :func:`~musicperf.features.landmarks.extract_landmarks` (Holistic, plus the
    stand-alone hand detector where Holistic misses a hand) on ``n_frames`` consecutive frames
    from ``start`` and combines them with :func:`hand_box_from_landmarks`. A few frames are
    enough: the box only starts the KLT tracker.

    Parameters
    ----------
    video : str or Path
    side : {"left", "right"}
        The performer's anatomical side of the fingering hand.
    start : float
        Seconds: where the analysis (and the tracking) starts.
    n_frames : int
        Frames examined (MediaPipe takes 0.1-0.5 s per frame on a CPU; its video-mode pose
        needs 10-15 frames to settle).
    margin : float
        See :func:`hand_box_from_landmarks`.
    cache, cache_dir
        The landmark cache of :mod:`musicperf.features.cache`.

    Returns
    -------
    HandDetection
        ``region`` is None when neither a hand nor a body was found.

    Raises
    ------
    MissingDependencyError
        When mediapipe is not installed.
    DecodeError
        When the video cannot be read.
    """
    from musicperf.features.landmarks import extract_landmarks

    if n_frames < 1:
        raise ParameterError(f"n_frames must be >= 1, got {n_frames}")
    lm = extract_landmarks(Path(video), hands="fill", refine_face=False, start=float(start), max_frames=int(n_frames),
                           cache=cache, cache_dir=cache_dir)
    return hand_box_from_landmarks(lm, side=side, margin=margin)
