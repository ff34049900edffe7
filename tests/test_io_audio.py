"""Tests for musicperf.io.audio: decoding, resampling, mono mixing, alignment to video time."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from _media_helpers import write_video
from musicperf.errors import DecodeError, ParameterError
from musicperf.io.audio import has_audio, load_audio
from musicperf.io.video import VideoReader


def _click_wav(path, *, sr=44100, seconds=1.0, at=0.5, channels=1):
    y = np.zeros((int(sr * seconds), channels), np.float32)
    y[int(round(at * sr))] = 0.9
    sf.write(path, y, sr, subtype="FLOAT")
    return path


def test_wav_native_rate_matches_soundfile(shared_data):
    path = shared_data / "eaf" / "phonfieldwork_test.wav"
    ref, ref_sr = sf.read(path, dtype="float32")
    y, sr = load_audio(path, sr=ref_sr)
    assert sr == 44100 and y.dtype == np.float32 and y.shape == ref.shape == (28783,)
    np.testing.assert_allclose(y, ref, atol=1e-6)


def test_wav_resampled_length(shared_data):
    y, sr = load_audio(shared_data / "eaf" / "phonfieldwork_test.wav", sr=16000)
    assert sr == 16000
    assert abs(len(y) - 28783 * 16000 / 44100) <= 1


def test_resampling_keeps_time_of_a_click(tmp_path):
    path = _click_wav(tmp_path / "click.wav", at=0.5)
    for rate in (16000, 22050, 48000):
        y, _ = load_audio(path, sr=rate)
        assert abs(int(np.argmax(np.abs(y))) - 0.5 * rate) <= 1, rate


def test_stereo_to_mono_averages(tmp_path):
    sr = 48000
    t = np.arange(sr) / sr
    left = 0.8 * np.sin(2 * np.pi * 440 * t)
    right = np.zeros_like(left)
    sf.write(tmp_path / "lr.wav", np.stack([left, right], 1).astype(np.float32), sr, subtype="FLOAT")
    stereo, _ = load_audio(tmp_path / "lr.wav", sr=sr, mono=False)
    mono, _ = load_audio(tmp_path / "lr.wav", sr=sr)
    assert stereo.shape == (2, sr) and mono.shape == (sr,)
    np.testing.assert_allclose(mono, 0.4 * np.sin(2 * np.pi * 440 * t), atol=1e-5)
    # resampled to 16 kHz: still a 440 Hz tone of amplitude 0.4
    low, _ = load_audio(tmp_path / "lr.wav", sr=16000)
    spectrum = np.abs(np.fft.rfft(low * np.hanning(len(low))))
    assert np.fft.rfftfreq(len(low), 1 / 16000)[np.argmax(spectrum)] == pytest.approx(440, abs=1.5)
    assert np.abs(low[1000:-1000]).max() == pytest.approx(0.4, abs=0.01)


def test_offset_sign_convention(tmp_path):
    path = _click_wav(tmp_path / "click.wav", sr=16000, at=0.5)
    base, _ = load_audio(path, sr=16000)
    late, _ = load_audio(path, sr=16000, offset=0.25)    # recorder started 0.25 s after video 0
    early, _ = load_audio(path, sr=16000, offset=-0.25)  # ... 0.25 s before video 0
    assert np.argmax(base) == 8000
    assert np.argmax(late) == 12000 and len(late) == len(base) + 4000
    assert np.all(late[:4000] == 0)
    assert np.argmax(early) == 4000 and len(early) == len(base) - 4000


def test_start_and_duration(tmp_path):
    path = _click_wav(tmp_path / "click.wav", sr=16000, at=0.5)
    y, _ = load_audio(path, sr=16000, start=0.4, duration=0.2)
    assert len(y) == 3200 and np.argmax(y) == 1600
    # with offset 0.3 the click (0.5 s into the recording) is at video time 0.8
    y, _ = load_audio(path, sr=16000, start=0.4, duration=0.2, offset=0.3)
    assert len(y) == 3200 and np.abs(y).max() == 0
    y, _ = load_audio(path, sr=16000, start=0.7, duration=0.2, offset=0.3)
    assert len(y) == 3200 and np.argmax(y) == 1600
    # asking beyond the end returns what exists (no padding at the end)
    y, _ = load_audio(path, sr=16000, start=0.9, duration=0.5)
    assert len(y) == 1600


def test_avi_audio(shared_data):
    path = shared_data / "video" / "mmaction2_tests_test.avi"
    assert has_audio(path)
    y, sr = load_audio(path, sr=22050)
    assert sr == 22050 and y.ndim == 1
    assert len(y) / sr == pytest.approx(6.56, abs=0.05)   # the video lasts 6.56 s
    assert 0.1 < np.abs(y).max() <= 1.0
    stereo, _ = load_audio(path, sr=22050, mono=False)
    assert stereo.shape == (2, len(y))
    np.testing.assert_allclose(stereo.mean(0), y, atol=1e-6)


def test_seeking_path_matches_full_decode(shared_data):
    # start > 5 s seeks instead of decoding from the beginning; same samples up to
    # resampler phase.
    path = shared_data / "video" / "mmaction2_tests_test.avi"
    full, _ = load_audio(path, sr=16000)
    part, _ = load_audio(path, sr=16000, start=5.5, duration=0.8)
    ref = full[88000:88000 + len(part)]
    assert len(part) == 12800
    assert np.corrcoef(part, ref)[0, 1] > 0.99


def test_audio_aligned_with_video_frames(tmp_path):
    # A white frame at 1.0 s and a click at 1.0 s in the same container: both readers agree.
    fps, sr = 25, 48000
    frames = np.zeros((50, 16, 16, 3), np.uint8)
    frames[25] = 255
    audio = np.zeros((1, 2 * sr), np.float32)
    audio[0, sr] = 0.9
    path = write_video(tmp_path / "av.mkv", frames, codec="ffv1", pix_fmt="bgr0", fps=fps,
                       audio=audio, audio_rate=sr)
    with VideoReader(path) as reader:
        white = [t for t, f in reader if f.mean() > 200]
    y, _ = load_audio(path, sr=sr)
    assert white == [pytest.approx(1.0)]
    assert int(np.argmax(np.abs(y))) == sr


def test_no_audio_stream(shared_data):
    path = shared_data / "video" / "decord_video_90.mov"
    assert not has_audio(path)
    with pytest.raises(DecodeError, match="decord_video_90.mov.*has no audio stream"):
        load_audio(path)


@pytest.mark.parametrize("kind, match", [("missing", "no such file"), ("empty", "empty"),
                                         ("text", "not a readable media file")])
def test_bad_files(tmp_path, kind, match):
    path = tmp_path / "take.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("RIFF? no.\n" * 10)
    with pytest.raises(DecodeError, match=match):
        load_audio(path)
    with pytest.raises(DecodeError, match=match):
        has_audio(path)


def test_bad_parameters(tmp_path):
    path = _click_wav(tmp_path / "c.wav")
    with pytest.raises(ParameterError, match="sample rate"):
        load_audio(path, sr=0)
    with pytest.raises(ParameterError, match="duration"):
        load_audio(path, duration=-1)
    with pytest.raises(ParameterError, match="start"):
        load_audio(path, start=-0.5)
