"""Vibrato analysis (002 Section V-B): displacement curve, autocorrelation rate, Equation 1, SVM,
the per-note pipeline on a synthetic violinist, pitch and note readers, the command."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from musicperf.analysis import vibrato as V
from musicperf.analysis.motion import Region, keypoint_region, keypoint_velocity, parse_region, region_motion
from musicperf.analysis.pitch import NoteEvent, estimate_pitch, read_midi, read_notes, segment_notes
from musicperf.errors import AnnotationError, ParameterError


def _hand_motion(rng, fps=25.0, seconds=6.0, rate=6.0, angle=30.0):
    """u(t) of a hand oscillating at ``rate`` Hz along ``angle`` degrees plus slow sway and noise."""
    t = np.arange(int(seconds * fps)) / fps
    d = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    pos = 2.0 * np.sin(2 * np.pi * rate * t)[:, None] * d + np.stack([8 * np.sin(0.4 * t), 5 * t / seconds], 1)
    u = np.diff(pos, axis=0, prepend=pos[:1]) + rng.normal(0, 0.05, pos.shape)
    return t, u, d


def test_displacement_curve_recovers_direction_and_rate(rng):
    t, u, d = _hand_motion(rng, rate=6.0, angle=30.0)
    c = V.displacement_curve(u, 25.0)
    cosang = abs(float(c.direction @ d))
    assert cosang > np.cos(np.radians(3))
    rate, strength = V.autocorrelation_rate(c.displacement[25:125], 25.0)
    assert abs(rate - 6.0) < 0.1
    assert strength > 0.8


@pytest.mark.parametrize("rate", [5.2, 6.7, 7.9, 9.5])
def test_autocorrelation_rate_is_sub_frame_accurate(rate):
    x = np.sin(2 * np.pi * rate * np.arange(40) / 25.0 + 0.3)
    est, strength = V.autocorrelation_rate(x, 25.0)
    assert abs(est - rate) < 0.1
    assert strength > 0.9


def test_autocorrelation_of_noise_is_weak(rng):
    strengths = [V.autocorrelation_rate(np.cumsum(rng.normal(size=40)) * 0 + rng.normal(size=40), 25.0)[1]
                 for _ in range(20)]
    assert np.nanmedian(strengths) < 0.5


def test_short_note_gives_nan():
    assert np.isnan(V.autocorrelation_rate(np.ones(3), 25.0)[0])


@pytest.mark.parametrize("sign", [1, -1])
def test_vibrato_extent_equation_1(rng, sign):
    t = np.arange(200) * 0.01
    cents = 60.0  # peak to peak
    F = 69 + (cents / 2 * np.sin(2 * np.pi * 6 * t)) / 100 + rng.normal(0, 0.03, t.size)
    X = sign * 3.0 * np.sin(2 * np.pi * 6 * t) + 0.5 * t  # drift from integration
    F[::17] = np.nan  # unvoiced samples are ignored
    assert V.vibrato_extent(F, X, fs=100.0, rate=6.0) == pytest.approx(cents, rel=0.05)
    assert V.vibrato_extent(F, X) == pytest.approx(cents, rel=0.15)  # linear detrend: a few % wider


def test_vibrato_extent_rejects_shapes():
    with pytest.raises(ParameterError, match="same shape"):
        V.vibrato_extent(np.zeros(5), np.zeros(6))


def test_linear_svm_fits_and_round_trips(rng):
    X = np.concatenate([rng.normal(0, 1, (40, 4)) + 2, rng.normal(0, 1, (40, 4)) - 2])
    y = np.r_[np.ones(40), np.zeros(40)]
    svm = V.LinearSVM.fit(X, y)
    assert np.mean(svm.predict(X) == (y > 0)) > 0.95
    again = V.LinearSVM.from_dict(json.loads(json.dumps(svm.to_dict())))
    assert np.allclose(again.decision(X), svm.decision(X))
    with pytest.raises(ParameterError, match="both classes"):
        V.LinearSVM.fit(X, np.ones(80))


def test_default_svm_separates_features_of_clear_cases(rng):
    t, u, _ = _hand_motion(rng, rate=6.5)
    c = V.displacement_curve(u, 25.0)
    vib = V.motion_features(c.displacement[25:100], c.velocity[25:100], 25.0, v_scale=float(np.std(c.velocity)))
    still = rng.normal(0, 0.05, 75)
    non = V.motion_features(np.cumsum(still), still, 25.0, v_scale=float(np.std(c.velocity)))
    assert V.DEFAULT_SVM.decision(vib)[0] > 0 > V.DEFAULT_SVM.decision(non)[0]


@pytest.fixture(scope="module")
def violin():
    from musicperf.synth import load_truth, render

    r = render(seconds=5, seed=3, instrument="violin", size=(320, 240), schedule={"Vibrato": [(1.0, 2.5), (3.2, 4.5)]})
    return r, load_truth(r.truth)["performers"][0]


@pytest.fixture(scope="module")
def violin_pitch(violin):
    import librosa

    r, _ = violin
    y = librosa.resample(r.audio, orig_sr=r.sr, target_sr=22050)
    return y, estimate_pitch(y, 22050)


def _notes(p):
    return [NoteEvent(n["onset"], n["offset"], n["midi"]) for n in p["notes"]]


def test_vibrato_notes_from_keypoints_of_synthetic_violinist(violin, violin_pitch):
    r, p = violin
    curve = V.displacement_curve(keypoint_velocity(p["keypoints"]["left_hand"]["full"], r.fps), r.fps)
    # key points have no flow noise: true vibrato scores ~0.95, the hand's shift to the next
    # note's position can reach 0.6
    res = V.analyze_notes(_notes(p), curve=curve, pitch=violin_pitch[1], threshold=0.8)
    truth = {round(v["start"], 2): v for v in p["vibrato"]}
    found = [n for n in res if n.vibrato]
    assert sorted(round(n.onset, 2) for n in found) == sorted(truth)
    for n in found:
        tv = truth[round(n.onset, 2)]
        assert abs(n.rate_hz - tv["rate_hz"]) < 0.3
        assert n.extent_cents == pytest.approx(tv["extent_cents"], rel=0.35)


def test_vibrato_from_optical_flow_in_tracked_region(violin):
    r, p = violin
    reg = keypoint_region(p["keypoints"]["left_hand"]["full"], margin=0.0)
    m = region_motion(r.frames(), reg, fps=r.fps, track=True, winsize=5)
    assert m.velocity.shape == (r.n_frames, 1, 2)
    curve = V.displacement_curve(m.velocity[:, 0], r.fps)
    res = {round(n.onset, 2): n for n in V.analyze_notes(_notes(p), curve=curve, threshold=0.5)}
    for tv in p["vibrato"]:
        n = res[round(tv["start"], 2)]
        assert n.vibrato
        assert abs(n.rate_hz - tv["rate_hz"]) < 0.3


def test_audio_only_vibrato_and_note_segmentation(violin, violin_pitch):
    r, p = violin
    y, pitch = violin_pitch
    notes = segment_notes(pitch, y, 22050)
    # every true note onset has a detected note within 80 ms
    det = np.array([n.onset for n in notes])
    for n in p["notes"]:
        if n["offset"] - n["onset"] > 0.3:
            assert np.min(np.abs(det - n["onset"])) < 0.08
    res = V.analyze_notes(_notes(p), pitch=pitch, method="audio")
    for tv in p["vibrato"]:
        n = next(x for x in res if abs(x.onset - tv["start"]) < 0.01)
        assert n.vibrato and abs(n.rate_hz - tv["rate_hz"]) < 0.3
        assert n.extent_cents == pytest.approx(tv["extent_cents"], rel=0.3)
    non = [x for x in res if not any(abs(x.onset - tv["start"]) < 0.01 for tv in p["vibrato"])]
    assert not any(x.vibrato for x in non)


def test_analyze_notes_errors():
    with pytest.raises(ParameterError, match="displacement curve or a pitch"):
        V.analyze_notes([])
    with pytest.raises(ParameterError, match="method"):
        V.analyze_notes([], method="fft")


def test_parse_region():
    assert parse_region("1,2,30,40") == Region(1, 2, 30, 40)
    with pytest.raises(ParameterError, match="X,Y,W,H"):
        parse_region("1,2,3")


def _midi_bytes():
    # format 0, 1 track, 480 ticks per quarter; tempo 0.5 s per quarter; C4 at 0-1 s, E4 at 1-1.5 s
    def vlq(n):
        out = [n & 0x7F]
        n >>= 7
        while n:
            out.insert(0, (n & 0x7F) | 0x80)
            n >>= 7
        return bytes(out)

    ev = (vlq(0) + b"\xff\x51\x03\x07\xa1\x20" + vlq(0) + b"\x90\x3c\x64" + vlq(960) + b"\x80\x3c\x00"
          + vlq(0) + b"\x90\x40\x64" + vlq(480) + b"\x40\x00" + vlq(0) + b"\xff\x2f\x00")  # running status
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(ev)) + ev


def test_read_midi_and_notes_files(tmp_path):
    mid = tmp_path / "a.mid"
    mid.write_bytes(_midi_bytes())
    notes = read_midi(mid)
    assert [(n.onset, n.offset, n.midi) for n in notes] == [(0.0, 1.0, 60.0), (1.0, 1.5, 64.0)]
    csv = tmp_path / "a.csv"
    csv.write_text("onset,offset,midi\n0.5,1.0,60\n0.1,0.4,62\n")
    assert [n.onset for n in read_notes(csv)] == [0.1, 0.5]
    bad = tmp_path / "b.csv"
    bad.write_text("1.0,0.5\n")
    with pytest.raises(AnnotationError, match="offset <= onset"):
        read_notes(bad)
    with pytest.raises(AnnotationError, match="not a Standard MIDI"):
        read_midi(csv)


def test_vibrato_command_on_audio_file(tmp_path, violin, capsys):
    import soundfile as sf

    from musicperf.cli import main

    r, p = violin
    wav = tmp_path / "violin.wav"
    sf.write(wav, r.audio, r.sr)
    png = tmp_path / "v.png"
    assert main(["vibrato", str(wav), "--json", "--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out.split("wrote")[0])
    segs = [s for s in out["segments"] if s["method"] == "audio"]
    assert segs, out
    for tv in p["vibrato"]:
        s = min(segs, key=lambda s: abs(s["start"] - tv["start"]))
        assert abs(s["rate_hz"] - tv["rate_hz"]) < 0.3
    assert png.stat().st_size > 10_000
    assert main(["vibrato", str(tmp_path / "missing.wav")]) == 2


def test_find_vibrato_region_finds_the_vibrating_hand(violin):
    r, p = violin
    reg = V.find_vibrato_region(list(r.frames(0, 75)), fps=r.fps)  # 3 s: one vibrato note
    hand = np.nanmedian(p["keypoints"]["left_hand"]["full"].reshape(-1, 2), axis=0)
    assert reg.x <= hand[0] <= reg.x + reg.w and reg.y <= hand[1] <= reg.y + reg.h


@pytest.mark.parametrize("rate", [5.5, 7.5])
def test_short_sway_window_keeps_a_hand_shift_out_of_the_next_note(rng, rate):
    # the hand moves 20 px to the next note's position, then vibrates there for 1.4 s: the sway
    # subtraction turns the step into a ramp as long as its window, which leaks into the note
    fps = 25.0
    t = np.arange(100) / fps
    x = np.where(t >= 1.0, 20.0, 0.0) + np.where((t >= 1.0) & (t < 2.4), 1.5 * np.sin(2 * np.pi * rate * (t - 1.0)), 0)
    pos = np.stack([x, 0.3 * x], 1)
    u = np.diff(pos, axis=0, prepend=pos[:1]) + rng.normal(0, 0.05, pos.shape)
    peaks = {}
    for sway in (V.SWAY_WINDOW, 0.4):
        c = V.displacement_curve(u, fps, sway_window=sway)
        sl = V._note_slice(c.times, 1.0, 2.4, 0.05)
        peaks[sway] = V.autocorrelation_rate(c.displacement[sl], fps)[1]
    assert peaks[V.SWAY_WINDOW] > 0.9 > 0.75 > peaks[0.4]


def test_refine_rate_beats_the_autocorrelation_lag_on_short_noisy_notes(rng):
    err_lag, err_fit = [], []
    for _ in range(40):
        rate = rng.uniform(5, 8)
        n = int(rng.uniform(25, 38))  # 1-1.5 s notes at 25 fps
        x = (np.sin(2 * np.pi * rate * np.arange(n) / 25.0 + rng.uniform(0, 6)) + rng.normal(0, 0.4, n)
             + np.linspace(0, rng.normal(0, 1), n))
        r, _ = V.autocorrelation_rate(x, 25.0)
        err_lag.append(abs(r - rate))
        err_fit.append(abs(V.refine_rate(V._detrend(x), 25.0, r) - rate))
    assert np.mean(err_fit) < 0.6 * np.mean(err_lag)
    assert np.max(err_fit) < 0.15
    assert np.isnan(V.refine_rate(np.zeros(30), 25.0, float("nan")))
