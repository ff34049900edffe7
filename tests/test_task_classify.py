"""The softmax training loop of the single-label tasks (tasks._classify.fit_classifier): exact
resume from its per-epoch checkpoint, refusal of a checkpoint written for other settings or
data, and training from per-video arrays on disk (RowSource) without concatenating them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from musicperf.errors import ParameterError
from musicperf.tasks._classify import STATE_FILE, RowSource, fit_classifier
from musicperf.train.loop import TrainConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(rng, n=60, d=6):
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    return x, y


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))


def _noise(xs):
    # augmentation drawing from torch's global generator (reseeded every epoch)
    return [xs[0] + 0.1 * torch.randn_like(xs[0])]


def _strip(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x, y = _data(rng)
    xv, yv = _data(rng, 20)
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(xv), torch.from_numpy(yv)


def test_resume_after_interruption_is_exact(data, tmp_path):
    x, y, xv, yv = data
    cfg = TrainConfig(epochs=6, batch_size=16, lr=1e-2, weight_decay=1e-4, patience=None, seed=3)
    straight = _net()
    h_straight = fit_classifier(straight, x, y, xv, yv, cfg, augment=_noise)
    # "interrupted" after 2 epochs: a run whose configuration stops there, checkpointing
    ckpt = tmp_path / STATE_FILE
    first = fit_classifier(_net(), x, y, xv, yv, TrainConfig(**{**cfg.to_dict(), "epochs": 2}), augment=_noise,
                           checkpoint=ckpt)
    assert ckpt.is_file() and len(first.history) == 2 and first.resumed_from == 0
    resumed = _net(seed=99)            # a fresh process: other initial weights, state from the file
    h_resumed = fit_classifier(resumed, x, y, xv, yv, cfg, augment=_noise, checkpoint=ckpt)
    assert h_resumed.resumed_from == 2 and len(h_resumed.history) == 6
    assert _strip(h_resumed.history) == _strip(h_straight.history)
    assert h_resumed.best_epoch == h_straight.best_epoch
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)       # bit-identical selected weights
    # a finished run resumes to the same model without training again
    again = _net(seed=5)
    h_again = fit_classifier(again, x, y, xv, yv, cfg, augment=_noise, checkpoint=ckpt)
    assert h_again.resumed_from == 6 and all(torch.equal(a[k], again.state_dict()[k]) for k in a)


def test_resume_keeps_early_stopping_state(data, tmp_path):
    x, y, xv, yv = data
    cfg = TrainConfig(epochs=40, batch_size=16, lr=5e-2, weight_decay=0.0, patience=3, seed=1)
    h_straight = fit_classifier(_net(), x, y, xv, yv, cfg)
    assert h_straight.stopped_early and len(h_straight.history) < 40
    stop_at = len(h_straight.history)
    ckpt = tmp_path / "s.safetensors"
    fit_classifier(_net(), x, y, xv, yv, TrainConfig(**{**cfg.to_dict(), "epochs": stop_at - 1}), checkpoint=ckpt)
    h = fit_classifier(_net(), x, y, xv, yv, cfg, checkpoint=ckpt)
    assert h.stopped_early and _strip(h.history) == _strip(h_straight.history)
    assert h.best_epoch == h_straight.best_epoch


def test_checkpoint_for_other_settings_or_data_is_refused(data, tmp_path):
    x, y, xv, yv = data
    cfg = TrainConfig(epochs=1, batch_size=16, patience=None)
    ckpt = tmp_path / STATE_FILE
    fit_classifier(_net(), x, y, None, None, cfg, checkpoint=ckpt)
    with pytest.raises(ParameterError, match="different configuration.*lr"):
        fit_classifier(_net(), x, y, None, None, TrainConfig(**{**cfg.to_dict(), "lr": 0.5}), checkpoint=ckpt)
    with pytest.raises(ParameterError, match="other training data"):
        fit_classifier(_net(), x, 1 - y.clamp(max=1), None, None, cfg, checkpoint=ckpt)
    with pytest.raises(ParameterError, match="other training data"):
        fit_classifier(_net(), x, y, None, None, cfg, checkpoint=ckpt, data_id="other videos")
    with pytest.raises(ParameterError, match="other training data"):   # same shapes and labels, other values
        fit_classifier(_net(), x + 1, y, None, None, cfg, checkpoint=ckpt)
    h = fit_classifier(_net(), x, y, None, None, cfg, checkpoint=ckpt, resume=False)   # starts over
    assert h.resumed_from == 0


def test_row_source_on_disk_trains_like_tensors(data, tmp_path):
    x, y, xv, yv = data
    parts = [x[:7], x[7:30], x[30:]]                     # three "videos"
    paths = []
    for i, p in enumerate(parts):
        paths.append(tmp_path / f"v{i}.npy")
        np.save(paths[-1], p.numpy())
    src = RowSource(paths)
    assert len(src) == 60 and src.shape == (60, 6) and src.dtype == np.float32
    idx = np.array([59, 0, 8, 7, 6, 30])
    np.testing.assert_array_equal(src[idx], x.numpy()[idx])
    assert RowSource(parts)[torch.tensor([3, 40])].shape == (2, 6)
    with pytest.raises(IndexError):
        src[np.array([60])]
    with pytest.raises(ParameterError, match="trailing shape"):
        RowSource([np.zeros((2, 6), np.float32), np.zeros((2, 5), np.float32)])
    cfg = TrainConfig(epochs=3, batch_size=16, patience=None, seed=2)
    a, b = _net(), _net()
    fit_classifier(a, x, y, RowSource([xv]), yv, cfg)
    fit_classifier(b, src, y, xv.numpy(), yv, cfg)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
