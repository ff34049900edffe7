"""``musicperf report``: the HTML review page of labelled videos (thin: :func:`musicperf.api.report`)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="self-contained HTML review page per labelled video (video, error lanes, probabilities, scores)",
        description=(
            "Write one HTML page per video labelled by 'musicperf label': the video and, per class, the "
            "reference (or human) and predicted lanes side by side, with --reference an error lane (false "
            "positives and negatives) with previous/next-error navigation (keys p/n), the annotate-next tier "
            "(key q), the per-frame probabilities and per-class scores with bar charts and confusion matrices. "
            "A video browsers cannot play (AVI, MPEG-4 part 2, HEVC...) is shown as an H.264 copy at review "
            "size, made beside the page and reused while up to date. Nothing is loaded from the network."
        ),
    )
    p.add_argument("labels", nargs="+", metavar="LABELS",
                   help="<name>.labels.json files or folders written by 'musicperf label'")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="the .html file (one video) or a folder (one <name>.html per video)")
    p.add_argument("--reference", default=None, metavar="FILE",
                   help="ground-truth annotations to score against (one video only)")
    p.add_argument("--from", dest="start", type=float, default=None, metavar="SECONDS",
                   help="start of the scored part (default: the labelling's --from)")
    p.add_argument("--to", dest="end", type=float, default=None, metavar="SECONDS", help="end of the scored part")
    p.add_argument("--link-video", action="store_true",
                   help="link the video by a relative path instead of embedding it in the page")
    p.add_argument("--overwrite", action="store_true", help="replace existing pages")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from musicperf import api

    api.report(args.labels, args.output, reference=args.reference, start=args.start, end=args.end,
               link_video=args.link_video, overwrite=args.overwrite, progress=sys.stderr.isatty(),
               on_written=lambda page: print(f"wrote {page}", flush=True))
    return 0
