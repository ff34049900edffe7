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

The command is thin: it parses, calls :func:`musicperf.api.annotations_show` /
:func:`musicperf.api.annotations_convert` and prints (the work is in
:mod:`musicperf.io.annotation_summary`). Heavy imports happen inside the command functions only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import warnings

from musicperf.io.annotation_summary import format_annotation_summary, summarize_annotations

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


# The summary helpers' old names (they live in musicperf.io.annotation_summary now).
summarize = summarize_annotations
format_summary = format_annotation_summary


def run_show(args: argparse.Namespace) -> int:
    from musicperf import api

    with _warnings_as_log():
        summary = api.annotations_show(args.file, tiers=args.tiers, media=args.media)
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(format_annotation_summary(summary, max_values=args.max_values))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from musicperf import api

    with _warnings_as_log():
        res = api.annotations_convert(args.input, args.output, tiers=args.tiers, media=args.media,
                                      vocabularies=not args.no_vocabularies)
    print(f"wrote {res['output']}: {res['n_tiers']} tiers, {res['n_annotations']} annotations ({res['format']})")
    return 0
