"""Execution engines for batch runs: a local process pool (default) and a Ray cluster.

A batch run is a :class:`Job` (what to do with one video; picklable, so it can travel to a
worker process or a Ray actor) applied to many videos. The job's :meth:`Job.setup` runs once per
worker (it loads the model); :meth:`Job.run` then handles one video and returns a small JSON-able
dict. An engine only moves work and results; the retry, run-state and progress logic is in
:func:`run_batch`, the same for every engine, so the engines give identical outputs.

* :class:`LocalEngine` uses a :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn``
  start method (fork would copy a parent's torch threads and locks into the children).
* :class:`RayEngine` creates ``workers`` Ray actors, each holding the loaded model, with
  ``num_cpus``/``num_gpus`` declared per actor, and feeds them one video at a time.

A worker that raises for a video reports the error instead of dying (the error is one line:
type and message); a worker that dies (a segfault in a decoder, an out-of-memory kill) loses its
video, which counts as a failed attempt, and is replaced. Local workers die with their driver
(:func:`musicperf._util.die_with_parent`): a driver killed with SIGKILL leaves no orphans. SIGTERM
is handled like Ctrl-C (workers stopped, lock released, the run resumable).

Imports only the standard library at module level; ``ray`` is imported when a
:class:`RayEngine` starts.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from musicperf.errors import ParameterError, require

log = logging.getLogger(__name__)


class Job(Protocol):
    """What to do with one video. Must be picklable (plain attributes only)."""

    task: str

    def setup(self) -> None:
        """Load what every video needs (the model); called once per worker before any :meth:`run`."""

    def run(self, video: str) -> dict:
        """Process one video; return ``{"outputs": {name: path}, ...}``; raise on failure."""

    def outputs(self, video: str) -> dict[str, str]:
        """The final output paths of ``video`` (used to find leftovers of a killed run)."""

    def finished(self, video: str) -> dict | None:
        """The result of an earlier complete, readable run for ``video``, or None."""


@dataclass
class Outcome:
    """What came back for one video from a worker."""

    video: str
    ok: bool
    result: dict | None = None
    error: str | None = None
    seconds: float = 0.0
    worker: str = ""


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _attempt(job: Job, video: str) -> Outcome:
    """Run ``job`` on one video in a worker and turn an exception into a one-line error."""
    t0 = time.perf_counter()
    try:
        result = job.run(video)
    except Exception as exc:  # noqa: BLE001 - any failure of one video must not stop the others
        return Outcome(video, False, error=_one_line(exc), seconds=time.perf_counter() - t0, worker=_worker_name())
    return Outcome(video, True, result=result, seconds=time.perf_counter() - t0, worker=_worker_name())


class Engine(Protocol):
    """Runs a job over videos and yields outcomes as they finish (in any order)."""

    name: str
    workers: int

    def __enter__(self) -> Engine: ...

    def __exit__(self, *exc) -> None: ...

    def submit(self, video: str) -> None:
        """Queue one video."""

    def results(self) -> Iterator[Outcome]:
        """Yield the outcome of each queued video as it finishes; more may be submitted meanwhile."""

    def in_flight(self) -> int:
        """Videos queued or running."""


# --------------------------------------------------------------------------- local
_JOB: Job | None = None
_SETUP_ERROR: str | None = None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else repr(exc)}"


def _init_local_worker(job: Job, parent_pid: int | None = None) -> None:
    global _JOB, _SETUP_ERROR
    from musicperf._util import die_with_parent

    # A driver killed with SIGKILL cannot shut its pool down: the workers end with it instead
    # of running on as orphans holding a model each.
    die_with_parent(parent_pid)
    _JOB = job
    try:
        job.setup()
    except Exception as exc:  # noqa: BLE001 - reported with every video instead of breaking the pool
        _SETUP_ERROR = _one_line(exc)


def _run_local(video: str) -> Outcome:
    if _SETUP_ERROR is not None or _JOB is None:
        return Outcome(video, False, error=f"worker set-up failed: {_SETUP_ERROR}", worker=_worker_name())
    return _attempt(_JOB, video)


class LocalEngine:
    """A pool of ``workers`` processes on this machine (``spawn`` start method).

    Parameters
    ----------
    job : Job
    workers : int, optional
        Processes; default ``os.cpu_count()``. The model is loaded once per process.
    threads : int
        Torch/BLAS threads per worker (1 by default: the pool, not the threads, uses the cores).
    """

    name = "local"

    def __init__(self, job: Job, *, workers: int | None = None, threads: int = 1):
        if workers is not None and workers < 1:
            raise ParameterError(f"--workers must be at least 1, got {workers}")
        self.job = job
        self.workers = int(workers or os.cpu_count() or 1)
        self.threads = int(threads)
        self._pool = None
        self._futures: dict = {}  # Future -> video, at most `workers` of them
        self._queue: list[str] = []
        self._suspects: list[str] = []

    def _start(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # Children read these when torch / numpy load; set before the pool spawns them.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(var, str(self.threads))
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_local_worker, initargs=(self.job, os.getpid()))

    def __enter__(self) -> LocalEngine:
        self._start()
        return self

    def __exit__(self, exc_type=None, *exc) -> None:
        if self._pool is None:
            return
        if exc_type is not None:
            # Interrupted (Ctrl-C, SIGTERM) or failed: the videos in flight are abandoned (they
            # stay pending in the run state and are redone by the next run), so their workers are
            # stopped now rather than waited for.
            self._kill_workers()
            self._pool.shutdown(wait=False, cancel_futures=True)
        else:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None

    def _kill_workers(self, timeout: float = 5.0) -> None:
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        for p in procs:
            if p.is_alive():
                p.kill()
        deadline = time.monotonic() + timeout
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))

    def submit(self, video: str) -> None:
        self._queue.append(video)

    def in_flight(self) -> int:
        return len(self._futures) + len(self._queue) + len(self._suspects)

    def _fill(self) -> None:
        # At most `workers` videos are handed to the pool at a time, so a worker that dies takes
        # at most the videos running beside it, never the whole queue. After such a death the
        # videos that were running are suspects: each is rerun alone, and only one that kills
        # its worker while alone is charged with the attempt.
        if self._suspects:
            if not self._futures:
                self._submit(self._suspects)
            return
        while self._queue and len(self._futures) < self.workers:
            if not self._submit(self._queue):
                return

    def _submit(self, waiting: list[str]) -> bool:
        """Hand the first of ``waiting`` to the pool; False (video kept) when the pool is broken."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            fut = self._pool.submit(_run_local, waiting[0])
        except BrokenProcessPool:
            # A worker died after the last wait(): the futures in flight will report it. With none
            # in flight there is nobody to blame; start a new pool and let the next fill retry.
            if not self._futures:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._start()
            return False
        self._futures[fut] = waiting.pop(0)
        return True

    def results(self) -> Iterator[Outcome]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        while self._queue or self._suspects or self._futures:
            self._fill()
            done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
            outcomes, broken = [], False
            for fut in done:
                try:
                    outcomes.append(fut.result())
                    self._futures.pop(fut)
                except BrokenProcessPool:
                    broken = True
            if broken:
                lost = list(self._futures.values())  # every video the dead pool held
                self._futures.clear()
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._start()
                if len(lost) == 1:
                    outcomes.append(Outcome(lost[0], False, error="WorkerDied: the worker process died while "
                                            "handling this video (crash or out of memory)"))
                else:
                    log.warning("a worker process died running one of %d videos; rerunning them one at a time",
                                len(lost))
                    self._suspects.extend(lost)
            yield from outcomes


