"""Tests of musicperf.features.audio: timbral features of 001 and mel patches, on signals with
known answers and against librosa itself."""

from __future__ import annotations

import numpy as np
import pytest

from musicperf.errors import DecodeError, ParameterError
from musicperf.features.audio import (
    _with_deltas,
    default_hop_length,
    mel_patches,
    timbral_feature_names,
    timbral_features,
)

librosa = pytest.importorskip("librosa")

SR = 22050
SEG = 0.64
SEG_LEN = int(round(SEG * SR))  # 14112 samples
HOP = default_hop_length(SR, SEG, 28)  # 504 = 14112 / 28
F0, AMP = 1000.0, 0.5
BASE = timbral_feature_names(deltas=0)
COL = {name: i for i, name in enumerate(timbral_feature_names())}


def tone(freq=F0, amp=AMP, seconds=3 * SEG, sr=SR):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def tone_features():
    # Computed once per module: librosa's first calls compile with numba. The segments start
    # 0.1 s into the tone and end 0.1 s before its end, so every window sees only the tone.
    return timbral_features(tone(seconds=3 * SEG + 0.2), SR, segment_starts=0.1 + SEG * np.arange(3))


@pytest.fixture(scope="module")
def rich_signal():
    """A chirp plus noise with a rising envelope: every descriptor varies over time."""
    rng = np.random.default_rng(1)
    t = np.arange(4 * SEG_LEN) / SR
    chirp = np.sin(2 * np.pi * (300 * t + 900 * t**2))
    y = (0.2 + 0.15 * t) * chirp + 0.05 * rng.standard_normal(t.size)
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def rich_features(rich_signal):
    return timbral_features(rich_signal, SR)


# ---------------------------------------------------------------------------------- shapes


def test_paper_shape_and_names(tone_features):
    # 3 segments of 0.64 s, 28 windows, 27 base features x (value + 3 derivatives) = 108.
    assert tone_features.shape == (3, 28, 108)
    assert tone_features.dtype == np.float32
    names = timbral_feature_names()
    assert len(names) == 108 and len(set(names)) == 108
    assert names[:20] == [f"mfcc_{i:02d}" for i in range(20)]
    assert names[20:27] == ["centroid", "bandwidth", "rolloff", "flatness", "contrast", "zcr", "rms"]
    assert names[27] == "mfcc_00_d1" and names[-1] == "rms_d3"


def test_contrast_bands_and_delta_options():
    y = tone(seconds=SEG)
    full = timbral_features(y, SR, contrast="bands")
    assert full.shape == (1, 28, 132) == (1, 28, len(timbral_feature_names(contrast="bands")))
    assert timbral_features(y, SR, deltas=0).shape == (1, 28, 27)
    # The averaged contrast is the mean of the 7 band contrasts.
    bands = full[0, :, 24:31]
    mean = timbral_features(y, SR, deltas=0)[0, :, 24]
    np.testing.assert_allclose(bands.mean(axis=1), mean, rtol=1e-5)


def test_48k_gives_28_windows_too():
    y = tone(seconds=2 * SEG, sr=48000)
    out = timbral_features(y, 48000)
    assert out.shape == (2, 28, 108)
    assert default_hop_length(48000, SEG, 28) == 1097
    # (the very first window straddles 0 s: half zeros, an onset click, so it is skipped)
    np.testing.assert_allclose(out[:, :, COL["centroid"]].ravel()[1:], F0, rtol=2e-3)


# ------------------------------------------------------------------- known answers (1 kHz)


def test_tone_centroid_rolloff_bandwidth(tone_features):
    bin_hz = SR / 2048
    np.testing.assert_allclose(tone_features[:, :, COL["centroid"]], F0, atol=1.0)
    # Roll-off is a bin frequency: within two bins above the tone (85 % of a Hann main lobe).
    roll = tone_features[:, :, COL["rolloff"]]
    assert np.all((roll >= F0 - bin_hz) & (roll <= F0 + 2 * bin_hz))
    assert np.all(tone_features[:, :, COL["bandwidth"]] < 2 * bin_hz)


