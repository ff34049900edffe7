"""``musicperf score``: frame-level agreement between two annotation files."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="per-tier precision, recall, F1, Cohen's kappa, segmental F1@k and edit score between two annotation files",
        description=(
            "Compare a PREDICTION (e.g. the .eaf written by 'musicperf label') with a REFERENCE "
            "frame by frame. Tier 'auto: X' of the prediction is scored against tier 'X' of the "
            "reference; otherwise tiers with the same name are compared (agreement between two "
            "human annotators)."
        ),
    )
    p.add_argument("reference", help="reference annotations (.eaf, .TextGrid, tab-delimited export)")
    p.add_argument("prediction", help="predicted or second annotator's annotations")
    p.add_argument("--from", dest="start", type=float, default=None, metavar="SECONDS",
                   help="score only frames from this time on (e.g. the end of the training part)")
    p.add_argument("--to", dest="end", type=float, default=None, metavar="SECONDS",
                   help="score only frames before this time (default: the end of the media)")
    p.add_argument("--media", default=None, metavar="VIDEO",
                   help="the video the annotations describe; the scored window runs to its end "
                        "(default: the media the reference links, else the prediction's)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="the media's duration, instead of --media")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate of the scoring grid (default 25)")
    p.add_argument("--tiers", default=None, help="comma-separated reference tiers to score (default: all)")
    p.add_argument("--by", choices=("tier", "value"), default="tier",
                   help="classes are tier names (default) or annotation values (models trained with --by value)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from musicperf.api import score
    from musicperf.evaluate.agreement import format_table

    tiers = [t.strip() for t in args.tiers.split(",") if t.strip()] if args.tiers else None
    result = score(args.reference, args.prediction, start=args.start, end=args.end, fps=args.fps, tiers=tiers,
                   by=args.by, media=args.media, duration=args.duration)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))
        if result["window"] == "annotations":
            print("no media found (linked from the documents or given with --media/--duration): the window "
                  "ends at the last annotation, so frames after it are not scored")
    return 0
