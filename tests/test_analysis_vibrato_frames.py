"""Frame-wise vibrato detection (analysis.vibrato_frames): synthetic pitch curves with known rate
and extent, a synthetic tone through the pitch tracker, one real recording, the command's
--json/--frames, a video without sound, frame-size cap and implausible frame rates."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest

from musicperf.analysis import vibrato as V
from musicperf.analysis import vibrato_frames as VF
from musicperf.errors import ParameterError

HOP = 0.01


def _curve(rng, pieces):
    """Cents at 100 Hz from ``(seconds, base_cents, rate_hz, extent_ptp_cents)`` pieces (rate 0:
    steady), with 2 cents of pitch jitter and a 0.1 s unvoiced gap between pieces."""
    out = []
    for sec, base, rate, ext in pieces:
        t = np.arange(int(round(sec / HOP))) * HOP
        c = base + rng.normal(0, 2.0, t.size) + (ext / 2 * np.sin(2 * np.pi * rate * t + 0.7) if rate else 0)
        out += [c, np.full(10, np.nan)]
    c = np.concatenate(out)
    return np.arange(c.size) * HOP, c


def test_areas_rate_and_extent_of_synthetic_vibrato(rng):
    # steady 1.2 s | vibrato 6.0 Hz 40 cents 1.6 s | steady 1.0 s | vibrato 5.0 Hz 25 cents 1.4 s | glide-free steady
    t, c = _curve(rng, [(1.2, 6900, 0, 0), (1.6, 7100, 6.0, 40.0), (1.0, 7000, 0, 0), (1.4, 6700, 5.0, 25.0),
                        (1.0, 6800, 0, 0)])
    trk = VF.track_vibrato(t, c)
    areas = trk.areas()
    assert len(areas) == 2, [a.to_dict() for a in areas]
    truth = [(1.3, 2.9, 6.0, 40.0), (4.0, 5.4, 5.0, 25.0)]
    for a, (s, e, rate, ext) in zip(areas, truth):
        assert abs(a.start - s) < 0.2 and abs(a.end - e) < 0.2
        assert a.rate_hz == pytest.approx(rate, abs=0.15)
        assert a.extent_cents == pytest.approx(ext, rel=0.12)
        assert a.regularity > 0.8
    # the steady notes (jitter of a few cents) are not vibrato
    steady = (t < 1.2) | ((t > 3.1) & (t < 3.9)) | (t > 5.7)
    assert not trk.vibrato[steady].any()


@pytest.mark.parametrize("rate", [4.5, 7.0, 8.5])
def test_extent_is_unbiased_across_rates_on_a_rising_line(rate):
    t = np.arange(300) * HOP
    c = 6000 + 80 * t + 30 * np.sin(2 * np.pi * rate * t)  # 60 cents peak to peak over a slow glide
    trk = VF.track_vibrato(t, c)
    mid = slice(80, 220)
    assert np.median(trk.extent[mid]) == pytest.approx(60.0, rel=0.03)
    assert np.median(trk.rate[mid]) == pytest.approx(rate, abs=0.1)
    assert trk.vibrato[mid].all()


def test_small_or_irregular_modulation_and_short_bursts_are_not_vibrato(rng):
    t = np.arange(400) * HOP
    # random walks (slow, irregular pitch drift of ~7 cents in 0.5 s): one in a few dozen 0.3 s
    # stretches looks like a cycle of a 7-cent vibrato, no more
    flagged = [VF.track_vibrato(t, 6000 + np.cumsum(rng.normal(0, 1.0, t.size))).vibrato.mean() for _ in range(10)]
    assert np.mean(flagged) < 0.02
    tiny = 6000 + 1.5 * np.sin(2 * np.pi * 6 * t)  # 3 cents peak to peak
    assert not VF.track_vibrato(t, tiny).vibrato.any()
    burst = np.where((t > 1.0) & (t < 1.2), 6000 + 30 * np.sin(2 * np.pi * 6 * t), 6000.0)
    assert not VF.track_vibrato(t, burst).vibrato.any()  # 0.2 s < min_duration


def test_track_errors_and_empty_input():
    with pytest.raises(ParameterError, match="same length"):
        VF.track_vibrato(np.arange(5) * HOP, np.zeros(6))
    with pytest.raises(ParameterError, match="50 frames a second"):
        VF.track_vibrato(np.arange(50) * 0.04, np.zeros(50))
    trk = VF.track_vibrato(np.arange(100) * HOP, np.full(100, np.nan))
    assert not trk.vibrato.any() and trk.areas() == []


def test_frame_labels_and_frames_csv(tmp_path, rng):
    lab = VF.frame_labels([(0.5, 1.0), (1.5, 1.52)], 2.0)
    assert lab.shape == (200,) and lab.sum() == 52 and lab[50] and not lab[100]
    t, c = _curve(rng, [(2.0, 7000, 6.0, 40.0)])
    trk = VF.track_vibrato(t, c)
    out = tmp_path / "f.csv"
    VF.write_frames_csv(trk, out)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(t)
    assert list(rows[0]) == ["time_s", "f0_cents", "voiced", "rate_hz", "extent_cents", "regularity", "vibrato"]
    mid = rows[100]
    assert mid["vibrato"] == "1" and abs(float(mid["rate_hz"]) - 6.0) < 0.2
    assert rows[-1]["voiced"] == "0" and rows[-1]["rate_hz"] == ""


def _fm_tone(seconds=4.0, sr=22050, vib=(1.0, 2.6), rate=5.5, extent=50.0):
    """A harmonic tone at 440 Hz with a sinusoidal vibrato (``extent`` cents peak to peak) in ``vib``."""
    t = np.arange(int(seconds * sr)) / sr
    on = (t >= vib[0]) & (t < vib[1])
    cents = np.where(on, extent / 2 * np.sin(2 * np.pi * rate * (t - vib[0])), 0.0)
    f = 440.0 * 2 ** (cents / 1200)
    ph = 2 * np.pi * np.cumsum(f) / sr
    return (0.3 * np.sin(ph) + 0.15 * np.sin(2 * ph) + 0.08 * np.sin(3 * ph)).astype(np.float32), sr


def test_command_json_areas_and_frames_on_a_synthetic_tone(tmp_path, capsys):
    import soundfile as sf

    from musicperf.cli import main

    y, sr = _fm_tone()
    wav = tmp_path / "tone.wav"
    sf.write(wav, y, sr)
    frames = tmp_path / "frames.csv"
    assert main(["vibrato", str(wav), "--json", "--frames", str(frames)]) == 0
    out = json.loads(capsys.readouterr().out.split("wrote")[0])
    assert len(out["areas"]) == 1, out["areas"]
    a = out["areas"][0]
    assert abs(a["start"] - 1.0) < 0.2 and abs(a["end"] - 2.6) < 0.2
    assert a["rate_hz"] == pytest.approx(5.5, abs=0.15)
    assert a["extent_cents"] == pytest.approx(50.0, rel=0.12)
    assert out["frames"]["hop_s"] <= 0.01 and out["agreement"] is None
    assert [s["method"] for s in out["segments"]] == ["audio"]
    rows = list(csv.DictReader(frames.open()))
    assert len(rows) == out["frames"]["n"]


def test_real_recording_beats_always_on(shared_data):
    wav = shared_data / "vibrato" / "Flute_Bach_Pahud.wav"
    if not wav.is_file():
        pytest.skip(f"{wav} not found")
    ann = [tuple(float(x) for x in line.split(",")[:3])
           for line in (wav.with_name("Flute_Bach_Pahud-Annotation.csv")).read_text().splitlines() if line.strip()]
    res = V.analyze_media(wav)
    dur = float(res.pitch.times[-1])
    truth = VF.frame_labels([(s, s + d) for s, _hz, d in ann], dur)
    pred = VF.frame_labels([(a.start, a.end) for a in res.areas], dur)
    tp = (truth & pred).sum()
    f1 = 2 * tp / (truth.sum() + pred.sum())
    share = truth.mean()
    assert f1 > 0.7 and f1 > 2 * share / (1 + share) + 0.1  # measured 0.78 against 0.60
    for a in res.areas:
        assert 4.0 <= a.rate_hz <= 9.0 and 6.0 <= a.extent_cents < 100


def _video(path, n, size=(48, 64), fps=25, audio=None):
    from _media_helpers import write_video

    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (n,) + size + (3,), dtype=np.uint8)
    return write_video(path, frames, fps=fps, audio=audio)


def test_video_without_sound_is_a_one_line_error(tmp_path, capsys):
    from musicperf.cli import main

    path = _video(tmp_path / "silent.mov", 5)
    assert main(["vibrato", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no audio stream" in err and len(err.splitlines()) == 1


def test_implausible_frame_rate_skips_the_motion(tmp_path, caplog):
    y, sr = _fm_tone(seconds=3.0, sr=48000)
    path = _video(tmp_path / "slides.mov", 3, fps=2000, audio=y[None, :])
    with caplog.at_level(logging.WARNING):
        res = V.analyze_media(path, hand="search")
    assert res.curve is None and res.region is None
    assert "no motion analysis" in caplog.text
    assert len(res.areas) == 1 and res.areas[0].rate_hz == pytest.approx(5.5, abs=0.2)


def test_large_frames_are_shrunk_and_the_region_reported_in_video_pixels(tmp_path, monkeypatch, caplog):
    from musicperf.analysis.motion import Region

    y, sr = _fm_tone(seconds=2.0, sr=48000)
    path = _video(tmp_path / "big.mov", 50, size=(96, 128), audio=y[None, :])
    monkeypatch.setattr(V, "MAX_FRAME_SIDE", 64)
    seen = []
    real = V.displacement_curve
    monkeypatch.setattr(V, "displacement_curve", lambda u, fps, **k: seen.append(u.shape) or real(u, fps, **k))
    with caplog.at_level(logging.WARNING):
        res = V.analyze_media(path, hand=Region(40, 20, 32, 32), track=False)
    assert "analysing its frames at 64x48" in caplog.text
    assert res.scale == pytest.approx(0.5)
    assert (res.region.x, res.region.y, res.region.w, res.region.h) == pytest.approx((40, 20, 32, 32))
    assert res.boxes[0] == pytest.approx([40, 20, 72, 52])
    assert seen and res.curve is not None and res.agreement() is not None


def _bench():
    """benchmarks/bench_vibrato_real.py as a module (its LOO helpers are what docs/vibrato.md's
    leave-one-out tables rest on)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_vibrato_real.py"
    spec = importlib.util.spec_from_file_location("bench_vibrato_real", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_leave_one_out_helpers(rng):
    b = _bench()
    # configurations x recordings: each recording gets the configuration best on the *other*
    # recordings, never judged on itself
    F = np.array([[0.9, 0.9, 0.1], [0.5, 0.5, 0.95], [0.1, 0.2, 0.3]])
    held, best = b._held_out(F)
    assert best.tolist() == [1, 1, 0] and np.allclose(held, [0.5, 0.5, 0.1])
    F2 = np.array([[0.9, 0.1, 0.1], [0.2, 0.8, 0.8]])
    held, best = b._held_out(F2)
    assert best.tolist() == [1, 0, 0] and np.allclose(held, [0.2, 0.1, 0.1])
    # the numpy logistic regression separates a separable toy set, with per-sample weights
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] - 0.5 * X[:, 2] > 0).astype(float)
    mu, sd, coef, b0 = b.fit_logistic(X, y, np.ones(len(y)))
    p = 1 / (1 + np.exp(-(((X - mu) / sd) @ coef + b0)))
    assert ((p > 0.5) == (y > 0)).mean() > 0.95 and coef[0] > 0 > coef[2] and abs(coef[1]) < coef[0] / 3


