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


def test_probe_still_refuses_audio_only(shared_data):
    # the library's video probe wants a picture; only the info command describes audio files
    from musicperf.errors import DecodeError
    from musicperf.io.video import probe

    with pytest.raises(DecodeError, match="has no video stream"):
        probe(shared_data / "eaf" / "phonfieldwork_test.wav")


def test_audio_only_file_is_described(shared_data, capsys):
    wav = shared_data / "eaf" / "phonfieldwork_test.wav"
    code, out, err = _info(capsys, wav)
    assert code == 0 and err == ""
    assert "video:     none (an audio file)" in out
    assert "audio:     pcm_s16le, 44100 Hz, 1 channel(s)" in out
    assert "duration:  0.653 s" in out
    code, out, _ = _info(capsys, wav, "--json")
    d = json.loads(out)
    assert code == 0 and d["has_video"] is False and (d["audio_rate"], d["audio_channels"]) == (44100, 1)
    assert d["duration"] == pytest.approx(0.6527, abs=1e-3)


def test_audio_only_synthetic_wav(tmp_path, capsys):
    import wave

    import numpy as np

    with wave.open(str(tmp_path / "tone.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes((np.zeros((22050 * 2, 2)) + 1000).astype("<i2").tobytes())
    code, out, _ = _info(capsys, tmp_path / "tone.wav")
    assert code == 0 and "22050 Hz, 2 channel(s)" in out and "duration:  2.000 s" in out


def test_help_lists_the_workflow_first(capsys):
    from musicperf.cli import COMMAND_GROUPS, build_parser

    text = build_parser().format_help()
    workflow = text.index("the labelling workflow")
    positions = [text.index(f"\n  {name} ") for name in ("train", "label", "score", "report")]
    assert workflow < positions[0] < positions[1] < positions[2] < positions[3] < text.index("\nanalyses:")
    assert text.index("\nanalyses:") < text.index("\ntools:") < text.index("\noptions:")
    registered = set(build_parser()._subparsers._group_actions[0].choices)
    grouped = [n for names in COMMAND_GROUPS.values() for n in names]
    assert set(grouped) == registered and len(grouped) == len(registered)  # every command in one group
    assert "other commands" not in text
    with pytest.raises(SystemExit):
        main(["info", "--help"])
    assert capsys.readouterr().out.startswith("usage: musicperf info ")
