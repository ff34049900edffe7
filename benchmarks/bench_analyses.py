"""Figures for docs/analyses.md: vibrato from motion (002 V-B) on synthetic performances.

    .venv/bin/python benchmarks/bench_analyses.py [--quick] [--write-docs [PAGE]]

* Vibrato (002 V-B): violin and guitar solos with scheduled vibrato notes, two seed sets
  (200-207, 300-307; parameters were chosen on 100-103, which also train the SVM). Rate accuracy
  (share of true vibrato notes whose motion-based rate is within 0.3 Hz), detection precision /
  recall / F1 per note (autocorrelation threshold; linear SVM trained on other seeds), extent
  error of Equation 1, and the audio-only analysis; notes from the score (truth) or from the
  audio. The hand box is the one a hand detector gives on the first frame (the synthetic
  hand's landmarks there, grown by a quarter), KLT-tracked; also shown: the rate without our
  refinement (the paper's autocorrelation lag), and the box of the hand over the whole video.
* The duets (playing/non-playing, separation, association) are in ``benchmarks/bench_duets.py``.

Prints Markdown tables. Uses one thread per library where it helps on a shared machine.
``--write-docs`` also writes them into the ``<!-- figures:vibrato -->`` block of docs/analyses.md
(``benchmarks/docs_blocks.py``: under a line naming the command, the machine and the time).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import docs_blocks

DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "analyses.md"
DOCS_BLOCK = "vibrato"


def _notes(p):
    from musicperf.analysis.pitch import NoteEvent

    return [NoteEvent(n["onset"], n["offset"], n["midi"]) for n in p["notes"]]


def _match(res, truth_vib, min_overlap=0.5):
    """Per-note detection counts: a detected note is a true positive when it overlaps a true
    vibrato note by at least ``min_overlap`` of the shorter one."""
    det = [r for r in res if r.vibrato]
    tp = 0
    used = set()
    for r in det:
        for i, v in enumerate(truth_vib):
            ov = min(r.offset, v["end"]) - max(r.onset, v["start"])
            if i not in used and ov >= min_overlap * min(r.offset - r.onset, v["end"] - v["start"]):
                tp += 1
                used.add(i)
                break
    return tp, len(det) - tp, len(truth_vib) - tp


def _nearest(res, v):
    cands = [r for r in res if min(r.offset, v["end"]) - max(r.onset, v["start"]) > 0.5 * (v["end"] - v["start"])]
    return max(cands, key=lambda r: min(r.offset, v["end"]) - max(r.onset, v["start"])) if cands else None


def _sounding(p, v):
    """True when the vibrato note of the truth sounds for at least half of its vibrato interval.

    The synthetic score can cut a vibrato note short (an ordinary note placed at the same onset
    and a phrase rest after it: seed 302 has a 0.1 s "vibrato note" whose hand keeps
    oscillating for 1.3 s in silence); no method can measure such a note from the score's or
    the audio's note boundaries, so it is counted apart."""
    best = max((min(n["offset"], v["end"]) - max(n["onset"], v["start"]) for n in p["notes"]
                if abs(n["onset"] - v["start"]) < 0.02), default=0.0)
    return best >= 0.5 * (v["end"] - v["start"])


#: Curves compared: the pipeline in the detector's box, the same without the rate refinement
#: (the paper's rate), in the box of the hand over the whole video, the previous pipeline (that
#: box, 0.4 s sway window, no refinement), and from the key points.
_VARIANTS = ("flow", "flow-paper-rate", "flow-wide-box", "flow-previous", "keypoints", "audio")


