"""Read and write Praat TextGrids (text format, long and short), UTF-8, UTF-16 or Latin-1.

Both text layouts are read by one tokenizer: Praat's own reader skips the key names of the long
format (``xmin =``, ``intervals [3]:``), so only quoted strings, numbers and ``<exists>`` flags
carry information, in the same order in both layouts.

Choices:

* Intervals and points whose text is empty are skipped by default (``skip_empty=True``): in a
  TextGrid they fill the gaps of an IntervalTier and mean "no annotation"; ELAN's TextGrid import
  does the same. Points (``TextTier``) become zero-length annotations.
* Times are validated (:func:`musicperf.io.annotations.check_time`): a kept interval or point
  whose time is not finite (``1e400``), negative or beyond 100 hours is an
  :class:`AnnotationError` naming the file, tier, item and value. Praat cannot make a
  zero-length interval: an IntervalTier whose kept intervals all have zero length is dropped
  with an :class:`~musicperf.io.annotations.AnnotationWarning` naming the tier; zero-length
  intervals among others are kept as points, with a warning.
* Praat allows two tiers with the same name, the model does not: the second becomes
  ``"name (2)"``.
* A tier that declares more intervals than the file holds (a truncated file such as
  ``teicorpo_Anita_MUSSO_F_46_11e.textgrid``) is an :class:`AnnotationError`, not a silent
  empty tier: reading it partially would hide the damage.
* :func:`write_textgrid` writes the long text format in UTF-8. A tier whose annotations are all
  zero-length becomes a ``TextTier``; other tiers become ``IntervalTier`` with the gaps filled by
  empty intervals, as Praat requires; overlapping annotations in one tier cannot be represented
  and raise :class:`AnnotationError`.

Imports only the standard library.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

from musicperf._util import write_text_atomic
from musicperf.errors import AnnotationError
from musicperf.io.annotations import Annotation, AnnotationSet, Tier, check_time, zero_length_rule

__all__ = ["read_textgrid", "write_textgrid"]

_TOKEN = re.compile(
    r'"(?P<str>(?:[^"]|"")*)"'  # a string, "" escapes a quote
    r"|(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])"
    r"|(?P<flag><\w+>)"
    r"|(?P<comment>![^\n]*)"
    r"|\[[^\]\n]*\]"  # item [3]:, intervals [1]: ... skipped
    r"|[A-Za-z_][\w]*\??"  # key names of the long format, skipped
    r"|[=:]"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)",
    re.S,
)


def _decode(data: bytes, path: Path) -> str:
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if len(data) > 1 and data[0] == 0 and data[1] != 0:  # UTF-16 without a byte-order mark
        return data.decode("utf-16-be")
    if len(data) > 1 and data[1] == 0 and data[0] != 0:
        return data.decode("utf-16-le")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # Praat's fallback for non-UTF-8 text files


class _Tokens:
    """The value tokens of a TextGrid with their line numbers."""

    def __init__(self, text: str, path: Path):
        self.path = path
        self.items: list[tuple[str, str | float, int]] = []  # (kind, value, line)
        line = 1
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup
            raw = match.group(0)
            if kind == "str":
                self.items.append(("str", match.group("str").replace('""', '"'), line))
            elif kind == "num":
                self.items.append(("num", float(raw), line))
            elif kind == "flag":
                self.items.append(("flag", raw, line))
            elif kind == "other":
                raise AnnotationError(f"'{path}': unexpected character {raw!r} on line {line} of a TextGrid")
            line += raw.count("\n")
        self.pos = 0

    def _next(self, kind: str, what: str):
        if self.pos >= len(self.items):
            raise AnnotationError(f"'{self.path}' ends early: {what} is missing (truncated TextGrid?)")
        got_kind, value, line = self.items[self.pos]
        if got_kind != kind:
            expected = {"num": "a number", "str": "a quoted string", "flag": "a flag"}[kind]
            raise AnnotationError(
                f"'{self.path}': expected {expected} for {what} on line {line}, found {value!r} "
                "(truncated or malformed TextGrid?)"
            )
        self.pos += 1
        return value

    def num(self, what: str) -> float:
        return float(self._next("num", what))

    def count(self, what: str) -> int:
        value = self.num(what)
        if value < 0 or value != int(value):
            raise AnnotationError(f"'{self.path}': {what} is {value}, not a count")
        return int(value)

    def str(self, what: str) -> str:
        return str(self._next("str", what))

    def peek(self):
        return self.items[self.pos] if self.pos < len(self.items) else None


def _check_not_next_tier(tokens: _Tokens, label: str, n: int, k: int, what: str) -> None:
    """Name the usual damage: a tier that declares more items than the file holds."""
    item = tokens.peek()
    if item is None or (item[0] == "str" and item[1] in ("IntervalTier", "TextTier")):
        after = "before the end of the file" if item is None else f"before the next tier on line {item[2]}"
        raise AnnotationError(
            f"'{tokens.path}': {label} declares {n} {what} but only {k - 1} follow {after}; "
            "the TextGrid is truncated or broken"
        )


def read_textgrid(path: str | Path, *, skip_empty: bool = True) -> AnnotationSet:
    """Read a Praat TextGrid in long or short text format.

    Parameters
    ----------
    path : str or Path
        A ``.TextGrid`` file, UTF-8 (with or without byte-order mark), UTF-16 or Latin-1.
    skip_empty : bool
        Leave out intervals and points whose text is empty or only white space.

    Returns
    -------
    AnnotationSet
        One tier per TextGrid tier, in file order; times in seconds. Points of a ``TextTier``
        are zero-length annotations.

    Raises
    ------
    AnnotationError
        For a binary or non-TextGrid file, or one that is truncated or malformed (the message
        names the tier and line).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AnnotationError(f"'{path}' does not exist") from None
    except OSError as exc:
        raise AnnotationError(f"'{path}' cannot be read: {exc.strerror}") from None
    if data.startswith(b"ooBinaryFile"):
        raise AnnotationError(f"'{path}' is a binary Praat file; save it as a text file in Praat first")
    text = _decode(data, path)
    tokens = _Tokens(text, path)
    if tokens.str("the file type") not in ("ooTextFile", "ooTextFile short"):
        raise AnnotationError(f"'{path}' is not a Praat text file (no 'File type = \"ooTextFile\"')")
    object_class = tokens.str("the object class")
    if not object_class.startswith("TextGrid"):
        raise AnnotationError(f"'{path}' holds a Praat {object_class!r}, not a TextGrid")
    tokens.num("the TextGrid xmin")
    tokens.num("the TextGrid xmax")
    exists = tokens.peek()
    if exists is not None and exists[0] == "flag":
        tokens.pos += 1
        if exists[1] != "<exists>":
            return AnnotationSet(source=path)
    n_tiers = tokens.count("the number of tiers")
    aset = AnnotationSet(source=path)
    for i in range(1, n_tiers + 1):
        kind = tokens.str(f"the class of tier {i}")
        name = tokens.str(f"the name of tier {i}")
        label = f"tier {i} ({name!r})"
        tokens.num(f"the xmin of {label}")
        tokens.num(f"the xmax of {label}")
        n = tokens.count(f"the size of {label}")
        annotations = []
        if kind == "IntervalTier":
            for k in range(1, n + 1):
                _check_not_next_tier(tokens, label, n, k, "intervals")
                where = f"interval {k} of {n} of {label}"
                start = tokens.num(f"the xmin of {where}")
                end = tokens.num(f"the xmax of {where}")
                value = tokens.str(f"the text of {where}")
                if value.strip() or not skip_empty:
                    for t in (start, end):
                        check_time(t, path=path, where=f"{where}, text {value!r}")
                if end < start:
                    raise AnnotationError(f"'{path}': {where} ends ({end}) before it starts ({start})")
                if value.strip() or not skip_empty:
                    annotations.append(Annotation(start, end, value))
            annotations = zero_length_rule(annotations, path=path, tier=name)
        elif kind == "TextTier":
            for k in range(1, n + 1):
                _check_not_next_tier(tokens, label, n, k, "points")
                where = f"point {k} of {n} of {label}"
                time = tokens.num(f"the time of {where}")
                value = tokens.str(f"the mark of {where}")
                if value.strip() or not skip_empty:
                    check_time(time, path=path, where=f"{where}, mark {value!r}")
                    annotations.append(Annotation(time, time, value))
        else:
            raise AnnotationError(f"'{path}': {label} has unknown class {kind!r}")
        if name in aset.tiers:  # Praat allows duplicate tier names; the model does not
            base, n_dup = name, 2
            while f"{base} ({n_dup})" in aset.tiers:
                n_dup += 1
            name = f"{base} ({n_dup})"
        aset.add_tier(Tier(name=name, annotations=annotations))
    return aset


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _num(x: float) -> str:
    return repr(float(x)) if x != int(x) else str(int(x))


