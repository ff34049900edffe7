"""Figures for docs/vibrato.md: frame-wise vibrato detection on real recordings and on the synthetic performer.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_vibrato_real.py [--data DIR] [--compare-pitch] [--loo]
        [--alternatives] [--quick]

* Real: the 12 solo recordings (violin, flute, oboe; CMMSD of von Coler and Lerch 2014) with the
  vibrato areas annotated by Yang, Rajab and Chew (2017) in ``../shared/data/vibrato`` (or
  ``--data``; ``NAME.wav`` beside ``NAME-Annotation.csv``: one area per row, start s, pitch
  Hz, duration s; empty: no vibrato). The detector's thresholds were set on the development
  split (9 recordings); the validation split, held out while choosing them, is the last
  recording of each instrument in alphabetical order (Flute_Telemann_Zucker,
  Oboe_Telemann_Verveka, Violin_Telemann_Podger). Per recording: frame precision, recall and F1
  at 100 Hz against the annotation, and the F1 of "always vibrato" (every frame positive); the
  recording without vibrato has no F1 and is reported by its false-positive share of frames.
  The annotation has no rate or extent: the table gives our median rate and extent inside the
  annotated areas, and the median pitch error there against the annotated pitch (cents).
* Speed: ``analyze_media`` on 60 s of audio (recordings joined), the whole audio path (decode,
  pitch, notes, frame-wise detector), after a warm-up (librosa's numba compilation, ~17 s once).
* Synthetic: violin solos of the synthetic performer with scheduled vibrato notes (seeds
  400-403), frame F1 against the scheduled intervals, and rate/extent errors against the truth.
* ``--loo``: a leave-one-recording-out (= leave-one-performer-out: each recording has its own
  performer) estimate of choosing the thresholds on a grid (what a new recording of the same
  kind can expect), per recording and mean, and a leave-one-instrument-out one.
* ``--alternatives`` (implies the LOO run): the ideas tried to generalise better, each by leave
  one recording out: a learned frame classifier (logistic regression on 25 per-frame features,
  numpy/scipy, nested choice of its decision threshold and smoothing), detections expanded to
  note boundaries, a per-recording extent threshold, areas widened by 50 ms, against one
  setting and against the shipped vote. None beat one setting beyond noise; none ships.
* ``--write-ensemble JSON``: choose the shipped vote's settings on all recordings and write them
  (``src/musicperf/data/vibrato_ensemble.json``).
* ``--compare-pitch``: the detector on other pitch tracks: pYIN on its default 0.1-semitone grid
  (7x slower) and PESTO (``pesto-pitch``, weights in its wheel) where it can be imported.
* ``--write-docs [PAGE]`` (with ``--loo`` or ``--alternatives``): also write the leave-one-recording-out
  table of the shipped vote into the block ``vibrato-real-loo-vote`` of docs/vibrato.md
  (``benchmarks/docs_blocks.py``, under a line naming the command, the machine and the time);
  ``make figures FIGURES_ARGS=vibrato-real-loo-vote`` runs ``--quick --loo --write-docs``.

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:  # also when imported by the tests
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_blocks  # noqa: E402

VALIDATION = ("Flute_Telemann_Zucker", "Oboe_Telemann_Verveka", "Violin_Telemann_Podger")
DEFAULT_DATA = Path(os.environ.get("MUSICPERF_SHARED_DATA",
                                   Path(__file__).resolve().parents[2] / "shared" / "data")) / "vibrato"
DOCS_PAGE = docs_blocks.ROOT / "docs" / "vibrato.md"
DOCS_BLOCK = "vibrato-real-loo-vote"
VOTE_HEADING = "### Leave one recording out: majority vote"


def read_annotation(path: Path) -> list[tuple[float, float, float]]:
    """``(start, end, pitch_hz)`` of every annotated vibrato area (empty file: none)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            v = [float(x) for x in line.split(",")[:3]]
            out.append((v[0], v[0] + v[2], v[1]))
    return out


def frame_scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f = 2 * tp / (2 * tp + fp + fn) if truth.any() else float("nan")
    return dict(precision=p, recall=r, f1=f, tp=tp, fp=fp, fn=fn)


def pitch_track(y: np.ndarray, sr: int, source: str):
    """``(times, cents)`` of a pitch tracker: 'pyin' (the command's), 'pyin-0.1' or 'pesto'."""
    from musicperf.analysis.pitch import estimate_pitch
    from musicperf.analysis.vibrato import PITCH_HOP, PITCH_RESOLUTION

    if source in ("pyin", "pyin-0.1"):
        res = PITCH_RESOLUTION if source == "pyin" else 0.1
        p = estimate_pitch(y, sr, hop_length=PITCH_HOP, resolution=res)
        return p.times, 100.0 * p.midi
    import pesto
    import torch

    t, f0, conf, _ = pesto.predict(torch.tensor(y, dtype=torch.float32), sr, step_size=10.0)
    f0 = f0.numpy().astype(float)
    f0[conf.numpy() < 0.5] = np.nan  # PESTO's confidence as voicing
    t = t.numpy() / 1000.0 if float(t.max()) > len(y) / sr + 1 else t.numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return t, 1200.0 * np.log2(f0 / 440.0) + 6900.0


