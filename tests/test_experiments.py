"""The experiment runner of 001 (musicperf.tasks.experiments): a tiny Table 7 / Table 8 run.

Two synthetic performances of 8 s (12 samples of 16 frames each), a ResNet-10 at width x0.125
on 32x32 frames, 2 epochs: the point is the grid, the split names, the tables and resuming,
not the figures (those are in docs/experiments.md).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from musicperf.errors import ParameterError
from musicperf.tasks.experiments import METHODS, ExperimentConfig, run_experiment

TINY = ExperimentConfig(backbone="resnet10", width_factor=0.125, size=32, epochs=2, patience=None,
                        hidden=(16, 8, 4), audio_dim=16, audio_hidden=(32, 16, 16), batch_size=8)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    from musicperf.synth import synthesize

    root = tmp_path_factory.mktemp("synth")
    out = []
    for seed, bg in ((1, "plain"), (2, "cluttered")):
        d = root / f"seed{seed}-{bg}"
        synthesize(d, seconds=8, seed=seed, size=(96, 72), background=bg, supersample=1,
                   gestures=["Nodding", "Freeze", "Frowning", "Lifting head"], ensure_all=True)
        out.append(d)
    return out


@pytest.fixture(scope="module")
def table7(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("t7")
    return out, run_experiment("table7", videos, out, TINY)


def _csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_table7_grid_and_split_names(table7):
    out, results = table7
    # 2 scopes x 2 taxonomies x 4 methods, in the order of Table 7
    assert len(results) == 16
    rows = _csv(out / "table7.csv")
    assert len(rows) == 16
    assert [r["method"] for r in rows[:4]] == list(METHODS)
    assert {r["scope"] for r in rows} == {"one video: seed1-plain", "all videos"}
    assert {(r["taxonomy"], r["classes"]) for r in rows} == {("gestures18", "18"), ("superclasses7", "7")}
    for r in rows:
        n = int(r["n_train"]) + int(r["n_val"]) + int(r["n_test"])
        if r["scope"] == "all videos":
            assert n == 24 and r["split"] == "random 80/10/10 seed=0 over the samples of 2 videos"
        else:
            assert n == 12 and r["split"] == "random 80/10/10 seed=0 over the samples of seed1-plain"
        f1 = float(r["test_f1"])
        assert np.isnan(f1) or 0.0 <= f1 <= 1.0
        assert 0.0 <= float(r["train_f1"]) <= 1.0
    md = (out / "table7.md").read_text()
    assert md.count("\n| 1 |") == 1 and "| 4 |" in md
    assert "SM+BB+TS Test" in md and "Bimodal+SM+BB+TS Train" in md
    assert "RANDOM weights" in md  # the random backbone is said next to the numbers


def test_per_class_tables_match_cells(table7):
    out, results = table7
    files = sorted(p.name for p in out.glob("tableA_*.csv"))
    assert len(files) == 4  # (one video, all videos) x (18, 7)
    rows = _csv(out / "tableA_table7_all_videos_superclasses7.csv")
    assert [r["class"] for r in rows][-1] == "macro average"
    assert len(rows) == 7 + 1
    res = next(r for r in results if r["cell"]["scope"] == "all videos" and r["cell"]["taxonomy"] == "superclasses7"
               and r["cell"]["method"] == "SM+BB")
    for r in rows[:-1]:
        want = res["test"]["per_class"][r["class"]]
        got = r["SM+BB f1 test"]
        assert (got == "") == (want["f1"] is None)
        if got:
            assert float(got) == pytest.approx(want["f1"], abs=1e-4)
        assert int(r["test positives"]) == want["support"]
    # the macro row is the mean over classes with positives (the papers' "Average")
    f1s = [float(r["SM+BB f1 test"]) for r in rows[:-1] if r["SM+BB f1 test"]]
    assert float(rows[-1]["SM+BB f1 test"]) == pytest.approx(np.mean(f1s), abs=1e-3)
    # support counts: every test sample has at least one class (Normal play is the background)
    assert sum(int(r["test positives"]) for r in rows[:-1]) >= res["split"]["test"]


def test_rerun_skips_finished_cells_and_redoes_changed_ones(table7, videos):
    out, _ = table7
    cells = sorted((out / "cells").glob("*.json"))
    assert len(cells) == 16
    before = {p: p.stat().st_mtime_ns for p in cells}
    again = run_experiment("table7", videos, out, TINY)
    assert all(r["resumed"] for r in again)
    assert {p: p.stat().st_mtime_ns for p in cells} == before
    # a different training setting is a different cell fingerprint: recomputed, not reused
    changed = run_experiment("table7", videos, out, ExperimentConfig(**{**TINY.__dict__, "epochs": 1}),
                             taxonomies=["superclasses7"], methods=["SM"])
    assert [r["resumed"] for r in changed] == [False, False]
    assert all(r["epochs_run"] == 1 for r in changed)
    assert json.loads((out / "cells" / "table7__all_videos__superclasses7__SM.json").read_text())["epochs_run"] == 1
    # another training seed reuses the cached backbone features (one file per video)
    feats = sorted((out / "features").glob("*.npz"))
    other = run_experiment("table7", videos, out, ExperimentConfig(**{**TINY.__dict__, "seed": 1}),
                           taxonomies=["superclasses7"], methods=["SM"])
    assert len(feats) == 2 and sorted((out / "features").glob("*.npz")) == feats
    assert other[1]["split"]["name"].startswith("random 80/10/10 seed=1")


def test_table8_leave_one_video_out(videos, table7):
    out, _ = table7  # reuses the cached features of the same videos
    res = run_experiment("table8", videos, out, TINY)
    assert [r["cell"]["scope"] for r in res] == ["test video: seed1-plain", "test video: seed2-cluttered"]
    assert all(r["cell"]["method"] == "SM+BB+TS" and r["cell"]["taxonomy"] == "superclasses7" for r in res)
    for r in res:
        assert r["split"]["name"].startswith(f"leave-one-video-out test={r['cell']['scope'].split(': ')[1]}")
        assert r["split"]["test"] == 12 and r["split"]["train"] + r["split"]["val"] == 12
    rows = _csv(out / "table8.csv")
    assert len(rows) == 2 and rows[0]["split"].startswith("leave-one-video-out")
    assert "Table 8" in (out / "table8.md").read_text()


def test_bad_requests(videos, tmp_path):
    with pytest.raises(ParameterError, match="one_video=5"):
        run_experiment("table7", videos, tmp_path, ExperimentConfig(**{**TINY.__dict__, "one_video": 5}))
    with pytest.raises(ParameterError, match="unknown method"):
        run_experiment("table7", videos, tmp_path, TINY, methods=["SM+XX"])
    with pytest.raises(ParameterError, match="table9"):
        run_experiment("table9", videos, tmp_path, TINY)
    with pytest.raises(ParameterError, match="at least 2 videos"):
        run_experiment("table8", videos[:1], tmp_path, TINY)


def test_cli_quick(videos, tmp_path, capsys):
    from musicperf.cli import main

    rc = main(["experiment", "table7", str(videos[0]), "-o", str(tmp_path / "r"), "--quick", "--size", "32",
               "--epochs", "1", "--methods", "SM,SM+BB", "--taxonomies", "superclasses7", "-q",
               "--features", str(tmp_path / "shared")])
    assert rc == 0
    assert len(list((tmp_path / "shared").glob("*.npz"))) == 1 and not (tmp_path / "r" / "features").exists()
    printed = capsys.readouterr().out
    assert "one video: seed1-plain, classes = 7" in printed and "random 80/10/10 seed=0" in printed
    assert (tmp_path / "r" / "table7.csv").is_file()


def test_video_without_sound_leaves_bimodal_column_empty(tmp_path):
    from musicperf.synth import synthesize

    d = tmp_path / "silent"
    synthesize(d, seconds=8, seed=3, size=(96, 72), supersample=1, audio=False,
               gestures=["Nodding", "Frowning"], ensure_all=True)
    res = run_experiment("table7", [d], tmp_path / "r", TINY, taxonomies=["superclasses7"],
                         methods=["SM", "Bimodal+SM+BB+TS"])
    assert [r["cell"]["scope"] for r in res] == ["one video: silent"] * 2  # one video: no "all videos" rows
    assert "skipped" not in res[0] and res[1]["skipped"] == "a video has no audio stream"
    rows = _csv(tmp_path / "r" / "table7.csv")
    assert rows[1]["test_f1"] == "" and rows[1]["note"] == "a video has no audio stream"
    md = (tmp_path / "r" / "table7.md").read_text()
    assert md.splitlines()[4].endswith("| n/a | n/a |")


def test_conv5_finetuning_trains_layer4_from_cached_conv4(videos, tmp_path, monkeypatch):
    import numpy as np
    import torch

    import musicperf.tasks.experiments as ex

    cfg = ExperimentConfig(**{**TINY.__dict__, "finetune": "conv5", "epochs": 3})
    seen = {}
    real = ex._Conv5

    def spy(backbone, shape, mu, sd):
        module = real(backbone, shape, mu, sd)
        seen["module"] = module
        seen["before"] = {k: v.clone() for k, v in backbone.layer4.state_dict().items()}
        seen["frozen"] = {k: v.clone() for k, v in backbone.layer3.state_dict().items()}
        return module

    monkeypatch.setattr(ex, "_Conv5", spy)
    res = run_experiment("table7", videos, tmp_path, cfg, taxonomies=["superclasses7"], methods=["SM+BB"])
    assert len(res) == 2 and all(r["test"]["macro"]["f1"] is not None or r["test"]["n_classes_averaged"] == 0 for r in res)
    with np.load(next((tmp_path / "features").glob("*.npz"))) as z:
        assert z["conv4"].dtype == np.float16 and z["conv4"].shape[0] == z["video"].shape[0]
    bb = seen["module"].backbone
    changed = any(not torch.equal(v, seen["before"][k]) for k, v in bb.layer4.state_dict().items() if v.is_floating_point())
    assert changed, "conv5 did not train"
    assert all(torch.equal(v, seen["frozen"][k]) for k, v in bb.layer3.state_dict().items()), "conv4 changed"
    with pytest.raises(ParameterError, match="finetune"):
        ExperimentConfig(finetune="all")