def write_textgrid(aset: AnnotationSet, path: str | Path, *, xmin: float = 0.0, xmax: float | None = None) -> None:
    """Write ``aset`` as a Praat TextGrid (long text format, UTF-8); the write is atomic.

    Parameters
    ----------
    aset : AnnotationSet
        Times in seconds.
    path : str or Path
        The ``.TextGrid`` file to write.
    xmin, xmax : float
        The TextGrid's time domain in seconds; ``xmax`` defaults to the last annotation end.

    Raises
    ------
    AnnotationError
        When annotations of one tier overlap (an IntervalTier cannot hold them) or fall outside
        ``[xmin, xmax]``.
    """
    path = Path(path)
    t_min, t_max = aset.time_range
    if xmax is None:
        xmax = max(t_max, xmin)
    if any(len(t) for t in aset) and (t_min < xmin - 1e-9 or t_max > xmax + 1e-9):
        raise AnnotationError(
            f"cannot write '{path}': annotations span {t_min:.3f}-{t_max:.3f} s, outside the TextGrid "
            f"domain {xmin:.3f}-{xmax:.3f} s"
        )
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        f"xmin = {_num(xmin)} ",
        f"xmax = {_num(xmax)} ",
        "tiers? <exists> " if len(aset) else "tiers? <absent> ",
    ]
    if len(aset):
        lines += [f"size = {len(aset)} ", "item []: "]
    for i, tier in enumerate(aset, start=1):
        points = bool(tier.annotations) and all(a.end == a.start for a in tier.annotations)
        lines += [
            f"    item [{i}]:",
            f'        class = "{"TextTier" if points else "IntervalTier"}" ',
            f"        name = {_quote(tier.name)} ",
            f"        xmin = {_num(xmin)} ",
            f"        xmax = {_num(xmax)} ",
        ]
        if points:
            lines.append(f"        points: size = {len(tier)} ")
            for k, a in enumerate(tier.annotations, start=1):
                lines += [f"        points [{k}]:", f"            number = {_num(a.start)} ", f"            mark = {_quote(a.value)} "]
            continue
        intervals = []
        cursor = xmin
        dropped = 0
        for a in tier.annotations:
            if a.start < cursor - 1e-9:
                raise AnnotationError(
                    f"cannot write '{path}': annotations of tier {tier.name!r} overlap at {a.start:.3f} s; "
                    "a TextGrid IntervalTier cannot hold overlapping intervals (write one tier per class)"
                )
            if a.start > cursor:
                intervals.append((cursor, a.start, ""))
            if a.end > a.start:
                intervals.append((a.start, a.end, a.value))
            else:  # a zero-length annotation among intervals has no place in Praat
                dropped += 1
            cursor = max(cursor, a.end)
        if dropped:
            warnings.warn(
                f"'{path}': {dropped} zero-length annotations of interval tier {tier.name!r} were left out",
                stacklevel=2,
            )
        if cursor < xmax or not intervals:
            intervals.append((cursor, xmax, ""))
        lines.append(f"        intervals: size = {len(intervals)} ")
        for k, (start, end, value) in enumerate(intervals, start=1):
            lines += [
                f"        intervals [{k}]:",
                f"            xmin = {_num(start)} ",
                f"            xmax = {_num(end)} ",
                f"            text = {_quote(value)} ",
            ]
    if not math.isfinite(xmax):
        raise AnnotationError(f"cannot write '{path}': xmax is {xmax}")
    write_text_atomic(path, "\n".join(lines) + "\n")
