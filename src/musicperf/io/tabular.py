"""Tabular annotations: ELAN tab-delimited text exports and the musicperf CSV.

Three tab-delimited layouts are read by :func:`read_elan_tab`, told apart by the header:

* **Column groups** (ELAN's multi-tier "overlaps" export, e.g. ``elan_txt/teicorpo_extend.csv``):
  a quoted header of repeated groups ``AnnotationN-M, BeginTime, EndTime, Duration, TierName,
  TierType, TierParticipant`` (plus ``TranscriptionName``), a UTF-8 byte-order mark, a blank
  second line, and one row per combination of overlapping annotations, so each annotation
  appears on many rows. Each group's ``TierName`` cell says which tier the annotation belongs
  to (a group can mix tiers); rows are de-duplicated per tier. The placeholder ``<empty>`` is
  read as an empty value.
* **Plain export with a header** (ELAN "Export > Tab-delimited Text" with column labels): the
  tier, participant, begin, end, duration and annotation columns are found by their labels
  (``Tier``, ``Begin Time - ss.msec``, ``End Time - hh:mm:ss.ms``, ``Annotation``...). When
  there is no tier column, every column that is not a time or participant is a tier of its own
  (ELAN's "separate column per tier" option), named by its label.
* **Plain export without a header**: ``tier [participant] begin [begin...] end [...] duration
  [...] value``; time columns are recognised by their content, the value is the last column.

Times may be seconds (``12.345``), ``hh:mm:ss.ms`` / ``mm:ss.ms``, or milliseconds in columns
labelled ``msec``. Where a file offers one time in several formats, ``hh:mm:ss.ms`` or seconds
are preferred over integer milliseconds. A headerless column of bare integers is taken as
seconds.

:func:`write_elan_tab` writes the plain layout with a header (seconds to the millisecond, as
ELAN does); :func:`read_csv` / :func:`write_csv` use the musicperf CSV, columns
``tier,start,end,value`` with times in seconds. Neither tabular format can hold an empty tier.

Validation: a time that is negative or beyond 100 hours (or not finite) is an
:class:`AnnotationError` naming the file, line, tier and value. A tier whose annotations all
have zero length is dropped with an :class:`~musicperf.io.annotations.AnnotationWarning` naming
it (an ELAN export cannot hold a meaningful one), except in a musicperf CSV, where it is a point
tier (a Praat TextTier written by :func:`write_csv`) and is kept; zero-length annotations among
intervals are kept as points with a warning.

Imports only the standard library.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from pathlib import Path

from musicperf._util import write_text_atomic
from musicperf.errors import AnnotationError
from musicperf.io.annotations import Annotation, AnnotationSet, Tier, check_time, zero_length_rule

__all__ = ["read_elan_tab", "write_elan_tab", "read_csv", "write_csv", "sniff_tabular", "parse_time"]

CSV_COLUMNS = ("tier", "start", "end", "value")
EMPTY_PLACEHOLDER = "<empty>"

_HMS = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d*)?)$")
_SECONDS = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)$")


def parse_time(text: str, *, unit: str = "auto") -> float:
    """Parse a time cell into seconds.

    Parameters
    ----------
    text : str
        ``"12.345"`` (seconds), ``"00:00:12.345"`` or ``"00:12.345"``, or milliseconds.
    unit : {"auto", "s", "hms", "ms"}
        ``"auto"`` reads ``hh:mm:ss`` when the text has a colon, seconds otherwise.

    Raises
    ------
    ValueError
        When the text is not a time.
    """
    text = text.strip()
    match = _HMS.match(text)
    if match and unit in ("auto", "hms"):
        hours, minutes, seconds = match.groups()
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    if _SECONDS.match(text) and unit != "hms":
        return float(text) / (1000.0 if unit == "ms" else 1.0)
    raise ValueError(f"not a time: {text!r}")


def format_clock(seconds: float) -> str:
    """ELAN's ``hh:mm:ss.mmm`` for a time in seconds (negative times read as 0); the inverse of
    :func:`parse_time` to the millisecond."""
    ms = int(round(max(seconds, 0.0) * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _is_time(text: str) -> bool:
    return bool(_HMS.match(text.strip()) or _SECONDS.match(text.strip()))


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AnnotationError(f"'{path}' does not exist") from None
    except OSError as exc:
        raise AnnotationError(f"'{path}' cannot be read: {exc.strerror}") from None
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _unquote(cell: str) -> str:
    cell = cell.strip("\r\n")
    if len(cell) >= 2 and cell[0] == cell[-1] == '"':
        return cell[1:-1].replace('""', '"')
    return cell


def sniff_tabular(path: str | Path) -> str:
    """Tell an ELAN tab-delimited export from a musicperf CSV.

    Returns
    -------
    {"elan_tab", "csv"}
        ``"elan_tab"`` when the first non-blank line holds a tab, ``"csv"`` otherwise.
    """
    for line in _read_text(Path(path)).splitlines():
        if line.strip():
            return "elan_tab" if "\t" in line else "csv"
    raise AnnotationError(f"'{path}' is empty")


# --------------------------------------------------------------------------------------------
# ELAN tab-delimited


class _TierBuilder:
    """Collects de-duplicated annotations per tier, in order of first appearance."""

    def __init__(self, path: Path):
        self.path = path
        self.tiers: dict[str, Tier] = {}
        self.seen: dict[str, set] = {}

    def add(self, tier: str, start: float, end: float, value: str, *, line: int, **attrs) -> None:
        for t in (start, end):
            check_time(t, path=self.path, where=f"line {line}, tier {tier!r}")
        if end < start:
            raise AnnotationError(f"'{self.path}', line {line}: annotation ends ({end}) before it starts ({start})")
        if tier not in self.tiers:
            self.tiers[tier] = Tier(name=tier, **{k: v for k, v in attrs.items() if v})
            self.seen[tier] = set()
        key = (start, end, value)
        if key not in self.seen[tier]:
            self.seen[tier].add(key)
            self.tiers[tier].annotations.append(Annotation(start, end, value))

    def build(self, *, points: bool = False) -> AnnotationSet:
        """The tiers, with the zero-length rule of :func:`~musicperf.io.annotations.zero_length_rule`.

        With ``points``, a tier whose annotations are *all* zero-length is a point tier (as
        :func:`write_csv` writes a Praat TextTier) and is kept whole.
        """
        aset = AnnotationSet(source=self.path)
        for tier in self.tiers.values():
            fields = {**tier.__dict__}
            fields["annotations"] = zero_length_rule(fields["annotations"], path=self.path, tier=tier.name,
                                                     point_tier=points, stacklevel=5)
            aset.add_tier(Tier(**fields))  # re-sorts annotations by time
        return aset


def _time(cell: str, *, path: Path, line: int, column: str, unit: str = "auto") -> float:
    try:
        return parse_time(cell, unit=unit)
    except ValueError:
        raise AnnotationError(f"'{path}', line {line}: {column} is {cell!r}, not a time") from None


def _value(cell: str) -> str:
    # ELAN does not quote annotation values, so quotes around a value belong to it
    cell = cell.strip("\r\n")
    return "" if cell == EMPTY_PLACEHOLDER else cell


def _read_groups(path: Path, header: list[str], rows: list[tuple[int, list[str]]]) -> AnnotationSet:
    starts = [i for i, h in enumerate(header) if re.fullmatch(r"Annotation\d*(-\d+)?", h)]
    groups = []
    for n, first in enumerate(starts):
        last = starts[n + 1] if n + 1 < len(starts) else len(header)
        cols = {h: i for i, h in enumerate(header[first:last], start=first)}
        missing = {"BeginTime", "EndTime", "TierName"} - set(cols)
        if missing:
            raise AnnotationError(f"'{path}': column group {header[first]!r} lacks {', '.join(sorted(missing))}")
        groups.append((first, cols))
    builder = _TierBuilder(path)
    for line, cells in rows:
        for first, cols in groups:
            get = lambda name: cells[cols[name]].strip() if name in cols and cols[name] < len(cells) else ""  # noqa: E731
            if not get("BeginTime") and not get("TierName"):
                continue  # no annotation of this group overlaps this row
            builder.add(
                _unquote(get("TierName")),
                _time(get("BeginTime"), path=path, line=line, column="BeginTime"),
                _time(get("EndTime"), path=path, line=line, column="EndTime"),
                _value(cells[first]) if first < len(cells) else "",
                line=line,
                linguistic_type=_unquote(get("TierType")),
                participant=_unquote(get("TierParticipant")),
            )
    return builder.build()


def _time_unit(label: str) -> str:
    label = label.lower()
    if "hh:mm" in label or "mm:ss" in label:
        return "hms"
    if "ss.ms" in label or "sec" in label and "msec" not in label:
        return "s"
    if "msec" in label or label.endswith("(ms)") or label.endswith("_ms"):
        return "ms"
    return "auto"


_UNIT_PREFERENCE = {"hms": 0, "s": 0, "auto": 1, "ms": 2}


def _read_labelled(path: Path, header: list[str], rows: list[tuple[int, list[str]]]) -> AnnotationSet:
    role: dict[str, list[int]] = {"tier": [], "participant": [], "begin": [], "end": [], "duration": [], "value": []}
    for i, label in enumerate(header):
        low = label.lower()
        if low.startswith("begin") or low.startswith("start") or low in ("tmin", "xmin"):
            role["begin"].append(i)
        elif low.startswith("end") or low.startswith("stop") or low in ("tmax", "xmax"):
            role["end"].append(i)
        elif low.startswith("dur"):
            role["duration"].append(i)
        elif low in ("tier", "tier name", "tiername", "tier_name", "tier id", "tier_id"):
            role["tier"].append(i)
        elif low in ("participant", "annotator", "speaker", "tierparticipant"):
            role["participant"].append(i)
        elif low in ("annotation", "value", "text", "label", "annotations"):
            role["value"].append(i)
    if not role["begin"] or not role["end"]:
        raise AnnotationError(f"'{path}': the header names no begin and end time columns: {header}")
    begin = min(role["begin"], key=lambda i: _UNIT_PREFERENCE[_time_unit(header[i])])
    end = min(role["end"], key=lambda i: _UNIT_PREFERENCE[_time_unit(header[i])])
    assigned = {i for cols in role.values() for i in cols}
    if role["tier"]:
        value_cols = role["value"][:1] or [max(set(range(len(header))) - assigned, default=len(header) - 1)]
        per_column = False
    else:  # one column per tier, named by its label
        value_cols = role["value"] + [i for i in range(len(header)) if i not in assigned and header[i]]
        per_column = True
        if not value_cols:
            raise AnnotationError(f"'{path}': the header names neither a tier column nor annotation columns")
    builder = _TierBuilder(path)
    for line, cells in rows:
        cells = cells + [""] * (len(header) - len(cells))
        start = _time(cells[begin], path=path, line=line, column=header[begin], unit=_time_unit(header[begin]))
        stop = _time(cells[end], path=path, line=line, column=header[end], unit=_time_unit(header[end]))
        participant = _unquote(cells[role["participant"][0]]) if role["participant"] else ""
        for col in value_cols:
            if per_column:
                value = _value(cells[col])
                if not cells[col].strip():
                    continue
                builder.add(header[col], start, stop, value, line=line, participant=participant)
            else:
                builder.add(_unquote(cells[role["tier"][0]]), start, stop, _value(cells[col]), line=line, participant=participant)
    return builder.build()


def _read_headerless(path: Path, rows: list[tuple[int, list[str]]]) -> AnnotationSet:
    width = max(len(cells) for _, cells in rows)
    padded = [(line, cells + [""] * (width - len(cells))) for line, cells in rows]
    inner = range(1, width - 1)
    time_cols = [
        c
        for c in inner
        if any(cells[c].strip() for _, cells in padded)
        and all(_is_time(cells[c]) for _, cells in padded if cells[c].strip())
    ]
    if len(time_cols) < 2:
        raise AnnotationError(
            f"'{path}' does not look like an ELAN tab-delimited export: expected tier, begin, end "
            "(duration) and value columns"
        )
    per = len(time_cols) // 3 if len(time_cols) % 3 == 0 else (len(time_cols) // 2 if len(time_cols) % 2 == 0 else 0)
    if per == 0:
        raise AnnotationError(f"'{path}': cannot tell begin and end among {len(time_cols)} time columns")

    def pick(cols: list[int]) -> tuple[int, str]:
        sample = [cells for _, cells in padded]

        def kind(c: int) -> str:
            cells = [r[c] for r in sample if r[c].strip()]
            if any(":" in x for x in cells):
                return "hms"
            if any("." in x for x in cells):
                return "s"
            return "ms" if len(cols) > 1 else "s"  # bare integers beside other formats are msec

        best = min(cols, key=lambda c: _UNIT_PREFERENCE[kind(c)])
        return best, kind(best)

    begin, begin_unit = pick(time_cols[:per])
    end, end_unit = pick(time_cols[per : 2 * per])
    participant_cols = [c for c in range(1, time_cols[0]) if any(cells[c].strip() for _, cells in padded)]
    builder = _TierBuilder(path)
    for line, cells in padded:
        builder.add(
            _unquote(cells[0]),
            _time(cells[begin], path=path, line=line, column="begin", unit=begin_unit),
            _time(cells[end], path=path, line=line, column="end", unit=end_unit),
            _value(cells[-1]),
            line=line,
            participant=_unquote(cells[participant_cols[0]]) if participant_cols else "",
        )
    return builder.build()


def read_elan_tab(path: str | Path) -> AnnotationSet:
    """Read an ELAN tab-delimited text export (any of the layouts in the module docstring).

    Parameters
    ----------
    path : str or Path
        A ``.txt``, ``.tsv`` or ``.csv`` file whose columns are separated by tabs.

    Returns
    -------
    AnnotationSet
        One tier per tier name, in order of first appearance; times in seconds; repeated rows
        of the same annotation are merged.

    Raises
    ------
    AnnotationError
        When the columns cannot be identified or a time cell is not a time (the message names
        the line).
    """
    path = Path(path)
    text = _read_text(path)
    rows = [(n, line.split("\t")) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not rows:
        raise AnnotationError(f"'{path}' is empty")
    first = [_unquote(c).strip() for c in rows[0][1]]
    if "TierName" in first and any(re.fullmatch(r"Annotation\d*(-\d+)?", h) for h in first):
        return _read_groups(path, first, rows[1:])
    if any(h.lower().startswith(("begin", "start", "tmin")) for h in first) and not any(_is_time(c) for c in first):
        return _read_labelled(path, first, rows[1:])
    return _read_headerless(path, rows)


def _fmt_time(t: float, decimals: int) -> str:
    text = f"{t:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _clean(value: str, tier: str, path: Path, seps: str) -> str:
    if any(s in value for s in seps):
        warnings.warn(
            f"'{path}': a value of tier {tier!r} holds a tab or line break; it was replaced by a space",
            stacklevel=3,
        )
        for s in seps:
            value = value.replace(s, " ")
    return value


def write_elan_tab(aset: AnnotationSet, path: str | Path) -> None:
    """Write ``aset`` as an ELAN-style tab-delimited text with a header; the write is atomic.

    Columns: ``Tier, Participant, Begin Time - ss.msec, End Time - ss.msec, Duration - ss.msec,
    Annotation``; times in seconds with three decimals (ELAN's millisecond resolution); UTF-8.
    Tabs and line breaks inside values become spaces (with a warning). Empty tiers are not
    represented.
    """
    path = Path(path)
    lines = ["Tier\tParticipant\tBegin Time - ss.msec\tEnd Time - ss.msec\tDuration - ss.msec\tAnnotation"]
    for tier in aset:
        name = _clean(tier.name, tier.name, path, "\t\r\n")
        for a in tier.annotations:
            lines.append(
                "\t".join(
                    [
                        name,
                        tier.participant,
                        f"{a.start:.3f}",
                        f"{a.end:.3f}",
                        f"{a.end - a.start:.3f}",
                        _clean(a.value, tier.name, path, "\t\r\n"),
                    ]
                )
            )
    write_text_atomic(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# musicperf CSV


def read_csv(path: str | Path) -> AnnotationSet:
    """Read a musicperf annotation CSV (columns ``tier,start,end,value``, times in seconds).

    Extra columns are ignored; ``value`` may be missing (empty values). Tiers appear in order of
    first appearance.

    Raises
    ------
    AnnotationError
        When a required column is missing or a time is not a number (the message names the line).
    """
    path = Path(path)
    text = _read_text(path)
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    missing = [c for c in ("tier", "start", "end") if c not in fields]
    if missing:
        raise AnnotationError(
            f"'{path}' is not a musicperf annotation CSV: missing column(s) {', '.join(missing)} "
            f"(expected {','.join(CSV_COLUMNS)})"
        )
    reader.fieldnames = fields
    builder = _TierBuilder(path)
    tiers: dict[str, list[Annotation]] = {}
    for row in reader:
        line = reader.line_num
        tier = row["tier"] or ""
        start = _time(row["start"] or "", path=path, line=line, column="start")
        end = _time(row["end"] or "", path=path, line=line, column="end")
        for t in (start, end):
            check_time(t, path=path, where=f"line {line}, tier {tier!r}")
        if end < start:
            raise AnnotationError(f"'{path}', line {line}: annotation ends ({end}) before it starts ({start})")
        tiers.setdefault(tier, []).append(Annotation(start, end, row.get("value") or ""))
    for name, annotations in tiers.items():
        builder.tiers[name] = Tier(name=name, annotations=annotations)
    return builder.build(points=True)


def write_csv(aset: AnnotationSet, path: str | Path, *, decimals: int = 6) -> None:
    """Write ``aset`` as a musicperf CSV (``tier,start,end,value``, seconds); atomic.

    Parameters
    ----------
    decimals : int
        Decimals kept for times (default 6: microseconds, enough for any frame rate).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for tier in aset:
        for a in tier.annotations:
            writer.writerow([tier.name, _fmt_time(a.start, decimals), _fmt_time(a.end, decimals), a.value])
    write_text_atomic(path, buffer.getvalue())
