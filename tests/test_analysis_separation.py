"""Motion-informed NMF separation (002 Section VI-B, Equation 2) on toy mixtures with known sources."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicperf.analysis import separation as S
from musicperf.errors import ParameterError

SR = 8000


def _tone(f0, t, partials=4):
    return sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, partials + 1))


@pytest.fixture(scope="module")
def duet():
    """Two harmonic sources in different registers switching on and off at different times; the
    'motion' of each player is its on/off envelope at 25 fps plus noise."""
    rng = np.random.default_rng(5)
    seconds = 4.0
    t = np.arange(int(seconds * SR)) / SR
    fps = 25.0
    tv = np.arange(int(seconds * fps)) / fps
    on1 = (np.floor(tv / 0.5) % 2 == 0) | (tv > 3.0)
    on2 = (np.floor(tv / 0.7) % 2 == 1)
    env1 = np.interp(t, tv, on1.astype(float))
    env2 = np.interp(t, tv, on2.astype(float))
    s1 = 0.5 * env1 * (_tone(220, t) * (t < 2) + _tone(247, t) * (t >= 2))
    s2 = 0.5 * env2 * (_tone(330, t) * (t < 1.5) + _tone(392, t) * (t >= 1.5))
    motion = np.stack([on1, on2], 1) * 2.0 + rng.uniform(0, 0.2, (len(tv), 2))
    return np.stack([s1, s2]), motion, fps


def test_motion_nmf_decreases_cost_and_keeps_unit_bases(duet, rng):
    ref, motion, fps = duet
    X, times = S.stft_mag(ref.sum(0), SR, n_fft=512, hop_length=128)
    M = S.resample_motion(motion, fps, times)
    res = S.motion_nmf(np.abs(X), M, 8, n_iter=60, seed=1)
    assert res.cost[-1] < res.cost[0]
    assert np.all(np.diff(res.cost[5:]) <= 1e-6 * abs(res.cost[0]))  # multiplicative updates do not increase it
    assert np.allclose(np.linalg.norm(res.W, axis=0), 1.0)
    assert res.A.shape == (8, 2) and (res.A >= 0).all()


def test_motion_informed_separation_recovers_sources(duet):
    ref, motion, fps = duet
    res = S.separate(ref.sum(0), SR, motion=motion, motion_fps=fps, n_components=8, n_iter=80,
                     n_fft=512, hop_length=128)
    assert res.sources.shape == ref.shape
    m = S.evaluate(ref, res.sources)
    assert m["sdr_mean"] > 8.0, m
    # swapping the motion columns swaps the sources: the assignment follows the motion
    sw = S.separate(ref.sum(0), SR, motion=motion[:, ::-1], motion_fps=fps, n_components=8, n_iter=80,
                    n_fft=512, hop_length=128)
    assert S.evaluate(ref[::-1], sw.sources)["sdr_mean"] > 8.0


def test_audio_only_baseline_runs_and_is_scored_with_permutation(duet):
    ref, _, _ = duet
    res = S.separate(ref.sum(0), SR, n_sources=2, n_components=8, n_iter=60, n_fft=512, hop_length=128)
    m = S.evaluate(ref, res.sources, permute=True)
    assert set(m) >= {"sdr", "sir", "sar", "sdr_mean", "permutation"}
    assert np.isfinite(m["sdr_mean"])


def test_assign_by_motion_follows_argmax_and_falls_back_to_correlation():
    A = np.array([[0.0, 1.0, 0.2], [0.9, 0.1, 0.0], [0.0, 0.0, 0.0]])
    H = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 0, 1.0]])
    M = np.array([[0, 1, 1], [1, 0, 0], [0, 1, 0], [1, 0, 1.0]])
    # clusters: source 0 owns column 0, source 1 owns columns 1 and 2
    src = S.assign_by_motion(A, [1, 2], H, M)
    assert src[0] == 1 and src[1] == 0
    assert src[2] == 1  # dead row: its activation correlates best with column 2 (source 1)
    with pytest.raises(ParameterError, match="clusters add up"):
        S.assign_by_motion(A, [1, 1])


def test_errors(duet):
    ref, motion, fps = duet
    with pytest.raises(ParameterError, match="non-negative"):
        S.motion_nmf(-np.ones((4, 4)), None, 2)
    with pytest.raises(ParameterError, match="motion_fps"):
        S.separate(ref.sum(0), SR, motion=motion)
    with pytest.raises(ParameterError, match="silent"):
        S.evaluate(np.zeros((2, 100)), np.ones((2, 100)))


def test_separate_command_with_speed_matrix(tmp_path, duet, capsys):
    import soundfile as sf

    from musicperf.cli import main

    ref, motion, fps = duet
    sf.write(tmp_path / "mix.wav", ref.sum(0).astype(np.float32), SR)
    for j in range(2):
        sf.write(tmp_path / f"ref{j}.wav", ref[j].astype(np.float32), SR)
    np.save(tmp_path / "motion.npy", motion)
    rc = main(["separate", str(tmp_path / "mix.wav"), "--motion", str(tmp_path / "motion.npy"), "--motion-fps", "25",
               "--sr", str(SR), "--components", "8", "--iterations", "80", "-o", str(tmp_path / "out"), "--json",
               "--reference", str(tmp_path / "ref0.wav"), str(tmp_path / "ref1.wav")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "motion-nmf" and len(out["sources"]) == 2
    assert out["metrics"]["sdr_mean"] > 8.0
    assert main(["separate", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "o2")]) == 2


def test_playing_gates_a_resting_players_idle_motion(duet):
    """Player 2 moves as much while silent (idle) as while playing: the motion no longer tells
    when it sounds. Gating its motion by its playing/non-playing restores the separation."""
    ref, motion, fps = duet
    T = len(motion)
    tv = np.arange(T) / fps
    on = np.stack([(np.floor(tv / 0.5) % 2 == 0) | (tv > 3.0), np.floor(tv / 0.7) % 2 == 1], 1)
    idle = motion.copy()
    idle[~on[:, 1], 1] = 2.0 + 0.3 * np.sin(2 * np.pi * 0.7 * tv[~on[:, 1]])
    kw = dict(motion_fps=fps, n_components=8, n_iter=80, n_fft=512, hop_length=128)
    plain = S.evaluate(ref, S.separate(ref.sum(0), SR, motion=idle, **kw).sources)["sdr_mean"]
    gated = S.evaluate(ref, S.separate(ref.sum(0), SR, motion=idle, playing=on, **kw).sources)["sdr_mean"]
    assert gated > 8.0 and gated > plain + 2.0, (plain, gated)
    with pytest.raises(ParameterError, match="playing must have shape"):
        S.separate(ref.sum(0), SR, motion=idle, playing=on[:, :1], **kw)


def test_playing_gates_the_even_restarts_and_leaves_the_odd_ones_as_measured(duet):
    """A wrong playing estimate (a player called resting while playing) weighs half: restarts
    seed, seed + 2, ... factorise the gated motion, seed + 1, ... the motion as measured."""
    ref, motion, fps = duet
    y = ref.sum(0)
    pl = np.ones((len(motion), 2), bool)
    pl[:30, 0] = False
    kw = dict(n_components=8, n_iter=30, n_fft=512, hop_length=128)
    res = S.separate(y, SR, motion=motion, motion_fps=fps, playing=pl, restarts=2, seed=3, **kw)
    X, times = S.stft_mag(y, SR, n_fft=512, hop_length=128)
    gated = np.where(pl, motion, 0.01 * motion.mean(0, keepdims=True))
    masks = []
    for seed, m in ((3, gated), (4, motion)):
        M = S.resample_motion(m, fps, times)
        nmf = S.motion_nmf(np.abs(X), M, 8, n_iter=30, seed=seed)
        masks.append(S.source_masks(nmf.W, nmf.H, S.assign_by_motion(nmf.A, [1, 1], nmf.H, M / M.mean(0)), 2))
    want = np.stack([S._istft(X * np.mean(masks, 0)[j], SR, len(y), n_fft=512, hop_length=128) for j in range(2)])
    np.testing.assert_allclose(res.sources, want, atol=1e-9)
    # one restart: gated only
    one = S.separate(y, SR, motion=motion, motion_fps=fps, playing=pl, restarts=1, seed=3, **kw)
    want1 = np.stack([S._istft(X * masks[0][j], SR, len(y), n_fft=512, hop_length=128) for j in range(2)])
    np.testing.assert_allclose(one.sources, want1, atol=1e-9)


def test_separate_command_with_playing_file(tmp_path, duet, capsys):
    import soundfile as sf

    from musicperf.cli import main

    ref, motion, fps = duet
    sf.write(tmp_path / "mix.wav", ref.sum(0).astype(np.float32), SR)
    for j in range(2):
        sf.write(tmp_path / f"ref{j}.wav", ref[j].astype(np.float32), SR)
    idle = motion.copy()
    tv = np.arange(len(motion)) / fps
    off2 = ~(np.floor(tv / 0.7) % 2 == 1)
    idle[off2, 1] = 2.0  # player 2 moves while silent
    np.save(tmp_path / "motion.npy", idle)
    spans = [[round(a, 2), round(min(a + 0.7, 4.0), 2)] for a in np.arange(0.7, 4.0, 1.4)]
    (tmp_path / "p.json").write_text(json.dumps({"performers": {
        "performer1": {"playing": [[0.0, 4.0]]}, "performer2": {"playing": spans}}}))
    args = ["separate", str(tmp_path / "mix.wav"), "--motion", str(tmp_path / "motion.npy"), "--motion-fps", "25",
            "--sr", str(SR), "--components", "8", "--iterations", "80", "--json",
            "--reference", str(tmp_path / "ref0.wav"), str(tmp_path / "ref1.wav")]
    assert main(args + ["-o", str(tmp_path / "a")]) == 0
    plain = json.loads(capsys.readouterr().out)["metrics"]["sdr_mean"]
    assert main(args + ["-o", str(tmp_path / "b"), "--playing", str(tmp_path / "p.json")]) == 0
    gated = json.loads(capsys.readouterr().out)["metrics"]["sdr_mean"]
    assert gated > plain + 2.0, (plain, gated)
    (tmp_path / "bad.json").write_text("{}")
    assert main(args + ["-o", str(tmp_path / "c"), "--playing", str(tmp_path / "bad.json")]) == 2


def test_restarts_average_the_masks_of_several_factorisations(duet):
    ref, motion, fps = duet
    y = ref.sum(0)
    kw = dict(n_components=8, n_iter=40, n_fft=512, hop_length=128)
    res = S.separate(y, SR, motion=motion, motion_fps=fps, restarts=3, seed=4, **kw)
    # by hand: the masks of seeds 4, 5, 6, averaged, applied to the mixture's STFT
    X, times = S.stft_mag(y, SR, n_fft=512, hop_length=128)
    M = S.resample_motion(motion, fps, times)
    Ms = M / M.mean(0, keepdims=True)
    masks = []
    for seed in (4, 5, 6):
        nmf = S.motion_nmf(np.abs(X), M, 8, n_iter=40, seed=seed)
        masks.append(S.source_masks(nmf.W, nmf.H, S.assign_by_motion(nmf.A, [1, 1], nmf.H, Ms), 2))
    want = np.stack([S._istft(X * np.mean(masks, 0)[j], SR, len(y), n_fft=512, hop_length=128) for j in range(2)])
    assert np.allclose(res.sources, want, atol=1e-9)
    assert np.allclose(res.nmf.W, S.motion_nmf(np.abs(X), M, 8, n_iter=40, seed=4).W)  # the first run is kept
    one = S.separate(y, SR, motion=motion, motion_fps=fps, restarts=1, seed=4, **kw)
    assert not np.allclose(one.sources, res.sources)
    with pytest.raises(ParameterError, match="restarts"):
        S.separate(y, SR, motion=motion, motion_fps=fps, restarts=0, **kw)
    # the audio-only baseline's runs are put in one source order before averaging
    base = S.separate(y, SR, n_sources=2, restarts=3, **kw)
    assert S.evaluate(ref, base.sources, permute=True)["sdr_mean"] > 8.0


def test_align_masks_undoes_a_permutation(rng):
    a = rng.uniform(0, 1, (3, 6, 5))
    a /= a.sum(0, keepdims=True)
    assert np.array_equal(S.align_masks(a, a[[2, 0, 1]]), a)
    w = rng.uniform(0, 1, (6, 5))
    assert np.array_equal(S.align_masks(a, a[[1, 0, 2]], w), a)


def test_separate_command_playing_auto_on_a_video(tmp_path, capsys):
    from musicperf.cli import main
    from musicperf.synth import synthesize

    d = tmp_path / "duet"
    synthesize(d, seconds=4, seed=3, performers=2, instrument=["violin", "guitar"], size=(160, 120),
               rests=[[(1.0, 2.6)], []], motion_dynamics=True)
    video = d / "performance.mp4"
    args = ["separate", str(video), "--motion", str(video), "--regions", "halves", "--components", "8",
            "--iterations", "30", "--restarts", "2", "--json",
            "--reference", str(d / "stems" / "performer1.wav"), str(d / "stems" / "performer2.wav")]
    assert main(args + ["-o", str(tmp_path / "a"), "--playing", "auto"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["sources"]) == 2 and np.isfinite(out["metrics"]["sdr_mean"])
    assert main(args + ["-o", str(tmp_path / "g"), "--playing", "auto", "--grid", "2"]) == 0
    capsys.readouterr()
    np.save(tmp_path / "m.npy", np.ones((100, 2)))
    assert main(["separate", str(video), "--motion", str(tmp_path / "m.npy"), "--motion-fps", "25", "--playing",
                 "auto", "-o", str(tmp_path / "b")]) == 2
    assert "needs --motion to be a video" in capsys.readouterr().err


@pytest.fixture(scope="module")
def mixed_duet():
    """A bright string-like source whose player's motion follows its loudness, and a soft flute-like
    source (two partials) whose player's motion is unrelated to the sound; different registers."""
    rng = np.random.default_rng(11)
    seconds, fps = 6.0, 25.0
    t = np.arange(int(seconds * SR)) / SR
    tv = np.arange(int(seconds * fps)) / fps
    bow = np.abs(np.sin(2 * np.pi * tv / 1.3)) * (np.floor(tv / 0.9) % 3 != 2)  # bow speed, with stops
    on2 = (np.floor(tv / 0.6) % 3 != 0).astype(float)
    f1 = np.where(t < 3, 196.0, 233.0)
    s1 = 0.4 * np.interp(t, tv, bow) * sum(np.sin(2 * np.pi * f1 * k * t) * 0.9 ** k for k in range(1, 11))
    f2 = np.where((t % 2) < 1, 587.0, 659.0)
    s2 = 0.3 * np.interp(t, tv, on2) * (np.sin(2 * np.pi * f2 * t) + 0.2 * np.sin(4 * np.pi * f2 * t))
    motion = np.stack([2.0 * bow, rng.uniform(0.5, 1.5, len(tv))], 1)
    return np.stack([s1, s2]), motion, fps


