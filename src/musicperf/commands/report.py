"""``musicperf report``: the HTML review page of labelled videos."""

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
    from pathlib import Path

    from musicperf.errors import ParameterError
    from musicperf.report.html import write_report_from_summary

    summaries: list[Path] = []
    for entry in map(Path, args.labels):
        if entry.is_dir():
            found = sorted(entry.glob("*.labels.json"))
            if not found:
                raise ParameterError(f"no *.labels.json in folder '{entry}' (run 'musicperf label' first)")
            summaries += found
        elif entry.is_file():
            summaries.append(entry)
        else:
            raise ParameterError(f"'{entry}' does not exist")
    out = Path(args.output)
    if len(summaries) > 1 and args.reference:
        raise ParameterError("--reference scores one video; give one labels file with it")
    if out.suffix.lower() in (".html", ".htm"):
        if len(summaries) > 1:
            raise ParameterError(f"{len(summaries)} videos need an output folder, not the file '{out}'")
        targets = [out]
    else:
        targets = [out / (s.name[: -len(".labels.json")] + ".html") for s in summaries]
    for t in targets:
        if t.exists() and not args.overwrite:
            raise ParameterError(f"'{t}' already exists; pass --overwrite to replace it")
    for s, t in zip(summaries, targets):
        write_report_from_summary(s, t, reference=args.reference, start=args.start, end=args.end,
                                  embed_video=not args.link_video, progress=sys.stderr.isatty())
        print(f"wrote {t}")
    return 0
