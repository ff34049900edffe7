"""Read and write ELAN annotation documents (``.eaf``, ``.etf`` templates, ``.ecv`` vocabularies).

:func:`read_eaf` reads every EAF version from 2.3 to 3.0 into the format-neutral
:class:`~musicperf.io.annotations.AnnotationSet` (times in float seconds relative to the start of
the media); :func:`write_eaf` writes an EAF 3.0 document that ELAN opens. ELAN's milliseconds
stay inside this module.

How the reader resolves what the file leaves implicit
-----------------------------------------------------
* **Unaligned time slots** (``TIME_SLOT`` without ``TIME_VALUE``): spaced evenly between the
  aligned slots around them along the chain of annotations of their tier (the end slot of one
  annotation is the begin slot of the next, as in a ``Time_Subdivision`` tier), so ``k``
  unaligned slots between 8000 and 11000 ms split that span into ``k + 1`` equal parts, as
  ELAN draws them. Slots no chain resolves are interpolated between their nearest aligned
  neighbours in the ``TIME_ORDER`` (slots before the first / after the last aligned slot take
  its value). One warning per file gives their number.
* **Reference annotations** (``REF_ANNOTATION``) take their parent annotation's span. When
  several annotations of one tier refer to the same parent (``Symbolic_Subdivision``, linked by
  ``PREVIOUS_ANNOTATION``), the parent's span is split evenly among them in chain order, the way
  ELAN displays them. Such derived times can fall between milliseconds.
* **TIME_ORIGIN** on a ``MEDIA_DESCRIPTOR`` is, as in ELAN, the media time in ms that document
  time 0 corresponds to: ``media_time = document_time + TIME_ORIGIN``. The reader adds the
  origin of the *first* media descriptor (ELAN's master media) to every time, so the returned
  times are seconds from the start of that media; each :class:`MediaRef` keeps its own origin in
  seconds. The writer subtracts it again.
* **Controlled vocabularies**: inline ``CV_ENTRY`` (EAF 2.x) and ``CV_ENTRY_ML``/``CVE_VALUE``
  (EAF 3.0, first value of each entry) are read; a vocabulary with an ``EXT_REF`` to an external
  ``.ecv`` file is loaded from that file, looked up as (1) the referenced path itself, (2) a file
  of the same name beside the ``.eaf``, (3) the single file beside the ``.eaf`` whose name ends
  with ``_<name>`` (collections that prefix their files with a source name). A missing ``.ecv``
  is a warning, not an error, and leaves that vocabulary out of ``AnnotationSet.vocabularies``.

Validation (what a hostile or broken file gets)
-----------------------------------------------
* A ``TIME_VALUE`` (or ``TIME_ORIGIN``) that is not a number, not finite (``NaN``, ``inf``),
  negative, or beyond 100 hours (:data:`~musicperf.io.annotations.MAX_TIME`), and an annotation
  time that the master ``TIME_ORIGIN`` makes negative or too large, are an
  :class:`AnnotationError` naming the file, the tier, the slot and the value as written.
* A document whose time slots have no ``TIME_VALUE`` at all has no knowable time: every
  annotation of it is dropped, with one :class:`~musicperf.io.annotations.AnnotationWarning`
  per tier naming it (before, all of them sat at 0 s and were trained on).
* Zero-length annotations: a tier whose annotations all have zero length spans no time and is
  dropped with a warning; zero-length annotations among intervals are kept as points (one
  frame each), with a warning (:func:`~musicperf.io.annotations.zero_length_rule`).
* An XML encoding that Python cannot read is an :class:`AnnotationError` (:mod:`._xml`).

Choices of the writer
---------------------
:func:`write_eaf` writes a set read by :func:`read_eaf` back **whole**: the document as read is
kept in ``AnnotationSet.document`` (an :class:`EafDocument`) and is the starting point of the
write; tiers whose annotations and attributes (and those of the tiers above them) are as read
are written verbatim, with their ids, time slots (unaligned ones stay unaligned), REF
annotations and ``CVE_REF``; everything the model does not hold (header properties such as the
URN, media and linked file descriptors, LOCALE, LANGUAGE, multilingual vocabularies with their
descriptions and ``CVE_ID``, EXTERNAL_REF, LEXICON_REF, linguistic types, constraints) is kept.
Only ``DATE`` changes in a plain round trip. Tiers that changed, and new ones, are written
time-alignable with explicit integer-millisecond times.

A set built in code (or ``keep_document=False``) is written as a new EAF 3.0 document: every
tier time-alignable with explicit times. A dependent tier keeps its ``PARENT_REF`` under an
``Included_In`` linguistic type when each of its annotations lies inside a parent annotation;
otherwise it is written as an independent tier, with a warning.

:func:`add_prediction_tiers` adds predicted tiers under a linguistic type of their own
(``musicperf-prediction``) whose controlled vocabulary lists the class names; each predicted
annotation refers to its class's entry (``CVE_REF``, EAF 2.8 and later).

Imports only the standard library (and :mod:`musicperf.io.annotations`).
"""

from __future__ import annotations

import bisect
import copy
import datetime as _dt
import itertools
import math
import mimetypes
import os
import re
import urllib.parse
import urllib.request
import uuid
import warnings
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from musicperf._util import write_bytes_atomic
from musicperf.errors import AnnotationError
from musicperf.io._xml import parse_xml
from musicperf.io.annotations import (
    MAX_TIME,
    Annotation,
    AnnotationSet,
    AnnotationWarning,
    MediaRef,
    Tier,
    check_time,
    zero_length_rule,
    time_problem,
)

__all__ = [
    "read_eaf",
    "write_eaf",
    "read_ecv",
    "add_vocabulary",
    "add_prediction_tiers",
    "EafDocument",
    "EAF_FORMAT",
    "PREDICTION_TYPE",
    "PREDICTION_VOCABULARY",
]

#: The EAF version :func:`write_eaf` writes.
EAF_FORMAT = "3.0"
_XSD = "http://www.mpi.nl/tools/elan/EAFv3.0.xsd"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"

#: Milliseconds per unit of the legacy ``TIME_UNITS`` values ELAN still reads.
_TIME_UNITS_MS = {"milliseconds": 1.0, "PAL-frames": 40.0, "NTSC-frames": 1000.0 / 29.97}

#: The four ELAN constraint stereotypes and the descriptions ELAN writes for them.
_CONSTRAINTS = {
    "Time_Subdivision": "Time subdivision of parent annotation's time interval, no time gaps allowed within this interval",
    "Symbolic_Subdivision": "Symbolic subdivision of a parent annotation. Annotations refering to the same parent are ordered",
    "Symbolic_Association": "1-1 association with a parent annotation",
    "Included_In": "Time alignable annotations within the parent annotation's time interval, gaps are allowed",
}

#: MIME types as ELAN writes them, by file suffix; others are guessed by :mod:`mimetypes`.
_MIME = {
    ".wav": "audio/x-wav",
    ".mp3": "audio/mpeg",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".mov": "video/quicktime",
    ".avi": "video/x-msvideo",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".ogg": "audio/ogg",
    ".flac": "audio/flac",
}


# --------------------------------------------------------------------------------------------
# reading


def _number(text: str | None, *, what: str, path: Path) -> float:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise AnnotationError(f"'{path}': {what} is {text!r}, not a number") from None


