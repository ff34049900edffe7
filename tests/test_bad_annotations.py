"""Hostile annotation values through the CLI: a one-line error (exit 2) or a named warning, never a traceback.

Each file is made in a tmp dir. What the readers do (see docs/annotations.md): times that are
not finite, negative or beyond 100 hours and XML encodings that cannot be read are refused
(``AnnotationError``, exit 2, the message names the file, the tier and the value); a tier whose
annotations all have zero length, or whose times cannot be known (no time slot of the document
has a TIME_VALUE), is dropped with an ``AnnotationWarning`` naming the file and the tier.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicperf.cli import main

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def eaf(slots: list[tuple[str, str | None]], tiers: str, *, header: str = "", encoding: str = "UTF-8") -> str:
    """A small EAF 3.0 document; ``slots`` are (id, TIME_VALUE or None)."""
    order = "".join(
        f'<TIME_SLOT TIME_SLOT_ID="{sid}"' + (f' TIME_VALUE="{value}"' if value is not None else "") + "/>"
        for sid, value in slots
    )
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n<ANNOTATION_DOCUMENT AUTHOR="" DATE="2020-01-01T00:00:00Z" '
        f'FORMAT="3.0" VERSION="3.0"><HEADER MEDIA_FILE="" TIME_UNITS="milliseconds">{header}</HEADER>'
        f"<TIME_ORDER>{order}</TIME_ORDER>{tiers}"
        '<LINGUISTIC_TYPE GRAPHIC_REFERENCES="false" LINGUISTIC_TYPE_ID="lt" TIME_ALIGNABLE="true"/>'
        "</ANNOTATION_DOCUMENT>"
    )


def tier(name: str, *pairs: tuple[str, str], value: str = "Nodding") -> str:
    anns = "".join(
        f'<ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="{name}{k}" TIME_SLOT_REF1="{a}" TIME_SLOT_REF2="{b}">'
        f"<ANNOTATION_VALUE>{value}</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>"
        for k, (a, b) in enumerate(pairs)
    )
    return f'<TIER LINGUISTIC_TYPE_REF="lt" TIER_ID="{name}">{anns}</TIER>'


def one_slot_value(value: str) -> str:
    return eaf([("ts1", "1000"), ("ts2", value)], tier("gestures", ("ts1", "ts2")))


def textgrid(xmin: str, xmax: str, text: str = "Nodding") -> str:
    return (
        'File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = 10\ntiers? <exists>\nsize = 1\n'
        'item []:\n    item [1]:\n        class = "IntervalTier"\n        name = "gestures"\n        xmin = 0\n'
        f'        xmax = 10\n        intervals: size = 1\n        intervals [1]:\n            xmin = {xmin}\n'
        f'            xmax = {xmax}\n            text = "{text}"\n'
    )


REFUSED = [
    # (file name, content, words the one-line message must hold)
    ("klingon.eaf", eaf([("ts1", "0"), ("ts2", "500")], tier("g", ("ts1", "ts2")), encoding="x-klingon"),
     ["encoding 'x-klingon'"]),
    ("utf7.eaf", eaf([("ts1", "0"), ("ts2", "500")], tier("g", ("ts1", "ts2")), encoding="utf-7"), ["encoding 'utf-7'"]),
    ("nan.eaf", one_slot_value("NaN"), ["tier 'gestures'", "NaN ms", "not a finite number"]),
    ("inf.eaf", one_slot_value("inf"), ["tier 'gestures'", "inf ms", "not a finite number"]),
    ("neg_inf.eaf", one_slot_value("-Infinity"), ["tier 'gestures'", "not a finite number"]),
    ("huge.eaf", one_slot_value("1e20"), ["tier 'gestures'", "1e20 ms", "beyond 100 hours"]),
    ("negative.eaf", eaf([("ts1", "-500"), ("ts2", "1000")], tier("gestures", ("ts1", "ts2"))),
     ["tier 'gestures'", "-500 ms", "negative"]),
    ("origin.eaf", eaf([("ts1", "0"), ("ts2", "1000")], tier("gestures", ("ts1", "ts2")),
                       header='<MEDIA_DESCRIPTOR MEDIA_URL="file:///v.mp4" MIME_TYPE="video/mp4" TIME_ORIGIN="-5000"/>'),
     ["tier 'gestures'", "negative"]),
    ("origin_nan.eaf", eaf([("ts1", "0"), ("ts2", "1000")], tier("gestures", ("ts1", "ts2")),
                           header='<MEDIA_DESCRIPTOR MEDIA_URL="file:///v.mp4" MIME_TYPE="video/mp4" TIME_ORIGIN="nan"/>'),
     ["TIME_ORIGIN nan"]),
    ("negative.TextGrid", textgrid("-2", "1"), ["tier 1 ('gestures')", "-2.0 s", "negative"]),
    ("overflow.TextGrid", textgrid("1", "1e400"), ["tier 1 ('gestures')", "not a finite number"]),
    ("huge.TextGrid", textgrid("1", "1e9"), ["tier 1 ('gestures')", "beyond 100 hours"]),
    ("negative.csv", "tier,start,end,value\ngestures,-1.5,2,Nodding\n", ["line 2, tier 'gestures'", "-1.5 s", "negative"]),
    ("huge.csv", "tier,start,end,value\ngestures,1,999999999,Nodding\n", ["tier 'gestures'", "beyond 100 hours"]),
    ("negative.txt", "gestures\t\t-1.000\t2.000\t3.000\tNodding\n", ["tier 'gestures'", "negative"]),
]


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8"))
    return path


def assert_one_line_error(err: str, path: Path, words: list[str]) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert str(path) in lines[0] and "error" in lines[0], lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize("name, content, words", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_by_show_and_convert(tmp_path, capsys, name, content, words):
    path = write(tmp_path, name, content)
    assert main(["annotations", "show", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_line_error(captured.err, path, words)
    out = tmp_path / "out.eaf"
    assert main(["annotations", "convert", str(path), str(out)]) == 2
    assert_one_line_error(capsys.readouterr().err, path, words)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_negative_times_are_refused_by_stats_not_dropped(tmp_path, capsys):
    for name in ("negative.TextGrid", "negative.eaf"):
        content = dict((r[0], r[1]) for r in REFUSED)[name]
        path = write(tmp_path, name, content)
        out = tmp_path / "stats"
        assert main(["stats", str(path), "--fps", "25", "--duration", "10", "-o", str(out)]) == 2
        assert_one_line_error(capsys.readouterr().err, path, ["negative"])
        assert not out.exists()


def test_non_finite_times_are_refused_by_score(tmp_path, capsys):
    good = write(tmp_path, "good.csv", "tier,start,end,value\ngestures,1,2,Nodding\n")
    bad = write(tmp_path, "inf.eaf", one_slot_value("inf"))
    assert main(["score", str(good), str(bad)]) == 2
    assert_one_line_error(capsys.readouterr().err, bad, ["not a finite number"])


@pytest.fixture
def show_json(capsys, caplog):
    """Run ``annotations show --json``; return the summary and the warnings logged, one per line."""

    def run(path: Path) -> tuple[dict, str]:
        caplog.clear()
        with caplog.at_level("WARNING", logger="musicperf.annotations"):
            assert main(["annotations", "show", str(path), "--json"]) == 0
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        messages = [r.getMessage() for r in caplog.records if r.name == "musicperf.annotations"]
        assert all("\n" not in m for m in messages)
        return json.loads(captured.out), "\n".join(messages)

    return run


def test_zero_length_tier_is_dropped_with_a_named_warning(tmp_path, show_json):
    content = eaf([("ts1", "1000"), ("ts2", "1000"), ("ts3", "2000"), ("ts4", "2000"), ("ts5", "3000")],
                  tier("points", ("ts1", "ts2"), ("ts3", "ts4")) + tier("mixed", ("ts1", "ts3"), ("ts4", "ts4")))
    path = write(tmp_path, "zero.eaf", content)
    summary, err = show_json(path)
    counts = {t["name"]: t["count"] for t in summary["tiers"]}
    assert counts == {"points": 0, "mixed": 2}  # the point among intervals stays, as a point
    assert f"'{path}': tier 'points': all its 2 annotation(s) have zero length" in err and "dropped" in err
    assert f"'{path}': tier 'mixed': 1 zero-length annotation(s)" in err and "kept as points" in err
    tg = write(tmp_path, "zero.TextGrid", textgrid("4", "4"))
    summary, err = show_json(tg)
    assert summary["n_annotations"] == 0 and "tier 'gestures': all its 1 annotation(s) have zero length" in err
    tab = write(tmp_path, "zero.txt", "gestures\t\t1.000\t1.000\t0.000\tNodding\nbows\t\t1.000\t2.000\t1.000\tup\n")
    summary, err = show_json(tab)
    assert {t["name"]: t["count"] for t in summary["tiers"]} == {"gestures": 0, "bows": 1}
    assert "tier 'gestures': all its 1 annotation(s) have zero length" in err
    # a musicperf CSV tier of points only is a point tier (a Praat TextTier written as CSV): kept
    csv = write(tmp_path, "points.csv", "tier,start,end,value\nbeats,1,1,x\nbeats,2,2,x\n")
    summary, err = show_json(csv)
    assert summary["n_annotations"] == 2 and "zero" not in err


def test_untimed_document_is_dropped_with_a_named_warning(tmp_path, show_json):
    content = eaf([("ts1", None), ("ts2", None), ("ts3", None)], tier("gestures", ("ts1", "ts2"), ("ts2", "ts3")))
    path = write(tmp_path, "untimed.eaf", content)
    summary, err = show_json(path)
    assert summary["n_annotations"] == 0
    assert f"'{path}': tier 'gestures': none of the document's time slots has a TIME_VALUE" in err
    assert "2 annotation(s) cannot be known; they were dropped" in err
    assert "nan" not in json.dumps(summary).lower()
