"""Frame-difference motion (quantity, centroid, motiongrams) and dense optical flow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from musicperf.errors import ParameterError
from musicperf.features.motion import FLOW_METHODS, dense_flow, motion_features, motion_from_frames


def test_a_square_that_appears_has_known_quantity_centroid_and_motiongrams():
    frames = np.zeros((3, 40, 60, 3), np.uint8)
    frames[1, 10:20, 30:40] = 200  # appears in frame 1, gone in frame 2
    m = motion_from_frames(frames, fps=10.0)
    np.testing.assert_allclose(m.times, [0.0, 0.1, 0.2])
    np.testing.assert_allclose(m.qom, [0, 100 * 200, 100 * 200])  # 10 x 10 pixels changed by 200
    np.testing.assert_allclose(m.qom_norm[1], 100 * 200 / (255 * 40 * 60))
    # Centre of the square: x = 34.5, y = 14.5 from the top = 40 - 14.5 = 25.5 from the bottom.
    np.testing.assert_allclose(m.com, [[0, 0], [34.5, 25.5], [34.5, 25.5]])
    assert m.motiongram_x.shape == (3, 60, 3) and m.motiongram_y.shape == (3, 40, 3)
    assert (m.motiongram_x[1, 30:40] == 50).all() and (m.motiongram_x[1, :30] == 0).all()  # 200 * 10 / 40 rows
    assert (m.motiongram_y[1, 10:20] == 33).all()  # round(200 * 10 / 60)
    grey = motion_from_frames(frames[..., 0], fps=10.0, color=False)
    np.testing.assert_allclose(grey.com, m.com)


def test_threshold_removes_small_differences(rng):
    base = rng.integers(50, 200, (1, 30, 30, 3)).astype(np.uint8)
    frames = np.concatenate([base, base + 5])  # flicker of 5 grey levels
    assert motion_from_frames(frames, fps=25, threshold=0.05).qom[1] == 0  # below 12.75 levels
    assert motion_from_frames(frames, fps=25, threshold=0.0).qom[1] == pytest.approx(5 * 900)
    with pytest.raises(ParameterError, match="threshold"):
        motion_from_frames(frames, fps=25, threshold=1.5)
    with pytest.raises(ParameterError, match="uint8"):
        motion_from_frames(frames.astype(float), fps=25)


def _moving_texture_video(path: Path, *, n: int = 12, shift: int = 2, size=(96, 128)) -> Path:
    """A smooth random texture translating ``shift`` pixels per frame to the right (lossless)."""
    import av
    import cv2

    rng = np.random.default_rng(0)
    h, w = size
    tex = cv2.GaussianBlur(rng.integers(0, 256, (h, w + shift * n)).astype(np.float32), (0, 0), 2.0)
    tex = cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.height, s.width, s.pix_fmt = h, w, "yuv444p"
        s.options = {"crf": "0", "preset": "ultrafast"}
        for i in range(n):
            x0 = shift * (n - i)  # content moves right
            grey = tex[:, x0 : x0 + w]
            for p in s.encode(av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, axis=2), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def test_motion_of_a_video_equals_motion_of_its_frames(tmp_path):
    from musicperf.io.video import VideoReader

    video = _moving_texture_video(tmp_path / "tex.mp4")
    m = motion_features(video)
    with VideoReader(video) as r:
        frames = np.stack([f for _, f in r.frames()])
    ref = motion_from_frames(frames, fps=10.0)
    assert len(m) == 12 and m.meta["width"] == 128 and m.meta["height"] == 96
    np.testing.assert_allclose(m.qom, ref.qom)
    np.testing.assert_allclose(m.com, ref.com)
    np.testing.assert_array_equal(m.motiongram_x, ref.motiongram_x)
    assert m.qom[1:].min() > 0


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_dense_flow_measures_a_known_translation(tmp_path, method):
    video = _moving_texture_video(tmp_path / "tex.mp4", shift=2)
    f = dense_flow(video, method=method, size=None, bins=4)
    assert f.magnitude.shape == (12,) and f.histogram.shape == (12, 4) and f.magnitude[0] == 0
    # 2 pixels per frame to the right: direction bin 0 of 4 ([-0, 90) degrees, towards the right).
    assert np.median(f.magnitude[1:]) == pytest.approx(2.0, abs=0.6)
    right = f.histogram[1:, 0] + f.histogram[1:, 3]  # either side of 0 degrees
    assert np.median(right) > 0.8
    with pytest.raises(ParameterError, match="method"):
        dense_flow(video, method="lucas-kanade")