def _fill_between(sequence: list[str], times: dict[str, float], *, extend: bool) -> None:
    """Interpolate the slots of ``sequence`` missing from ``times`` between known neighbours.

    Runs of unknown slots between two known ones are spaced evenly; with ``extend``, runs before
    the first (after the last) known slot take its time, otherwise they stay unknown.
    """
    known = [i for i, sid in enumerate(sequence) if sid in times]
    if not known:
        return
    bounds = [-1, *known, len(sequence)]
    for left, right in zip(bounds[:-1], bounds[1:]):
        if right - left <= 1:
            continue
        if (left < 0 or right >= len(sequence)) and not extend:
            continue
        t_left = times[sequence[left]] if left >= 0 else times[sequence[right]]
        t_right = times[sequence[right]] if right < len(sequence) else t_left
        for k in range(left + 1, right):
            if sequence[k] not in times:
                times[sequence[k]] = t_left + (t_right - t_left) * (k - left) / (right - left)


def _tier_paths(root: ET.Element) -> list[list[str]]:
    """Per tier, the chains of time slots that consecutive alignable annotations share.

    In a ``Time_Subdivision`` tier the words of one sentence form the chain ``ts_begin, u1, u2,
    ..., ts_end``: the end slot of one annotation is the begin slot of the next.
    """
    paths = []
    for tier in root.iterfind("TIER"):
        pairs = [
            (el.get("TIME_SLOT_REF1"), el.get("TIME_SLOT_REF2"))
            for el in tier.iterfind("ANNOTATION/ALIGNABLE_ANNOTATION")
        ]
        following: dict[str, str] = {}
        ends = set()
        for ref1, ref2 in pairs:
            following.setdefault(ref1, ref2)
            ends.add(ref2)
        for ref1, _ in pairs:
            if ref1 in ends:
                continue  # not the start of a chain
            path, seen = [ref1], {ref1}
            while path[-1] in following and following[path[-1]] not in seen:
                path.append(following[path[-1]])
                seen.add(path[-1])
            paths.append(path)
    return paths


def _slot_users(root: ET.Element, sid: str) -> str:
    """The tiers whose annotations use time slot ``sid``, for error messages."""
    names = [
        tier.get("TIER_ID", "?")
        for tier in root.iterfind("TIER")
        if any(sid in (el.get("TIME_SLOT_REF1"), el.get("TIME_SLOT_REF2"))
               for el in tier.iterfind("ANNOTATION/ALIGNABLE_ANNOTATION"))
    ]
    return f"tier {', '.join(map(repr, names))}" if names else "no tier"


def _resolve_slots(root: ET.Element, path: Path, unit_ms: float) -> dict[str, float] | None:
    """Time slot id -> time in document milliseconds, unaligned slots interpolated.

    Unaligned slots are first spaced evenly along the chain of annotations of their tier
    between its aligned slots (how ELAN draws subdivisions), then any left are interpolated
    between their aligned neighbours in the ``TIME_ORDER``. ``None`` when the document has
    time slots but none of them has a ``TIME_VALUE``: then no annotation has a knowable time.

    A ``TIME_VALUE`` that is not finite, negative or beyond :data:`MAX_TIME` is an
    :class:`AnnotationError` naming the slot, the tiers that use it and the value.
    """
    order: list[str] = []
    declared: set[str] = set()
    times: dict[str, float] = {}
    for slot in root.iterfind("TIME_ORDER/TIME_SLOT"):
        sid = slot.get("TIME_SLOT_ID")
        if not sid:
            raise AnnotationError(f"'{path}': a TIME_SLOT has no TIME_SLOT_ID")
        if sid in declared:
            raise AnnotationError(f"'{path}': time slot id {sid!r} is declared twice")
        declared.add(sid)
        order.append(sid)
        value = slot.get("TIME_VALUE")
        if value not in (None, ""):
            ms = _number(value, what=f"TIME_VALUE of slot {sid!r}", path=path) * unit_ms
            if time_problem(ms / 1000.0) is not None:
                check_time(ms / 1000.0, path=path, where=f"{_slot_users(root, sid)}, time slot {sid!r}",
                           shown=f"{value.strip()} ms")
            times[sid] = ms
    n_unaligned = len(order) - len(times)
    if not n_unaligned:
        return times
    if not times:
        return None
    for chain in _tier_paths(root):
        _fill_between([sid for sid in chain if sid in declared], times, extend=False)
    _fill_between(order, times, extend=True)
    warnings.warn(
        f"'{path}': {n_unaligned} time slots have no TIME_VALUE (unaligned); their times were "
        "interpolated between the nearest aligned slots",
        stacklevel=3,
    )
    return times


def _cv_values(cv: ET.Element) -> list[str]:
    """Values of one CONTROLLED_VOCABULARY element, EAF 2.x or 3.0 layout, in order."""
    values: list[str] = []
    for entry in cv:
        if entry.tag == "CV_ENTRY":  # EAF <= 2.8
            values.append((entry.text or "").strip())
        elif entry.tag == "CV_ENTRY_ML":  # EAF 3.0: one CVE_VALUE per language, keep the first
            first = entry.find("CVE_VALUE")
            if first is not None:
                values.append((first.text or "").strip())
    return values


def read_ecv(path: str | Path) -> dict[str, list[str]]:
    """Read an external controlled vocabulary file (ELAN ``.ecv``).

    Parameters
    ----------
    path : str or Path
        The ``.ecv`` file (root element ``CV_RESOURCE``).

    Returns
    -------
    dict of str to list of str
        Vocabulary id -> values, in file order.
    """
    path = Path(path)
    root = parse_xml(path)
    if root.tag != "CV_RESOURCE":
        raise AnnotationError(f"'{path}' is not an ELAN external vocabulary (root element <{root.tag}>)")
    return {cv.get("CV_ID", ""): _cv_values(cv) for cv in root.iterfind("CONTROLLED_VOCABULARY")}