def evaluate_recording(wav: Path, source: str = "pyin") -> dict:
    from musicperf.analysis.vibrato_frames import detect_vibrato, frame_labels
    from musicperf.io.audio import load_audio

    y, sr = load_audio(wav, sr=22050)
    dur = len(y) / sr
    t0 = time.perf_counter()
    times, cents = pitch_track(y, sr, source)
    trk = detect_vibrato(times, cents)
    seconds = time.perf_counter() - t0
    ann = read_annotation(wav.with_name(wav.stem + "-Annotation.csv"))
    truth = frame_labels([(a, b) for a, b, _ in ann], dur)
    grid = np.arange(len(truth)) / 100.0
    idx = np.clip(np.searchsorted(times, grid), 0, len(times) - 1)
    pred = trk.vibrato[idx]
    sc = frame_scores(pred, truth)
    share = truth.mean()
    sc["always_f1"] = 2 * share / (1 + share) if truth.any() else float("nan")
    sc["fp_share"] = float(pred.mean()) if not truth.any() else float("nan")
    inside = truth & np.isfinite(trk.rate[idx])
    sc["rate_in_areas"] = float(np.nanmedian(trk.rate[idx][inside])) if inside.any() else float("nan")
    sc["extent_in_areas"] = float(np.nanmedian(trk.extent[idx][inside])) if inside.any() else float("nan")
    errs = []
    for a, b, hz in ann:
        m = (times >= a) & (times < b) & np.isfinite(cents)
        if m.any():
            errs.append(abs(float(np.median(cents[m])) - (1200 * np.log2(hz / 440.0) + 6900.0)))
    sc["pitch_err"] = float(np.median(errs)) if errs else float("nan")
    sc["areas"] = len(ann)
    sc["seconds"] = seconds
    sc["duration"] = dur
    return sc


def _fmt(v, d=2):
    return "-" if v is None or not np.isfinite(v) else f"{v:.{d}f}"


