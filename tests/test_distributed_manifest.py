"""Run state, failures report, run lock, leftovers of killed runs, and ``extract`` outputs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _workflow_video import write_performance  # noqa: E402

from musicperf.distributed.runstate import (  # noqa: E402
    FAILURES_NAME, LEGACY_RUN_STATE_NAME, LOCK_NAME, RUN_STATE_NAME, RunLock, RunState, stale_temporaries,
)
from musicperf.errors import DecodeError, ParameterError  # noqa: E402


def test_run_state_counts_retries_and_failures_report(tmp_path):
    m = RunState.open(tmp_path, ["a.mp4", "b.mp4", "c.mp4"], task="label", key="m1")
    m.mark_done("a.mp4", outputs={"eaf": "a.eaf"}, seconds=1.0)
    assert m.mark_attempt_failed("b.mp4", "DecodeError: bad", retries=1) is True  # may retry
    assert m.mark_attempt_failed("b.mp4", "DecodeError: bad", retries=1) is False  # now failed
    m.save()
    assert m.counts() == {"pending": 1, "done": 1, "failed": 1}
    report = json.loads((tmp_path / FAILURES_NAME).read_text())
    assert report["failures"] == [{"video": "b.mp4", "attempts": 2, "error": "DecodeError: bad"}]
    # Reopened by a rerun: done stays done, failed is tried again from zero attempts.
    again = RunState.open(tmp_path, ["a.mp4", "b.mp4", "c.mp4"], task="label", key="m1")
    assert again.record("a.mp4").state == "done" and again.record("b.mp4").state == "pending"
    assert again.record("b.mp4").attempts == 0
    # Another model: the old records say nothing about these outputs.
    other = RunState.open(tmp_path, ["a.mp4"], task="label", key="m2")
    assert other.record("a.mp4").state == "pending"
    # Nothing failed any more: the report goes away.
    again.mark_done("b.mp4", outputs={}, seconds=0.5)
    again.save()
    assert not (tmp_path / FAILURES_NAME).exists()
    assert json.loads((tmp_path / RUN_STATE_NAME).read_text())["counts"]["done"] == 2


def test_unreadable_run_state_is_a_one_line_error(tmp_path):
    (tmp_path / RUN_STATE_NAME).write_text('{"items": [')
    with pytest.raises(ParameterError, match="unreadable.*delete it"):
        RunState.open(tmp_path, ["a.mp4"], task="label", key="k")


def test_an_older_runs_manifest_file_is_read_then_replaced(tmp_path):
    old = RunState.open(tmp_path, ["a.mp4", "b.mp4"], task="label", key="m1")
    old.mark_done("a.mp4", outputs={"eaf": "a.eaf"}, seconds=1.5, worker="w1")
    old.save()
    # What a folder written before the rename looks like: the same document, the old name.
    (tmp_path / RUN_STATE_NAME).rename(tmp_path / LEGACY_RUN_STATE_NAME)
    again = RunState.open(tmp_path, ["a.mp4", "b.mp4"], task="label", key="m1")
    assert again.record("a.mp4").state == "done" and again.record("a.mp4").worker == "w1"
    again.save()
    assert (tmp_path / RUN_STATE_NAME).is_file() and not (tmp_path / LEGACY_RUN_STATE_NAME).exists()
    (tmp_path / LEGACY_RUN_STATE_NAME).write_text('{"items": [')  # a stray old file: the new one wins
    assert RunState.open(tmp_path, ["a.mp4"], task="label", key="m1").record("a.mp4").state == "done"


def test_the_old_module_name_still_imports():
    from musicperf.distributed import manifest

    assert manifest.Manifest is RunState and manifest.MANIFEST_NAME == RUN_STATE_NAME
    assert manifest.LEGACY_RUN_STATE_NAME == "musicperf-manifest.json"


def test_run_lock_excludes_a_live_run_and_takes_over_a_dead_one(tmp_path):
    import socket
    import subprocess

    with RunLock(tmp_path):
        with pytest.raises(ParameterError, match="in use by another run"):
            with RunLock(tmp_path):
                pass
    assert not (tmp_path / LOCK_NAME).exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(f"{socket.gethostname()} {dead.pid}\n")
    with RunLock(tmp_path) as lock:
        assert (tmp_path / LOCK_NAME).read_text().split()[1] == str(os.getpid())
    assert not (tmp_path / LOCK_NAME).exists() and lock


def test_stale_temporaries_are_those_of_atomic_path(tmp_path):
    from musicperf._util import atomic_path

    class Killed(Exception):
        pass

    # What atomic_path leaves when its process dies between writing and renaming.
    with pytest.raises(Killed), atomic_path(tmp_path / "v0.eaf") as tmp:
        tmp.write_text("half")
        keep = tmp.with_name(tmp.name + ".copy")
        os.link(tmp, keep)
        raise Killed
    left = tmp_path / keep.name[: -len(".copy")]
    os.rename(keep, left)
    (tmp_path / ".hidden").write_text("x")
    (tmp_path / "v0.probs.csv").write_text("x")
    (tmp_path / ".v1.abc.eaf").write_text("x")  # another video's
    found = stale_temporaries(tmp_path, [tmp_path / "v0.eaf", tmp_path / "v0.probs.csv"])
    assert found == [left]


def test_extracted_features_give_the_training_samples(tmp_path):
    """extract (config settings, train stride, --until) then the DDP trainer's reader: the same
    features and targets as the workflow's own collect_samples."""
    from musicperf.distributed.ddp import _samples_from_features
    from musicperf.distributed.extract import check_features, extract_batch, features_path, load_features
    from musicperf.tasks import gestures

    video, eaf, _ = write_performance(tmp_path / "data", "perf", 4.0, seed=5)
    bad = tmp_path / "data" / "broken.mp4"
    bad.write_bytes(video.read_bytes()[:3000])  # truncated
    cfg = gestures.GestureConfig(size=(32, 40), grid=4, roi="full")
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg.to_dict()))
    out = tmp_path / "features"
    summary = extract_batch([str(video), str(bad)], out, config=tmp_path / "cfg.yaml", until=3.0, workers=1,
                            retries=0)
    assert summary["counts"] == {"done": 1, "failed": 1, "pending": 0}
    assert "broken.mp4" in summary["failures"][0]["video"]
    assert not features_path(out, bad).exists()
    check_features(features_path(out, video))
    arrays, meta = load_features(features_path(out, video))
    assert meta["stride"] == cfg.train_stride and meta["until"] == 3.0 and meta["roi"] == [0.0, 1.0, 0.0, 1.0]

    item = gestures.Item(video, eaf)
    tax = gestures.merged_taxonomy([gestures.read_annotations(eaf)], cfg, None)
    extractor = gestures.FeatureExtractor(cfg)
    ref = gestures.collect_samples(item, tax, extractor, fps=25.0, until=3.0, stride=cfg.train_stride)
    got = _samples_from_features(item, tax, extractor, arrays, fps=25.0)
    np.testing.assert_array_equal(got.starts, ref.starts)
    np.testing.assert_allclose(got.features, ref.features, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(got.targets, ref.targets)
    # A rerun with the same settings does nothing; the broken one is tried again.
    again = extract_batch([str(video)], out, config=tmp_path / "cfg.yaml", until=3.0, workers=1)
    assert again["skipped"] == 1 and again["processed"] == 0


def test_damaged_features_file_is_not_readable(tmp_path):
    from musicperf.distributed.extract import check_features, save_features

    p = tmp_path / "x.features.npz"
    save_features(p, {"starts": np.arange(3), "clips": np.ones((2, 4), np.float32)}, {"grid": 4})
    with pytest.raises(DecodeError, match="incomplete"):
        check_features(p)
    p.write_bytes(p.read_bytes()[:50])
    with pytest.raises(DecodeError, match="not a readable"):
        check_features(p)


def test_extract_real_files_reports_the_unusable_ones(shared_data, tmp_path):
    """Real files: a damaged mp4 that still decodes in part is done; two clips shorter than one
    16-frame sample are reported with the reason, and leave no output."""
    from musicperf.distributed.extract import check_features, extract_batch, features_path

    vids = [shared_data / "video" / n for n in ("decord_corrupted.mp4", "decord_video_90.mov", "decord_unordered.mov")]
    summary = extract_batch([str(v) for v in vids], tmp_path, workers=1, retries=0)
    assert summary["counts"] == {"done": 1, "failed": 2, "pending": 0}
    check_features(features_path(tmp_path, vids[0]))
    assert sorted(Path(f["video"]).name for f in summary["failures"]) == ["decord_unordered.mov", "decord_video_90.mov"]
    assert all("no complete 16-frame clip" in f["error"] for f in summary["failures"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "decord_corrupted.features.npz", "musicperf-failures.json", "musicperf-run.json"]