def _url_to_path(url: str) -> Path | None:
    """A local path for a ``file:`` URL or plain path; ``None`` for other schemes."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # http:, https: ... (a one-letter scheme is a drive)
        return None
    return Path(url)


def _find_ecv(url: str, eaf: Path) -> Path | None:
    """Locate an external vocabulary file; see the module docstring for the search order."""
    local = _url_to_path(url)
    name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
    candidates = []
    if local is not None:
        candidates.append(local if local.is_absolute() else eaf.parent / local)
    if name:
        candidates.append(eaf.parent / name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if name:
        suffixed = sorted(p for p in eaf.parent.glob(f"*_{name}") if p.is_file())
        if len(suffixed) == 1:
            return suffixed[0]
    return None


def _read_vocabularies(root: ET.Element, path: Path) -> dict[str, list[str]]:
    ext_refs = {e.get("EXT_REF_ID"): e for e in root.iterfind("EXTERNAL_REF")}
    loaded: dict[str, dict[str, list[str]] | str] = {}  # url -> vocabularies, or why not
    missing: dict[str, list[str]] = defaultdict(list)  # reason -> CV ids
    vocabularies: dict[str, list[str]] = {}
    for cv in root.iterfind("CONTROLLED_VOCABULARY"):
        cv_id = cv.get("CV_ID")
        if not cv_id:
            raise AnnotationError(f"'{path}': a CONTROLLED_VOCABULARY has no CV_ID")
        ref = cv.get("EXT_REF")
        external = ext_refs.get(ref) if ref else None
        if external is None or external.get("TYPE") not in ("ecv", "external_cv"):
            vocabularies[cv_id] = _cv_values(cv)
            continue
        url = external.get("VALUE", "")
        if url not in loaded:
            ecv = _find_ecv(url, path)
            if ecv is None:
                loaded[url] = f"refer to '{url}', which was not found"
            else:
                try:
                    loaded[url] = read_ecv(ecv)
                except AnnotationError as exc:  # a broken .ecv does not make the .eaf unreadable
                    loaded[url] = f"come from a file that cannot be read ({exc})"
        found = loaded[url]
        if isinstance(found, str):
            missing[found].append(cv_id)
        elif cv_id in found:
            vocabularies[cv_id] = found[cv_id]
        else:
            missing[f"are not in the external file for '{url}'"].append(cv_id)
    for reason, cv_ids in missing.items():
        warnings.warn(
            f"'{path}': external controlled vocabularies {', '.join(map(repr, cv_ids))} {reason}; "
            "they are left out",
            stacklevel=3,
        )
    return vocabularies


def _read_media(root: ET.Element, path: Path) -> list[MediaRef]:
    media = []
    for md in root.iterfind("HEADER/MEDIA_DESCRIPTOR"):
        origin = md.get("TIME_ORIGIN")
        origin_ms = 0.0 if origin in (None, "") else _number(origin, what="TIME_ORIGIN", path=path)
        if not math.isfinite(origin_ms) or abs(origin_ms) > MAX_TIME * 1000.0:
            raise AnnotationError(
                f"'{path}': media {md.get('MEDIA_URL', '')!r}: TIME_ORIGIN {origin.strip()} ms is not a finite "
                f"time within {MAX_TIME / 3600:.0f} hours; the file is refused"
            )
        media.append(
            MediaRef(
                url=md.get("MEDIA_URL", ""),
                mime_type=md.get("MIME_TYPE", ""),
                relative_url=md.get("RELATIVE_MEDIA_URL", ""),
                time_origin=origin_ms / 1000.0,
            )
        )
    return media


@dataclass(eq=False)
class EafDocument:
    """An ELAN document as :func:`read_eaf` read it, kept in ``AnnotationSet.document``.

    :func:`write_eaf` starts from ``root`` and rewrites only what changed in the
    :class:`AnnotationSet` since it was read (compared with the snapshots below), so every
    element and attribute the model does not hold (header properties, linked files, locales,
    languages, multilingual vocabularies and their ids, external and lexicon references,
    linguistic types, constraints, unaligned time slots, reference annotations) is written back
    as it was.
    """

    root: ET.Element
    path: Path
    origin_ms: float  # TIME_ORIGIN of the master media, in ms
    tiers: dict[str, tuple]  # tier name -> _tier_key(tier) as read
    media: list[tuple]  # _media_key(aset.media) as read
    vocabularies: dict[str, list[str]]  # as read


def _tier_key(tier: Tier) -> tuple:
    return (tuple(tier.annotations), tier.parent, tier.linguistic_type, tier.participant, tier.annotator,
            tier.vocabulary)


def _media_key(media: list[MediaRef]) -> list[tuple]:
    return [(m.url, m.mime_type, m.relative_url, m.time_origin) for m in media]


def read_eaf(path: str | Path) -> AnnotationSet:
    """Read an ELAN annotation document (EAF 2.3 to 3.0) or template (``.etf``).

    Parameters
    ----------
    path : str or Path
        The ``.eaf`` or ``.etf`` file.

    Returns
    -------
    AnnotationSet
        Tiers in document order. Times are float seconds from the start of the first linked
        media (``TIME_ORIGIN`` applied); reference annotations carry their resolved times.
        ``vocabularies`` holds the controlled vocabularies that could be read; each tier's
        ``vocabulary`` is its linguistic type's ``CONTROLLED_VOCABULARY_REF``. ``document``
        holds the :class:`EafDocument`, so that :func:`write_eaf` writes the file back whole.

    Raises
    ------
    AnnotationError
        When the file is not well-formed safe XML, not an ELAN document, or refers to time
        slots that are not declared.

        Also when a time is not finite, negative or beyond 100 hours (the message names the
        tier, the slot and the value), or the XML encoding cannot be read.

    Warns
    -----
    UserWarning
        Once per file for unaligned time slots (interpolated), for external vocabulary files
        that are missing or broken (left out), for reference annotations whose parent does not
        exist (dropped) and for annotations whose end slot precedes their begin (swapped).
    AnnotationWarning
        Per tier, when its annotations have no knowable time (no slot of the document has a
        ``TIME_VALUE``: dropped), when all of them have zero length (dropped) or some of them
        do (kept as points).

    Examples
    --------
    >>> aset = read_eaf("concert.eaf")                         # doctest: +SKIP
    >>> aset["gestures"].intervals.shape                       # doctest: +SKIP
    (42, 2)
    """
    path = Path(path)
    root = parse_xml(path)
    if root.tag != "ANNOTATION_DOCUMENT":
        raise AnnotationError(f"'{path}' is not an ELAN annotation document (root element <{root.tag}>)")
    header = root.find("HEADER")
    units = header.get("TIME_UNITS", "milliseconds") if header is not None else "milliseconds"
    if units not in _TIME_UNITS_MS:
        raise AnnotationError(f"'{path}': unknown TIME_UNITS {units!r}; expected one of {', '.join(_TIME_UNITS_MS)}")
    media = _read_media(root, path)
    origin_ms = media[0].time_origin * 1000.0 if media else 0.0
    slots = _resolve_slots(root, path, _TIME_UNITS_MS[units])
    declared = {slot.get("TIME_SLOT_ID") for slot in root.iterfind("TIME_ORDER/TIME_SLOT")}
    untimed: set[str] = set()  # annotations whose time cannot be known (no slot has a TIME_VALUE)
    vocabularies = _read_vocabularies(root, path)
    types = {lt.get("LINGUISTIC_TYPE_ID"): lt for lt in root.iterfind("LINGUISTIC_TYPE")}

    # Pass 1: collect every annotation. record: id -> (tier id, element, value)
    records: dict[str, tuple[str, ET.Element, str]] = {}
    tier_order: list[tuple[ET.Element, list[str]]] = []
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for tier_el in root.iterfind("TIER"):
        tier_id = tier_el.get("TIER_ID")
        if tier_id is None:
            raise AnnotationError(f"'{path}': a TIER has no TIER_ID")
        ids = []
        for ann in tier_el.iterfind("ANNOTATION"):
            if len(ann) == 0:
                continue
            el = ann[0]
            aid = el.get("ANNOTATION_ID")
            if not aid:
                raise AnnotationError(f"'{path}': an annotation in tier {tier_id!r} has no ANNOTATION_ID")
            if aid in records:
                raise AnnotationError(f"'{path}': annotation id {aid!r} is used twice")
            value_el = el.find("ANNOTATION_VALUE")
            value = (value_el.text or "") if value_el is not None else ""
            records[aid] = (tier_id, el, value)
            ids.append(aid)
            if el.tag == "REF_ANNOTATION":
                groups[(tier_id, el.get("ANNOTATION_REF", ""))].append(aid)
        tier_order.append((tier_el, ids))

    chains = {key: _chain_order(members, records, path) for key, members in groups.items()}
    spans: dict[str, tuple[float, float] | None] = {}

    def span(aid: str, stack: tuple[str, ...] = ()) -> tuple[float, float] | None:
        """(start, end) in document ms, or None when the annotation cannot be resolved."""
        if aid in spans:
            return spans[aid]
        if aid in stack:
            raise AnnotationError(f"'{path}': reference annotations form a cycle through {aid!r}")
        tier_id, el, _ = records[aid]
        result: tuple[float, float] | None
        if el.tag == "ALIGNABLE_ANNOTATION":
            refs = el.get("TIME_SLOT_REF1"), el.get("TIME_SLOT_REF2")
            for ref in refs:
                if ref not in declared:
                    raise AnnotationError(
                        f"'{path}': annotation {aid!r} in tier {tier_id!r} refers to undeclared time slot {ref!r}"
                    )
            if slots is None:
                result = None
                untimed.add(aid)
            else:
                result = (slots[refs[0]], slots[refs[1]])
        elif el.tag == "REF_ANNOTATION":
            parent = el.get("ANNOTATION_REF", "")
            parent_span = span(parent, (*stack, aid)) if parent in records else None
            if parent_span is None:
                result = None
                if parent in untimed:
                    untimed.add(aid)
            else:
                chain = chains[(tier_id, parent)]
                n, i = len(chain), chain.index(aid)
                start, end = parent_span
                result = (start + (end - start) * i / n, start + (end - start) * (i + 1) / n)
        else:
            raise AnnotationError(f"'{path}': unknown annotation element <{el.tag}> in tier {tier_id!r}")
        spans[aid] = result
        return result

    aset = AnnotationSet(media=media, vocabularies=vocabularies, source=path)
    orphans = reversed_ = 0
    for tier_el, ids in tier_order:
        lt_id = tier_el.get("LINGUISTIC_TYPE_REF", "")
        lt = types.get(lt_id)
        tier_id = tier_el.get("TIER_ID", "")
        annotations = []
        n_untimed = 0
        for aid in ids:
            resolved = span(aid)
            if resolved is None:
                if aid in untimed:
                    n_untimed += 1
                else:
                    orphans += 1
                continue
            start, end = resolved
            if end < start:  # slots in the wrong order; ELAN would not draw it either
                reversed_ += 1
                start, end = end, start
            start, end = (start + origin_ms) / 1000.0, (end + origin_ms) / 1000.0
            for t in (start, end):  # a TIME_ORIGIN can push a valid slot time out of range
                check_time(t, path=path, where=f"tier {tier_id!r}, annotation {aid!r} (after the media TIME_ORIGIN)")
            annotations.append(Annotation(start, end, records[aid][2]))
        if n_untimed:
            warnings.warn(
                AnnotationWarning(
                    f"'{path}': tier {tier_id!r}: none of the document's time slots has a TIME_VALUE, so the "
                    f"times of its {n_untimed} annotation(s) cannot be known; they were dropped (align the "
                    "file in ELAN first)"
                ),
                stacklevel=2,
            )
        annotations = zero_length_rule(annotations, path=path, tier=tier_id, stacklevel=4)
        aset.add_tier(
            Tier(
                name=tier_el.get("TIER_ID", ""),
                annotations=annotations,
                parent=tier_el.get("PARENT_REF") or None,
                linguistic_type=lt_id,
                participant=tier_el.get("PARTICIPANT", ""),
                annotator=tier_el.get("ANNOTATOR", ""),
                vocabulary=(lt.get("CONTROLLED_VOCABULARY_REF") or None) if lt is not None else None,
            )
        )
    if orphans:
        warnings.warn(
            f"'{path}': {orphans} reference annotations point to annotations that do not exist; they were dropped",
            stacklevel=2,
        )
    if reversed_:
        warnings.warn(
            f"'{path}': {reversed_} annotations end before they start; their begin and end were swapped",
            stacklevel=2,
        )
    aset.document = EafDocument(
        root=root,
        path=path,
        origin_ms=origin_ms,
        tiers={tier.name: _tier_key(tier) for tier in aset},
        media=_media_key(aset.media),
        vocabularies={k: list(v) for k, v in aset.vocabularies.items()},
    )
    return aset


def _chain_order(members: list[str], records: dict, path: Path) -> list[str]:
    """Order the annotations of one tier that share a parent by their PREVIOUS_ANNOTATION links."""
    if len(members) == 1:
        return members
    member_set = set(members)
    following = {}
    heads = []
    for aid in members:
        prev = records[aid][1].get("PREVIOUS_ANNOTATION")
        if prev and prev in member_set:
            following[prev] = aid
        else:
            heads.append(aid)
    if len(heads) == 1:
        chain = [heads[0]]
        while chain[-1] in following and len(chain) <= len(members):
            chain.append(following[chain[-1]])
        if len(chain) == len(members):
            return chain
    warnings.warn(
        f"'{path}': the PREVIOUS_ANNOTATION chain of annotations {members[0]!r}... is broken; "
        "document order is used",
        stacklevel=4,
    )
    return members


# --------------------------------------------------------------------------------------------
# writing


def _media_ref(media: str | Path, eaf_path: Path) -> MediaRef:
    media = Path(media).expanduser().resolve()
    rel = os.path.relpath(media, eaf_path.resolve().parent).replace(os.sep, "/")
    if not rel.startswith("../"):
        rel = f"./{rel}"
    mime = _MIME.get(media.suffix.lower()) or mimetypes.guess_type(media.name)[0] or "unknown"
    return MediaRef(url=media.as_uri(), mime_type=mime, relative_url=rel, time_origin=0.0)


def _ordered_tiers(aset: AnnotationSet) -> list[Tier]:
    """Tiers with every parent before its children, otherwise in document order."""
    placed: list[Tier] = []
    done: set[str] = set()
    pending = list(aset)
    while pending:
        rest = []
        for tier in pending:
            if tier.parent is None or tier.parent in done or tier.parent not in aset.tiers:
                placed.append(tier)
                done.add(tier.name)
            else:
                rest.append(tier)
        if len(rest) == len(pending):  # a parent cycle: write the rest independently
            placed.extend(rest)
            break
        pending = rest
    return placed


def _contained(child: list[tuple[int, int]], parent: list[tuple[int, int]]) -> bool:
    """Whether each child interval lies within at least one parent interval."""
    parent = sorted(parent)
    starts = [p[0] for p in parent]
    reach = list(itertools.accumulate((p[1] for p in parent), max))
    for start, end in child:
        i = bisect.bisect_right(starts, start) - 1
        if i < 0 or reach[i] < end:
            return False
    return True


def _date(date: _dt.datetime | str | None) -> str:
    if date is None:
        date = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    if isinstance(date, _dt.datetime):
        if date.tzinfo is None:
            date = date.replace(tzinfo=_dt.timezone.utc)
        return date.isoformat()
    return str(date)


#: Order of the children of ANNOTATION_DOCUMENT in the EAF schemas (2.x and 3.0).
_SCHEMA_ORDER = (
    "LICENSE", "HEADER", "TIME_ORDER", "TIER", "LINGUISTIC_TYPE", "LOCALE", "LANGUAGE",
    "CONSTRAINT", "CONTROLLED_VOCABULARY", "LEXICON_REF", "REF_LINK_SET", "EXTERNAL_REF",
)  # fmt: skip


def _insert_in_order(parent: ET.Element, element: ET.Element, order: Sequence[str] = _SCHEMA_ORDER) -> None:
    """Insert ``element`` after the last child of ``parent`` that the schema puts at or before it."""
    rank = order.index(element.tag)
    index = 0
    for i, child in enumerate(parent):
        if child.tag in order and order.index(child.tag) <= rank:
            index = i + 1
    parent.insert(index, element)


class _Ids:
    """New ids of one kind (``ts``, ``a``) that collide with none in the document."""

    def __init__(self, prefix: str, existing: Iterable[str], start: int = 0):
        pattern = re.compile(rf"{re.escape(prefix)}(\d+)$")
        numbers = [int(m.group(1)) for m in map(pattern.match, existing) if m]
        self.prefix, self.next, self.taken = prefix, max([start, *numbers]) + 1, set(existing)

    def __call__(self) -> str:
        while f"{self.prefix}{self.next}" in self.taken:
            self.next += 1
        name = f"{self.prefix}{self.next}"
        self.next += 1
        self.taken.add(name)
        return name


def _spans_ms(tiers: list[Tier], aset: AnnotationSet, path: Path, origin_ms: int) -> dict[str, list[tuple[int, int]]]:
    """Integer document-ms spans of the tiers to write, checked; overlaps within a tier warn."""
    where = f"'{aset.source}'" if aset.source else "the annotation set"

    def to_ms(t: float, tier: Tier) -> int:
        problem = time_problem(t)
        if problem is not None:
            raise AnnotationError(f"cannot write '{path}': tier {tier.name!r} of {where} has a time {t!r} s that {problem}")
        ms = round(t * 1000.0) - origin_ms
        if ms < 0:
            raise AnnotationError(
                f"cannot write '{path}': tier {tier.name!r} of {where} has a time {t:.3f} s before "
                f"the media time origin {origin_ms / 1000:.3f} s"
            )
        return ms

    ms_spans = {}
    for tier in tiers:
        spans = [(to_ms(a.start, tier), to_ms(a.end, tier)) for a in tier.annotations]
        for (start, end), ann in zip(spans, tier.annotations):
            if end < start:
                raise AnnotationError(
                    f"cannot write '{path}': annotation {ann.value!r} in tier {tier.name!r} of {where} "
                    f"ends ({ann.end:.3f} s) before it starts ({ann.start:.3f} s)"
                )
        ms_spans[tier.name] = spans
        if spans and all(end == start for start, end in spans):
            warnings.warn(
                AnnotationWarning(
                    f"'{path}': tier {tier.name!r} holds only zero-length annotations (points), which ELAN "
                    "cannot show; read_eaf drops such a tier (write points to a TextGrid or CSV)"
                ),
                stacklevel=4,
            )
        ordered = sorted(spans)
        overlaps = sum(1 for (_, e0), (s1, _) in zip(ordered, ordered[1:]) if s1 < e0)
        if overlaps:
            warnings.warn(
                f"'{path}': tier {tier.name!r} has {overlaps} overlapping annotations, which ELAN does not "
                "allow within one tier (write one tier per class)",
                stacklevel=4,
            )
    return ms_spans


def _written_parent(tier: Tier, aset: AnnotationSet, written: set[str], ms_spans: dict, path: Path) -> str | None:
    """The PARENT_REF a freshly written tier gets: its parent when written before it and containing it."""
    parent = tier.parent
    if parent is None:
        return None
    if parent not in aset.tiers or parent not in written:
        warnings.warn(
            f"'{path}': tier {tier.name!r} has parent {parent!r}, which is not written; "
            "it is written as an independent tier",
            stacklevel=4,
        )
        return None
    parent_spans = ms_spans.get(parent)
    if parent_spans is None:  # a parent kept verbatim: its annotations as the set holds them
        parent_spans = [(round(a.start * 1000.0), round(a.end * 1000.0)) for a in aset.tiers[parent].annotations]
        child = [(round(a.start * 1000.0), round(a.end * 1000.0)) for a in tier.annotations]
    else:
        child = ms_spans[tier.name]
    if not _contained(sorted(child), sorted(parent_spans)):
        warnings.warn(
            f"'{path}': tier {tier.name!r} has annotations outside those of its parent {parent!r}; "
            "it is written as an independent tier",
            stacklevel=4,
        )
        return None
    return parent


def _tier_element(tier: Tier, lt_id: str, parent: str | None, spans: list[tuple[int, int]],
                  slot_ids: list[tuple[str, str]], annotation_id, cve_ref) -> ET.Element:
    """A time-alignable TIER element; ``cve_ref(value)`` gives the CVE_REF of a value or ``None``."""
    attrs = {"LINGUISTIC_TYPE_REF": lt_id, "TIER_ID": tier.name}
    if parent:
        attrs["PARENT_REF"] = parent
    if tier.participant:
        attrs["PARTICIPANT"] = tier.participant
    if tier.annotator:
        attrs["ANNOTATOR"] = tier.annotator
    tier_el = ET.Element("TIER", attrs)
    for ann, (ref1, ref2) in zip(tier.annotations, slot_ids):
        wrapper = ET.SubElement(tier_el, "ANNOTATION")
        al_attrs = {"ANNOTATION_ID": annotation_id(), "TIME_SLOT_REF1": ref1, "TIME_SLOT_REF2": ref2}
        ref = cve_ref(ann.value)
        if ref:
            al_attrs["CVE_REF"] = ref
        al = ET.SubElement(wrapper, "ALIGNABLE_ANNOTATION", al_attrs)
        ET.SubElement(al, "ANNOTATION_VALUE").text = ann.value
    return tier_el


def write_eaf(
    aset: AnnotationSet,
    path: str | Path,
    *,
    media: str | Path | None = None,
    vocabularies: bool = True,
    author: str | None = None,
    date: _dt.datetime | str | None = None,
    keep_document: bool = True,
) -> None:
    """Write ``aset`` as an ELAN document; the write is atomic.

    A set read by :func:`read_eaf` is written back **whole** (``keep_document``): the document
    as read is the starting point and only what changed in the set is rewritten, so a read-write
    round trip gives an equivalent document (same version, header properties, media and linked
    file descriptors, locales, languages, vocabularies with their descriptions and entry ids,
    external and lexicon references, linguistic types, constraints, tier attributes, annotation
    and time slot ids; unaligned time slots stay unaligned; only ``DATE`` changes). See
    :func:`_build_kept` for what counts as changed. Any other set is written as a new EAF 3.0
    document.

    Parameters
    ----------
    aset : AnnotationSet
        Times in seconds from the start of the media.
    path : str or Path
        The ``.eaf`` file to write.
    media : str or Path, optional
        A media file to link instead of ``aset.media``: ``MEDIA_URL`` is its absolute
        ``file://`` URI, ``RELATIVE_MEDIA_URL`` its path relative to the ``.eaf``, ``MIME_TYPE``
        guessed from the suffix. When ``None``, ``aset.media`` is kept. In a kept document it
        replaces the first (master) media descriptor and takes over its ``TIME_ORIGIN``; the
        other descriptors stay.
    vocabularies : bool
        Write ``aset.vocabularies`` as controlled vocabularies (EAF 3.0: ``CV_ENTRY_ML`` /
        ``CVE_VALUE``) and link each tier's vocabulary through its linguistic type; annotations
        whose value is an entry refer to it (``CVE_REF``). A tier's vocabulary that
        ``aset.vocabularies`` lacks is not linked. In a kept document the document's own
        vocabularies are always kept (they belong to it); ``False`` only adds none.
    author : str, optional
        The ``AUTHOR`` attribute; by default ``"musicperf"`` for a new document and the
        original author for a kept one.
    date : datetime or str, optional
        The ``DATE`` attribute (ISO 8601); the current time by default. Give a fixed date for
        byte-identical output.
    keep_document : bool
        Start from the document ``aset`` was read from, when it has one (``aset.document``).
        ``False`` writes a new EAF 3.0 document from the set alone (every tier time-alignable,
        explicit times).

    Notes
    -----
    Tiers written anew have explicit times rounded to integer milliseconds. Every such tier
    gets a linguistic type declared explicitly (``TIME_ALIGNABLE="true"``,
    ``GRAPHIC_REFERENCES="false"``, ``CONSTRAINTS="Included_In"`` for dependent tiers,
    ``CONTROLLED_VOCABULARY_REF`` when it has a vocabulary): one type per distinct (type name,
    constraint, vocabulary). A new document declares all four ELAN constraints, as ELAN does.

    Raises
    ------
    AnnotationError
        When an annotation would start before document time 0 (before the media's
        ``TIME_ORIGIN``), ends before it starts, or has a time that is not finite, negative or
        beyond :data:`~musicperf.io.annotations.MAX_TIME`.
    """
    path = Path(path)
    doc = aset.document if keep_document and isinstance(aset.document, EafDocument) else None
    if doc is not None:
        root = _build_kept(aset, doc, path, media=media, vocabularies=vocabularies, author=author, date=date)
    else:
        root = _build_new(aset, path, media=media, vocabularies=vocabularies, author=author or "musicperf", date=date)
    ET.indent(root, space="    ")
    data = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode").encode("utf-8") + b"\n"
    write_bytes_atomic(path, data)


def _build_new(aset: AnnotationSet, path: Path, *, media, vocabularies: bool, author: str, date) -> ET.Element:
    """A new EAF 3.0 document holding ``aset``."""
    media_refs = [_media_ref(media, path)] if media is not None else list(aset.media)
    origin_ms = round(media_refs[0].time_origin * 1000.0) if media_refs else 0
    tiers = _ordered_tiers(aset)
    ms_spans = _spans_ms(tiers, aset, path, origin_ms)

    written_cvs = {k: list(dict.fromkeys(v)) for k, v in aset.vocabularies.items()} if vocabularies else {}
    root = ET.Element(
        "ANNOTATION_DOCUMENT",
        {
            "AUTHOR": author,
            "DATE": _date(date),
            "FORMAT": EAF_FORMAT,
            "VERSION": EAF_FORMAT,
            "xmlns:xsi": _XSI,
            "xsi:noNamespaceSchemaLocation": _XSD,
        },
    )
    header = ET.SubElement(root, "HEADER", {"MEDIA_FILE": "", "TIME_UNITS": "milliseconds"})
    for ref in media_refs:
        header.append(_media_element(ref))
    n_annotations = sum(len(t) for t in tiers)
    ET.SubElement(header, "PROPERTY", {"NAME": "lastUsedAnnotationId"}).text = str(n_annotations)

    # Time slots: two per annotation, TIME_ORDER sorted by time as ELAN keeps it.
    slot_times: list[tuple[int, int]] = []  # (ms, running index)
    for tier in tiers:
        for start, end in ms_spans[tier.name]:
            slot_times.append((start, len(slot_times)))
            slot_times.append((end, len(slot_times)))
    slot_id = {}
    time_order = ET.SubElement(root, "TIME_ORDER")
    for n, (ms, index) in enumerate(sorted(slot_times), start=1):
        slot_id[index] = f"ts{n}"
        ET.SubElement(time_order, "TIME_SLOT", {"TIME_SLOT_ID": f"ts{n}", "TIME_VALUE": str(ms)})

    # Linguistic types: one per distinct (name, constraint, vocabulary).
    lt_of: dict[tuple[str, str | None, str | None], str] = {}
    tier_lt: dict[str, str] = {}
    tier_parent: dict[str, str | None] = {}
    written_names: set[str] = set()
    for tier in tiers:
        parent = _written_parent(tier, aset, written_names, ms_spans, path)
        written_names.add(tier.name)
        cv = tier.vocabulary if tier.vocabulary in written_cvs else None
        key = (tier.linguistic_type or "default-lt", "Included_In" if parent else None, cv)
        if key not in lt_of:
            base = key[0]  # LINGUISTIC_TYPE_ID is free text in the schema: keep the name
            name, n = base, 1
            while name in lt_of.values():
                n += 1
                name = f"{base}-{n}"
            lt_of[key] = name
        tier_lt[tier.name] = lt_of[key]
        tier_parent[tier.name] = parent

    cve_ids = {
        (cv_id, value): f"cveid_{k}_{j}"
        for k, (cv_id, values) in enumerate(written_cvs.items())
        for j, value in enumerate(values)
    }
    next_slot = 0
    annotation_id = _Ids("a", [])
    for tier in tiers:
        slots = [(slot_id[next_slot + 2 * i], slot_id[next_slot + 2 * i + 1]) for i in range(len(tier))]
        next_slot += 2 * len(tier)
        cv = tier.vocabulary if tier.vocabulary in written_cvs else None
        root.append(
            _tier_element(tier, tier_lt[tier.name], tier_parent[tier.name], ms_spans[tier.name], slots,
                          annotation_id, lambda value, cv=cv: cve_ids.get((cv, value)))
        )

    for (_, constraint, cv), lt_id in lt_of.items():
        attrs = {"GRAPHIC_REFERENCES": "false", "LINGUISTIC_TYPE_ID": lt_id, "TIME_ALIGNABLE": "true"}
        if constraint:
            attrs["CONSTRAINTS"] = constraint
        if cv:
            attrs["CONTROLLED_VOCABULARY_REF"] = cv
        ET.SubElement(root, "LINGUISTIC_TYPE", attrs)
    if written_cvs:
        ET.SubElement(root, "LANGUAGE", _UND)
    for stereotype, description in _CONSTRAINTS.items():
        ET.SubElement(root, "CONSTRAINT", {"DESCRIPTION": description, "STEREOTYPE": stereotype})
    for cv_id, values in written_cvs.items():
        root.append(_cv_element(cv_id, values, ml=True, lang="und", ids=[cve_ids[(cv_id, v)] for v in values]))
    return root


#: The LANGUAGE element ELAN writes for "undetermined".
_UND = {"LANG_DEF": "http://cdb.iso.org/lg/CDB-00130975-001", "LANG_ID": "und", "LANG_LABEL": "undetermined (und)"}


def _media_element(ref: MediaRef) -> ET.Element:
    attrs = {"MEDIA_URL": ref.url, "MIME_TYPE": ref.mime_type or "unknown"}
    if ref.relative_url:
        attrs["RELATIVE_MEDIA_URL"] = ref.relative_url
    if ref.time_origin:
        attrs["TIME_ORIGIN"] = str(round(ref.time_origin * 1000.0))
    return ET.Element("MEDIA_DESCRIPTOR", attrs)


def _cve_id(cv_id: str, value: str) -> str:
    """A CVE_ID for a new entry: ELAN's ``cveid_<uuid>`` form, derived from the vocabulary and value."""
    return f"cveid_{uuid.uuid5(uuid.NAMESPACE_URL, 'musicperf-cv:' + cv_id + chr(0) + value)}"


