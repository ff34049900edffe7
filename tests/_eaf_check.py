"""A structural checker for written EAF 3.0 documents, shared by the tests that write EAF."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path


SCHEMA_ORDER = [
    "LICENSE", "HEADER", "TIME_ORDER", "TIER", "LINGUISTIC_TYPE", "LOCALE", "LANGUAGE",
    "CONSTRAINT", "CONTROLLED_VOCABULARY", "LEXICON_REF", "REF_LINK_SET", "EXTERNAL_REF",
]  # fmt: skip


def check_eaf_structure(path: Path, *, media_expected: bool) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "ANNOTATION_DOCUMENT"
    assert root.get("FORMAT") == "3.0" and root.get("VERSION") == "3.0"
    assert root.get("AUTHOR") is not None and root.get("DATE")
    assert root.get("{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation") == (
        "http://www.mpi.nl/tools/elan/EAFv3.0.xsd"
    )
    ranks = [SCHEMA_ORDER.index(child.tag) for child in root]  # unknown element -> ValueError
    assert ranks == sorted(ranks), [c.tag for c in root]
    assert [c.tag for c in root].count("HEADER") == 1 and [c.tag for c in root].count("TIME_ORDER") == 1
    header = root.find("HEADER")
    assert header.get("TIME_UNITS") == "milliseconds"
    descriptors = header.findall("MEDIA_DESCRIPTOR")
    if media_expected:
        assert descriptors
    for md in descriptors:
        assert md.get("MEDIA_URL") is not None and md.get("MIME_TYPE")
    assert [c.tag for c in header] == sorted((c.tag for c in header), key=["MEDIA_DESCRIPTOR", "LINKED_FILE_DESCRIPTOR", "PROPERTY"].index)

    slots = {}
    for slot in root.iterfind("TIME_ORDER/TIME_SLOT"):
        assert slot.get("TIME_SLOT_ID") not in slots
        slots[slot.get("TIME_SLOT_ID")] = int(slot.get("TIME_VALUE"))
        assert slots[slot.get("TIME_SLOT_ID")] >= 0
    values = list(slots.values())
    assert values == sorted(values), "TIME_ORDER is not in time order"

    types = {lt.get("LINGUISTIC_TYPE_ID"): lt for lt in root.iterfind("LINGUISTIC_TYPE")}
    assert len(types) == len(root.findall("LINGUISTIC_TYPE"))
    constraints = {c.get("STEREOTYPE") for c in root.iterfind("CONSTRAINT")}
    cvs = {cv.get("CV_ID"): cv for cv in root.iterfind("CONTROLLED_VOCABULARY")}
    languages = {lang.get("LANG_ID") for lang in root.iterfind("LANGUAGE")}
    for lt in types.values():
        assert lt.get("TIME_ALIGNABLE") == "true" and lt.get("GRAPHIC_REFERENCES") == "false"
        if lt.get("CONSTRAINTS"):
            assert lt.get("CONSTRAINTS") in constraints
        if lt.get("CONTROLLED_VOCABULARY_REF"):
            assert lt.get("CONTROLLED_VOCABULARY_REF") in cvs
    for cv in cvs.values():
        entry_ids = [e.get("CVE_ID") for e in cv.iterfind("CV_ENTRY_ML")]
        assert len(entry_ids) == len(set(entry_ids))
        for value in cv.iterfind("CV_ENTRY_ML/CVE_VALUE"):
            assert value.get("LANG_REF") in languages
        assert not cv.findall("CV_ENTRY"), "EAF 3.0 uses CV_ENTRY_ML"

    tiers = root.findall("TIER")
    tier_ids = [t.get("TIER_ID") for t in tiers]
    assert len(tier_ids) == len(set(tier_ids))
    used_slots: list[str] = []
    annotation_ids = []
    for tier in tiers:
        assert tier.get("LINGUISTIC_TYPE_REF") in types
        lt = types[tier.get("LINGUISTIC_TYPE_REF")]
        if tier.get("PARENT_REF"):
            assert tier.get("PARENT_REF") in tier_ids[: tier_ids.index(tier.get("TIER_ID"))]
            assert lt.get("CONSTRAINTS")
        else:
            assert not lt.get("CONSTRAINTS")
        for ann in tier.iterfind("ANNOTATION"):
            (al,) = list(ann)
            assert al.tag == "ALIGNABLE_ANNOTATION"
            annotation_ids.append(al.get("ANNOTATION_ID"))
            ref1, ref2 = al.get("TIME_SLOT_REF1"), al.get("TIME_SLOT_REF2")
            assert ref1 in slots and ref2 in slots and slots[ref1] <= slots[ref2]
            used_slots += [ref1, ref2]
            assert al.find("ANNOTATION_VALUE") is not None
    assert len(annotation_ids) == len(set(annotation_ids))
    assert sorted(used_slots) == sorted(slots), "every TIME_SLOT is referenced exactly once"
    return root


# ---------------------------------------------------------------------------------------------
# Real files




# ---------------------------------------------------------------------------------------------
# Lossless round trips and documents of any version


def canonical(element: ET.Element, *, ignore: frozenset = frozenset({"DATE"})) -> tuple:
    """An order-of-attributes-free, whitespace-free form of an XML tree, for comparing documents.

    Attributes named in ``ignore`` are left out (``DATE`` is the time of writing). Children keep
    their order; text and tails are stripped of surrounding white space (indentation).
    """
    attrs = tuple(sorted((k, v) for k, v in element.attrib.items() if k not in ignore))
    return (element.tag, attrs, (element.text or "").strip(),
            tuple(canonical(child, ignore=ignore) for child in element), (element.tail or "").strip())


def first_difference(a: tuple, b: tuple, where: str = "") -> str | None:
    """Where two :func:`canonical` trees first differ, as a readable path, or ``None``."""
    here = f"{where}/{a[0]}"
    if a[:3] != b[:3] or a[4] != b[4]:
        return f"{here}: {a[:3]} != {b[:3]}"
    if len(a[3]) != len(b[3]):
        return f"{here}: {len(a[3])} children != {len(b[3])}: {[c[0] for c in a[3]][:8]} / {[c[0] for c in b[3]][:8]}"
    for k, (ca, cb) in enumerate(zip(a[3], b[3])):
        found = first_difference(ca, cb, f"{here}[{k}]")
        if found:
            return found
    return None


def check_eaf_document(root: ET.Element) -> None:
    """ELAN-style consistency of a document of any EAF version (what ELAN checks on opening).

    Every reference resolves (linguistic types, parent tiers, constraints, vocabularies, CVE_REF
    to an entry of the tier's vocabulary, LANG_REF, time slots, REF annotations), ids are unique,
    children are in schema order, aligned annotations do not end before they start, a
    REF annotation refers to an annotation of the parent tier. (Real files break the TIME_ORDER's
    time order and ``lastUsedAnnotationId``; ELAN repairs both on opening, so they are not checked.)
    """
    assert root.tag == "ANNOTATION_DOCUMENT"
    ranks = [SCHEMA_ORDER.index(child.tag) for child in root]
    assert ranks == sorted(ranks), [c.tag for c in root]
    slots = {}
    for slot in root.iterfind("TIME_ORDER/TIME_SLOT"):
        sid = slot.get("TIME_SLOT_ID")
        assert sid and sid not in slots, sid
        value = slot.get("TIME_VALUE")
        slots[sid] = None if value in (None, "") else float(value)
        assert slots[sid] is None or slots[sid] >= 0
    # (ELAN sorts the TIME_ORDER itself on opening; real files have it out of order)
    types = {lt.get("LINGUISTIC_TYPE_ID"): lt for lt in root.iterfind("LINGUISTIC_TYPE")}
    assert len(types) == len(root.findall("LINGUISTIC_TYPE"))
    constraints = {c.get("STEREOTYPE") for c in root.iterfind("CONSTRAINT")}
    languages = {lang.get("LANG_ID") for lang in root.iterfind("LANGUAGE")}
    cvs = {cv.get("CV_ID"): cv for cv in root.iterfind("CONTROLLED_VOCABULARY")}
    assert len(cvs) == len(root.findall("CONTROLLED_VOCABULARY"))
    entries: dict[str, dict[str, set[str]]] = {}
    for cv_id, cv in cvs.items():
        entries[cv_id] = {}
        cve_ids = [entry.get("CVE_ID") for entry in cv.iterfind("CV_ENTRY_ML")]
        assert len(cve_ids) == len(set(cve_ids)), f"CVE_IDs of {cv_id!r} are not unique"
        for entry in cv.iterfind("CV_ENTRY_ML"):
            values = {(v.text or "").strip() for v in entry.iterfind("CVE_VALUE")}
            entries[cv_id][entry.get("CVE_ID")] = values
            for v in entry.iterfind("CVE_VALUE"):  # (EAF 2.8 files may declare no LANGUAGE)
                assert not languages or v.get("LANG_REF") in languages, (cv_id, v.get("LANG_REF"))
    ext_refs = {e.get("EXT_REF_ID") for e in root.iterfind("EXTERNAL_REF")}
    for lt in types.values():
        if lt.get("CONSTRAINTS"):
            assert lt.get("CONSTRAINTS") in constraints, lt.attrib
        if lt.get("CONTROLLED_VOCABULARY_REF"):
            assert lt.get("CONTROLLED_VOCABULARY_REF") in cvs, lt.attrib
        if lt.get("EXT_REF"):
            assert lt.get("EXT_REF") in ext_refs
    tiers = {t.get("TIER_ID"): t for t in root.iterfind("TIER")}
    assert len(tiers) == len(root.findall("TIER")), "TIER_IDs are not unique"
    annotations: dict[str, tuple[str, ET.Element]] = {}
    for tier_id, tier in tiers.items():
        assert tier.get("LINGUISTIC_TYPE_REF") in types, (tier_id, tier.get("LINGUISTIC_TYPE_REF"))
        if tier.get("PARENT_REF"):
            assert tier.get("PARENT_REF") in tiers, tier_id
        for ann in tier.iterfind("ANNOTATION"):
            if not len(ann):
                continue
            el = ann[0]  # (as ELAN and read_eaf do)
            aid = el.get("ANNOTATION_ID")
            assert aid and aid not in annotations, aid
            annotations[aid] = (tier_id, el)
    for aid, (tier_id, el) in annotations.items():
        tier = tiers[tier_id]
        lt = types[tier.get("LINGUISTIC_TYPE_REF")]
        if el.tag == "ALIGNABLE_ANNOTATION":
            r1, r2 = el.get("TIME_SLOT_REF1"), el.get("TIME_SLOT_REF2")
            assert r1 in slots and r2 in slots, aid
            if slots[r1] is not None and slots[r2] is not None:
                assert slots[r1] <= slots[r2], aid
        else:
            assert el.tag == "REF_ANNOTATION"
            assert el.get("ANNOTATION_REF") in annotations, aid
            assert annotations[el.get("ANNOTATION_REF")][0] == tier.get("PARENT_REF"), aid
        ref = el.get("CVE_REF")
        cv_id = lt.get("CONTROLLED_VOCABULARY_REF")
        if ref and entries.get(cv_id):  # (an external vocabulary's entries are not in the document)
            assert ref in entries[cv_id], (aid, ref)
            value = (el.findtext("ANNOTATION_VALUE") or "").strip()
            assert value in entries[cv_id][ref], (aid, value)
