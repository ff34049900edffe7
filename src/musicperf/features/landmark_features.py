"""Gesture features from landmarks, normalised for body size and position.

The gestures of Table 2 of ``001`` are movements of the head, face, shoulders and hands. Each
feature here targets some of them, in units that do not depend on the camera distance or the
background:

=====================  ===================================================  ================
feature                what                                                 gestures
=====================  ===================================================  ================
head_pitch/yaw/roll    head rotation, degrees (weak-perspective fit)        Nodding, Lifting
 + ``_vel``            and its rate, degrees per second                     head, Upbeat,
                                                                            Expressive head
ear_left/right         eye aspect ratio: lid gap / eye width                Eyes closed
brow_raise, brow_gap   brow-eye distance and inner-brow gap / eye span      Frowning
mouth_open/width/hgt   mouth shape / eye span                               Facial expression
shoulder_elev_l/r      shoulder height under the ears / shoulder width      Shoulder movement
shoulder_tilt          shoulder line angle, degrees                         Shoulder, Sympath.
torso_lean             hip-to-shoulder angle from vertical, degrees         Sympathetic,
torso_dx/dy            shoulder centre offset from its median / width       Preparation
wrist x/y, speed       wrists relative to the shoulder centre / width       Right hand round,
                       and their speeds in widths per second                Left hand gesture
vibrato_power/ratio    left-hand motion power in 4-9 Hz (log10) and share   Vibrato
motion_energy          mean speed of upper-body points, widths/second       Freeze, Minimal
                                                                            movement, Energy
has_*                  part detected (or bridged) in the frame              all
=====================  ===================================================  ================

Normalisation: lengths are divided by the performer's shoulder width, a per-video robust
constant (median over frames; when the pose is never found: 2.2 x the face width, then 4 x
the hand length, then a quarter of the frame height); positions are taken relative to the
shoulder centre of the same frame. Pixel coordinates are used (normalised MediaPipe
coordinates are not isotropic when the frame is not square).

Missing detections stay NaN until :func:`feature_matrix`; gaps up to ``max_gap`` seconds
between two detections are bridged by linear interpolation first (:func:`interpolate_gaps`).

Imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicperf.errors import ParameterError

__all__ = [
    "FEATURE_NAMES", "FEATURES_VERSION", "GestureFeatures", "gesture_features", "feature_matrix",
    "interpolate_gaps", "head_pose", "project_head", "eye_aspect_ratio", "brow_features",
    "mouth_features", "motion_spectrum", "band_power", "FACE_MODEL", "FACE_POINTS", "gesture_features_from_points",
]

FEATURES_VERSION = "1"

FEATURE_NAMES = (
    "head_pitch", "head_yaw", "head_roll", "head_pitch_vel", "head_yaw_vel", "head_roll_vel",
    "ear_left", "ear_right", "brow_raise", "brow_gap", "mouth_open", "mouth_width", "mouth_height",
    "shoulder_elev_left", "shoulder_elev_right", "shoulder_tilt", "torso_lean", "torso_dx", "torso_dy",
    "left_wrist_x", "left_wrist_y", "right_wrist_x", "right_wrist_y", "left_wrist_speed", "right_wrist_speed",
    "vibrato_power", "vibrato_ratio", "motion_energy",
    "has_pose", "has_face", "has_left_hand", "has_right_hand",
)

#: A canonical head in centimetres for the face-mesh indices the features use: x to the
#: image right for a performer facing the camera (so the performer's right eye, 33/133, has
#: negative x), y down, z away from the camera, origin between the eyes. Proportions follow
#: common adult anthropometry (outer eye corners 9 cm apart, nose tip 3.5 cm below the eye
#: line and 2.5 cm in front of it, chin 8.7 cm below); the angles it gives are approximate
#: in absolute terms on real faces, exact on a face with these proportions.
FACE_MODEL = {
    33: (-4.5, 0.0, 2.3), 133: (-1.5, 0.0, 1.9), 159: (-3.0, -0.5, 1.6), 145: (-3.0, 0.5, 1.8),
    362: (1.5, 0.0, 1.9), 263: (4.5, 0.0, 2.3), 386: (3.0, -0.5, 1.6), 374: (3.0, 0.5, 1.8),
    70: (-4.8, -2.3, 2.2), 105: (-3.2, -2.8, 1.6), 107: (-1.3, -2.5, 1.4),
    336: (1.3, -2.5, 1.4), 334: (3.2, -2.8, 1.6), 300: (4.8, -2.3, 2.2),
    61: (-2.4, 5.6, 2.0), 291: (2.4, 5.6, 2.0), 13: (0.0, 5.3, 1.2), 14: (0.0, 5.7, 1.3),
    0: (0.0, 4.9, 1.0), 17: (0.0, 6.6, 1.4), 1: (0.0, 3.5, -0.6), 168: (0.0, 0.0, 1.5),
    152: (0.0, 8.7, 1.6), 10: (0.0, -6.0, 2.6), 234: (-7.0, 1.5, 6.5), 454: (7.0, 1.5, 6.5),
}
_FACE_IDX = np.array(list(FACE_MODEL), dtype=int)
_FACE_XYZ = np.array(list(FACE_MODEL.values()), dtype=float)
#: The face-mesh points the features read (every index below is one of them), in this order:
#: :func:`gesture_features` and the per-frame tracks keep only these of the 478.
FACE_POINTS = tuple(int(i) for i in _FACE_IDX)
_F = {m: j for j, m in enumerate(FACE_POINTS)}  # face-mesh index -> column of a FACE_POINTS array

#: The same head seen through the pose model's face points (nose, eye centres, ears, mouth
#: corners), used when the face mesh is missing but the pose is not.
POSE_HEAD_MODEL = {
    0: (0.0, 3.5, -0.6), 2: (3.0, 0.0, 1.7), 5: (-3.0, 0.0, 1.7), 7: (7.2, 1.5, 7.0),
    8: (-7.2, 1.5, 7.0), 9: (2.4, 5.6, 2.0), 10: (-2.4, 5.6, 2.0),
}
_POSE_IDX = np.array(list(POSE_HEAD_MODEL), dtype=int)
_POSE_XYZ = np.array(list(POSE_HEAD_MODEL.values()), dtype=float)

# Face-mesh indices (the performer's left/right).
_R_EYE = (33, 133, 159, 145)  # outer, inner, upper lid, lower lid
_L_EYE = (263, 362, 386, 374)
_R_BROW, _L_BROW = (70, 105, 107), (300, 334, 336)


@dataclass
class GestureFeatures:
    """Per-frame gesture features of one video.

    Attributes
    ----------
    values : np.ndarray, shape (T, F), float32
        Features in :data:`FEATURE_NAMES` order; NaN where not computable.
    names : tuple of str
    fps : float
    scale : float
        The shoulder width in pixels used to normalise lengths.
    meta : dict
    """

    values: np.ndarray
    names: tuple = FEATURE_NAMES
    fps: float = 25.0
    scale: float = 1.0
    meta: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.values[:, self.names.index(name)]
        except ValueError:
            raise ParameterError(f"no feature named {name!r}; known: {', '.join(self.names)}") from None


# --------------------------------------------------------------------------- helpers
def interpolate_gaps(x: np.ndarray, max_gap: int) -> np.ndarray:
    """Bridge runs of NaN frames no longer than ``max_gap`` by linear interpolation.

    Parameters
    ----------
    x : np.ndarray, shape (T, ...)
        Time on the first axis; each other element is interpolated on its own.
    max_gap : int
        Longest run of missing frames (between two valid ones) that is filled. Runs at the
        start or end, and longer runs, stay NaN.

    Returns
    -------
    np.ndarray, same shape, float64
    """
    if max_gap < 0:
        raise ParameterError(f"max_gap must be >= 0 frames, got {max_gap}")
    x = np.asarray(x, dtype=np.float64)
    out = x.reshape(len(x), -1).copy()
    if len(x) == 0 or max_gap == 0:
        return out.reshape(x.shape)
    t = np.arange(len(x))
    for j in range(out.shape[1]):
        col = out[:, j]
        ok = np.isfinite(col)
        if ok.all() or ok.sum() < 2:
            continue
        vi = np.flatnonzero(ok)
        gaps = np.diff(vi) - 1
        for a, g in zip(vi[:-1], gaps):
            if 0 < g <= max_gap:
                b = a + g + 1
                col[a + 1 : b] = np.interp(t[a + 1 : b], [a, b], [col[a], col[b]])
    return out.reshape(x.shape)


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)


def _rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """``Rz(roll) Ry(-yaw) Rx(-pitch)`` (degrees) in the FACE_MODEL frame (y down, z away)."""
    p, y, r = np.deg2rad([-pitch, -yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def project_head(pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0, *, scale: float = 3.0,
                 center=(160.0, 100.0), n_points: int = 478) -> np.ndarray:
    """Face-mesh pixel positions of :data:`FACE_MODEL` turned by the given angles (for tests, demos).

    Parameters
    ----------
    pitch, yaw, roll : float
        Degrees; pitch > 0 looks up, yaw > 0 turns the face towards the image right, roll > 0
        tilts it clockwise on screen.
    scale : float
        Pixels per centimetre (weak perspective).
    center : (float, float)
        Pixel position of the model origin (between the eyes).

    Returns
    -------
    np.ndarray, shape (n_points, 2)
        NaN except at the indices of :data:`FACE_MODEL`.
    """
    out = np.full((n_points, 2), np.nan)
    xyz = _FACE_XYZ @ _rotation(pitch, yaw, roll).T
    out[_FACE_IDX] = scale * xyz[:, :2] + np.asarray(center, dtype=float)
    return out


def _fit_angles(p: np.ndarray, X: np.ndarray) -> tuple[float, float, float]:
    """Weak-perspective fit of model points ``X (N, 3)`` to image points ``p (N, 2)``."""
    pc = p - p.mean(axis=0)
    xc = X - X.mean(axis=0)
    m, *_ = np.linalg.lstsq(xc, pc, rcond=None)  # (3, 2): pc ~ xc @ m
    u, _, vt = np.linalg.svd(m.T, full_matrices=False)  # m.T (2, 3) = s * first two rows of R
    r12 = u @ vt
    r = np.vstack([r12, np.cross(r12[0], r12[1])])
    pitch = -np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    yaw = np.degrees(np.arcsin(np.clip(r[2, 0], -1.0, 1.0)))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(pitch), float(yaw), float(roll)


def head_pose(face: np.ndarray, pose: np.ndarray | None = None, *, min_points: int = 6) -> np.ndarray:
    """Head pitch, yaw and roll per frame by a weak-perspective fit to a canonical head.

    The affine map from :data:`FACE_MODEL` to the observed points is solved by least squares;
    its closest scaled rotation (SVD) gives the angles (``R = Rz(roll) Ry(-yaw) Rx(-pitch)``).
    Frames without enough face-mesh points fall back to the pose's face points
    (:data:`POSE_HEAD_MODEL`), then NaN.

    Parameters
    ----------
    face : np.ndarray, shape (T, 468 or 478, 2)
        Face-mesh pixel coordinates (NaN where missing).
    pose : np.ndarray, shape (T, 33, 2), optional
        Pose pixel coordinates for the fallback.
    min_points : int
        Points needed for a fit (at least 4 non-coplanar).

    Returns
    -------
    np.ndarray, shape (T, 3), float64
        ``(pitch, yaw, roll)`` in degrees: pitch > 0 looking up, yaw > 0 turned towards the
        image right (the performer's left), roll > 0 clockwise on screen.
    """
    return _head_pose(np.asarray(face, dtype=np.float64)[:, _FACE_IDX], pose, min_points=min_points)


def _head_pose(face: np.ndarray, pose: np.ndarray | None, *, min_points: int) -> np.ndarray:
    """:func:`head_pose` on the :data:`FACE_POINTS` columns ``(T, 26, 2)`` only."""
    out = np.full((len(face), 3), np.nan)
    for i in range(len(face)):
        p = face[i]
        ok = np.isfinite(p).all(axis=1)
        if ok.sum() >= min_points:
            out[i] = _fit_angles(p[ok], _FACE_XYZ[ok])
            continue
        if pose is not None:
            q = np.asarray(pose[i, _POSE_IDX], dtype=np.float64)
            okq = np.isfinite(q).all(axis=1)
            if okq.sum() >= 5:
                out[i] = _fit_angles(q[okq], _POSE_XYZ[okq])
    return out


def eye_aspect_ratio(face: np.ndarray) -> np.ndarray:
    """Eye aspect ratio per eye: lid gap over eye width (0 for a closed eye).

    The single-pair form of Soukupova and Cech's EAR on face-mesh points 159/145 (upper/lower
    lid) over 33/133 (corners) for the right eye, 386/374 over 263/362 for the left.

    Parameters
    ----------
    face : np.ndarray, shape (T, 468 or 478, 2)

    Returns
    -------
    np.ndarray, shape (T, 2)
        ``(left, right)``; about 0.3 open, 0 closed; NaN when missing.
    """
    return _eye_aspect_ratio(np.asarray(face, dtype=np.float64)[:, _FACE_IDX])


def _eye_aspect_ratio(face: np.ndarray) -> np.ndarray:
    res = []
    for outer, inner, up, low in (_L_EYE, _R_EYE):
        w = _dist(face[:, _F[outer]], face[:, _F[inner]])
        res.append(_dist(face[:, _F[up]], face[:, _F[low]]) / np.where(w > 0, w, np.nan))
    return np.stack(res, axis=1)


def _eye_span(face: np.ndarray) -> np.ndarray:
    """Outer eye-corner span of a :data:`FACE_POINTS` array."""
    s = _dist(face[:, _F[33]], face[:, _F[263]])
    return np.where(s > 0, s, np.nan)


def brow_features(face: np.ndarray) -> np.ndarray:
    """Brow raise and inner-brow gap, over the outer eye-corner span.

    Parameters
    ----------
    face : np.ndarray, shape (T, 468 or 478, 2)

    Returns
    -------
    np.ndarray, shape (T, 2)
        ``brow_raise``: mean distance from each brow's three points to its eye centre;
        ``brow_gap``: distance between the inner brow ends (107, 336). Frowning lowers the
        first and shrinks the second.
    """
    return _brow_features(np.asarray(face, dtype=np.float64)[:, _FACE_IDX])


def _brow_features(face: np.ndarray) -> np.ndarray:
    span = _eye_span(face)
    d = []
    for brow, eye in ((_R_BROW, _R_EYE), (_L_BROW, _L_EYE)):
        centre = face[:, [_F[e] for e in eye]].mean(axis=1)
        d.append(np.mean([_dist(face[:, _F[b]], centre) for b in brow], axis=0))
    raise_ = np.mean(d, axis=0) / span
    gap = _dist(face[:, _F[107]], face[:, _F[336]]) / span
    return np.stack([raise_, gap], axis=1)


def mouth_features(face: np.ndarray) -> np.ndarray:
    """Mouth opening (inner lips 13-14 over corners 61-291), width and outer height over the eye span.

    Returns
    -------
    np.ndarray, shape (T, 3)
    """
    return _mouth_features(np.asarray(face, dtype=np.float64)[:, _FACE_IDX])


def _mouth_features(face: np.ndarray) -> np.ndarray:
    span = _eye_span(face)
    width = _dist(face[:, _F[61]], face[:, _F[291]])
    opening = _dist(face[:, _F[13]], face[:, _F[14]]) / np.where(width > 0, width, np.nan)
    return np.stack([opening, width / span, _dist(face[:, _F[0]], face[:, _F[17]]) / span], axis=1)


def motion_spectrum(x: np.ndarray, fps: float, *, window: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Short-time power spectrum of a (multi-dimensional) trajectory, one per frame.

    Each frame's spectrum is taken over a Hann window of ``window`` seconds centred on it
    (zero-padded at the ends) after removing the window's mean and linear trend, summed over
    the trajectory's dimensions. NaN samples count as the window mean (no motion).

    Parameters
    ----------
    x : np.ndarray, shape (T,) or (T, D)
        Positions (e.g. the left wrist relative to the body, in shoulder widths).
    fps : float
        Frames per second.
    window : float
        Seconds; rounded to a number of frames of at least 8 (1 s at 25 fps: 25 frames, 1 Hz bins).

    Returns
    -------
    freqs : np.ndarray, shape (F,)
        Hz.
    power : np.ndarray, shape (T, F)
        Squared magnitude (units of x squared), NaN rows where the window has under half
        its samples.
    """
    if fps <= 0:
        raise ParameterError(f"fps must be positive, got {fps}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    T, D = x.shape
    n = max(8, int(round(window * fps)))
    freqs = np.fft.rfftfreq(n, 1.0 / fps)
    xp = np.concatenate([np.full((n // 2, D), np.nan), x, np.full((n - 1 - n // 2, D), np.nan)])
    frames = np.lib.stride_tricks.sliding_window_view(xp, n, axis=0)[:T]  # (T, D, n)
    t = np.arange(n) - (n - 1) / 2
    power = np.empty((T, len(freqs)))
    # Each frame's window is computed on its own, so blocks of frames give the same values and
    # bound the temporaries (a dozen (T, D, n) arrays at once were ~100 MB for 10 minutes).
    for a in range(0, T, _SPECTRUM_BLOCK):
        power[a:a + _SPECTRUM_BLOCK] = _window_power(frames[a:a + _SPECTRUM_BLOCK], n, t)
    return freqs, power


_SPECTRUM_BLOCK = 2048


def _window_power(frames: np.ndarray, n: int, t: np.ndarray) -> np.ndarray:
    """:func:`motion_spectrum`'s power of ``(B, D, n)`` windows: ``(B, F)``."""
    ok = np.isfinite(frames)
    valid = ok.all(axis=1).sum(axis=-1) >= n // 2
    mean = np.nanmean(np.where(ok, frames, np.nan), axis=-1, keepdims=True) if len(frames) else frames
    f = np.where(ok, frames - mean, 0.0)
    w_ok = ok.astype(float)
    slope = (f * t).sum(-1, keepdims=True) / np.maximum((w_ok * t**2).sum(-1, keepdims=True), 1e-12)
    f = np.where(ok, f - slope * t, 0.0)
    spec = np.abs(np.fft.rfft(f * np.hanning(n), axis=-1)) ** 2  # (B, D, F)
    power = spec.sum(axis=1)
    power[~valid] = np.nan
    return power


def band_power(x: np.ndarray, fps: float, *, band=(4.0, 9.0), window: float = 1.0, min_power: float = 1e-9
               ) -> tuple[np.ndarray, np.ndarray]:
    """Power of a trajectory's motion in a frequency band, per frame (vibrato: 4-9 Hz).

    Parameters
    ----------
    x : np.ndarray, shape (T,) or (T, D)
    fps : float
    band : (float, float)
        Hz, inclusive.
    window : float
        Seconds (see :func:`motion_spectrum`).
    min_power : float
        Total power (units of x squared) under which the ratio is 0.

    Returns
    -------
    power : np.ndarray, shape (T,)
        Sum of the spectrum in the band.
    ratio : np.ndarray, shape (T,)
        The band's share of all power above 0.5 Hz (slow drift and the DC bin excluded).
    """
    lo, hi = band
    if not 0 <= lo < hi:
        raise ParameterError(f"band must be (low, high) Hz with 0 <= low < high, got {band}")
    if hi > fps / 2:
        raise ParameterError(f"band upper edge {hi} Hz is above the Nyquist frequency {fps / 2} Hz of {fps} fps video")
    freqs, p = motion_spectrum(x, fps, window=window)
    inb = (freqs >= lo) & (freqs <= hi)
    total = p[:, freqs > 0.5].sum(axis=1)
    bp = p[:, inb].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Below the floor the "spectrum" is rounding noise of a still point: no vibrato.
        ratio = np.where(total > min_power, bp / total, 0.0)
    ratio[~np.isfinite(bp)] = np.nan
    return bp, ratio


def _body_scale(pose: np.ndarray, face: np.ndarray, hands: list[np.ndarray], height: int) -> float:
    sw = _dist(pose[:, 11], pose[:, 12])
    if np.isfinite(sw).any():
        return float(np.nanmedian(sw))
    fw = _dist(face[:, _F[234]], face[:, _F[454]])
    if np.isfinite(fw).any():
        return 2.2 * float(np.nanmedian(fw))
    hl = np.concatenate([_dist(h[:, 0], h[:, 9]) for h in hands])
    if np.isfinite(hl).any():
        return 4.0 * float(np.nanmedian(hl))
    return height / 4.0


def _speed(p: np.ndarray, fps: float) -> np.ndarray:
    """``(T, ..., 2)`` -> ``(T, ...)`` speed per second (backward differences, first frame copies the second)."""
    v = np.full(p.shape[:-1], np.nan)
    if len(p) > 1:
        # In blocks of frames (the same values): the differences of a whole long video at once
        # were three more (T, ..., 2) float64 arrays.
        for a in range(1, len(p), _SPECTRUM_BLOCK):
            b = min(len(p), a + _SPECTRUM_BLOCK)
            v[a:b] = _dist(p[a:b], p[a - 1:b - 1]) * fps
        v[0] = v[1]
    return v


def _motion_energy(pose, face, lh, rh, scale: float, fps: float) -> np.ndarray:
    """Mean speed (shoulder widths per second) of the upper-body points per frame: pose 0-16, the
    face points, wrist and fingertips; backward differences, the first frame copies the second.
    In blocks of frames (the same values as over the whole video at once, without its
    ``(T, 55, 2)`` float64 arrays)."""
    T = len(pose)
    out = np.full(T, np.nan)
    tips = [0, 4, 8, 12, 16, 20]
    for a in range(1, T, _SPECTRUM_BLOCK):
        b = min(T, a + _SPECTRUM_BLOCK)
        up = np.concatenate([pose[a - 1:b, :17], face[a - 1:b], lh[a - 1:b, tips], rh[a - 1:b, tips]], axis=1)
        up /= scale
        out[a:b] = _nanmean(_dist(up[1:], up[:-1]) * fps, axis=1)
    if T > 1:
        out[0] = out[1]
    return out


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean`` without the warning for all-NaN slices (they give NaN, as wanted)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def _med(x: np.ndarray) -> float:
    return float(np.nanmedian(x)) if np.isfinite(x).any() else np.nan


# --------------------------------------------------------------------------- all features
def gesture_features(lm, *, max_gap: float = 0.2, vibrato_band=(4.0, 9.0), vibrato_window: float = 1.0) -> GestureFeatures:
    """All gesture features of :data:`FEATURE_NAMES` for one video's landmarks.

    Parameters
    ----------
    lm : musicperf.features.landmarks.Landmarks
    max_gap : float
        Seconds: detection gaps up to this long are bridged by linear interpolation.
    vibrato_band : (float, float)
        Hz. ``002`` (Section V-B) puts vibrato rates at 5-10 Hz; the default 4-9 Hz
        also covers slow guitar vibrato and stays clear of the 12.5 Hz Nyquist limit of 25 fps
        video, where hand-tracking jitter piles up. Clipped
        to the Nyquist frequency of slow videos.
    vibrato_window : float
        Seconds of the sliding spectrum window.

    Returns
    -------
    GestureFeatures
    """
    # Only the FACE_POINTS columns of the face mesh are read (26 of 478 points: the whole mesh
    # in float64 pixels was 138 MB for 10 minutes of video) and whether any point was found.
    points = {"pose": lm.pose, "face": lm.face[:, _FACE_IDX], "left_hand": lm.left_hand, "right_hand": lm.right_hand}
    face_found = np.isfinite(lm.face[..., 0]).any(axis=1)
    return gesture_features_from_points(points, face_found, fps=float(lm.fps), width=lm.width, height=lm.height,
                                        max_gap=max_gap,
                                        vibrato_band=vibrato_band, vibrato_window=vibrato_window,
                                        source=lm.meta.get("extractor"))


def gesture_features_from_points(points: dict, face_found: np.ndarray, *, fps: float, width: int, height: int,
                                 max_gap: float = 0.2, vibrato_band=(4.0, 9.0), vibrato_window: float = 1.0,
                                 source: str | None = None) -> GestureFeatures:
    """:func:`gesture_features` from the pixel coordinates it reads, without a Landmarks object.

    Parameters
    ----------
    points : dict
        ``pose`` ``(T, 33, 2 or 3)``, ``face`` ``(T, len(FACE_POINTS), 2 or 3)`` (the face-mesh
        points of :data:`FACE_POINTS`, in that order), ``left_hand``, ``right_hand``
        ``(T, 21, 2 or 3)``: x, y in frame fractions (as in ``Landmarks``; z is not read), NaN
        where missing. Float32 views are fine: the float64 pixel copies are made here, one part
        at a time, and freed once their gaps are bridged.
    face_found : np.ndarray of bool, shape (T,)
        Frames where any face-mesh point (of all 478) was found.
    fps, width, height
        Frame rate; frame size in pixels.
    max_gap, vibrato_band, vibrato_window : see :func:`gesture_features`
    source : str, optional
        The extractor, kept in the metadata.

    Notes
    -----
    ``has_face`` after bridging gaps is "any of the FACE_POINTS, or the frame's face flag,
    bridged": the same as bridging every one of the 478 points whenever a face is found whole
    or not at all in a frame, which is how MediaPipe gives it.
    """
    if fps <= 0:
        raise ParameterError(f"landmarks have fps {fps}; need a positive frame rate")
    gap = int(round(max_gap * fps))
    face_found = np.asarray(face_found, dtype=bool)
    has, px = {}, {}
    for p in ("pose", "face", "left_hand", "right_hand"):
        raw = np.asarray(points[p])[..., :2].astype(np.float64) * [width, height]
        has[p] = np.isfinite(raw[..., 0]).any(axis=1)
        px[p] = interpolate_gaps(raw, gap)
        del raw
    has["face"] = face_found
    pose, face, lh, rh = px["pose"], px["face"], px["left_hand"], px["right_hand"]
    T = len(pose)
    scale = _body_scale(pose, face, [lh, rh], height)
    cols: dict[str, np.ndarray] = {}

    ang = _head_pose(face, pose, min_points=6)
    for k, name in enumerate(("pitch", "yaw", "roll")):
        cols[f"head_{name}"] = ang[:, k]
        vel = np.full(T, np.nan)
        if T > 1:
            vel = np.gradient(ang[:, k]) * fps
        cols[f"head_{name}_vel"] = vel
    ear = _eye_aspect_ratio(face)
    cols["ear_left"], cols["ear_right"] = ear[:, 0], ear[:, 1]
    br = _brow_features(face)
    cols["brow_raise"], cols["brow_gap"] = br[:, 0], br[:, 1]
    mo = _mouth_features(face)
    cols["mouth_open"], cols["mouth_width"], cols["mouth_height"] = mo[:, 0], mo[:, 1], mo[:, 2]

    ls, rs = pose[:, 11], pose[:, 12]
    mid = (ls + rs) / 2
    ears = _nanmean(np.stack([pose[:, 7], pose[:, 8]]), axis=0)
    ears = np.where(np.isfinite(ears), ears, pose[:, 0])
    for side, s in (("left", ls), ("right", rs)):
        e = (ears[:, 1] - s[:, 1]) / scale  # height of the shoulder relative to the ears
        cols[f"shoulder_elev_{side}"] = e - _med(e)
    cols["shoulder_tilt"] = np.degrees(np.arctan2(ls[:, 1] - rs[:, 1], ls[:, 0] - rs[:, 0]))
    hips = (pose[:, 23] + pose[:, 24]) / 2
    hips = np.where(np.isfinite(hips), hips, np.where(np.isfinite(pose[:, 23]), pose[:, 23], pose[:, 24]))
    tv = mid - hips
    cols["torso_lean"] = np.degrees(np.arctan2(tv[:, 0], -tv[:, 1]))
    cols["torso_dx"] = (mid[:, 0] - _med(mid[:, 0])) / scale
    cols["torso_dy"] = (mid[:, 1] - _med(mid[:, 1])) / scale

    origin = np.where(np.isfinite(mid), mid, [_med(mid[:, 0]), _med(mid[:, 1])])
    wrists = {}
    for side, hand, pw in (("left", lh, pose[:, 15]), ("right", rh, pose[:, 16])):
        w = np.where(np.isfinite(hand[:, 0]), hand[:, 0], pw)
        rel = (w - origin) / scale
        wrists[side] = rel
        cols[f"{side}_wrist_x"], cols[f"{side}_wrist_y"] = rel[:, 0], rel[:, 1]
        cols[f"{side}_wrist_speed"] = _speed(rel, fps)

    lo, hi = vibrato_band
    hi = min(hi, fps / 2)
    if T:
        # The whole left hand (fingers carry the vibrato) relative to the body, mean of points.
        lhand = np.where(np.isfinite(lh).all(axis=-1, keepdims=True), lh, np.nan)
        centre = _nanmean(lhand, axis=1)
        centre = np.where(np.isfinite(centre), centre, pose[:, 15])
        bp, ratio = band_power((centre - origin) / scale, fps, band=(lo, hi), window=vibrato_window)
        cols["vibrato_power"] = np.log10(bp + 1e-8)
        cols["vibrato_ratio"] = ratio
    else:
        cols["vibrato_power"] = cols["vibrato_ratio"] = np.zeros(0)

    cols["motion_energy"] = _motion_energy(pose, face, lh, rh, scale, fps)

    bridged = {p: np.isfinite(v[..., 0]).any(axis=1) for p, v in px.items()}
    bridged["face"] |= np.isfinite(interpolate_gaps(np.where(face_found, 1.0, np.nan), gap))
    cols["has_pose"], cols["has_face"] = bridged["pose"].astype(float), bridged["face"].astype(float)
    cols["has_left_hand"], cols["has_right_hand"] = bridged["left_hand"].astype(float), bridged["right_hand"].astype(float)
    values = np.stack([np.asarray(cols[n], dtype=np.float64) for n in FEATURE_NAMES], axis=1).astype(np.float32) if T \
        else np.zeros((0, len(FEATURE_NAMES)), np.float32)
    values[~np.isfinite(values)] = np.nan
    return GestureFeatures(values=values, fps=fps, scale=scale, meta={
        "version": FEATURES_VERSION, "max_gap": max_gap, "vibrato_band": [lo, hi], "vibrato_window": vibrato_window,
        "detected": {p: float(h.mean()) if T else 0.0 for p, h in has.items()},
        "landmarks": source})


def feature_matrix(values: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardise features and replace what is missing by the mean (0 after standardising).

    Parameters
    ----------
    values : np.ndarray, shape (T, F)
    mean, std : np.ndarray, shape (F,), optional
        From the training data; computed from ``values`` (NaN-aware) when omitted.

    Returns
    -------
    x : np.ndarray, shape (T, F), float32
    mean, std : np.ndarray, shape (F,), float32
    """
    values = np.asarray(values, dtype=np.float64)
    if mean is None or std is None:
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nan_to_num(np.nanmean(values, axis=0))
                std = np.nan_to_num(np.nanstd(values, axis=0))
        std = np.where(std > 1e-6, std, 1.0)
    x = (values - mean) / std
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(x, -10, 10).astype(np.float32), np.asarray(mean, np.float32), np.asarray(std, np.float32)


# --------------------------------------------------------------------------- per-frame extractor, windows
@dataclass(frozen=True)
class LandmarkFeatures:
    """Per-frame gesture features of a video from MediaPipe landmarks.

    Parameters
    ----------
    hands : {"fallback", "fill", "never"}
        See :func:`musicperf.features.landmarks.extract_landmarks`.
    max_gap : float
        Seconds of missing detections bridged by interpolation.
    cache_dir : str or None
        Landmark cache folder (default: :func:`musicperf.features.cache.default_cache_dir`).
    every : int
        MediaPipe on every ``every``-th frame, interpolated in between.
    workers : int or None
        MediaPipe processes on stretches of the video (None: one per CPU, at most 4, for
        stretches of at least 10 s). Not part of :meth:`to_dict`: it changes the speed, and the
        result only where tracking restarts at a stretch's first frame.
    """

    hands: str = "fallback"
    max_gap: float = 0.2
    cache_dir: str | None = None
    every: int = 1
    workers: int | None = None
    name = "landmarks"

    @property
    def version(self) -> str:
        from musicperf.features.landmarks import EXTRACTOR_VERSION

        return f"{EXTRACTOR_VERSION}/features-{FEATURES_VERSION}"

    @property
    def names(self) -> tuple[str, ...]:
        return FEATURE_NAMES

    @property
    def n_features(self) -> int:
        return len(self.names)

    def __call__(self, video: str | Path, *, progress: bool = False) -> tuple[np.ndarray, float]:
        """``(values (T, F) float32 with NaN where missing, fps)`` for ``video``."""
        from musicperf.features.landmarks import extract_landmarks

        lm = extract_landmarks(video, hands=self.hands, progress=progress, cache_dir=self.cache_dir,
                               every=int(self.every), workers=self.workers)
        return gesture_features(lm, max_gap=self.max_gap).values, lm.fps

    def to_dict(self) -> dict:
        d = {"name": self.name, "version": self.version, "hands": self.hands, "max_gap": self.max_gap,
             "features": list(self.names)}
        if self.every != 1:  # absent at the default, so models saved before the option read the same
            d["every"] = int(self.every)
        return d


#: Per-frame feature extractors by name, for configurations (``frame_features: landmarks``).
FRAME_FEATURES = {"landmarks": LandmarkFeatures}


def windows(values: np.ndarray, starts: np.ndarray, *, length: int = 16) -> np.ndarray:
    """Cut windows of ``length`` frames starting at ``starts``.

    Parameters
    ----------
    values : np.ndarray, shape (T, F)
    starts : np.ndarray of int, shape (N,)

    Returns
    -------
    np.ndarray, shape (N, length, F), float32
    """
    values = np.asarray(values)
    st = np.asarray(starts, dtype=np.int64)
    if len(st) and (st.min() < 0 or st.max() + length > len(values)):
        raise ParameterError(f"windows of {length} frames at {int(st.min())}..{int(st.max())} do not fit in {len(values)} frames")
    return values[st[:, None] + np.arange(length)[None, :]].astype(np.float32)