def _cv_entry(value: str, *, ml: bool, lang: str | None, cve_id: str | None) -> ET.Element:
    if ml:  # EAF >= 2.8: multilingual entry
        entry = ET.Element("CV_ENTRY_ML", {"CVE_ID": cve_id or ""})
        ET.SubElement(entry, "CVE_VALUE", {"DESCRIPTION": "", "LANG_REF": lang or "und"}).text = value
    else:  # EAF <= 2.7
        entry = ET.Element("CV_ENTRY", {"DESCRIPTION": ""})
        entry.text = value
    return entry


def _cv_element(cv_id: str, values: list[str], *, ml: bool, lang: str | None, ids: list[str]) -> ET.Element:
    cv_el = ET.Element("CONTROLLED_VOCABULARY", {"CV_ID": cv_id})
    if ml:
        ET.SubElement(cv_el, "DESCRIPTION", {"LANG_REF": lang or "und"})
    for value, cve_id in zip(values, ids):
        cv_el.append(_cv_entry(value, ml=ml, lang=lang, cve_id=cve_id))
    return cv_el


def _version(root: ET.Element) -> tuple[int, ...]:
    text = root.get("VERSION") or root.get("FORMAT") or EAF_FORMAT
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return (3, 0)


def _build_kept(aset: AnnotationSet, doc: EafDocument, path: Path, *, media, vocabularies: bool, author, date) -> ET.Element:
    """The document ``aset`` was read from, with what changed in ``aset`` rewritten.

    * A tier is kept **verbatim** (element, annotation ids, time slots, REF annotations, CVE_REFs
      as read) when its annotations and attributes equal what was read and so does every tier
      above it (its ``PARENT_REF`` chain). Otherwise it is written anew in the place of the old
      element, time-alignable with explicit times (as by a new document); new tiers follow the
      last tier. Tiers no longer in the set are removed, with the time slots only they used.
    * New time slots are inserted into the ``TIME_ORDER`` before the first aligned slot that is
      later; new ids (``ts<n>``, ``a<n>``) follow the largest in the document (and its
      ``lastUsedAnnotationId``), which then follows them.
    * A new tier reuses the document's linguistic type of its ``linguistic_type`` name when that
      type fits (time-alignable, same constraint and vocabulary), otherwise a new type named
      after it. Vocabularies new to the document are added (multilingual from EAF 2.8 on, in
      the document's first LANGUAGE); values new to a vocabulary of the document are appended
      to it; entries are never removed (kept annotations may refer to them).
    * ``FORMAT``/``VERSION`` and ``AUTHOR`` stay; ``DATE`` is set.
    """
    root = copy.deepcopy(doc.root)
    ml = _version(root) >= (2, 8)
    if author is not None:
        root.set("AUTHOR", author)
    root.set("DATE", _date(date))
    header = root.find("HEADER")
    if header is None:
        header = ET.Element("HEADER", {"MEDIA_FILE": "", "TIME_UNITS": "milliseconds"})
        _insert_in_order(root, header)
    unit_ms = _TIME_UNITS_MS.get(header.get("TIME_UNITS", "milliseconds"), 1.0)

    # Media. A changed master origin changes every document time: then every tier is rewritten.
    descriptors = header.findall("MEDIA_DESCRIPTOR")
    origin_ms = doc.origin_ms
    if media is not None:
        ref = _media_ref(media, path)
        ref.time_origin = doc.origin_ms / 1000.0
        new = _media_element(ref)
        if descriptors:
            header.insert(list(header).index(descriptors[0]), new)
            header.remove(descriptors[0])
        else:
            header.insert(0, new)
    elif _media_key(aset.media) != doc.media:
        index = list(header).index(descriptors[0]) if descriptors else 0
        for md in descriptors:
            header.remove(md)
        for k, ref in enumerate(aset.media):
            header.insert(index + k, _media_element(ref))
        origin_ms = round(aset.media[0].time_origin * 1000.0) if aset.media else 0
    shifted = origin_ms != doc.origin_ms
    if shifted or unit_ms != 1.0:
        # document times change (or are not milliseconds): write every time slot anew, in ms
        header.set("TIME_UNITS", "milliseconds")

    tier_els = {el.get("TIER_ID"): el for el in root.iterfind("TIER")}
    verbatim: dict[str, bool] = {}

    def is_verbatim(name: str, seen: frozenset = frozenset()) -> bool:
        if name in verbatim:
            return verbatim[name]
        tier = aset.tiers.get(name)
        ok = (
            tier is not None
            and not shifted
            and unit_ms == 1.0
            and name in doc.tiers
            and name in tier_els
            and _tier_key(tier) == doc.tiers[name]
            and name not in seen
        )
        if ok:
            parent = tier_els[name].get("PARENT_REF")
            ok = not parent or is_verbatim(parent, seen | {name})
        verbatim[name] = ok
        return ok

    for name in aset.tiers:
        is_verbatim(name)
    slots_before = {
        ref for el in root.iterfind("TIER/ANNOTATION/ALIGNABLE_ANNOTATION")
        for ref in (el.get("TIME_SLOT_REF1"), el.get("TIME_SLOT_REF2"))
    }
    all_annotation_ids = [el.get("ANNOTATION_ID", "") for el in root.iterfind("TIER/ANNOTATION/*")]
    # Remove the tiers not kept verbatim; remember where the rewritten ones stood.
    place: dict[str, ET.Element] = {}
    for name, el in tier_els.items():
        if verbatim.get(name):
            continue
        if name in aset.tiers:
            marker = ET.Element("__musicperf_place__")
            root.insert(list(root).index(el), marker)
            place[name] = marker
        root.remove(el)
    time_order = root.find("TIME_ORDER")
    if time_order is None:
        time_order = ET.Element("TIME_ORDER")
        _insert_in_order(root, time_order)
    slots_now = {
        ref for el in root.iterfind("TIER/ANNOTATION/ALIGNABLE_ANNOTATION")
        for ref in (el.get("TIME_SLOT_REF1"), el.get("TIME_SLOT_REF2"))
    }
    orphaned = slots_before - slots_now
    for slot in list(time_order):
        if slot.get("TIME_SLOT_ID") in orphaned or shifted or unit_ms != 1.0:
            time_order.remove(slot)  # (a shift or other units: no tier is kept, all slots are new)

    fresh = [t for t in _ordered_tiers(aset) if not verbatim.get(t.name)]
    ms_spans = _spans_ms(fresh, aset, path, round(origin_ms))

    # Vocabularies: new ones added, new values appended; the document's own always kept.
    cv_els = {cv.get("CV_ID"): cv for cv in root.iterfind("CONTROLLED_VOCABULARY")}
    languages = [lang.get("LANG_ID") for lang in root.iterfind("LANGUAGE")]
    if vocabularies:
        for cv_id, values in aset.vocabularies.items():
            values = list(dict.fromkeys(values))
            if doc.vocabularies.get(cv_id) == values:
                continue
            if ml and not languages:
                _insert_in_order(root, ET.Element("LANGUAGE", _UND))
                languages.append("und")
            lang = languages[0] if languages else None
            cv_el = cv_els.get(cv_id)
            if cv_el is None:
                cv_el = _cv_element(cv_id, values, ml=ml, lang=lang, ids=[_cve_id(cv_id, v) for v in values])
                _insert_in_order(root, cv_el)
                cv_els[cv_id] = cv_el
            elif not cv_el.get("EXT_REF"):
                present = set(_cv_values(cv_el))
                for value in values:
                    if value not in present:
                        cv_el.append(_cv_entry(value, ml=ml, lang=lang, cve_id=_cve_id(cv_id, value)))
    entry_ids: dict[tuple[str, str], str] = {}
    if ml:
        for cv_id, cv_el in cv_els.items():
            for entry in cv_el.iterfind("CV_ENTRY_ML"):
                for value_el in entry.iterfind("CVE_VALUE"):
                    entry_ids.setdefault((cv_id, (value_el.text or "").strip()), entry.get("CVE_ID", ""))

    # Linguistic types and constraints for the tiers written anew.
    lts = {lt.get("LINGUISTIC_TYPE_ID"): lt for lt in root.iterfind("LINGUISTIC_TYPE")}
    constraints = {c.get("STEREOTYPE") for c in root.iterfind("CONSTRAINT")}

    def lt_for(tier: Tier, constraint: str | None, cv: str | None) -> str:
        base = tier.linguistic_type or "default-lt"
        name, n = base, 1
        while name in lts:
            lt = lts[name]
            if (
                lt.get("TIME_ALIGNABLE", "true") == "true"
                and (lt.get("CONSTRAINTS") or None) == constraint
                and (lt.get("CONTROLLED_VOCABULARY_REF") or None) == cv
            ):
                return name
            n += 1
            name = f"{base}-{n}"
        attrs = {"GRAPHIC_REFERENCES": "false", "LINGUISTIC_TYPE_ID": name, "TIME_ALIGNABLE": "true"}
        if constraint:
            attrs["CONSTRAINTS"] = constraint
        if cv:
            attrs["CONTROLLED_VOCABULARY_REF"] = cv
        lts[name] = ET.Element("LINGUISTIC_TYPE", attrs)
        _insert_in_order(root, lts[name])
        if constraint and constraint not in constraints:
            _insert_in_order(root, ET.Element("CONSTRAINT", {"DESCRIPTION": _CONSTRAINTS[constraint],
                                                             "STEREOTYPE": constraint}))
            constraints.add(constraint)
        return name

    slot_ids = _Ids("ts", [s.get("TIME_SLOT_ID", "") for s in time_order])
    last_used = header.find("PROPERTY[@NAME='lastUsedAnnotationId']")
    try:
        last = int(last_used.text) if last_used is not None and last_used.text else 0
    except ValueError:
        last = 0
    annotation_id = _Ids("a", all_annotation_ids, start=last)
    new_slots: list[tuple[int, str]] = []
    written = {name for name, ok in verbatim.items() if ok}
    n_new = 0
    for tier in fresh:
        parent = _written_parent(tier, aset, written, ms_spans, path)
        written.add(tier.name)
        cv = tier.vocabulary if tier.vocabulary in cv_els else None
        lt_id = lt_for(tier, "Included_In" if parent else None, cv)
        refs = []
        for start, end in ms_spans[tier.name]:
            pair = (slot_ids(), slot_ids())
            new_slots += [(start, pair[0]), (end, pair[1])]
            refs.append(pair)
        tier_el = _tier_element(tier, lt_id, parent, ms_spans[tier.name], refs, annotation_id,
                                lambda value, cv=cv: entry_ids.get((cv, value)) if cv else None)
        n_new += len(tier)
        old_el = tier_els.get(tier.name)
        if old_el is not None:  # attributes the model does not hold (DEFAULT_LOCALE, LANG_REF, EXT_REF) stay
            for key, value in old_el.attrib.items():
                if key in ("PARTICIPANT", "ANNOTATOR"):  # the model's value wins; an empty one stays
                    if key not in tier_el.attrib and getattr(tier, key.lower()) == value:
                        tier_el.set(key, value)
                elif key not in ("LINGUISTIC_TYPE_REF", "PARENT_REF", "TIER_ID"):
                    tier_el.set(key, value)
        if tier.name in place:
            root.insert(list(root).index(place.pop(tier.name)), tier_el)
        else:
            _insert_in_order(root, tier_el)
    for marker in place.values():
        root.remove(marker)
    for el in list(root):
        if el.tag == "__musicperf_place__":
            root.remove(el)

    # New slots go before the first aligned slot that is later (the TIME_ORDER is in time order).
    if new_slots:
        new_slots.sort()
        merged: list[ET.Element] = []
        k = 0
        for slot in list(time_order):
            value = slot.get("TIME_VALUE")
            if value not in (None, ""):
                ms = float(value)
                while k < len(new_slots) and new_slots[k][0] < ms:
                    merged.append(ET.Element("TIME_SLOT", {"TIME_SLOT_ID": new_slots[k][1],
                                                           "TIME_VALUE": str(new_slots[k][0])}))
                    k += 1
            merged.append(slot)
        merged += [ET.Element("TIME_SLOT", {"TIME_SLOT_ID": sid, "TIME_VALUE": str(ms)}) for ms, sid in new_slots[k:]]
        for slot in list(time_order):
            time_order.remove(slot)
        time_order.extend(merged)
    if n_new and last_used is not None:  # (a document without it, EAF < 2.7, gets none)
        last_used.text = str(max(last, annotation_id.next - 1))
    return root


