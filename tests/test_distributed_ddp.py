"""Distributed training: two gloo processes give the one-process result.

* the per-rank loss shares add up to the batch loss (MSE, BCE, DBB of Equations 1-3 of 001);
* ``fit_head_distributed`` on 2 processes (torch.multiprocessing.spawn, gloo) ends with the
  weights of :func:`musicperf.tasks.gestures.fit_head` on one, within 1e-5;
* ``musicperf train --distributed`` under torchrun (2 processes) writes the model ``train`` writes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from musicperf.distributed.ddp import batch_slice, partial_loss, shard  # noqa: E402
from musicperf.tasks.gestures import WorkflowConfig, fit_head  # noqa: E402
from musicperf.train import losses  # noqa: E402

#: Largest absolute weight difference accepted between 2-process and 1-process training: the
#: only difference is the order of floating-point additions (per-rank sums, then all-reduce).
TOL = 1e-5


def _data(rng, n=90, f=12, k=3):
    X = rng.normal(size=(n, f)).astype(np.float32)
    Y = (rng.random((n, k)) < np.array([0.5, 0.15, 0.0])).astype(np.float32)  # one class never positive
    Y[:, 0] = np.clip(Y[:, 0] * rng.uniform(0.6, 1.0, n), 0, 1)  # soft targets (Eq. 6 style)
    return X, Y


@pytest.mark.parametrize("name", ["dbb", "mse", "bce"])
def test_shares_add_up_to_the_batch_loss(rng, name):
    logits = torch.from_numpy(rng.normal(size=(13, 4)).astype(np.float32))
    y = torch.from_numpy((rng.random((13, 4)) < [0.5, 0.1, 0.0, 0.9]).astype(np.float32))
    full = {"dbb": losses.dbb_loss, "mse": losses.mse_loss, "bce": losses.bce_loss}[name](logits, y)
    parts = [partial_loss(name, logits[s], y[s], global_size=13, global_pos=(y >= 0.5).sum(0))
             for s in np.array_split(np.arange(13), 3)]
    assert torch.isclose(sum(parts), full, rtol=1e-6, atol=1e-7)


def test_shards_and_slices_cover_everything_once():
    assert sorted(np.concatenate([shard(7, r, 3) for r in range(3)]).tolist()) == list(range(7))
    batch = np.arange(10, 15)
    assert np.concatenate([batch_slice(batch, r, 2) for r in range(2)]).tolist() == batch.tolist()
    assert len(batch_slice(np.arange(1), 1, 2)) == 0  # a rank may get nothing in a last small batch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, X, Y, cfgs, out):
    import torch.distributed as dist

    from musicperf.distributed.ddp import fit_head_distributed

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        results = {}
        for name, cfg in cfgs.items():
            head, history = fit_head_distributed(X, Y, cfg, n_classes=Y.shape[1])
            results[name] = {"state": head.state_dict(), "history": history}
        torch.save(results, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_match_one(rng, tmp_path):
    import torch.multiprocessing as mp

    X, Y = _data(rng)
    # 90 samples in batches of 16: the last batch (10) splits 5/5; dropout 0 so masks cannot differ.
    cfgs = {loss: WorkflowConfig(epochs=6, batch_size=16, hidden=(16, 8), dropout=0.0, loss=loss, lr=5e-3)
            for loss in ("dbb", "mse")}
    out = tmp_path / "ddp.pt"
    mp.spawn(_ddp_worker, args=(2, _free_port(), X, Y, cfgs, str(out)), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    for loss, cfg in cfgs.items():
        head, history = fit_head(X, Y, cfg, n_classes=Y.shape[1])
        ref = head.state_dict()
        for ddp in ranks:  # both replicas, not only rank 0
            worst = max(float((ref[k] - ddp[loss]["state"][k]).abs().max()) for k in ref)
            assert worst < TOL, f"{loss}: 2-process weights differ by {worst:g}"
            np.testing.assert_allclose(ddp[loss]["history"], history, rtol=1e-5)
        assert history[-1] < history[0]  # it trained: equal weights prove something


def test_train_distributed_under_torchrun_writes_the_single_process_model(tmp_path):
    from _workflow_video import write_performance

    from musicperf import api

    video, eaf, _ = write_performance(tmp_path / "data", "perf", 6.0, seed=2)
    cfg = WorkflowConfig(size=(32, 40), grid=4, epochs=8, hidden=(16, 8), dropout=0.0, train_stride=4, folds=2,
                         roi="full")
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg.to_dict()))  # JSON is YAML
    single = api.train([f"{video}={eaf}"], tmp_path / "one", config=cfg)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "musicperf",
           "train", f"{video}={eaf}", "-o", str(tmp_path / "two"), "--config", str(tmp_path / "cfg.yaml"),
           "--distributed", "--backend", "gloo", "-q"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0, run.stderr[-1500:]
    assert "model written to" in run.stdout
    two = json.loads((tmp_path / "two" / "workflow.json").read_text())
    assert two["training"]["distributed"]["world_size"] == 2
    assert two["classes"] == single["classes"]
    np.testing.assert_allclose(two["thresholds"], single["thresholds"], atol=1e-6)
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "one" / "head.safetensors")), load_file(str(tmp_path / "two" / "head.safetensors"))
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < TOL
