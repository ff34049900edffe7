"""Praat TextGrid reading and writing: real files from ../shared/data/textgrid and synthetic cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicperf.errors import AnnotationError
from musicperf.io import read_annotations, write_annotations
from musicperf.io.annotations import Annotation, AnnotationSet, Tier
from musicperf.io.textgrid import read_textgrid, write_textgrid


def triples(tier):
    return [(a.start, a.end, a.value) for a in tier.annotations]


def test_long_and_short_formats_agree(shared_data):
    long = read_textgrid(shared_data / "textgrid" / "phonfieldwork_test.TextGrid")
    short = read_textgrid(shared_data / "textgrid" / "phonfieldwork_test_short.TextGrid")
    assert list(long.tiers) == list(short.tiers) == ["intervals", "empty_intervals", "points"]
    for name in long.tiers:
        assert triples(long[name]) == triples(short[name])
    # values as written in the short file
    assert [a.value for a in short["intervals"].annotations] == ["t", "e", "s", "t"]
    assert short["intervals"].annotations[0].start == 0.012465825768947203
    assert short["intervals"].annotations[-1].end == 0.6526757369614512
    # points become zero-length annotations
    assert all(a.start == a.end for a in short["points"].annotations)
    assert [a.start for a in short["points"].annotations][:2] == [0.012465825768947203, 0.247819135106803]


def test_empty_intervals_skipped_by_default(shared_data):
    path = shared_data / "textgrid" / "phonfieldwork_test.TextGrid"
    assert [len(t) for t in read_textgrid(path)] == [4, 0, 4]
    full = read_textgrid(path, skip_empty=False)
    assert [len(t) for t in full] == [5, 5, 4]
    assert full["intervals"].annotations[0] == Annotation(0.0, 0.012465825768947203, "")


def test_utf8_labels_and_trailing_spaces(shared_data):
    aset = read_textgrid(shared_data / "textgrid" / "teicorpo_FOR_DIA.TextGrid", skip_empty=False)
    assert [(t.name, len(t)) for t in aset] == [("phones", 224), ("syll", 110), ("words", 100), ("ortho", 49), ("spk", 23)]
    assert aset.time_range == (0.0, 39.18934240362812)
    assert aset["phones"].annotations[1] == Annotation(1.4197832108128883, 1.4697832108128883, "m")
    s1 = read_textgrid(shared_data / "textgrid" / "phonfieldwork_s1_all.TextGrid")
    assert any(ord(ch) > 127 for t in s1 for v in t.values for ch in v)
    assert list(s1.tiers) == ["labels", "backup labels", ""]


def test_broken_textgrid_is_a_clear_error(shared_data):
    path = shared_data / "textgrid" / "teicorpo_Anita_MUSSO_F_46_11e.textgrid"
    with pytest.raises(AnnotationError, match=r"tier 1 \('Anita_Musso'\) declares 871 intervals but only 0 follow") as info:
        read_annotations(path)  # the lower-case .textgrid suffix dispatches too
    assert "Anita_MUSSO_F_46_11e.textgrid" in str(info.value)


def test_every_real_textgrid_round_trips(shared_data, tmp_path):
    paths = [p for p in sorted((shared_data / "textgrid").iterdir()) if "Anita" not in p.name]
    assert len(paths) == 5
    for path in paths:
        aset = read_textgrid(path)
        out = tmp_path / (path.stem + ".TextGrid")
        write_textgrid(aset, out)
        back = read_textgrid(out)
        assert list(back.tiers) == list(aset.tiers)
        for name in aset.tiers:
            assert triples(back[name]) == triples(aset[name]), (path.name, name)


def textgrid_text(name="a b") -> str:
    return (
        'File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = 3\ntiers? <exists>\nsize = 2\nitem []:\n'
        '    item [1]:\n        class = "IntervalTier"\n        name = "' + name + '"\n        xmin = 0\n        xmax = 3\n'
        "        intervals: size = 2\n        intervals [1]:\n            xmin = 0\n            xmax = 1.5\n"
        '            text = "say ""hi"" !"\n        intervals [2]:\n            xmin = 1.5\n            xmax = 3\n'
        '            text = "é"\n    item [2]:\n        class = "TextTier"\n        name = "marks"\n'
        "        xmin = 0\n        xmax = 3\n        points: size = 1\n        points [1]:\n"
        '            number = 2.25\n            mark = "onset"\n'
    )


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le"])
def test_encodings_quotes_and_points(tmp_path, encoding):
    path = tmp_path / "g.TextGrid"
    path.write_bytes(textgrid_text().encode(encoding))
    aset = read_textgrid(path)
    assert triples(aset["a b"]) == [(0.0, 1.5, 'say "hi" !'), (1.5, 3.0, "é")]
    assert triples(aset["marks"]) == [(2.25, 2.25, "onset")]


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda t: t.replace('"ooTextFile"', '"ooBinaryFile"'), "not a Praat text file"),
        (lambda t: t.replace('"TextGrid"', '"Sound"'), "not a TextGrid"),
        (lambda t: t[: t.index("points [1]")], "declares 1 points but only 0 follow before the end"),
        (lambda t: t.replace("xmax = 1.5", "xmax = 1.5.5", 1), "unexpected character|expected a number"),
        (lambda t: t.replace('"TextTier"', '"FancyTier"'), "unknown class 'FancyTier'"),
        (lambda t: "", "ends early"),
    ],
)
def test_malformed_textgrids(tmp_path, mutate, match):
    path = tmp_path / "bad.TextGrid"
    path.write_text(mutate(textgrid_text()), encoding="utf-8")
    with pytest.raises(AnnotationError, match=match) as info:
        read_textgrid(path)
    assert "bad.TextGrid" in str(info.value)


def test_write_fills_gaps_and_refuses_overlaps(tmp_path):
    aset = AnnotationSet()
    aset.add_tier(Tier("vibrato", [Annotation(0.5, 1.0, "v"), Annotation(2.0, 2.5, "v")]))
    aset.add_tier(Tier("onsets", [Annotation(0.1, 0.1, "o"), Annotation(0.7, 0.7, "o")]))
    out = tmp_path / "w.TextGrid"
    write_annotations(aset, out, xmax=3.0)
    full = read_textgrid(out, skip_empty=False)
    assert triples(full["vibrato"]) == [(0.0, 0.5, ""), (0.5, 1.0, "v"), (1.0, 2.0, ""), (2.0, 2.5, "v"), (2.5, 3.0, "")]
    assert triples(full["onsets"]) == [(0.1, 0.1, "o"), (0.7, 0.7, "o")]
    assert "TextTier" in out.read_text()
    aset["vibrato"].annotations.append(Annotation(0.75, 1.5, "overlap"))
    with pytest.raises(AnnotationError, match="overlap at 0.750 s"):
        write_textgrid(aset, tmp_path / "o.TextGrid")
    with pytest.raises(AnnotationError, match="outside the TextGrid domain"):
        write_textgrid(aset, tmp_path / "o.TextGrid", xmax=1.0)
    assert not (tmp_path / "o.TextGrid").exists()


def test_zero_length_among_intervals_warns(tmp_path):
    aset = AnnotationSet()
    aset.add_tier(Tier("t", [Annotation(0.5, 1.0, "a"), Annotation(1.2, 1.2, "point")]))
    with pytest.warns(UserWarning, match="1 zero-length annotations"):
        write_textgrid(aset, tmp_path / "z.TextGrid")
    assert triples(read_textgrid(tmp_path / "z.TextGrid")["t"]) == [(0.5, 1.0, "a")]


def test_empty_set_writes_a_valid_textgrid(tmp_path):
    write_textgrid(AnnotationSet(), tmp_path / "e.TextGrid", xmax=2.0)
    assert len(read_textgrid(tmp_path / "e.TextGrid")) == 0
    assert isinstance(read_annotations(Path(tmp_path / "e.TextGrid")), AnnotationSet)


def test_duplicate_tier_names_are_numbered(tmp_path):
    path = tmp_path / "dup.TextGrid"
    path.write_text(textgrid_text().replace('name = "marks"', 'name = "a b"'), encoding="utf-8")
    assert list(read_textgrid(path).tiers) == ["a b", "a b (2)"]