def test_tone_flatness_zcr_rms(tone_features):
    assert np.all(tone_features[:, :, COL["flatness"]] < 1e-6)  # sinusoidal -> 0
    np.testing.assert_allclose(tone_features[:, :, COL["zcr"]], 2 * F0 / SR, rtol=0.01)
    np.testing.assert_allclose(tone_features[:, :, COL["rms"]], AMP / np.sqrt(2), rtol=2e-3)


def test_window_at_file_start_sees_zeros_before_it():
    # The first window is centred at 0 s: its first half lies before the recording (zeros), so
    # its RMS is that of half a window of tone, A / 2; the next windows see the tone only.
    out = timbral_features(tone(seconds=SEG + 0.1), SR, deltas=0)
    np.testing.assert_allclose(out[0, 0, COL["rms"]], AMP / 2, rtol=5e-3)
    np.testing.assert_allclose(out[0, 3:, COL["rms"]], AMP / np.sqrt(2), rtol=2e-3)


def test_noise_is_flat_and_crosses_half_the_time(rng):
    y = (0.3 * rng.standard_normal(2 * SEG_LEN)).astype(np.float32)
    out = timbral_features(y, SR, deltas=0)
    # Flatness of white noise's power spectrum: geometric / arithmetic mean of exponential
    # variables = exp(-Euler gamma) ~ 0.56 (Hann window correlates bins a little).
    assert 0.4 < np.median(out[:, 1:-1, COL["flatness"]]) < 0.65
    np.testing.assert_allclose(np.median(out[:, :, COL["zcr"]]), 0.5, atol=0.03)
    np.testing.assert_allclose(np.median(out[:, 1:, COL["rms"]]), 0.3, rtol=0.03)


def test_tone_contrast_higher_than_noise(tone_features, rng):
    noise = timbral_features((0.3 * rng.standard_normal(SEG_LEN)).astype(np.float32), SR, deltas=0)
    assert tone_features[:, :, COL["contrast"]].mean() > noise[:, :, COL["contrast"]].mean() + 5


# ------------------------------------------------------------------------- against librosa


def test_every_base_feature_matches_librosa(rich_signal, rich_features):
    """With hop = segment / 28, segment i's windows are librosa's centred frames 28 i .. 28 i + 27."""
    y, kw = rich_signal, dict(n_fft=2048, hop_length=HOP)
    S = np.abs(librosa.stft(y, center=True, pad_mode="constant", **kw))
    expected = {
        "mfcc": librosa.feature.mfcc(y=y, sr=SR, n_mfcc=20, pad_mode="constant", **kw),
        "centroid": librosa.feature.spectral_centroid(S=S, sr=SR, **kw),
        "bandwidth": librosa.feature.spectral_bandwidth(S=S, sr=SR, **kw),
        "rolloff": librosa.feature.spectral_rolloff(S=S, sr=SR, roll_percent=0.85, **kw),
        "flatness": librosa.feature.spectral_flatness(S=S),
        "contrast": librosa.feature.spectral_contrast(S=S, sr=SR, **kw).mean(axis=0, keepdims=True),
        "zcr": librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=HOP, center=True),
        "rms": librosa.feature.rms(y=y, frame_length=2048, hop_length=HOP, center=True, pad_mode="constant"),
    }
    ours = rich_features[:, :, :27].reshape(-1, 27)  # (n_segments * 28, 27)
    n = ours.shape[0]
    got = {"mfcc": ours[:, :20].T}
    for name in expected:
        if name != "mfcc":
            got[name] = ours[:, COL[name]][None, :]
    for name, ref in expected.items():
        np.testing.assert_allclose(got[name], ref[:, :n], rtol=2e-4, atol=2e-3, err_msg=name)


def test_derivative_columns_are_librosa_delta_within_segment(rich_features):
    base = rich_features[:, :, :27].astype(np.float64).transpose(0, 2, 1)
    for k in (1, 2, 3):
        ref = librosa.feature.delta(base, order=k, width=9, axis=-1, mode="interp")
        got = rich_features[:, :, 27 * k : 27 * (k + 1)].transpose(0, 2, 1)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3 * np.abs(ref).max())


