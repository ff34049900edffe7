"""ELAN EAF reading and writing: real files from ../shared/data/eaf and synthetic edge cases."""

from __future__ import annotations

import shutil
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from musicperf.errors import AnnotationError
from musicperf.io import read_annotations, write_annotations
from musicperf.io.annotations import Annotation, AnnotationSet, MediaRef, Tier
from musicperf.io.elan import add_vocabulary, read_eaf, read_ecv, write_eaf

MS = 1e-3


def eaf_files(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "eaf").glob("*.e[at]f")) + sorted((shared_data / "elan_txt").glob("*.eaf"))


def quiet_read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_eaf(path)


def triples(tier: Tier) -> list[tuple[float, float, str]]:
    return sorted((a.start, a.end, a.value) for a in tier.annotations)


from _eaf_check import check_eaf_structure  # noqa: E402


def test_every_real_eaf_reads_and_round_trips(shared_data, tmp_path):
    files = eaf_files(shared_data)
    assert len(files) >= 15
    for path in files:
        aset = quiet_read(path)
        out = tmp_path / (path.stem + ".eaf")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a converter-written child outside its parent
            write_eaf(aset, out, keep_document=False)  # a new EAF 3.0 document from the model
        check_eaf_structure(out, media_expected=bool(aset.media))
        again = read_eaf(out)
        assert list(again.tiers) == list(aset.tiers), path.name
        assert again.vocabularies == {k: list(dict.fromkeys(v)) for k, v in aset.vocabularies.items()}
        for name, tier in aset.tiers.items():
            before, after = triples(tier), triples(again[name])
            assert len(before) == len(after), (path.name, name)
            for (s0, e0, v0), (s1, e1, v1) in zip(before, after):
                assert v0 == v1
                # aligned times are whole ms and come back exactly; derived ones to the ms
                assert abs(s0 - s1) <= 0.5 * MS + 1e-9 and abs(e0 - e1) <= 0.5 * MS + 1e-9
            assert again[name].vocabulary == (tier.vocabulary if tier.vocabulary in aset.vocabularies else None)
            assert again[name].participant == tier.participant
            assert again[name].linguistic_type.startswith(tier.linguistic_type or "default-lt")


@pytest.mark.parametrize(
    "name, n_tiers, n_annotations, n_child, n_cvs, n_empty, n_media",
    [
        ("phonfieldwork_test.eaf", 3, 14, 0, 0, 4, 0),
        ("poio_example.eaf", 11, 315, 7, 2, 1, 2),
        ("poio_turkish.eaf", 5, 340, 4, 0, 0, 1),
        ("pympi_fto_2013.eaf", 3, 9, 0, 0, 0, 0),
        ("pympi_sample_2.7.eaf", 6, 8778, 4, 2, 1992, 1),  # 3 of its 5 CVs are in a missing .ecv
        ("pympi_t_2013.eaf", 10, 58, 0, 0, 0, 3),
        ("speach_blank.eaf", 1, 0, 0, 0, 0, 1),
        ("speach_fables_01_03_aesop_64kb.eaf", 5, 97, 3, 2, 0, 1),
        ("speach_test.eaf", 5, 43, 3, 1, 0, 1),
        ("speach_test2.eaf", 6, 43, 3, 1, 0, 1),
        ("teicorpo_DL-2022-05-02-GEN-TPL.etf", 72, 0, 35, 5, 0, 0),
        ("teicorpo_TestElan1.eaf", 38, 2137, 1, 17, 1, 2),
        ("teicorpo_TestElan2.eaf", 7, 1093, 6, 0, 2, 1),
        ("teicorpo_essai-filled-time.eaf", 5, 18, 2, 0, 0, 1),
        ("teicorpo_short.eaf", 8, 16, 6, 0, 0, 1),
    ],
)
def test_real_file_facts(shared_data, name, n_tiers, n_annotations, n_child, n_cvs, n_empty, n_media):
    # counted in the files themselves (TIER, ALIGNABLE_/REF_ANNOTATION, PARENT_REF,
    # CONTROLLED_VOCABULARY, empty ANNOTATION_VALUE, MEDIA_DESCRIPTOR elements)
    aset = quiet_read(shared_data / "eaf" / name)
    assert len(aset) == n_tiers
    assert sum(len(t) for t in aset) == n_annotations
    assert sum(1 for t in aset if t.parent) == n_child
    assert len(aset.vocabularies) == n_cvs
    assert sum(v == "" for t in aset for v in t.values) == n_empty
    assert len(aset.media) == n_media
    for tier in aset:
        for a in tier.annotations:
            assert 0 <= a.start <= a.end


