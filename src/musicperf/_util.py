"""Small shared helpers: atomic file output. Imports only the standard library."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A crash or exception leaves any earlier ``path`` untouched and no half-written file.
    The temporary name keeps the suffix so libraries that infer a format from it still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp creates 0600; give the result the permissions an ordinary open() would.
        umask = os.umask(0)
        os.umask(umask)
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def check_output_location(path: str | Path, *, kind: str = "dir", need_bytes: int = 0, what: str = "output") -> Path:
    """Check that ``path`` can be written before any compute is spent; return it as a Path.

    ``kind="dir"``: ``path`` is (or will be created as) a folder; ``kind="file"``: a file whose
    folder must exist or be creatable. Refuses an existing file where a folder is wanted (and
    the reverse), a folder without write permission, a missing ancestor that is a file, and,
    when ``need_bytes`` is given, a file system with less free space than that. Creates nothing.

    Raises
    ------
    musicperf.errors.OutputError
        One line naming the path and the problem.
    """
    from musicperf.errors import OutputError, ParameterError

    if kind not in ("dir", "file"):
        raise ParameterError(f"kind must be 'dir' or 'file', got {kind!r}")
    path = Path(path)
    if kind == "dir" and path.exists() and not path.is_dir():
        raise OutputError(f"{what} folder '{path}' is an existing file")
    if kind == "file" and path.is_dir():
        raise OutputError(f"{what} file '{path}' is an existing folder")
    # The nearest existing ancestor decides whether the missing part can be created.
    probe = path if (kind == "dir" and path.is_dir()) else path.parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OutputError(f"cannot write {what} '{path}': '{probe}' is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {what} '{path}': '{probe}' is not writable")
    if need_bytes > 0:
        try:
            free = shutil.disk_usage(probe).free
        except OSError:
            free = None
        if free is not None and free < need_bytes:
            raise OutputError(f"cannot write {what} '{path}': {free / 1e6:.1f} MB free on its file system, "
                              f"about {need_bytes / 1e6:.1f} MB needed")
    return path


def _os_reason(exc: OSError) -> str:
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else None) or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif exc.errno == errno.EROFS:
        reason = "the file system is read-only"
    return reason.strip().splitlines()[0] if reason.strip() else type(exc).__name__


def describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError`` met while reading or writing: the path, then the reason."""
    reason = _os_reason(exc)
    name = exc.filename
    if name is not None:
        extra = f" -> '{exc.filename2}'" if getattr(exc, "filename2", None) else ""
        return f"'{os.fsdecode(name)}'{extra}: {reason}"
    return reason


# Exceptions that libraries raise for a failed write without deriving from OSError: the
# safetensors writer's (disk full while saving a model or a cache). Matched by name so this
# module keeps importing only the standard library.
_WRITE_ERROR_NAMES = ("SafetensorError",)


# The errnos that always mean "cannot write here", whatever the code was doing: used where a
# block also reads (a training run reads videos while it writes checkpoints).
WRITE_ERRNOS = frozenset(e for e in (errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", None), errno.EFBIG)
                         if e is not None)


@contextlib.contextmanager
def output_errors(path: str | Path, *, what: str = "output", errnos=None):
    """Turn a failure while writing ``path`` into a one-line :class:`~musicperf.errors.OutputError`.

    Catches ``OSError`` (disk full, read-only file system, permission denied, a folder in the
    way; PyAV's ``av.error.OSError`` is one) and safetensors' ``SafetensorError``; the message
    names ``path`` and the reason. An ``OutputError`` raised inside passes through unchanged.
    Use it around the writing only, or give ``errnos`` (e.g. :data:`WRITE_ERRNOS`) to convert
    only those ``OSError``s where the block also reads inputs.
    """
    from musicperf.errors import MusicperfError, OutputError

    try:
        yield
    except MusicperfError:
        raise
    except OSError as exc:
        if errnos is not None and exc.errno not in errnos:
            raise
        err = OutputError(f"cannot write {what} '{path}': {_os_reason(exc)}")
        err.errno = exc.errno
        raise err from None
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is a known write failure
        if type(exc).__name__ not in _WRITE_ERROR_NAMES:
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OutputError(f"cannot write {what} '{path}': {type(exc).__name__}: {text}") from None


def write_all_or_nothing(folder: str | Path, writers: dict, *, what: str = "output") -> list[Path]:
    """Write several files into ``folder`` so that either all of them appear or none does.

    ``writers`` maps each file name (no sub-folders) to a callable that writes that file to the
    path it is given. Every file is first written into a temporary folder inside ``folder``
    (same file system); only when all succeeded are they renamed into place, one ``os.replace``
    each. A failure (disk full, an error in a writer) removes the temporary folder, and
    ``folder`` itself if this call created it, and raises (``OSError`` becomes
    :class:`~musicperf.errors.OutputError` naming the file). Returns the final paths in order.
    """
    folder = Path(folder)
    created = not folder.exists()
    with output_errors(folder, what=f"{what} folder"):
        folder.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".musicperf-partial.", dir=folder))
    try:
        done = []
        for name, write in writers.items():
            if Path(name).name != name:
                raise ValueError(f"write_all_or_nothing takes plain file names, got {name!r}")
            with output_errors(folder / name, what=what):
                write(stage / name)
            done.append(name)
        umask = os.umask(0)
        os.umask(umask)
        final = []
        for name in done:
            with output_errors(folder / name, what=what):
                os.chmod(stage / name, 0o666 & ~umask)
                os.replace(stage / name, folder / name)
            final.append(folder / name)
        return final
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def die_with_parent(parent_pid: int | None = None, *, poll: float = 0.5) -> None:
    """Make this (worker) process end as soon as its parent does, however the parent ended.

    Batch runs start worker processes (a process pool, MediaPipe interpreters) that hold a model
    and hundreds of MB each; a parent killed with SIGKILL cannot stop them, and they would run
    on as orphans. Two mechanisms, so that one suffices:

    * Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills this process when the
      thread that created it ends.
    * Everywhere: a daemon thread that checks every ``poll`` seconds whether this process was
      re-parented (``os.getppid()`` no longer ``parent_pid``) and then exits at once.

    ``parent_pid`` is the parent's pid as the parent saw it (pass ``os.getpid()`` along when
    starting the worker; default ``os.getppid()`` now). A parent already gone ends this process
    here. Call it first thing in the worker.
    """
    import signal
    import sys
    import threading

    parent = int(parent_pid or os.getppid())
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watchdog still runs
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        import time

        while True:
            time.sleep(poll)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="musicperf-die-with-parent", daemon=True).start()
