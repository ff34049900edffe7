"""Lossless ELAN round trips (write_eaf keeps a read document whole) and predicted tiers."""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from _eaf_check import canonical, check_eaf_document, check_eaf_structure, first_difference
from musicperf.cli import main
from musicperf.errors import AnnotationError
from musicperf.io import read_annotations
from musicperf.io._xml import parse_xml
from musicperf.io.annotations import Annotation, AnnotationSet, Tier
from musicperf.io.elan import PREDICTION_TYPE, PREDICTION_VOCABULARY, add_prediction_tiers, read_eaf, write_eaf


def eaf_files(shared_data: Path) -> list[Path]:
    return sorted(p for p in shared_data.rglob("*.e[at]f") if p.is_file())


def quiet_read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_eaf(path)


def same_document(a: Path, b: Path) -> str | None:
    return first_difference(canonical(parse_xml(a)), canonical(parse_xml(b)))


def triples(tier: Tier) -> list[tuple[float, float, str]]:
    return sorted((a.start, a.end, a.value) for a in tier.annotations)


def test_every_shared_eaf_round_trips_to_an_equivalent_document(shared_data, tmp_path):
    files = eaf_files(shared_data)
    assert len(files) >= 16
    for path in files:
        aset = quiet_read(path)
        out = tmp_path / (path.stem + path.suffix)
        write_eaf(aset, out)
        assert same_document(path, out) is None, (path.name, same_document(path, out))
        check_eaf_document(parse_xml(path))
        check_eaf_document(parse_xml(out))
        again = quiet_read(out)
        assert list(again.tiers) == list(aset.tiers)
        assert all(triples(again[n]) == triples(t) for n, t in aset.tiers.items()), path.name


def test_convert_keeps_unaligned_slots_locale_urn_and_vocabulary_ids(shared_data, tmp_path, capsys):
    src = shared_data / "eaf" / "pympi_sample_2.7.eaf"
    out = tmp_path / "copy.eaf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["annotations", "convert", str(src), str(out)]) == 0
    assert same_document(src, out) is None
    root = ET.parse(out).getroot()
    assert sum(1 for s in root.iterfind("TIME_ORDER/TIME_SLOT") if s.get("TIME_VALUE") is None) == 1572
    assert root.get("VERSION") == "2.7" and root.find("LOCALE") is not None
    assert root.find("HEADER/PROPERTY[@NAME='URN']") is not None
    assert len(root.findall("HEADER/LINKED_FILE_DESCRIPTOR")) == 2 and len(root.findall("EXTERNAL_REF")) == 6
    # EAF 3.0: LANGUAGE, CV descriptions and CVE_IDs kept
    src3 = shared_data / "eaf" / "speach_test.eaf"
    out3 = tmp_path / "copy3.eaf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["annotations", "convert", str(src3), str(out3)]) == 0
    assert same_document(src3, out3) is None
    assert [lang.get("LANG_ID") for lang in ET.parse(out3).getroot().iterfind("LANGUAGE")] != ["und"]


def test_changes_rewrite_only_what_changed(shared_data, tmp_path):
    src = shared_data / "eaf" / "poio_example.eaf"
    aset = quiet_read(src)
    original = parse_xml(src)
    children = [t.name for t in aset if t.parent == "W-Words"]
    assert children
    # edit one annotation of a parent tier: it and its dependents are rewritten, the rest kept
    words = aset["W-Words"]
    first = words.annotations[0]
    words.annotations[0] = Annotation(first.start, first.end, first.value + "!")
    del aset.tiers["W-IPA"]  # a dropped tier disappears with its time slots
    out = tmp_path / "edited.eaf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_eaf(aset, out)
    root = parse_xml(out)
    check_eaf_document(root)
    before = {t.get("TIER_ID"): t for t in original.iterfind("TIER")}
    after = {t.get("TIER_ID"): t for t in root.iterfind("TIER")}
    assert list(after) == [n for n in before if n != "W-IPA"]  # same order, in place
    for name in after:
        if name == "W-Words" or name in children:
            assert after[name].find("ANNOTATION/REF_ANNOTATION") is None  # rewritten: time-alignable
            kept = {k: v for k, v in before[name].attrib.items() if k not in ("LINGUISTIC_TYPE_REF", "PARENT_REF")}
            assert kept.items() <= after[name].attrib.items() and "DEFAULT_LOCALE" in kept  # e.g. DEFAULT_LOCALE
        else:
            assert canonical(after[name]) == canonical(before[name]), name
    for el in (root, original):  # the new annotation ids move lastUsedAnnotationId on
        for prop in el.findall("HEADER/PROPERTY[@NAME='lastUsedAnnotationId']"):
            el.find("HEADER").remove(prop)
    for tag in ("HEADER", "LOCALE", "CONTROLLED_VOCABULARY", "CONSTRAINT"):
        assert [canonical(e) for e in root.iterfind(tag)] == [canonical(e) for e in original.iterfind(tag)], tag
    used = {r for a in root.iterfind("TIER/ANNOTATION/ALIGNABLE_ANNOTATION")
            for r in (a.get("TIME_SLOT_REF1"), a.get("TIME_SLOT_REF2"))}
    assert used <= {s.get("TIME_SLOT_ID") for s in root.iterfind("TIME_ORDER/TIME_SLOT")}
    again = quiet_read(out)
    assert [a.value for a in again["W-Words"].annotations] == [a.value for a in words.annotations]
    for name in children:
        assert len(again[name]) == len(aset[name])
    # the fresh document layout is still available
    write_eaf(aset, tmp_path / "new.eaf", keep_document=False)
    check_eaf_structure(tmp_path / "new.eaf", media_expected=True)


