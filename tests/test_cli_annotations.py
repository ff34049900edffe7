"""``musicperf annotations show|convert`` through the CLI entry point."""

from __future__ import annotations

import json
import warnings

import pytest

from musicperf.cli import main
from musicperf.io import read_annotations


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_show_json(shared_data, capsys):
    assert main(["annotations", "show", str(shared_data / "eaf" / "poio_example.eaf"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "ELAN EAF" and out["n_tiers"] == 11 and out["n_annotations"] == 315
    tiers = {t["name"]: t for t in out["tiers"]}
    assert tiers["W-POS"]["parent"] == "W-Words" and tiers["W-POS"]["count"] == 97
    assert tiers["W-POS"]["values"]["n"] == 26 and tiers["W-POS"]["n_values"] == 13
    assert tiers["W-RGph"]["values"] == {"preparation": 20, "stroke": 19, "hold": 18, "part.retraction": 1, "retraction": 1}
    assert out["time_range"] == [0.0, 36.18]
    assert len(out["media"]) == 2 and out["vocabularies"]["Gesture phases"]


def test_show_text(shared_data, capsys):
    path = shared_data / "textgrid" / "phonfieldwork_test.TextGrid"
    assert main(["annotations", "show", str(path), "--max-values", "2"]) == 0
    out = capsys.readouterr().out
    assert "Praat TextGrid, 3 tiers, 8 annotations, 0.012-0.653 s" in out
    assert "'t' x2, 'e' x1, ... (+1 more)" in out
    line = next(line for line in out.splitlines() if line.startswith("intervals"))
    assert line.split()[1:4] == ["-", "4", "3"]


def test_show_tier_filter(shared_data, capsys):
    path = shared_data / "eaf" / "poio_example.eaf"
    assert main(["annotations", "show", str(path), "--json", "--tiers", "W-POS"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in out["tiers"]] == ["W-POS"]
    assert out["tiers"][0]["parent"] is None  # its parent was filtered out


@pytest.mark.parametrize("suffix", [".csv", ".txt", ".TextGrid", ".eaf"])
def test_convert_round_trip_from_eaf(shared_data, tmp_path, capsys, suffix):
    src = shared_data / "eaf" / "speach_test.eaf"
    out = tmp_path / f"converted{suffix}"
    assert main(["annotations", "convert", str(src), str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    before = read_annotations(src)
    after = read_annotations(out)
    for tier in before:
        if not len(tier):
            continue  # tabular formats cannot hold empty tiers
        assert [(round(a.start, 3), round(a.end, 3), a.value) for a in tier.annotations] == [
            (round(a.start, 3), round(a.end, 3), a.value) for a in after[tier.name].annotations
        ]


def test_convert_textgrid_to_eaf_with_media(shared_data, tmp_path):
    out = tmp_path / "fordia.eaf"
    video = shared_data / "video" / "dancer.avi"
    code = main(["annotations", "convert", str(shared_data / "textgrid" / "teicorpo_FOR_DIA.TextGrid"), str(out), "--media", str(video)])
    assert code == 0
    aset = read_annotations(out)
    assert [len(t) for t in aset] == [224, 110, 100, 49, 22]
    assert aset.media[0].url == video.resolve().as_uri() and aset.media[0].mime_type == "video/x-msvideo"


def test_times_beyond_the_video_exit_2(shared_data, tmp_path, capsys):
    csv = tmp_path / "ms.csv"
    csv.write_text("tier,start,end,value\ngesture,45000,52000,vibrato\n", encoding="utf-8")
    code = main(["annotations", "show", str(csv), "--media", str(shared_data / "video" / "dancer.avi")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("musicperf annotations: error:") and "ms.csv" in err
    assert "were times in milliseconds?" in err and "\n" not in err


@pytest.mark.parametrize(
    "content, name, match",
    [
        ("<ANNOTATION_DOCUMENT><HEADER>", "broken.eaf", "not well-formed XML: line 1"),
        ("", "empty.eaf", "is empty"),
        ("tier,start,end,value\n", "notes.json", "unknown annotation format"),
    ],
)
def test_bad_input_exit_2_with_one_line(tmp_path, capsys, content, name, match):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert main(["annotations", "show", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert name in err and match in err and "\n" not in err and "Traceback" not in err


def test_broken_textgrid_and_missing_file_exit_2(shared_data, tmp_path, capsys):
    path = shared_data / "textgrid" / "teicorpo_Anita_MUSSO_F_46_11e.textgrid"
    assert main(["annotations", "convert", str(path), str(tmp_path / "x.eaf")]) == 2
    assert "declares 871 intervals" in capsys.readouterr().err
    assert not (tmp_path / "x.eaf").exists()
    assert main(["annotations", "show", str(tmp_path / "missing.eaf")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_convert_bad_output_suffix_fails_before_reading(tmp_path, capsys):
    assert main(["annotations", "convert", str(tmp_path / "missing.eaf"), str(tmp_path / "out.docx")]) == 2
    assert "unknown annotation format '.docx'" in capsys.readouterr().err


def test_reader_warnings_become_single_log_lines(shared_data, capsys, caplog):
    path = shared_data / "eaf" / "pympi_sample_2.7.eaf"
    with caplog.at_level("WARNING", logger="musicperf.annotations"):
        assert main(["annotations", "show", str(path), "--json"]) == 0
    messages = [r.getMessage() for r in caplog.records if r.name == "musicperf.annotations"]
    assert any("1572 time slots have no TIME_VALUE" in m for m in messages)
    assert any("test_ecv_export.ecv" in m for m in messages)
    assert all("\n" not in m for m in messages)
    assert json.loads(capsys.readouterr().out)["n_annotations"] == 8778
