"""The state of a batch run: which inputs are done, which failed and why, and a run lock.

A batch run (``musicperf label|extract --engine ...``) keeps, in its output folder:

``musicperf-run.json``
    The run state: one record per input (keyed by the video's absolute path): ``state`` (``"pending"``,
    ``"done"`` or ``"failed"``), ``attempts``, the last ``error``, the ``outputs`` written and the
    seconds the last attempt took. Rewritten atomically (temporary name, then rename) after
    every finished attempt, so a killed run leaves the last consistent state behind. Folders
    written before this name was chosen hold the same document as ``musicperf-manifest.json``:
    it is read when ``musicperf-run.json`` is absent (so those runs resume) and removed once the
    state is saved under the new name. ("Manifest" now only means the YAML input list of
    :mod:`musicperf.io.discover`.)
``musicperf-failures.json``
    The inputs that failed after all their retries, each with its error: what a user reads
    after a run. Rewritten atomically at the same time; removed when nothing failed.
``.musicperf-run.lock``
    ``host pid`` of the run that owns the folder, so two runs never write the same outputs at
    once; a lock whose process is gone (a killed run) is taken over.

Only the driver process (the one that runs the engine) writes these files; workers write the
per-video outputs. Imports only the standard library.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from musicperf._util import write_text_atomic
from musicperf.errors import ParameterError

RUN_STATE_NAME = "musicperf-run.json"
LEGACY_RUN_STATE_NAME = "musicperf-manifest.json"  # read (and then replaced) for folders of older runs
FAILURES_NAME = "musicperf-failures.json"
LOCK_NAME = ".musicperf-run.lock"
RUN_STATE_FORMAT = 1

PENDING, DONE, FAILED = "pending", "done", "failed"


@dataclass
class Record:
    """The state of one input of a batch run."""

    video: str
    state: str = PENDING
    attempts: int = 0
    error: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float | None = None
    worker: str | None = None


class RunState:
    """Inputs of a batch run and their state, persisted atomically in ``folder``.

    Parameters
    ----------
    folder : Path
        The run's output folder.
    task : str
        What the run does (``"label"``, ``"extract"``).
    key : str
        What the outputs depend on (a model id, feature settings): records of a run state written
        with another key are reset to pending, since their outputs are not what this run makes.
    """

    def __init__(self, folder: str | Path, *, task: str, key: str):
        self.folder = Path(folder)
        self.task = task
        self.key = key
        self.records: dict[str, Record] = {}
        self.started = time.time()

    @property
    def path(self) -> Path:
        return self.folder / RUN_STATE_NAME

    @property
    def legacy_path(self) -> Path:
        """Where runs before the rename kept their state (read when :attr:`path` is absent)."""
        return self.folder / LEGACY_RUN_STATE_NAME

    @property
    def failures_path(self) -> Path:
        return self.folder / FAILURES_NAME

    # ------------------------------------------------------------------ reading and writing
    @classmethod
    def open(cls, folder: str | Path, videos: Iterable[str | Path], *, task: str, key: str) -> RunState:
        """Read the run state in ``folder`` (if any) and add ``videos`` not yet in it.

        Records of earlier runs that failed are set back to pending with their attempts reset:
        a rerun tries them again. A run state of another task or key is ignored (its records are
        not about these outputs). Without ``musicperf-run.json``, an older run's
        ``musicperf-manifest.json`` is read instead.
        """
        m = cls(folder, task=task, key=key)
        src = m.path if m.path.is_file() else m.legacy_path
        if src.is_file():
            try:
                doc = json.loads(src.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ParameterError(f"run state '{src}' is unreadable ({exc}); delete it to start afresh") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("items"), dict):
                raise ParameterError(f"'{src}' is not a musicperf run state; delete it to start afresh")
            if doc.get("task") == task and doc.get("key") == key:
                names = {f.name for f in dataclasses.fields(Record)}
                for k, r in doc["items"].items():
                    rec = Record(**{n: v for n, v in r.items() if n in names})
                    if rec.state == FAILED:
                        rec.state, rec.attempts = PENDING, 0
                    m.records[k] = rec
        for v in videos:
            k = video_key(v)
            if k not in m.records:
                m.records[k] = Record(video=str(v))
        return m

    def save(self) -> None:
        """Write the run state and the failures report atomically (and drop an older run's
        ``musicperf-manifest.json``, now superseded)."""
        doc = {
            "format": "musicperf-run-state",
            "format_version": RUN_STATE_FORMAT,
            "task": self.task,
            "key": self.key,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "counts": self.counts(),
            "items": {k: dataclasses.asdict(r) for k, r in self.records.items()},
        }
        write_text_atomic(self.path, json.dumps(doc, indent=1))
        self.legacy_path.unlink(missing_ok=True)
        failed = [dataclasses.asdict(r) for r in self.records.values() if r.state == FAILED]
        if failed:
            report = {"task": self.task, "n_failed": len(failed),
                      "failures": [{"video": r["video"], "attempts": r["attempts"], "error": r["error"]} for r in failed]}
            write_text_atomic(self.failures_path, json.dumps(report, indent=1))
        elif self.failures_path.exists():
            self.failures_path.unlink()

    # ------------------------------------------------------------------ state changes
    def record(self, video: str | Path) -> Record:
        return self.records[video_key(video)]

    def mark_done(self, video, *, outputs: dict[str, str], seconds: float | None, worker: str | None = None) -> None:
        r = self.record(video)
        r.state, r.error, r.outputs, r.seconds, r.worker = DONE, None, dict(outputs), seconds, worker

    def mark_attempt_failed(self, video, error: str, *, retries: int, seconds: float | None = None,
                            worker: str | None = None) -> bool:
        """Count a failed attempt; return True when the input may be retried, False when it is
        now recorded as failed (``retries`` retries after the first attempt are used up)."""
        r = self.record(video)
        r.attempts += 1
        r.error, r.seconds, r.worker = error, seconds, worker
        if r.attempts > retries:
            r.state = FAILED
            return False
        r.state = PENDING
        return True

    def counts(self, videos: Iterable[str | Path] | None = None) -> dict[str, int]:
        """Inputs per state: all of the run's, or only those of ``videos``."""
        c = {PENDING: 0, DONE: 0, FAILED: 0}
        recs = self.records.values() if videos is None else (self.record(v) for v in videos)
        for r in recs:
            c[r.state] += 1
        return c

    def pending(self, videos: Iterable[str | Path]) -> list[str]:
        """The given videos whose records are pending, in the given order."""
        return [str(v) for v in videos if self.record(v).state == PENDING]


