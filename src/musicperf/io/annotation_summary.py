"""What an annotation file holds, and converting one format into another.

The library side of ``musicperf annotations show|convert`` (:func:`musicperf.api.annotations_show`,
:func:`musicperf.api.annotations_convert`): :func:`summarize_annotations` is a JSON-serialisable
summary of an :class:`~musicperf.io.annotations.AnnotationSet` (tiers with their parents, counts,
value sets and time ranges), :func:`format_annotation_summary` its text form, and
:func:`convert_annotations` reads one file and writes another (formats from the suffixes).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

#: Display names of the formats of :func:`musicperf.io.annotation_format`.
FORMAT_NAMES = {"eaf": "ELAN EAF", "textgrid": "Praat TextGrid", "elan_tab": "ELAN tab-delimited text",
                "csv": "musicperf CSV"}


def summarize_annotations(aset, *, file: str, fmt: str) -> dict:
    """A JSON-serialisable summary of an annotation set: tiers, counts, value sets, ranges.

    ``file`` and ``fmt`` (a display name, see :data:`FORMAT_NAMES`) are copied into it. Values are
    listed most frequent first (ties by value).
    """
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


def format_annotation_summary(summary: dict, *, max_values: int = 8) -> str:
    """Human-readable lines for :func:`summarize_annotations`'s output."""
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


def check_media(aset, media: str | Path) -> None:
    """Raise when an annotation of ``aset`` ends after the video ``media`` (the usual sign of
    times written in milliseconds); see :meth:`AnnotationSet.check_duration`."""
    from musicperf.io.video import probe

    aset.check_duration(probe(media).duration, media=media)


def show_annotations(file: str | Path, *, tiers: str | None = None, media: str | Path | None = None) -> dict:
    """Read ``file`` (only the tiers matching the glob ``tiers``), check it against the video
    ``media`` when given, and return :func:`summarize_annotations`'s summary."""
    from musicperf.io import annotation_format, read_annotations

    aset = read_annotations(file, tier_filter=tiers)
    if media:
        check_media(aset, media)
    return summarize_annotations(aset, file=str(file), fmt=FORMAT_NAMES[annotation_format(file)])


def convert_annotations(input: str | Path, output: str | Path, *, tiers: str | None = None,
                        media: str | Path | None = None, vocabularies: bool = True) -> dict:
    """Convert the annotation file ``input`` into ``output`` (formats from the suffixes).

    ``tiers`` keeps only the tiers matching a glob pattern; ``media`` checks the times against
    that video and, for an ``.eaf`` output, links it; ``vocabularies=False`` writes no controlled
    vocabularies into a new ``.eaf`` (an ``.eaf`` read from an ``.eaf`` is written back whole).
    A bad output suffix fails before anything is read. Returns ``{"output", "format", "n_tiers",
    "n_annotations"}`` (``format``: the written format's display name).
    """
    from musicperf.io import annotation_format, read_annotations, write_annotations

    out_format = annotation_format(output, for_writing=True)  # fail on a bad suffix before reading
    aset = read_annotations(input, tier_filter=tiers)
    if media:
        check_media(aset, media)
    kwargs = {"media": media, "vocabularies": vocabularies} if out_format == "eaf" else {}
    write_annotations(aset, output, **kwargs)
    return {"output": str(output), "format": FORMAT_NAMES[out_format], "n_tiers": len(aset),
            "n_annotations": sum(len(t) for t in aset)}
