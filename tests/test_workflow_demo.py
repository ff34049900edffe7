"""The demo pipeline (musicperf demo) on a short, small synthetic performance."""

from __future__ import annotations

import json

import pytest

from musicperf.errors import ParameterError
from musicperf.demo import DEMO_GESTURES, run_demo
from musicperf.tasks.gestures import GestureConfig


def test_demo_writes_every_output(tmp_path):
    # The clip labeller on request (its GestureConfig below); the default, the frame labeller, is
    # run by tests/test_frame_labeller_cli.py::test_demo_runs_the_frame_labeller_by_default.
    steps = []
    out = tmp_path / "demo"
    cfg = GestureConfig(size=(48, 64), grid=6, epochs=25, hidden=(64, 32), folds=2)
    result = run_demo(out, seconds=18.0, size=(160, 120), config=cfg, progress=False, step=steps.append,
                      labeller="clip")
    assert [s[:5] for s in steps] == ["[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"]
    for name in ("performance.mp4", "truth.eaf", "annotated.eaf", "model/workflow.json", "labelled/performance.eaf",
                 "labelled/performance.probs.csv", "scores.json", "summary.md", "report.html"):
        assert (out / name).is_file(), name
    assert result["until"] == 12.0
    assert set(result["scores"]["tiers"]) <= set(DEMO_GESTURES)
    summary = (out / "summary.md").read_text()
    assert "| **macro average** |" in summary and "constant F1" in summary
    assert json.loads((out / "scores.json").read_text())["scores"]["start"] == 12.0
    with pytest.raises(ParameterError, match="--overwrite"):
        run_demo(out, seconds=18.0, progress=False)
