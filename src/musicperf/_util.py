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


def describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError`` met while reading or writing: the path, then the reason."""
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else None) or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif exc.errno == errno.EROFS:
        reason = "the file system is read-only"
    name = exc.filename
    if name is not None:
        extra = f" -> '{exc.filename2}'" if getattr(exc, "filename2", None) else ""
        return f"'{os.fsdecode(name)}'{extra}: {reason}"
    return reason
