"""Tests for ``musicperf info``: text and JSON output, damaged files, one-line errors."""

from __future__ import annotations

import json

import pytest

from musicperf.cli import main


def _info(capsys, *args):
    code = main(["info", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output(shared_data, capsys):
    code, out, err = _info(capsys, shared_data / "video" / "mmaction2_tests_test.avi")
    assert code == 0 and err == ""
    assert "mpeg4, 320x240, 25 fps" in out
    assert "frames:    164 (counted by decoding)" in out
    assert "duration:  6.560 s" in out
    assert "audio:     44100 Hz, 2 channel(s)" in out


def test_fast_trusts_header(shared_data, capsys):
    code, out, _ = _info(capsys, shared_data / "video" / "pianist.avi", "--fast")
    assert code == 0
    assert "h264, 640x480, 30 fps" in out
    assert "frames:    2925 (from the container header, not verified)" in out


def test_json_output(shared_data, capsys):
    code, out, _ = _info(capsys, shared_data / "video" / "decord_video_90.mov", "--json")
    assert code == 0
    d = json.loads(out)
    assert (d["width"], d["height"], d["rotation"], d["n_frames"]) == (320, 568, 90, 3)
    assert d["frame_count_exact"] is True and d["has_audio"] is False
    assert d["audio_rate"] is None and d["lost_frames"] == 0


def test_rotation_note(shared_data, capsys):
    _, out, _ = _info(capsys, shared_data / "video" / "decord_video_90.mov")
    assert "320x568 as displayed (stored 568x320, rotated 90 degrees clockwise)" in out


def test_dancer_header_and_drop_frame(shared_data, capsys):
    code, out, _ = _info(capsys, shared_data / "video" / "dancer.avi")
    assert code == 0
    assert "frames:    1571 (counted by decoding); the header announces 1572" in out
    assert "1 empty slot(s) in the timestamps" in out
    assert "could not be decoded" not in out


def test_corrupted_file_reports_losses(shared_data, capsys):
    code, out, err = _info(capsys, shared_data / "video" / "decord_corrupted.mp4", "--json")
    assert code == 0
    d = json.loads(out)
    assert (d["n_frames"], d["announced_frames"], d["lost_frames"]) == (49, 50, 1)
    code, out, _ = _info(capsys, shared_data / "video" / "decord_corrupted.mp4")
    assert "49 (counted by decoding); the header announces 50; 1 could not be decoded" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("kind, match", [
    ("missing", "no such file"),
    ("empty", "file is empty"),
    ("text", "not a readable media file"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, kind, match):
    path = tmp_path / "concert.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not a video\n")
    code, out, err = _info(capsys, path)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("musicperf info: error: ") and "concert.mp4" in lines[0]
    assert match in lines[0]


def test_audio_only_file_is_refused(shared_data, capsys):
    code, _, err = _info(capsys, shared_data / "eaf" / "phonfieldwork_test.wav")
    assert code == 2 and "has no video stream" in err