def video_key(video: str | Path) -> str:
    """The run-state key of a video: its absolute path (not resolved through links, so two
    links to one file are two inputs, as the user listed them)."""
    return str(Path(os.path.abspath(video)))


# --------------------------------------------------------------------------- run lock
class RunLock:
    """An exclusive lock on an output folder, held for the duration of a run (context manager).

    The lock file holds ``host pid``. A lock left by a process that no longer exists on this
    host (a killed run) is taken over; a live one, or one from another host, is an error naming
    the file, since two runs writing the same outputs would race.
    """

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK_NAME
        self.me = f"{socket.gethostname()} {os.getpid()}"

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._stale():
                    self.path.unlink(missing_ok=True)
                    continue
                owner = self.path.read_text(encoding="utf-8", errors="replace").strip()
                raise ParameterError(
                    f"output folder '{self.path.parent}' is in use by another run ({owner}); "
                    f"wait for it, or delete '{self.path}' if that run is gone"
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.me + "\n")
            return self
        raise ParameterError(f"could not take the run lock '{self.path}'")

    def _stale(self) -> bool:
        try:
            host, pid = self.path.read_text(encoding="utf-8").split()
            pid_i = int(pid)
        except (OSError, ValueError):
            return True  # half-written lock: its writer died between create and write
        if host != socket.gethostname():
            return False
        try:
            os.kill(pid_i, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def __exit__(self, *exc) -> None:
        try:
            if self.path.read_text(encoding="utf-8").strip() == self.me:
                self.path.unlink()
        except OSError:
            pass


def stale_temporaries(folder: str | Path, outputs: Iterable[str | Path]) -> list[Path]:
    """Temporary files that :func:`musicperf._util.atomic_path` leaves when its process is killed.

    ``atomic_path(out/name.ext)`` writes ``out/.name.<random>.ext`` and renames it; a process
    killed in between (SIGKILL, power loss) leaves that file. Given the final output paths of a
    run, return the leftovers that belong to them.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = {}
    for o in outputs:
        p = Path(o)
        wanted.setdefault((p.stem, p.suffix), p)
    found = []
    for f in folder.iterdir():
        name = f.name
        if not name.startswith(".") or not f.is_file():
            continue
        for (stem, suffix) in wanted:
            prefix = f".{stem}."
            if name.startswith(prefix) and name.endswith(suffix or ".tmp") and len(name) > len(prefix) + len(suffix):
                middle = name[len(prefix): len(name) - len(suffix or ".tmp")]
                if middle and "." not in middle:  # mkstemp's random part has no dot
                    found.append(f)
                    break
    return found
