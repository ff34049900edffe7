"""ELAN writing: a read document back whole, or a new EAF 3.0 document.

:func:`write_eaf` is re-exported by :mod:`musicperf.io.elan`, whose docstring describes the
choices of the writer. Imports only the standard library (and :mod:`musicperf.io`'s model and
reader).
"""

from __future__ import annotations

import bisect
import copy
import datetime as _dt
import itertools
import mimetypes
import os
import re
import uuid
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path

from musicperf._util import write_bytes_atomic
from musicperf.errors import AnnotationError
from musicperf.io._elan_read import (
    _CONSTRAINTS,
    _MIME,
    _TIME_UNITS_MS,
    _XSD,
    _XSI,
    EAF_FORMAT,
    EafDocument,
    _cv_values,
    _media_key,
    _tier_key,
)
from musicperf.io.annotations import AnnotationSet, AnnotationWarning, MediaRef, Tier, time_problem

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
    * A changed master ``TIME_ORIGIN``, or a new or changed annotation before it, changes every
      document time: then every tier is rewritten (the latter sets the origin to 0, with a
      warning).
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
    # A new or changed annotation before the master TIME_ORIGIN (a prediction from the start of
    # the video in a document whose time 0 is later) cannot be written in the document's time:
    # then the origin becomes 0 and every tier is written in media time, with a warning.
    changed = [a.start for t in aset if doc.tiers.get(t.name) != _tier_key(t) for a in t.annotations
               if not time_problem(a.start)]
    if origin_ms and changed and round(min(changed) * 1000.0) < round(origin_ms):
        warnings.warn(
            f"'{path}': an annotation at {min(changed):.3f} s lies before the document's media TIME_ORIGIN "
            f"{origin_ms / 1000:.3f} s; the origin is set to 0 and every tier is written in media time",
            stacklevel=3,
        )
        origin_ms = 0
        master = header.find("MEDIA_DESCRIPTOR")
        if master is not None:
            master.attrib.pop("TIME_ORIGIN", None)
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
        if tier.name in place:  # in the place of the old element
            marker = place.pop(tier.name)
            index = list(root).index(marker)
            root.remove(marker)
            root.insert(index, tier_el)
        else:
            _insert_in_order(root, tier_el)

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
