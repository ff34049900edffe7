"""ELAN tab-delimited exports and the musicperf CSV."""

from __future__ import annotations

import warnings

import pytest

from musicperf.errors import AnnotationError
from musicperf.io import annotation_format, read_annotations, write_annotations
from musicperf.io.annotations import Annotation, AnnotationSet, Tier
from musicperf.io.elan import read_eaf
from musicperf.io.tabular import parse_time, read_csv, read_elan_tab, write_csv, write_elan_tab


def triples(tier):
    return [(a.start, a.end, a.value) for a in tier.annotations]


@pytest.mark.parametrize("name", ["teicorpo_extend.csv", "teicorpo_extend3mixed.csv"])
def test_column_group_exports_match_their_eaf(shared_data, name):
    path = shared_data / "elan_txt" / name
    assert annotation_format(path) == "elan_tab"  # a .csv that holds tabs
    aset = read_annotations(path)
    assert [(t.name, len(t)) for t in aset] == [("default", 6), ("main", 6), ("other", 8)]
    assert aset["main"].linguistic_type == "default-lt" and aset["main"].participant == "unknown"
    assert triples(aset["main"])[:2] == [(0.0, 0.28, ""), (0.28, 1.34, "MAIN")]
    # every exported annotation is one of the source EAF ("<empty>" there is a literal value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eaf = read_eaf(shared_data / "elan_txt" / "teicorpo_essai-filled-extend.eaf")
    for tier in aset:
        source = {(round(a.start, 3), round(a.end, 3), "" if a.value == "<empty>" else a.value) for a in eaf[tier.name].annotations}
        assert set(triples(tier)) <= source


def test_both_exports_agree(shared_data):
    a = read_elan_tab(shared_data / "elan_txt" / "teicorpo_extend.csv")
    b = read_elan_tab(shared_data / "elan_txt" / "teicorpo_extend3mixed.csv")
    for name in a.tiers:
        assert triples(a[name]) == triples(b[name])


@pytest.mark.parametrize(
    "text, unit, seconds",
    [("12.5", "auto", 12.5), ("01:02:03.250", "auto", 3723.25), ("02:03.5", "auto", 123.5), ("1500", "ms", 1.5), ("7", "s", 7.0)],
)
def test_parse_time(text, unit, seconds):
    assert parse_time(text, unit=unit) == pytest.approx(seconds)


def test_parse_time_rejects_text():
    with pytest.raises(ValueError):
        parse_time("soon")
    with pytest.raises(ValueError):
        parse_time("1.5", unit="hms")


LABELLED = (
    "Tier\tParticipant\tBegin Time - hh:mm:ss.ms\tBegin Time - ss.msec\tBegin Time - msec\t"
    "End Time - hh:mm:ss.ms\tEnd Time - ss.msec\tEnd Time - msec\tDuration - ss.msec\tAnnotation\n"
    "gesture\tP1\t00:00:01.000\t1.000\t1000\t00:00:02.500\t2.500\t2500\t1.500\tvibrato\n"
    "gesture\tP1\t00:01:00.000\t60.000\t60000\t00:01:00.750\t60.750\t60750\t0.750\t<empty>\n"
    'gesture\tP1\t00:01:01.000\t61.000\t61000\t00:01:02.000\t62.000\t62000\t1.000\t"quoted"\n'
    "bowing\t\t00:00:00.000\t0.000\t0\t00:00:04.000\t4.000\t4000\t4.000\tdown\n"
)


def test_labelled_export(tmp_path):
    path = tmp_path / "export.txt"
    path.write_text(LABELLED, encoding="utf-8")
    aset = read_annotations(path)
    assert list(aset.tiers) == ["gesture", "bowing"]
    assert triples(aset["gesture"]) == [(1.0, 2.5, "vibrato"), (60.0, 60.75, ""), (61.0, 62.0, '"quoted"')]
    assert aset["gesture"].participant == "P1" and aset["bowing"].participant == ""


def test_labelled_export_in_milliseconds_only(tmp_path):
    path = tmp_path / "ms.tsv"
    path.write_text("Tier\tBegin Time - msec\tEnd Time - msec\tAnnotation\nt\t1500\t2250\tx\n", encoding="utf-8")
    assert triples(read_elan_tab(path)["t"]) == [(1.5, 2.25, "x")]


def test_one_column_per_tier(tmp_path):
    path = tmp_path / "cols.txt"
    path.write_text(
        "Begin Time - ss.msec\tEnd Time - ss.msec\tDuration - ss.msec\tvibrato\tbowing\n"
        "0.5\t1.0\t0.5\tv\t\n1.0\t2.0\t1.0\t\tup\n",
        encoding="utf-8",
    )
    aset = read_elan_tab(path)
    assert triples(aset["vibrato"]) == [(0.5, 1.0, "v")]
    assert triples(aset["bowing"]) == [(1.0, 2.0, "up")]


