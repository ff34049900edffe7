"""Playing/non-playing detection (002 IV-B) and player-to-track association (002 V-A) on
synthetic signals and a synthetic duet in which one player rests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicperf.analysis import association as AS
from musicperf.analysis import playing as PL
from musicperf.errors import AnnotationError, ParameterError


def test_playing_from_motion_on_synthetic_speeds(rng):
    fps = 25.0
    T = 250
    t = np.arange(T) / fps
    truth = np.ones((T, 2), bool)
    truth[(t >= 3) & (t < 6), 1] = False
    # bowing: speed oscillates with bow changes (dips to ~0) while playing, idle noise otherwise
    bow = np.abs(np.sin(2 * np.pi * 1.5 * t))[:, None] * 2.0
    speed = np.where(truth, bow, 0.0) + rng.uniform(0, 0.15, (T, 2))
    pred = PL.playing_from_motion(speed, fps)
    assert PL.accuracy(pred, truth) > 0.95
    # silence in the audio means nobody plays
    rms = np.ones(T)
    rms[200:] = 0.0
    pred = PL.playing_from_motion(speed, fps, audio_rms=rms)
    assert not pred[215:].any()
    with pytest.raises(ParameterError, match="frames"):
        PL.playing_from_motion(speed, fps, audio_rms=rms[:10])


def _bowing_duet(rng):
    """Two bowing players (the bow reverses at each of their notes, a decaying tone sounds);
    player 2 rests 4-8 s but keeps moving as much as when bowing, out of time with the notes."""
    from scipy.ndimage import gaussian_filter1d

    fps, T, sr = 25.0, 300, 8000
    t = np.arange(T) / fps
    y = np.zeros(int(T / fps * sr))
    vel = np.zeros((T, 2, 2))
    truth = np.ones((T, 2), bool)
    truth[(t >= 4) & (t < 8), 1] = False
    for p in range(2):
        on = np.cumsum(rng.uniform(0.3, 0.6, 40))
        on = on[on < T / fps - 0.3]
        on = on[truth[(on * fps).astype(int), p]]
        sign, k = 1.0, 0
        for i in range(T):
            while k < len(on) and on[k] <= t[i]:
                sign, k = -sign, k + 1
            vel[i, p, 0] = sign * 2.0 if truth[i, p] else 0.0
        tt = np.arange(int(0.25 * sr)) / sr
        for o in on:
            a = int(o * sr)
            y[a:a + tt.size] += 0.3 * np.sin(2 * np.pi * (330 if p else 220) * tt) * np.exp(-tt / 0.08)
    idle = gaussian_filter1d(rng.normal(0, 1, (T, 2)), 4, axis=0)
    idle *= 1.6 / np.linalg.norm(idle, axis=1).mean()
    vel[~truth[:, 1], 1] = idle[~truth[:, 1]]
    return vel + rng.normal(0, 0.05, vel.shape), y, sr, fps, truth


def test_audio_visual_synchrony_cue_finds_idle_rests():
    """The optional synchrony cue (off by default) turns idle motion out of time with the notes
    to non-playing; the default decision calls a moving player playing while the audio sounds."""
    rest = slice(int(4.5 * 25), int(7.5 * 25))
    found_sync, found_default = [], []
    for seed in range(8):
        vel, y, sr, fps, truth = _bowing_duet(np.random.default_rng(seed))
        sync = PL.playing_audio_visual(vel, fps, y=y, sr=sr, sync_threshold=-0.3)
        default = PL.playing_audio_visual(vel, fps, y=y, sr=sr)
        found_sync.append(np.mean(~sync[rest, 1]))
        found_default.append(np.mean(~default[rest, 1]))
        rms = PL.frame_rms(y, sr, fps, len(vel))
        on = np.flatnonzero(rms > 0.01 * np.percentile(rms, 99))
        span = slice(on[0], on[-1] + 1)  # from the first note to the last one
        assert sync[span, 0].mean() > 0.85 and default[span, 0].mean() > 0.95  # the partner bows throughout
    assert np.mean(found_sync) > 0.15 and np.mean(found_default) < 0.05, (found_sync, found_default)
    # every cue off: everyone plays wherever the mixture sounds
    vel, y, sr, fps, truth = _bowing_duet(np.random.default_rng(0))
    off = PL.playing_audio_visual(vel, fps, y=y, sr=sr, still=0, explain_audio=False)
    rms = PL.frame_rms(y, sr, fps, len(vel))
    sounding = rms > 0.01 * np.percentile(rms, 99)  # -40 dB
    assert np.array_equal(off[:, 0], off[:, 1]) and off[sounding, 0].all() and off[:, 0].mean() > 0.9
    # before the first note and after the last one nobody plays
    assert not off[:np.argmax(sounding), 0].any() and not off[len(vel) - np.argmax(sounding[::-1]):, 0].any()
    with pytest.raises(ParameterError, match="velocity"):
        PL.playing_audio_visual(np.zeros((10, 3)), fps, y=y, sr=sr)
    with pytest.raises(ParameterError, match="unknown options"):
        PL.playing_audio_visual(vel, fps, y=y, sr=sr, treshold=0.3)


def _flute_and_bow(rng, seconds=8.0, fps=25.0, sr=8000):
    """A flautist whose fingers barely move the region (speed ~0.05) plays throughout after 0.5 s
    of silence; the partner bows (speed ~2 with reversals) and freezes 3-6 s (noise-level motion);
    the mixture sounds from 0.5 s on."""
    T = int(seconds * fps)
    tv = np.arange(T) / fps
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 523 * t) * (t > 0.5)
    vel = np.zeros((T, 2, 2))
    vel[:, 0, 0] = 0.05 * np.sign(np.sin(2 * np.pi * 3.0 * tv)) + rng.normal(0, 0.01, T)
    vel[:, 1, 0] = 2.0 * np.sign(np.sin(2 * np.pi * 0.8 * tv)) + rng.normal(0, 0.01, T)
    frozen = (tv >= 3) & (tv < 6)
    vel[frozen, 1] = rng.normal(0, 0.01, (frozen.sum(), 2))
    return vel, y, sr, fps, tv


def test_small_motion_plays_and_long_stillness_does_not(rng):
    vel, y, sr, fps, tv = _flute_and_bow(rng)
    pred = PL.playing_audio_visual(vel, fps, y=y, sr=sr)
    assert not pred[tv < 0.2].any()  # silence: nobody plays
    assert pred[tv > 0.8, 0].all()  # the flautist's small motion is playing
    assert not pred[(tv > 3.4) & (tv < 5.6), 1].any()  # the freeze
    assert pred[(tv > 0.8) & (tv < 2.6), 1].all() and pred[tv > 6.4, 1].all()
    # stillness shorter than min_still is a pause within playing (a guitarist between strums)
    assert PL.playing_audio_visual(vel, fps, y=y, sr=sr, min_still=3.0)[(tv > 0.8), 1].all()
    assert PL.playing_audio_visual(vel, fps, y=y, sr=sr, still=0)[(tv > 0.8), 1].all()


def test_silence_is_judged_per_frame(rng):
    """A 0.6 s pause of the whole ensemble is non-playing for everyone; a 0.2 s gap between
    notes is not a pause."""
    fps, sr = 25.0, 8000
    vel, _y, _sr, _fps, tv = _flute_and_bow(rng, seconds=6.0, fps=fps, sr=sr)
    t = np.arange(int(6.0 * sr)) / sr
    sounding = ((t > 0.5) & (t < 3.0)) | ((t > 3.6) & (t < 4.5)) | (t > 4.7)
    y = 0.3 * np.sin(2 * np.pi * 440 * t) * sounding
    vel[:, 1] = vel[0, 1]  # no freeze: the partner keeps bowing
    pred = PL.playing_audio_visual(vel, fps, y=y, sr=sr)
    assert not pred[(tv > 3.05) & (tv < 3.55)].any()
    assert pred[(tv > 4.4) & (tv < 4.8)].all() and pred[(tv > 1.0) & (tv < 2.9)].all()
    assert PL.playing_audio_visual(vel, fps, y=y, sr=sr, min_silence=0.8)[(tv > 1.0)].all()


def test_one_sound_needs_a_player(rng):
    """Where the mixture sounds and every player is still for long, the sound must be someone's:
    the player most active relative to their own level plays."""
    vel, y, sr, fps, tv = _flute_and_bow(rng)
    vel[(tv >= 3) & (tv < 6), 0] *= 0.1  # the flautist holds a long note, fingers still
    pred = PL.playing_audio_visual(vel, fps, y=y, sr=sr)
    held = (tv > 3.4) & (tv < 5.6)
    assert pred[held].sum(1).min() == 1  # exactly one player explains the sound
    assert not PL.playing_audio_visual(vel, fps, y=y, sr=sr, explain_audio=False)[held].any()


def test_intervals_and_masks_round_trip():
    fps = 10.0
    m = PL.mask_from_intervals([(0.5, 1.0), (2.0, 2.5)], fps, 30)
    assert PL.intervals_from_mask(m, fps) == [(0.5, 1.0), (2.0, 2.5)]


def test_association_on_onset_trains(rng):
    fps, T = 25.0, 300
    onsets = [np.sort(rng.choice(T, 25, replace=False)), np.sort(rng.choice(T, 25, replace=False))]
    vel = np.zeros((T, 2, 2))
    for p, on in enumerate(onsets):
        sign = 1.0
        for i in range(T):  # a bow reverses at every onset
            if i in set(on.tolist()):
                sign = -sign
            vel[i, p] = [sign * 2.0, 0.3]
    vel += rng.normal(0, 0.1, vel.shape)
    tracks = np.stack([AS.onsets_to_envelope(on / fps + 0.001, fps, T) for on in onsets], 1)
    motion = AS.motion_onset_strength(vel)
    assert AS.associate(motion, tracks).track_of_player == [0, 1]
    assert AS.associate(motion, tracks[:, ::-1]).track_of_player == [1, 0]
    # a one-frame audio-video offset is tolerated
    shifted = np.roll(tracks, 1, axis=0)
    assert AS.associate(motion, shifted).track_of_player == [0, 1]


@pytest.fixture(scope="module")
def duet():
    from musicperf.synth import load_truth, render

    r = render(seconds=4.5, seed=1, instrument=["violin", "guitar"], performers=2, size=(320, 240),
               schedule=[{}, {"Freeze": [(1.5, 3.5)]}])
    return r, load_truth(r.truth), list(r.frames())


def test_playing_and_association_on_synthetic_duet(duet):
    from musicperf.analysis.motion import keypoint_region, region_motion

    r, truth, frames = duet
    regions = [keypoint_region(p["keypoints"]["right_hand"]["full"], margin=0.2) for p in truth["performers"]]
    m = region_motion(frames, regions, fps=r.fps, compensate=True)
    T = len(frames)
    ref = np.stack([PL.mask_from_intervals(p["play"], r.fps, T) for p in truth["performers"]], 1)
    pred = PL.playing_from_motion(m.speed, r.fps, audio_rms=PL.frame_rms(r.audio, r.sr, r.fps, T))
    assert PL.accuracy(pred, ref) > 0.75
    # the resting player (Freeze 1.5-3.5 s) is found not playing for most of the rest
    rest = slice(int(1.7 * r.fps), int(3.3 * r.fps))
    assert np.mean(~pred[rest, 1]) > 0.8
    tracks = np.stack([AS.audio_onset_strength(s, r.sr, r.fps, T) for s in r.stems], 1)
    motion = AS.motion_onset_strength(m.velocity)
    assert AS.associate(motion, tracks).track_of_player == [0, 1]
    assert AS.associate(motion, tracks[:, ::-1]).track_of_player == [1, 0]


def test_ensemble_clustering_pipeline_with_simulated_annotator(duet):
    r, truth, frames = duet
    T = len(frames)
    ref = np.stack([PL.mask_from_intervals(p["play"], r.fps, T) for p in truth["performers"]], 1)

    def faces(frame, i=[0]):  # noqa: B006 - faces from the truth's face key points (the detector is tested below)
        k = i[0]
        i[0] += int(round(0.5 * r.fps))
        out = []
        for p in truth["performers"]:
            pts = p["keypoints"]["face"]["full"][min(k, T - 1)]
            pts = pts[np.isfinite(pts).all(1)]
            (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
            out.append([x0, y0, x1, y1])
        return np.array(out, int)

    obs = PL.ensemble_observations(frames, fps=r.fps, step=0.5, faces=faces)
    n = PL.cluster_musicians(obs, None)
    assert n == 2
    xs = [np.mean([o.face[0] for o in obs if o.musician == m]) for m in range(2)]
    assert xs[0] < xs[1]  # numbered left to right
    PL.sub_cluster(obs, 3)
    labels = PL.simulate_annotator(obs, lambda o: ref[int(round(o.time * r.fps)), o.musician])
    assert set(labels.values()) <= {"playing", "non-playing", "reject"}
    tl = PL.ensemble_timeline(obs, labels, T, r.fps, n)
    known = tl >= 0
    assert known.mean() > 0.5
    assert np.mean((tl == ref)[known]) > 0.8
    tmpl = PL.cluster_labels_template(obs)
    assert all(v["label"] == "?" for v in tmpl.values())


@pytest.mark.parametrize("method", ["mediapipe", "haar", "auto"])
def test_detect_faces_on_synthetic_frame(method):
    from musicperf.synth import render

    r = render(seconds=1, seed=3, instrument="violin", performers=2, size=(320, 240))
    boxes = PL.detect_faces(r.frame(10), method=method)
    assert len(boxes) == 2
    for b, p in zip(boxes.tolist(), r.truth["performers"]):  # sorted left to right
        nose = np.array(p["keypoints"]["face"]["pixels"][10])[p["keypoints"]["face"]["index"].index(1)]
        assert b[0] <= nose[0] <= b[2] and b[1] <= nose[1] <= b[3]
    with pytest.raises(ParameterError, match="face detector"):
        PL.detect_faces(r.frame(10), method="dlib")


def test_mediapipe_finds_faces_haar_misses():
    """Synthetic duets with other looks: MediaPipe finds both faces in most frames, Haar in few."""
    from musicperf.synth import render

    counts = {"mediapipe": [], "haar": []}
    for seed, ins in ((20, "violin"), (21, "guitar"), (23, "piano")):
        r = render(seconds=2.5, seed=seed, instrument=ins, performers=2, size=(320, 240))
        for i in range(0, 60, 12):
            for m in counts:
                counts[m].append(len(PL.detect_faces(r.frame(i), method=m)) == 2)
    assert np.mean(counts["mediapipe"]) >= 0.75 and np.mean(counts["haar"]) < np.mean(counts["mediapipe"]) - 0.3


def test_read_cluster_labels(tmp_path):
    f = tmp_path / "l.json"
    f.write_text(json.dumps({"musician1/sub1": "playing", "musician1/sub2": {"label": "non-playing"}}))
    assert PL.read_cluster_labels(f) == {"musician1/sub1": "playing", "musician1/sub2": "non-playing"}
    f.write_text(json.dumps({"musician1/sub1": "?"}))
    with pytest.raises(AnnotationError, match="playing, non-playing or reject"):
        PL.read_cluster_labels(f)


@pytest.fixture(scope="module")
def duet_files(tmp_path_factory):
    from musicperf.synth import synthesize

    out = tmp_path_factory.mktemp("duet")
    return synthesize(out, seconds=4, seed=3, performers=2, instrument=["violin", "violin"], size=(320, 240),
                      schedule=[{"Freeze": [(1.5, 3.5)]}, {}])


def test_playing_and_associate_commands(duet_files, capsys, tmp_path):
    from musicperf.cli import main

    res = duet_files
    # default regions: the upper bodies below the faces found
    assert main(["playing", str(res.video), "--json", "--plot", str(tmp_path / "p.png")]) == 0
    out = json.loads(capsys.readouterr().out.split("wrote")[0])
    assert len(out["regions"]) == 2  # two faces found (MediaPipe), no --regions needed
    p1 = out["performers"]["performer1"]
    assert p1["playing_share"] < 0.8  # performer 1 freezes for half of the video
    assert out["performers"]["performer2"]["playing_share"] > 0.8
    assert (tmp_path / "p.png").stat().st_size > 5000
    stems = [str(res.out_dir / s) for s in res.truth["audio"]["stems"]]
    assert main(["associate", str(res.video), "--tracks", stems[1], stems[0], "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["track_of_player"] == [1, 0]
    ens = ["--ensemble", "--max-seconds", "2", "--step", "0.4"]
    assert main(["playing", str(res.video), *ens, "--write-labels", str(tmp_path / "l.json")]) == 0
    tmpl = json.loads((tmp_path / "l.json").read_text())
    assert tmpl and (tmp_path / "l.png").exists()
    # label every sub-cluster "playing" and apply
    (tmp_path / "l.json").write_text(json.dumps({k: "playing" for k in tmpl}))
    capsys.readouterr()
    assert main(["playing", str(res.video), *ens, "--labels", str(tmp_path / "l.json"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "ensemble" and len(out["performers"]) >= 1


def test_playing_decision_is_the_audio_visual_cues_then_resting_postures(duet):
    from musicperf.analysis.motion import keypoint_region, region_motion

    r, truth, frames = duet
    regions = [keypoint_region(p["keypoints"]["right_hand"]["full"], margin=0.2) for p in truth["performers"]]
    thumbs = []
    m = region_motion(PL.thumbnail_tap(iter(frames), regions, thumbs), regions, fps=r.fps, compensate=True)
    # the tap took the thumbnails of every frame in the motion's pass, as region_thumbnails does
    assert np.array_equal(np.asarray(thumbs), PL.region_thumbnails(frames, regions))
    av = PL.playing_audio_visual(m.velocity, r.fps, y=r.audio, sr=r.sr, speed=m.speed)
    want = av & ~PL.rest_postures(np.asarray(thumbs), av, r.fps)
    got = PL.playing_decision(m.velocity, r.fps, y=r.audio, sr=r.sr, speed=m.speed, thumbs=thumbs)
    assert np.array_equal(got, want)
    # without thumbnails, or with one performer, it is the audio-visual decision alone
    assert np.array_equal(PL.playing_decision(m.velocity, r.fps, y=r.audio, sr=r.sr, speed=m.speed), av)
    one = PL.playing_decision(m.velocity[:, :1], r.fps, y=r.audio, sr=r.sr, speed=m.speed[:, :1],
                              thumbs=np.asarray(thumbs)[:, :1])
    assert np.array_equal(one, PL.playing_audio_visual(m.velocity[:, :1], r.fps, y=r.audio, sr=r.sr,
                                                       speed=m.speed[:, :1]))


def test_region_thumbnails_of_a_synthetic_duet():
    from musicperf.analysis.motion import Region
    from musicperf.synth import render

    r = render(seconds=1, seed=5, instrument="violin", performers=2, size=(320, 240))
    thumbs = PL.region_thumbnails(r.frames(), [Region(20, 40, 120, 160), Region(180, 40, 120, 160)], size=16)
    assert thumbs.shape == (25, 2, 256)
    assert np.allclose(thumbs.mean(-1), 0, atol=1e-9) and np.allclose(thumbs.std(-1), 1, atol=1e-6)
    with pytest.raises(ParameterError, match="no frames"):
        PL.region_thumbnails([], [Region(0, 0, 10, 10)])


def test_rest_postures(rng):
    """Player 2 plays in two bow positions and rests 4-7 s in a third, distant posture (bow
    down). Player 1 alternates two positions for 2 s at a time, playing throughout (a
    guitarist's strumming hand): no resting posture."""
    fps, T, d = 25.0, 300, 64
    t = np.arange(T) / fps
    a, b, down = rng.normal(0, 1, (3, d))
    down *= 3.0
    X = np.zeros((T, 2, d))
    X[:, 0] = np.where((np.floor(t / 2.0) % 2 == 0)[:, None], a, b)
    X[:, 1] = np.where((np.floor(t / 0.4) % 2 == 0)[:, None], a, b)
    rest = (t >= 4) & (t < 7)
    X[rest, 1] = down
    X += rng.normal(0, 0.3, X.shape)
    truth = np.ones((T, 2), bool)
    truth[rest, 1] = False
    found = PL.rest_postures(X, None, fps)
    assert found[(t > 4.3) & (t < 6.7), 1].all() and not found[(t < 3.7) | (t > 7.3), 1].any()
    assert not found[:, 0].any()
    # too short a rest is no rest
    assert not PL.rest_postures(X, None, fps, min_rest=3.5).any()
    # a posture held to the end may be a new playing position: not a rest unless asked
    X2 = X.copy()
    X2[rest, 1] = X2[(t >= 1) & (t < 4), 1]
    X2[t >= 9, 1] = down + rng.normal(0, 0.3, ((t >= 9).sum(), d))
    assert not PL.rest_postures(X2, None, fps).any()
    late = PL.rest_postures(X2, None, fps, interior=False, grow=0.0)[:, 1]
    assert late[t > 9.3].all() and not late[t < 8.7].any()
    # with min_gap, another cue must find less playing in the posture: a weak cue (25 % of
    # frames wrong) does, a cue that says playing everywhere gives no evidence
    cue = truth ^ (rng.random(truth.shape) < 0.25)
    assert np.array_equal(PL.rest_postures(X, cue, fps, min_gap=0.15), found)
    assert not PL.rest_postures(X, np.ones_like(cue), fps, min_gap=0.15).any()
    # both players in a rare long posture at once while the mixture sounds: only the more
    # distinct posture (player 2's, far from a spread-out playing posture) is a rest there
    X3 = X.copy()
    X3[rest, 0] = a + 0.15 * (b - a) + rng.normal(0, 0.3, (rest.sum(), d))
    X3[~rest, 0] = a + rng.normal(0, 0.3, ((~rest).sum(), d))
    alone = PL.rest_postures(X3, None, fps)
    assert alone[(t > 4.3) & (t < 6.7)].all()
    sounding = np.ones((T, 2), bool)
    both = PL.rest_postures(X3, sounding, fps)
    assert both[(t > 4.3) & (t < 6.7), 1].all() and not both[(t > 4.3) & (t < 6.7), 0].any()
    with pytest.raises(ParameterError, match="do not match"):
        PL.rest_postures(X, cue[:, :1], fps)
    with pytest.raises(ParameterError, match="min_gap"):
        PL.rest_postures(X, None, fps, min_gap=0.1)


def test_region_motion_downscale_keeps_speeds_in_frame_pixels():
    """A textured bar moving 0-6 px per frame in a 480-line frame: the flow on frames shrunk by
    2 (what the commands do for such frames) follows the same motion, in the frame's pixels."""
    from musicperf.analysis.motion import Region, auto_downscale, region_motion

    tex = np.random.default_rng(0).integers(60, 250, (25, 15, 1)).repeat(3, 2).astype(np.uint8)
    tex = np.repeat(np.repeat(tex, 4, 0), 4, 1)  # 4-px blobs: a texture the flow can follow
    steps = [0, 2, 4, 6, 0, 0, 3, 6, 1, 5, 0, 4, 2, 6, 0]
    frames, x = [], 100
    for dx in [0] + steps:
        x += dx
        f = np.full((480, 640, 3), 40, np.uint8)
        f[200:300, x:x + 60] = tex
        frames.append(f)
    regs = [Region(60, 150, 240, 200), Region(400, 150, 200, 200)]
    full = region_motion(frames, regs, fps=25.0)
    half = region_motion(frames, regs, fps=25.0, downscale=2)
    assert auto_downscale(480) == 2 and auto_downscale(240) == 1 and auto_downscale(1080) == 4
    assert np.array_equal(full.boxes, half.boxes)  # boxes in the frame's own pixels
    a, b = full.speed[2:, 0], half.speed[2:, 0]
    assert np.corrcoef(a, b)[0, 1] > 0.95 and np.corrcoef(steps[1:], b)[0, 1] > 0.9
    assert 0.6 < b.mean() / a.mean() < 1.6, (a.mean(), b.mean())  # same units, about the same size
    assert half.speed[2:, 1].max() < 0.1 * b.max()  # the empty region stays still
    with pytest.raises(ParameterError, match="downscale"):
        region_motion(frames[:2], regs, fps=25.0, downscale=0)
