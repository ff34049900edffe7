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