def test_media_replaces_the_master_descriptor_and_keeps_its_origin(tmp_path):
    text = (
        '<?xml version="1.0" encoding="UTF-8"?><ANNOTATION_DOCUMENT AUTHOR="me" DATE="2020" FORMAT="3.0" VERSION="3.0">'
        '<HEADER MEDIA_FILE="" TIME_UNITS="milliseconds">'
        '<MEDIA_DESCRIPTOR MEDIA_URL="file:///old.mp4" MIME_TYPE="video/mp4" TIME_ORIGIN="2000"/>'
        '<MEDIA_DESCRIPTOR MEDIA_URL="file:///a.wav" MIME_TYPE="audio/x-wav"/>'
        '<PROPERTY NAME="URN">urn:nl-mpi-tools-elan-eaf:x</PROPERTY></HEADER>'
        '<TIME_ORDER><TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="0"/><TIME_SLOT TIME_SLOT_ID="ts2" TIME_VALUE="500"/></TIME_ORDER>'
        '<TIER TIER_ID="t" LINGUISTIC_TYPE_REF="lt"><ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a1" '
        'TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts2"><ANNOTATION_VALUE>v</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION></TIER>'
        '<LINGUISTIC_TYPE LINGUISTIC_TYPE_ID="lt" TIME_ALIGNABLE="true"/></ANNOTATION_DOCUMENT>'
    )
    (tmp_path / "in.eaf").write_text(text, encoding="utf-8")
    aset = read_eaf(tmp_path / "in.eaf")
    video = tmp_path / "new.mp4"
    write_eaf(aset, tmp_path / "out.eaf", media=video)
    root = parse_xml(tmp_path / "out.eaf")
    mds = root.findall("HEADER/MEDIA_DESCRIPTOR")
    assert mds[0].get("MEDIA_URL") == video.resolve().as_uri() and mds[0].get("TIME_ORIGIN") == "2000"
    assert mds[1].get("MEDIA_URL") == "file:///a.wav" and root.get("AUTHOR") == "me"
    assert root.findtext("HEADER/PROPERTY[@NAME='URN']") == "urn:nl-mpi-tools-elan-eaf:x"
    assert triples(read_eaf(tmp_path / "out.eaf")["t"]) == [(2.0, 2.5, "v")]
    # a prediction before the origin: the origin becomes 0, every tier is written in media time
    add_prediction_tiers(aset, {"v": [(0.5, 1.0)]})
    with pytest.warns(UserWarning, match="before the document's media TIME_ORIGIN 2.000 s"):
        write_eaf(aset, tmp_path / "out.eaf", media=video)
    root = parse_xml(tmp_path / "out.eaf")
    check_eaf_document(root)
    assert root.find("HEADER/MEDIA_DESCRIPTOR").get("TIME_ORIGIN") is None
    again = read_eaf(tmp_path / "out.eaf")
    assert triples(again["t"]) == [(2.0, 2.5, "v")] and triples(again["v"]) == [(0.5, 1.0, "v")]
    assert root.findtext("HEADER/PROPERTY[@NAME='URN']") == "urn:nl-mpi-tools-elan-eaf:x"


