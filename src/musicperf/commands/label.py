"""``musicperf label``: label videos with a trained model."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "label",
        help="label videos with a trained model: .eaf + per-frame probability CSV + JSON summary per video",
        description=(
            "Write, per video, OUT/<name>.eaf (predicted tiers 'auto: <class>'; the tiers of the video's own "
            ".eaf, if any, are copied untouched), OUT/<name>.probs.csv (per-frame probabilities) and "
            "OUT/<name>.labels.json. Videos already labelled by the same model are skipped, so an interrupted "
            "run can be restarted."
        ),
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO",
                   help="videos, folders of videos, VIDEO=ANNOTATIONS pairs or a manifest.yaml")
    p.add_argument("-m", "--model", required=True, metavar="MODEL_DIR", help="written by 'musicperf train'")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    p.add_argument("--from", dest="after", type=float, default=None, metavar="SECONDS",
                   help="predict only from this time on (the end of the human-annotated part)")
    p.add_argument("--queries", type=int, default=5, metavar="N",
                   help="frame-labeller models: write the N stretches where the model is least sure as the "
                        "'auto-query' tier, ranked (annotate them next, then train again; 0: none)")
    p.add_argument("--overwrite", action="store_true", help="redo videos whose outputs exist")
    p.add_argument("--feature-cache", nargs="?", const=True, default=None, metavar="DIR",
                   help="keep clip features in DIR (default: the user cache folder), so relabelling "
                        "with a retrained model does not decode the video again")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model's 3D-CNN backbone: starts tens of seconds later, then faster per "
                        "clip (worth it for long videos)")
    p.add_argument("--numeric-mode", choices=("auto", "fp32", "bf16"), default=None,
                   help="numeric mode of a 3D-CNN backbone: auto (default; decided once per machine and cached, "
                        "or MUSICPERF_NUMERIC_MODE), fp32, or bf16 (autocast, where the CPU has native bf16)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    from musicperf.commands.extract import add_engine_options

    add_engine_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.engine is not None:
        from musicperf.commands.extract import run_engine_label

        return run_engine_label(args)
    from musicperf.api import label

    results = label(args.videos, args.model, args.output, after=args.after, overwrite=args.overwrite,
                    progress=not args.quiet, feature_cache=args.feature_cache, compile=args.compile,
                    queries=args.queries, numeric_mode=args.numeric_mode)
    for r in results:
        if r.get("skipped"):
            print(f"{r['video']}: already labelled, skipped ({r['outputs']['eaf']})")
            continue
        note = f" (resampled from {r['video_fps']:g} to {r['fps']:g} fps)" if r["resampled"] else ""
        n = sum(v["intervals"] for v in r["predicted"].values())
        print(f"{r['video']}: {n} intervals in {len(r['classes'])} classes{note} -> {r['outputs']['eaf']}")
        if r.get("redone"):
            print(f"  note: labelled again ({r['redone']})")
        if r.get("human_annotations") is None:
            print("  note: no human annotation file found beside the video (a same-named .eaf, or give VIDEO=ANNOTATIONS); "
                  "the output holds the predictions only")
        for c in r.get("not_learnable", []):
            print(f"  note: '{c}' is not learnable from the training annotations: labelled with the constant "
                  f"that scored best, not detected")
        if r.get("queries"):
            q = ", ".join(f"{x['start']:.1f}-{x['end']:.1f} s" for x in r["queries"])
            print(f"  annotate next (tier 'auto-query', least sure first): {q}")
        if r["tiers_unknown_to_model"]:
            print(f"  note: tiers {', '.join(r['tiers_unknown_to_model'])} are not classes of the model; kept, not predicted")
    return 0
