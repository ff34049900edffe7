"""Landmarks from a synthetic performance's ground truth, degraded the way a detector degrades them.

MediaPipe does not detect the drawn synthetic performer, so the landmark models are trained and
tested on its exact key points with detector-like noise, drift and dropped detections
(:func:`from_truth`). This lives with the synthetic performer, not in
:mod:`musicperf.features.landmarks`, which describes real videos and must not depend on the
simulator. Imports numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicperf.errors import ParameterError
from musicperf.features.landmarks import N_POINTS, PARTS, SOURCE_TRUTH, Landmarks, empty_landmarks
from musicperf.synth.truth import load_truth


def from_truth(
    truth: dict | str | Path,
    performer: int = 0,
    *,
    noise: float = 0.006,
    jitter: float = 0.004,
    drop: dict[str, float] | None = None,
    mean_gap: float = 0.2,
    seed: int = 0,
) -> Landmarks:
    """Landmarks from a synthetic performance's ground truth, with detector-like errors.

    MediaPipe does not detect the drawn synthetic performer, so models are trained and tested
    on its exact key points (same MediaPipe layouts) degraded the way a detector degrades them.

    Parameters
    ----------
    truth : dict or path
        ``truth.json`` of :func:`musicperf.synth.synthesize` (or :func:`~musicperf.synth.load_truth`'s dict).
    performer : int
    noise : float
        Standard deviation of independent per-point, per-frame noise, as a fraction of the
        performer's shoulder width (0.006 of a 60-pixel shoulder span is 0.36 px).
    jitter : float
        Standard deviation of a slowly wandering offset shared by all points of a part (AR(1),
        0.2 s correlation time), as a fraction of the shoulder width: tracker drift.
    drop : dict, optional
        Fraction of frames in which each part is dropped (missed), in runs of mean length
        ``mean_gap`` seconds. Default ``{"pose": 0.02, "face": 0.05, "left_hand": 0.1,
        "right_hand": 0.1}``.
    seed : int

    Returns
    -------
    Landmarks
        ``hand_source`` 3 (truth) where a hand is present; z is NaN; pose visibility 1 for
        visible points, 0 for hidden ones (whose coordinates are NaN).
    """
    t = load_truth(truth)
    if not 0 <= performer < len(t["performers"]):
        raise ParameterError(f"performer {performer} does not exist (the truth has {len(t['performers'])})")
    drop = {"pose": 0.02, "face": 0.05, "left_hand": 0.1, "right_hand": 0.1} if drop is None else drop
    unknown = set(drop) - set(PARTS)
    if unknown:
        raise ParameterError(f"unknown part(s) in drop: {', '.join(sorted(unknown))}")
    if noise < 0 or jitter < 0 or mean_gap <= 0:
        raise ParameterError("noise and jitter must be >= 0 and mean_gap > 0")
    fps = float(t["video"]["fps"])
    w, h = int(t["video"]["width"]), int(t["video"]["height"])
    kp = t["performers"][performer]["keypoints"]
    n = kp["pose"]["full"].shape[0]
    rng = np.random.default_rng(seed)
    lm = empty_landmarks(n, fps=fps, width=w, height=h)
    pose_px = kp["pose"]["full"]
    span = np.linalg.norm(pose_px[:, 11] - pose_px[:, 12], axis=1)
    scale = float(np.nanmedian(span)) if np.isfinite(span).any() else 0.2 * w
    rho = float(np.exp(-1.0 / (0.2 * fps)))
    for part in PARTS:
        px = kp[part]["full"].astype(np.float64)  # (T, J, 2) pixels, NaN where absent
        j = px.shape[1]
        pts = px + rng.normal(0.0, noise * scale, size=px.shape)
        drift = np.zeros((n, 2))
        e = rng.normal(0.0, jitter * scale * np.sqrt(1 - rho**2), size=(n, 2))
        if n:
            drift[0] = rng.normal(0.0, jitter * scale, size=2)
        for i in range(1, n):
            drift[i] = rho * drift[i - 1] + e[i]
        pts = pts + drift[:, None, :]
        dropped = _drop_runs(n, drop.get(part, 0.0), mean_gap * fps, rng)
        pts[dropped] = np.nan
        arr = np.full((n, N_POINTS[part], 3), np.nan, np.float32)
        arr[:, :j, 0] = pts[..., 0] / w
        arr[:, :j, 1] = pts[..., 1] / h
        setattr(lm, part, arr)
    present = np.isfinite(lm.pose[..., 0])
    lm.pose_visibility = np.where(lm.detected("pose")[:, None], present.astype(np.float32), np.nan).astype(np.float32)
    lm.hand_source = np.stack([lm.detected("left_hand"), lm.detected("right_hand")], axis=1).astype(np.int8) * SOURCE_TRUTH
    lm.meta = {"extractor": "synthetic-truth", "version": "1", "params": {
        "performer": performer, "noise": noise, "jitter": jitter, "drop": drop, "mean_gap": mean_gap, "seed": seed}}
    return lm


def _drop_runs(n: int, fraction: float, mean_len: float, rng) -> np.ndarray:
    """``(n,)`` bool: runs of dropped frames covering about ``fraction`` of ``n``."""
    out = np.zeros(n, dtype=bool)
    if fraction <= 0 or n == 0:
        return out
    if fraction >= 1:
        out[:] = True
        return out
    mean_len = max(1.0, mean_len)
    # Alternating renewal process: runs of kept frames, then dropped ones.
    mean_keep = mean_len * (1 - fraction) / fraction
    i = int(rng.exponential(mean_keep))
    while i < n:
        k = max(1, int(round(rng.exponential(mean_len))))
        out[i : i + k] = True
        i += k + max(1, int(round(rng.exponential(mean_keep))))
    return out
