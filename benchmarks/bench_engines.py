"""Throughput of the batch engines on this machine: serial, ``local`` (process pool) and ``ray``.

Trains a small model on a short synthetic performance, writes N synthetic videos
(tests/_workflow_video.py, 64 x 80 at 25 fps), then labels them into fresh folders with

* ``serial``: ``musicperf.api.label`` in this process (one video after another);
* ``local``: ``label_batch(engine="local", workers=W)`` (spawned process pool);
* ``ray``:   ``label_batch(engine="ray", workers=W)`` on a local Ray instance with W CPUs
  (started once before timing, as on a running cluster; its start-up time is printed apart).

Wall time includes each engine's worker start-up and model loading. Checks that every engine
wrote the same probabilities as the serial run.

    .venv/bin/python benchmarks/bench_engines.py [--videos 12] [--seconds 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=20.0, help="duration of each video")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--engines", nargs="+", default=["serial", "local", "ray"])
    args = ap.parse_args()

    import numpy as np
    from _workflow_video import schedule, write_performance, write_video

    from musicperf.api import label, train
    from musicperf.distributed.label import label_batch
    from musicperf.tasks.gestures import GestureConfig

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video, eaf, _ = write_performance(tmp / "train", "perf", 20.0, seed=1)
        train([f"{video}={eaf}"], tmp / "model", config=GestureConfig(epochs=20, folds=2))
        vids = tmp / "videos"
        vids.mkdir()
        for i in range(args.videos):
            write_video(vids / f"v{i:02d}.mp4", args.seconds, schedule(args.seconds, np.random.default_rng(i)))
        total_s = args.videos * args.seconds
        print(f"{args.videos} videos of {args.seconds:g} s (64 x 80, 25 fps), {args.workers} workers, "
              f"{__import__('os').cpu_count()} CPUs")
        print(f"{'engine':<8} {'wall s':>7} {'videos/min':>10} {'x real time':>11}")
        rows = {}
        for engine in args.engines:
            out = tmp / f"out-{engine}"
            if engine == "ray":
                import ray

                t = time.perf_counter()
                ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
                print(f"(ray.init with {args.workers} CPUs: {time.perf_counter() - t:.1f} s, not counted)")
            t = time.perf_counter()
            if engine == "serial":
                label([str(vids)], tmp / "model", out)
            else:
                s = label_batch([str(vids)], tmp / "model", out, engine=engine, workers=args.workers)
                assert s["counts"]["done"] == args.videos, s
            wall = time.perf_counter() - t
            if engine == "ray":
                ray.shutdown()
            rows[engine] = out
            print(f"{engine:<8} {wall:7.1f} {60 * args.videos / wall:10.1f} {total_s / wall:11.1f}")
        ref = next(iter(rows.values()))
        for engine, out in rows.items():
            for p in sorted(ref.glob("*.probs.csv")):
                if (out / p.name).read_bytes() != p.read_bytes():
                    raise SystemExit(f"{engine}: {p.name} differs from the {next(iter(rows))} run")
        print("all engines wrote identical probability files")


if __name__ == "__main__":
    main()