def vibrato_bench(seed_sets, train_seeds, seconds=12.0):
    import librosa

    from musicperf.analysis import vibrato as V
    from musicperf.analysis.motion import keypoint_region, keypoint_velocity, region_motion
    from musicperf.analysis.pitch import estimate_pitch, segment_notes
    from musicperf.synth import load_truth, render

    def perf(seed, ins):
        rng = np.random.default_rng(seed)
        # two or three vibrato notes of 1.0-1.6 s at random places
        starts, t = [], 0.8
        while t < seconds - 2.0 and len(starts) < 3:
            t += rng.uniform(0.5, 2.5)
            if t < seconds - 1.8:
                d = rng.uniform(1.0, 1.6)
                starts.append((round(t, 2), round(t + d, 2)))
                t += d
        r = render(seconds=seconds, seed=seed, instrument=ins, size=(320, 240), schedule={"Vibrato": starts})
        p = load_truth(r.truth)["performers"][0]
        frames = list(r.frames())
        lh = p["keypoints"]["left_hand"]["full"]
        # the box a hand detector gives: the hand in the first frame where it is seen, grown by a
        # quarter on every side (analysis.hand does this with MediaPipe), then KLT-tracked
        first = int(np.flatnonzero(np.isfinite(lh).all(axis=(1, 2)))[0])
        m = region_motion(frames[first:], keypoint_region(lh[first], margin=0.25), fps=r.fps, track=True, winsize=5)
        u = np.concatenate([np.zeros((first, 2)), m.velocity[:, 0]])
        # the previous benchmark's box: where the hand goes over the whole video
        mw = region_motion(frames, keypoint_region(lh, margin=0.0), fps=r.fps, track=True, winsize=5)
        y = librosa.resample(r.audio, orig_sr=r.sr, target_sr=22050)
        pitch = estimate_pitch(y, 22050)
        return dict(p=p, flow=V.displacement_curve(u, r.fps), wide=V.displacement_curve(mw.velocity[:, 0], r.fps),
                    previous=V.displacement_curve(mw.velocity[:, 0], r.fps, sway_window=0.4),
                    kp=V.displacement_curve(keypoint_velocity(lh, r.fps), r.fps), pitch=pitch,
                    audio_notes=segment_notes(pitch, y, 22050), fps=r.fps)

    def features(d, notes):
        X, y = [], []
        vs = float(np.sqrt(np.mean(d["flow"].velocity ** 2)))
        for n in notes:
            sl = V._note_slice(d["flow"].times, n.onset, n.offset, 0.05)
            if sl.stop - sl.start < 8:
                continue
            X.append(V.motion_features(d["flow"].displacement[sl], d["flow"].velocity[sl], d["fps"], v_scale=vs))
            y.append(any(abs(n.onset - v["start"]) < 0.05 for v in d["p"]["vibrato"]))
        return X, y

    t0 = time.time()
    train = [perf(s, ins) for s in train_seeds for ins in ("violin", "guitar")]
    Xtr, ytr = [], []
    for d in train:
        X, y = features(d, _notes(d["p"]))
        Xtr += X
        ytr += y
    svm = V.LinearSVM.fit(np.array(Xtr), np.array(ytr), C=1.0)
    rows = {}
    skipped = {}
    for name, seeds in seed_sets.items():
        test = [(ins, perf(s, ins)) for s in seeds for ins in ("violin", "guitar")]
        skipped[name] = sum(not _sounding(d["p"], v) for _ins, d in test for v in d["p"]["vibrato"])
        for ins_filter in ("violin", "guitar", "all"):
            for source in ("score", "audio"):
                stats = {k: [0, 0, 0] for k in ("flow-autocorr", "flow-svm", "flow-wide-box", "keypoints", "audio")}
                rate_ok = {k: [] for k in _VARIANTS}
                rate_err = {k: [] for k in _VARIANTS}
                ext_err = {k: [] for k in ("flow", "keypoints", "audio")}
                for ins, d in test:
                    if ins_filter != "all" and ins != ins_filter:
                        continue
                    notes = _notes(d["p"]) if source == "score" else d["audio_notes"]
                    truth = [v for v in d["p"]["vibrato"] if _sounding(d["p"], v)]
                    res = {
                        "flow-autocorr": V.analyze_notes(notes, curve=d["flow"], pitch=d["pitch"], threshold=0.5),
                        "flow-svm": V.analyze_notes(notes, curve=d["flow"], pitch=d["pitch"], method="svm", svm=svm),
                        "flow-paper-rate": V.analyze_notes(notes, curve=d["flow"], threshold=0.5, refine=False),
                        "flow-wide-box": V.analyze_notes(notes, curve=d["wide"], pitch=d["pitch"], threshold=0.5),
                        "flow-previous": V.analyze_notes(notes, curve=d["previous"], threshold=0.5, refine=False),
                        "keypoints": V.analyze_notes(notes, curve=d["kp"], pitch=d["pitch"], threshold=0.8),
                        "audio": V.analyze_notes(notes, pitch=d["pitch"], method="audio"),
                    }
                    for k in stats:
                        tp, fp, fn = _match(res[k], truth)
                        stats[k][0] += tp
                        stats[k][1] += fp
                        stats[k][2] += fn
                    for k in _VARIANTS:
                        key = "flow-autocorr" if k == "flow" else k
                        for v in truth:
                            n = _nearest(res[key], v)
                            ok = n is not None and np.isfinite(n.rate_hz)
                            rate_ok[k].append(ok and abs(n.rate_hz - v["rate_hz"]) <= 0.3)
                            rate_err[k].append(abs(n.rate_hz - v["rate_hz"]) if ok else np.nan)
                            # Equation 1 is computed for detected notes
                            if k in ext_err and n is not None and n.vibrato and np.isfinite(n.extent_cents):
                                ext_err[k].append(abs(n.extent_cents - v["extent_cents"]) / v["extent_cents"])
                rows[(name, ins_filter, source)] = (stats, rate_ok, ext_err, rate_err)
    return rows, svm, skipped, time.time() - t0


