"""Distributed training: two gloo processes give the one-process result.

* the per-rank loss shares add up to the batch loss (MSE, BCE, DBB of Equations 1-3 of 001);
* ``musicperf train --distributed`` under torchrun (2 gloo processes, DDP) writes the model that
  ``train`` writes in one process: head weights within 1e-5, the same thresholds (which come
  from the cross-validation heads, also trained with DDP: 3 DDP fits in all).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from musicperf.distributed.ddp import batch_slice, partial_loss, shard  # noqa: E402
from musicperf.tasks.gestures import GestureConfig  # noqa: E402
from musicperf.train import losses  # noqa: E402

#: Largest absolute weight difference accepted between 2-process and 1-process training: the
#: only difference is the order of floating-point additions (per-rank sums, then all-reduce).
TOL = 1e-5


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


def test_train_distributed_under_torchrun_writes_the_single_process_model(tmp_path):
    from _workflow_video import write_performance

    from musicperf import api

    video, eaf, _ = write_performance(tmp_path / "data", "perf", 6.0, seed=2)
    cfg = GestureConfig(size=(32, 40), grid=4, epochs=8, hidden=(16, 8), dropout=0.0, train_stride=4, folds=2,
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
