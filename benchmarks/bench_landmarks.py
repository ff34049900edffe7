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

``--sweep SECONDS`` instead measures what each sampling setting costs in accuracy: MediaPipe
on every frame of the first SECONDS of the first video (one process: the reference), then each
setting (fixed every 2nd / 3rd frame, motion-driven with several thresholds and ``max_every``,
the pose and hand graphs only), each in one process, in turn, printing the share of frames the
model saw, the seconds taken, and per part the mean and 95th-percentile distance (pixels) to
the every-frame landmarks and the share of frames where every-frame tracking found the part and
the sampled result has it missing::

    .venv/bin/python benchmarks/bench_landmarks.py --sweep 20
"""

from __future__ import annotations

import argparse
import json
import os
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
    p.add_argument("--sweep", type=float, default=None, metavar="SECONDS",
                   help="accuracy and time of each sampling setting on the first SECONDS of the first video")
    args = p.parse_args()
    if args.sweep:
        sweep(args.videos[0], args.sweep)
        return

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


SWEEP = (
    ("every 2nd frame", {"every": 2}),
    ("every 3rd frame", {"every": 3}),
    ("motion, 2-6 frames, 3 %", {"every": 2, "max_every": 6, "motion_threshold": 3.0}),
    ("motion, 2-6 frames, 4 %", {"every": 2, "max_every": 6, "motion_threshold": 4.0}),
    ("motion, 2-8 frames, 4 %", {"every": 2, "max_every": 8, "motion_threshold": 4.0}),
    ("motion, 3-6 frames, 3 %", {"every": 3, "max_every": 6, "motion_threshold": 3.0}),
    ("pose + hands, motion, 2-6 frames, 3 %", {"every": 2, "max_every": 6, "motion_threshold": 3.0,
                                                "parts": "pose,hands"}),
)


def sweep(video: str, seconds: float) -> None:
    import numpy as np

    from musicperf.features.fastpath import describe_cpu
    from musicperf.features.landmarks import extract_landmarks

    print(f"machine: {describe_cpu()}; load average {os.getloadavg()[0]:.1f}")
    print(f"command: benchmarks/bench_landmarks.py --sweep {seconds:g} --videos {video}\n")
    refs = {}

    def reference(parts):
        if parts not in refs:
            t0 = time.perf_counter()
            refs[parts] = (extract_landmarks(video, end=seconds, cache=False, parts=parts), time.perf_counter() - t0)
        return refs[parts]

    print("| setting | model frames | s (x real time, 1 process) | pose px mean (p95) | left hand | right hand | face | "
          "lost: left / right hand, face |")
    print("|---|---|---|---|---|---|---|---|")
    ref, t_ref = reference(None)
    print(f"| every frame (reference) | 100 % | {t_ref:.1f} ({t_ref / seconds:.2f}) | 0 | 0 | 0 | 0 | 0 |")
    for name, cfg in SWEEP:
        ref, _ = reference(cfg.get("parts"))
        t0 = time.perf_counter()
        lm = extract_landmarks(video, end=seconds, cache=False, **cfg)
        t = time.perf_counter() - t0
        cells, lost = [], []
        for part in ("pose", "left_hand", "right_hand", "face"):
            a, b = lm.part(part)[..., :2], ref.part(part)[..., :2]
            ok = np.isfinite(a).all(-1) & np.isfinite(b).all(-1)
            d = np.linalg.norm((a - b) * [lm.width, lm.height], axis=-1)[ok]
            cells.append(f"{d.mean():.1f} ({np.percentile(d, 95):.0f})" if d.size else "-")
            found = np.isfinite(b[..., 0]).any(-1)
            if part != "pose":
                lost.append(f"{100 * (found & ~np.isfinite(a[..., 0]).any(-1)).sum() / max(found.sum(), 1):.0f} %"
                            if found.any() else "-")
        print(f"| {name} | {100 * lm.meta['model_frames'] / len(lm):.0f} % | {t:.1f} ({t / seconds:.2f}) | "
              f"{' | '.join(cells)} | {' / '.join(lost)} |", flush=True)


if __name__ == "__main__":
    main()
