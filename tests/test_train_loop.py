"""Training loop: a tiny end-to-end training beats a constant predictor; fixed seeds give
identical metrics; an interrupted run resumes exactly; early stopping keeps the best epoch;
conv4 activations are cached once and give the same outputs as clips."""

import numpy as np
import pytest
import torch

from _models_synth import TensorPairs, one_thread, square_clips
from musicperf.errors import ParameterError
from musicperf.evaluate.metrics import multilabel_report
from musicperf.models import GestureNet, build_backbone
from musicperf.train.cache import CachedFeatureDataset, FeatureCache, compute_conv4
from musicperf.train.loop import TrainConfig, fit, predict


@pytest.fixture(autouse=True, scope="module")
def _threads():
    with one_thread():
        yield


def _net(trainable="all", seed=0, design="single", **kw):
    torch.manual_seed(seed)
    bb = build_backbone("resnet10", widths=(4, 8, 8, 16), n_classes=0)
    return GestureNet(bb, 2, design=design, hidden=(16, 16, 16), dropout=0.1, trainable=trainable,
                      normalization="hara2020", variant="100+50", **kw)


@pytest.fixture(scope="module")
def data():
    xt, yt = square_clips(72, frames=8, size=24, seed=1)
    xv, yv = square_clips(30, frames=8, size=24, seed=2)
    return xt, yt, xv, yv


@pytest.fixture(scope="module")
def cached(data, tmp_path_factory):
    """conv4 activations of a frozen random trunk, through the cache."""
    xt, yt, xv, yv = data
    net = _net("conv5")
    cache = FeatureCache(tmp_path_factory.mktemp("cache"), net)
    ft = cache.features("train", np.arange(len(xt)), lambda idx: xt[idx])
    fv = cache.features("val", np.arange(len(xv)), lambda idx: xv[idx])
    return net, CachedFeatureDataset(ft, yt), CachedFeatureDataset(fv, yv)


def test_tiny_end_to_end_training_beats_constant_predictor(data):
    xt, yt, xv, yv = data
    net = _net("all")
    cfg = TrainConfig(epochs=12, batch_size=16, lr=1e-2, weight_decay=1e-4, patience=None, seed=0)
    res = fit(net, TensorPairs(xt, yt), TensorPairs(xv, yv), cfg, progress=False)
    _, scores, y = predict(net, TensorPairs(xv, yv))
    f1 = multilabel_report(y, scores)["macro"]["f1"]
    # the best constant predictor ("always present") scores 2p / (1 + p) per class
    p = yv.mean(axis=0)
    constant = float(np.mean(2 * p / (1 + p)))
    assert f1 == pytest.approx(res.best_metric)
    assert f1 > constant + 0.15, (f1, constant, res.history)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]


def test_cache_computes_once_and_matches_clips(data, cached, tmp_path):
    xt, yt, xv, yv = data
    net, train_ds, _ = cached
    cache = FeatureCache(tmp_path, net)
    first = cache.features("v", [5, 1, 3], lambda idx: xt[idx])
    calls = []
    again = cache.features("v", [3, 5], lambda idx: calls.append(idx) or xt[idx])
    assert not calls and torch.equal(again, first[[2, 0]])
    more = cache.features("v", [2, 3], lambda idx: calls.append(idx.tolist()) or xt[idx])
    assert calls == [[2]] and torch.equal(more[1], first[2])
    assert first.dtype == torch.float16
    with torch.no_grad():
        exact = net.eval().conv4(xt[[5, 1, 3]])
        from_clips = net(xt[:4])
        net.input_stage = "conv4"
        from_cache = net(train_ds.features[:4].float())
        net.input_stage = "clips"
    assert torch.allclose(first.float(), exact, rtol=2e-3, atol=2e-3)
    assert torch.allclose(from_cache, from_clips, rtol=1e-2, atol=1e-2)
    # another trunk (other weights) never reads these activations
    assert FeatureCache(tmp_path, _net("conv5", seed=1)).key != cache.key
    assert compute_conv4(net, xt[:2]).shape == first[:2].shape