def add_vocabulary(aset: AnnotationSet, cv_id: str, values=None, *, tiers=None) -> list[str]:
    """Register a controlled vocabulary in ``aset`` and link tiers to it.

    Parameters
    ----------
    aset : AnnotationSet
        Modified in place.
    cv_id : str
        The vocabulary id.
    values : iterable of str, optional
        The allowed values; by default the distinct non-empty values of ``tiers``, sorted.
    tiers : iterable of str, optional
        Names of the tiers whose values come from this vocabulary; by default all tiers.

    Returns
    -------
    list of str
        The vocabulary's values.
    """
    names = list(tiers) if tiers is not None else list(aset.tiers)
    chosen = [aset[name] for name in names]
    if values is None:
        values = sorted({a.value for t in chosen for a in t.annotations if a.value})
    values = list(dict.fromkeys(values))
    aset.vocabularies[cv_id] = values
    for tier in chosen:
        tier.vocabulary = cv_id
    return values


#: The linguistic type and vocabulary id of the tiers :func:`add_prediction_tiers` adds.
PREDICTION_TYPE = "musicperf-prediction"
PREDICTION_VOCABULARY = "musicperf-classes"


def add_prediction_tiers(
    aset: AnnotationSet,
    predictions: Mapping[str, Iterable[tuple[float, float]]],
    *,
    classes: Sequence[str] | None = None,
    prefix: str = "",
    linguistic_type: str = PREDICTION_TYPE,
    vocabulary: str = PREDICTION_VOCABULARY,
    annotator: str = "musicperf",
) -> list[Tier]:
    """Add one predicted tier per class to ``aset``, under a linguistic type and vocabulary of their own.

    Each tier is named ``prefix + class``; its annotations are the predicted intervals, each
    valued with the class name. The tiers get the linguistic type ``linguistic_type`` (not the
    human tiers' type), whose controlled vocabulary ``vocabulary`` lists the class names, so
    :func:`write_eaf` writes every predicted annotation with a ``CVE_REF`` to its class's entry
    and ELAN offers the classes as the only values. When ``aset`` was read from an ELAN file,
    :func:`write_eaf` keeps that document whole and adds the tiers to it.

    Parameters
    ----------
    aset : AnnotationSet
        Modified in place (typically the human annotations read with :func:`read_eaf`).
    predictions : mapping of str to iterable of (start, end)
        Class name -> predicted intervals in seconds from the start of the media.
    classes : sequence of str, optional
        The vocabulary's values, in order: every class of the model, including those predicted
        nowhere; by default the keys of ``predictions``. Every key must be one of them.
    prefix : str
        Prepended to the class name to form the tier name (``"auto: "`` in the labelling
        workflow, so that predicted tiers never take a human tier's name).
    linguistic_type, vocabulary : str
        Ids of the tiers' linguistic type and controlled vocabulary.
    annotator : str
        The tiers' ``ANNOTATOR`` attribute.

    Returns
    -------
    list of Tier
        The tiers added, in the order of ``predictions``.

    Raises
    ------
    AnnotationError
        When a tier name is taken by a tier that is not an earlier prediction (a tier of
        another linguistic type: human work is never replaced), a key of ``predictions`` is
        not in ``classes``, or an interval is not finite, negative, beyond
        :data:`~musicperf.io.annotations.MAX_TIME` or does not end after it starts.
        Nothing is changed then.

    Notes
    -----
    An existing tier of the same name *and* of ``linguistic_type`` (an earlier prediction) is
    replaced. Values already in the vocabulary ``vocabulary`` are kept; the classes are added
    after them.

    Examples
    --------
    >>> aset = read_eaf("concert.eaf")                                     # doctest: +SKIP
    >>> add_prediction_tiers(aset, {"Nodding": [(1.0, 2.5)]}, classes=["Nodding", "Swaying"],
    ...                      prefix="auto: ")                              # doctest: +SKIP
    >>> write_eaf(aset, "concert.labelled.eaf")                            # doctest: +SKIP
    """
    classes = list(dict.fromkeys(classes if classes is not None else predictions))
    where = f"'{aset.source}'" if aset.source else "the annotation set"
    tiers: list[Tier] = []
    for cls, intervals in predictions.items():
        if cls not in classes:
            raise AnnotationError(f"predicted class {cls!r} is not one of the classes {classes}")
        name = prefix + cls
        existing = aset.tiers.get(name)
        if existing is not None and existing.linguistic_type != linguistic_type:
            raise AnnotationError(
                f"{where} already has a tier {name!r} of linguistic type {existing.linguistic_type!r}, not an "
                f"earlier prediction ({linguistic_type!r}); it is not replaced (choose another prefix)"
            )
        annotations = []
        for start, end in intervals:
            start, end = float(start), float(end)
            for t in (start, end):
                check_time(t, path=aset.source, where=f"predicted tier {name!r}")
            if not end > start:
                raise AnnotationError(f"predicted tier {name!r}: interval {start!r}-{end!r} s does not end after it starts")
            annotations.append(Annotation(start, end, cls))
        tiers.append(Tier(name, annotations, linguistic_type=linguistic_type, annotator=annotator, vocabulary=vocabulary))
    values = list(aset.vocabularies.get(vocabulary, []))
    aset.vocabularies[vocabulary] = values + [c for c in classes if c not in values]
    for tier in tiers:
        aset.tiers.pop(tier.name, None)
        aset.add_tier(tier)
    return tiers