def f1(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def print_vibrato(rows, svm, skipped, seed_sets, secs):
    n = 2 * sum(len(s) for s in seed_sets.values())
    print(f"\n### Vibrato ({n} synthetic solos of 12 s, 320x240 at 25 fps; {secs:.0f} s)\n")
    sets = ", ".join(f"{k}: seeds {v[0]}-{v[-1]}" + (f" ({skipped[k]} vibrato note(s) cut short by the score, "
                                                       f"not counted)" if skipped[k] else "")
                     for k, v in seed_sets.items())
    print(f"Seed sets: {sets}.\n")
    print("Rate: share of true vibrato notes within 0.3 Hz (notes), mean absolute error (NaN rates left out).\n")
    print("| seeds | instrument | notes from | flow | flow, paper's rate | flow, video-wide box | previous pipeline | "
          "key points | audio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, ins, src), (_stats, rate_ok, _ext, rate_err) in rows.items():
        cells = [f"{100 * np.mean(rate_ok[k]):.0f} % ({len(rate_ok[k])}), {np.nanmean(rate_err[k]):.3f} Hz"
                 for k in _VARIANTS]
        print(f"| {name} | {ins} | {src} | " + " | ".join(cells) + " |")
    print()
    print("| seeds | instrument | notes from | F1 flow autocorr (P/R) | F1 flow SVM | F1 flow, video-wide box | "
          "F1 key points | F1 audio | median extent error flow / key points / audio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, ins, src), (stats, _rate_ok, ext, _err) in rows.items():
        fa = f1(*stats["flow-autocorr"])
        cells = [f"{fa[2]:.2f} ({fa[0]:.2f}/{fa[1]:.2f})"] + [f"{f1(*stats[k])[2]:.2f}" for k in
                                                              ("flow-svm", "flow-wide-box", "keypoints", "audio")]
        exts = " / ".join(f"{100 * np.median(ext[k]):.0f} %" if ext[k] else "-" for k in ("flow", "keypoints", "audio"))
        print(f"| {name} | {ins} | {src} | " + " | ".join(cells) + f" | {exts} |")
    print("\nSVM trained on other seeds:", json.dumps({k: np.round(v, 4).tolist() if isinstance(v, list) else v
                                                      for k, v in svm.to_dict().items()}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer performances")
    docs_blocks.add_write_docs_option(ap, DOCS_PAGE)
    a = ap.parse_args()
    if a.write_docs:
        try:
            docs_blocks.check_block(a.write_docs, DOCS_BLOCK)  # fail now, not after 12 minutes
        except docs_blocks.DocsBlockError as exc:
            docs_blocks.fail(exc)
    if a.quick:
        sets, train = {"200-202": list(range(200, 203))}, [100, 101]
    else:
        sets, train = {"200-207": list(range(200, 208)), "300-307": list(range(300, 308))}, [100, 101, 102, 103]
    rows, svm, skipped, secs = vibrato_bench(sets, train)
    with docs_blocks.captured_stdout() as out:
        print_vibrato(rows, svm, skipped, sets, secs)
    if a.write_docs:
        docs_blocks.write_figures(a.write_docs, DOCS_BLOCK, docs_text(out.getvalue()),
                                  command=docs_blocks.command_line(__file__))


def docs_text(printed: str) -> str:
    """What :func:`print_vibrato` printed, as the docs block: the heading in italics (the page has
    its own headings), without the SVM's coefficients."""
    lines = []
    for line in printed.strip("\n").splitlines():
        if line.startswith("SVM trained on other seeds:"):
            continue
        lines.append(f"*{line[4:]}*" if line.startswith("### ") else line)
    return "\n".join(lines).strip("\n")


if __name__ == "__main__":
    main()