def test_derivative_orders_on_polynomials():
    t = np.arange(28, dtype=np.float64)
    base = np.stack([3.0 * t + 2.0, t**2, t**3])[None]  # (1, 3, 28)
    out = _with_deltas(base, 3, 9)
    d1, d2, d3 = out[0, 3:6], out[0, 6:9], out[0, 9:12]
    np.testing.assert_allclose(d1[0], 3.0, atol=1e-9)  # ramp: constant slope
    np.testing.assert_allclose(d2[0], 0.0, atol=1e-9)
    np.testing.assert_allclose(d3[0], 0.0, atol=1e-9)
    # t^2: 2t (away from the edges, where "interp" fits a first-order polynomial), 2, 0
    np.testing.assert_allclose(d1[1, 4:-4], 2 * t[4:-4], atol=1e-8)
    np.testing.assert_allclose(d2[1], 2.0, atol=1e-8)
    np.testing.assert_allclose(d3[1], 0.0, atol=1e-8)
    np.testing.assert_allclose(d3[2], 6.0, atol=1e-7)  # t^3: third derivative 6


def test_rms_ramp_has_constant_first_derivative():
    # Envelope a(t) rising linearly: RMS per window ~ a(centre) / sqrt(2), so d(RMS)/d(window)
    # = slope * hop / sqrt(2), constant; second and third derivatives ~ 0.
    n = 2 * SEG_LEN
    slope = 0.5 / n  # amplitude per sample
    env = 0.2 + slope * np.arange(n)
    y = (env * np.sin(2 * np.pi * F0 * np.arange(n) / SR)).astype(np.float32)
    out = timbral_features(y, SR, segment_starts=[SEG / 2], segment_duration=SEG)
    expected = slope * HOP / np.sqrt(2)
    np.testing.assert_allclose(out[0, :, COL["rms_d1"]], expected, rtol=0.01)
    assert np.abs(out[0, :, COL["rms_d2"]]).max() < 0.01 * expected
    assert np.abs(out[0, :, COL["rms_d3"]]).max() < 0.01 * expected


# ------------------------------------------------------------------------------- alignment


def test_segments_follow_their_start_times(rich_signal):
    shift = 1234  # samples of silence before the same audio
    y2 = np.concatenate([np.zeros(shift, np.float32), rich_signal])
    starts = np.array([0.64, 1.3])
    a = timbral_features(rich_signal, SR, segment_starts=starts)
    b = timbral_features(y2, SR, segment_starts=starts + shift / SR)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def test_segment_past_the_end_is_zero_padded(caplog):
    y = tone(seconds=SEG)
    with caplog.at_level("WARNING", logger="musicperf.features.audio"):
        out = timbral_features(y, SR, segment_starts=[0.0, 0.5, 5.0], deltas=0)
    assert "frame indices" in caplog.text  # 5 s into a 0.64 s signal looks like a mistake
    assert np.all(np.isfinite(out))
    assert np.all(out[2, :, COL["rms"]] == 0)  # fully past the end: silence
    assert out[1, -1, COL["rms"]] == 0 and out[1, 0, COL["rms"]] > 0.3


def test_default_segments_drop_partial_tail():
    assert timbral_features(tone(seconds=2.5 * SEG), SR, deltas=0).shape[0] == 2