def test_headerless_export(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text(
        "gesture\t\t00:00:01.000\t1.0\t00:00:02.500\t2.5\t00:00:01.500\t1.5\tvibrato\n"
        "gesture\t\t00:00:03.000\t3.0\t00:00:03.250\t3.25\t00:00:00.250\t0.25\t12.5\n"
        "bowing\t\t00:00:00.000\t0.0\t00:00:04.000\t4.0\t00:00:04.000\t4.0\tdown\n",
        encoding="utf-8",
    )
    aset = read_elan_tab(path)
    # a value that looks like a number is still the value: the last column is never a time
    assert triples(aset["gesture"]) == [(1.0, 2.5, "vibrato"), (3.0, 3.25, "12.5")]
    assert triples(aset["bowing"]) == [(0.0, 4.0, "down")]
    simple = tmp_path / "simple.txt"
    simple.write_text("t\tP2\t0.5\t1.5\t1.0\tx\n", encoding="utf-8")
    aset = read_elan_tab(simple)
    assert triples(aset["t"]) == [(0.5, 1.5, "x")] and aset["t"].participant == "P2"


@pytest.mark.parametrize(
    "text, match",
    [
        ("Tier\tBegin Time\tEnd Time\tAnnotation\nt\tsoon\t2.0\tx\n", r"line 2: Begin Time is 'soon', not a time"),
        ("Tier\tBegin Time\tEnd Time\tAnnotation\nt\t3.0\t2.0\tx\n", "line 2: annotation ends"),
        ("a\tb\tc\n", "does not look like an ELAN tab-delimited export"),
        ("\n\n", "is empty"),
    ],
)
def test_bad_tab_files(tmp_path, text, match):
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AnnotationError, match=match) as info:
        read_annotations(path)
    assert "bad.txt" in str(info.value)


def sample_set() -> AnnotationSet:
    aset = AnnotationSet()
    aset.add_tier(Tier("vibrato", [Annotation(1 / 3, 2 / 3, "vibrato, wide"), Annotation(2.0, 2.5, 'say "x"')], participant="P1"))
    aset.add_tier(Tier("bowing", [Annotation(0.0, 4.0, "down")]))
    return aset


def test_csv_round_trip(tmp_path):
    out = tmp_path / "labels.csv"
    write_annotations(sample_set(), out)
    assert out.read_text().splitlines()[0] == "tier,start,end,value"
    assert out.read_text().splitlines()[1] == 'vibrato,0.333333,0.666667,"vibrato, wide"'
    assert annotation_format(out) == "csv"
    back = read_csv(out)
    assert list(back.tiers) == ["vibrato", "bowing"]
    assert [a.value for a in back["vibrato"].annotations] == ["vibrato, wide", 'say "x"']
    assert back["vibrato"].annotations[0].start == pytest.approx(1 / 3, abs=1e-6)
    assert triples(back["bowing"]) == [(0.0, 4.0, "down")]
    write_csv(sample_set(), tmp_path / "ms.csv", decimals=3)
    assert (tmp_path / "ms.csv").read_text().splitlines()[1:] == [
        'vibrato,0.333,0.667,"vibrato, wide"', 'vibrato,2,2.5,"say ""x"""', "bowing,0,4,down"
    ]


def test_csv_errors(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("tier,begin,end\nt,0,1\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match="missing column.*start"):
        read_annotations(path)
    path.write_text("tier,start,end,value\nt,0,1,a\nt,x,2,b\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match="line 3: start is 'x'"):
        read_csv(path)


def test_tab_round_trip_and_cleaning(tmp_path):
    aset = sample_set()
    aset["bowing"].annotations.append(Annotation(5.0, 6.0, "line\nbreak"))
    out = tmp_path / "labels.txt"
    with pytest.warns(UserWarning, match="tab or line break"):
        write_annotations(aset, out)
    lines = out.read_text().splitlines()
    assert lines[0].split("\t")[2] == "Begin Time - ss.msec" and len(lines) == 5
    back = read_annotations(out)
    assert triples(back["bowing"]) == [(0.0, 4.0, "down"), (5.0, 6.0, "line break")]
    assert [(round(a.start, 3), a.value) for a in back["vibrato"].annotations] == [(0.333, "vibrato, wide"), (2.0, 'say "x"')]
    assert back["vibrato"].participant == "P1"
    write_elan_tab(AnnotationSet(), tmp_path / "empty.tsv")
    assert (tmp_path / "empty.tsv").read_text().count("\n") == 1


def test_tier_filter(shared_data):
    path = shared_data / "elan_txt" / "teicorpo_extend.csv"
    assert list(read_annotations(path, tier_filter="m*").tiers) == ["main"]
    assert list(read_annotations(path, tier_filter=["other", "default"]).tiers) == ["default", "other"]
    assert list(read_annotations(path, tier_filter=lambda t: len(t) > 6).tiers) == ["other"]
    with pytest.raises(AnnotationError, match="no tier 'nope'.*tiers are: default, main, other"):
        read_annotations(path, tier_filter=["nope"])
    with pytest.raises(AnnotationError, match="no tier of .* matches 'z\\*'"):
        read_annotations(path, tier_filter="z*")


def test_unknown_suffix(tmp_path):
    with pytest.raises(AnnotationError, match="unknown annotation format '.json'"):
        write_annotations(AnnotationSet(), tmp_path / "x.json")


def test_format_clock_is_elans_clock_and_parse_time_reads_it_back():
    from musicperf.io.tabular import format_clock, parse_time

    assert format_clock(0.52) == "00:00:00.520"
    assert format_clock(3725.0004) == "01:02:05.000"
    assert format_clock(-1.0) == "00:00:00.000"
    for t in (0.0, 1.234, 59.999, 3600.5, 86399.999):
        assert parse_time(format_clock(t)) == pytest.approx(t, abs=5e-4)