def check_predictions(path: Path, names: list[str], classes: list[str]) -> ET.Element:
    root = parse_xml(path)
    check_eaf_document(root)
    lt = root.find(f"LINGUISTIC_TYPE[@LINGUISTIC_TYPE_ID='{PREDICTION_TYPE}']")
    assert lt is not None and lt.get("TIME_ALIGNABLE") == "true"
    assert lt.get("CONTROLLED_VOCABULARY_REF") == PREDICTION_VOCABULARY
    cv = root.find(f"CONTROLLED_VOCABULARY[@CV_ID='{PREDICTION_VOCABULARY}']")
    multilingual = tuple(map(int, root.get("VERSION").split("."))) >= (2, 8)
    if multilingual:  # EAF 2.8 and later: entries with ids, annotations refer to them
        entries = {e.get("CVE_ID"): e.findtext("CVE_VALUE") for e in cv.iterfind("CV_ENTRY_ML")}
    else:  # older: plain CV_ENTRY values, no CVE_REF in the schema
        entries = {k: e.text for k, e in enumerate(cv.iterfind("CV_ENTRY"))}
    assert sorted(entries.values()) == sorted(classes)
    numbers = []
    for name in names:
        tier = root.find(f"TIER[@TIER_ID='{name}']")
        assert tier.get("LINGUISTIC_TYPE_REF") == PREDICTION_TYPE and tier.get("ANNOTATOR") == "musicperf"
        for al in tier.iterfind("ANNOTATION/ALIGNABLE_ANNOTATION"):
            if multilingual:
                assert entries[al.get("CVE_REF")] == al.findtext("ANNOTATION_VALUE")
            else:
                assert al.get("CVE_REF") is None and al.findtext("ANNOTATION_VALUE") in entries.values()
            numbers.append(int(al.get("ANNOTATION_ID")[1:]))
    last = root.findtext("HEADER/PROPERTY[@NAME='lastUsedAnnotationId']")
    assert numbers and (last is None or int(last) >= max(numbers))
    return root


@pytest.mark.parametrize("name", ["speach_test.eaf", "teicorpo_TestElan1.eaf", "poio_example.eaf"])
def test_prediction_tiers_added_to_a_human_document(shared_data, tmp_path, name):
    src = shared_data / "eaf" / name
    aset = quiet_read(src)
    human = [t.name for t in aset]
    classes = ["Nodding", "Swaying", "Bowing"]
    preds = {"Nodding": [(0.5, 1.25), (2.0, 3.0)], "Swaying": [(1.0, 4.0)]}
    added = add_prediction_tiers(aset, preds, classes=classes, prefix="auto: ")
    assert [t.name for t in added] == ["auto: Nodding", "auto: Swaying"]
    out = tmp_path / "labelled.eaf"
    write_eaf(aset, out)
    root = check_predictions(out, ["auto: Nodding", "auto: Swaying"], classes)
    original = parse_xml(src)
    for tier in original.iterfind("TIER"):  # human tiers untouched
        assert canonical(root.find(f"TIER[@TIER_ID='{tier.get('TIER_ID')}']")) == canonical(tier)
    again = quiet_read(out)
    assert triples(again["auto: Nodding"]) == [(0.5, 1.25, "Nodding"), (2.0, 3.0, "Nodding")]
    assert again["auto: Swaying"].vocabulary == PREDICTION_VOCABULARY and again.vocabularies[PREDICTION_VOCABULARY]
    # labelling again replaces the earlier prediction, never a human tier
    add_prediction_tiers(again, {"Bowing": [(5.0, 6.0)], "Nodding": [(1.0, 2.0)]}, classes=classes, prefix="auto: ")
    write_eaf(again, out)
    root = check_predictions(out, ["auto: Nodding", "auto: Bowing"], classes)
    assert [t.get("TIER_ID") for t in root.iterfind("TIER")] == [*human, "auto: Nodding", "auto: Swaying", "auto: Bowing"]
    cv = root.find("CONTROLLED_VOCABULARY[@CV_ID='musicperf-classes']")
    assert len(cv.findall("CV_ENTRY_ML") + cv.findall("CV_ENTRY")) == len(classes)
    with pytest.raises(AnnotationError, match="not an earlier prediction"):
        add_prediction_tiers(again, {human[0]: [(1.0, 2.0)]}, classes=[human[0]])


