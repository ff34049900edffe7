"""ELAN reading: EAF 2.3 to 3.0 documents, ``.etf`` templates and ``.ecv`` vocabularies.

The public names are re-exported by :mod:`musicperf.io.elan`, whose docstring describes how the
reader resolves what a file leaves implicit and what it validates. This module also holds
:class:`EafDocument`, the document as read, that the writer (:mod:`musicperf.io._elan_write`)
starts from. Imports only the standard library (and :mod:`musicperf.io.annotations`).
"""

from __future__ import annotations

import math
import urllib.parse
import urllib.request
import warnings
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

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
    time_problem,
    zero_length_rule,
)

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
                           shown=f"{value.strip()} ms" if unit_ms == 1.0 else f"{value.strip()} x {unit_ms:g} ms")
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
