"""What the persistent compiled-graph cache saves: ``torch.compile`` seconds of the first and of
a later process on the same machine.

Each measurement is a fresh interpreter running :class:`musicperf.features.fastpath.BackboneRunner`
with ``compile=True`` on one batch (``compile_seconds``: compiling, or loading the compiled
graph, plus that batch). A "cold" run gets an empty user cache directory
(``MUSICPERF_CACHE_DIR``), a "warm" run the directory a cold run just filled. Cold and warm runs
alternate (cold, warm, cold, warm, ...) and medians are reported, so machine load hits both alike.
By default the runner compiles with prepacked oneDNN weights (a later process reuses the built
kernels and compiles the graph again: inductor cannot store prepacked weights);
``--full-graph`` measures ``full_graph_cache=True`` (no prepacking, the whole graph stored and
loaded), ``--compare`` both, interleaved, with the forward time per batch of each (prepacking
is what the full graph cache gives up).

    .venv/bin/python benchmarks/bench_compile.py [--repeats 3] [--compare] [--depth 10] [--width-factor 0.25]

Prints one JSON line (``cold_s``, ``warm_s``, ``batch_s`` medians per variant and every run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(args) -> dict:
    import numpy as np
    import torch

    from musicperf.features.fastpath import BackboneRunner
    from musicperf.models import build_backbone, get_normalization

    torch.manual_seed(0)
    net = build_backbone(f"resnet{args.depth}", n_classes=0, width_factor=args.width_factor).eval()
    clips = np.random.default_rng(0).integers(0, 256, (args.batch, 16, args.size, args.size, 3), dtype=np.uint8)
    runner = BackboneRunner(net, get_normalization("hara2018"), mode=args.mode, compile=True,
                            full_graph_cache=args.full_graph)
    runner(clips)
    times = []
    for _ in range(args.batches):
        t0 = time.perf_counter()
        runner(clips)
        times.append(time.perf_counter() - t0)
    from torch._dynamo.utils import counters

    c = counters["inductor"]
    return {"compile_s": runner.compile_seconds, "batch_s": statistics.median(times),
            "cache": str(runner.compile_cache), "compiled": bool(runner.compile),
            "fxgraph_cache": {k: c.get(f"fxgraph_cache_{k}", 0) for k in ("hit", "miss", "bypass")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--width-factor", type=float, default=0.25)
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--mode", default="fp32-cl3d")
    ap.add_argument("--batches", type=int, default=5, help="timed batches after compiling (median)")
    ap.add_argument("--full-graph", action="store_true",
                    help="full_graph_cache=True: no weight prepacking, the whole graph stored")
    ap.add_argument("--compare", action="store_true", help="both ways, interleaved")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one(args)))
        return
    flags = ["--depth", str(args.depth), "--width-factor", str(args.width_factor), "--size", str(args.size),
             "--batch", str(args.batch), "--mode", args.mode, "--batches", str(args.batches)]

    def run(cache: str, full: bool) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
        env.update(MUSICPERF_CACHE_DIR=cache, PYTHONPATH=str(ROOT / "src"), PYTHONWARNINGS="ignore")
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, __file__, "--child", *flags, *(["--full-graph"] if full else [])],
                           capture_output=True, text=True, env=env, check=True)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        out["process_s"] = time.perf_counter() - t0
        return out

    variants = [False, True] if args.compare else [args.full_graph]
    runs = {v: {"cold": [], "warm": []} for v in variants}
    for r in range(args.repeats):
        for full in variants:  # interleaved: prepacked, full graph, prepacked, ...
            with tempfile.TemporaryDirectory(prefix="musicperf-compile-") as cache:
                runs[full]["cold"].append(run(cache, full))
                runs[full]["warm"].append(run(cache, full))
            c, w = runs[full]["cold"][-1], runs[full]["warm"][-1]
            print(f"[{r + 1}/{args.repeats}] {'full graph cache' if full else 'prepacked (default)'}: compile cold "
                  f"{c['compile_s']:.1f} s, warm {w['compile_s']:.1f} s; batch {c['batch_s']:.4f} / {w['batch_s']:.4f} s "
                  f"(fx cache {w['fxgraph_cache']})", file=sys.stderr, flush=True)
    med = lambda rs, k: statistics.median(x[k] for x in rs)  # noqa: E731
    out = {"net": f"resnet{args.depth} x{args.width_factor}", "input": [args.batch, 16, args.size, args.size, 3],
           "mode": args.mode, "repeats": args.repeats}
    for full, rr in runs.items():
        name = "full_graph" if full else "prepacked"
        out[name] = {"cold_s": med(rr["cold"], "compile_s"), "warm_s": med(rr["warm"], "compile_s"),
                     "batch_s": med(rr["cold"] + rr["warm"], "batch_s"), "runs": rr}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
