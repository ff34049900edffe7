"""Benchmark video/audio reading on the shared real files; prints figures (no assertions).

    .venv/bin/python benchmarks/bench_media.py [--data ../shared/data]

Measures: probe time (header only vs. decoding to count), decoding throughput at full size and
resized to 112x112 (the 3D-CNN input), 16-frame clip throughput, peak resident memory of a
process that reads 10 s vs. all 97.5 s of pianist.avi (streaming: it must not grow with
duration), and audio decoding + resampling time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"

_RSS_SCRIPT = """
import resource, sys
from musicperf.io.video import VideoReader
n = 0
with VideoReader(sys.argv[1]) as r:
    for t, f in r.frames(0.0, float(sys.argv[2])):
        n += 1
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    from musicperf.io.audio import load_audio
    from musicperf.io.video import VideoReader, probe

    video_dir = args.data / "video"
    pianist = video_dir / "pianist.avi"
    results: dict[str, object] = {}

    for name in sorted(p.name for p in video_dir.iterdir()):
        path = video_dir / name
        _, fast = _timed(lambda: probe(path))
        info, slow = _timed(lambda: probe(path, count_frames=True))
        results[f"probe {name}"] = {"header_s": round(fast, 4), "count_s": round(slow, 3),
                                    "frames": info.n_frames, "lost": info.lost_frames}

    for label, size in (("full 640x480", None), ("resized 112x112", (112, 112))):
        def read(size=size):
            with VideoReader(pianist, size=size) as r:
                return sum(1 for _ in r)
        n, dt = _timed(read)
        results[f"decode pianist.avi {label}"] = {"frames": n, "seconds": round(dt, 2),
                                                   "frames_per_s": round(n / dt, 1)}

    def clips():
        with VideoReader(pianist, size=(112, 112)) as r:
            return sum(1 for _ in r.clips(16, 16))
    n, dt = _timed(clips)
    results["clips 16x112x112 pianist.avi"] = {"clips": n, "seconds": round(dt, 2),
                                               "clips_per_s": round(n / dt, 1)}

    for seconds in (10.0, 1e9):
        out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(pianist), str(seconds)],
                             capture_output=True, text=True, check=True).stdout.split()
        label = "all" if seconds > 1e6 else f"{seconds:g} s"
        results[f"peak RSS reading {label} of pianist.avi"] = {"frames": int(out[0]),
                                                                "max_rss_MiB": round(int(out[1]) / 1024, 1)}

    for sr in (16000, 48000):
        (y, _), dt = _timed(lambda sr=sr: load_audio(pianist, sr=sr))
        results[f"load_audio pianist.avi sr={sr}"] = {"samples": int(y.shape[0]),
                                                      "seconds": round(dt, 3)}

    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
