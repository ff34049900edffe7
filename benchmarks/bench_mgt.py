"""Time the Musical Gestures Toolbox's motion analysis and dense optical flow on a video.

Runs with the Python of the toolbox's own environment (``benchmarks/setup.sh`` makes it in
``.venv/mgt``: the toolbox needs numpy 2, musicperf numpy < 2), so it imports nothing from
musicperf. Prints one JSON line.

    .venv/mgt/bin/python benchmarks/bench_mgt.py VIDEO [--seconds 20] [--skip-flow]

``MgVideo(...)`` writes its outputs beside the video it is given, so the video (or, with
``--seconds``, its first seconds, cut by MgVideo itself at construction, not timed) is copied
into a temporary folder first. Timed: ``MgVideo(...).motion()`` with its defaults (motion video,
motiongrams, plot and data file: what a user of the toolbox gets from that call) and
``MgVideo(...).flow.dense()`` (Farneback, writes a colour-coded flow video).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--seconds", type=float, default=0.0, help="only the first seconds (0: all)")
    ap.add_argument("--skip-flow", action="store_true")
    args = ap.parse_args()
    import musicalgestures as mg

    out = {"musicalgestures": getattr(mg, "__version__", None)}
    with tempfile.TemporaryDirectory(prefix="musicperf-mgt-") as tmp:
        src = Path(tmp) / args.video.name
        shutil.copy(args.video, src)
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            if args.seconds:
                video = mg.MgVideo(str(src), starttime=0, endtime=args.seconds)
            else:
                video = mg.MgVideo(str(src))
            t0 = time.perf_counter()
            video.motion()
            out["motion_s"] = time.perf_counter() - t0
            if not args.skip_flow:
                t0 = time.perf_counter()
                video.flow.dense()
                out["flow_dense_s"] = time.perf_counter() - t0
        finally:
            os.chdir(cwd)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
