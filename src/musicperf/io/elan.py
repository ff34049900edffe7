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

Choices of the writer
---------------------
Every tier is written time-alignable with explicit integer-millisecond times, so what was read
is written back to the millisecond. A dependent tier keeps its ``PARENT_REF`` under an
``Included_In`` linguistic type when each of its annotations lies inside a parent annotation
(always true for tiers read from an EAF); otherwise it is written as an independent tier, with a
warning. Symbolic (REF) structure is therefore not reproduced: ELAN shows the same times, and
the annotations can be edited freely.

Imports only the standard library (and :mod:`musicperf.io.annotations`).
"""

from __future__ import annotations

import bisect
import datetime as _dt
import itertools
import mimetypes
import os
import urllib.parse
import urllib.request
import warnings
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from musicperf._util import write_bytes_atomic
from musicperf.errors import AnnotationError
from musicperf.io._xml import parse_xml
from musicperf.io.annotations import Annotation, AnnotationSet, MediaRef, Tier

__all__ = ["read_eaf", "write_eaf", "read_ecv", "add_vocabulary", "EAF_FORMAT"]

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


def _resolve_slots(root: ET.Element, path: Path, unit_ms: float) -> dict[str, float]:
    """Time slot id -> time in document milliseconds, unaligned slots interpolated.

    Unaligned slots are first spaced evenly along the chain of annotations of their tier
    between its aligned slots (how ELAN draws subdivisions), then any left are interpolated
    between their aligned neighbours in the ``TIME_ORDER``.
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
            times[sid] = _number(value, what=f"TIME_VALUE of slot {sid!r}", path=path) * unit_ms
    n_unaligned = len(order) - len(times)
    if not n_unaligned:
        return times
    if not times:
        warnings.warn(
            f"'{path}': none of its {len(order)} time slots has a TIME_VALUE; they are all placed at 0 s",
            stacklevel=3,
        )
        return {sid: 0.0 for sid in order}
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
        media.append(
            MediaRef(
                url=md.get("MEDIA_URL", ""),
                mime_type=md.get("MIME_TYPE", ""),
                relative_url=md.get("RELATIVE_MEDIA_URL", ""),
                time_origin=origin_ms / 1000.0,
            )
        )
    return media


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
        ``vocabulary`` is its linguistic type's ``CONTROLLED_VOCABULARY_REF``.

    Raises
    ------
    AnnotationError
        When the file is not well-formed safe XML, not an ELAN document, or refers to time
        slots that are not declared.

    Warns
    -----
    UserWarning
        Once per file for unaligned time slots (interpolated), for external vocabulary files
        that are missing or broken (left out), for reference annotations whose parent does not
        exist (dropped) and for annotations whose end slot precedes their begin (swapped).

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
                if ref not in slots:
                    raise AnnotationError(
                        f"'{path}': annotation {aid!r} in tier {tier_id!r} refers to undeclared time slot {ref!r}"
                    )
            result = (slots[refs[0]], slots[refs[1]])
        elif el.tag == "REF_ANNOTATION":
            parent = el.get("ANNOTATION_REF", "")
            parent_span = span(parent, (*stack, aid)) if parent in records else None
            if parent_span is None:
                result = None
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
        annotations = []
        for aid in ids:
            resolved = span(aid)
            if resolved is None:
                orphans += 1
                continue
            start, end = resolved
            if end < start:  # slots in the wrong order; ELAN would not draw it either
                reversed_ += 1
                start, end = end, start
            annotations.append(Annotation((start + origin_ms) / 1000.0, (end + origin_ms) / 1000.0, records[aid][2]))
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


