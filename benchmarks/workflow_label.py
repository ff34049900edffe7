"""Labelling speed and memory against video duration (musicperf label streams its input).

Trains a small model on a short synthetic clip, then labels synthetic videos of growing
duration in fresh processes and prints, per duration, the wall time, the real-time factor and
the peak resident memory. Flat memory means the frames are streamed, not held.

    .venv/bin/python benchmarks/workflow_label.py [--durations 60 300 900]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

CHILD = """
import json, resource, sys, time
from musicperf.api import label
t = time.perf_counter()
label([sys.argv[1]], sys.argv[2], sys.argv[3])
print(json.dumps({"seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--durations", type=float, nargs="+", default=[60.0, 300.0, 900.0])
    args = ap.parse_args()
    from _workflow_video import write_performance, write_video, schedule

    import numpy as np

    from musicperf.api import train

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video, eaf, _ = write_performance(tmp / "train", "perf", 30.0, seed=1)
        train([f"{video}={eaf}"], tmp / "model")
        print(f"{'duration s':>10} {'label s':>8} {'x real time':>11} {'peak RSS MB':>11}")
        for d in args.durations:
            v = write_video(tmp / f"v{int(d)}.mp4", d, schedule(d, np.random.default_rng(0)))
            out = subprocess.run([sys.executable, "-c", CHILD, str(v), str(tmp / "model"), str(tmp / f"o{int(d)}")],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{d:10.0f} {r['seconds']:8.1f} {d / r['seconds']:11.1f} {r['peak_rss_mb']:11.0f}")


if __name__ == "__main__":
    main()
