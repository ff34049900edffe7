"""Per-frame feature tracks on a tiny synthetic video: flow follows a moving square, grid, audio, cache."""

from __future__ import annotations

import numpy as np
import pytest

from _media_helpers import write_video
from musicperf.errors import ParameterError
from musicperf.features.tracks import frame_tracks

pytest.importorskip("cv2")


def moving_square(n=20, h=48, w=64):
    frames = np.full((n, h, w, 3), 30, np.uint8)
    for i in range(n):
        x = 4 + 2 * i  # 2 px per frame to the right
        frames[i, 16:32, x : x + 12] = (220, 200, 60)
    return frames


def test_flow_and_grid_tracks_follow_a_moving_square(tmp_path):
    video = write_video(tmp_path / "square.avi", moving_square(), codec="png", fps=10)
    tr = frame_tracks(video, tracks=("flow", "grid"), flow_width=64, grid=4, cache_dir=tmp_path / "cache")
    assert len(tr) == 20 and tr.fps == 10.0
    flow = dict(zip(tr.names["flow"], tr.values["flow"].T))
    assert flow["mag_mean"][0] == 0.0  # no previous frame
    assert np.median(flow["dx_mean"][2:]) > 0  # moving right
    cx = flow["moving_cx"][2:]
    assert np.corrcoef(np.arange(len(cx)), cx)[0, 1] > 0.9  # the moving region travels right
    assert np.isnan(flow["left_hand_mag"]).all()  # no landmarks: no body regions
    grid = tr.values["grid"]
    assert grid.shape == (20, 4 * 4 + 4 * 4 * 3)
    assert tr.detection == {"flow": 1.0, "grid": 1.0}
    x, names = tr.matrix()
    assert x.shape == (20, len(names)) and names[0].startswith("flow:")
    again = frame_tracks(video, tracks=("flow", "grid"), flow_width=64, grid=4, cache_dir=tmp_path / "cache")
    assert again.meta["cache_hit"]["pixels"] and np.array_equal(again.values["grid"], grid)
    assert "flow: " in tr.describe() and tr.usable() == ["flow", "grid"]


def test_audio_track_when_the_video_has_sound_and_not_otherwise(tmp_path):
    sr = 48000
    t = np.arange(2 * sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * 440 * t) * (t < 1.0)).astype(np.float32)[None]  # 1 s tone, 1 s silence
    frames = np.zeros((20, 16, 16, 3), np.uint8)
    video = write_video(tmp_path / "tone.avi", frames, codec="png", fps=10, audio=tone, audio_rate=sr)
    tr = frame_tracks(video, tracks=("audio",), cache=False)
    a = dict(zip(tr.names["audio"], tr.values["audio"].T))
    assert a["rms_db"][2:8].min() > -20 and a["rms_db"][13:18].max() < -60
    assert np.median(a["centroid"][2:8]) == pytest.approx(440, rel=0.15)
    assert tr.detection["audio"] == pytest.approx(0.5, abs=0.1)
    silent = write_video(tmp_path / "silent.avi", frames, codec="png", fps=10)
    tr = frame_tracks(silent, tracks=("audio", "grid"), cache=False, grid=2)
    assert "audio" not in tr.values and tr.detection["audio"] == 0.0 and tr.usable() == ["grid"]


def test_unknown_track_raises():
    with pytest.raises(ParameterError, match="unknown track"):
        frame_tracks("x.avi", tracks=("pixels",))