def test_frame_features_of_the_learned_classifier(rng):
    b = _bench()
    t, c = _curve(rng, [(1.5, 6900, 0, 0), (1.5, 7100, 5.5, 30.0)])
    X, names = b.frame_features(t, c)
    assert X.shape == (len(t), len(names)) == (len(t), 25) and np.isfinite(X).all()
    reg = X[:, names.index("regularity_0.5_40")]
    assert reg[(t > 1.9) & (t < 2.7)].mean() > 0.7 > reg[(t > 0.3) & (t < 1.2)].mean()


def test_detect_vibrato_the_shipped_ensemble_on_synthetic_curves(rng):
    ens = VF.ensemble_settings()
    assert len(ens["configs"]) == 40 and ens["vote"] == 0.5
    assert {c["window"] for c in ens["configs"]} <= {0.4, 0.5, 0.6}
    t, c = _curve(rng, [(1.2, 6900, 0, 0), (1.6, 7100, 6.0, 40.0), (1.0, 7000, 0, 0), (1.4, 6700, 5.0, 25.0),
                        (1.0, 6800, 0, 0)])
    trk = VF.detect_vibrato(t, c)
    areas = trk.areas()
    assert len(areas) == 2, [a.to_dict() for a in areas]
    for a, (s, e, rate, ext) in zip(areas, [(1.3, 2.9, 6.0, 40.0), (4.0, 5.4, 5.0, 25.0)]):
        assert abs(a.start - s) < 0.25 and abs(a.end - e) < 0.25
        assert a.rate_hz == pytest.approx(rate, abs=0.15) and a.extent_cents == pytest.approx(ext, rel=0.12)
    assert not trk.vibrato[(t < 1.2) | ((t > 3.1) & (t < 3.9)) | (t > 5.7)].any()
    # drift, a 3-cent wobble and a 0.2 s burst are not vibrato for the ensemble either
    tt = np.arange(400) * HOP
    drift = [VF.detect_vibrato(tt, 6000 + np.cumsum(rng.normal(0, 1.0, tt.size))).vibrato.mean() for _ in range(5)]
    assert np.mean(drift) < 0.03
    assert not VF.detect_vibrato(tt, 6000 + 1.5 * np.sin(2 * np.pi * 6 * tt)).vibrato.any()
    burst = np.where((tt > 1.0) & (tt < 1.2), 6000 + 30 * np.sin(2 * np.pi * 6 * tt), 6000.0)
    assert not VF.detect_vibrato(tt, burst).vibrato.any()