# ----------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "y, kwargs, match",
    [
        (np.zeros((2, SEG_LEN), np.float32), {}, "mono"),
        (np.zeros(SEG_LEN, np.int16), {}, "floating point"),
        (np.zeros(100, np.float32), {}, "shorter than one segment"),
        (np.full(SEG_LEN, np.nan, np.float32), {}, "NaN"),
        (np.zeros(SEG_LEN, np.float32), {"contrast": "max"}, "contrast"),
        (np.zeros(SEG_LEN, np.float32), {"delta_width": 8}, "delta_width"),
        (np.zeros(SEG_LEN, np.float32), {"segment_starts": [-1.0]}, ">= 0"),
        (np.zeros(SEG_LEN, np.float32), {"segment_starts": [np.inf]}, "finite"),
    ],
)
def test_bad_input_raises_parameter_error(y, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        timbral_features(y, SR, **kwargs)


def test_low_sample_rate_is_refused():
    with pytest.raises(ParameterError, match="too low"):
        timbral_features(np.zeros(16000, np.float32), 8000, segment_duration=0.64)


# ------------------------------------------------------------------------------ mel patches


def test_mel_patches_shape_alignment_and_padding():
    y = tone(seconds=1.0)
    out = mel_patches(y, SR, [0.0, 0.5, 0.9], duration=SEG, n_mels=64, hop_length=512)
    assert out.shape == (3, 64, int(np.ceil(SEG * SR / 512))) and out.dtype == np.float32
    # The tone's band: the mel band whose centre is nearest 1 kHz holds the maximum.
    centres = librosa.mel_frequencies(n_mels=64 + 2, fmax=SR / 2)[1:-1]
    peak = out[0, :, 5:-5].mean(axis=1).argmax()
    assert abs(centres[peak] - F0) < 2 * np.diff(centres)[peak]
    # Patch 2 runs past the end of the 1 s signal: its last columns are digital silence.
    np.testing.assert_allclose(out[2, :, -3:], -100.0)
    # Power in dB of a 0.5-amplitude tone: sum over mel bands ~ Hann-windowed power.
    assert out[0, :, 10].max() > 20


def test_mel_patches_match_librosa(rich_signal):
    hop = 256
    starts = np.array([0, 88]) * hop / SR  # on the hop grid: the same frames as librosa's
    out = mel_patches(rich_signal, SR, starts, duration=SEG, n_mels=96, hop_length=hop, fmax=8000)
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(y=rich_signal, sr=SR, n_fft=2048, hop_length=hop,
                                       n_mels=96, fmax=8000, pad_mode="constant"),
        ref=1.0, amin=1e-10, top_db=None,
    )
    for patch, t0 in zip(out, starts):
        j = int(round(t0 * SR / hop))
        np.testing.assert_allclose(patch, ref[:, j : j + patch.shape[1]], atol=2e-3)


def test_mel_patches_may_start_before_zero():
    y = tone(seconds=1.0)
    out = mel_patches(y, SR, [-0.32, 0.0], duration=SEG, n_mels=32, hop_length=504)
    # 0.32 s = 14 hops of silence, then the same columns as the patch starting at 0 s
    np.testing.assert_allclose(out[0, :, :12], -100.0)
    np.testing.assert_allclose(out[0, :, 14:], out[1, :, : 28 - 14], atol=1e-4)


def test_mel_patches_errors():
    y = tone(seconds=1.0)
    with pytest.raises(ParameterError, match="fmax"):
        mel_patches(y, SR, [0.0], duration=SEG, fmax=20000)
    with pytest.raises(ParameterError, match="duration"):
        mel_patches(y, SR, [0.0], duration=0)
    with pytest.raises(ParameterError, match="seconds"):
        mel_patches(y, SR, [[0.0]], duration=SEG)


# ------------------------------------------------------------------- real recordings and CLI


@pytest.fixture(scope="module")
def silent_video(tmp_path_factory):
    """A 2 s, 25 fps video without an audio stream (tiny, written with PyAV)."""
    av = pytest.importorskip("av")
    path = tmp_path_factory.mktemp("media") / "silent.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(50):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 5 * i, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_load_performance_audio_from_mp3_in_avi(shared_data):
    from musicperf.features.audio import load_performance_audio

    for name, sr in (("pianist.avi", 22050), ("dancer.avi", 48000)):
        pa = load_performance_audio(shared_data / "video" / name, sr=sr, duration=4.0)
        assert pa.sr == sr and pa.y.dtype == np.float32 and pa.y.ndim == 1  # stereo -> mono
        assert len(pa.y) == 4 * sr
        assert 0.005 < np.sqrt(np.mean(pa.y**2)) < 0.5  # there is sound, in range
        assert np.abs(pa.y).max() <= 1.0


def test_video_without_audio_fails_cleanly(shared_data, silent_video):
    from musicperf.features.audio import load_performance_audio

    for path in (shared_data / "video" / "decord_video_90.mov", silent_video):
        with pytest.raises(DecodeError, match=r"has no audio stream; train with modalities: \[video\] or give --audio FILE"):
            load_performance_audio(path)


def test_separate_recording_with_offset(shared_data, silent_video):
    from musicperf.features.audio import load_performance_audio
    from musicperf.io.audio import load_audio

    wav = shared_data / "eaf" / "phonfieldwork_test.wav"
    alone, _ = load_audio(wav, sr=SR)
    pa = load_performance_audio(silent_video, audio=wav, offset=0.25, sr=SR, duration=1.5)
    lead = int(0.25 * SR)
    assert pa.source == wav and len(pa.y) == int(1.5 * SR)
    assert np.all(pa.y[:lead] == 0)  # the recorder started 0.25 s after the camera
    n = len(alone)
    np.testing.assert_allclose(pa.y[lead : lead + n], alone[: int(1.5 * SR) - lead], atol=1e-6)
    assert np.all(pa.y[lead + n :] == 0)  # padded to the requested duration


