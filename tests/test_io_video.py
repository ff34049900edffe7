"""Tests for musicperf.io.video: facts of real files, synthetic round trips, bad input."""

from __future__ import annotations

import logging
from fractions import Fraction

import numpy as np
import pytest

from _media_helpers import colour_frames, write_video
from musicperf.errors import DecodeError, ParameterError
from musicperf.io.video import Clip, VideoReader, probe

# file -> (width, height as displayed, fps, frames announced, rotation, has_audio)
REAL = {
    "pianist.avi": (640, 480, 30.0, 2925, 0, True),
    "dancer.avi": (518, 496, 25.0, 1572, 0, True),
    "mmaction2_tests_test.avi": (320, 240, 25.0, 164, 0, True),
    "decord_unordered.mov": (50, 50, 32.0, 4, 0, False),
    "decord_video_90.mov": (320, 568, 30.0, 3, 90, False),
    "decord_corrupted.mp4": (1280, 720, 10.0, 50, 0, False),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_probe_real_files(shared_data, name):
    width, height, fps, n, rotation, audio = REAL[name]
    info = probe(shared_data / "video" / name)
    assert (info.width, info.height) == (width, height)
    assert info.fps == pytest.approx(fps)
    assert info.n_frames == n and not info.frame_count_exact
    assert info.rotation == rotation
    assert info.has_audio is audio
    assert info.duration == pytest.approx(n / fps, abs=0.05)
    if audio:
        assert (info.audio_rate, info.audio_channels) == (44100, 2)
    else:
        assert info.audio_rate is None and info.audio_channels is None
    d = info.to_dict()
    assert d["path"] == str(shared_data / "video" / name) and d["n_frames"] == n


# decoded count, lost, skipped (dancer.avi's header counts one empty AVI "drop frame" chunk)
COUNTED = {
    "dancer.avi": (1571, 0, 1),
    "mmaction2_tests_test.avi": (164, 0, 0),
    "decord_unordered.mov": (4, 0, 0),
    "decord_video_90.mov": (3, 0, 0),
    "decord_corrupted.mp4": (49, 1, 0),
}


@pytest.mark.parametrize("name", sorted(COUNTED))
def test_probe_counting(shared_data, name):
    n, lost, skipped = COUNTED[name]
    info = probe(shared_data / "video" / name, count_frames=True)
    assert info.frame_count_exact
    assert (info.n_frames, info.lost_frames, info.skipped_frames) == (n, lost, skipped)
    assert info.announced_frames == REAL[name][3]


@pytest.mark.parametrize("name", ["mmaction2_tests_test.avi", "dancer.avi", "decord_unordered.mov"])
def test_reader_times_monotonic_and_shapes(shared_data, name):
    width, height, fps = REAL[name][:3]
    if name == "dancer.avi":  # 1571 frames: read small to keep the test fast
        width, height = 40, 30
    with VideoReader(shared_data / "video" / name, size=(height, width)) as reader:
        times, shapes = [], set()
        for t, frame in reader:
            times.append(t)
            shapes.add((frame.shape, frame.dtype))
        assert reader.lost_frames == 0
    assert shapes == {((height, width, 3), np.dtype(np.uint8))}
    times = np.array(times)
    assert np.all(np.diff(times) > 0)
    # every step is a whole number of frame periods (these files are constant rate)
    steps = np.diff(times) * fps
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)


def test_avi_shuffled_timestamps_are_resorted(shared_data):
    # ffmpeg hands out pianist.avi's guessed pts as 1, 4, 3, 5, 2, ...: the reader re-sorts them.
    with VideoReader(shared_data / "video" / "pianist.avi", size=(16, 16)) as reader:
        times = [t for t, _ in reader.frames(0.0, 2.0)]
    np.testing.assert_allclose(times, (np.arange(len(times)) + 1) / 30.0, atol=1e-9)
    assert len(times) == 59  # frames at 1/30 .. 59/30 s; 60/30 = 2.0 is excluded


