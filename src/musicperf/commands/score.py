"""``musicperf score``: frame-level agreement between two annotation files."""

from __future__ import annotations

import argparse

from musicperf.io.tabular import format_clock as _clock  # ELAN's hh:mm:ss.mmm


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="per-tier precision, recall, F1, Cohen's kappa, segmental F1@k and edit score between two annotation files",
        description=(
            "Compare a PREDICTION (e.g. the .eaf written by 'musicperf label') with a REFERENCE "
            "frame by frame. Tier 'auto: X' of the prediction is scored against tier 'X' of the "
            "reference; otherwise tiers with the same name are compared (agreement between two "
            "human annotators). Signs of misuse are warned about on stderr, one line each, and listed "
            "under 'warnings' in the JSON: a reference that looks like a prediction (swapped files), "
            "annotations that do not overlap in time, tiers empty in both files."
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
    import sys

    from musicperf.api import score
    from musicperf.evaluate.agreement import format_table
    from musicperf.io import read_annotations

    tiers = [t.strip() for t in args.tiers.split(",") if t.strip()] if args.tiers else None
    reference, prediction = read_annotations(args.reference), read_annotations(args.prediction)
    result = score(reference, prediction, start=args.start, end=args.end, fps=args.fps, tiers=tiers, by=args.by,
                   media=args.media, duration=args.duration)
    fired = misuse_warnings(reference, prediction, result, reference_name=args.reference,
                            prediction_name=args.prediction, start=args.start, end=args.end)
    result["warnings"] = fired
    for w in fired:
        print(f"musicperf score: warning: {w['message']}", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))
        if result["window"] == "annotations":
            print("no media found (linked from the documents or given with --media/--duration): the window "
                  "ends at the last annotation, so frames after it are not scored")
    return 0


def misuse_warnings(reference, prediction, result: dict, *, reference_name="the reference",
                    prediction_name="the prediction", start: float | None = None, end: float | None = None) -> list:
    """Signs that plausible-looking scores come from misuse, as ``[{"code", "message"}]``.

    ``reference_is_prediction``
        The reference has ``auto:`` tiers (what ``musicperf label`` writes) and the prediction
        has none, or the reference has nothing but ``auto:`` tiers: the two files are probably
        swapped (the reference comes first).
    ``no_overlap``
        The annotations of the two files do not overlap in time, or the ``--from``/``--to``
        window holds no annotation of either: every F1 is 0 (or undefined) by construction.
    ``empty_tier``
        A scored tier is empty in both files inside the window: its kappa of 1 and its missing
        precision/recall say nothing (one warning per tier).
    """
    from musicperf.evaluate.agreement import AUTO_PREFIX

    out = []

    def warn(code, message, **extra):
        out.append({"code": code, "message": message, **extra})

    def nonempty(aset):
        return [t.name for t in aset if len(t)]

    ref_tiers, pred_tiers = nonempty(reference), nonempty(prediction)
    ref_auto = [t for t in ref_tiers if t.startswith(AUTO_PREFIX)]
    pred_auto = [t for t in pred_tiers if t.startswith(AUTO_PREFIX)]
    if ref_auto and (len(ref_auto) == len(ref_tiers) or not pred_auto):
        warn("reference_is_prediction",
             f"the reference '{reference_name}' looks like a prediction (it has {len(ref_auto)} 'auto:' tier(s)"
             + (", and nothing else" if len(ref_auto) == len(ref_tiers) else f", '{prediction_name}' has none")
             + "): are the files swapped? The reference comes first: musicperf score REFERENCE PREDICTION")
    if ref_tiers and pred_tiers:
        (r0, r1), (p0, p1) = reference.time_range, prediction.time_range
        if r1 <= p0 or p1 <= r0:
            warn("no_overlap",
                 f"the reference's annotations ({_clock(r0)}-{_clock(r1)}) and the prediction's "
                 f"({_clock(p0)}-{_clock(p1)}) do not overlap in time: every F1 is 0 by construction "
                 "(different videos, or times shifted?)")
        elif start is not None or end is not None:
            w0, w1 = result["start"], result["end"]
            inside = [a for t in (*reference, *prediction) for a in t.annotations if a.start < w1 and a.end > w0]
            if not inside:
                warn("no_overlap",
                     f"the scored window {_clock(w0)}-{_clock(w1)} holds no annotation of either file "
                     f"(reference {_clock(r0)}-{_clock(r1)}, prediction {_clock(p0)}-{_clock(p1)})")
    for name, row in result.get("tiers", {}).items() if not out or out[-1]["code"] != "no_overlap" else ():
        if row.get("support") == 0 and row.get("predicted") == 0:
            warn("empty_tier",
                 f"tier '{name}' is empty in both files inside the scored window: its kappa "
                 f"{_fmt(row.get('kappa'))} and F1 {_fmt(row.get('f1'))} say nothing", tier=name)
    return out


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


