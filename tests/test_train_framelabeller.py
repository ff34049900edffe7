"""The real-video labeller end to end on hand-built tracks: sets, choice, labels, status, queries."""

from __future__ import annotations

import numpy as np
import pytest

from musicperf.errors import ParameterError
from musicperf.features.tracks import FrameTracks
from musicperf.models.mstcn import MSTCNConfig
from musicperf.train.candidates import MSTCNLabeller
from musicperf.train.framelabeller import feature_sets, train_frame_labeller

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"mstcn": lambda: MSTCNLabeller(MSTCNConfig(stages=2, layers=4, channels=16, epochs=40, lr=1e-2,
                                                   dropout=0.1, input_dropout=0.0), step=1)}


def tracks(rng, t=300):
    y = np.zeros((t, 2), np.float32)
    for s in range(0, t, 50):
        y[s + 5 : s + 30, 0] = 1  # "lifted": visible in the landmark track
    y[:, 1] = rng.random(t) < 0.5  # "noise": no feature shows it
    lm = np.column_stack([y[:, 0] + 0.3 * rng.standard_normal(t), rng.standard_normal(t)])
    flow = rng.standard_normal((t, 3))
    tr = FrameTracks(values={"landmarks": lm.astype(np.float32), "flow": flow.astype(np.float32),
                             "audio": np.zeros((t, 1), np.float32)},
                     names={"landmarks": ["a", "b"], "flow": ["f0", "f1", "f2"], "audio": ["rms"]},
                     times=np.arange(t) / 10.0, fps=10.0,
                     detection={"landmarks": 0.9, "flow": 1.0, "audio": 0.0}, meta={"video": "toy.avi"})
    return tr, y


def test_feature_sets_leave_out_unusable_tracks(rng):
    tr, _ = tracks(rng)
    fs, notes = feature_sets([tr], sets=("all", "landmarks", "pixels"))
    assert fs["all"][0].shape == (300, 5) and fs["landmarks"][0].shape == (300, 2) and fs["pixels"][0].shape == (300, 3)
    assert any("'audio' left out" in n for n in notes)
    with pytest.raises(ParameterError, match="unknown feature set"):
        feature_sets([tr], sets=("everything",))


def test_learnable_class_gets_the_model_and_noise_the_constant(rng):
    tr, y = tracks(rng)
    mask = np.zeros(len(y), bool)
    mask[:200] = True
    lab = train_frame_labeller([tr], [y], [mask], classes=["lifted", "noise"], sets=("landmarks", "pixels"),
                               candidates=TINY, n_folds=3)
    assert lab.status == {"lifted": "model", "noise": "constant"}
    assert lab.selection.best["lifted"]["features"] == "landmarks"
    probs, active = lab.label([tr])
    assert ((active[0][200:, 0]) == (y[200:, 0] > 0.5)).mean() > 0.85
    assert active[0][:, 1].all() or not active[0][:, 1].any()  # a constant
    text = lab.summary()
    assert "noise: not learnable" in text and "lifted: mstcn on 'landmarks'" in text
    q = lab.query(probs[0], n=2, length=2.0, annotated=mask)
    assert len(q) == 2 and all(s >= 20.0 for s, _, _ in q)
