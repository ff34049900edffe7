"""The fingering-hand detector (002 V-B: "detect and track the left hand"): boxes from hand and
pose landmarks, MediaPipe on a real pianist and on a synthetic violinist, the fallbacks of
``analyze_media(hand=...)`` and ``musicperf vibrato --hand``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicperf.analysis import vibrato as V
from musicperf.analysis.hand import POSE_HAND_POINTS, detect_hand_region, hand_box_from_landmarks
from musicperf.analysis.motion import keypoint_region
from musicperf.errors import MissingDependencyError, ParameterError
from musicperf.features.landmarks import empty_landmarks


def _has_mediapipe() -> bool:
    try:
        from musicperf.features.landmarks import _mediapipe

        _mediapipe()
    except MissingDependencyError:
        return False
    return True


needs_mediapipe = pytest.mark.skipif(not _has_mediapipe(), reason="mediapipe is not installed")


def _lm(n=6, width=320, height=240):
    return empty_landmarks(n, fps=25.0, width=width, height=height)


def test_box_from_hand_landmarks_is_the_median_hand_box_grown(rng):
    lm = _lm()
    pts = np.stack([rng.uniform([100, 60], [130, 90], size=(21, 2)) for _ in range(6)])
    pts[:, 0] = [100, 60]  # every frame spans 100..130 x 60..90
    pts[:, 1] = [130, 90]
    pts[3] += 50  # one bad frame: the median ignores it
    lm.left_hand[..., :2] = pts / [320, 240]
    det = hand_box_from_landmarks(lm, side="left", margin=0.25)
    assert det.source == "hand landmarks" and det.found == 6 and det.frames == 6
    assert det.region.x == pytest.approx(92.5, abs=0.1) and det.region.w == pytest.approx(45.0, abs=0.1)
    assert det.region.y == pytest.approx(52.5, abs=0.1) and det.region.h == pytest.approx(45.0, abs=0.1)
    # the other hand is absent: nothing found (no pose either)
    assert hand_box_from_landmarks(lm, side="right").region is None


def test_box_from_pose_wrist_uses_the_settled_frames():
    lm = _lm(n=10)
    wi, pi, ii, ti = POSE_HAND_POINTS["left"]
    for t in range(10):
        settled = t >= 7
        wrist = np.array([200.0, 120.0]) if settled else np.array([150.0, 100.0])  # converging
        lm.pose[t, wi, :2] = wrist / [320, 240]
        lm.pose[t, pi, :2] = (wrist + [4, 8]) / [320, 240]
        lm.pose[t, ii, :2] = (wrist + [-4, 8]) / [320, 240]
        lm.pose[t, ti, :2] = (wrist + [-6, 4]) / [320, 240]
        lm.pose_visibility[t, [wi, pi, ii, ti]] = 0.15 + 0.05 * t  # rises as the tracker settles
    det = hand_box_from_landmarks(lm, side="left", margin=0.0)
    assert det.source == "pose wrist" and det.found == 3  # visibility >= 80 % of the best (0.6): frames 7-9
    # square of 3 wrist-knuckle distances (8 px) centred on the knuckles (200, 128)
    r = det.region
    assert (r.x, r.y, r.w, r.h) == pytest.approx((188.0, 116.0, 24.0, 24.0), abs=0.01)
    with pytest.raises(ParameterError, match="side"):
        hand_box_from_landmarks(lm, side="middle")


@needs_mediapipe
def test_detector_finds_the_pianists_left_hand(shared_data):
    det = detect_hand_region(shared_data / "video" / "pianist.avi", n_frames=6, cache=False)
    # the pianist faces the camera: the left hand is on the image right, over the keys
    assert det.source == "hand landmarks" and det.found >= 1
    r = det.region
    cx, cy = r.x + r.w / 2, r.y + r.h / 2
    assert 360 < cx < 520 and 200 < cy < 320, r
    assert 20 < r.w < 120 and 20 < r.h < 120, r


@pytest.fixture(scope="module")
def violin_video(tmp_path_factory):
    """A 5 s synthetic violinist with one vibrato note, as an MP4 with audio, and its truth."""
    from musicperf.synth import load_truth, render
    from musicperf.synth.core import encode_mp4

    r = render(seconds=5, seed=3, instrument="violin", size=(320, 240), schedule={"Vibrato": [(1.6, 3.1)]})
    path = tmp_path_factory.mktemp("hand") / "violin.mp4"
    encode_mp4(path, r.frames(), r.audio, fps=r.fps, size=r.size, sr=r.sr)
    return path, load_truth(r.truth)["performers"][0]


@needs_mediapipe
def test_vibrato_command_with_the_landmark_detector_on_a_synthetic_violin(violin_video, tmp_path, capsys):
    from musicperf.cli import main

    path, p = violin_video
    png = tmp_path / "v.png"
    assert main(["vibrato", str(path), "--hand", "landmarks", "--json", "--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out.split("wrote")[0])
    # MediaPipe does not see the cartoon hands but finds the body: the box comes from the pose wrist
    assert out["region_source"] in ("pose wrist", "hand landmarks")
    x, y, w, h = out["region"]
    hand = np.nanmedian(p["keypoints"]["left_hand"]["full"][:20].reshape(-1, 2), axis=0)
    assert x <= hand[0] <= x + w and y <= hand[1] <= y + h
    tv = p["vibrato"][0]
    motion = [s for s in out["segments"] if s["method"] == "motion-autocorr"]
    s = min(motion, key=lambda s: abs(s["start"] - tv["start"]))
    assert abs(s["start"] - tv["start"]) < 0.1
    assert abs(s["rate_hz"] - tv["rate_hz"]) < 0.3
    assert png.stat().st_size > 10_000


def test_auto_falls_back_to_the_motion_search(violin_video, monkeypatch, caplog):
    import musicperf.analysis.hand as H

    path, p = violin_video

    def missing(*a, **k):
        raise MissingDependencyError("mediapipe", "landmarks", purpose="landmark extraction")

    monkeypatch.setattr(H, "detect_hand_region", missing)
    res = V.analyze_media(path, hand="auto", max_seconds=1.5)
    assert res.region_source == "motion search"
    assert "mediapipe" in caplog.text
    with pytest.raises(MissingDependencyError):
        V.analyze_media(path, hand="landmarks", max_seconds=1.0)

    monkeypatch.setattr(H, "detect_hand_region", lambda *a, **k: H.HandDetection(None, "none", 20, 0))
    with pytest.raises(ParameterError, match="found no left hand"):
        V.analyze_media(path, hand="landmarks", max_seconds=1.0)
    res = V.analyze_media(path, hand=keypoint_region(p["keypoints"]["left_hand"]["full"][0]), max_seconds=1.0)
    assert res.region_source == "given"
    with pytest.raises(ParameterError, match="hand must be"):
        V.analyze_media(path, hand="mediapipe")


def test_bad_hand_option_is_a_one_line_error(violin_video, capsys):
    from musicperf.cli import main

    path, _ = violin_video
    assert main(["vibrato", str(path), "--hand", "1,2,3"]) == 2
    assert "--hand must be auto, landmarks, search" in capsys.readouterr().err


@needs_mediapipe
def test_detector_on_a_synthetic_guitarist(tmp_path):
    from musicperf.synth import load_truth, render
    from musicperf.synth.core import encode_mp4

    r = render(seconds=1, seed=5, instrument="guitar", size=(320, 240))
    path = tmp_path / "guitar.mp4"
    encode_mp4(path, r.frames(), None, fps=r.fps, size=r.size)
    det = detect_hand_region(path, cache=False)
    # MediaPipe's hand model finds the guitarist's fretting hand in some frames (the violinist's
    # only through the pose); either way the box must hold the hand
    assert det.source in ("hand landmarks", "pose wrist")
    hand = np.nanmedian(load_truth(r.truth)["performers"][0]["keypoints"]["left_hand"]["full"].reshape(-1, 2), axis=0)
    g = det.region
    assert g.x <= hand[0] <= g.x + g.w and g.y <= hand[1] <= g.y + g.h, (g, hand)
    assert g.w * g.h < 40 * 40  # a hand, not half the picture
