"""Figures for docs/analyses.md (Measured, Duets): playing/non-playing, motion-informed
separation and player-to-track association on synthetic duets in which one player rests (002 IV-B,
V-A, VI-B).

    .venv/bin/python benchmarks/bench_duets.py [--quick] [--rest idle,freeze] [--seeds 1,2,3]
                                               [--only playing,figure2,separation,association]
                                               [--motion-dynamics] [--restarts 5]
                                               [--write-docs [PAGE]]

Each duet is 10 s at 320x240, 25 fps, no scheduled gestures; one of the two players rests once for
2.5-3.5 s at a random time. ``--motion-dynamics`` renders them with the synth's option of that name
(sound follows the bow, strum or strike speed: 002 VI-B's assumption). ``--rest idle`` (the
realistic case): the synth's rest option (silent, but the bow, strumming hand or flute is
lowered, hands drift and fidget, the head turns to the partner); ``--rest freeze``: the rest is a
Freeze (still and silent), the earlier benchmark. Both run by default. Pairs: violin+violin, violin+guitar, guitar+guitar, violin+flute, piano+violin,
guitar+flute. Per duet:

* playing / non-playing frame accuracy over both players, and the share of the rest's frames
  found non-playing: ``playing_audio_visual`` with ``rest_postures`` (what ``musicperf playing``
  runs), ``playing_audio_visual`` alone, ``playing_from_motion`` with the mixture and without
  audio, the constant predictor (the majority class of the duet), the Figure 2 pipeline with a
  simulated annotator (dominance 0.5): accuracy on the frames it covers and the coverage, with the
  MediaPipe face detector and with the Haar cascade;
* separation: SDR / SIR / SAR (BSS Eval v3) of ``separate(..., instruments=pair)`` with the estimated
  playing/non-playing (Equation 2 for string pairs; the timbre clusters named by the string
  player's motion for a pair with a flute or piano), the motion-informed NMF (Equation 2), the same with
  the motion of a non-playing player gated out (``separate(playing=...)``, with the estimated and
  with the true playing/non-playing), and of the audio-only NMF baseline (scored in its best
  source order, an oracle the motion methods do not get), 16 kHz, 30 bases, 100 iterations, the
  masks of ``--restarts`` factorisations averaged (default 5, as ``separate``), and with one run;
* association: players matched to the stems (audio onsets) and to the score parts (note onsets),
  in a shuffled order.

Regions are the right hand's box over the video (truth key points, 20 % margin), what a user or a
hand tracker gives. Prints Markdown tables. One thread per library on a shared machine.

``--write-docs`` also writes the tables into a block of docs/analyses.md named after the run
(:func:`docs_block_name`): ``<!-- figures:duets-separation-dynamics-seeds-1-2 -->`` for
``--seeds 1,2 --only separation --motion-dynamics``, ``duets-playing+figure2+association-plain-seeds-1-2``
for ``--only playing,figure2,association``; ``-idle`` or ``-freeze`` is appended when ``--rest``
names one. The block must exist (``benchmarks/docs_blocks.py``; checked before the run starts).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

import docs_blocks  # noqa: E402

DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "analyses.md"

PAIRS = [("violin", "violin"), ("violin", "guitar"), ("guitar", "guitar"), ("violin", "flute"),
         ("piano", "violin"), ("guitar", "flute")]


def make_duet(seed: int, k: int, pair, rest: str, seconds: float = 10.0, motion_dynamics: bool = False):
    """Render duet number ``k`` of ``seed``: one player rests once (idle or freeze)."""
    from musicperf.synth import load_truth, render

    rng = np.random.default_rng(seed * 10 + k)
    who = int(rng.integers(0, 2))
    s0 = float(rng.uniform(1.5, seconds - 4.5))
    iv = (round(s0, 2), round(s0 + float(rng.uniform(2.5, 3.5)), 2))
    sched = [{}, {}]
    rests = None
    if rest == "freeze":
        sched[who] = {"Freeze": [iv]}
    else:
        rests = [[], []]
        rests[who] = [iv]
    r = render(seconds=seconds, seed=seed * 7 + k, instrument=list(pair), performers=2, size=(320, 240),
               schedule=sched, rests=rests, motion_dynamics=motion_dynamics)
    return r, load_truth(r.truth), rng


def run_duet(r, tr, rng, parts, sr=16000, n_components=30, n_iter=100, restarts=5) -> dict:
    import librosa

    from musicperf.analysis import association as AS
    from musicperf.analysis import playing as PL
    from musicperf.analysis import separation as S
    from musicperf.analysis.motion import keypoint_region, region_motion

    frames = list(r.frames())
    T = len(frames)
    regions = [keypoint_region(p["keypoints"]["right_hand"]["full"], margin=0.2) for p in tr["performers"]]
    m = region_motion(frames, regions, fps=r.fps, compensate=True)
    truth = np.stack([PL.mask_from_intervals(p["play"], r.fps, T) for p in tr["performers"]], 1)
    out: dict = {}
    if {"playing", "separation", "association"} & set(parts):
        # the audio-visual cues alone, and the decision `musicperf playing` makes (those cues, then
        # resting postures), once for all parts
        av = PL.playing_audio_visual(m.velocity, r.fps, y=r.audio, sr=r.sr, speed=m.speed)
        decision = PL.playing_decision(m.velocity, r.fps, y=r.audio, sr=r.sr, speed=m.speed,
                                       thumbs=PL.region_thumbnails(frames, regions))
    if "playing" in parts:
        rms = PL.frame_rms(r.audio, r.sr, r.fps, T)
        # the rest itself (idle rest or freeze), where the resting player must be found not playing
        rest = np.stack([PL.mask_from_intervals(p.get("rests") or p["gestures"]["Freeze"], r.fps, T)
                         for p in tr["performers"]], 1)
        preds = dict(motion_only=PL.playing_from_motion(m.speed, r.fps),
                     mixture=PL.playing_from_motion(m.speed, r.fps, audio_rms=rms), av=av, posture=decision)
        for k, pred in preds.items():
            out[f"play_{k}"] = PL.accuracy(pred, truth)
            out[f"rest_{k}"] = float(np.mean(~pred[rest]))
        out["play_const"] = float(max(truth.mean(), 1 - truth.mean()))
    if "figure2" in parts:
        for det in ("mediapipe", "haar"):
            obs = PL.ensemble_observations(frames, fps=r.fps, step=0.5,
                                           faces=lambda f, det=det: PL.detect_faces(f, method=det))
            cov, acc, two = 0.0, float("nan"), 0.0
            if len(obs) >= 4:
                n = PL.cluster_musicians(obs, 2)
                PL.sub_cluster(obs, 4)
                lab = PL.simulate_annotator(obs, lambda o: truth[min(int(round(o.time * r.fps)), T - 1), o.musician])
                tl = PL.ensemble_timeline(obs, lab, T, r.fps, n)
                known = tl >= 0
                cov = float(known.mean())
                acc = float(np.mean((tl == truth)[known])) if known.any() else float("nan")
                keys = {}
                for o in obs:
                    keys.setdefault(o.time, set()).add(o.musician)
                two = float(np.mean([len(v) == 2 for v in keys.values()]))
            n_key = len(range(0, T - 1, int(round(0.5 * r.fps))))
            out[f"fig2_{det}"] = (acc, cov, two * len({o.time for o in obs}) / max(n_key, 1))
    if "separation" in parts:
        y = librosa.resample(r.audio, orig_sr=r.sr, target_sr=sr)
        ref = np.stack([librosa.resample(s, orig_sr=r.sr, target_sr=sr) for s in r.stems])
        kw = dict(n_components=n_components, n_iter=n_iter)
        # motion-informed (Equation 2): ungated, gated by the estimated playing/non-playing (what
        # `musicperf separate --playing auto` runs), gated by the true one (a Figure 2 timeline a
        # person labelled, at best); each with `restarts` averaged factorisations, and the paper's
        # single run for the ungated and the estimated-gated model
        # h: what `musicperf separate --playing auto --instruments ...` runs (Equation 2, or the timbre
        # clusters named by the string players' motion when a flute or piano plays with a string)
        runs = dict(h=dict(playing=decision, instruments=[p["instrument"] for p in tr["performers"]]),
                    m=dict(), g=dict(playing=decision), t=dict(playing=truth))
        for key, extra in runs.items():
            res = S.separate(y, sr, motion=m.speed, motion_fps=r.fps, restarts=restarts, **extra, **kw)
            e = S.evaluate(ref, res.sources)
            out.update({f"sdr_{key}": e["sdr_mean"], f"sir_{key}": e["sir_mean"], f"sar_{key}": e["sar_mean"]})
            if key == "h":
                out["timbre_h"] = res.method == "timbre+motion"
            if key == "m":
                # the same oracle order as the baseline: separation quality alone
                ep = S.evaluate(ref, res.sources, permute=True)
                out.update(sdr_mp=ep["sdr_mean"], swapped_m=ep["permutation"] != list(range(len(ep["permutation"]))))
        for key, extra in (("m1", dict()), ("g1", dict(playing=decision))):
            res = S.separate(y, sr, motion=m.speed, motion_fps=r.fps, restarts=1, **extra, **kw)
            out[f"sdr_{key}"] = S.evaluate(ref, res.sources)["sdr_mean"]
        # the audio-only baseline, scored in its best source order (an oracle the motion methods do
        # not get), with the same restarts and with one run
        eb = S.evaluate(ref, S.separate(y, sr, n_sources=2, restarts=restarts, **kw).sources, permute=True)
        out.update(sdr_b=eb["sdr_mean"], sir_b=eb["sir_mean"], sar_b=eb["sar_mean"])
        out["sdr_b1"] = S.evaluate(ref, S.separate(y, sr, n_sources=2, restarts=1, **kw).sources,
                                   permute=True)["sdr_mean"]
    if "association" in parts:
        order = [1, 0] if rng.random() < 0.5 else [0, 1]
        tracks = np.stack([AS.audio_onset_strength(r.stems[k], r.sr, r.fps, T) for k in order], 1)
        notes = np.stack([AS.onsets_to_envelope([n["onset"] for n in tr["performers"][k]["notes"]], r.fps, T)
                          for k in order], 1)
        mo = AS.motion_onset_strength(m.velocity)
        want = [order.index(0), order.index(1)]
        out["assoc_audio"] = AS.associate(mo, tracks).track_of_player == want
        out["assoc_score"] = AS.associate(mo, notes).track_of_player == want
        out["assoc_audio_pl"] = AS.associate(mo, tracks, playing=av).track_of_player == want
        out["assoc_score_pl"] = AS.associate(mo, notes, playing=av).track_of_player == want
        # margin of the right assignment: its summed correlation minus the swapped one's
        for key, tr_ in (("audio", tracks), ("score", notes)):
            for sfx, kw in (("", {}), ("_pl", {"playing": av})):
                C = AS.association_matrix(mo, tr_, **kw)
                out[f"margin_{key}{sfx}"] = float(C[0, want[0]] + C[1, want[1]] - C[0, want[1]] - C[1, want[0]])
    return out


def bench(seeds, rest, parts, pairs=PAIRS, motion_dynamics=False, restarts=5):
    rows = []
    t0 = time.time()
    for seed in seeds:
        for k, pair in enumerate(pairs):
            r, tr, rng = make_duet(seed, k, pair, rest, motion_dynamics=motion_dynamics)
            row = dict(pair="+".join(pair), seed=seed, **run_duet(r, tr, rng, parts, restarts=restarts))
            rows.append(row)
            brief = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                              if k not in ("pair", "seed") and not isinstance(v, tuple))
            print(f"  [{rest}] {row['pair']:14s} seed {seed}: {brief}", flush=True)
    return rows, time.time() - t0


def _groups(rows):
    for pair in [p for p in dict.fromkeys(r["pair"] for r in rows)] + ["all"]:
        yield pair, [r for r in rows if pair in ("all", r["pair"])]


def print_tables(rows, secs, rest, parts):
    n = len(rows)
    print(f"\n### Duets with {'idle' if rest == 'idle' else 'freeze'} rests ({n} duets of 10 s; {secs:.0f} s)\n")
    if "separation" in parts:
        print("| pair | n | **with instruments** (`separate --playing auto --instruments`; timbre named by motion "
              "in k duets) | Eq. 2 + estimated P/NP (`separate --playing auto`) | Eq. 2 | Eq. 2 + true P/NP | "
              "**audio-only NMF** (best order) | Eq. 2 + estimated P/NP, one run | Eq. 2, one run | audio-only, one run "
              "(best order) | Eq. 2 in best order (sources swapped) | SIR / SAR: Eq. 2 + est. P/NP, audio-only | "
              "wins over audio-only: with instruments, Eq. 2 + est. P/NP, Eq. 2 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for pair, g in _groups(rows):
            def mean(k, g=g):
                return float(np.mean([r[k] for r in g]))
            wins_g = sum(r["sdr_g"] > r["sdr_b"] for r in g)
            wins = sum(r["sdr_m"] > r["sdr_b"] for r in g)
            wins_h = sum(r["sdr_h"] > r["sdr_b"] for r in g)
            print(f"| {pair} | {len(g)} | **{mean('sdr_h'):.2f} dB** ({sum(r['timbre_h'] for r in g)}) | "
                  f"{mean('sdr_g'):.2f} dB | {mean('sdr_m'):.2f} dB | {mean('sdr_t'):.2f} dB | "
                  f"**{mean('sdr_b'):.2f} dB** | {mean('sdr_g1'):.2f} dB | {mean('sdr_m1'):.2f} dB | {mean('sdr_b1'):.2f} dB | "
                  f"{mean('sdr_mp'):.2f} dB ({sum(r['swapped_m'] for r in g)}/{len(g)}) | "
                  f"{mean('sir_g'):.2f} / {mean('sar_g'):.2f}, {mean('sir_b'):.2f} / {mean('sar_b'):.2f} dB | "
                  f"{wins_h}/{len(g)}, {wins_g}/{len(g)}, {wins}/{len(g)} |")
        print()
    head, cols = ["pair"], []
    if "playing" in parts:
        head += ["playing accuracy (rest frames found non-playing): audio-visual + resting posture",
                 "audio-visual (mixture + stillness)",
                 "motion + mixture", "motion only", "constant predictor"]
        for k in ("posture", "av", "mixture", "motion_only"):
            cols.append(lambda g, k=k: f"{np.mean([r['play_' + k] for r in g]):.3f} "
                                       f"({np.mean([r['rest_' + k] for r in g]):.2f})")
        cols.append(lambda g: f"{np.mean([r['play_const'] for r in g]):.3f}")
    if "figure2" in parts:
        for det in ("mediapipe", "haar"):
            head.append(f"Figure 2, {det} faces: accuracy (coverage; key frames with both faces)")

            def cell(g, det=det):
                acc = [r[f"fig2_{det}"][0] for r in g if np.isfinite(r[f"fig2_{det}"][0])]
                return (f"{(np.mean(acc) if acc else float('nan')):.3f} ({np.mean([r[f'fig2_{det}'][1] for r in g]):.2f}; "
                        f"{np.mean([r[f'fig2_{det}'][2] for r in g]):.2f})")
            cols.append(cell)
    if "association" in parts:
        head += ["association from stems (margin)", "from stems, playing frames only", "from score parts",
                 "from score parts, playing frames only"]
        for key in ("audio", "audio_pl", "score", "score_pl"):
            mk = "margin_" + key
            cols.append(lambda g, key=key, mk=mk: f"{sum(r['assoc_' + key] for r in g)}/{len(g)} "
                                                  f"({np.mean([r[mk] for r in g]):.2f})")
    if cols:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for pair, g in _groups(rows):
            print("| " + " | ".join([pair] + [c(g) for c in cols]) + " |")


def docs_block_name(parts, seeds, rests, motion_dynamics: bool) -> str:
    """The docs block a run writes: what it measured, the synth, the seeds, the rest if only one."""
    name = f"duets-{'+'.join(parts)}-{'dynamics' if motion_dynamics else 'plain'}-seeds-{'-'.join(map(str, seeds))}"
    return name + (f"-{rests[0]}" if len(rests) == 1 else "")


def docs_text(printed: str) -> str:
    """What :func:`print_tables` printed, as a docs block: headings in italics (the page has its own)."""
    return "\n".join(f"*{ln[4:]}*" if ln.startswith("### ") else ln for ln in printed.strip("\n").splitlines())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one seed")
    ap.add_argument("--seeds", help="comma-separated seeds (default 1,2)")
    ap.add_argument("--rest", default="idle,freeze", help="idle, freeze or both (default both)")
    ap.add_argument("--only", default="playing,figure2,separation,association")
    ap.add_argument("--motion-dynamics", action="store_true",
                    help="render with the synth's motion_dynamics (loudness follows the bow/strum/strike speed)")
    ap.add_argument("--restarts", type=int, default=5, help="averaged factorisations per separation (default 5)")
    docs_blocks.add_write_docs_option(ap, DOCS_PAGE)
    a = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    parts = a.only.split(",")
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else ([1] if a.quick else [1, 2])
    rests = a.rest.split(",")
    block = docs_block_name(parts, seeds, rests, a.motion_dynamics)
    if a.write_docs:
        try:
            docs_blocks.check_block(a.write_docs, block)  # fail now, not after the run
        except docs_blocks.DocsBlockError as exc:
            docs_blocks.fail(exc)
    printed = []
    for rest in rests:
        rows, secs = bench(seeds, rest, parts, motion_dynamics=a.motion_dynamics, restarts=a.restarts)
        with docs_blocks.captured_stdout() as out:
            print_tables(rows, secs, rest, parts)
        printed.append(docs_text(out.getvalue()))
    if a.write_docs:
        docs_blocks.write_figures(a.write_docs, block, "\n\n".join(printed), command=docs_blocks.command_line(__file__))


if __name__ == "__main__":
    main()