def real_table(data: Path, source: str = "pyin") -> dict:
    wavs = sorted(data.glob("*.wav"))
    if not wavs:
        sys.exit(f"no recordings in {data}")
    rows = {w.stem: evaluate_recording(w, source) for w in wavs}
    print(f"\n### Real recordings, pitch from {source} ({len(rows)} recordings, frames at 100 Hz)\n")
    print("| recording | split | areas | F1 | precision | recall | always-on F1 | our rate in areas (Hz) "
          "| our extent in areas (cents) | pitch vs annotation (cents) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, s in rows.items():
        split = "validation" if name in VALIDATION else "development"
        f1 = _fmt(s["f1"]) if s["areas"] else f"no vibrato; {100 * s['fp_share']:.1f} % frames called vibrato"
        print(f"| {name} | {split} | {s['areas']} | {f1} | {_fmt(s['precision'])} | {_fmt(s['recall'])} "
              f"| {_fmt(s['always_f1'])} | {_fmt(s['rate_in_areas'])} | {_fmt(s['extent_in_areas'], 1)} "
              f"| {_fmt(s['pitch_err'], 1)} |")
    summary = {}
    for label, keep in (("development (9, 8 with vibrato)", lambda n: n not in VALIDATION),
                        ("validation (3)", lambda n: n in VALIDATION), ("all (12, 11 with vibrato)", lambda n: True)):
        sel = [s for n, s in rows.items() if keep(n) and s["areas"]]
        tp, fp, fn = (sum(s[k] for s in sel) for k in ("tp", "fp", "fn"))
        pooled = 2 * tp / (2 * tp + fp + fn)
        summary[label] = dict(f1=np.mean([s["f1"] for s in sel]), always=np.mean([s["always_f1"] for s in sel]))
        print(f"| **mean, {label}** | | | **{np.mean([s['f1'] for s in sel]):.3f}** "
              f"| {np.mean([s['precision'] for s in sel]):.3f} | {np.mean([s['recall'] for s in sel]):.3f} "
              f"| {np.mean([s['always_f1'] for s in sel]):.3f} | | | pooled F1 {pooled:.3f} |")
    print(f"\npitch + detector time, all recordings: {sum(s['seconds'] for s in rows.values()):.1f} s for "
          f"{sum(s['duration'] for s in rows.values()):.0f} s of audio")
    return summary


def speed(data: Path) -> None:
    import soundfile as sf

    from musicperf.analysis.vibrato import analyze_media
    from musicperf.io.audio import load_audio

    wavs = sorted(data.glob("*.wav"))
    parts, total = [], 0.0
    for w in wavs:
        y, sr = load_audio(w, sr=44100)
        parts.append(y)
        total += len(y) / sr
        if total >= 60:
            break
    y = np.concatenate(parts)[: 60 * 44100]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "sixty.wav"
        sf.write(p, y, 44100)
        short = Path(tmp) / "short.wav"
        sf.write(short, y[:44100], 44100)
        analyze_media(short)  # warm-up: numba compiles librosa's kernels once per process
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        walls, cpus = [], []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            res = analyze_media(p)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    print(f"\n### Speed\n\n60 s of audio (recordings joined), whole audio path of `musicperf vibrato` (decode, pitch, "
          f"notes, frame-wise detector), best of 3: {min(walls):.2f} s wall, {min(cpus):.2f} s CPU "
          f"({len(res.areas)} areas, {len(res.notes)} notes); {os.cpu_count()} CPUs, load average {load:.1f} at "
          "the start (the machine is shared with other work: wall time above CPU time is waiting for a core)")


def synthetic(seeds=(400, 401, 402, 403), seconds: float = 15.0) -> None:
    from musicperf.analysis.pitch import estimate_pitch
    from musicperf.analysis.vibrato import PITCH_HOP, PITCH_RESOLUTION
    from musicperf.analysis.vibrato_frames import detect_vibrato, frame_labels
    from musicperf.synth import load_truth, render

    print(f"\n### Synthetic violin (seeds {', '.join(map(str, seeds))}, {seconds:g} s each, 3 vibrato notes each)\n")
    print("| seed | F1 | precision | recall | always-on F1 | rate error (Hz, median) | extent error (%, median) |")
    print("|---|---|---|---|---|---|---|")
    f1s, alw = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        starts, t = [], 0.8
        while len(starts) < 3:
            d = rng.uniform(1.2, 1.8)
            starts.append((round(t, 2), round(t + d, 2)))
            t += d + rng.uniform(2.0, 2.8)
        r = render(seconds=seconds, seed=seed, instrument="violin", size=(64, 48), schedule={"Vibrato": starts})
        p = load_truth(r.truth)["performers"][0]
        import librosa

        y = librosa.resample(r.audio, orig_sr=r.sr, target_sr=22050)
        pc = estimate_pitch(y, 22050, hop_length=PITCH_HOP, resolution=PITCH_RESOLUTION)
        trk = detect_vibrato(pc.times, 100 * pc.midi)
        truth = frame_labels([(v["start"], v["end"]) for v in p["vibrato"]], len(y) / 22050)
        idx = np.clip(np.searchsorted(pc.times, np.arange(len(truth)) / 100), 0, len(pc.times) - 1)
        sc = frame_scores(trk.vibrato[idx], truth)
        share = truth.mean()
        rate_err, ext_err = [], []
        for v in p["vibrato"]:
            m = (pc.times >= v["start"] + 0.3) & (pc.times < v["end"] - 0.3) & np.isfinite(trk.rate)
            if m.any():
                rate_err.append(abs(np.median(trk.rate[m]) - v["rate_hz"]))
                ext_err.append(abs(np.median(trk.extent[m]) / v["extent_cents"] - 1) * 100)
        f1s.append(sc["f1"])
        alw.append(2 * share / (1 + share))
        print(f"| {seed} | {sc['f1']:.2f} | {sc['precision']:.2f} | {sc['recall']:.2f} | {alw[-1]:.2f} "
              f"| {np.median(rate_err):.2f} | {np.median(ext_err):.0f} |")
    print(f"| **mean** | **{np.mean(f1s):.3f}** | | | {np.mean(alw):.3f} | | |")


def load_tracks(data: Path) -> dict:
    """``name -> (times, cents, truth, idx)``: the command's pitch track of every recording, its
    annotated frames at 100 Hz and the pitch frame nearest each of them (computed once)."""
    from musicperf.analysis.vibrato_frames import frame_labels
    from musicperf.io.audio import load_audio

    tracks = {}
    for w in sorted(data.glob("*.wav")):
        y, sr = load_audio(w, sr=22050)
        times, cents = pitch_track(y, sr, "pyin")
        truth = frame_labels([(a, b) for a, b, _ in read_annotation(w.with_name(w.stem + "-Annotation.csv"))],
                             len(y) / sr)
        idx = np.clip(np.searchsorted(times, np.arange(len(truth)) / 100.0), 0, len(times) - 1)
        tracks[w.stem] = (times, cents, truth, idx)
    return tracks


def _held_out(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a (configurations x recordings) F1 table: per recording, the F1 of the configuration with
    the best mean over the other recordings, and that configuration's index."""
    best = np.array([int(np.argmax(np.delete(F, j, axis=1).mean(1))) for j in range(F.shape[1])])
    return F[best, np.arange(F.shape[1])], best


def vf_bridge(c: np.ndarray, hop: float) -> np.ndarray:
    from musicperf.analysis import vibrato_frames as vf

    return vf._bridge_gaps(c, int(round(vf.MAX_GAP / hop)))


THRESHOLD_GRID = dict(window=(0.4, 0.5, 0.6), min_extent=(4, 6, 8, 10), min_regularity=(0.6, 0.7, 0.8),
                      grow_regularity=(None, 0.4, 0.5), smooth=(0.2, 0.4))
#: The shipped ensemble: the ENSEMBLE_SIZE grid settings with the best mean F1, majority vote.
ENSEMBLE_SIZE = 40
ENSEMBLE_VOTE = 0.5


def threshold_grid() -> list[dict]:
    import itertools

    keys = list(THRESHOLD_GRID)
    return [dict(zip(keys, v)) for v in itertools.product(*THRESHOLD_GRID.values())]


def write_ensemble(tracks: dict, path: Path) -> None:
    """The shipped ensemble from all recordings with vibrato: the ENSEMBLE_SIZE settings of the
    threshold grid with the best mean frame F1, as JSON for ``musicperf/data``."""
    import json

    from musicperf.analysis.vibrato_frames import detect_vibrato, track_vibrato

    names = [n for n in tracks if tracks[n][2].any()]
    grid = threshold_grid()
    F = np.array([[frame_scores(track_vibrato(tracks[n][0], tracks[n][1], **cfg).vibrato[tracks[n][3]],
                                tracks[n][2])["f1"] for n in names] for cfg in grid])
    order = np.argsort(-F.mean(1), kind="stable")[:ENSEMBLE_SIZE]
    configs = [grid[i] for i in order]
    f = [frame_scores(detect_vibrato(tracks[n][0], tracks[n][1], configs=configs, vote=ENSEMBLE_VOTE)
                      .vibrato[tracks[n][3]], tracks[n][2])["f1"] for n in names]
    data = dict(
        about="Vibrato threshold ensemble of musicperf.analysis.vibrato_frames.detect_vibrato: the settings of "
              "a 216-point threshold grid with the best mean frame F1 on the 11 annotated CMMSD recordings with "
              "vibrato (Yang, Rajab and Chew's annotation); a frame is vibrato when at least `vote` of them say "
              "so. Written by benchmarks/bench_vibrato_real.py --write-ensemble; see docs/vibrato.md.",
        vote=ENSEMBLE_VOTE, configs=configs, grid=THRESHOLD_GRID, recordings=names,
        mean_f1_of_each=[round(float(F[i].mean()), 4) for i in order],
        mean_f1_of_the_vote_in_sample=round(float(np.mean(f)), 4))
    from musicperf._util import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {path}: {len(configs)} settings, in-sample mean F1 of the vote {np.mean(f):.3f}")


def _widen(vib: np.ndarray, frames: int, voiced: np.ndarray) -> np.ndarray:
    """Every True run of ``vib`` widened by ``frames`` on each side, kept to voiced frames."""
    from musicperf.analysis.vibrato_frames import _runs

    out = np.zeros_like(vib)
    for a, b in _runs(vib):
        out[max(0, a - frames):b + frames] = True
    return out & voiced


def leave_one_out(tracks: dict) -> dict:
    """Leave-one-recording-out estimate of the F1 on unseen recordings of the threshold choice.

    For each recording with vibrato: the grid point (window, extent, regularity, hysteresis,
    smoothing) with the best mean F1 on the other recordings with vibrato is applied to it. Every
    recording has its own performer, so this is also leave-one-performer-out. This estimates
    what choosing thresholds on a set of this kind gives on a new recording of the same kind.
    """
    from musicperf.analysis.vibrato_frames import track_vibrato

    names = [n for n in tracks if tracks[n][2].any()]
    grid = threshold_grid()
    vib = [[track_vibrato(tracks[n][0], tracks[n][1], **cfg).vibrato for n in names] for cfg in grid]
    F = np.array([[frame_scores(v[tracks[n][3]], tracks[n][2])["f1"] for v, n in zip(row, names)] for row in vib])
    # the same grid with every area widened by 50 ms on each side (within voiced frames), for
    # --alternatives: the windows start and end areas a little inside the annotated ones
    F_wide = np.array([[frame_scores(_widen(v, 5, np.isfinite(tracks[n][1]))[tracks[n][3]], tracks[n][2])["f1"]
                        for v, n in zip(row, names)] for row in vib])
    held, best = _held_out(F)
    fixed = np.array([frame_scores(track_vibrato(tracks[n][0], tracks[n][1]).vibrato[tracks[n][3]],
                                   tracks[n][2])["f1"] for n in names])
    always = np.array([2 * tracks[n][2].mean() / (1 + tracks[n][2].mean()) for n in names])
    print(f"\n### Leave one recording (= one performer) out: threshold grid ({len(grid)} points, "
          f"{len(names)} recordings with vibrato)\n")
    print("| left-out recording | LOO F1 | thresholds chosen on the other 10 (window, extent, regularity, grow, "
          "smooth) | earlier default setting F1 | always-on F1 |")
    print("|---|---|---|---|---|")
    for j, n in enumerate(names):
        c = grid[best[j]]
        print(f"| {n} | {held[j]:.2f} | {c['window']}, {c['min_extent']}, {c['min_regularity']}, "
              f"{c['grow_regularity']}, {c['smooth']} | {fixed[j]:.2f} | {always[j]:.2f} |")
    print(f"| **mean** | **{held.mean():.3f}** | | {fixed.mean():.3f} | {always.mean():.3f} |")
    # harsher: leave one instrument out (thresholds chosen on the other two instruments)
    inst = np.array([n.split("_")[0] for n in names])
    loio = np.empty(len(names))
    parts = []
    for i in sorted(set(inst)):
        b = int(np.argmax(F[:, inst != i].mean(1)))
        loio[inst == i] = F[b, inst == i]
        parts.append(f"{i} {F[b, inst == i].mean():.3f}")
    print(f"\nLeave one instrument out (thresholds best on the other two instruments): mean F1 "
          f"**{loio.mean():.3f}** ({', '.join(parts)})")
    # the shipped method: a majority vote of the K settings best on the other recordings
    from musicperf.analysis.vibrato_frames import _clean

    def vote(order, j):
        n = names[j]
        t, c = tracks[n][0], tracks[n][1]
        hop = float(np.median(np.diff(t)))
        v = np.mean([vib[i][j] for i in order], axis=0) >= ENSEMBLE_VOTE - 1e-9
        bridged = vf_bridge(c, hop)
        return _clean(v & np.isfinite(bridged), hop, MIN_DURATION)[tracks[n][3]]

    from musicperf.analysis.vibrato_frames import MIN_DURATION

    ks = (1, 5, 10, 20, ENSEMBLE_SIZE, 80)
    ens = {k: np.array([frame_scores(vote(np.argsort(-np.delete(F, j, axis=1).mean(1), kind="stable")[:k], j),
                                     tracks[n][2])["f1"] for j, n in enumerate(names)]) for k in ks}
    # nested: K itself chosen by an inner leave-one-out on the other 10 recordings
    nested, chosen = np.empty(len(names)), []
    for j in range(len(names)):
        others = [i for i in range(len(names)) if i != j]
        inner = {}
        for k in ks:
            inner[k] = np.mean([frame_scores(vote(np.argsort(-F[:, [o for o in others if o != i]].mean(1),
                                                            kind="stable")[:k], i), tracks[names[i]][2])["f1"]
                                for i in others])
        kb = max(ks, key=lambda k: inner[k])
        chosen.append(kb)
        nested[j] = ens[kb][j]
    print(f"\n### Leave one recording out: majority vote of the K grid settings best on the other 10 "
          f"(shipped: K = {ENSEMBLE_SIZE})\n")
    print("| left-out recording | " + " | ".join(f"K = {k}" for k in ks) + " | K chosen by inner LOO | F1 |")
    print("|---|" + "---|" * len(ks) + "---|---|")
    for j, n in enumerate(names):
        print(f"| {n} | " + " | ".join(f"{ens[k][j]:.2f}" for k in ks) + f" | {chosen[j]} | {nested[j]:.2f} |")
    print("| **mean** | " + " | ".join(f"**{ens[k].mean():.3f}**" for k in ks) + f" | | **{nested.mean():.3f}** |")
    # the vote, leaving one instrument out
    loio_v = np.empty(len(names))
    parts = []
    for i in sorted(set(inst)):
        order_i = np.argsort(-F[:, inst != i].mean(1), kind="stable")[:ENSEMBLE_SIZE]
        for j in np.flatnonzero(inst == i):
            loio_v[j] = frame_scores(vote(order_i, j), tracks[names[j]][2])["f1"]
        parts.append(f"{i} {loio_v[inst == i].mean():.3f}")
    print(f"\nLeave one instrument out, the vote of the {ENSEMBLE_SIZE} settings best on the other two instruments: "
          f"mean F1 **{loio_v.mean():.3f}** ({', '.join(parts)})")
    # recordings without vibrato: the share of their frames called vibrato by the setting best on
    # all recordings with vibrato, and by the vote of the best ENSEMBLE_SIZE
    from musicperf.analysis.vibrato_frames import detect_vibrato

    order = np.argsort(-F.mean(1), kind="stable")
    for n in (m for m in tracks if not tracks[m][2].any()):
        t, c, _truth, idx = tracks[n]
        one = track_vibrato(t, c, **grid[order[0]]).vibrato[idx].mean()
        many = detect_vibrato(t, c, configs=[grid[i] for i in order[:ENSEMBLE_SIZE]],
                              vote=ENSEMBLE_VOTE).vibrato[idx].mean()
        print(f"\n{n} (no vibrato): {100 * one:.1f} % of its frames called vibrato by the single best setting, "
              f"{100 * many:.1f} % by the vote of the best {ENSEMBLE_SIZE}")
    return dict(names=names, held=held, fixed=fixed, F=F, F_wide=F_wide, grid=grid, ensemble=ens[ENSEMBLE_SIZE],
                nested=nested)


# ---------------------------------------------------------------------------------------------
# Alternatives evaluated (docs/vibrato.md, "What was tried"); none of them is shipped.

def frame_features(times: np.ndarray, cents: np.ndarray, windows=(0.35, 0.5, 0.75)) -> tuple[np.ndarray, list]:
    """Per-frame features for the learned classifier: regularity, log extent and rate at three
    window lengths (raw and averaged over 0.4 s), the voiced share of each window, the log extent
    relative to the recording's median (per-recording adaptation), the slope of the running
    median (pitch stability), the distance to the nearest note change or unvoiced frame, voicing."""
    from scipy.ndimage import uniform_filter1d

    from musicperf.analysis import vibrato_frames as vf

    hop = float(np.median(np.diff(times)))
    c = vf._bridge_gaps(cents, int(round(vf.MAX_GAP / hop)))
    r = vf._residual(c, hop)
    flat = vf._without_steps(c, r)
    voiced = np.isfinite(c)

    def avg(x, use, k):
        wt = uniform_filter1d(use.astype(float), k, mode="constant")
        return uniform_filter1d(np.nan_to_num(x), k, mode="constant") / np.maximum(wt, 1e-9)

    cols, names = [], []
    k40 = int(round(0.4 / hop))
    for w in windows:
        rate, _e, reg, use = vf.modulation(r, hop, window=w, min_voiced=0.5)
        _r, ext, _g, _u = vf.modulation(flat, hop, window=w, min_voiced=0.5, order=2, rates=rate)
        lext = np.log(np.maximum(np.nan_to_num(ext), 0.5))
        for k in (1, k40):
            cols += [avg(reg, use, k), avg(lext, use, k), avg(np.nan_to_num(rate, nan=6.0), use, k)]
            names += [f"regularity_{w}_{k}", f"log_extent_{w}_{k}", f"rate_{w}_{k}"]
        cols.append(uniform_filter1d(voiced.astype(float), max(8, int(round(w / hop))), mode="constant"))
        names.append(f"voiced_share_{w}")
    lext = cols[names.index(f"log_extent_0.5_{k40}")]
    cols.append(lext - (np.median(lext[voiced]) if voiced.any() else 0.0))
    names.append("log_extent_relative")
    d = np.minimum(np.nan_to_num(np.abs(np.diff(c - r, prepend=(c - r)[:1])), nan=50.0), 50.0)
    cols.append(uniform_filter1d(d, int(round(0.2 / hop))))
    names.append("median_slope")
    change = np.flatnonzero((d > vf.STEP) | ~voiced)
    pos = np.arange(len(c))
    if len(change):
        j = np.searchsorted(change, pos)
        dist = np.minimum(np.abs(pos - change[np.clip(j - 1, 0, len(change) - 1)]),
                          np.abs(change[np.clip(j, 0, len(change) - 1)] - pos)) * hop
    else:
        dist = np.ones(len(c))
    cols += [np.minimum(dist, 1.0), voiced.astype(float)]
    names += ["distance_to_change", "voiced"]
    return np.stack(cols, 1), names


def fit_logistic(X: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1.0):
    """Weighted L2-regularised logistic regression (scipy L-BFGS) on standardised features:
    ``(mean, std, coef, intercept)``."""
    from scipy.optimize import minimize

    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = (X - mu) / sd
    w = w / w.sum()

    def loss(theta):
        z = Z @ theta[:-1] + theta[-1]
        p = 1.0 / (1.0 + np.exp(-z))
        ll = np.sum(w * (np.logaddexp(0, z) - y * z)) + 0.5 * l2 * np.dot(theta[:-1], theta[:-1]) / len(y)
        g = Z.T @ (w * (p - y))
        return ll, np.concatenate([g + l2 * theta[:-1] / len(y), [np.sum(w * (p - y))]])

    res = minimize(loss, np.zeros(Z.shape[1] + 1), jac=True, method="L-BFGS-B", options=dict(maxiter=500))
    return mu, sd, res.x[:-1], res.x[-1]


def _decide(prob: np.ndarray, voiced: np.ndarray, thr: float, smooth: float) -> np.ndarray:
    from scipy.ndimage import uniform_filter1d

    from musicperf.analysis import vibrato_frames as vf

    k = max(1, int(round(smooth * 100)))
    p = uniform_filter1d(prob, k) if k > 1 else prob
    return vf._clean((p >= thr) & voiced, 0.01, vf.MIN_DURATION)


def _notes(times, cents):
    """(start, stop) pitch-frame pairs of the notes of a contour: voiced runs (short gaps bridged)
    split where the 0.3 s running median jumps by more than STEP cents."""
    from musicperf.analysis import vibrato_frames as vf

    hop = float(np.median(np.diff(times)))
    c = vf._bridge_gaps(cents, int(round(vf.MAX_GAP / hop)))
    trend = c - vf._residual(c, hop)
    out = []
    for a, b in vf._runs(np.isfinite(c)):
        cuts = [a] + list(a + 1 + np.flatnonzero(np.abs(np.diff(trend[a:b])) > vf.STEP)) + [b]
        out += [(s, e) for s, e in zip(cuts[:-1], cuts[1:]) if e > s]
    return out


def alternatives(tracks: dict, loo: dict) -> None:
    """The ideas evaluated against the shipped thresholds, each by leave-one-recording-out."""
    from musicperf.analysis import vibrato_frames as vf
    from musicperf.analysis.vibrato_frames import track_vibrato

    names = loo["names"]
    all_names = list(tracks)
    rows = {}
    # 1. a learned frame classifier (logistic regression on 25 features), trained on the other 11
    #    recordings (each weighted equally), decision threshold and probability smoothing chosen
    #    on the other recordings' own left-out probabilities (nested)
    feats = {n: frame_features(tracks[n][0], tracks[n][1])[0][tracks[n][3]] for n in all_names}
    voiced = {n: np.isfinite(tracks[n][1])[tracks[n][3]] for n in all_names}
    prob = {}
    for hold in all_names:
        train = [n for n in all_names if n != hold]
        X = np.concatenate([feats[n] for n in train])
        y = np.concatenate([tracks[n][2] for n in train]).astype(float)
        w = np.concatenate([np.full(len(tracks[n][2]), 1.0 / len(tracks[n][2])) for n in train])
        mu, sd, coef, b0 = fit_logistic(X, y, w)
        prob[hold] = 1.0 / (1.0 + np.exp(-(((feats[hold] - mu) / sd) @ coef + b0)))
    post = [(t, s) for t in (0.3, 0.4, 0.5, 0.6) for s in (0.0, 0.2, 0.4, 0.6)]
    F = np.array([[frame_scores(_decide(prob[n], voiced[n], t, s), tracks[n][2])["f1"] for n in names]
                  for t, s in post])
    rows["learned classifier (logistic regression, 25 features; nested LOO)"] = _held_out(F)[0]
    # 2. detections expanded to the note boundaries of the pitch contour (no parameters to choose
    #    beyond the rule; the three rules are all shown)
    base = {n: track_vibrato(tracks[n][0], tracks[n][1]).vibrato for n in names}
    for label, cover in (("whole note", 0.0), ("whole note if >= 50 % of it detected", 0.5)):
        f = []
        for n in names:
            v = base[n].copy()
            for s, e in _notes(tracks[n][0], tracks[n][1]):
                if base[n][s:e].any() and base[n][s:e].mean() >= cover:
                    v[s:e] = True
            f.append(frame_scores(v[tracks[n][3]], tracks[n][2])["f1"])
        rows[f"detections expanded to the {label} (earlier default setting)"] = np.array(f)
    # 3. a per-recording extent threshold: a share of the recording's median extent over regular
    #    frames, clipped to [floor, 6] cents; share and floor chosen by LOO
    grid = [(q, fl) for q in (0.3, 0.4, 0.5, 0.6) for fl in (3.0, 4.0, 5.0)]
    F = []
    for q, fl in grid:
        f = []
        for n in names:
            t0 = track_vibrato(tracks[n][0], tracks[n][1])
            m = np.isfinite(t0.extent) & (t0.regularity >= vf.MIN_REGULARITY)
            thr = float(np.clip(q * np.median(t0.extent[m]), fl, vf.MIN_EXTENT)) if m.sum() > 50 else vf.MIN_EXTENT
            f.append(frame_scores(track_vibrato(tracks[n][0], tracks[n][1], min_extent=thr).vibrato[tracks[n][3]],
                                  tracks[n][2])["f1"])
        F.append(f)
    rows["per-recording extent threshold (share of the recording's median; LOO)"] = _held_out(np.array(F))[0]
    # 4. areas widened by 50 ms on each side, chosen or not together with the thresholds (LOO over
    #    the threshold grid with and without widening)
    rows["threshold grid x {as is, areas widened by 50 ms} (LOO)"] = _held_out(np.vstack([loo["F"], loo["F_wide"]]))[0]
    print("\n### Alternatives, each by leave one recording out (F1 on the left-out recording)\n")
    print("Rows 4-6 start from the earlier default setting (which saw 8 of these recordings): compare them with "
          "row 2. Rows 3 and 7-9 are LOO from end to end: compare them with row 1.\n")
    print("| method | mean F1 | " + " | ".join(n.replace("_", " ") for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    k = 0
    for label, f in [("one setting chosen on the other 10 (LOO grid, above)", loo["held"]),
                     ("one setting, the earlier default (0.5 s, 6 cents, 0.7, 0.5, 0.4 s; saw 8 of these)",
                      loo["fixed"])] + list(rows.items()) + [
            (f"shipped: vote of the {ENSEMBLE_SIZE} settings best on the other 10 (LOO)", loo["ensemble"]),
            ("shipped vote, its size K also chosen by inner LOO", loo["nested"])]:
        k += 1
        print(f"| {k}. {label} | **{np.mean(f):.3f}** | " + " | ".join(f"{x:.2f}" for x in f) + " |")


def vote_table(printed: str) -> str:
    """The docs block from what :func:`leave_one_out` printed: the vote's leave-one-recording-out
    table under its heading in italics (the page has its own headings and its own prose around it)."""
    lines = printed.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(VOTE_HEADING)), None)
    if start is None:
        raise SystemExit(f"error: no '{VOTE_HEADING}' table in the output; nothing written")
    out = [f"*{lines[start][4:]}*", ""]
    rows = [line for line in lines[start + 1:] if line.strip()]
    for line in rows:
        if not line.startswith("|"):
            break
        out.append(line)
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of NAME.wav and NAME-Annotation.csv")
    ap.add_argument("--compare-pitch", action="store_true", help="also run the detector on pYIN 0.1 and PESTO")
    ap.add_argument("--quick", action="store_true", help="real recordings only (no speed, no synthetic)")
    ap.add_argument("--loo", action="store_true",
                    help="also leave-one-recording-out estimates (one setting, the vote)")
    ap.add_argument("--write-ensemble", type=Path, metavar="JSON",
                    help="write the settings of the vote (src/musicperf/data/vibrato_ensemble.json)")
    ap.add_argument("--alternatives", action="store_true",
                    help="also the alternatives tried (learned classifier, note boundaries, adaptive extent), by LOO")
    docs_blocks.add_write_docs_option(ap, DOCS_PAGE)
    args = ap.parse_args(argv)
    if args.write_docs:
        if args.write_ensemble or not (args.loo or args.alternatives):
            ap.error("--write-docs writes the leave-one-out table of the vote: use it with --loo (or --alternatives), "
                     "not with --write-ensemble")
        try:
            docs_blocks.check_block(args.write_docs, DOCS_BLOCK)  # fail now, not after minutes of measuring
        except docs_blocks.DocsBlockError as exc:
            docs_blocks.fail(exc)
    if args.write_ensemble:
        write_ensemble(load_tracks(args.data), args.write_ensemble)
        return
    real_table(args.data)
    if not args.quick:
        speed(args.data)
        synthetic()
    if args.loo or args.alternatives:
        tracks = load_tracks(args.data)
        with docs_blocks.captured_stdout() as printed:
            loo = leave_one_out(tracks)
        if args.write_docs:
            docs_blocks.write_figures(args.write_docs, DOCS_BLOCK, vote_table(printed.getvalue()),
                                      command=docs_blocks.command_line(__file__, argv))
        if args.alternatives:
            alternatives(tracks, loo)
    if args.compare_pitch:
        real_table(args.data, "pyin-0.1")
        try:
            import pesto  # noqa: F401
        except ImportError as exc:
            print(f"\nPESTO not importable here ({exc}); not compared")
        else:
            real_table(args.data, "pesto")
    print("\nYang et al.: frame-wise F1 of their FDM detector on these recordings is not published in a source "
          "available here. The only published figures found (L. Yang, PhD thesis, Queen Mary University of London, "
          "2016, abstract): FDM vibrato rate accuracy above 92.5 % and extent accuracy about 85 %, on their own "
          "data sets and measures (not frame F1), so not comparable with the table above.")


if __name__ == "__main__":
    main()
