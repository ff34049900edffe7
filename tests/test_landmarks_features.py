"""Gesture features from landmarks on constructed key points with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from musicperf.errors import ParameterError
from musicperf.features.landmark_features import (
    FEATURE_NAMES,
    band_power,
    brow_features,
    eye_aspect_ratio,
    feature_matrix,
    gesture_features,
    head_pose,
    interpolate_gaps,
    motion_spectrum,
    project_head,
)
from musicperf.features.landmarks import Landmarks, empty_landmarks
from musicperf.synth.landmarks import from_truth


@pytest.mark.parametrize("angles", [(20, 0, 0), (-20, 0, 0), (0, 20, 0), (0, 0, 20), (15, -10, 5)])
def test_head_pose_recovers_constructed_angles(angles):
    face = project_head(*angles, scale=4.0, center=(200.0, 90.0))[None]
    np.testing.assert_allclose(head_pose(face)[0], angles, atol=1e-6)


def test_head_pose_signs_match_their_meaning():
    level, up = project_head(0)[None], project_head(20)[None]
    # Looking up brings the nose tip (1) closer to the eye line (168) in the picture.
    assert up[0, 1, 1] - up[0, 168, 1] < level[0, 1, 1] - level[0, 168, 1]
    right = project_head(0, 20)
    assert right[1, 0] > project_head(0, 0)[1, 0]  # yaw > 0: the nose goes to the image right


def test_head_pose_with_noise_and_missing_points(rng):
    face = project_head(20, 0, 0, scale=4.0)[None].repeat(50, axis=0)
    face += rng.normal(0, 0.3, size=face.shape)
    face[:, [10, 234]] = np.nan  # forehead and one face edge lost
    ang = head_pose(face)
    assert abs(np.median(ang[:, 0]) - 20) < 1.5
    assert np.all(np.abs(ang[:, 1:]) < 5)


def test_head_pose_needs_points_else_nan_or_pose_fallback():
    face = np.full((1, 478, 2), np.nan)
    assert np.isnan(head_pose(face)).all()


def test_eye_aspect_ratio_closed_is_zero_and_open_positive():
    face = project_head(0, scale=4.0)[None].repeat(2, axis=0)
    open_ = eye_aspect_ratio(face[:1])[0]
    assert np.all(open_ > 0.2)
    # Close the eyes: upper lids onto lower lids.
    face[1, 159] = face[1, 145]
    face[1, 386] = face[1, 374]
    np.testing.assert_allclose(eye_aspect_ratio(face[1:])[0], 0.0, atol=1e-12)


def test_frowning_lowers_brows_and_narrows_their_gap():
    face = project_head(0, scale=4.0)[None].repeat(2, axis=0)
    for i in (70, 105, 107, 336, 334, 300):
        face[1, i, 1] += 3.0  # brows down
    face[1, 107, 0] += 2.0  # inner ends together
    face[1, 336, 0] -= 2.0
    b = brow_features(face)
    assert b[1, 0] < b[0, 0] and b[1, 1] < b[0, 1]


def test_interpolate_gaps_bridges_short_gaps_only():
    x = np.array([0.0, np.nan, 2.0, np.nan, np.nan, np.nan, 6.0, np.nan])
    y = interpolate_gaps(x, 2)
    np.testing.assert_allclose(y[:3], [0, 1, 2])
    assert np.isnan(y[3:6]).all() and y[6] == 6 and np.isnan(y[7])
    y3 = interpolate_gaps(x, 3)
    np.testing.assert_allclose(y3[3:6], [3, 4, 5])
    with pytest.raises(ParameterError):
        interpolate_gaps(x, -1)


def test_vibrato_band_power_peaks_at_6_hz():
    fps = 25.0
    t = np.arange(200) / fps
    hand6 = np.stack([0.05 * np.sin(2 * np.pi * 6 * t), np.zeros_like(t)], axis=1)
    freqs, p = motion_spectrum(hand6, fps, window=1.0)
    assert freqs[np.nanargmax(np.nanmean(p, axis=0))] == pytest.approx(6.0)
    _, ratio6 = band_power(hand6, fps)
    hand2 = np.stack([0.05 * np.sin(2 * np.pi * 2 * t), np.zeros_like(t)], axis=1)
    _, ratio2 = band_power(hand2, fps)
    mid = slice(20, 180)
    assert np.nanmin(ratio6[mid]) > 0.9
    assert np.nanmax(ratio2[mid]) < 0.1
    with pytest.raises(ParameterError, match="Nyquist"):
        band_power(hand6, 15.0, band=(4, 9))


def _body(T: int, *, scale: float = 1.0, shift=(0.0, 0.0), fps: float = 25.0) -> Landmarks:
    """A still performer at 640x480: face from the canonical model, pose shoulders, two hands."""
    w, h = 640, 480
    lm = empty_landmarks(T, fps=fps, width=w, height=h)
    cx, cy = 320 + shift[0], 150 + shift[1]
    face = project_head(0, scale=3.0 * scale, center=(cx, cy))
    pose = np.full((33, 2), np.nan)
    pose[0] = face[1]
    pose[[2, 5]] = face[[263, 33]]
    pose[[7, 8]] = [cx + 22 * scale, cy + 5 * scale], [cx - 22 * scale, cy + 5 * scale]
    pose[[11, 12]] = [cx + 60 * scale, cy + 70 * scale], [cx - 60 * scale, cy + 70 * scale]
    pose[[23, 24]] = [cx + 45 * scale, cy + 230 * scale], [cx - 45 * scale, cy + 230 * scale]
    pose[15], pose[16] = [cx + 90 * scale, cy + 140 * scale], [cx - 70 * scale, cy + 150 * scale]
    hand = np.zeros((21, 2)) + np.linspace(0, 20 * scale, 21)[:, None]
    for arr, pts in ((lm.face, face), (lm.pose, pose), (lm.left_hand, hand + pose[15]), (lm.right_hand, hand + pose[16])):
        arr[:, : len(pts), 0] = pts[:, 0] / w
        arr[:, : len(pts), 1] = pts[:, 1] / h
    lm.face[:, np.isnan(face[:, 0])] = np.nan
    return lm


def test_features_do_not_depend_on_body_size_or_position():
    a = gesture_features(_body(40)).values
    b = gesture_features(_body(40, scale=0.6, shift=(-80.0, 40.0))).values
    assert a.shape == (40, len(FEATURE_NAMES))
    keep = [i for i, n in enumerate(FEATURE_NAMES) if n != "vibrato_power"]  # log of ~0 power
    np.testing.assert_allclose(a[:, keep], b[:, keep], atol=1e-3)


def test_vibrato_feature_sees_the_left_hand_oscillate():
    lm = _body(100)
    t = np.arange(100) / 25.0
    lm.left_hand[..., 0] += (0.03 * np.sin(2 * np.pi * 6 * t))[:, None]  # 6 Hz along x
    g = gesture_features(lm)
    still = gesture_features(_body(100))
    assert np.nanmedian(g["vibrato_ratio"][15:85]) > 0.8
    assert np.nanmedian(g["vibrato_power"]) > np.nanmedian(still["vibrato_power"]) + 3
    assert np.nanmedian(g["motion_energy"]) > np.nanmedian(still["motion_energy"])


def test_head_pitch_feature_and_velocity_from_a_nod():
    lm = _body(50)
    pitch = 20 * np.sin(2 * np.pi * 1.0 * np.arange(50) / 25.0)
    for i, p in enumerate(pitch):
        f = project_head(p, scale=3.0, center=(320, 150))
        lm.face[i, :, 0], lm.face[i, :, 1] = f[:, 0] / 640, f[:, 1] / 480
        lm.face[i, np.isnan(f[:, 0])] = np.nan
    g = gesture_features(lm)
    np.testing.assert_allclose(g["head_pitch"], pitch, atol=1e-4)
    # Peak angular speed of 20 sin(2 pi t) is 2 pi 20 = 125.7 deg/s (central differences: a bit less).
    assert 110 < np.nanmax(np.abs(g["head_pitch_vel"])) < 130


def test_missing_parts_are_nan_and_short_gaps_bridged():
    lm = _body(30)
    lm.face[10:12] = np.nan  # 2 frames: bridged (max_gap 0.2 s = 5 frames)
    lm.left_hand[15:25] = np.nan  # 10 frames: stays missing
    g = gesture_features(lm)
    assert np.isfinite(g["ear_left"][10:12]).all() and g["has_face"].min() == 1
    assert (g["has_left_hand"][15:25] == 0).all()
    x, mean, std = feature_matrix(g.values)
    assert np.isfinite(x).all() and x.shape == g.values.shape


def test_from_truth_adds_noise_and_drops_detections():
    from musicperf.synth import render

    r = render(seconds=3, seed=4)
    exact = from_truth(r.truth, noise=0, jitter=0, drop={})
    noisy = from_truth(r.truth, drop={"left_hand": 0.3}, seed=1)
    assert exact.pose.shape == (75, 33, 3) and exact.face.shape[1] == 478
    rates = noisy.detection_rates()
    assert 0.4 < rates["left_hand"] < 0.95 and rates["face"] > 0.85
    d = np.nanmedian(np.abs(noisy.pose[..., :2] - exact.pose[..., :2]))
    assert 0 < d < 0.02
    with pytest.raises(ParameterError):
        from_truth(r.truth, drop={"feet": 0.1})
