"""A per-video, per-extractor-version cache of computed features (landmarks, optical flow).

An entry is keyed by the video's identity and by what computed it:

* the video: file size, modification time (ns) and a SHA-256 of its first and last MiB, so a
  re-encoded or edited file never hits an old entry while hashing stays cheap for long videos;
* the extractor: its name, version string and parameters (a JSON-able dict).

Entries are ``.npz`` files (numpy arrays plus one JSON string, never pickles) named
``<video stem>-<extractor>-<key16>.npz`` in the cache folder, written atomically so concurrent
runs and crashes never leave a half-written entry. The default folder is ``$MUSICPERF_CACHE``
or ``features`` in the user cache directory (:func:`user_cache_dir`).

Imports numpy and the standard library only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from musicperf._util import atomic_path
from musicperf.errors import DecodeError, ParameterError

log = logging.getLogger(__name__)

__all__ = ["user_cache_dir", "default_cache_dir", "video_key", "entry_path", "save_arrays", "load_arrays", "cached"]

_MIB = 1 << 20


def user_cache_dir() -> Path:
    """musicperf's folder in the user cache directory (created by whoever writes there).

    ``$MUSICPERF_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/musicperf`` (the XDG base-directory
    convention; an empty or relative ``XDG_CACHE_HOME`` is ignored, as the convention says), else
    ``~/.cache/musicperf``. Holds the per-machine choices and compiled graphs of
    :mod:`musicperf.features.fastpath` and, by default, the feature cache (``features/``).
    """
    env = os.environ.get("MUSICPERF_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "musicperf"
    return Path.home() / ".cache" / "musicperf"


def default_cache_dir() -> Path:
    """``$MUSICPERF_CACHE`` if set, else ``features`` in :func:`user_cache_dir`
    (``~/.cache/musicperf/features`` unless ``MUSICPERF_CACHE_DIR`` or ``XDG_CACHE_HOME`` say otherwise)."""
    env = os.environ.get("MUSICPERF_CACHE")
    return Path(env) if env else user_cache_dir() / "features"


def video_key(path: str | Path) -> str:
    """Identity of a video file: SHA-256 hex of size, mtime and its first and last MiB.

    Raises
    ------
    DecodeError
        When the file does not exist or cannot be read.
    """
    path = Path(path)
    try:
        st = path.stat()
        h = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}".encode())
        with path.open("rb") as f:
            h.update(f.read(_MIB))
            if st.st_size > _MIB:
                f.seek(max(_MIB, st.st_size - _MIB))
                h.update(f.read(_MIB))
    except OSError as exc:
        raise DecodeError(f"cannot read video '{path}' to key the feature cache: {exc.strerror or exc}") from None
    return h.hexdigest()


def entry_path(video: str | Path, *, extractor: str, version: str, params: dict,
               cache_dir: str | Path | None = None) -> Path:
    """Where the cache entry of ``video`` computed by ``extractor`` ``version`` with ``params`` lives."""
    try:
        p = json.dumps(params, sort_keys=True, default=str)
    except TypeError as exc:  # pragma: no cover - default=str handles everything
        raise ParameterError(f"extractor parameters are not JSON-able: {exc}") from None
    key = hashlib.sha256(f"{video_key(video)}|{extractor}|{version}|{p}".encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder / f"{Path(video).stem}-{extractor}-{key}.npz"


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write ``arrays`` and a JSON ``meta`` dict to an ``.npz`` file atomically (compressed)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, __meta__=np.array(json.dumps(meta)), **arrays)
    return path


def load_arrays(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read an ``.npz`` written by :func:`save_arrays`: ``(arrays, meta)``.

    Raises
    ------
    DecodeError
        When the file is missing, not an npz or lacks the metadata.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DecodeError(f"cannot read feature file '{path}': {exc}") from None
    if "__meta__" not in arrays:
        raise DecodeError(f"'{path}' is not a musicperf feature file (no __meta__ entry)")
    meta = json.loads(str(arrays.pop("__meta__")))
    return arrays, meta


def cached(video: str | Path, *, extractor: str, version: str, params: dict,
           compute: Callable[[], tuple[dict[str, np.ndarray], dict]],
           cache_dir: str | Path | None = None, use_cache: bool = True) -> tuple[dict[str, np.ndarray], dict, bool]:
    """Return the cached ``(arrays, meta)`` of ``video`` or compute, store and return them.

    Parameters
    ----------
    compute : callable
        Called without arguments on a miss; returns ``(arrays, meta)``.
    use_cache : bool
        False computes without reading or writing the cache.

    Returns
    -------
    arrays, meta, hit : dict, dict, bool
    """
    if not use_cache:
        arrays, meta = compute()
        return arrays, meta, False
    path = entry_path(video, extractor=extractor, version=version, params=params, cache_dir=cache_dir)
    if path.is_file():
        try:
            arrays, meta = load_arrays(path)
            log.info("feature cache hit: %s", path)
            return arrays, meta, True
        except DecodeError as exc:
            log.warning("ignoring unreadable cache entry: %s", exc)
    arrays, meta = compute()
    try:
        save_arrays(path, arrays, meta)
    except OSError as exc:
        log.warning("could not write feature cache entry '%s': %s", path, exc)
    return arrays, meta, False
