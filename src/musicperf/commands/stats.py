"""``musicperf stats``: dataset statistics of Section 3.2 of ``001`` (Tables 2, 3, 5; Figures 1, 2).

Parses the arguments and calls :func:`musicperf.api.stats` (the pipeline is
:func:`musicperf.labels.stats.dataset_stats`). Heavy imports (numpy, av, matplotlib) happen
inside :func:`run` only.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from musicperf.errors import ParameterError

TAXONOMIES = ("gestures18", "superclasses7", "tiers", "values")  # labels.stats.STATS_TAXONOMIES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "stats",
        help="per-class frame, occurrence and sample counts and class correlation heatmaps of a dataset",
        description=(
            "Write the dataset tables of 001 (Table 2: frames per class per video; Table 3: occurrences; "
            "Table 5: 16-frame samples per super-class) as CSV and Markdown, and the class inter-correlation "
            "heatmaps of Figures 1 and 2 (Pearson correlation of per-frame labels) as PNG."
        ),
        epilog=(
            "example: musicperf stats concert.mp4=concert.eaf rehearsal.mp4=rehearsal.eaf -o stats/\n"
            "         musicperf stats take1.eaf --fps 25 --duration 480.55 -o stats/"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "data",
        nargs="+",
        metavar="DATA",
        help="VIDEO=ANNOTATIONS pairs (EAF, TextGrid, ...), or an annotation file alone with --fps and --duration",
    )
    p.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument(
        "--fps",
        metavar="F[,F...]",
        help="frame rate for annotation files given without a video: one for all, or one per such file (comma-separated)",
    )
    p.add_argument(
        "--duration",
        metavar="S[,S...]",
        help="seconds, for annotation files given without a video: one for all, or one per such file (comma-separated)",
    )
    p.add_argument(
        "--taxonomy",
        default="gestures18",
        choices=TAXONOMIES,
        help="classes of Tables 2 and 3 and Figure 1: the 18 classes of 001 (default), its 7 super-classes, "
        "or one class per tier name / annotation value found in the files",
    )
    p.add_argument("--mapping", type=Path, metavar="FILE.yaml", help="rename/merge/drop rules applied to --taxonomy")
    p.add_argument(
        "--background",
        metavar="NAME",
        help="with --taxonomy tiers|values: add a derived background class NAME (on where no other class is)",
    )
    p.add_argument(
        "--super",
        default="auto",
        metavar="superclasses7|none|FILE.yaml",
        help="classes of Table 5 and Figure 2: the 7 super-classes of 001, a mapping applied to the main "
        "taxonomy, or none (Table 5 uses the main taxonomy, no Figure 2); default: superclasses7 with "
        "--taxonomy gestures18, none otherwise",
    )
    p.add_argument("--length", type=int, default=16, help="frames per sample for Table 5 (default 16)")
    p.add_argument("--stride", type=int, default=16, help="frames between sample starts (default 16: no overlap)")
    p.add_argument(
        "--count-frames", action="store_true", help="decode each video to count its frames exactly (slow)"
    )
    p.set_defaults(func=run)


def _split_pair(item: str) -> tuple[Path | None, Path]:
    """``VIDEO=ANNOTATIONS`` -> (video, annotations); a lone file -> (None, file)."""
    if "=" in item and not Path(item).exists():
        # split at the first '=' whose left side is a file, so either path may contain '='
        for m in re.finditer("=", item):
            left, right = item[: m.start()], item[m.end() :]
            if Path(left).is_file():
                return Path(left), Path(right)
        left, _, right = item.partition("=")
        from musicperf.errors import DecodeError

        raise DecodeError(f"video file '{left}' does not exist (in DATA '{item}')")
    return None, Path(item)


def _numbers(option: str, text: str | None) -> list[float] | None:
    """``"25"`` or ``"25,30"`` -> floats; the library checks them and spreads them over the files
    given without a video (:func:`musicperf.labels.stats.load_labelled_videos`)."""
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise ParameterError(f"{option} must be a number or comma-separated numbers, got {text!r}") from None


def run(args) -> int:
    from musicperf import api

    pairs = [_split_pair(item) for item in args.data]
    res = api.stats(pairs, args.output, fps=_numbers("--fps", args.fps),
                    duration=_numbers("--duration", args.duration), taxonomy=args.taxonomy,
                    mapping=args.mapping, background=args.background, super_classes=args.super, length=args.length,
                    stride=args.stride, count_frames=args.count_frames)
    print(f"wrote {len(res.written)} files to {args.output}: " + ", ".join(p.name for p in res.written))
    return 0
