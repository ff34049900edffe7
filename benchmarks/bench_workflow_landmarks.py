"""Per-class F1 of the workflow's feature choices on the demo's synthetic guitarist.

Runs ``musicperf demo``'s pipeline (a synthetic performance with five gestures, trained on the
first two thirds, labelled and scored on the last third) once per configuration:

* ``grid``: the default clip features (motion/colour grid) and the papers' single-model head;
* ``landmarks``: the TCN over 16-frame windows of the 32 landmark features
  (``--frame-features landmarks --landmarks-from-truth``: MediaPipe does not detect the drawn
  performer, so the synthetic truth with detector-like noise stands in for it);
* ``grid+landmarks`` and ``landmarks + audio`` (fusion).

Prints a Markdown table of per-class F1 and the constant "always present" predictor's F1.

    .venv/bin/python benchmarks/bench_workflow_landmarks.py /tmp/wfl --seconds 90
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from musicperf.demo import run_demo
from musicperf.tasks.gestures import GestureConfig

CONFIGS = {
    "grid": GestureConfig(),
    "landmarks": GestureConfig(frame_features="landmarks", landmark_source="truth"),
    "grid+landmarks": GestureConfig(frame_features="grid+landmarks", landmark_source="truth"),
    "landmarks+audio": GestureConfig(frame_features="landmarks", landmark_source="truth",
                                      modalities=("video", "audio")),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ", ".join(CONFIGS))
    args = ap.parse_args(argv)
    names = [c for c in args.configs.split(",") if c]
    rows, const, secs = {}, None, {}
    for name in names:
        t = time.perf_counter()
        r = run_demo(args.out / name.replace("+", "_"), seconds=args.seconds, seed=args.seed, overwrite=True,
                     progress=False, report=False, config=CONFIGS[name])
        secs[name] = (r["seconds"].get("train", 0.0), r["seconds"].get("label", 0.0), time.perf_counter() - t)
        rows[name] = {c: row["f1"] for c, row in r["scores"]["tiers"].items()}
        const = r["constant_f1"]
    classes = list(const)
    print(f"| class | {' | '.join(names)} | constant |")
    print("|---|" + "---|" * (len(names) + 1))
    for c in classes:
        print(f"| {c} | " + " | ".join(f"{rows[n].get(c, float('nan')):.3f}" for n in names) + f" | {const[c]:.3f} |")
    means = [sum(rows[n].values()) / len(rows[n]) for n in names]
    print("| **mean** | " + " | ".join(f"**{m:.3f}**" for m in means) + f" | **{sum(const.values()) / len(const):.3f}** |")
    for n in names:
        print(f"{n}: train {secs[n][0]:.1f} s, label {secs[n][1]:.1f} s, total {secs[n][2]:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