def test_prediction_tiers_in_a_new_document_and_bad_intervals(tmp_path):
    aset = AnnotationSet()
    add_prediction_tiers(aset, {"Nodding": [(0.5, 1.0)]}, classes=["Nodding", "Swaying"])
    out = tmp_path / "new.eaf"
    write_eaf(aset, out, date="2000-01-01T00:00:00+00:00")
    check_eaf_structure(out, media_expected=False)
    check_predictions(out, ["Nodding"], ["Nodding", "Swaying"])
    for bad, match in [((1.0, 1.0), "does not end after"), ((-1.0, 1.0), "negative"),
                       ((0.0, float("nan")), "not a finite"), ((0.0, 1e9), "beyond 100 hours")]:
        with pytest.raises(AnnotationError, match=match):
            add_prediction_tiers(aset, {"Swaying": [bad]}, classes=["Swaying"])
    assert list(aset.tiers) == ["Nodding"]
    with pytest.raises(AnnotationError, match="not one of the classes"):
        add_prediction_tiers(aset, {"Other": []}, classes=["Nodding"])


def test_read_annotations_with_tier_filter_keeps_the_rest_whole(shared_data, tmp_path):
    src = shared_data / "eaf" / "speach_test.eaf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aset = read_annotations(src, tier_filter=lambda t: t.parent is None)
        write_eaf(aset, tmp_path / "f.eaf")
    root = parse_xml(tmp_path / "f.eaf")
    check_eaf_document(root)
    assert [t.get("TIER_ID") for t in root.iterfind("TIER")] == list(aset.tiers)
    assert [canonical(e) for e in root.iterfind("CONTROLLED_VOCABULARY")] == [
        canonical(e) for e in parse_xml(src).iterfind("CONTROLLED_VOCABULARY")]


RICH = """<?xml version="1.0" encoding="UTF-8"?>
<ANNOTATION_DOCUMENT AUTHOR="ann" DATE="2024-05-01T10:00:00+02:00" FORMAT="3.0" VERSION="3.0"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="http://www.mpi.nl/tools/elan/EAFv3.0.xsd">
  <LICENSE LICENSE_URL="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</LICENSE>
  <HEADER MEDIA_FILE="" TIME_UNITS="milliseconds">
    <MEDIA_DESCRIPTOR MEDIA_URL="file:///v.mp4" MIME_TYPE="video/mp4" RELATIVE_MEDIA_URL="./v.mp4"/>
    <MEDIA_DESCRIPTOR EXTRACTED_FROM="file:///v.mp4" MEDIA_URL="file:///v.wav" MIME_TYPE="audio/x-wav"/>
    <LINKED_FILE_DESCRIPTOR LINK_URL="file:///v.csv" MIME_TYPE="text/plain" TIME_ORIGIN="120"/>
    <PROPERTY NAME="URN">urn:nl-mpi-tools-elan-eaf:0f1e</PROPERTY>
    <PROPERTY NAME="lastUsedAnnotationId">7</PROPERTY>
  </HEADER>
  <TIME_ORDER>
    <TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="1000"/><TIME_SLOT TIME_SLOT_ID="ts2"/>
    <TIME_SLOT TIME_SLOT_ID="ts3" TIME_VALUE="3000"/>
  </TIME_ORDER>
  <TIER DEFAULT_LOCALE="fr" LANG_REF="fra" LINGUISTIC_TYPE_REF="gesture" PARTICIPANT="P1" TIER_ID="gestures">
    <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a1" CVE_REF="c1" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts2">
      <ANNOTATION_VALUE>hoch</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
    <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a7" EXT_REF="er1" TIME_SLOT_REF1="ts2" TIME_SLOT_REF2="ts3">
      <ANNOTATION_VALUE>bas</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
  </TIER>
  <TIER LINGUISTIC_TYPE_REF="gloss" PARENT_REF="gestures" TIER_ID="gloss">
    <ANNOTATION><REF_ANNOTATION ANNOTATION_ID="a2" ANNOTATION_REF="a1" LANG_REF="deu">
      <ANNOTATION_VALUE>up</ANNOTATION_VALUE></REF_ANNOTATION></ANNOTATION>
  </TIER>
  <LINGUISTIC_TYPE CONTROLLED_VOCABULARY_REF="dir" GRAPHIC_REFERENCES="false" LINGUISTIC_TYPE_ID="gesture" TIME_ALIGNABLE="true"/>
  <LINGUISTIC_TYPE CONSTRAINTS="Symbolic_Association" GRAPHIC_REFERENCES="false" LEXICON_NAME="lex" LEXICON_REF="lr1"
      LEXICAL_ENTRY_FIELD_ID="f1" LINGUISTIC_TYPE_ID="gloss" TIME_ALIGNABLE="false"/>
  <LOCALE COUNTRY_CODE="FR" LANGUAGE_CODE="fr"/>
  <LANGUAGE LANG_DEF="http://cdb.iso.org/lg/CDB-00138502-001" LANG_ID="fra" LANG_LABEL="French (fra)"/>
  <LANGUAGE LANG_DEF="http://cdb.iso.org/lg/CDB-00138580-001" LANG_ID="deu" LANG_LABEL="German (deu)"/>
  <CONSTRAINT DESCRIPTION="1-1 association with a parent annotation" STEREOTYPE="Symbolic_Association"/>
  <CONTROLLED_VOCABULARY CV_ID="dir">
    <DESCRIPTION LANG_REF="fra">directions</DESCRIPTION><DESCRIPTION LANG_REF="deu">Richtungen</DESCRIPTION>
    <CV_ENTRY_ML CVE_ID="c1"><CVE_VALUE DESCRIPTION="vers le haut" LANG_REF="fra">haut</CVE_VALUE>
      <CVE_VALUE DESCRIPTION="nach oben" LANG_REF="deu">hoch</CVE_VALUE></CV_ENTRY_ML>
    <CV_ENTRY_ML CVE_ID="c2" EXT_REF="er1"><CVE_VALUE DESCRIPTION="vers le bas" LANG_REF="fra">bas</CVE_VALUE>
      <CVE_VALUE DESCRIPTION="nach unten" LANG_REF="deu">runter</CVE_VALUE></CV_ENTRY_ML>
  </CONTROLLED_VOCABULARY>
  <LEXICON_REF DATCAT_ID="d1" DATCAT_NAME="lemma" LEXICON_ID="lx" LEXICON_NAME="lex" LEX_REF_ID="lr1"
      NAME="lexicon" TYPE="LEXUS" URL="http://example.org/lex"/>
  <EXTERNAL_REF EXT_REF_ID="er1" TYPE="iso12620" VALUE="http://www.isocat.org/datcat/DC-1"/>
</ANNOTATION_DOCUMENT>
"""


