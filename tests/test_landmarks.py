"""MediaPipe landmark extraction on a few real frames, the landmark file, cache, command and overlay."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from musicperf.errors import DecodeError, ParameterError
from musicperf.features import cache as C
from musicperf.features.landmarks import (
    SOURCE_HANDS,
    _assign_hands,
    extract_landmarks,
    load_landmarks,
)

pytest.importorskip("mediapipe")
N = 10


@pytest.fixture(scope="module")
def pianist(shared_data, tmp_path_factory):
    cache = tmp_path_factory.mktemp("lmcache")
    video = shared_data / "video" / "pianist.avi"
    lm = extract_landmarks(video, max_frames=N, cache_dir=cache)
    return video, lm, cache


def test_pose_face_detected_and_missing_is_nan(pianist):
    _, lm, _ = pianist
    assert len(lm) == N and lm.fps == pytest.approx(30.0) and (lm.width, lm.height) == (640, 480)
    assert lm.pose.shape == (N, 33, 3) and lm.face.shape == (N, 478, 3)
    assert lm.left_hand.shape == lm.right_hand.shape == (N, 21, 3)
    rates = lm.detection_rates()
    assert rates["pose"] == 1.0 and rates["face"] >= 0.9
    # The pianist is seated facing right at the keyboard: shoulders in the upper half.
    assert np.all((lm.pose[:, 11:13, 1] > 0.1) & (lm.pose[:, 11:13, 1] < 0.6))
    assert np.all((lm.pose_visibility >= 0) & (lm.pose_visibility <= 1))
    # A hand not found is NaN in all its points, never zeros.
    for hand in (lm.left_hand, lm.right_hand):
        found = np.isfinite(hand[..., 0]).any(axis=1)
        assert np.isnan(hand[~found]).all()
        assert not (hand[found] == 0).all(axis=-1).any()
    assert not lm.detected("right_hand").all()  # the right hand is hidden in the first frames
    assert np.all(np.diff(lm.times) > 0)


def test_cache_hit_and_file_round_trip(pianist, tmp_path):
    video, lm, cache = pianist
    again = extract_landmarks(video, max_frames=N, cache_dir=cache)
    assert again.meta["cache_hit"] and not lm.meta["cache_hit"]
    np.testing.assert_array_equal(again.pose, lm.pose)
    path = lm.save(tmp_path / "p.npz")
    back = load_landmarks(path)
    np.testing.assert_array_equal(back.face, lm.face)
    assert back.fps == lm.fps and back.meta["version"] == lm.meta["version"]
    with pytest.raises(ParameterError, match=r"\.npz"):
        lm.save(tmp_path / "p.json")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DecodeError, match="bad.npz"):
        load_landmarks(tmp_path / "bad.npz")


def test_cache_key_changes_with_content_and_parameters(tmp_path):
    v = tmp_path / "v.bin"
    v.write_bytes(b"a" * 3000)
    k1 = C.entry_path(v, extractor="x", version="1", params={"a": 1}, cache_dir=tmp_path)
    assert k1 == C.entry_path(v, extractor="x", version="1", params={"a": 1}, cache_dir=tmp_path)
    assert k1 != C.entry_path(v, extractor="x", version="2", params={"a": 1}, cache_dir=tmp_path)
    assert k1 != C.entry_path(v, extractor="x", version="1", params={"a": 2}, cache_dir=tmp_path)
    st = v.stat()
    v.write_bytes(b"b" * 3000)
    os.utime(v, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime, other content
    assert k1 != C.entry_path(v, extractor="x", version="1", params={"a": 1}, cache_dir=tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(3)}, {"n": 3}

    a, m, hit = C.cached(v, extractor="x", version="1", params={}, compute=compute, cache_dir=tmp_path)
    a2, m2, hit2 = C.cached(v, extractor="x", version="1", params={}, compute=compute, cache_dir=tmp_path)
    assert (hit, hit2, len(calls)) == (False, True, 1) and m2 == {"n": 3}
    np.testing.assert_array_equal(a2["a"], [0, 1, 2])
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_missing_video_is_a_decode_error(tmp_path):
    with pytest.raises(DecodeError, match="does not exist"):
        extract_landmarks(tmp_path / "none.mp4")
    with pytest.raises(ParameterError, match="hands"):
        extract_landmarks(tmp_path / "none.mp4", hands="both")


class _LM:
    def __init__(self, pts):
        self.landmark = [type("P", (), {"x": x, "y": y, "z": 0.0})() for x, y in pts]


class _Handed:
    def __init__(self, label, score):
        self.classification = [type("C", (), {"label": label, "score": score})()]


def test_stand_alone_hands_are_assigned_to_sides():
    res = type("R", (), {})()
    res.multi_hand_landmarks = [_LM([(0.8, 0.5)] * 21), _LM([(0.2, 0.5)] * 21)]
    # Labels as MediaPipe gives them for a mirrored image: "Right" is the performer's left.
    res.multi_handedness = [_Handed("Right", 0.9), _Handed("Left", 0.8)]
    sides = dict(_assign_hands(res, None))
    assert sides["left"][0, 0] == pytest.approx(0.8) and sides["right"][0, 0] == pytest.approx(0.2)
    # With a pose, the nearest wrist decides, whatever the label says.
    pose = np.full((33, 3), np.nan, np.float32)
    pose[15, :2], pose[16, :2] = (0.25, 0.5), (0.75, 0.5)
    sides = dict(_assign_hands(res, pose))
    assert sides["left"][0, 0] == pytest.approx(0.2) and sides["right"][0, 0] == pytest.approx(0.8)


def test_command_json_summary_and_contact_sheet(pianist, tmp_path, capsys):
    from PIL import Image

    from musicperf.cli import main

    video, lm, cache = pianist
    out, sheet = tmp_path / "p.npz", tmp_path / "p.png"
    rc = main(["landmarks", str(video), "-o", str(out), "--json", "--max-frames", str(N), "--cache-dir", str(cache),
               "--no-progress", "--sheet", str(sheet), "--features", str(tmp_path / "f.csv")])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == N and summary["fps"] == pytest.approx(30.0)
    assert set(summary["detection_rate"]) == {"pose", "face", "left_hand", "right_hand"}
    assert summary["detection_rate"]["pose"] == 1.0 and summary["cache_hit"]
    assert load_landmarks(out).pose.shape == (N, 33, 3)
    img = np.asarray(Image.open(sheet).convert("RGB"))
    assert img.shape[1] == 4 * 320
    # Face-mesh points are drawn in pure-ish green, which the video itself does not contain.
    green = (img[..., 1] > 200) & (img[..., 0] < 90) & (img[..., 2] < 120)
    assert green.sum() > 100
    header = (tmp_path / "f.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["time", "head_pitch", "head_yaw"]
    assert main(["landmarks", str(video), "-o", str(tmp_path / "x.txt")]) == 2


def test_hand_only_view_falls_back_to_the_hand_detector(pianist):
    """A close-up of the pianist's left hand: Holistic finds no body, the hand detector finds the hand."""
    from PIL import Image

    from musicperf.features.landmarks import _HolisticRunner
    from musicperf.io.video import VideoReader

    video, lm, _ = pianist
    frames = []
    with VideoReader(video) as reader:
        for i, (_, f) in enumerate(reader):
            if i >= N:
                break
            frames.append(f)
    cx, cy = np.nanmean(lm.left_hand[N - 1, :, :2] * [640, 480], axis=0).astype(int)
    crops = [np.asarray(Image.fromarray(f[cy - 110 : cy + 110, cx - 110 : cx + 110]).resize((256, 256))) for f in frames[5:]]
    found = {}
    for mode in ("never", "fallback"):
        runner = _HolisticRunner(hands=mode, refine_face=False, min_detection_confidence=0.5, min_tracking_confidence=0.5)
        try:
            found[mode] = [runner(c) for c in crops]
        finally:
            runner.close()
    assert all(r[0] is None for r in found["never"])  # no pose in a close-up
    assert all(r[3] is None and r[4] is None for r in found["never"])
    hits = [r for r in found["fallback"] if r[3] is not None]
    assert len(hits) >= 3 and all(r[5][0] == SOURCE_HANDS for r in hits)