# --------------------------------------------------------------------------- ray
class _RayWorker:
    """The body of a Ray actor: holds a set-up job (the loaded model) for its lifetime."""

    def __init__(self, job: Job):
        self.job = job
        self.setup_error = None
        try:
            job.setup()
        except Exception as exc:  # noqa: BLE001 - reported with every video instead of killing the actor
            self.setup_error = _one_line(exc)

    def run(self, video: str) -> Outcome:
        if self.setup_error is not None:
            return Outcome(video, False, error=f"worker set-up failed: {self.setup_error}", worker=_worker_name())
        return _attempt(self.job, video)

    def ping(self) -> str:
        return _worker_name()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on an unreachable ``HOST:PORT`` / ``ray://HOST:PORT`` (ray.init would retry for
    minutes before saying so)."""
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ParameterError(f"--address '{address}' is not 'auto', 'HOST:PORT' or 'ray://HOST:PORT'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ParameterError(f"cannot reach a Ray cluster at '{address}' ({exc.strerror or exc}); "
                             "is 'ray start --head' running there?") from None


class RayEngine:
    """``workers`` Ray actors, each with the loaded model, fed one video at a time.

    Parameters
    ----------
    job : Job
    address : str, optional
        Cluster to join: ``"auto"`` (the cluster this machine belongs to, started with
        ``ray start``; when none runs, a local instance is started), ``"ray://host:10001"``
        (Ray Client) or ``"host:6379"``. None: start a local Ray instance with ``workers`` CPUs
        (or use the one already running in this process, e.g. in tests).
    workers : int, optional
        Actors. Default, and at most: as many as the cluster's CPUs (and GPUs) allow at
        ``num_cpus`` (``num_gpus``) each; more could never all be scheduled.
    num_cpus, num_gpus : float
        Resources declared per actor (one video runs at a time per actor), e.g. ``num_gpus=1``
        or 0.5 to pack two actors per GPU.
    """

    name = "ray"

    def __init__(self, job: Job, *, address: str | None = None, workers: int | None = None,
                 num_cpus: float = 1.0, num_gpus: float = 0.0):
        if workers is not None and workers < 1:
            raise ParameterError(f"--workers must be at least 1, got {workers}")
        if num_cpus <= 0 or num_gpus < 0:
            raise ParameterError(f"num_cpus must be > 0 and num_gpus >= 0, got {num_cpus} and {num_gpus}")
        self.job = job
        self.address = address
        self.workers = workers
        self.num_cpus = float(num_cpus)
        self.num_gpus = float(num_gpus)
        self._ray = None
        self._started_here = False
        self._idle: list = []
        self._pending: dict = {}  # ObjectRef -> (video, actor)
        self._queue: list[str] = []
        self._cls = None

    def __enter__(self) -> RayEngine:
        ray = require("ray", extra="distributed", purpose="--engine ray")
        self._ray = ray
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True}
            if self.address and self.address != "auto":
                _check_reachable(self.address)
            if self.address:
                kwargs["address"] = self.address
            elif self.workers:
                kwargs["num_cpus"] = max(1, int(self.workers * self.num_cpus + 0.999))
            try:
                ray.init(**kwargs)
            except ConnectionError as exc:
                if self.address != "auto":
                    raise ParameterError(f"cannot reach a Ray cluster at '{self.address}': {exc}") from None
                # 'auto' on a machine that is not part of a cluster: run on this machine alone.
                log.warning("no running Ray cluster found for --address auto; starting a local Ray instance")
                kwargs.pop("address")
                if self.workers:
                    kwargs["num_cpus"] = max(1, int(self.workers * self.num_cpus + 0.999))
                ray.init(**kwargs)
            self._started_here = True
        res = ray.cluster_resources()
        if self.num_gpus > 0 and res.get("GPU", 0.0) < self.num_gpus:
            raise ParameterError(f"the Ray cluster has no GPU for --gpus-per-worker {self.num_gpus:g}")
        capacity = int(res.get("CPU", 1.0) // self.num_cpus)
        if self.num_gpus > 0:
            capacity = min(capacity, int(res.get("GPU", 0.0) // self.num_gpus))
        if capacity < 1:
            raise ParameterError(f"the Ray cluster has {res.get('CPU', 0):g} CPUs, fewer than --cpus-per-worker "
                                 f"{self.num_cpus:g}")
        if self.workers is None:
            self.workers = capacity
        elif self.workers > capacity:
            # Actors beyond the cluster's resources would wait forever for a place, with a video each.
            log.warning("the Ray cluster has room for %d workers, not %d: using %d", capacity, self.workers, capacity)
            self.workers = capacity
        self._cls = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus)(_RayWorker)
        self._idle = [self._new_actor() for _ in range(self.workers)]
        return self

    def _new_actor(self):
        return self._cls.options(max_restarts=0).remote(self.job)

    def __exit__(self, *exc) -> None:
        ray = self._ray
        if ray is None:
            return
        for actor in self._idle + [a for _, a in self._pending.values()]:
            ray.kill(actor)  # also ends a video still running on it (an interrupted run)
        self._idle, self._pending, self._queue = [], {}, []
        if self._started_here:
            ray.shutdown()

    def submit(self, video: str) -> None:
        self._queue.append(video)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            actor = self._idle.pop()
            video = self._queue.pop(0)
            self._pending[actor.run.remote(video)] = (video, actor)

    def in_flight(self) -> int:
        return len(self._queue) + len(self._pending)

    def results(self) -> Iterator[Outcome]:
        ray = self._ray
        while self._pending or self._queue:
            self._dispatch()
            ready, _ = ray.wait(list(self._pending), num_returns=1)
            for ref in ready:
                video, actor = self._pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    # The actor died (crash, OOM kill, node lost): its video failed this attempt.
                    log.warning("Ray worker died on '%s': %s", video, str(exc).splitlines()[0])
                    actor = self._new_actor()
                    outcome = Outcome(video, False, error="WorkerDied: the Ray worker died while handling this video")
                except ray.exceptions.RayError as exc:
                    outcome = Outcome(video, False, error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
                self._idle.append(actor)
                yield outcome


# --------------------------------------------------------------------------- the run loop
@dataclass
class Progress:
    """Counts of a running batch, passed to the progress callback after every outcome."""

    done: int
    failed: int
    remaining: int
    skipped: int
    elapsed: float  # seconds since the run started
    processed: int  # videos finished (done or failed) by this run

    @property
    def throughput(self) -> float:
        """Videos per minute finished by this run (skipped ones excluded)."""
        return 60.0 * self.processed / self.elapsed if self.elapsed > 0 else 0.0

    def line(self) -> str:
        return (f"{self.done} done, {self.failed} failed, {self.remaining} remaining"
                f"{f' ({self.skipped} skipped as done)' if self.skipped else ''}; "
                f"{self.throughput:.1f} videos/min")


class _sigterm_as_interrupt:
    """While a batch runs in the main thread, SIGTERM (``kill``, a scheduler's stop) raises
    ``KeyboardInterrupt`` as Ctrl-C does: the workers are stopped, the run lock released and the
    run state left as it was after the last finished video, so that a rerun resumes. Elsewhere
    (another thread, a handler already set by the application) it changes nothing."""

    def __enter__(self):
        import signal
        import threading

        self._old = None
        if threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                    self._old = signal.signal(signal.SIGTERM, self._raise)
            except (ValueError, OSError):  # pragma: no cover - no signals here
                self._old = None
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def __exit__(self, *exc) -> None:
        import signal

        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def make_engine(name: str, job: Job, *, address: str | None = None, workers: int | None = None,
                num_cpus: float = 1.0, num_gpus: float = 0.0):
    """Build the engine named ``"local"`` or ``"ray"``."""
    if name == "local":
        if address:
            raise ParameterError("--address is for --engine ray; the local engine runs on this machine")
        if num_gpus:
            raise ParameterError("--gpus-per-worker is for --engine ray")
        return LocalEngine(job, workers=workers)
    if name == "ray":
        return RayEngine(job, address=address, workers=workers, num_cpus=num_cpus, num_gpus=num_gpus)
    raise ParameterError(f"engine must be 'local' or 'ray', got {name!r}")


def run_batch(
    job: Job,
    videos: Sequence[str | Path],
    out_dir: str | Path,
    *,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    retries: int = 1,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    key: str = "",
    overwrite: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
) -> dict:
    """Apply ``job`` to every video, resumably: the core of ``label``/``extract --engine``.

    1. Take the run lock of ``out_dir``; read its run state (``musicperf-run.json``, or an
       older run's ``musicperf-manifest.json``).
    2. Videos recorded as done whose outputs still pass :meth:`Job.finished` are skipped; so are
       pending ones whose outputs are complete (a run killed after writing them but before
       recording them); temporary files left by a killed run are removed.
    3. The rest go to the engine. An attempt that fails is retried up to ``retries`` times;
       then the video is recorded as failed with its error in ``musicperf-failures.json`` and
       the others go on. The run state is rewritten atomically after every outcome.

    Parameters
    ----------
    job : Job
    videos : sequence of str or Path
        Distinct video files (their output names must differ).
    out_dir : str or Path
    engine : {"local", "ray"}
    address, workers, num_cpus, num_gpus
        See :class:`RayEngine` and :class:`LocalEngine`.
    retries : int
        Extra attempts after a failure (0: one attempt only).
    key : str
        What the outputs depend on (e.g. the model id); a run state with another key is ignored.
    overwrite : bool
        Redo every video.
    on_progress : callable, optional
        Called with a :class:`Progress` after every outcome (the CLI prints it).

    Returns
    -------
    dict
        ``counts`` (done/failed/pending), ``skipped``, ``processed``, ``seconds``,
        ``throughput`` (videos/min), ``failures`` (list of ``{video, attempts, error}``),
        ``results`` (video -> result dict of this run), ``run_state`` (path; also under
        its old key ``manifest``).
    """
    from musicperf.distributed.runstate import DONE, FAILED, PENDING, RunLock, RunState, stale_temporaries

    if retries < 0:
        raise ParameterError(f"--retries must be >= 0, got {retries}")
    videos = [str(v) for v in videos]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with _sigterm_as_interrupt(), RunLock(out_dir):
        state = RunState.open(out_dir, videos, task=job.task, key=key)
        # The run's own state files are written atomically too: a kill during a save leaves
        # '.musicperf-run.<random>.json' (or the failures report's) beside the outputs.
        own = [state.path, state.legacy_path, state.failures_path]
        leftovers = stale_temporaries(out_dir, [o for v in videos for o in job.outputs(v).values()] + own)
        for f in leftovers:
            log.info("removing '%s', left half-written by an interrupted run", f)
            f.unlink(missing_ok=True)
        skipped = 0
        todo = []
        for v in videos:
            rec = state.record(v)
            earlier = None if overwrite else job.finished(v)
            if earlier is not None:
                if rec.state != DONE:
                    state.mark_done(v, outputs=earlier.get("outputs", job.outputs(v)), seconds=None)
                skipped += 1
            else:
                rec.state, rec.attempts, rec.error = PENDING, 0, None
                todo.append(v)
        state.save()
        results: dict[str, dict] = {}
        processed = 0

        def report():
            if on_progress is not None:
                c = state.counts(videos)
                on_progress(Progress(done=c[DONE], failed=c[FAILED], remaining=c[PENDING], skipped=skipped,
                                     elapsed=time.perf_counter() - t0, processed=processed))

        report()
        if todo:
            with make_engine(engine, job, address=address, workers=workers, num_cpus=num_cpus,
                             num_gpus=num_gpus) as eng:
                for v in todo:
                    eng.submit(v)
                for outcome in eng.results():
                    if outcome.ok:
                        state.mark_done(outcome.video, outputs=outcome.result.get("outputs", {}),
                                           seconds=round(outcome.seconds, 3), worker=outcome.worker)
                        results[outcome.video] = outcome.result
                        processed += 1
                    elif state.mark_attempt_failed(outcome.video, outcome.error, retries=retries,
                                                      seconds=round(outcome.seconds, 3), worker=outcome.worker):
                        log.warning("'%s' failed (%s); retrying", outcome.video, outcome.error)
                        eng.submit(outcome.video)
                    else:
                        log.warning("'%s' failed after %d attempt(s): %s", outcome.video,
                                    state.record(outcome.video).attempts, outcome.error)
                        processed += 1
                    state.save()
                    report()
        counts = state.counts(videos)
        seconds = time.perf_counter() - t0
        failures = [{"video": r.video, "attempts": r.attempts, "error": r.error}
                    for r in (state.record(v) for v in videos) if r.state == FAILED]
        return {
            "counts": counts,
            "skipped": skipped,
            "processed": processed,
            "seconds": round(seconds, 3),
            "throughput": round(60.0 * processed / seconds, 3) if seconds > 0 else 0.0,
            "failures": failures,
            "results": results,
            "run_state": str(state.path),
            "manifest": str(state.path),  # the old key, kept for callers written before the rename
            "failures_report": str(state.failures_path) if failures else None,
            "engine": engine,
        }
