"""Worker processes end with their driver; SIGTERM leaves a batch run resumable.

The driver runs in its own session (start_new_session) so that only it is signalled; its pool
workers are found in /proc (psutil is not a dependency). Each test takes a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from musicperf.distributed.runstate import LOCK_NAME

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"

DRIVER = """
import json, sys
from musicperf.distributed.engine import run_batch
from _engine_jobs import SleepyJob
out, workers, videos = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
try:
    s = run_batch(SleepyJob(out), videos, out, engine="local", workers=workers, retries=0, key="k")
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
print(json.dumps({"counts": s["counts"], "skipped": s["skipped"]}), flush=True)
"""


def _env(**extra) -> dict:
    path = os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1", **extra)


def _start(out: Path, workers: int, videos: str, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(out), str(workers), videos], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env=_env(**env))


def _alive(pid: int) -> bool:
    """Running (a zombie that nobody reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pool_workers(driver: int) -> list[int]:
    """The driver's children that are multiprocessing workers (not its resource tracker)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == driver and b"spawn_main" in cmd:
            found.append(int(d.name))
    return found


def _wait_started(out: Path, n: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list(out.glob("*.started"))) >= n:
            return
        assert proc.poll() is None, f"the driver ended early: {proc.stderr.read()[-800:]}"
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} videos started within {timeout} s")


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_sigkill_of_the_driver_ends_its_pool_workers(tmp_path):
    out = tmp_path / "out"
    proc = _start(out, 2, "b,c,d")
    workers: list[int] = []
    try:
        _wait_started(out, 2, proc)
        workers = _pool_workers(proc.pid)
        assert len(workers) == 2, workers
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: nothing can shut the pool down
        proc.wait(10)
        assert _wait_gone(workers, 5.0) == [], "pool workers outlived their driver"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for p in workers:  # only if the test failed: no orphan left behind by the test itself
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_sigterm_stops_the_run_and_the_rerun_resumes(tmp_path):
    out = tmp_path / "out"
    proc = _start(out, 1, "a,b,c")
    workers: list[int] = []
    try:
        _wait_started(out, 2, proc)  # 'a' is done, 'b' is sleeping in the worker
        assert (out / "a.txt").is_file()
        workers = _pool_workers(proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for p in workers:
            if _alive(p) and proc.returncode != 130:
                os.kill(p, signal.SIGKILL)
    assert proc.returncode == 130, stderr[-800:]
    assert "interrupted" in stdout
    assert _wait_gone(workers, 5.0) == []
    assert not (out / LOCK_NAME).exists(), "the run lock was not released"
    state = json.loads((out / "musicperf-run.json").read_text())
    assert "a" in json.dumps(state)
    # The rerun skips 'a' and finishes the others.
    rerun = _start(out, 1, "a,b,c", SLEEPY_SECONDS="0")
    stdout, stderr = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, stderr[-800:]
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary == {"counts": {"done": 3, "failed": 0, "pending": 0}, "skipped": 1}


def test_die_with_parent_ends_a_child_whose_parent_is_killed(tmp_path):
    # The MediaPipe stretch workers use the same helper: parent -> child -> die_with_parent.
    code = ("import os, sys, subprocess, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import os, time; from musicperf._util import "
            "die_with_parent; die_with_parent(%d); time.sleep(60)' % os.getpid()])\n"
            "print(child.pid, flush=True); time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              start_new_session=True, env=_env())
    try:
        child = int(parent.stdout.readline())
        time.sleep(1.0)  # let the child reach die_with_parent
        assert _alive(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        assert _wait_gone([child], 5.0) == []
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
