"""``musicperf annotations show|convert``: inspect and convert annotation files.

``show FILE [--json]`` prints the tiers with their parents, annotation counts, value sets and
time ranges; ``convert IN OUT`` converts between ELAN ``.eaf``, the musicperf ``.csv``,
tab-delimited ``.txt``/``.tsv`` and Praat ``.TextGrid`` (formats from the suffixes). With
``--media VIDEO`` both check that no annotation ends after the video (the usual sign of times
written in milliseconds), and ``convert`` links the video in a written ``.eaf``. An ``.eaf``
converted to ``.eaf`` is written back whole (see :func:`musicperf.io.elan.write_eaf`): with
``--tiers`` only the other tiers are removed; ``--media`` replaces the master media descriptor.

Times the readers refuse (not finite, negative, beyond 100 hours) and unreadable XML encodings
are a one-line error, exit 2; what the readers drop (zero-length or untimed tiers) is one
warning line each, naming the file and the tier.

Heavy imports happen inside the command functions only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import warnings
from collections import Counter

log = logging.getLogger("musicperf.annotations")


@contextlib.contextmanager
def _warnings_as_log():
    """Report the readers' warnings as one log line each, without source lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                log.warning("%s", w.message)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "annotations",
        help="show or convert annotation files (ELAN .eaf, tab-delimited, CSV, Praat TextGrid)",
        description="Inspect and convert annotation files: ELAN .eaf/.etf, ELAN tab-delimited "
        "exports (.txt/.tsv/.csv), musicperf CSV (.csv) and Praat TextGrids.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    show = sub.add_parser(
        "show",
        help="list tiers with counts, value sets and time ranges",
        description="List the tiers of an annotation file: parent, number of annotations, "
        "distinct values and time range.",
    )
    show.add_argument("file", help="annotation file")
    show.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    show.add_argument("--tiers", metavar="PATTERN", help="only tiers whose name matches this glob pattern")
    show.add_argument("--media", metavar="VIDEO", help="check that no annotation ends after this video")
    show.add_argument("--max-values", type=int, default=8, metavar="N",
                      help="distinct values listed per tier in text output (default 8; all in JSON)")
    show.set_defaults(func=run_show)

    convert = sub.add_parser(
        "convert",
        help="convert between .eaf, .csv, .txt/.tsv (tab-delimited) and .TextGrid",
        description="Convert an annotation file; the formats come from the file suffixes "
        "(.eaf, .csv = musicperf CSV, .txt/.tsv = tab-delimited, .TextGrid).",
    )
    convert.add_argument("input", help="annotation file to read")
    convert.add_argument("output", help="annotation file to write (written atomically)")
    convert.add_argument("--tiers", metavar="PATTERN", help="only tiers whose name matches this glob pattern")
    convert.add_argument("--media", metavar="VIDEO",
                         help="check annotation times against this video and link it in a written .eaf")
    convert.add_argument("--no-vocabularies", action="store_true",
                         help="do not write controlled vocabularies into a new .eaf (an .eaf read from "
                         "an .eaf keeps its own vocabularies: the document is written back whole)")
    convert.set_defaults(func=run_convert)


def _check_media(aset, media) -> None:
    from musicperf.io.video import probe

    aset.check_duration(probe(media).duration, media=media)


def summarize(aset, *, file: str, fmt: str) -> dict:
    """A JSON-serialisable summary of an annotation set: tiers, counts, value sets, ranges."""
    start, end = aset.time_range
    tiers = []
    for tier in aset:
        counts = Counter(tier.values)
        t_start = min((a.start for a in tier.annotations), default=None)
        t_end = max((a.end for a in tier.annotations), default=None)
        tiers.append(
            {
                "name": tier.name,
                "parent": tier.parent,
                "linguistic_type": tier.linguistic_type,
                "participant": tier.participant,
                "vocabulary": tier.vocabulary,
                "count": len(tier),
                "n_values": len(counts),
                "values": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
                "start": t_start,
                "end": t_end,
            }
        )
    return {
        "file": file,
        "format": fmt,
        "n_tiers": len(aset),
        "n_annotations": sum(len(t) for t in aset),
        "time_range": [start, end],
        "media": [
            {"url": m.url, "mime_type": m.mime_type, "relative_url": m.relative_url, "time_origin": m.time_origin}
            for m in aset.media
        ],
        "vocabularies": aset.vocabularies,
        "tiers": tiers,
    }


def format_summary(summary: dict, *, max_values: int = 8) -> str:
    """Human-readable lines for :func:`summarize`'s output."""
    start, end = summary["time_range"]
    lines = [
        f"{summary['file']}: {summary['format']}, {summary['n_tiers']} tiers, "
        f"{summary['n_annotations']} annotations, {start:.3f}-{end:.3f} s"
    ]
    for m in summary["media"]:
        origin = f", time origin {m['time_origin']:.3f} s" if m["time_origin"] else ""
        lines.append(f"media: {m['url'] or '(none)'} ({m['mime_type'] or 'unknown type'}{origin})")
    for cv_id, values in summary["vocabularies"].items():
        lines.append(f"vocabulary {cv_id!r}: {len(values)} values")
    if not summary["tiers"]:
        return "\n".join(lines)
    width = max(12, *(len(t["name"]) for t in summary["tiers"]))
    pwidth = max(6, *(len(t["parent"] or "-") for t in summary["tiers"]))
    lines.append(f"{'tier':<{width}}  {'parent':<{pwidth}}  {'count':>6}  {'values':>6}  time range (s)")
    for t in summary["tiers"]:
        span = f"{t['start']:.3f}-{t['end']:.3f}" if t["count"] else "-"
        lines.append(f"{t['name']:<{width}}  {t['parent'] or '-':<{pwidth}}  {t['count']:>6}  {t['n_values']:>6}  {span}")
        if t["values"]:
            shown = [f"{v!r} x{n}" for v, n in list(t["values"].items())[:max_values]]
            more = t["n_values"] - len(shown)
            lines.append(f"{'':<{width}}  values: {', '.join(shown)}" + (f", ... (+{more} more)" if more > 0 else ""))
    return "\n".join(lines)


_FORMAT_NAMES = {"eaf": "ELAN EAF", "textgrid": "Praat TextGrid", "elan_tab": "ELAN tab-delimited text", "csv": "musicperf CSV"}


def run_show(args: argparse.Namespace) -> int:
    from musicperf.io import annotation_format, read_annotations

    with _warnings_as_log():
        aset = read_annotations(args.file, tier_filter=args.tiers)
    if args.media:
        _check_media(aset, args.media)
    summary = summarize(aset, file=args.file, fmt=_FORMAT_NAMES[annotation_format(args.file)])
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(format_summary(summary, max_values=args.max_values))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from musicperf.io import annotation_format, read_annotations, write_annotations

    out_format = annotation_format(args.output, for_writing=True)  # fail on a bad suffix before reading
    with _warnings_as_log():
        aset = read_annotations(args.input, tier_filter=args.tiers)
        if args.media:
            _check_media(aset, args.media)
        kwargs = {}
        if out_format == "eaf":
            kwargs = {"media": args.media, "vocabularies": not args.no_vocabularies}
        write_annotations(aset, args.output, **kwargs)
    n = sum(len(t) for t in aset)
    print(f"wrote {args.output}: {len(aset)} tiers, {n} annotations ({_FORMAT_NAMES[out_format]})")
    return 0
