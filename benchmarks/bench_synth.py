"""Benchmark: seconds to synthesise a 60 s, 320x240, 25 fps performance (video + audio + truth).

Prints wall-clock and CPU (process) time of `musicperf.synth.synthesize`, and the split between
rendering, encoding and the rest. The target is under 20 s on one core; the CPU time is
the better estimate on a shared machine, where wall time includes waiting for other processes.

    .venv/bin/python benchmarks/bench_synth.py [--seconds 60] [--background plain] [--performers 1]
    .venv/bin/python benchmarks/bench_synth.py --balance   # class shares vs Table 2 of 001
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--background", default="plain")
    ap.add_argument("--performers", type=int, default=1)
    ap.add_argument("--instrument", default="guitar")
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--balance", action="store_true",
                    help="instead: print the share of frames per class of the scheduler over the 2206 s of "
                         "001's four videos (3 seeds) beside Table 2")
    args = ap.parse_args()
    if args.balance:
        balance()
        return
    try:
        import torch  # noqa: F401  (not needed; only to pin threads if present)

        torch.set_num_threads(1)
    except ImportError:
        pass
    from musicperf.synth import render, synthesize

    # render only (frames drawn, not encoded)
    w0, c0 = time.perf_counter(), time.process_time()
    r = render(seconds=args.seconds, seed=args.seed, background=args.background, performers=args.performers,
               instrument=args.instrument)
    w1, c1 = time.perf_counter(), time.process_time()
    for _ in r.frames():
        pass
    w2, c2 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        w3, c3 = time.perf_counter(), time.process_time()
        res = synthesize(tmp, seconds=args.seconds, seed=args.seed, background=args.background,
                         performers=args.performers, instrument=args.instrument, preset=args.preset)
        w4, c4 = time.perf_counter(), time.process_time()
        size = os.path.getsize(res.video)
    n = r.n_frames
    print(f"synth {args.seconds:.0f} s {r.size[0]}x{r.size[1]} @ {r.fps:g} fps ({n} frames), "
          f"background={args.background}, performers={args.performers}, instrument={args.instrument}, "
          f"x264 preset={args.preset}, threads=1, cpus={os.cpu_count()}, load={os.getloadavg()[0]:.1f}")
    print(f"  setup (schedule, score, audio, geometry, truth): wall {w1 - w0:6.2f} s  cpu {c1 - c0:6.2f} s")
    print(f"  drawing frames only:                            wall {w2 - w1:6.2f} s  cpu {c2 - c1:6.2f} s "
          f"({(c2 - c1) / n * 1000:.1f} ms/frame cpu)")
    print(f"  full synthesize (files written):                wall {w4 - w3:6.2f} s  cpu {c4 - c3:6.2f} s  "
          f"mp4 {size / 1e6:.2f} MB")
    ok = (c4 - c3) < 20.0
    print(f"  target < 20 s on one core: {'met' if ok else 'NOT met'} (cpu time {c4 - c3:.2f} s)")


def balance() -> None:
    import numpy as np

    from musicperf.synth.gestures import _TABLE2_FRAMES, GESTURES, schedule_gestures

    seconds, fps = 2206.05, 25.0
    paper_total = 12013 + 10587 + 16557 + 15723
    t0 = np.arange(int(seconds * fps)) / fps
    shares = []
    for seed in range(3):
        sched = schedule_gestures(seconds, np.random.default_rng(seed))
        act = np.zeros((t0.size, len(GESTURES)), dtype=bool)
        for k, g in enumerate(GESTURES):
            for s, e in sched[g]:
                act[(t0 + 1 / fps > s) & (t0 < e), k] = True
        shares.append(np.concatenate([act.mean(0), [(~act.any(1)).mean(), act.sum(1).mean()]]))
    sh = np.mean(shares, axis=0)
    print("| class | Table 2 of 001, % of frames | synth scheduler, % of frames |")
    print("|---|---|---|")
    for k, g in enumerate(GESTURES):
        print(f"| {g} | {100 * _TABLE2_FRAMES[g] / paper_total:.1f} | {100 * sh[k]:.1f} |")
    print(f"| Normal play | {100 * (4292 + 2156 + 4057 + 2732) / paper_total:.1f} | {100 * sh[-2]:.1f} |")
    print(f"mean gestures per frame: synth {sh[-1]:.2f}")


if __name__ == "__main__":
    main()