def _conv4_net(cached, design="single"):
    net = _net("conv5", design=design)  # same seed, so the same trunk as the one that filled the cache
    net.input_stage = "conv4"
    return net


def test_fixed_seed_identical_metrics(cached):
    _, tr, va = cached
    cfg = TrainConfig(epochs=3, batch_size=16, patience=None, dbb=True, class_weighted=True, seed=7)
    a = fit(_conv4_net(cached), tr, va, cfg, progress=False)
    b = fit(_conv4_net(cached), tr, va, cfg, progress=False)
    assert a.history and [{k: v for k, v in h.items() if k != "seconds"} for h in a.history] == \
        [{k: v for k, v in h.items() if k != "seconds"} for h in b.history]
    assert all(torch.equal(a.best_state[k], b.best_state[k]) for k in a.best_state)


def test_resume_after_interruption_is_exact(cached, tmp_path):
    _, tr, va = cached
    cfg = TrainConfig(epochs=4, batch_size=16, patience=None, seed=3)
    straight = _conv4_net(cached)
    r_straight = fit(straight, tr, va, cfg, progress=False, restore_best=False)
    interrupted = _conv4_net(cached)
    fit(interrupted, tr, va, TrainConfig(**{**cfg.to_dict(), "epochs": 2}), checkpoint_dir=tmp_path, progress=False)
    resumed = _conv4_net(cached)  # a fresh process: new model, state from the checkpoint
    r_resumed = fit(resumed, tr, va, cfg, checkpoint_dir=tmp_path, progress=False, restore_best=False)
    assert len(r_resumed.history) == 4
    strip = lambda hs: [{k: v for k, v in h.items() if k != "seconds"} for h in hs]  # noqa: E731
    assert strip(r_resumed.history) == strip(r_straight.history)
    sd_a, sd_b = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    assert r_resumed.best_epoch == r_straight.best_epoch
    with pytest.raises(ParameterError, match="different configuration"):
        fit(_conv4_net(cached), tr, va, TrainConfig(**{**cfg.to_dict(), "lr": 0.5}), checkpoint_dir=tmp_path, progress=False)


def test_early_stopping_restores_best_epoch(cached):
    _, tr, va = cached
    net = _conv4_net(cached)
    cfg = TrainConfig(epochs=30, batch_size=16, patience=2, lr=5e-2, monitor="val_loss", seed=1)
    res = fit(net, tr, va, cfg, progress=False)
    losses = [h["val_loss"] for h in res.history]
    assert res.best_epoch == int(np.argmin(losses)) + 1
    assert res.stopped_early == (len(res.history) < 30)
    if res.stopped_early:
        assert len(res.history) == res.best_epoch + 2
    assert all(torch.equal(net.state_dict()[k], res.best_state[k]) for k in res.best_state)


def test_per_class_design_trains_with_dbb(cached):
    _, tr, va = cached
    net = _conv4_net(cached, design="per_class")
    res = fit(net, tr, va, TrainConfig(epochs=2, batch_size=16, dbb=True, patience=None), progress=False)
    assert len(res.history) == 2 and np.isfinite(res.history[-1]["train_loss"])


def test_config_validation():
    with pytest.raises(ParameterError, match="extends DBB"):
        TrainConfig(class_weighted=True)
    with pytest.raises(ParameterError):
        TrainConfig(lr=0)
    cfg = TrainConfig()
    assert (cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.loss) == (1e-3, 1e-2, 32, "mse")


def test_without_validation_keeps_last_epoch(cached):
    _, tr, _ = cached
    net = _conv4_net(cached)
    res = fit(net, tr, None, TrainConfig(epochs=2, batch_size=32, patience=3), progress=False)
    assert res.best_epoch == 2 and not res.stopped_early and np.isnan(res.history[-1]["val_f1"])


def test_compute_conv4_channels_last_same_values(data):
    xt = data[0][:3]
    net = _net("conv5")
    a = compute_conv4(net, xt, channels_last=True)
    b = compute_conv4(net, xt, channels_last=False)
    assert torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-3)
    assert all(p.is_contiguous() for p in net.parameters())
    with pytest.raises(ParameterError, match="clips must be"):
        compute_conv4(net, xt[0])
