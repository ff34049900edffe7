"""``musicperf stats``: dataset statistics of Section 3.2 of ``001`` (Tables 2, 3, 5; Figures 1, 2).

Heavy imports (numpy, av, matplotlib) happen inside :func:`run` only.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from musicperf.errors import ParameterError

TAXONOMIES = ("gestures18", "superclasses7", "tiers", "values")


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


def _per_file(option: str, text: str | None, n: int) -> list[float] | None:
    """``"25"`` or ``"25,30"`` -> one positive float per annotation file given alone."""
    if text is None:
        return None
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise ParameterError(f"{option} must be a number or comma-separated numbers, got {text!r}") from None
    if not all(v > 0 for v in values):
        raise ParameterError(f"{option} must be positive, got {text!r}")
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ParameterError(f"{option} gives {len(values)} values for {n} annotation files without a video")
    return values


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "video"


def run(args) -> int:
    import logging

    import numpy as np  # noqa: F401  (numpy is needed by everything below)

    from musicperf._util import write_text_atomic
    from musicperf.io import read_annotations
    from musicperf.labels import Taxonomy
    from musicperf.labels.stats import (
        LabelledVideo,
        class_correlation,
        correlation_table,
        dataset_labels,
        frames_table,
        occurrences_table,
        samples_table,
    )
    from musicperf.report.heatmap import write_correlation_heatmap

    log = logging.getLogger("musicperf.stats")
    if args.length < 1 or args.stride < 1:
        raise ParameterError(f"--length and --stride must be positive, got {args.length} and {args.stride}")

    # ---------------------------------------------------------------- inputs
    pairs = [_split_pair(item) for item in args.data]
    alone = sum(1 for video, _ in pairs if video is None)
    fps_list = _per_file("--fps", args.fps, alone)
    dur_list = _per_file("--duration", args.duration, alone)
    loaded = []  # LabelledVideo per DATA item
    used: dict[str, int] = {"all": 1}  # "all" names the all-videos heatmaps
    k = 0
    for video, ann in pairs:
        aset = read_annotations(ann)
        if video is not None:
            from musicperf.io.video import probe

            info = probe(video, count_frames=args.count_frames)
            aset.check_duration(info.duration, media=video)
            fps, n_frames, stem = float(info.fps), int(info.n_frames), video.stem
        else:
            if fps_list is None or dur_list is None:
                raise ParameterError(
                    f"'{ann}' is given without a video: pass VIDEO={ann} or both --fps and --duration"
                )
            fps, duration = fps_list[k], dur_list[k]
            k += 1
            aset.check_duration(duration)
            n_frames = int(np.floor(duration * fps + 1e-6))
            stem = ann.stem
        n = used.get(stem, 0) + 1
        used[stem] = n
        name = stem if n == 1 else f"{stem}-{n}"
        loaded.append(LabelledVideo(name, aset, fps, n_frames))
        log.info("%s: %d frames at %.3f fps, %d tiers", name, n_frames, fps, len(aset))

    # ---------------------------------------------------------------- taxonomies
    sets = [v.annotations for v in loaded]
    if args.taxonomy in ("gestures18", "superclasses7"):
        if args.background:
            raise ParameterError("--background is for --taxonomy tiers|values; the built-in taxonomies have 'Normal play'")
        main = Taxonomy.builtin(args.taxonomy)
    else:
        main = Taxonomy.from_annotations(sets, by=args.taxonomy[:-1], background=args.background)
    if args.mapping is not None:
        main = Taxonomy.from_yaml(args.mapping, base=main)
    sup_arg = args.super
    if sup_arg == "auto":
        sup_arg = "superclasses7" if args.taxonomy == "gestures18" else "none"
    if sup_arg == "none":
        sup = None
    elif sup_arg == "superclasses7":
        sup = Taxonomy.builtin("superclasses7", by=main.by)
    else:
        sup = Taxonomy.from_yaml(Path(sup_arg), base=main)

    # ---------------------------------------------------------------- tables
    out: Path = args.output
    written: list[Path] = []

    def save(table, stem: str) -> None:
        for ext, text in (("csv", table.to_csv()), ("md", table.to_markdown())):
            path = out / f"{stem}.{ext}"
            write_text_atomic(path, text)
            written.append(path)

    labels = dataset_labels(loaded, main)
    save(frames_table(loaded, labels, main), "table2_frames")
    save(occurrences_table(loaded, labels, main), "table3_occurrences")
    sup_labels = dataset_labels(loaded, sup, unknown="ignore") if sup is not None else labels
    save(samples_table(loaded, sup_labels, sup or main, length=args.length, stride=args.stride), "table5_samples")

    # ---------------------------------------------------------------- heatmaps
    def heatmaps(prefix: str, what: str, tax, ys) -> None:
        runs = [(v.name, y) for v, y in zip(loaded, ys)]
        if len(loaded) > 1:
            runs.append(("all", np.concatenate(ys, axis=0)))
        for name, y in runs:
            corr = class_correlation(y)
            label = "all videos" if name == "all" and len(loaded) > 1 else name
            title = f"Inter-correlation of {what}: {label}"
            stem = f"{prefix}_correlation_{_safe(name)}"
            written.append(write_correlation_heatmap(out / f"{stem}.png", corr, tax.classes, title=title))
            path = out / f"{stem}.csv"
            write_text_atomic(path, correlation_table(corr, tax.classes, title=title).to_csv())
            written.append(path)

    heatmaps("figure1", "classes", main, labels)
    if sup is not None:
        heatmaps("figure2", "super-classes", sup, sup_labels)

    print(f"wrote {len(written)} files to {out}: " + ", ".join(p.name for p in written))
    return 0
