"""Landmark extraction and optical-flow throughput, and per-part detection rates on real videos.

Usage::

    .venv/bin/python benchmarks/bench_landmarks.py [--max-frames N] [--flow-frames N] [--videos a.avi b.avi]

Prints, per video: frames, extraction frames per second (MediaPipe Holistic, model complexity
1, with the stand-alone hand fallback), detection rates of pose, face, left and right hand,
hands found by the fallback; then Farneback flow pairs per second at 320 x 240. Landmarks come
from the cache when an earlier run (or ``musicperf landmarks``) computed them with the same
settings; the frames per second shown is then the one measured when they were computed
(stored with them). ``--no-cache`` measures afresh; ``--save DIR`` keeps ``.npz`` files and
contact sheets.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--videos", nargs="*", default=[str(SHARED / "pianist.avi"), str(SHARED / "dancer.avi")])
    p.add_argument("--max-frames", type=int, default=None, help="landmark frames per video (default all)")
    p.add_argument("--flow-frames", type=int, default=150)
    p.add_argument("--save", default=None, help="folder for the .npz files and contact sheets")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-cache", action="store_true", help="extract again instead of reading the cache")
    args = p.parse_args()

    from musicperf.features.flow import flow_features
    from musicperf.features.landmarks import extract_landmarks

    rows = []
    for v in args.videos:
        lm = extract_landmarks(v, max_frames=args.max_frames, cache=not args.no_cache, progress=True)
        s = lm.summary()
        row = {"video": Path(v).name, "frames": s["frames"], "fps_video": s["fps"], "size": f"{s['width']}x{s['height']}",
               "extract_fps": lm.meta.get("frames_per_second"), "from_cache": bool(lm.meta.get("cache_hit")),
               "detection_rate": s["detection_rate"],
               "hands_from_fallback": s["hands_from_fallback"]}
        t1 = time.perf_counter()
        fl = flow_features(v, max_frames=args.flow_frames, size=(240, 320), cache=False)
        row["flow_fps_320x240"] = fl.meta["flow_pairs_per_second"]
        row["flow_total_fps"] = round(len(fl.values) / (time.perf_counter() - t1), 2)
        rows.append(row)
        if args.save:
            from musicperf.report.overlay import contact_sheet

            out = Path(args.save)
            lm.save(out / f"{Path(v).stem}.npz")
            contact_sheet(v, lm, out / f"{Path(v).stem}.png")
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| video | frames | landmarks frames/s | pose | face | left hand | right hand | hands by fallback | Farneback pairs/s (320x240) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        d = r["detection_rate"]
        print(f"| {r['video']} ({r['size']}, {r['fps_video']:g} fps) | {r['frames']} | {r['extract_fps']} | "
              f"{100 * d['pose']:.1f} % | {100 * d['face']:.1f} % | {100 * d['left_hand']:.1f} % | "
              f"{100 * d['right_hand']:.1f} % | {r['hands_from_fallback']} | {r['flow_fps_320x240']} |")


if __name__ == "__main__":
    main()