def write_eaf(
    aset: AnnotationSet,
    path: str | Path,
    *,
    media: str | Path | None = None,
    vocabularies: bool = True,
    author: str = "musicperf",
    date: _dt.datetime | str | None = None,
) -> None:
    """Write ``aset`` as an EAF 3.0 document that ELAN opens; the write is atomic.

    Parameters
    ----------
    aset : AnnotationSet
        Times in seconds from the start of the media.
    path : str or Path
        The ``.eaf`` file to write.
    media : str or Path, optional
        A media file to link instead of ``aset.media``: ``MEDIA_URL`` is its absolute
        ``file://`` URI, ``RELATIVE_MEDIA_URL`` its path relative to the ``.eaf``, ``MIME_TYPE``
        guessed from the suffix. When ``None``, ``aset.media`` is kept.
    vocabularies : bool
        Write ``aset.vocabularies`` as EAF 3.0 controlled vocabularies (``CV_ENTRY_ML`` /
        ``CVE_VALUE``) and link each tier's vocabulary through its linguistic type. A tier's
        vocabulary that ``aset.vocabularies`` lacks is not linked.
    author : str
        The ``AUTHOR`` attribute.
    date : datetime or str, optional
        The ``DATE`` attribute (ISO 8601); the current time by default. Give a fixed date for
        byte-identical output.

    Notes
    -----
    Times are rounded to integer milliseconds. Every tier gets a linguistic type declared
    explicitly (``TIME_ALIGNABLE="true"``, ``GRAPHIC_REFERENCES="false"``, ``CONSTRAINTS=
    "Included_In"`` for dependent tiers, ``CONTROLLED_VOCABULARY_REF`` when it has a vocabulary):
    one type per distinct (type name, constraint, vocabulary). All four ELAN constraints are
    declared, as ELAN itself does.

    Raises
    ------
    AnnotationError
        When an annotation would start before document time 0 (before the media's
        ``TIME_ORIGIN``), or ends before it starts.
    """
    path = Path(path)
    media_refs = [_media_ref(media, path)] if media is not None else list(aset.media)
    origin_ms = round(media_refs[0].time_origin * 1000.0) if media_refs else 0
    where = f"'{aset.source}'" if aset.source else "the annotation set"

    def to_ms(t: float, tier: Tier) -> int:
        ms = round(t * 1000.0) - origin_ms
        if ms < 0:
            raise AnnotationError(
                f"cannot write '{path}': tier {tier.name!r} of {where} has a time {t:.3f} s before "
                f"the media time origin {origin_ms / 1000:.3f} s"
            )
        return ms

    tiers = _ordered_tiers(aset)
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
        ordered = sorted(spans)
        overlaps = sum(1 for (_, e0), (s1, _) in zip(ordered, ordered[1:]) if s1 < e0)
        if overlaps:
            warnings.warn(
                f"'{path}': tier {tier.name!r} has {overlaps} overlapping annotations, which ELAN does not "
                "allow within one tier (write one tier per class)",
                stacklevel=2,
            )

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
        attrs = {"MEDIA_URL": ref.url, "MIME_TYPE": ref.mime_type or "unknown"}
        if ref.relative_url:
            attrs["RELATIVE_MEDIA_URL"] = ref.relative_url
        if ref.time_origin:
            attrs["TIME_ORIGIN"] = str(round(ref.time_origin * 1000.0))
        ET.SubElement(header, "MEDIA_DESCRIPTOR", attrs)
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
        parent = tier.parent
        if parent is not None:
            if parent not in aset.tiers or parent not in written_names:
                warnings.warn(
                    f"'{path}': tier {tier.name!r} has parent {parent!r}, which is not written; "
                    "it is written as an independent tier",
                    stacklevel=2,
                )
                parent = None
            elif not _contained(sorted(ms_spans[tier.name]), sorted(ms_spans[parent])):
                warnings.warn(
                    f"'{path}': tier {tier.name!r} has annotations outside those of its parent {parent!r}; "
                    "it is written as an independent tier",
                    stacklevel=2,
                )
                parent = None
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

    next_slot = 0
    next_ann = 1
    for tier in tiers:
        attrs = {"LINGUISTIC_TYPE_REF": tier_lt[tier.name], "TIER_ID": tier.name}
        if tier_parent[tier.name]:
            attrs["PARENT_REF"] = tier_parent[tier.name]
        if tier.participant:
            attrs["PARTICIPANT"] = tier.participant
        if tier.annotator:
            attrs["ANNOTATOR"] = tier.annotator
        tier_el = ET.SubElement(root, "TIER", attrs)
        for ann in tier.annotations:
            wrapper = ET.SubElement(tier_el, "ANNOTATION")
            al = ET.SubElement(
                wrapper,
                "ALIGNABLE_ANNOTATION",
                {
                    "ANNOTATION_ID": f"a{next_ann}",
                    "TIME_SLOT_REF1": slot_id[next_slot],
                    "TIME_SLOT_REF2": slot_id[next_slot + 1],
                },
            )
            ET.SubElement(al, "ANNOTATION_VALUE").text = ann.value
            next_slot += 2
            next_ann += 1

    for (_, constraint, cv), lt_id in lt_of.items():
        attrs = {"GRAPHIC_REFERENCES": "false", "LINGUISTIC_TYPE_ID": lt_id, "TIME_ALIGNABLE": "true"}
        if constraint:
            attrs["CONSTRAINTS"] = constraint
        if cv:
            attrs["CONTROLLED_VOCABULARY_REF"] = cv
        ET.SubElement(root, "LINGUISTIC_TYPE", attrs)
    if written_cvs:
        ET.SubElement(
            root,
            "LANGUAGE",
            {"LANG_DEF": "http://cdb.iso.org/lg/CDB-00130975-001", "LANG_ID": "und", "LANG_LABEL": "undetermined (und)"},
        )
    for stereotype, description in _CONSTRAINTS.items():
        ET.SubElement(root, "CONSTRAINT", {"DESCRIPTION": description, "STEREOTYPE": stereotype})
    for k, (cv_id, values) in enumerate(written_cvs.items()):
        cv_el = ET.SubElement(root, "CONTROLLED_VOCABULARY", {"CV_ID": cv_id})
        ET.SubElement(cv_el, "DESCRIPTION", {"LANG_REF": "und"})
        for j, value in enumerate(values):
            entry = ET.SubElement(cv_el, "CV_ENTRY_ML", {"CVE_ID": f"cveid_{k}_{j}"})
            ET.SubElement(entry, "CVE_VALUE", {"DESCRIPTION": "", "LANG_REF": "und"}).text = value

    ET.indent(root, space="    ")
    data = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode").encode("utf-8") + b"\n"
    write_bytes_atomic(path, data)


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
