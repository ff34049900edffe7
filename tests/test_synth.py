"""Tests of the synthetic performer: schedule, render vs truth, audio, files, determinism."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from musicperf.errors import AnnotationError, ParameterError
from musicperf.synth import GESTURES, INSTRUMENTS, frame_labels, load_truth, render, synthesize
from musicperf.synth.figure import FACE_INDEX
from musicperf.synth.gestures import EXCLUSIVE, gesture_stats, schedule_gestures

SMALL = (160, 120)
QUIET = dict(camera_shake=0.0, noise=0.0)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# --------------------------------------------------------------------------------- schedule


def test_gesture_stats_follow_tables_2_and_3():
    st = gesture_stats()
    assert set(st) == set(GESTURES)
    # Frowning (203 occurrences) is the most frequent, Upbeat (12) the rarest observed
    assert max(st, key=lambda g: st[g].rate) == "Frowning"
    assert st["Upbeat in head movement"].rate < st["Nodding"].rate / 10
    # Nodding: 4444 frames / 188 occurrences / 25 fps = 0.95 s
    assert st["Nodding"].mean_duration == pytest.approx(4444 / 188 / 25, rel=1e-6)
    assert st["Sympathetic body movement"].rate > 0


def test_schedule_ensure_all_and_constraints():
    sched = schedule_gestures(120.0, np.random.default_rng(1), ensure_all=True)
    assert all(sched[g] for g in GESTURES), [g for g in GESTURES if not sched[g]]
    for g, ivs in sched.items():
        for s, e in ivs:
            assert 0 <= s < e <= 120 and 0.3 - 1e-6 <= e - s <= 6.0 + 1e-6
        for a, b in zip(ivs[:-1], ivs[1:]):
            assert a[1] <= b[0], f"{g} overlaps itself"
    companions = {"Eyes closed", "Lifting head"}
    for ex in EXCLUSIVE:
        for iv in sched[ex]:
            for g in GESTURES:
                if g == ex:
                    continue
                for iv2 in sched[g]:
                    if _overlap(iv, iv2):
                        assert ex == "Freeze" and g in companions, f"{ex} {iv} overlaps {g} {iv2}"
                        assert iv2[0] < iv[0] and iv2[1] > iv[1], "a companion must cover the freeze"


def test_schedule_class_imbalance_resembles_table_2():
    from musicperf.synth.gestures import _TABLE2_FRAMES

    seconds = 2206.0  # the four videos of 001
    sched = schedule_gestures(seconds, np.random.default_rng(0))
    counts = {g: len(v) for g, v in sched.items()}
    assert counts["Frowning"] > counts["Expressive head movement"] > counts["Upbeat in head movement"]
    assert counts["Nodding"] > 3 * counts["Physical energy"]
    paper_total = 12013 + 10587 + 16557 + 15723
    for g in GESTURES:
        share = sum(e - s for s, e in sched[g]) / seconds
        assert abs(share - _TABLE2_FRAMES[g] / paper_total) < 0.05, g


def test_drums_have_no_vibrato():
    sched = schedule_gestures(300.0, np.random.default_rng(0), instrument="drums", ensure_all=True)
    assert not sched["Vibrato"] and not sched["Repositioning guitar"]
    with pytest.raises(ParameterError, match="do not apply"):
        render(seconds=1, seed=0, instrument="drums", gestures="Vibrato")


# --------------------------------------------------------------------------------- render vs truth


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_keypoints_are_drawn_where_truth_says(instrument):
    r = render(seconds=1.0, seed=5, size=(320, 240), instrument=instrument, **QUIET)
    truth = load_truth(r.truth)
    kp = truth["performers"][0]["keypoints"]
    for i in (0, 12, 24):
        fr = r.frame(i).astype(int)
        bg = r.background(i).astype(int)
        pts = list(kp["pose"]["full"][i, [0, 2, 5, 11, 12, 13, 14, 15, 16]])
        pts += list(kp["face"]["full"][i, [1, 33, 263, 61, 291, 152]])
        pts += list(kp["right_hand"]["full"][i, [0, 9]]) + list(kp["left_hand"]["full"][i, [0, 9]])
        for x, y in pts:
            assert np.isfinite(x)
            diff = np.abs(fr[int(y), int(x)] - bg[int(y), int(x)]).max()
            assert diff > 12, f"frame {i}: nothing drawn at key point ({x:.1f}, {y:.1f})"
        # a corner far from the figure is untouched
        assert np.abs(fr[2, 2] - bg[2, 2]).max() == 0


def test_face_layout_and_nulls():
    r = render(seconds=0.5, seed=0, size=SMALL, **QUIET)
    truth = load_truth(r.truth)
    face = truth["performers"][0]["keypoints"]["face"]["full"]
    assert face.shape == (12, 468, 2)
    given = np.isfinite(face[0, :, 0])
    assert set(np.nonzero(given)[0]) == set(FACE_INDEX)
    pose = truth["performers"][0]["keypoints"]["pose"]["full"][0]
    # performer's left eye (2) and shoulder (11) appear on the image right of the right ones
    assert pose[2, 0] > pose[5, 0] and pose[11, 0] > pose[12, 0]
    assert face[0, 263, 0] > face[0, 33, 0]
    norm = truth["performers"][0]["keypoints"]["pose"]["full_normalized"][0]
    assert np.allclose(norm[0], pose[0] / SMALL)


def test_nodding_moves_the_head_and_pixels():
    sched = {"Nodding": [(1.0, 3.0)]}
    r = render(seconds=4.0, seed=2, size=SMALL, schedule=sched, **QUIET)
    truth = load_truth(r.truth)
    nose_y = truth["performers"][0]["keypoints"]["pose"]["full"][:, 0, 1]
    mouth_y = truth["performers"][0]["keypoints"]["face"]["full"][:, 13, 1]
    t = np.arange(r.n_frames) / r.fps
    nod, calm = (t > 1.2) & (t < 2.8), (t > 3.2)
    assert np.ptp(nose_y[nod]) > 3 * max(np.ptp(nose_y[calm]), 0.3)
    assert np.ptp(mouth_y[nod]) > 2.0
    # the rendered head region changes more while nodding
    x0, y0 = np.nanmin(truth["performers"][0]["keypoints"]["face"]["full"][:, :, 0]), np.nanmin(
        truth["performers"][0]["keypoints"]["face"]["full"][:, :, 1])
    box = (slice(int(y0) - 4, int(y0) + 22), slice(int(x0) - 4, int(x0) + 24))
    frames = np.stack([r.frame(i)[box].astype(float) for i in range(r.n_frames)])
    motion = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert motion[nod[1:]].mean() > 2 * motion[calm[1:]].mean()


def test_eyes_closed_hides_the_eye_whites():
    r = render(seconds=3.0, seed=4, size=(320, 240), schedule={"Eyes closed": [(1.0, 2.0)]}, **QUIET)
    truth = load_truth(r.truth)
    face = truth["performers"][0]["keypoints"]["face"]["full"]
    lid = np.abs(face[:, 159, 1] - face[:, 145, 1])  # right eye upper - lower lid
    assert lid[37] < 0.1 and lid[10] > 2.0

    def whites(i):
        x, y = (face[i, 33] + face[i, 133]) / 2
        patch = r.frame(i)[int(y) - 3:int(y) + 4, int(x) - 4:int(x) + 5].astype(int)
        neutral = patch.max(axis=2) - patch.min(axis=2) < 30
        return int(((patch.min(axis=2) > 170) & neutral).sum())

    assert whites(10) >= 2 and whites(37) == 0


def test_freeze_holds_pose_and_silences_audio():
    r = render(seconds=3.0, seed=7, size=SMALL, schedule={"Freeze": [(1.0, 2.0)]}, **QUIET)
    sr = r.sr
    seg = r.audio[int(1.0 * sr):int(2.0 * sr)]
    assert np.sqrt(np.mean(seg.astype(float) ** 2)) == 0.0
    assert np.sqrt(np.mean(r.audio[: sr].astype(float) ** 2)) > 1e-3  # plays before
    pf = r.truth["performers"][0]
    frozen = [i for i in range(r.n_frames) if 1.0 <= i / r.fps < 2.0]
    pix = np.asarray(pf["keypoints"]["pose"]["pixels"])
    assert np.ptp(pix[frozen], axis=0).max() == 0.0
    a, b = r.frame(frozen[0]), r.frame(frozen[-1])
    assert np.array_equal(a, b)
    assert not any(s < 2.0 and e > 1.0 for s, e in pf["play"])
    assert any(s <= 1.0 <= e for s, e in pf["non_play"])


def _inst_freq(y: np.ndarray, sr: int, f0: float) -> np.ndarray:
    """Instantaneous frequency (Hz) of the partial near ``f0``: band-pass, analytic signal."""
    from scipy.signal import butter, hilbert, sosfiltfilt

    sos = butter(4, [f0 * 0.8, f0 * 1.25], btype="band", fs=sr, output="sos")
    z = hilbert(sosfiltfilt(sos, y))
    return np.diff(np.unwrap(np.angle(z))) * sr / (2 * np.pi)


def _fit_rate(x: np.ndarray, fs: float, lo: float = 3.0, hi: float = 10.0) -> tuple[float, float]:
    """Rate (Hz) and peak-to-peak amplitude of the best-fitting sinusoid (grid + least squares)."""
    t = np.arange(x.size) / fs
    best = (0.0, 0.0, -1.0)
    for grid in (np.arange(lo, hi, 0.05), None):
        if grid is None:  # refine around the coarse optimum
            grid = np.arange(best[0] - 0.06, best[0] + 0.06, 0.001)
        for f in grid:
            A = np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t), np.ones_like(t), t], 1)
            coef, *_ = np.linalg.lstsq(A, x, rcond=None)
            r2 = coef[0] ** 2 + coef[1] ** 2
            if r2 > best[2]:
                best = (f, 2 * np.sqrt(r2), r2)
    return best[0], best[1]


@pytest.mark.parametrize("instrument", ["guitar", "violin"])
def test_vibrato_rate_in_audio_and_hand(instrument):
    r = render(seconds=4.0, seed=11, size=SMALL, instrument=instrument, schedule={"Vibrato": [(0.6, 3.4)]}, **QUIET)
    pf = r.truth["performers"][0]
    (vib,) = pf["vibrato"]
    from musicperf.synth.audio import midi_to_hz

    sr = r.sr
    s0, s1 = int((vib["start"] + 0.3) * sr), int((vib["end"] - 0.3) * sr)
    f = _inst_freq(r.audio.astype(float), sr, midi_to_hz(vib["midi"]))[s0:s1]
    cents = 1200 * np.log2(f / midi_to_hz(vib["midi"]))
    dec = 48
    cents = cents[: cents.size // dec * dec].reshape(-1, dec).mean(1)  # 1 kHz contour
    rate, p2p = _fit_rate(cents, sr / dec)
    assert abs(rate - vib["rate_hz"]) < 0.1, (rate, vib["rate_hz"])
    assert p2p == pytest.approx(vib["extent_cents"], rel=0.15)
    # the left wrist oscillates along the neck at the same rate
    wrist = np.asarray(pf["keypoints"]["pose"]["pixels"])[:, 15]
    t = np.arange(r.n_frames) / r.fps
    sel = (t > vib["start"] + 0.2) & (t < vib["end"] - 0.2)
    hand_rate, _ = _fit_rate(wrist[sel, 0] - wrist[sel, 0].mean(), r.fps)
    assert abs(hand_rate - vib["rate_hz"]) < 0.1


def test_each_instrument_renders_and_sounds():
    looks, spectra = {}, {}
    for ins in INSTRUMENTS:
        r = render(seconds=2.0, seed=1, size=SMALL, instrument=ins, schedule={}, **QUIET)
        assert r.truth["performers"][0]["notes"], ins
        assert np.abs(r.audio).max() > 0.1
        looks[ins] = r.frame(10).astype(float)
        spec = np.abs(np.fft.rfft(r.audio[: r.sr]))
        spectra[ins] = spec / spec.sum()
    names = list(INSTRUMENTS)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(looks[a] - looks[b]).mean() > 1.0, (a, b)
            assert np.abs(spectra[a] - spectra[b]).sum() > 0.2, (a, b)


def test_skill_adds_jitter_and_wrong_notes():
    def stats(skill):
        r = render(seconds=20.0, seed=3, size=(64, 48), skill=skill, schedule={}, **QUIET)
        notes = r.truth["performers"][0]["notes"]
        dev = np.array([n["onset"] - n["score_onset"] for n in notes])
        return np.std(dev), sum(n["wrong"] for n in notes)

    j9, w9 = stats(9)
    j0, w0 = stats(0)
    assert w9 == 0 and w0 > 0
    assert j0 > 5 * j9


def test_backgrounds_and_distractors():
    plain = render(seconds=2.0, seed=1, size=SMALL, background="plain", **QUIET)
    assert np.array_equal(plain.background(0), plain.background(40))
    clut = render(seconds=2.0, seed=1, size=SMALL, background="cluttered", **QUIET)
    assert np.abs(clut.background(0).astype(int) - clut.background(40).astype(int)).max() > 50
    assert clut.truth["background"]["walkers"]
    tex = render(seconds=0.5, seed=1, size=SMALL, background="textured", **QUIET)
    def roughness(img):
        return np.abs(np.diff(img.astype(float), axis=1)).mean()

    assert roughness(plain.background(0)) < 0.5 < 2 < roughness(tex.background(0))


def test_frame_labels_normal_play():
    r = render(seconds=3.0, seed=1, size=(64, 48), schedule={"Frowning": [(1.0, 2.0)]}, **QUIET)
    y = frame_labels(r.truth)
    assert y.shape == (75, 18)
    k = GESTURES.index("Frowning")
    assert y[25:50, k].all() and not y[:24, k].any() and not y[51:, k].any()
    assert (y[:, -1] == 1 - y[:, k]).all()


def test_bad_parameters_are_named():
    with pytest.raises(ParameterError, match="background"):
        render(seconds=1, seed=0, background="jungle")
    with pytest.raises(ParameterError, match="instrument"):
        render(seconds=1, seed=0, instrument="banjo")
    with pytest.raises(ParameterError, match="size"):
        render(seconds=1, seed=0, size=(321, 240))
    with pytest.raises(ParameterError, match="unknown gesture"):
        render(seconds=1, seed=0, gestures="Moonwalk")
    with pytest.raises(ParameterError, match="skill"):
        render(seconds=1, seed=0, skill=12)
    with pytest.raises(ParameterError, match=r"\[0, 1"):
        render(seconds=1, seed=0, schedule={"Freeze": [(0.5, 3.0)]})
    with pytest.raises(AnnotationError, match="not a musicperf synth truth"):
        load_truth({"format": "other"})


# --------------------------------------------------------------------------------- files


def test_synthesize_is_deterministic(tmp_path):
    kw = dict(seconds=2.0, seed=9, size=SMALL, background="cluttered", performers=2)
    a = synthesize(tmp_path / "a", **kw)
    b = synthesize(tmp_path / "b", **kw)
    for name in ("performance.mp4", "truth.json", "stems/performer1.wav", "stems/performer2.wav"):
        assert _sha(tmp_path / "a" / name) == _sha(tmp_path / "b" / name), name
    eaf1 = _sha(a.eaf)
    synthesize(tmp_path / "a", **kw)
    assert _sha(a.eaf) == eaf1  # EAF links the absolute media path: compare in one folder
    c = synthesize(tmp_path / "c", **{**kw, "seed": 10})
    assert _sha(c.video) != _sha(b.video)


def test_files_are_read_by_the_foundation(tmp_path):
    from musicperf.io.audio import load_audio
    from musicperf.io.elan import read_eaf
    from musicperf.io.video import VideoReader, probe

    sched = {"Freeze": [(1.0, 1.8)], "Frowning": [(0.2, 0.9), (2.0, 2.6)], "Nodding": [(2.1, 2.9)]}
    res = synthesize(tmp_path, seconds=3.0, seed=3, size=SMALL, schedule=sched, **QUIET)
    info = probe(res.video, count_frames=True)
    assert (info.width, info.height, info.fps, info.n_frames) == (160, 120, 25.0, 75)
    assert info.has_audio and info.audio_rate == 48000
    r = render(seconds=3.0, seed=3, size=SMALL, schedule=sched, **QUIET)
    with VideoReader(res.video) as reader:
        decoded = list(reader)
    assert len(decoded) == 75
    t, arr = decoded[40]
    assert t == pytest.approx(40 / 25.0, abs=1e-3)
    mse = np.mean((arr.astype(float) - r.frame(40).astype(float)) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 30  # PSNR in dB
    y, sr = load_audio(res.video, sr=48000)
    assert abs(y.size - r.audio.size) < 2048
    n = min(y.size, r.audio.size)
    assert np.corrcoef(y[:n], r.audio[:n])[0, 1] > 0.95
    assert np.sqrt(np.mean(y[int(1.1 * sr):int(1.7 * sr)] ** 2)) < 2e-3  # freeze stays silent after AAC
    from _eaf_check import check_eaf_structure  # the foundation's EAF 3.0 structure checker

    check_eaf_structure(res.eaf, media_expected=True)
    aset = read_eaf(res.eaf)
    assert [t.name for t in aset] == list(GESTURES)
    assert aset.vocabularies["gestures"] == list(GESTURES)
    assert aset["Frowning"].values == ["Frowning", "Frowning"]
    assert np.allclose(aset["Frowning"].intervals, [[0.2, 0.9], [2.0, 2.6]], atol=1e-3)
    assert len(aset["Vibrato"]) == 0
    assert aset.media and aset.media[0].url.endswith("performance.mp4")
    truth = json.loads(res.truth_path.read_text())
    assert truth["performers"][0]["gestures"]["Freeze"] == [[1.0, 1.8]]


def test_two_performers_stems_sum_to_mix(tmp_path):
    import soundfile as sf

    res = synthesize(tmp_path, seconds=2.0, seed=4, size=SMALL, performers=2, instrument=["guitar", "flute"], **QUIET)
    stems = [sf.read(str(p), dtype="float32")[0] for p in res.stems]
    r = render(seconds=2.0, seed=4, size=SMALL, performers=2, instrument=["guitar", "flute"], **QUIET)
    assert np.allclose(stems[0] + stems[1], r.audio, atol=1e-6)
    assert np.allclose(r.stems.sum(0), r.audio, atol=1e-6)
    t = res.truth
    assert [p["instrument"] for p in t["performers"]] == ["guitar", "flute"]
    x1 = np.asarray(t["performers"][0]["keypoints"]["pose"]["pixels"])[:, 0, 0]
    x2 = np.asarray(t["performers"][1]["keypoints"]["pose"]["pixels"])[:, 0, 0]
    assert x1.max() < 80 < x2.min()  # side by side
    from musicperf.io.elan import read_eaf

    names = [tier.name for tier in read_eaf(res.eaf)]
    assert len(names) == 34 and "performer2/Nodding" in names and "Nodding" in names


def test_contact_sheets_and_cli(tmp_path):
    from PIL import Image

    from musicperf.cli import main

    out = tmp_path / "demo"
    rc = main(["synth", str(out), "--seconds", "3", "--seed", "2", "--size", "160x120",
               "--gestures", "Eyes closed,Nodding", "--ensure-all", "--contact-sheet"])
    assert rc == 0
    sheets = sorted(p.name for p in (out / "contact_sheets").glob("*.png"))
    assert len(sheets) == len(GESTURES) and "eyes_closed.png" in sheets
    im = np.asarray(Image.open(out / "contact_sheets" / "eyes_closed.png"))
    assert im.shape[1] >= 6 * 160 and im.std() > 20
    truth = json.loads((out / "truth.json").read_text())
    assert truth["performers"][0]["gestures"]["Eyes closed"]
    assert main(["synth", str(tmp_path / "x"), "--seconds", "1", "--instrument", "drums", "--gestures", "Vibrato"]) == 2


def test_strokes_coincide_with_onsets_and_energy_is_louder():
    r = render(seconds=8.0, seed=6, size=SMALL, schedule={"Physical energy": [(4.0, 7.5)]}, **QUIET)
    pf = r.truth["performers"][0]
    tips = np.asarray(pf["keypoints"]["right_hand"]["pixels"])[:, 8]
    move = np.linalg.norm(np.diff(tips, axis=0), axis=1)  # move[i]: frame i -> i + 1
    t = np.arange(r.n_frames) / r.fps
    onsets = np.array([n["onset"] for n in pf["notes"]])
    hit = np.array([((onsets > t[i]) & (onsets <= t[i + 1])).any() for i in range(r.n_frames - 1)])
    assert hit.sum() >= 8
    assert move[hit].mean() > 4 * move[~hit].mean()
    sr = r.sr
    rms = lambda a, b: np.sqrt(np.mean(r.audio[int(a * sr):int(b * sr)].astype(float) ** 2))  # noqa: E731
    assert rms(4.2, 7.3) > 1.3 * rms(0.2, 3.8)
    dens_energy = ((onsets > 4.0) & (onsets < 7.5)).sum() / 3.5
    dens_normal = (onsets < 4.0).sum() / 4.0
    assert dens_energy > dens_normal


def test_truth_file_round_trip_without_audio(tmp_path):
    res = synthesize(tmp_path, seconds=1.0, seed=1, size=(64, 48), audio=False)
    truth = load_truth(res.truth_path)
    assert truth["audio"]["in_video"] is False
    assert truth["performers"][0]["keypoints"]["pose"]["full"].shape == (25, 33, 2)
    from musicperf.io.video import probe

    assert not probe(res.video).has_audio


def test_play_intervals_match_each_stem():
    r = render(seconds=12.0, seed=8, size=(64, 48), performers=2, instrument=["violin", "piano"], **QUIET)
    sr = r.sr
    for p, pf in enumerate(r.truth["performers"]):
        stem = r.stems[p]
        assert pf["non_play"], "a 12 s performance has rests"
        for s, e in pf["non_play"]:
            assert np.abs(stem[int(np.ceil(s * sr)) + 1:int(e * sr) - 1]).max(initial=0.0) == 0.0
        for s, e in pf["play"]:
            if e - s > 0.3:
                assert np.sqrt(np.mean(stem[int(s * sr):int(e * sr)].astype(float) ** 2)) > 1e-3
    assert r.truth["performers"][0]["play"] != r.truth["performers"][1]["play"]


def test_gesture_rate_scales_the_schedule():
    # with every gesture the timeline is already about as full as in 001 (1.5 gestures per
    # frame); the rate matters for a subset
    sel = ("Nodding", "Right hand round")
    base = schedule_gestures(120.0, np.random.default_rng(2), gestures=sel)
    dense = schedule_gestures(120.0, np.random.default_rng(2), gestures=sel, rate_scale=3.0)
    assert sum(map(len, dense.values())) > 2 * sum(map(len, base.values())) > 0
    r = render(seconds=1.0, seed=0, size=(32, 32), gesture_rate=2.5)
    assert r.truth["options"]["gesture_rate"] == 2.5
    with pytest.raises(ParameterError, match="gesture_rate"):
        render(seconds=1, seed=0, gesture_rate=0)


# ------------------------------------------------------------------------------ idle rests


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_idle_rest_is_silent_but_moving(instrument):
    rest = (1.0, 2.6)
    r = render(seconds=3.4, seed=11, size=SMALL, instrument=instrument, rests=[rest])
    pf = r.truth["performers"][0]
    assert pf["rests"] == [list(rest)] and r.truth["options"]["rests"] == [[list(rest)]]
    assert "performers[p].rests" in r.truth["doc"]
    # silent: no note sounds inside the rest, the audio is zero there, play/non_play agree
    assert not any(n["onset"] < rest[1] and n["offset"] > rest[0] for n in pf["notes"])
    seg = r.audio[int(rest[0] * r.sr) + 1:int(rest[1] * r.sr)]
    assert np.abs(seg).max() == 0.0
    assert not any(s < rest[1] and e > rest[0] for s, e in pf["play"])
    assert any(s <= rest[0] + 0.05 and e >= rest[1] for s, e in pf["non_play"])
    assert not any(s < rest[1] and e > rest[0] for g in GESTURES for s, e in pf["gestures"][g])
    # but moving: the wrists and the nose keep moving inside the rest (a freeze would hold them)
    pose = np.asarray(pf["keypoints"]["pose"]["pixels"])
    inside = slice(int((rest[0] + 0.4) * r.fps), int((rest[1] - 0.4) * r.fps))
    wrists = pose[inside][:, [15, 16]]
    assert np.linalg.norm(np.diff(wrists, axis=0), axis=-1).mean(0).max() > 0.05
    assert np.ptp(pose[inside, 0, 0]) > 0.3
    # the sound-producing hand has left its playing place (down to the thigh; the flute comes down)
    before = pose[: int(rest[0] * r.fps), 16].mean(0)
    moved = pose[inside, 16].mean(0) - before
    assert np.hypot(*moved) > 2.0, moved
    if instrument not in ("drums",):
        assert moved[1] > 2.0, moved


def test_rest_turns_the_head_towards_the_partner_and_keeps_the_other_performer():
    base = render(seconds=4, seed=4, performers=2, instrument=["violin", "guitar"], size=SMALL, **QUIET)
    r = render(seconds=4, seed=4, performers=2, instrument=["violin", "guitar"], size=SMALL,
               rests=[[(0.8, 3.6)], []], **QUIET)
    # the partner without a rest is unchanged
    assert r.truth["performers"][1]["notes"] == base.truth["performers"][1]["notes"]
    assert np.allclose(r.stems[1] / np.abs(r.stems[1]).max(), base.stems[1] / np.abs(base.stems[1]).max(), atol=1e-6)
    assert r.truth["performers"][1]["rests"] == []
    # the resting performer 1 (left) looks to the image right now and then: nose right of the
    # ears' midpoint by more than in play
    pose = np.asarray(r.truth["performers"][0]["keypoints"]["pose"]["pixels"])
    off = pose[:, 0, 0] - (pose[:, 7, 0] + pose[:, 8, 0]) / 2
    t = np.arange(r.n_frames) / r.fps
    assert off[(t > 1.2) & (t < 3.2)].max() > off[t < 0.8].max() + 0.5


def test_default_rendering_has_no_rests_and_bad_rests_are_named():
    r = render(seconds=1, seed=1, size=SMALL)
    assert "rests" not in r.truth["performers"][0] and "rests" not in r.truth["options"]
    with pytest.raises(ParameterError, match="0.8 s"):
        render(seconds=3, seed=1, size=SMALL, rests=[(1.0, 1.2)])
    with pytest.raises(ParameterError, match="per performer"):
        render(seconds=3, seed=1, size=SMALL, performers=2, rests=[[(1.0, 2.0)]])
    with pytest.raises(ParameterError, match="overlap"):
        render(seconds=5, seed=1, size=SMALL, rests=[(1.0, 2.5), (2.0, 3.5)])


def test_synth_cli_rest(tmp_path, capsys):
    from musicperf.cli import main

    out = tmp_path / "d"
    assert main(["synth", str(out), "--seconds", "3", "--seed", "2", "--size", "160x120", "--performers", "2",
                 "--instrument", "violin", "--rest", "2:1-2.5"]) == 0
    assert "rests 1-2.5 s" in capsys.readouterr().out
    truth = json.loads((out / "truth.json").read_text())
    assert [p["rests"] for p in truth["performers"]] == [[], [[1.0, 2.5]]]
    assert main(["synth", str(tmp_path / "e"), "--seconds", "3", "--rest", "2:1-2.5"]) == 2


def test_low_skill_is_unsteady_uneven_and_tense():
    """skill < 9: hesitations, uneven velocities, early releases and tense, jerky hand motion;
    skill 9 draws none of it (its truth carries no tension/hesitation fields)."""
    def run(skill):
        r = render(seconds=12.0, seed=4, size=(96, 72), skill=skill, instrument="piano", gestures=[], **QUIET)
        pf = r.truth["performers"][0]
        wrist = np.concatenate([np.asarray(pf["keypoints"][h]["pixels"])[:, 0, 1] for h in ("left_hand", "right_hand")])
        return pf["notes"], np.abs(np.diff(wrist)).mean()

    n9, move9 = run(9)
    n0, move0 = run(0)
    assert not any("tension" in n or "hesitation" in n for n in n9)
    assert all(n["tension"] > 0 for n in n0) and sum(n.get("hesitation", 0) > 0 for n in n0) >= 1
    assert np.std([n["velocity"] for n in n0]) > 1.5 * np.std([n["velocity"] for n in n9])
    gaps0 = [b["onset"] - a["offset"] for a, b in zip(n0, n0[1:])]
    assert np.median(gaps0) > 0.05                       # released early: silence between notes
    assert move0 > 2 * move9                             # jerky hands


# ------------------------------------------------------------------------- motion dynamics


def _wrist_speed_and_loudness(r):
    """Per video frame: the bow hand's speed (truth key point) and the audio's RMS, aligned."""
    pose = np.asarray(r.truth["performers"][0]["keypoints"]["pose"]["pixels"])
    speed = np.linalg.norm(np.diff(pose[:, 16], axis=0), axis=-1)
    hop = int(r.sr / r.fps)
    rms = np.sqrt(np.mean(r.audio[: hop * r.n_frames].reshape(r.n_frames, hop).astype(float) ** 2, 1))
    return speed, (rms[1:] + rms[:-1]) / 2


@pytest.mark.parametrize("seed", [1, 2])
def test_motion_dynamics_violin_loudness_follows_bow_speed(seed):
    kw = dict(seconds=5, seed=seed, size=SMALL, instrument="violin", schedule={}, **QUIET)
    plain = render(**kw)
    dyn = render(motion_dynamics=True, **kw)
    r_plain = np.corrcoef(*_wrist_speed_and_loudness(plain))[0, 1]
    r_dyn = np.corrcoef(*_wrist_speed_and_loudness(dyn))[0, 1]
    assert r_dyn > 0.85 and r_dyn > r_plain + 0.4, (r_dyn, r_plain)
    notes = dyn.truth["performers"][0]["notes"]
    assert all(len(n["swell"]) == 3 and 0.2 - 1e-6 <= abs(n["bow"]) <= 1.8 + 1e-6 for n in notes)
    # strokes alternate and the bow never runs past either end
    assert all(np.sign(a["bow"]) != np.sign(b["bow"]) for a, b in zip(notes, notes[1:]))
    assert -0.9 - 1e-6 <= np.cumsum([-0.9] + [n["bow"] for n in notes]).min()
    assert np.cumsum([-0.9] + [n["bow"] for n in notes]).max() <= 0.9 + 1e-6
    assert dyn.truth["options"]["motion_dynamics"] is True and ".swell and .bow" in dyn.truth["doc"]
    assert "performers[p].rests" not in dyn.truth["doc"]
    # the default rendering has none of it (its output is unchanged by the option's existence)
    assert "motion_dynamics" not in plain.truth["options"]
    assert not any("swell" in n or "bow" in n for n in plain.truth["performers"][0]["notes"])


def test_motion_dynamics_scales_strums_and_strikes_with_velocity():
    from musicperf.synth.figure import compute_states
    from musicperf.synth.score import Note

    r = render(seconds=8, seed=4, size=SMALL, instrument="guitar", schedule={}, motion_dynamics=True, **QUIET)
    notes = r.truth["performers"][0]["notes"]
    assert not any("bow" in n for n in notes)  # only the violin plans strokes
    pose = np.asarray(r.truth["performers"][0]["keypoints"]["pose"]["pixels"])
    speed = np.linalg.norm(np.diff(pose[:, 16], axis=0), axis=-1)
    # a strum swings from where the last one ended to the other side, as far as its velocity asks:
    # the strumming hand's path over the stroke follows the two velocities
    path, vel = [], []
    for a, b in zip(notes, notes[1:]):
        i = int(b["onset"] * r.fps)
        if i + 3 < len(speed):
            path.append(speed[i - 1:i + 3].sum())
            vel.append(a["velocity"] + b["velocity"])
    assert len(path) >= 8 and np.corrcoef(vel, path)[0, 1] > 0.9
    # a piano strike's depth follows the note's velocity (without the option it does not)
    t = np.arange(100) / 25.0
    keys = [Note(onset=0.5 + k, offset=0.9 + k, score_onset=0.5 + k, midi=60, score_midi=60, velocity=v)
            for k, v in enumerate([0.4, 0.8, 0.6])]
    depth = [compute_states(t, {}, keys, np.random.default_rng(0), instrument="piano", motion_dynamics=dyn)["press"]
             for dyn in (False, True)]
    peak = [[d[int(n.onset * 25):int(n.onset * 25) + 5].max() for n in keys] for d in depth]
    assert np.allclose(peak[1], np.asarray(peak[0]) * [0.64, 1.28, 0.96]) and np.ptp(peak[0]) < 1e-9


def test_synth_cli_motion_dynamics(tmp_path):
    from musicperf.cli import main

    out = tmp_path / "d"
    assert main(["synth", str(out), "--seconds", "2", "--seed", "2", "--size", "160x120", "--instrument", "violin",
                 "--motion-dynamics", "--no-audio"]) == 0
    truth = json.loads((out / "truth.json").read_text())
    assert truth["options"]["motion_dynamics"] is True and "bow" in truth["performers"][0]["notes"][0]


def test_encoding_is_byte_reproducible_at_heights_not_multiple_of_16(tmp_path):
    """The same frames give the same MP4 bytes every time. With x264's macroblock-tree rate
    control, heights that are not a multiple of 16 gave different bytes from run to run on an
    AVX-512 CPU (and different decoded pixels), so synthetic training data varied."""
    from musicperf.synth.core import encode_mp4, render

    r = render(seconds=1.0, seed=30003, size=(96, 72), instrument="guitar", gestures=[])
    frames = [f.copy() for f in r.frames()]
    blobs = set()
    for k in range(4):
        p = tmp_path / f"{k}.mp4"
        encode_mp4(p, iter(frames), r.audio, fps=r.fps, size=r.size, sr=r.sr)
        blobs.add(p.read_bytes())
    assert len(blobs) == 1
