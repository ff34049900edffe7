"""Temporal models over landmark feature windows: every model forward/backward, and a tiny
training on synthetic truth key points that beats a constant predictor."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny models: threads cost more than they give on a shared machine

from musicperf.errors import ParameterError  # noqa: E402
from musicperf.models.temporal import TEMPORAL_MODELS, build_temporal_model, model_config  # noqa: E402


@pytest.mark.parametrize("name", sorted(TEMPORAL_MODELS))
def test_every_model_forward_backward_and_rebuild(name):
    kw = {"n_temporal": 6, "n_other": 4} if name == "fusion" else {"n_features": 10}
    m = build_temporal_model(name, n_classes=3, hidden=8, **kw)
    x = torch.randn(5, 16, 10, requires_grad=True)
    out = m(x)
    assert out.shape == (5, 3)
    out.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in m.parameters() if p.requires_grad)
    cfg = model_config(m)
    again = build_temporal_model(cfg.pop("name"), **cfg)
    again.load_state_dict(m.state_dict())
    m.eval(), again.eval()
    torch.testing.assert_close(m(x), again(x))
    # Longer windows work too.
    assert m(torch.randn(2, 40, 10)).shape == (2, 3)


def test_bad_names_and_sizes():
    with pytest.raises(ParameterError, match="unknown temporal model"):
        build_temporal_model("lstm", n_features=3, n_classes=2)
    with pytest.raises(ParameterError, match="kernel"):
        build_temporal_model("tcn", n_features=3, n_classes=2, kernel=4)
    with pytest.raises(ParameterError, match="hyper-parameters"):
        build_temporal_model("gru", n_features=3, n_classes=2, depth=9)


def test_tiny_training_on_synthetic_truth_beats_constant_predictor():
    from musicperf.evaluate.metrics import multilabel_report
    from musicperf.features.landmark_features import feature_matrix, gesture_features
    from musicperf.synth.landmarks import from_truth
    from musicperf.labels import sample_labels, sample_starts
    from musicperf.synth import render
    from musicperf.synth.truth import frame_labels
    from musicperf.tasks.landmark_experiment import predict_windows, train_temporal, windows

    schedule = {"Nodding": [(1.0, 3.0), (9.0, 11.0), (17.0, 19.0)], "Eyes closed": [(4.0, 6.0), (13.0, 15.5)],
                "Expressive shoulder movement": [(6.5, 8.5), (20.0, 22.0)]}
    r = render(seconds=24, seed=5, schedule=schedule)
    classes = ["Nodding", "Eyes closed", "Expressive shoulder movement"]
    from musicperf.synth import LABEL_NAMES

    cols = [list(LABEL_NAMES).index(c) for c in classes]
    labels = frame_labels(r.truth)[:, cols]
    g = gesture_features(from_truth(r.truth, seed=0))
    x, _, _ = feature_matrix(g.values)
    starts = sample_starts(len(labels), length=16, stride=4)
    first, second = starts[starts + 16 <= 300], starts[starts >= 300]  # train on 0-12 s, test 12-24 s
    xw_tr, xw_te = windows(x, first), windows(x, second)
    y_tr = sample_labels(labels, first, length=16, how="ts")
    y_te = sample_labels(labels, second, length=16, how="any")
    net, res = train_temporal(xw_tr, y_tr, model="tcn", model_kwargs={"hidden": 16}, epochs=25, patience=None, seed=0)
    scores = predict_windows(net, xw_te)
    f1 = multilabel_report(y_te, scores, threshold=0.5)["macro"]["f1"]
    const = multilabel_report(y_te, np.tile(y_tr.mean(axis=0) >= 0.5, (len(y_te), 1)).astype(float))["macro"]["f1"]
    ones = multilabel_report(y_te, np.ones_like(y_te))["macro"]["f1"]
    print(f"tiny training: F1 {f1:.3f} vs constant {const:.3f}, all-positive {ones:.3f}")
    assert f1 > max(const, ones) + 0.15, (f1, const, ones)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]


def test_windows_cut_and_check_bounds():
    from musicperf.tasks.landmark_experiment import LandmarkFeatures, windows

    x = np.arange(40, dtype=float).reshape(20, 2)
    w = windows(x, np.array([0, 4]), length=16)
    assert w.shape == (2, 16, 2) and w[1, 0, 0] == 8 and w.dtype == np.float32
    with pytest.raises(ParameterError, match="do not fit"):
        windows(x, np.array([5]), length=16)
    d = LandmarkFeatures().to_dict()
    assert d["name"] == "landmarks" and len(d["features"]) == 32 and "mediapipe" in d["version"]