def test_non_ascii_text_survives(shared_data):
    aset = quiet_read(shared_data / "eaf" / "poio_turkish.eaf")
    assert set("ğış") <= set("".join(v for t in aset for v in t.values))
    assert aset["P-Spch"].linguistic_type == "Äußerung"
    japanese = "".join(v for t in quiet_read(shared_data / "eaf" / "speach_test.eaf") for v in t.values)
    assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in japanese)


def test_poio_example_facts(shared_data):
    with pytest.warns(UserWarning, match="1 time slots have no TIME_VALUE"):
        aset = read_eaf(shared_data / "eaf" / "poio_example.eaf")
    assert len(aset) == 11
    assert sum(1 for t in aset if t.parent) == 7
    assert set(aset.vocabularies) == {"POS", "Gesture phases"}
    assert len(aset.vocabularies["POS"]) == 13
    assert aset["W-POS"].vocabulary == "POS" and aset["W-POS"].parent == "W-Words"
    # the one unaligned slot (ts62) ends "you" (from 11470 ms) and starts "follow" (to 11940 ms)
    follow = next(a for a in aset["W-Words"].annotations if a.value == "follow" and a.start > 11)
    assert follow.start == pytest.approx(11.705) and follow.end == pytest.approx(11.94)
    assert {m.mime_type for m in aset.media} == {"video/mpeg", "audio/x-wav"}
    ipa = "".join(v for v in aset["W-IPA"].values)
    assert set("ɔəɛɡɪʊʋʌːθ") <= set(ipa)
    # Symbolic_Association: each POS tag spans exactly its word
    words = {(a.start, a.end) for a in aset["W-Words"].annotations}
    assert all((a.start, a.end) in words for a in aset["W-POS"].annotations)


