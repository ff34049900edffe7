"""``musicperf score``: frame-level agreement between two annotation files."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="per-tier precision, recall, F1 and Cohen's kappa between two annotation files",
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
                   help="score only frames before this time (default: last annotation end)")
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
                   by=args.by)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))
    return 0