def test_detect_vibrato_vote_semantics_and_errors(rng):
    t, c = _curve(rng, [(1.0, 6900, 0, 0), (1.5, 7100, 5.5, 12.0), (1.0, 7000, 0, 0)])
    loose = dict(window=0.5, min_extent=4.0, min_regularity=0.6, grow_regularity=0.4, smooth=0.2)
    strict = dict(window=0.6, min_extent=30.0, min_regularity=0.8, grow_regularity=None, smooth=0.4)
    # one setting: exactly track_vibrato with it
    one = VF.detect_vibrato(t, c, configs=[loose], vote=0.5)
    assert np.array_equal(one.vibrato, VF.track_vibrato(t, c, **loose).vibrato) and one.vibrato.any()
    # a 12-cent vibrato: the loose setting finds it, the strict one (30 cents) does not
    assert not VF.track_vibrato(t, c, **strict).vibrato.any()
    assert np.array_equal(VF.detect_vibrato(t, c, configs=[loose, strict], vote=0.5).vibrato, one.vibrato)
    assert not VF.detect_vibrato(t, c, configs=[loose, strict], vote=1.0).vibrato.any()
    with pytest.raises(ParameterError, match="at least one"):
        VF.detect_vibrato(t, c, configs=[], vote=0.5)
    with pytest.raises(ParameterError, match="same length"):
        VF.detect_vibrato(np.arange(5) * HOP, np.zeros(6))
    assert not VF.detect_vibrato(np.arange(1) * HOP, np.zeros(1)).vibrato.any()