def test_overlay_video_has_the_landmark_frames(pianist, tmp_path):
    from musicperf.io.video import VideoReader, probe
    from musicperf.report.overlay import overlay_video

    video, lm, _ = pianist
    out = overlay_video(video, lm, tmp_path / "o.mp4", max_frames=5)
    info = probe(out, count_frames=True)
    assert info.n_frames == 5 and (info.width, info.height) == (640, 480)
    with VideoReader(out) as reader:
        drawn = next(iter(reader))[1].astype(int)
    with VideoReader(video) as reader:
        plain = next(iter(reader))[1].astype(int)
    changed = np.abs(drawn - plain).max(axis=-1) > 60
    # The skeleton is drawn where the pianist is (x 0.45-0.75 of the width), nowhere else.
    assert changed[:, 290:480].sum() > 300
    assert changed[:, :200].sum() < 20


def test_sampled_frames_and_worker_processes_match_every_frame(shared_data, tmp_path):
    """every=2 over 2 worker processes: one row per decoded frame, the same times, half the model
    frames, and interpolated points within a few pixels of running the model on every frame."""
    video = shared_data / "video" / "pianist.avi"
    full = extract_landmarks(video, end=1.0, cache=False)
    fast = extract_landmarks(video, end=1.0, every=2, workers=2, cache_dir=tmp_path)
    from musicperf.features.landmarks import _segments

    cut = _segments(video, 0.0, 1.0, 2)[0][1]
    n0 = int((full.times < cut).sum())  # frames of the first stretch (pianist.avi starts at 1/30 s)
    assert fast.meta["segments"] == 2 and fast.meta["model_frames"] == -(-n0 // 2) + -(-(len(full) - n0) // 2)
    assert len(fast) == len(full) == 29 and np.array_equal(fast.times, full.times)
    assert fast.meta["params"]["every"] == 2 and fast.meta["params"]["segments"] == 2
    d = np.linalg.norm((fast.pose[:, :, :2] - full.pose[:, :, :2]) * [640, 480], axis=-1)
    assert np.nanmedian(d) < 6.0
    assert np.isfinite(fast.pose[:, 11, 0]).all()
    again = extract_landmarks(video, end=1.0, every=2, workers=2, cache_dir=tmp_path)
    assert again.meta["cache_hit"] and np.array_equal(again.pose, fast.pose, equal_nan=True)
    # The command's --every/--workers reach the same cache entry.
    from musicperf.cli import main

    out = tmp_path / "p.npz"
    assert main(["landmarks", str(video), "-o", str(out), "--end", "1.0", "--every", "2", "--workers", "2",
                 "--cache-dir", str(tmp_path), "--json", "--no-progress"]) == 0
    assert np.array_equal(load_landmarks(out).pose, fast.pose, equal_nan=True)


def test_segments_partition_the_frames_and_worker_errors_name_the_video(shared_data, tmp_path):
    from musicperf.features.landmarks import _run_segments_in_processes, _segments

    video = shared_data / "video" / "pianist.avi"
    segs = _segments(video, 0.0, 2.0, 3)
    assert len(segs) == 3 and segs[0][0] == 0.0 and segs[-1][1] == 2.0
    # Cuts fall half a frame before a frame time (30 fps): no frame is on a boundary.
    for a, _ in segs[1:]:
        assert abs(a * 30 - round(a * 30)) == pytest.approx(0.5)
    assert _segments(video, 0.0, None, 1) == [(0.0, None)]
    params = {"hands": "fallback", "refine_face": True, "min_detection_confidence": 0.5,
              "min_tracking_confidence": 0.5, "start": 0.0, "end": None, "max_frames": None}
    with pytest.raises(DecodeError, match="landmark worker failed.*not-a-video"):
        _run_segments_in_processes(tmp_path / "not-a-video.mp4", params, [(0.0, 1.0), (1.0, None)], 1)
    with pytest.raises(ParameterError, match="every"):
        extract_landmarks(video, every=0)