def test_pympi_sample_unaligned_slots_and_missing_ecv(shared_data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aset = read_eaf(shared_data / "eaf" / "pympi_sample_2.7.eaf")
    messages = [str(w.message) for w in caught]
    assert any("1572 time slots have no TIME_VALUE" in m for m in messages)
    assert sum("test_ecv_export.ecv" in m and "not found" in m for m in messages) == 1
    assert any("'Contact 2011', 'Function 2011', 'Formal Relation 2011' refer to" in m for m in messages)
    assert len(aset) == 6
    assert [t.parent for t in aset] == [None, "text", "text", None, "text", "words-symsub"]
    assert sum(v == "" for t in aset for v in t.values) == 1992
    # Time_Subdivision words fill their sentence without gaps; subdivided parts are in order
    text = aset["text"].annotations
    sub = aset["words-timesub"].annotations
    first = [a for a in sub if text[0].start <= a.start and a.end <= text[0].end]
    assert first[0].start == text[0].start and first[-1].end == text[0].end
    assert all(x.end == pytest.approx(y.start) for x, y in zip(first, first[1:]))
    # the third sentence (8-11 s) has 4 unaligned inner slots, placed in TIME_ORDER between two
    # slots at 8000 ms: along the tier's chain they split the sentence evenly, as ELAN draws it
    third = [a for a in sub if 8.0 <= a.start and a.end <= 11.0]
    assert [a.start for a in third] == pytest.approx([8.0, 8.6, 9.2, 9.8, 10.4])
    assert [a.end for a in third] == pytest.approx([8.6, 9.2, 9.8, 10.4, 11.0])
    assert not any(a.start == a.end for a in sub)
    # Symbolic_Subdivision: 5 words per sentence, the parent's span split evenly
    sym = [a for a in aset["words-symsub"].annotations if text[0].start <= a.start < text[0].end]
    assert [a.value for a in sym] == ["The", "quick", "brown", "fox", sym[4].value]
    durations = {round(a.end - a.start, 9) for a in sym}
    assert durations == {round((text[0].end - text[0].start) / 5, 9)}


def test_symbolic_subdivision_chain_order_turkish(shared_data):
    aset = quiet_read(shared_data / "eaf" / "poio_turkish.eaf")
    assert sum(len(t) for t in aset) == 340
    root = ET.parse(shared_data / "eaf" / "poio_turkish.eaf").getroot()
    # pick the first parent with a chained subdivision and check its order and even split
    records = {el.get("ANNOTATION_ID"): el for el in root.iter() if el.get("ANNOTATION_ID")}
    chained = [el for el in records.values() if el.get("PREVIOUS_ANNOTATION")]
    assert len(chained) == 127
    el = chained[0]
    prev = records[el.get("PREVIOUS_ANNOTATION")]
    tier = next(t for t in root.iterfind("TIER") if el in list(t.iter()))
    ours = {a.value: a for a in aset[tier.get("TIER_ID")].annotations}
    a_prev = ours[prev.findtext("ANNOTATION_VALUE")]
    a_el = ours[el.findtext("ANNOTATION_VALUE")]
    assert a_prev.end == pytest.approx(a_el.start)
    assert a_prev.end - a_prev.start == pytest.approx(a_el.end - a_el.start)


def test_external_cv_resolved_beside_the_eaf(shared_data, tmp_path):
    # the collection renamed fables_cv.ecv to speach_fables_cv.ecv: found by the suffix rule
    aset = read_eaf(shared_data / "eaf" / "speach_fables_01_03_aesop_64kb.eaf")
    assert aset.vocabularies["MarkerType"] == ["Narration", "Dialogue", "Meta", "Title"]
    assert aset.vocabularies["Languages"] == ["English"]
    # under its referenced name, beside a copy of the eaf in a temporary folder
    shutil.copy(shared_data / "eaf" / "speach_fables_01_03_aesop_64kb.eaf", tmp_path / "f.eaf")
    shutil.copy(shared_data / "eaf" / "speach_fables_cv.ecv", tmp_path / "fables_cv.ecv")
    assert read_eaf(tmp_path / "f.eaf").vocabularies["MarkerType"][0] == "Narration"
    (tmp_path / "fables_cv.ecv").unlink()
    with pytest.warns(UserWarning, match="'MarkerType' refer to .*fables_cv.ecv.*not found"):
        aset = read_eaf(tmp_path / "f.eaf")
    assert "MarkerType" not in aset.vocabularies and aset.vocabularies["Languages"] == ["English"]
    (tmp_path / "fables_cv.ecv").write_text("<CV_RESOURCE><CONTROLLED_VOCABULARY>", encoding="utf-8")
    with pytest.warns(UserWarning, match="'MarkerType' come from a file that cannot be read .*not well-formed"):
        aset = read_eaf(tmp_path / "f.eaf")
    assert "MarkerType" not in aset.vocabularies
    (tmp_path / "fables_cv.ecv").write_text("<CV_RESOURCE/>", encoding="utf-8")
    with pytest.warns(UserWarning, match="'MarkerType' are not in the external file"):
        read_eaf(tmp_path / "f.eaf")
    assert read_ecv(shared_data / "eaf" / "speach_test_speach.ecv")


def test_template_and_blank_documents(shared_data):
    etf = read_annotations(shared_data / "eaf" / "teicorpo_DL-2022-05-02-GEN-TPL.etf")
    assert len(etf) == 72 and all(len(t) == 0 for t in etf) and len(etf.vocabularies) == 5
    blank = read_eaf(shared_data / "eaf" / "speach_blank.eaf")
    assert len(blank) == 1 and blank.time_range == (0.0, 0.0) and len(blank.media) == 1


def test_empty_header_and_empty_media(shared_data):
    fto = read_eaf(shared_data / "eaf" / "pympi_fto_2013.eaf")
    assert fto.media == [] and len(fto) == 3
    short = read_eaf(shared_data / "eaf" / "teicorpo_short.eaf")
    assert short.media[0].url == "" and short.media[0].mime_type == ""
    t2013 = read_eaf(shared_data / "eaf" / "pympi_t_2013.eaf")
    assert len(t2013.media) == 3 and sum(len(t) == 0 for t in t2013) == 2


# ---------------------------------------------------------------------------------------------
# Synthetic documents

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def doc(body: str, *, header: str = '<HEADER MEDIA_FILE="" TIME_UNITS="milliseconds"/>', fmt="2.8") -> str:
    return f'{HEAD}<ANNOTATION_DOCUMENT AUTHOR="" DATE="2020-01-01T00:00:00+00:00" FORMAT="{fmt}" VERSION="{fmt}">{header}{body}</ANNOTATION_DOCUMENT>'


SIMPLE = doc(
    '<TIME_ORDER><TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="1000"/><TIME_SLOT TIME_SLOT_ID="ts2"/>'
    '<TIME_SLOT TIME_SLOT_ID="ts3"/><TIME_SLOT TIME_SLOT_ID="ts4" TIME_VALUE="2500"/></TIME_ORDER>'
    '<TIER TIER_ID="bow" LINGUISTIC_TYPE_REF="lt">'
    '<ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a1" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts2">'
    "<ANNOTATION_VALUE>down</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>"
    '<ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a2" TIME_SLOT_REF1="ts2" TIME_SLOT_REF2="ts3">'
    "<ANNOTATION_VALUE/></ALIGNABLE_ANNOTATION></ANNOTATION>"
    '<ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a3" TIME_SLOT_REF1="ts3" TIME_SLOT_REF2="ts4">'
    "<ANNOTATION_VALUE>up</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION></TIER>"
    '<TIER TIER_ID="gloss" LINGUISTIC_TYPE_REF="sub" PARENT_REF="bow">'
    '<ANNOTATION><REF_ANNOTATION ANNOTATION_ID="a4" ANNOTATION_REF="a3"><ANNOTATION_VALUE>x</ANNOTATION_VALUE></REF_ANNOTATION></ANNOTATION>'
    '<ANNOTATION><REF_ANNOTATION ANNOTATION_ID="a6" ANNOTATION_REF="a3" PREVIOUS_ANNOTATION="a5"><ANNOTATION_VALUE>z</ANNOTATION_VALUE></REF_ANNOTATION></ANNOTATION>'
    '<ANNOTATION><REF_ANNOTATION ANNOTATION_ID="a5" ANNOTATION_REF="a3" PREVIOUS_ANNOTATION="a4"><ANNOTATION_VALUE>y</ANNOTATION_VALUE></REF_ANNOTATION></ANNOTATION>'
    "</TIER>"
    '<LINGUISTIC_TYPE LINGUISTIC_TYPE_ID="lt" TIME_ALIGNABLE="true" CONTROLLED_VOCABULARY_REF="dir"/>'
    '<LINGUISTIC_TYPE LINGUISTIC_TYPE_ID="sub" TIME_ALIGNABLE="false" CONSTRAINTS="Symbolic_Subdivision"/>'
    '<CONTROLLED_VOCABULARY CV_ID="dir"><CV_ENTRY DESCRIPTION="">down</CV_ENTRY><CV_ENTRY>up</CV_ENTRY></CONTROLLED_VOCABULARY>'
)


def write(tmp_path: Path, text: str | bytes, name: str = "x.eaf") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_unaligned_slots_interpolated_and_chain_split(tmp_path):
    with pytest.warns(UserWarning, match="2 time slots have no TIME_VALUE"):
        aset = read_eaf(write(tmp_path, SIMPLE))
    assert triples(aset["bow"]) == [(1.0, 1.5, "down"), (1.5, 2.0, ""), (2.0, 2.5, "up")]
    # the chain a4 -> a5 -> a6 splits "up" (2.0-2.5 s) in three, in chain (not document) order
    got = triples(aset["gloss"])
    assert [v for *_, v in got] == ["x", "y", "z"]
    assert [s for s, *_ in got] == pytest.approx([2.0, 2.0 + 0.5 / 3, 2.0 + 1.0 / 3])
    assert got[-1][1] == pytest.approx(2.5)
    assert aset["bow"].vocabulary == "dir" and aset.vocabularies == {"dir": ["down", "up"]}
    assert aset["gloss"].parent == "bow"


def test_byte_order_mark_and_utf16(tmp_path):
    with pytest.warns(UserWarning):
        a = read_eaf(write(tmp_path, b"\xef\xbb\xbf" + SIMPLE.encode("utf-8")))
    assert len(a["bow"]) == 3
    text16 = SIMPLE.replace('encoding="UTF-8"', 'encoding="UTF-16"')
    with pytest.warns(UserWarning):
        b = read_eaf(write(tmp_path, text16.encode("utf-16"), "y.eaf"))
    assert triples(b["gloss"]) == triples(a["gloss"])


def test_time_origin_is_added_and_written_back(tmp_path):
    header = (
        '<HEADER MEDIA_FILE="" TIME_UNITS="milliseconds">'
        '<MEDIA_DESCRIPTOR MEDIA_URL="file:///v.mp4" MIME_TYPE="video/mp4" TIME_ORIGIN="5000"/>'
        '<MEDIA_DESCRIPTOR MEDIA_URL="file:///a.wav" MIME_TYPE="audio/x-wav" TIME_ORIGIN="1200"/></HEADER>'
    )
    body = (
        '<TIME_ORDER><TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="0"/><TIME_SLOT TIME_SLOT_ID="ts2" TIME_VALUE="750"/></TIME_ORDER>'
        '<TIER TIER_ID="t" LINGUISTIC_TYPE_REF="lt"><ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a1" '
        'TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts2"><ANNOTATION_VALUE>v</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION></TIER>'
        '<LINGUISTIC_TYPE LINGUISTIC_TYPE_ID="lt" TIME_ALIGNABLE="true"/>'
    )
    aset = read_eaf(write(tmp_path, doc(body, header=header)))
    # media time = document time + TIME_ORIGIN of the first (master) media
    assert triples(aset["t"]) == [(5.0, 5.75, "v")]
    assert [m.time_origin for m in aset.media] == [5.0, 1.2]
    out = tmp_path / "out.eaf"
    write_eaf(aset, out, keep_document=False)
    root = check_eaf_structure(out, media_expected=True)
    assert [md.get("TIME_ORIGIN") for md in root.iterfind("HEADER/MEDIA_DESCRIPTOR")] == ["5000", "1200"]
    assert sorted(int(s.get("TIME_VALUE")) for s in root.iterfind("TIME_ORDER/TIME_SLOT")) == [0, 750]
    assert triples(read_eaf(out)["t"]) == [(5.0, 5.75, "v")]
    write_eaf(aset, out)  # the document kept: same origins and times
    root = ET.parse(out).getroot()
    assert [md.get("TIME_ORIGIN") for md in root.iterfind("HEADER/MEDIA_DESCRIPTOR")] == ["5000", "1200"]
    assert triples(read_eaf(out)["t"]) == [(5.0, 5.75, "v")]
    # an annotation before the origin cannot be written in a new document with that origin
    aset["t"].annotations.append(Annotation(4.0, 4.5, "early"))
    with pytest.raises(AnnotationError, match="before the media time origin"):
        write_eaf(aset, tmp_path / "bad.eaf", keep_document=False)
    # the kept document moves its origin to 0 instead (test_io_elan_roundtrip)
    with pytest.warns(UserWarning, match="the origin is set to 0"):
        write_eaf(aset, tmp_path / "moved.eaf")
    assert triples(read_eaf(tmp_path / "moved.eaf")["t"]) == [(4.0, 4.5, "early"), (5.0, 5.75, "v")]


@pytest.mark.parametrize(
    "text, match",
    [
        (doc("<TIME_ORDER>"), r"not well-formed XML: line \d+"),
        ("<ANNOTATION_DOCUMENT><HEADER></ANNOTATION_DOCUMENT>", "not well-formed XML: line 1"),
        (HEAD + '<!DOCTYPE d [<!ENTITY a "aaaa">]><ANNOTATION_DOCUMENT>&a;</ANNOTATION_DOCUMENT>', "DOCTYPE"),
        (HEAD + '<!ENTITY x SYSTEM "file:///etc/passwd"><ANNOTATION_DOCUMENT/>', "ENTITY"),
        (HEAD + "<TextGrid/>", "not an ELAN annotation document"),
        (doc('<TIME_ORDER/><TIER TIER_ID="t" LINGUISTIC_TYPE_REF="lt"><ANNOTATION><ALIGNABLE_ANNOTATION '
             'ANNOTATION_ID="a1" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts2"/></ANNOTATION></TIER>'), "undeclared time slot 'ts1'"),
        (doc('<TIME_ORDER><TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="1.5.2"/></TIME_ORDER>'), "not a number"),
        (doc("", header='<HEADER TIME_UNITS="seconds"/>'), "unknown TIME_UNITS"),
        ("", "is empty"),
    ],
)
def test_bad_documents_raise_annotation_error_naming_the_file(tmp_path, text, match):
    path = write(tmp_path, text, "bad.eaf")
    with pytest.raises(AnnotationError, match=match) as info:
        read_eaf(path)
    assert "bad.eaf" in str(info.value) and "\n" not in str(info.value)


def two_annotations(first: str, second: str) -> str:
    return doc(
        '<TIME_ORDER><TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="2000"/><TIME_SLOT TIME_SLOT_ID="ts2" TIME_VALUE="1000"/></TIME_ORDER>'
        f'<TIER TIER_ID="t" LINGUISTIC_TYPE_REF="lt"><ANNOTATION>{first}</ANNOTATION></TIER>'
        f'<TIER TIER_ID="r" LINGUISTIC_TYPE_REF="lt" PARENT_REF="t"><ANNOTATION>{second}</ANNOTATION></TIER>'
    )


def test_lenient_reader_warns_on_reversed_slots_and_orphans(tmp_path):
    text = two_annotations(
        '<ALIGNABLE_ANNOTATION ANNOTATION_ID="a1" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts2"><ANNOTATION_VALUE>v</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION>',
        '<REF_ANNOTATION ANNOTATION_ID="a2" ANNOTATION_REF="a99"><ANNOTATION_VALUE>w</ANNOTATION_VALUE></REF_ANNOTATION>',
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aset = read_eaf(write(tmp_path, text))
    messages = " | ".join(str(w.message) for w in caught)
    assert "1 annotations end before they start" in messages and "1 reference annotations point to" in messages
    assert triples(aset["t"]) == [(1.0, 2.0, "v")] and len(aset["r"]) == 0


def test_reference_cycle_is_an_error(tmp_path):
    text = two_annotations(
        '<REF_ANNOTATION ANNOTATION_ID="a1" ANNOTATION_REF="a2"><ANNOTATION_VALUE>v</ANNOTATION_VALUE></REF_ANNOTATION>',
        '<REF_ANNOTATION ANNOTATION_ID="a2" ANNOTATION_REF="a1"><ANNOTATION_VALUE>w</ANNOTATION_VALUE></REF_ANNOTATION>',
    )
    with pytest.raises(AnnotationError, match="x.eaf': reference annotations form a cycle"):
        read_eaf(write(tmp_path, text))


def test_billion_laughs_is_refused_quickly(tmp_path):
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    text = f'{HEAD}<!DOCTYPE d [<!ENTITY l0 "lol">{lol}]><ANNOTATION_DOCUMENT>&l9;</ANNOTATION_DOCUMENT>'
    with pytest.raises(AnnotationError, match="refused"):
        read_eaf(write(tmp_path, text))
    with pytest.raises(AnnotationError, match="does not exist"):
        read_eaf(tmp_path / "missing.eaf")


def labelled_set() -> AnnotationSet:
    aset = AnnotationSet()
    aset.add_tier(Tier("vibrato", [Annotation(0.5, 1.25, "vibrato"), Annotation(2.0, 3.0, "vibrato")]))
    aset.add_tier(Tier("bowing", [Annotation(0.0, 4.0, "down")], linguistic_type="gesture"))
    aset.add_tier(Tier("detail", [Annotation(0.25, 1.0, "fast")], parent="bowing", participant="P1"))
    aset.add_tier(Tier("outside", [Annotation(3.5, 5.0, "x")], parent="vibrato"))
    return aset


def test_written_eaf_links_media_types_and_vocabularies(tmp_path):
    aset = labelled_set()
    add_vocabulary(aset, "gestures", tiers=["vibrato", "bowing"])
    assert aset.vocabularies["gestures"] == ["down", "vibrato"]
    (tmp_path / "video").mkdir()
    video = tmp_path / "video" / "take 1.mp4"
    out = tmp_path / "eaf" / "take1.eaf"
    with pytest.warns(UserWarning, match="'outside' has annotations outside those of its parent"):
        write_annotations(aset, out, media=video)
    root = check_eaf_structure(out, media_expected=True)
    md = root.find("HEADER/MEDIA_DESCRIPTOR")
    assert md.get("MEDIA_URL") == video.resolve().as_uri() and md.get("MEDIA_URL").startswith("file:///")
    assert md.get("RELATIVE_MEDIA_URL") == "../video/take 1.mp4"
    assert md.get("MIME_TYPE") == "video/mp4"
    tiers = {t.get("TIER_ID"): t for t in root.iterfind("TIER")}
    types = {lt.get("LINGUISTIC_TYPE_ID"): lt for lt in root.iterfind("LINGUISTIC_TYPE")}
    assert tiers["detail"].get("PARENT_REF") == "bowing" and tiers["detail"].get("PARTICIPANT") == "P1"
    assert types[tiers["detail"].get("LINGUISTIC_TYPE_REF")].get("CONSTRAINTS") == "Included_In"
    assert tiers["outside"].get("PARENT_REF") is None
    # vibrato and bowing share the vocabulary but not the type name: two types, both linked
    for name in ("vibrato", "bowing"):
        assert types[tiers[name].get("LINGUISTIC_TYPE_REF")].get("CONTROLLED_VOCABULARY_REF") == "gestures"
    assert tiers["vibrato"].get("LINGUISTIC_TYPE_REF") != tiers["detail"].get("LINGUISTIC_TYPE_REF")
    cv = root.find("CONTROLLED_VOCABULARY")
    assert [v.text for v in cv.iterfind("CV_ENTRY_ML/CVE_VALUE")] == ["down", "vibrato"]
    back = read_eaf(out)
    assert back.vocabularies == {"gestures": ["down", "vibrato"]}
    assert back["vibrato"].vocabulary == "gestures" and back["detail"].parent == "bowing"
    assert triples(back["vibrato"]) == [(0.5, 1.25, "vibrato"), (2.0, 3.0, "vibrato")]
    assert back.media[0].relative_url == "../video/take 1.mp4"
    # without vocabularies
    with pytest.warns(UserWarning, match="outside"):
        write_eaf(aset, tmp_path / "plain.eaf", vocabularies=False)
    plain = check_eaf_structure(tmp_path / "plain.eaf", media_expected=False)
    assert plain.find("CONTROLLED_VOCABULARY") is None and plain.find("LANGUAGE") is None


def test_write_rejects_reversed_annotation_and_is_atomic(tmp_path):
    out = tmp_path / "keep.eaf"
    out.write_text("previous content")
    aset = AnnotationSet()
    aset.add_tier(Tier("t", [Annotation(2.0, 1.0, "backwards")]))
    with pytest.raises(AnnotationError, match="ends .* before it starts"):
        write_eaf(aset, out)
    assert out.read_text() == "previous content"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.eaf"]


def test_overlaps_within_a_tier_warn(tmp_path):
    aset = AnnotationSet()
    aset.add_tier(Tier("t", [Annotation(0.0, 1.0, "a"), Annotation(0.5, 1.5, "b"), Annotation(1.5, 2.0, "c")]))
    with pytest.warns(UserWarning, match="tier 't' has 1 overlapping annotations"):
        write_eaf(aset, tmp_path / "o.eaf")
    assert triples(read_eaf(tmp_path / "o.eaf")["t"]) == triples(aset["t"])


def test_fixed_date_gives_identical_bytes(tmp_path):
    aset = labelled_set()
    del aset.tiers["outside"]
    for name in ("a.eaf", "b.eaf"):
        write_eaf(aset, tmp_path / name, date="2000-01-01T00:00:00+00:00")
    assert (tmp_path / "a.eaf").read_bytes() == (tmp_path / "b.eaf").read_bytes()
    assert b'DATE="2000-01-01T00:00:00+00:00"' in (tmp_path / "a.eaf").read_bytes()


def test_media_ref_kept_when_no_media_given(tmp_path):
    aset = labelled_set()
    del aset.tiers["outside"]
    aset.media = [MediaRef(url="file:///x/performance.avi", mime_type="video/x-msvideo", relative_url="./performance.avi")]
    write_eaf(aset, tmp_path / "m.eaf")
    back = read_eaf(tmp_path / "m.eaf")
    assert back.media == aset.media