def test_rotation_applied(shared_data):
    path = shared_data / "video" / "decord_video_90.mov"
    with VideoReader(path) as reader:
        frames = [f for _, f in reader]
    assert len(frames) == 3 and frames[0].shape == (568, 320, 3)
    with VideoReader(path, size=(100, 60)) as reader:
        _, small = next(iter(reader))
    assert small.shape == (100, 60, 3)


def test_rotation_direction_synthetic(tmp_path):
    # Stored picture: left half red, right half blue. The display matrix asks for a 90 degree
    # clockwise turn (ffmpeg angle -90), so displayed: top half red, bottom half blue.
    stored = np.zeros((4, 32, 48, 3), np.uint8)
    stored[:, :, :24, 0] = 255
    stored[:, :, 24:, 2] = 255
    path = write_video(tmp_path / "rot.mp4", stored, codec="libx264", pix_fmt="yuv420p",
                       rotation=-90)
    info = probe(path)
    assert (info.rotation, info.width, info.height) == (90, 32, 48)
    with VideoReader(path) as reader:
        _, frame = next(iter(reader))
    assert frame.shape == (48, 32, 3)
    top, bottom = frame[:20].reshape(-1, 3).mean(0), frame[28:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 50
    assert bottom[2] > 200 and bottom[0] < 50


def test_lossless_round_trip(tmp_path):
    frames = colour_frames(10)
    path = write_video(tmp_path / "ten.mov", frames, codec="png", fps=25)
    info = probe(path)
    assert (info.n_frames, info.fps, info.width, info.height) == (10, 25.0, 32, 24)
    with VideoReader(path) as reader:
        got = list(reader)
    assert [t for t, _ in got] == pytest.approx(np.arange(10) / 25.0)
    np.testing.assert_array_equal(np.stack([f for _, f in got]), frames)
    with VideoReader(path, rgb=False) as reader:
        _, bgr = next(iter(reader))
    np.testing.assert_array_equal(bgr, frames[0][..., ::-1])


def test_variable_frame_rate_times(tmp_path):
    pts = [0, 40, 80, 200, 240, 250, 300, 400, 410, 500]  # milliseconds
    frames = colour_frames(10)
    path = write_video(tmp_path / "vfr.mkv", frames, codec="ffv1", pix_fmt="bgr0", pts=pts,
                       time_base=Fraction(1, 1000))
    info = probe(path)  # Matroska announces no frame count: counted automatically
    assert info.frame_count_exact and info.n_frames == 10 and info.announced_frames == 0
    with VideoReader(path) as reader:
        got = list(reader)
    np.testing.assert_allclose([t for t, _ in got], np.array(pts) / 1000.0, atol=1e-9)
    np.testing.assert_array_equal(np.stack([f for _, f in got]), frames)
    with VideoReader(path) as reader:  # a time range, twice (the reader rewinds)
        part = [t for t, _ in reader.frames(0.2, 0.41)]
        again = [t for t, _ in reader.frames(0.2, 0.41)]
    assert part == again == pytest.approx([0.2, 0.24, 0.25, 0.3, 0.4])


def test_seek_matches_full_pass(shared_data):
    with VideoReader(shared_data / "video" / "mmaction2_tests_test.avi", size=(24, 32)) as r:
        full = list(r)
        part = list(r.frames(4.0, 5.0))
    expected = [(t, f) for t, f in full if 4.0 <= t < 5.0]
    assert [t for t, _ in part] == pytest.approx([t for t, _ in expected])
    for (_, a), (_, b) in zip(part, expected):
        np.testing.assert_array_equal(a, b)


def test_resize(tmp_path):
    frames = np.full((3, 24, 32, 3), (10, 200, 30), np.uint8)
    path = write_video(tmp_path / "flat.mov", frames)
    with VideoReader(path, size=(12, 20)) as reader:
        shapes = [f.shape for _, f in reader]
        _, f = next(iter(reader))
    assert shapes == [(12, 20, 3)] * 3
    np.testing.assert_array_equal(f, np.broadcast_to((10, 200, 30), (12, 20, 3)))


def test_clips(tmp_path):
    frames = colour_frames(40, 16, 16)
    path = write_video(tmp_path / "forty.mov", frames)
    with VideoReader(path) as reader:
        clips = list(reader.clips(16, 16))
        overlap = list(reader.clips(16, 8))
        sparse = list(reader.clips(4, 10, size=(8, 8), drop_last=False))
        tail = list(reader.clips(16, 16, drop_last=False))
    assert [c.start_frame for c in clips] == [0, 16]
    assert all(isinstance(c, Clip) and c.frames.shape == (16, 16, 16, 3) for c in clips)
    np.testing.assert_array_equal(clips[1].frames, frames[16:32])
    np.testing.assert_allclose(clips[1].times, np.arange(16, 32) / 25.0)
    assert [c.start_frame for c in overlap] == [0, 8, 16, 24]
    np.testing.assert_array_equal(overlap[3].frames, frames[24:40])
    assert [c.start_frame for c in sparse] == [0, 10, 20, 30]
    assert all(c.frames.shape == (4, 8, 8, 3) for c in sparse)
    assert [len(c) for c in tail] == [16, 16, 8]
    np.testing.assert_array_equal(tail[2].frames, frames[32:])


def test_corrupted_file_yields_what_it_can(shared_data, caplog):
    path = shared_data / "video" / "decord_corrupted.mp4"
    with caplog.at_level(logging.WARNING, logger="musicperf.io.video"):
        with VideoReader(path, size=(36, 64)) as reader:
            times = [t for t, _ in reader]
            assert reader.lost_frames == 1 and reader.n_decoded == 49
    assert len(times) == 49 and np.all(np.diff(times) > 0)
    assert 3.0 not in np.round(times, 6)  # the frame at 3.0 s is the one lost
    assert any("1 frame(s) could not be decoded" in r.getMessage() for r in caplog.records)


def test_truncated_file_counts_lost_tail(tmp_path, caplog):
    frames = colour_frames(50, 64, 64)
    full = write_video(tmp_path / "full.mp4", frames, codec="libx264", pix_fmt="yuv420p",
                       options={"movflags": "faststart"})
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with caplog.at_level(logging.WARNING, logger="musicperf.io.video"):
        info = probe(cut, count_frames=True)
    assert info.announced_frames == 50
    assert 0 < info.n_frames < 50
    assert info.n_frames + info.lost_frames == 50
    assert "could not be decoded" in caplog.text


@pytest.mark.parametrize("kind, match", [
    ("missing", "no such file"),
    ("empty", "file is empty"),
    ("text", "not a readable media file"),
    ("directory", "is a directory"),
])
def test_bad_input_raises_decode_error(tmp_path, kind, match):
    path = tmp_path / "clip.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n" * 20)
    elif kind == "directory":
        path.mkdir()
    with pytest.raises(DecodeError, match=match) as exc:
        probe(path)
    assert "clip.mp4" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(DecodeError, match=match):
        VideoReader(path)


def test_audio_file_has_no_video_stream(shared_data):
    with pytest.raises(DecodeError, match="has no video stream"):
        probe(shared_data / "eaf" / "phonfieldwork_test.wav")


def test_bad_parameters(tmp_path):
    path = write_video(tmp_path / "p.mov", colour_frames(2))
    with pytest.raises(ParameterError, match="size"):
        VideoReader(path, size=(0, 10))
    with VideoReader(path) as reader:
        with pytest.raises(ParameterError, match="length"):
            next(reader.clips(0))
        with pytest.raises(ParameterError, match="range"):
            reader.frames(1.0, 0.5)
    with pytest.raises(DecodeError, match="closed"):
        next(iter(reader))
