"""The clip labeller's head as a frame-labeller candidate (musicperf.train.cliphead)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _workflow_video import write_video  # noqa: E402

from musicperf.cli import main  # noqa: E402
from musicperf.errors import ModelError, ParameterError  # noqa: E402
from musicperf.features.tracks import FrameTracks  # noqa: E402
from musicperf.io.annotations import Annotation, AnnotationSet, Tier  # noqa: E402
from musicperf.io.elan import read_eaf, write_eaf  # noqa: E402
from musicperf.tasks.gestures.frame import load_frame_model, save_frame_model  # noqa: E402
from musicperf.train.candidates import ConstantLabeller, default_candidates  # noqa: E402
from musicperf.train.cliphead import ClipHeadLabeller, _calibrate, clip_starts, clip_statistics  # noqa: E402
from musicperf.train.framelabeller import train_frame_labeller  # noqa: E402
from musicperf.train.head import HeadSettings  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = HeadSettings(epochs=30)


def toy(rng, t=480):
    """Class 0 on in regular bursts, class 1 never present; feature 0 high while class 0 is."""
    y = np.zeros((t, 2), np.float32)
    for s in range(0, t, 60):
        y[s + 10 : s + 40, 0] = 1
    x = np.column_stack([y[:, 0] + 0.3 * rng.standard_normal(t), rng.standard_normal(t)]).astype(np.float32)
    return x, y


def f1(pred, truth):
    tp = int((pred & truth).sum())
    return 2 * tp / max(1, int(pred.sum() + truth.sum()))


def test_clip_statistics_and_starts():
    x = np.arange(40, dtype=np.float64).reshape(20, 2)
    x[3, 1] = np.nan
    x[:, 1][8:12] = np.nan
    st = np.array([0, 6])
    got = clip_statistics(x, st, length=4)
    for i, s in enumerate(st):
        w = x[s : s + 4]
        np.testing.assert_allclose(got[i, :2], np.nan_to_num(np.nanmean(w, axis=0)), rtol=1e-6)
        np.testing.assert_allclose(got[i, 2:], np.nan_to_num(np.nanstd(w, axis=0)), rtol=1e-6, atol=1e-6)
    assert np.isfinite(clip_statistics(x, np.array([8]), length=4)).all()  # all missing: 0, not NaN
    assert clip_statistics(x, np.array([8]), length=4)[0, 1] == 0.0
    mask = np.zeros(30, bool)
    mask[3:23] = True
    mask[25:28] = True  # shorter than a clip: no start
    assert clip_starts(mask, length=8, stride=4).tolist() == [3, 7, 11, 15]


def test_threshold_mapping_puts_the_threshold_on_one_half():
    p = np.array([[0.0, 0.0], [0.2, 0.2], [0.3, 0.9], [1.0, 1.0]])
    q = _calibrate(p, np.array([0.2, 1.5]))
    assert q[1, 0] == pytest.approx(0.5) and q[0, 0] == 0.0 and q[3, 0] == pytest.approx(1.0)
    assert (np.diff(q, axis=0) >= 0).all() and (q[:, 1] < 0.5).all()  # NEVER: never reaches 0.5


def test_learns_a_separable_signal_well_above_the_constant(rng):
    x, y = toy(rng)
    mask = np.zeros(len(x), bool)
    mask[:300] = True
    lab = ClipHeadLabeller(FAST).fit([x], [y], [mask])
    pred = lab.predict([x])[0]
    truth = y[300:, 0] > 0.5
    const = ConstantLabeller("always").fit([x], [y], [mask]).predict([x])[0]
    assert f1(const[300:, 0], truth) < 0.7 and f1(pred[300:, 0], truth) >= 0.85
    # The class never present in the annotations is never predicted.
    assert lab.thresholds[1] > 1 and not pred[:, 1].any()
    probs = lab.predict_proba([x])[0]
    assert probs.shape == x[:, :2].shape and ((probs >= 0) & (probs <= 1)).all()
    # A sequence shorter than a clip is padded, not refused.
    assert lab.predict_proba([x[:5]])[0].shape == (5, 2)


def test_errors_are_one_line(rng):
    x, y = toy(rng, t=40)
    with pytest.raises(ParameterError, match="not trained yet"):
        ClipHeadLabeller().predict_proba([x])
    with pytest.raises(ParameterError, match="no run of 16 annotated frames"):
        ClipHeadLabeller(FAST).fit([x], [y], [np.arange(40) % 2 == 0])
    with pytest.raises(ParameterError, match="folds"):
        ClipHeadLabeller(folds=1)
    with pytest.raises(ModelError, match="cannot be read"):
        ClipHeadLabeller.from_state({"settings": {}}, {})


def test_registered_and_stored_in_a_frame_model_folder(rng, tmp_path):
    assert "cliphead" in default_candidates(fps=25.0, lightgbm=False)
    x, y = toy(rng)
    tr = FrameTracks(values={"flow": x}, names={"flow": ["a", "b"]}, times=np.arange(len(x)) / 10.0, fps=10.0,
                     detection={"flow": 1.0}, meta={"video": "toy"})
    mask = np.zeros(len(x), bool)
    mask[:300] = True
    lab = train_frame_labeller([tr], [y], [mask], classes=["burst", "none"], sets=("all",),
                               candidates={"cliphead": lambda: ClipHeadLabeller(FAST, folds=2)})
    assert lab.selection.best["burst"]["model"] == "cliphead" and lab.status["burst"] == "model"
    doc = save_frame_model(tmp_path / "m", lab, {"tracks": {"names": ["flow"]}})
    assert [m["labeller"]["kind"] for m in doc["models"] if m["model"] == "cliphead"] == ["cliphead"]
    assert {p.suffix for p in (tmp_path / "m").iterdir()} <= {".json", ".safetensors"}  # no pickle
    back = load_frame_model(tmp_path / "m")
    p0, d0 = lab.label([tr])
    p1, d1 = back.labeller.label([tr])
    assert np.array_equal(p1[0], p0[0]) and np.array_equal(d1[0], d0[0])


def test_label_cli_with_a_model_that_chose_the_clip_head(tmp_path, capsys):
    events = {"Wave": [(0.5, 1.7), (3.0, 4.4), (5.5, 6.6), (8.0, 9.2), (10.6, 11.8), (13.0, 14.2)],
              "Nod": [(1.0, 2.2), (3.8, 5.0), (6.5, 7.6), (8.8, 9.8), (11.2, 12.4), (14.0, 15.1)]}
    data = tmp_path / "data"
    data.mkdir()
    video = write_video(data / "perf.mp4", 16.0, events)
    write_eaf(AnnotationSet(tiers={k: Tier(k, [Annotation(s, e, k) for s, e in iv if e <= 10.0])
                                   for k, iv in events.items()}), data / "perf.eaf", media=video)
    model, out = tmp_path / "model", tmp_path / "out"
    assert main(["train", f"{video}={data / 'perf.eaf'}", "-o", str(model), "--labeller", "frame", "--until", "10",
                 "--tracks", "flow,grid", "--sets", "all", "--candidates", "cliphead", "-q"]) == 0
    assert "cliphead/all" in capsys.readouterr().out
    doc = json.loads((model / "workflow.json").read_text())
    assert doc["candidates"] == ["cliphead"] and doc["status"] == {"Wave": "model", "Nod": "model"}
    assert main(["label", str(video), "-m", str(model), "-o", str(out), "--from", "10", "-q"]) == 0
    labelled = read_eaf(out / "perf.eaf")
    pred = [(a.start, a.end) for a in labelled["auto: Wave"].annotations]
    assert any(s < 11.8 and e > 10.6 for s, e in pred) and any(s < 14.2 and e > 13.0 for s, e in pred)
    assert json.loads((out / "perf.labels.json").read_text())["labeller"] == "frame"
