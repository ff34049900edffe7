"""The frame labeller wired into the workflow: model folder, ``train --labeller frame``, ``label``, retraining."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _workflow_video import write_video  # noqa: E402

from musicperf.cli import main  # noqa: E402
from musicperf.errors import ModelError  # noqa: E402
from musicperf.features.tracks import FrameTracks  # noqa: E402
from musicperf.io.annotations import Annotation, AnnotationSet, Tier  # noqa: E402
from musicperf.io.elan import read_eaf, write_eaf  # noqa: E402
from musicperf.models.mstcn import MSTCNConfig  # noqa: E402
from musicperf.tasks.gestures.frame import choose_tiers, load_frame_model, save_frame_model  # noqa: E402
from musicperf.train.candidates import EnsembleLabeller, LightGBMLabeller, MSTCNLabeller, SparseLinearLabeller  # noqa: E402
from musicperf.train.framelabeller import train_frame_labeller  # noqa: E402

pytest.importorskip("lightgbm")
pytest.importorskip("cv2")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

SECONDS, UNTIL = 16.0, 10.0
# Wave / Nod alternate regularly so that both occur in the annotated part and after it.
EVENTS = {"Wave": [(0.5, 1.7), (3.0, 4.4), (5.5, 6.6), (8.0, 9.2), (10.6, 11.8), (13.0, 14.2)],
          "Nod": [(1.0, 2.2), (3.8, 5.0), (6.5, 7.6), (8.8, 9.8), (11.2, 12.4), (14.0, 15.1)]}


def tiny_mstcn():
    return MSTCNLabeller(MSTCNConfig(stages=1, layers=3, channels=8, epochs=15, lr=1e-2), step=1)


def toy_tracks(rng, t=200):
    y = np.zeros((t, 2), np.float32)
    for s in range(0, t, 40):
        y[s + 5 : s + 25, 0] = 1
    y[:, 1] = 1.0  # present on every frame: nothing beats "always"
    x = np.column_stack([y[:, 0] + 0.3 * rng.standard_normal(t), rng.standard_normal(t)]).astype(np.float32)
    return FrameTracks(values={"flow": x}, names={"flow": ["a", "b"]}, times=np.arange(t) / 10.0, fps=10.0,
                       detection={"flow": 1.0}, meta={"video": "toy"}), y


def test_frame_model_folder_round_trip(rng, tmp_path):
    tr, y = toy_tracks(rng)
    mask = np.zeros(len(tr), bool)
    mask[:140] = True
    cands = {"mstcn": tiny_mstcn,
             "linear": lambda: SparseLinearLabeller(fps=10.0, k=1),
             "lightgbm": lambda: LightGBMLabeller(fps=10.0, params={"num_iterations": 10}),
             "mstcn+lightgbm": lambda: EnsembleLabeller([tiny_mstcn, lambda: LightGBMLabeller(
                 fps=10.0, params={"num_iterations": 10})], name="mstcn+lightgbm")}
    lab = train_frame_labeller([tr], [y], [mask], classes=["lift", "always"], sets=("all",), candidates=cands,
                               choice="class")
    # Every candidate kind is saved: force the fitted models of each beside the choice.
    from musicperf.train.selection import fit_selection

    for name in cands:
        lab.selection.best["lift"].update(model=name, features="all", learnable=True)
        lab.model = fit_selection(lab.selection, {"all": [tr.matrix()[0]]}, [y], [mask], candidates=cands)
        doc = save_frame_model(tmp_path / name, lab, {"tracks": {"names": ["flow"]}})
        assert doc["labeller"] == "frame" and doc["status"]["always"] == "constant"
        back = load_frame_model(tmp_path / name)
        p0, d0 = lab.label([tr])
        p1, d1 = back.labeller.label([tr])
        np.testing.assert_allclose(p1[0], p0[0], atol=1e-6)
        assert np.array_equal(d1[0], d0[0])
        kinds = {p.suffix for p in (tmp_path / name).iterdir()}
        assert kinds <= {".json", ".safetensors", ".txt"}  # no pickle
    assert "cross-validated" in back.meta["selection_table"] and back.meta["selection"]["table"]
    (tmp_path / "lightgbm" / json.loads((tmp_path / "lightgbm" / "workflow.json").read_text())["models"][0]
     ["labeller"]["boosters"][0]).unlink()
    with pytest.raises(ModelError, match="cannot read"):
        load_frame_model(tmp_path / "lightgbm")


def test_choose_tiers_leaves_out_predictions_spans_and_free_text():
    free = Tier("comments", [Annotation(i, i + 0.5, f"remark {i}") for i in range(12)])
    aset = AnnotationSet(tiers={"Wave": Tier("Wave", [Annotation(0, 1, "Wave")]), "comments": free,
                                "auto: Wave": Tier("auto: Wave", []), "annotated": Tier("annotated", []),
                                "auto-query": Tier("auto-query", [])})
    classes, notes = choose_tiers([aset])
    assert classes == ["Wave"] and "comments" in notes[0]
    assert choose_tiers([aset], ["comments"])[0] == ["comments"]


def write_case(folder: Path, *, until: float | None = UNTIL) -> tuple[Path, Path]:
    """A 16 s video; the EAF has Wave/Nod up to ``until``, a free-text tier and an always-on tier."""
    folder.mkdir(parents=True, exist_ok=True)
    video = write_video(folder / "perf.mp4", SECONDS, EVENTS)
    end = SECONDS if until is None else until
    tiers = {k: Tier(k, [Annotation(s, e, k) for s, e in iv if e <= end]) for k, iv in EVENTS.items()}
    tiers["Playing"] = Tier("Playing", [Annotation(0.0, end, "Playing")])
    tiers["comments"] = Tier("comments", [Annotation(0.5 * i, 0.5 * i + 0.4, f"note {i}") for i in range(12)])
    eaf = folder / "perf.eaf"
    write_eaf(AnnotationSet(tiers=tiers), eaf, media=video)
    return video, eaf


FAST = ["--labeller", "frame", "--tracks", "flow,grid", "--sets", "all", "--candidates", "lightgbm", "-q"]


def test_cli_train_label_and_retrain_on_the_corrected_file(tmp_path, capsys, caplog):
    video, eaf = write_case(tmp_path / "data")
    model = tmp_path / "model"
    assert main(["train", f"{video}={eaf}", "-o", str(model), *FAST]) == 0
    out = capsys.readouterr().out
    assert "flow: 66 columns, found in 100% of frames" in out  # tracks and detection rates
    assert "up to the last annotation" in out  # the default annotated part, said
    assert "tier 'comments' left out" in out
    assert "cross-validated on the annotated frames" in out and "lightgbm/all" in out
    assert "Playing: not learnable" in out
    doc = json.loads((model / "workflow.json").read_text())
    assert doc["labeller"] == "frame" and doc["classes"] == ["Wave", "Nod", "Playing"]
    assert doc["status"] == {"Wave": "model", "Nod": "model", "Playing": "constant"}
    assert doc["selection"]["table"] and doc["training"]["videos"][0]["annotated_from"] == "last annotation"

    outdir = tmp_path / "out"
    assert main(["label", str(video), "-m", str(model), "-o", str(outdir), "--queries", "2", "-q"]) == 0
    cap = capsys.readouterr()
    assert "'Playing' is not learnable" in cap.out and "'Playing' is not learnable" in caplog.text  # stdout + log
    assert "annotate next" in cap.out
    summary = json.loads((outdir / "perf.labels.json").read_text())
    assert summary["complete"] and summary["labeller"] == "frame" and summary["not_learnable"] == ["Playing"]
    assert 1 <= len(summary["queries"]) <= 2 and all(q["start"] >= 9.8 - 1e-6 for q in summary["queries"])
    labelled = read_eaf(outdir / "perf.eaf")
    names = [t.name for t in labelled]
    assert {"Wave", "Nod", "comments", "auto: Wave", "auto: Nod", "auto: Playing", "auto-query"} <= set(names)
    # The constant's prediction for the unlearnable class: present over the whole video.
    iv = [(a.start, a.end) for a in labelled["auto: Playing"].annotations]
    assert iv == [(0.0, pytest.approx(SECONDS, abs=0.05))]
    # Wave is learned: the predicted intervals after the annotated part overlap the true ones.
    pred = [(a.start, a.end) for a in labelled["auto: Wave"].annotations if a.start >= UNTIL]
    assert any(s < 11.8 and e > 10.6 for s, e in pred) and any(s < 14.2 and e > 13.0 for s, e in pred)
    csv = (outdir / "perf.probs.csv").read_text().splitlines()
    assert csv[0].split(",")[-3:] == ["Wave", "Nod", "Playing"] and len(csv) == 1 + int(SECONDS * 25)
    # Labelled again: skipped (same model, same inputs), by the clip path's output rules.
    assert main(["label", str(video), "-m", str(model), "-o", str(outdir), "-q"]) == 0
    assert "already labelled, skipped" in capsys.readouterr().out

    # The annotator corrects the labelled file: annotates the first query stretch (the true
    # events in it), marks what is now annotated with an 'annotated' tier, and trains again.
    q = summary["queries"][0]
    for k in ("Wave", "Nod"):
        for s, e in EVENTS[k]:
            if s < q["end"] and e > q["start"]:
                labelled[k].annotations.append(Annotation(max(s, q["start"]), min(e, q["end"]), k))
        labelled[k].annotations.sort(key=lambda a: a.start)
    labelled["Playing"].annotations.append(Annotation(q["start"], q["end"], "Playing"))
    labelled.add_tier(Tier("annotated", [Annotation(0.0, UNTIL, ""), Annotation(q["start"], q["end"], "")]))
    corrected = tmp_path / "data" / "perf.corrected.eaf"
    write_eaf(labelled, corrected, media=video)
    model2 = tmp_path / "model2"
    assert main(["train", f"{video}={corrected}", "-o", str(model2), *FAST]) == 0
    out = capsys.readouterr().out
    assert "from tier" in out and "up to the last annotation" not in out
    doc2 = json.loads((model2 / "workflow.json").read_text())
    v1, v2 = doc["training"]["videos"][0], doc2["training"]["videos"][0]
    assert doc2["classes"] == ["Wave", "Nod", "Playing"]  # predicted and query tiers are not classes
    assert v2["annotated"] == [[0.0, UNTIL], [pytest.approx(q["start"]), pytest.approx(q["end"])]]
    assert v2["annotated_frames"] >= v1["annotated_frames"] + int(2.5 * 25) and v2["annotated_from"] == "tier"
    # --annotated overrides the tier; --until past the last annotation warns.
    assert main(["train", f"{video}={eaf}", "-o", str(tmp_path / "m3"), "--until", "12", *FAST]) == 0
    assert "past the last annotation" in capsys.readouterr().out


def test_label_says_when_no_annotation_file_is_beside_the_video(tmp_path, capsys):
    video, eaf = write_case(tmp_path / "data", until=None)
    model = tmp_path / "model"
    assert main(["train", f"{video}={eaf}", "-o", str(model), "--annotated", "0-8,12-16", "--tiers", "Wave",
                 *FAST]) == 0
    doc = json.loads((model / "workflow.json").read_text())
    assert doc["classes"] == ["Wave"] and doc["training"]["videos"][0]["annotated"] == [[0.0, 8.0], [12.0, 16.0]]
    capsys.readouterr()
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "solo.mp4").write_bytes(video.read_bytes())
    assert main(["label", str(alone / "solo.mp4"), "-m", str(model), "-o", str(tmp_path / "out"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "no human annotation file found" in out
    summary = json.loads((tmp_path / "out" / "solo.labels.json").read_text())
    u = [q["uncertainty"] for q in summary["queries"]]
    # Default 5 queries of 3 s without overlap: at most 5, fewer where 16 s leave no room; ranked.
    assert summary["human_annotations"] is None and 3 <= len(u) <= 5 and u == sorted(u, reverse=True)
    # The clip options are refused with the frame labeller and vice versa.
    assert main(["train", f"{video}={eaf}", "-o", str(tmp_path / "m4"), "--tiers", "Wave", "-q"]) == 2
    assert "--labeller frame" in capsys.readouterr().err
    # Bad options are refused before any track is computed.
    assert main(["train", f"{video}={eaf}", "-o", str(tmp_path / "m5"), "--labeller", "frame", "--candidates", "svm",
                 "-q"]) == 2
    assert "unknown candidate(s) ['svm']" in capsys.readouterr().err
    assert main(["train", f"{video}={eaf}", "-o", str(tmp_path / "m5"), "--labeller", "frame", "--annotated", "3-x",
                 "--tracks", "flow", "-q"]) == 2
    assert "'3-x' is not START-END" in capsys.readouterr().err


def test_demo_runs_the_frame_labeller_by_default(tmp_path):
    from musicperf.demo import DEMO_LABELLER, run_demo

    out = tmp_path / "demo"
    result = run_demo(out, seconds=15.0, size=(96, 72), progress=False, report=False)
    assert DEMO_LABELLER == "frame" and result["labeller"] == "frame"
    doc = json.loads((out / "model" / "workflow.json").read_text())
    assert doc["labeller"] == "frame" and doc["tracks"]["names"] == ["flow", "grid"]
    assert "(frame labeller)" in (out / "summary.md").read_text()
    assert json.loads((out / "labelled" / "performance.labels.json").read_text())["labeller"] == "frame"