def _cli(argv, capsys):
    from musicperf.cli import main

    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_features_audio_wav_json(shared_data, tmp_path, capsys):
    import json

    from musicperf.features.audio import load_performance_audio

    wav = shared_data / "eaf" / "phonfieldwork_test.wav"  # 0.65 s: one 0.64 s sample at 25 fps
    out = tmp_path / "wav.npy"
    rc, stdout, err = _cli(["features", "audio", str(wav), "-o", str(out), "--json"], capsys)
    assert rc == 0, err
    info = json.loads(stdout)
    arr = np.load(out)
    assert arr.shape == tuple(info["shape"]) == (1, 28, 108)
    assert info["feature_names"][:2] == ["mfcc_00", "mfcc_01"] and len(info["feature_names"]) == 108
    assert info["segment_starts_s"] == [0.0] and info["sr"] == 22050
    pa = load_performance_audio(wav, sr=22050)
    np.testing.assert_allclose(arr, timbral_features(pa.y, 22050, segment_starts=[0.0]), rtol=1e-5, atol=1e-4)
    # An existing output is not replaced without --overwrite.
    rc, _, err = _cli(["features", "audio", str(wav), "-o", str(out)], capsys)
    assert rc == 2 and "--overwrite" in err


def test_cli_features_audio_video_segments_follow_frames(shared_data, tmp_path, capsys):
    from musicperf.io.video import probe

    video = shared_data / "video" / "mmaction2_tests_test.avi"  # 25 fps, MP3 stereo
    out = tmp_path / "v.npy"
    rc, stdout, err = _cli(["features", "audio", str(video), "-o", str(out), "--sr", "48000"], capsys)
    assert rc == 0, err
    assert np.load(out).shape == (probe(video).n_frames // 16, 28, 108)
    rc, _, err = _cli(["features", "audio", str(video), "-o", str(tmp_path / "m.npy"),
                       "--kind", "mel", "--n-mels", "40", "--clip-frames", "8"], capsys)
    assert rc == 0, err
    mel = np.load(tmp_path / "m.npy")
    assert mel.shape == (probe(video).n_frames // 8, 40, int(np.ceil(8 / 25 * 22050 / 512)))


def test_cli_features_audio_without_audio(silent_video, shared_data, tmp_path, capsys):
    rc, _, err = _cli(["features", "audio", str(silent_video), "-o", str(tmp_path / "x.npy")], capsys)
    assert rc == 2
    assert "has no audio stream; train with modalities: [video] or give --audio FILE" in err
    assert "Traceback" not in err and not (tmp_path / "x.npy").exists()
    wav = shared_data / "eaf" / "phonfieldwork_test.wav"
    rc, stdout, err = _cli(["features", "audio", str(silent_video), "--audio", str(wav), "--offset", "0.5",
                            "-o", str(tmp_path / "y.npy")], capsys)
    assert rc == 0, err
    arr = np.load(tmp_path / "y.npy")
    assert arr.shape == (3, 28, 108)  # 50 frames -> 3 samples of 16
    # The recording starts at 0.5 s = 11025 samples: windows centred at k * 504 with their
    # right edge (+1024) before that are silent (k <= 19); the last ones hear it.
    assert np.all(arr[0, :20, COL["rms"]] == 0) and np.all(arr[0, 21:, COL["rms"]] > 0)


def test_mel_filterbank_triangles_cover_the_band_from_fmin():
    from musicperf.features.audio import mel_filterbank

    fb = mel_filterbank(16000, 1024, 40, fmin=30.0)
    assert fb.shape == (40, 513) and fb.min() >= 0 and fb.max() <= 1
    freqs = np.linspace(0, 8000, 513)
    assert not fb[:, freqs < 30].any()                 # nothing below fmin
    assert (fb.max(axis=1) > 0.5).all()                 # every filter has a peak
    peaks = freqs[fb.argmax(axis=1)]
    assert np.all(np.diff(peaks) >= 0)                  # centres rise with the band index
