"""musicperf score: frame-level agreement between two annotation documents."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicperf.api import score
from musicperf.cli import main
from musicperf.errors import ParameterError
from musicperf.evaluate.agreement import format_table, match_tiers, score_annotations
from musicperf.io.annotations import Annotation, AnnotationSet, Tier


def aset(**tiers) -> AnnotationSet:
    return AnnotationSet(tiers={n: Tier(n, [Annotation(s, e, n) for s, e in iv]) for n, iv in tiers.items()})


def test_identical_annotations_agree_perfectly():
    a = aset(Nodding=[(0.0, 1.0), (2.0, 2.5)], Vibrato=[(1.0, 3.0)])
    r = score_annotations(a, a, fps=25.0, end=4.0)
    for row in r["tiers"].values():
        assert row["precision"] == row["recall"] == row["f1"] == row["kappa"] == 1.0
    assert r["n_frames"] == 100
    assert r["tiers"]["Nodding"]["support"] == 25 + 13  # [2.0, 2.5) touches frames 50..62
    assert r["macro"]["f1"] == 1.0


def test_half_overlap_has_known_scores():
    # 100 frames: reference on 0..49, prediction on 25..74 -> TP 25, FP 25, FN 25, TN 25.
    ref = aset(A=[(0.0, 2.0)])
    pred = aset(**{"auto: A": [(1.0, 3.0)]})
    r = score_annotations(ref, pred, fps=25.0, end=4.0)
    row = r["tiers"]["A"]
    assert row["prediction_tier"] == "auto: A"
    assert row["precision"] == pytest.approx(0.5)
    assert row["recall"] == pytest.approx(0.5)
    assert row["f1"] == pytest.approx(0.5)
    assert row["kappa"] == pytest.approx(0.0)  # p_o = 0.5 = p_e
    assert row["confusion"] == [[25, 25], [25, 25]]


def test_window_restricts_the_frames_scored():
    ref = aset(A=[(0.0, 2.0)])
    pred = aset(A=[(1.0, 3.0)])
    r = score_annotations(ref, pred, fps=25.0, start=1.0, end=2.0)
    assert r["n_frames"] == 25
    assert r["tiers"]["A"]["f1"] == pytest.approx(1.0)
    assert (r["start"], r["end"]) == (1.0, 2.0)


def test_auto_tiers_win_over_copied_human_tiers_and_unmatched_are_reported():
    # The output of `musicperf label` holds a copy of the human tier A and the prediction "auto: A".
    ref = aset(A=[(0.0, 1.0)], B=[(0.0, 1.0)], Extra=[(0.0, 0.5)])
    pred = aset(A=[(0.0, 1.0)], **{"auto: A": [(2.0, 3.0)], "auto: B": [(0.0, 1.0)], "auto: C": [(0.0, 1.0)]})
    m = match_tiers(list(ref.tiers), list(pred.tiers))
    assert m.pairs == [("A", "auto: A"), ("B", "auto: B")]
    assert m.unmatched_reference == ["Extra"]
    assert m.unmatched_prediction == ["A", "auto: C"]
    r = score_annotations(ref, pred, fps=25.0, end=4.0)
    assert r["tiers"]["A"]["f1"] == 0.0  # the copy would have scored 1.0
    assert r["tiers"]["B"]["f1"] == 1.0
    assert "Extra" in format_table(r)


def test_empty_reference_tier_is_undefined_and_left_out_of_averages():
    ref = aset(A=[(0.0, 1.0)], B=[])
    pred = aset(A=[(0.0, 1.0)], B=[(2.0, 3.0)])
    r = score_annotations(ref, pred, fps=25.0, end=4.0)
    assert r["tiers"]["B"]["recall"] is None and r["tiers"]["B"]["f1"] is None
    assert r["tiers"]["B"]["predicted"] == 25
    assert r["macro"]["f1"] == 1.0
    json.dumps(r)  # no NaN in the JSON


def test_bad_arguments_raise_parameter_errors():
    a = aset(A=[(0.0, 1.0)])
    with pytest.raises(ParameterError, match="after"):
        score_annotations(a, a, start=2.0, end=1.0)
    with pytest.raises(ParameterError, match="fps"):
        score_annotations(a, a, fps=0)
    with pytest.raises(ParameterError, match="not in the reference"):
        score_annotations(a, a, tiers=["Nope"])


def test_cli_scores_two_eaf_files(tmp_path, capsys):
    from musicperf.io.elan import write_eaf

    write_eaf(aset(A=[(0.0, 2.0)], B=[(1.0, 2.0)]), tmp_path / "ref.eaf")
    write_eaf(aset(**{"auto: A": [(1.0, 3.0)], "auto: B": [(1.0, 2.0)]}), tmp_path / "pred.eaf")
    assert main(["score", str(tmp_path / "ref.eaf"), str(tmp_path / "pred.eaf"), "--to", "4", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["tiers"]["A"]["f1"] == pytest.approx(0.5)
    assert r["tiers"]["B"]["f1"] == pytest.approx(1.0)
    assert r["macro"]["f1"] == pytest.approx(0.75)
    assert {**score(tmp_path / "ref.eaf", tmp_path / "pred.eaf", end=4.0), "warnings": []} == r
    assert main(["score", str(tmp_path / "ref.eaf"), str(tmp_path / "pred.eaf"), "--from", "1", "--fps", "10"]) == 0
    assert "macro average" in capsys.readouterr().out
    assert main(["score", str(tmp_path / "ref.eaf"), str(tmp_path / "missing.eaf")]) == 2
    assert "missing.eaf" in capsys.readouterr().err


def test_by_value_regroups_annotation_values_into_classes():
    ref = AnnotationSet(tiers={"gesture": Tier("gesture", [Annotation(0.0, 1.0, "nod"), Annotation(2.0, 3.0, "wave")])})
    pred = aset(**{"auto: nod": [(0.0, 1.0)], "auto: wave": [(2.5, 3.5)]})
    r = score_annotations(ref, pred, fps=25.0, end=4.0, by="value")
    assert r["tiers"]["nod"]["f1"] == 1.0 and r["tiers"]["nod"]["prediction_tier"] == "auto: nod"
    assert r["tiers"]["wave"]["f1"] == pytest.approx(2 * 13 / (25 + 26))  # frames 62-74 of 50-74 and 62-87
    # two annotators who both used values
    other = AnnotationSet(tiers={"g2": Tier("g2", [Annotation(0.0, 1.0, "nod")])})
    r = score_annotations(ref, other, fps=25.0, end=4.0, by="value")
    assert r["tiers"]["nod"]["f1"] == 1.0 and r["unmatched_reference"] == ["wave"]
    with pytest.raises(ParameterError, match="by must be"):
        score_annotations(ref, other, by="values")


def _score_cli(capsys, *args):
    code = main(["score", *map(str, args), "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), [ln for ln in captured.err.splitlines() if ln]


def test_cli_warns_when_files_are_swapped(tmp_path, capsys):
    from musicperf.io.elan import write_eaf

    # what `musicperf label` writes: the human tier (training part) and the auto: tier
    write_eaf(aset(A=[(0.0, 1.0)], **{"auto: A": [(1.5, 3.0)]}), tmp_path / "labelled.eaf")
    write_eaf(aset(A=[(0.0, 1.0), (1.5, 2.5)]), tmp_path / "truth.eaf")
    code, r, err = _score_cli(capsys, tmp_path / "truth.eaf", tmp_path / "labelled.eaf")
    assert code == 0 and r["warnings"] == [] and err == []
    code, r, err = _score_cli(capsys, tmp_path / "labelled.eaf", tmp_path / "truth.eaf")
    assert code == 0 and [w["code"] for w in r["warnings"]] == ["reference_is_prediction"]
    assert len(err) == 1 and err[0].startswith("musicperf score: warning: the reference") and "swapped" in err[0]
    write_eaf(aset(**{"auto: A": [(1.5, 3.0)]}), tmp_path / "only-auto.eaf")
    _, r, err = _score_cli(capsys, tmp_path / "only-auto.eaf", tmp_path / "labelled.eaf")
    assert "reference_is_prediction" in [w["code"] for w in r["warnings"]] and "and nothing else" in err[0]


def test_cli_warns_when_times_do_not_overlap(tmp_path, capsys):
    from musicperf.io.elan import write_eaf

    write_eaf(aset(A=[(0.0, 1.0), (2.0, 3.0)]), tmp_path / "ref.eaf")
    write_eaf(aset(**{"auto: A": [(100.0, 101.0)]}), tmp_path / "pred.eaf")
    code, r, err = _score_cli(capsys, tmp_path / "ref.eaf", tmp_path / "pred.eaf")
    assert code == 0 and [w["code"] for w in r["warnings"]] == ["no_overlap"]
    assert r["tiers"]["A"]["f1"] == 0.0 and len(err) == 1 and "do not overlap" in err[0]
    write_eaf(aset(**{"auto: A": [(0.5, 2.5)]}), tmp_path / "pred2.eaf")
    _, r, err = _score_cli(capsys, tmp_path / "ref.eaf", tmp_path / "pred2.eaf", "--from", 10, "--to", 20)
    assert [w["code"] for w in r["warnings"]] == ["no_overlap"] and "scored window 00:00:10.000-00:00:20.000" in err[0]
    _, r, err = _score_cli(capsys, tmp_path / "ref.eaf", tmp_path / "pred2.eaf", "--from", 1.0)
    assert r["warnings"] == [] and err == []


def test_cli_warns_per_tier_empty_on_both_sides(tmp_path, capsys):
    from musicperf.io.elan import write_eaf

    write_eaf(aset(A=[(0.0, 1.0)], B=[(5.0, 6.0)], C=[(0.2, 0.4)]), tmp_path / "ref.eaf")
    write_eaf(aset(**{"auto: A": [(0.0, 1.0)], "auto: B": [(5.0, 6.0)], "auto: C": []}), tmp_path / "pred.eaf")
    _, r, err = _score_cli(capsys, tmp_path / "ref.eaf", tmp_path / "pred.eaf", "--to", 2.0)
    assert [(w["code"], w["tier"]) for w in r["warnings"]] == [("empty_tier", "B")]
    assert r["tiers"]["B"]["kappa"] == 1.0  # what the warning is about
    assert len(err) == 1 and "tier 'B' is empty in both files" in err[0]
    # the text table gets the same one-line warnings on stderr
    assert main(["score", str(tmp_path / "ref.eaf"), str(tmp_path / "pred.eaf"), "--to", "2"]) == 0
    captured = capsys.readouterr()
    assert "macro average" in captured.out and captured.err.count("warning:") == 1


def test_segmental_scores_are_reported_beside_the_frame_scores():
    ref = aset(A=[(0.0, 1.0), (2.0, 3.0)])
    pred = aset(A=[(0.0, 1.0)])
    r = score_annotations(ref, pred, fps=25.0, end=4.0)
    row = r["tiers"]["A"]
    assert row["f1@50"] == pytest.approx(2 / 3)  # 1 TP, 0 FP, 1 FN
    assert row["edit"] == pytest.approx(0.5)
    assert r["macro"]["f1@25"] == pytest.approx(2 / 3)
    assert "F1@25" in format_table(r)


def test_the_window_is_the_media_duration_not_the_extent_of_the_documents(tmp_path):
    from musicperf.io.elan import write_eaf

    # Both documents stop at 2 s; the media lasts 4 s: the last 2 s are true negatives.
    ref = aset(A=[(0.0, 1.0)])
    pred = aset(A=[(1.0, 2.0)])
    short = score_annotations(ref, pred, fps=25.0)
    full = score_annotations(ref, pred, fps=25.0, duration=4.0)
    assert short["n_frames"] == 50 and full["n_frames"] == 100
    assert full["tiers"]["A"]["confusion"] == [[50, 25], [25, 0]]
    # The CLI finds the duration from the media the reference links.
    import av

    video = tmp_path / "v.mp4"
    with av.open(str(video), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for _ in range(100):
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    write_eaf(ref, tmp_path / "ref.eaf", media=video)
    write_eaf(pred, tmp_path / "pred.eaf")
    r = score(tmp_path / "ref.eaf", tmp_path / "pred.eaf")
    assert r["window"].startswith("media") and r["n_frames"] == 100
    r = score(tmp_path / "ref.eaf", tmp_path / "pred.eaf", duration=3.0)
    assert r["window"] == "duration" and r["n_frames"] == 75
    assert score(ref, pred)["window"] == "annotations"
