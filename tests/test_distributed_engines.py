"""Batch labelling on the local process pool and on Ray: identical outputs, failures reported,
resumable after a kill, nothing half-written.

Six tiny synthetic videos (4 s, 64 x 80, tests/_workflow_video.py), one of them corrupt, and a
model trained once on an 8 s performance. A local Ray instance with 2 CPUs is started once for
the module.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _engine_jobs import TxtJob  # noqa: E402
from _workflow_video import schedule, write_performance, write_video  # noqa: E402

from musicperf.distributed.engine import run_batch  # noqa: E402
from musicperf.distributed.label import label_batch  # noqa: E402
from musicperf.distributed.runstate import FAILURES_NAME, LEGACY_RUN_STATE_NAME, RUN_STATE_NAME  # noqa: E402
from musicperf.tasks.gestures import GestureConfig  # noqa: E402

CFG = GestureConfig(size=(32, 40), grid=4, epochs=10, hidden=(32, 16), train_stride=4, folds=2, roi="full")
GOOD = [f"v{i}" for i in range(5)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from musicperf import api

    root = tmp_path_factory.mktemp("corpus")
    video, eaf, _ = write_performance(root / "train", "perf", 6.0, seed=1)
    model = root / "model"
    api.train([f"{video}={eaf}"], model, config=CFG)
    vids = root / "videos"
    vids.mkdir()
    rng = np.random.default_rng(7)
    for i, name in enumerate(GOOD):
        write_video(vids / f"{name}.mp4", 4.0, schedule(4.0, np.random.default_rng(i)))
    # The corrupt one: an mp4 header followed by garbage.
    bad = vids / "v5_corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x20ftypisom" + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return {"root": root, "model": model, "videos": vids, "bad": bad,
            "good": [vids / f"{n}.mp4" for n in GOOD]}


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def serial(corpus):
    """Reference outputs: the ordinary one-by-one label command on the five good videos."""
    from musicperf import api

    out = corpus["root"] / "serial"
    api.label([str(v) for v in corpus["good"]], corpus["model"], out)
    return out


@pytest.fixture(scope="module")
def local_run(corpus):
    out = corpus["root"] / "local"
    seen = []
    summary = label_batch([str(corpus["videos"])], corpus["model"], out, engine="local", workers=2, retries=1,
                          on_progress=seen.append)
    return out, summary, seen


def _eaf_text(path: Path) -> str:
    # The EAF header carries the writing time; everything else must be identical.
    return re.sub(r'DATE="[^"]*"', 'DATE=""', path.read_text(encoding="utf-8"))


def _json(path: Path) -> dict:
    d = json.loads(path.read_text(encoding="utf-8"))
    for k in ("seconds", "outputs"):
        d.pop(k)
    d["written"].pop("eaf")  # the hash of the EAF, whose header carries the writing time
    return d


def _same_outputs(a: Path, b: Path) -> None:
    for name in GOOD:
        assert _eaf_text(a / f"{name}.eaf") == _eaf_text(b / f"{name}.eaf")
        assert (a / f"{name}.probs.csv").read_bytes() == (b / f"{name}.probs.csv").read_bytes()
        assert _json(a / f"{name}.labels.json") == _json(b / f"{name}.labels.json")


def _no_leftovers(out: Path, *, failed: str = "v5_corrupt") -> None:
    hidden = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert hidden == [], f"temporary files or lock left behind: {hidden}"
    assert not list(out.glob(f"{failed}.*")), "the failed video left outputs"


def test_local_engine_labels_five_and_reports_the_corrupt_one(corpus, serial, local_run):
    out, summary, seen = local_run
    assert summary["counts"] == {"done": 5, "failed": 1, "pending": 0}
    assert summary["processed"] == 6 and summary["skipped"] == 0
    (fail,) = summary["failures"]
    assert fail["video"].endswith("v5_corrupt.mp4") and fail["attempts"] == 2  # first try + 1 retry
    assert "DecodeError" in fail["error"] or "corrupt" in fail["error"].lower()
    report = json.loads((out / FAILURES_NAME).read_text())
    assert report["n_failed"] == 1 and report["failures"][0]["error"] == fail["error"]
    state = json.loads((out / RUN_STATE_NAME).read_text())
    assert state["counts"] == {"pending": 0, "done": 5, "failed": 1}
    _same_outputs(out, serial)
    _no_leftovers(out)
    # Progress after every outcome: done + failed + remaining is always the six videos.
    assert seen[-1].done == 5 and seen[-1].failed == 1 and seen[-1].remaining == 0
    assert all(p.done + p.failed + p.remaining == 6 for p in seen)
    assert seen[-1].throughput > 0


def test_ray_engine_gives_the_local_outputs(corpus, local_run, ray_session):
    out = corpus["root"] / "ray"
    summary = label_batch([str(corpus["videos"])], corpus["model"], out, engine="ray", workers=2, retries=0)
    assert summary["counts"] == {"done": 5, "failed": 1, "pending": 0}
    (fail,) = summary["failures"]
    assert fail["video"].endswith("v5_corrupt.mp4") and fail["attempts"] == 1
    assert "DecodeError" in fail["error"]
    _same_outputs(out, local_run[0])
    _no_leftovers(out)
    workers = {r["worker"] for r in json.loads((out / RUN_STATE_NAME).read_text())["items"].values() if r["worker"]}
    assert len(workers) >= 1


def _complete(out: Path) -> list[str]:
    """Stems of the videos whose ``.labels.json`` says complete."""
    done = []
    for p in out.glob("*.labels.json"):
        try:
            if json.loads(p.read_text(encoding="utf-8")).get("complete") is True:
                done.append(p.name[: -len(".labels.json")])
        except (OSError, ValueError):
            pass  # being renamed into place
    return sorted(done)


def test_killed_run_resumes_without_redoing_finished_videos(corpus, serial):
    out = corpus["root"] / "killed"
    cmd = [sys.executable, "-m", "musicperf", "label", *map(str, corpus["good"]), str(corpus["bad"]),
           "-m", str(corpus["model"]), "-o", str(out), "--engine", "local", "--workers", "1", "--retries", "0", "-q"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, env=env)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if _complete(out):
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole run: driver and pool workers, no clean-up
        proc.wait()
    # A summary marked incomplete is the sidecar of a video being written when it was killed.
    finished = _complete(out)
    assert 1 <= len(finished) < 5
    stamps = {p: (p.stat().st_ino, p.stat().st_mtime_ns)
              for s in finished for p in (out / f"{s}.eaf", out / f"{s}.probs.csv", out / f"{s}.labels.json")}
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 1, rerun.stderr[-800:]  # 1: some video failed
    assert f"5 done ({len(finished)} already done before), 1 failed, 0 remaining" in rerun.stdout
    assert "failed: " + str(corpus["bad"]) + " after 1 attempt(s): DecodeError" in rerun.stdout
    assert (out / FAILURES_NAME).is_file()
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in stamps} == stamps  # not redone
    _same_outputs(out, serial)
    _no_leftovers(out)


def test_worker_exception_is_retried_then_reported(tmp_path):
    job = _Flaky(str(tmp_path))
    summary = run_batch(job, ["a", "b"], tmp_path, engine="local", workers=1, retries=2, key="k")
    assert summary["counts"] == {"done": 1, "failed": 1, "pending": 0}
    assert summary["failures"][0]["attempts"] == 3
    assert summary["failures"][0]["error"] == "RuntimeError: cannot handle b"


def test_a_folder_of_an_older_run_resumes_from_its_manifest_file(tmp_path, monkeypatch):
    """Runs before the rename kept their state in musicperf-manifest.json: a rerun reads it (the
    finished video keeps its record), goes on with the rest and keeps the state under the new name."""
    from musicperf.distributed.runstate import video_key

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("ok")
    record = {"video": "a", "state": "done", "attempts": 0, "error": None,
              "outputs": {"txt": str(out / "a.txt")}, "seconds": 1.5, "worker": "old-host:1"}
    (out / LEGACY_RUN_STATE_NAME).write_text(json.dumps(
        {"format": "musicperf-run-manifest", "format_version": 1, "task": "flaky", "key": "k",
         "items": {video_key("a"): record}}))
    summary = run_batch(_Flaky(str(out)), ["a", "c"], out, engine="local", workers=1, retries=0, key="k")
    assert summary["skipped"] == 1 and summary["processed"] == 1
    assert summary["counts"] == {"done": 2, "failed": 0, "pending": 0}
    assert summary["run_state"] == summary["manifest"] == str(out / RUN_STATE_NAME)
    assert not (out / LEGACY_RUN_STATE_NAME).exists()
    items = json.loads((out / RUN_STATE_NAME).read_text())["items"]
    assert items[video_key("a")]["worker"] == "old-host:1" and items[video_key("a")]["seconds"] == 1.5
    assert items[video_key("c")]["state"] == "done"


def test_bad_engine_options(tmp_path, corpus):
    from musicperf.errors import ParameterError

    with pytest.raises(ParameterError, match="engine must be"):
        run_batch(_Flaky(str(tmp_path)), ["a"], tmp_path, engine="spark")
    with pytest.raises(ParameterError, match="--retries"):
        run_batch(_Flaky(str(tmp_path)), ["a"], tmp_path, retries=-1)
    with pytest.raises(ParameterError, match="--address is for --engine ray"):
        label_batch([str(corpus["good"][0])], corpus["model"], tmp_path / "x", engine="local", address="auto")


class _Flaky(TxtJob):
    """A job that writes ``<name>.txt`` for every video but 'b', which always raises."""

    task = "flaky"

    def run(self, video: str) -> dict:
        if video == "b":
            raise RuntimeError(f"cannot handle {video}\nsecond line dropped")
        Path(self.outputs(video)["txt"]).write_text("ok")
        return {"outputs": self.outputs(video)}


def test_a_worker_that_cannot_set_up_fails_every_video_with_its_reason(tmp_path):
    summary = run_batch(_BrokenSetup(str(tmp_path)), ["a", "b"], tmp_path, engine="local", workers=1, retries=1)
    assert summary["counts"] == {"done": 0, "failed": 2, "pending": 0}
    assert {f["error"] for f in summary["failures"]} == {"worker set-up failed: ModelError: weights unreadable"}


class _BrokenSetup(_Flaky):
    def setup(self) -> None:
        from musicperf.errors import ModelError

        raise ModelError("weights unreadable")


def test_a_worker_that_dies_loses_only_an_attempt(tmp_path):
    # 'crash' kills its worker process outright (as a segfault in a decoder would); the pool is
    # rebuilt, 'crash' is reported after its retries and the other videos are done.
    summary = run_batch(_Crashing(str(tmp_path)), ["a", "crash", "c", "d"], tmp_path, engine="local", workers=2,
                        retries=2, key="k")
    assert summary["counts"] == {"done": 3, "failed": 1, "pending": 0}
    (fail,) = summary["failures"]  # the videos running beside it were not charged
    assert fail["video"].endswith("crash") and fail["attempts"] == 3 and fail["error"].startswith("WorkerDied")


class _Crashing(_Flaky):
    def run(self, video: str) -> dict:
        if video == "crash":
            os._exit(3)
        return super().run(video)


def test_labels_of_another_model_are_not_replaced_without_overwrite(tmp_path, corpus, local_run):
    from musicperf.errors import ParameterError

    out = tmp_path / "out"
    out.mkdir()
    src = local_run[0] / "v0.labels.json"
    summary = json.loads(src.read_text())
    summary["model_id"] = "another-model"
    summary["model"] = str(tmp_path / "another-model")  # another folder (the same folder retrained is relabelled)
    (out / "v0.labels.json").write_text(json.dumps(summary))
    with pytest.raises(ParameterError, match="another model.*--overwrite"):
        label_batch([str(corpus["good"][0])], corpus["model"], out, engine="local", workers=1)
    assert json.loads((out / "v0.labels.json").read_text())["model_id"] == "another-model"


def test_unreachable_ray_address_fails_fast(tmp_path):
    from musicperf.distributed.engine import _check_reachable
    from musicperf.errors import ParameterError

    with pytest.raises(ParameterError, match="cannot reach a Ray cluster at '127.0.0.1:1'"):
        _check_reachable("127.0.0.1:1", timeout=2)
    with pytest.raises(ParameterError, match="is not 'auto', 'HOST:PORT'"):
        _check_reachable("nonsense")