def test_name_by_motion_orders_clusters_by_the_motion_driven_player():
    rng = np.random.default_rng(0)
    N, F = 200, 6
    loud = rng.uniform(0.1, 1, N)
    V = np.ones((F, N))
    masks = np.stack([np.tile(1 - 0.9 * loud / loud.max(), (F, 1)), np.tile(0.9 * loud / loud.max(), (F, 1))])
    motion = np.stack([loud * 3, rng.uniform(size=N)], 1)
    order, margin = S.name_by_motion(masks, V, motion, [True, False])
    assert order == [1, 0] and margin > 0.5  # cluster 1 follows player 0's motion
    order, margin = S.name_by_motion(masks[::-1], V, motion, [True, False])
    assert order == [0, 1] and margin > 0.5
    # a motion unrelated to both clusters cannot name them
    _o, margin = S.name_by_motion(masks, V, np.stack([rng.uniform(size=N), rng.uniform(size=N)], 1), [True, False])
    assert margin < 0.3


def test_instruments_use_timbre_clusters_named_by_motion(mixed_duet):
    src, motion, fps = mixed_duet
    y = src.sum(0)
    kw = dict(motion=motion, motion_fps=fps, n_components=20, n_iter=100, restarts=2)
    res = S.separate(y, SR, instruments=["violin", "flute"], **kw)
    assert res.method == "timbre+motion" and res.naming_margin >= 0.1
    e = S.evaluate(src, res.sources)
    assert e["sdr_mean"] > 6 and e["sdr_mean"] >= S.evaluate(src, res.sources, permute=True)["sdr_mean"] - 1e-9
    # players given the other way round: the sources follow them
    swapped = S.separate(y, SR, **dict(kw, motion=motion[:, ::-1]), instruments=["flute", "violin"])
    assert swapped.method == "timbre+motion"
    np.testing.assert_allclose(swapped.sources, res.sources[::-1], atol=1e-9)
    # all strings, or the same instrument twice: Equation 2 as without instruments
    for inst in (["violin", "guitar"], ["flute", "flute"]):
        r = S.separate(y, SR, instruments=inst, **kw)
        assert r.method == "motion" and r.naming_margin is None
        np.testing.assert_allclose(r.sources, S.separate(y, SR, **kw).sources)
    # motion that cannot tell the clusters apart: Equation 2 after all
    noise = np.random.default_rng(3).uniform(0.5, 1.5, motion.shape)
    r = S.separate(y, SR, **dict(kw, motion=noise), instruments=["violin", "flute"], min_margin=0.5)
    assert r.method == "motion" and r.naming_margin < 0.5
    # by default the sign of the evidence names them; a violinist whose motion never changes gives none
    r = S.separate(y, SR, **dict(kw, motion=noise), instruments=["violin", "flute"])
    assert r.method == "timbre+motion" and 0 < r.naming_margin < 0.5
    still = motion.copy()
    still[:, 0] = 1.0
    r = S.separate(y, SR, **dict(kw, motion=still), instruments=["violin", "flute"])
    assert r.method == "motion" and r.naming_margin == 0
    with pytest.raises(ParameterError, match="instruments"):
        S.separate(y, SR, instruments=["violin"], **kw)


def test_separate_command_instruments(tmp_path, mixed_duet, capsys):
    import soundfile as sf

    from musicperf.cli import main

    src, motion, fps = mixed_duet
    mix = tmp_path / "mix.wav"
    sf.write(mix, src.sum(0), SR)
    np.save(tmp_path / "m.npy", motion)
    refs = []
    for j in range(2):
        refs.append(str(tmp_path / f"ref{j}.wav"))
        sf.write(refs[-1], src[j], SR)
    rc = main(["separate", str(mix), "--motion", str(tmp_path / "m.npy"), "--motion-fps", str(fps), "--sr", str(SR),
               "--instruments", "violin,flute", "--restarts", "2", "--components", "20", "-o", str(tmp_path / "out"),
               "--reference", *refs, "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "timbre-nmf-named-by-motion" and out["naming_margin"] >= 0.1
    assert out["metrics"]["sdr_mean"] > 6
    assert main(["separate", str(mix), "--motion", str(tmp_path / "m.npy"), "--motion-fps", str(fps),
                 "--instruments", "violin", "-o", str(tmp_path / "out")]) == 2
    assert "1 instruments for 2 players" in capsys.readouterr().err
