"""Farneback optical-flow features: known shifts, direction histograms, regions, a real video."""

from __future__ import annotations

import numpy as np
import pytest

from musicperf.errors import DecodeError, ParameterError
from musicperf.features.flow import body_regions, farneback, flow_features, orientation_histogram, region_energy

pytest.importorskip("cv2")


def _texture(rng, h=120, w=160):
    from scipy.ndimage import gaussian_filter

    return np.clip(gaussian_filter(rng.random((h, w)), 2.0) * 255 * 3 - 255, 0, 255).astype(np.uint8)


def test_farneback_recovers_a_known_shift(rng):
    a = _texture(rng)
    b = np.roll(a, (1, 2), axis=(0, 1))  # 2 px right, 1 px down
    flow = farneback(a, b)
    inner = flow[20:-20, 20:-20]
    np.testing.assert_allclose(np.median(inner[..., 0]), 2.0, atol=0.15)
    np.testing.assert_allclose(np.median(inner[..., 1]), 1.0, atol=0.15)
    with pytest.raises(ParameterError):
        farneback(a, b[:-1])


def test_orientation_histogram_directions():
    flow = np.zeros((10, 10, 2), np.float32)
    assert orientation_histogram(flow).sum() == 0
    flow[..., 0] = 1.0  # to the right
    h = orientation_histogram(flow, bins=8)
    assert h[0] == pytest.approx(1.0)
    flow[..., 0], flow[..., 1] = 0.0, -2.0  # up on screen (y points down)
    assert orientation_histogram(flow, bins=8)[2] == pytest.approx(1.0)
    flow[:5, :, 1] = 2.0  # half moves down
    h = orientation_histogram(flow, bins=4)
    np.testing.assert_allclose(h, [0, 0.5, 0, 0.5])


def test_region_energy_only_counts_its_box():
    flow = np.zeros((100, 100, 2), np.float32)
    flow[10:30, 60:90, 0] = 3.0
    e = region_energy(flow, np.array([[60, 10, 90, 30], [0, 50, 40, 100], [np.nan] * 4, [200, 200, 300, 300]]))
    assert e[0] == pytest.approx(3.0) and e[1] == 0.0 and np.isnan(e[2]) and np.isnan(e[3])


def test_body_regions_from_landmarks():
    from musicperf.features.landmarks import empty_landmarks

    lm = empty_landmarks(1, fps=25, width=320, height=240)
    lm.pose[0, [11, 12, 23, 24], 0] = [0.6, 0.4, 0.58, 0.42]
    lm.pose[0, [11, 12, 23, 24], 1] = [0.4, 0.4, 0.8, 0.8]
    lm.right_hand[0, :, 0], lm.right_hand[0, :, 1] = 0.2, np.linspace(0.5, 0.55, 21)
    boxes = body_regions(lm, 0, width=320, height=240)
    assert np.isnan(boxes[0]).all() and np.isnan(boxes[2]).all()  # no face, no left hand
    torso = boxes[1]
    assert torso[0] < 0.4 * 320 and torso[2] > 0.6 * 320 and torso[1] < 0.4 * 240 and torso[3] > 0.8 * 240
    assert boxes[3][0] < 64 < boxes[3][2]


def test_flow_features_on_a_real_video(shared_data, tmp_path):
    video = shared_data / "video" / "mmaction2_tests_test.avi"
    f = flow_features(video, max_frames=8, size=(120, 160), cache_dir=tmp_path)
    assert f.values.shape == (8, 1 + 9 + 8) and f.names[0] == "energy" and f.names[-1] == "hist_7"
    assert np.isfinite(f.values).all() and (f.values[:, 0] > 0).all()
    np.testing.assert_array_equal(f.values[0], f.values[1])  # the first frame copies the second
    np.testing.assert_allclose(f.values[:, 10:].sum(axis=1), 1.0, atol=1e-5)
    assert f.meta["flow_pairs_per_second"] > 0
    again = flow_features(video, max_frames=8, size=(120, 160), cache_dir=tmp_path)
    np.testing.assert_array_equal(again.values, f.values)
    with pytest.raises(DecodeError):
        flow_features(tmp_path / "none.avi")
    with pytest.raises(ParameterError):
        flow_features(video, grid=0)