def test_everything_elan_holds_survives_a_round_trip_and_added_predictions(tmp_path):
    src = tmp_path / "rich.eaf"
    src.write_text(RICH, encoding="utf-8")
    with pytest.warns(UserWarning, match="1 time slots have no TIME_VALUE"):
        aset = read_eaf(src)
    write_eaf(aset, tmp_path / "copy.eaf")
    assert same_document(src, tmp_path / "copy.eaf") is None
    check_eaf_document(parse_xml(src))
    add_prediction_tiers(aset, {"Nodding": [(1.0, 2.0)]}, classes=["Nodding"], prefix="auto: ")
    write_eaf(aset, tmp_path / "labelled.eaf")
    root = check_predictions(tmp_path / "labelled.eaf", ["auto: Nodding"], ["Nodding"])
    original = parse_xml(src)
    for tag in ("LICENSE", "TIER", "LOCALE", "LANGUAGE", "LEXICON_REF", "EXTERNAL_REF"):
        got = [canonical(e) for e in root.iterfind(tag) if e.get("TIER_ID", "").startswith("auto: ") is False]
        assert got == [canonical(e) for e in original.iterfind(tag)], tag
    assert [canonical(e) for e in root.iterfind("CONTROLLED_VOCABULARY")][0] == canonical(original.find("CONTROLLED_VOCABULARY"))
    assert root.findtext("HEADER/PROPERTY[@NAME='URN']") == "urn:nl-mpi-tools-elan-eaf:0f1e"
    assert root.find("HEADER/LINKED_FILE_DESCRIPTOR").get("TIME_ORIGIN") == "120"
    assert root.findtext("HEADER/PROPERTY[@NAME='lastUsedAnnotationId']") == "8"  # after a7
    new_cv = root.find(f"CONTROLLED_VOCABULARY[@CV_ID='{PREDICTION_VOCABULARY}']")
    assert new_cv.find("CV_ENTRY_ML/CVE_VALUE").get("LANG_REF") == "fra"  # the document's first language
    assert root.find("TIME_ORDER/TIME_SLOT[@TIME_SLOT_ID='ts2']").get("TIME_VALUE") is None  # still unaligned
