"""Old model folders still load and label the same; training still writes the same folder.

``tests/data/gesture_model_v1`` was written by the code before the gesture package was split
(commit edeea58): a 6 s synthetic performance (``perf.mp4``, ``perf.eaf``), the model trained on
its first 4 s (``model/``: ``workflow.json`` + ``head.safetensors``) and what ``label --from 4``
wrote with it (``perf.probs.csv``, ``perf.labelled.eaf``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from musicperf.io import read_annotations
from musicperf.io.probs import read_probs_csv
from musicperf.tasks.gestures import GestureConfig, label_videos, load_gesture_model, load_workflow_model, train_model

FIXTURE = Path(__file__).parent / "data" / "gesture_model_v1"
CFG = GestureConfig(size=(32, 40), grid=4, epochs=6, hidden=(16,), train_stride=4, folds=2)


def test_old_model_folder_loads_and_labels_as_before(tmp_path):
    assert load_workflow_model is load_gesture_model
    model = load_gesture_model(FIXTURE / "model")
    assert model.classes == ["Wave", "Nod"] and model.extractor.config == CFG
    [summary] = label_videos([FIXTURE / "perf.mp4"], FIXTURE / "model", tmp_path, after=4.0)
    assert summary["model_id"] == "052de2b84da0567e"
    times, probs, classes = read_probs_csv(tmp_path / "perf.probs.csv")
    old_times, old_probs, old_classes = read_probs_csv(FIXTURE / "perf.probs.csv")
    assert classes == old_classes and np.array_equal(times, old_times)
    np.testing.assert_allclose(probs, old_probs, atol=2e-4)
    new, old = read_annotations(tmp_path / "perf.eaf"), read_annotations(FIXTURE / "perf.labelled.eaf")
    assert sorted(t.name for t in new) == sorted(t.name for t in old)
    for tier in old:
        got = [(round(a.start, 2), round(a.end, 2), a.value) for a in new[tier.name].annotations]
        assert got == [(round(a.start, 2), round(a.end, 2), a.value) for a in tier.annotations], tier.name


def test_training_writes_the_folder_the_old_code_wrote(tmp_path):
    from safetensors.numpy import load_file

    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data, ignore=shutil.ignore_patterns("model"))
    meta = train_model([f"{data / 'perf.mp4'}={data / 'perf.eaf'}"], tmp_path / "model", until=4.0, config=CFG)
    old = json.loads((FIXTURE / "model" / "workflow.json").read_text())
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["head.safetensors", "workflow.json"]
    volatile = {"seconds_features", "seconds_total", "videos"}
    for key in old:
        if key == "training":
            assert {k: v for k, v in meta[key].items() if k not in volatile} == \
                {k: v for k, v in old[key].items() if k not in volatile}
        elif key not in ("model_id", "thresholds"):
            assert meta[key] == old[key], key
    np.testing.assert_allclose(meta["thresholds"], old["thresholds"], atol=1e-5)
    new_w, old_w = load_file(tmp_path / "model" / "head.safetensors"), load_file(FIXTURE / "model" / "head.safetensors")
    assert new_w.keys() == old_w.keys()
    for k in old_w:
        np.testing.assert_allclose(new_w[k], old_w[k], atol=1e-5, err_msg=k)


def test_config_reads_flat_and_nested_files(tmp_path):
    flat = tmp_path / "flat.yaml"
    flat.write_text("grid: 8\nepochs: 5\nfolds: 3\nmin_gap: 0.5\n")
    nested = tmp_path / "nested.yaml"
    nested.write_text("features: {grid: 8}\nmodel: {epochs: 5}\ncross_validation: {folds: 3}\n"
                      "post_processing: {min_gap: 0.5}\n")
    a, b = GestureConfig.from_yaml(flat), GestureConfig.from_yaml(nested)
    assert a == b and a.grid == 8 and a.folds == 3
    assert GestureConfig.from_dict(a.to_nested()) == a
    assert a.section("post_processing") == {"min_gap": 0.5, "min_duration": 0.24}
    from musicperf.errors import ParameterError

    with pytest.raises(ParameterError, match="belongs to section 'features'"):
        GestureConfig.from_dict({"model": {"grid": 8}})
    with pytest.raises(ParameterError, match="given twice"):
        GestureConfig.from_dict({"grid": 4, "features": {"grid": 8}})
    with pytest.raises(ParameterError, match="unknown setting"):
        GestureConfig.from_dict({"features": {"gird": 8}})


def test_train_options_are_derived_from_the_settings():
    from musicperf.cli import build_parser
    from musicperf.commands.train import config_from_args

    parser = build_parser()
    args = parser.parse_args(["train", "v.mp4", "-o", "m", "--by", "value", "--epochs", "7",
                              "--backbone-weights", "w.pth", "--landmarks-from-truth", "--modalities", "video,audio"])
    cfg = config_from_args(args)
    assert (cfg.classes_by, cfg.epochs, cfg.backbone, cfg.backbone_weights, cfg.landmark_source, cfg.modalities) == \
        ("value", 7, "resnet34", "w.pth", "truth", ("video", "audio"))
    assert config_from_args(parser.parse_args(["train", "v.mp4", "-o", "m"])) == GestureConfig()


def test_numeric_mode_is_passed_to_the_backbone_runner(monkeypatch):
    """``label --numeric-mode`` / ``load_gesture_model(numeric_mode=)`` forces the backbone's mode;
    None keeps the automatic choice (per machine, or MUSICPERF_NUMERIC_MODE)."""
    from musicperf.cli import build_parser
    from musicperf.errors import ParameterError
    from musicperf.tasks.gestures import load_gesture_model

    assert load_gesture_model(FIXTURE / "model").extractor.backbone_mode == "auto"
    assert load_gesture_model(FIXTURE / "model", numeric_mode="fp32").extractor.backbone_mode == "fp32"
    assert load_gesture_model(FIXTURE / "model", numeric_mode="bf16").extractor.backbone_mode == "bf16-cl3d"
    with pytest.raises(ParameterError, match="numeric_mode must be one of"):
        load_gesture_model(FIXTURE / "model", numeric_mode="fp8")
    args = build_parser().parse_args(["label", "v.mp4", "-m", "m", "-o", "o", "--numeric-mode", "bf16"])
    assert args.numeric_mode == "bf16"
