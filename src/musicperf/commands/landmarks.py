"""``musicperf landmarks VIDEO -o FILE.npz [--json] [--sheet PNG] [--overlay MP4] [--features CSV]``.

Extracts MediaPipe pose, face-mesh and hand landmarks per frame (cached per video and
extractor version), writes them to an ``.npz`` file and prints a summary: frames, fps and the
detection rate of each part. Calls :func:`musicperf.api.landmarks`. Heavy imports (mediapipe, PyAV,
Pillow) happen inside :func:`run`.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "landmarks",
        help="extract body, face and hand landmarks (MediaPipe) from a video",
        description=(
            "Extract per-frame landmarks with MediaPipe Holistic: pose (33 points with visibility), "
            "face mesh (468, +10 iris points) and both hands (21 each); frames where Holistic finds "
            "no body fall back to the stand-alone hand detector. Missing detections are NaN. "
            "Results are cached per video and extractor version. Needs musicperf[landmarks]."
        ),
    )
    p.add_argument("video", help="video file")
    p.add_argument("-o", "--output", required=True, help="landmark file to write (.npz)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--sheet", metavar="PNG", help="also write a contact sheet with the landmarks drawn")
    p.add_argument("--overlay", metavar="MP4", help="also write the video with the landmarks drawn")
    p.add_argument("--features", metavar="CSV", help="also write the per-frame gesture features as CSV")
    p.add_argument("--hands", choices=("fallback", "fill", "never"), default="fallback",
                   help="stand-alone hand detector: on frames without a body (default), also where "
                        "Holistic missed a hand (fill), or never")
    p.add_argument("--no-iris", action="store_true", help="468-point face mesh without the iris refinement")
    p.add_argument("--start", type=float, default=0.0, help="first second to process")
    p.add_argument("--end", type=float, default=None, help="last second to process")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="run MediaPipe on every N-th frame and interpolate in between (default 1: every frame)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="MediaPipe processes on contiguous stretches of the video (default 0: one per CPU, at "
                        "most 4, none shorter than 10 s; 1: one process)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the landmark cache")
    p.add_argument("--cache-dir", default=None, help="cache folder (default $MUSICPERF_CACHE or ~/.cache/musicperf/features)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicperf import api

    res = api.landmarks(args.video, args.output, hands=args.hands, refine_face=not args.no_iris, start=args.start,
                        end=args.end, max_frames=args.max_frames, progress=not args.no_progress,
                        cache=not args.no_cache, cache_dir=args.cache_dir, every=args.every,
                        workers=args.workers or None, sheet=args.sheet, overlay=args.overlay, features=args.features)
    summary = res.summary()
    summary["video"] = str(args.video)
    summary["cache_hit"] = bool(res.landmarks.meta.get("cache_hit"))
    summary["written"] = res.written
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        rates = summary["detection_rate"]
        print(f"{args.video}: {summary['frames']} frames at {summary['fps']:.3f} fps ({summary['width']}x{summary['height']})")
        print("detected: " + ", ".join(f"{k.replace('_', ' ')} {100 * v:.1f} %" for k, v in rates.items())
              + f"; hands from the fallback detector: {summary['hands_from_fallback']}")
        for w in res.written:
            print(f"wrote {w}")
    return 0
