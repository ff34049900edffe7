"""``musicperf demo``: the labelling workflow on a synthetic performance, end to end."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="synthesise a performance, train on its first 2/3, label the rest, score it, write a report",
        description=(
            "Synthesise a performance with known gestures, pretend its first two thirds were annotated by a "
            "human, train on them, label the last third, score the labels against the truth and write a "
            "review report. Everything goes into OUT."
        ),
    )
    p.add_argument("-o", "--output", default="demo-output", metavar="OUT", help="output folder (default demo-output)")
    p.add_argument("--seconds", type=float, default=90.0, help="length of the performance (default 90)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--labeller", choices=("clip", "frame"), default=None,
                   help="which labeller to train: frame (default: per-frame tracks, model chosen by "
                        "cross-validation) or clip (a head on clip features); see docs/labelling-real.md")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from musicperf import api
    from musicperf.demo import summary_table

    def step(msg: str) -> None:
        print(msg, flush=True)

    try:
        import musicperf.report.html  # noqa: F401

        report = True
    except ImportError:
        report = False
    result = api.demo(args.output, seconds=args.seconds, seed=args.seed, overwrite=args.overwrite,
                      progress=not args.quiet and sys.stderr.isatty(), step=step, report=report,
                      labeller=args.labeller)
    print()
    print(summary_table(result))
    p = result["paths"]
    print("Where to look:")
    if "report" in p:
        print(f"  review page (open in a browser): {p['report']}")
    print(f"  labels for ELAN (human tiers + 'auto:' tiers): {p['labelled']}")
    print(f"  per-frame probabilities: {p['probs']}")
    print(f"  scores: {p['scores']}   summary: {p['summary']}")
    print(f"  model: {p['model']}   truth: {p['truth']}")
    return 0
