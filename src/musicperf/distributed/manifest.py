"""Deprecated: the batch run state is :mod:`musicperf.distributed.runstate` now.

"Manifest" named both the YAML input list (``musicperf train manifest.yaml``,
:mod:`musicperf.io.discover`) and the state a batch run keeps in its output folder; the latter
is the *run state* (:class:`~musicperf.distributed.runstate.RunState`, ``musicperf-run.json``).
This module keeps the old names importable for code written before the rename.
``MANIFEST_NAME`` is the file the state is written to now (``musicperf-run.json``); folders of
older runs hold ``musicperf-manifest.json`` (``LEGACY_RUN_STATE_NAME``), which is still read.
"""

from __future__ import annotations

from musicperf.distributed.runstate import (
    DONE,
    FAILED,
    FAILURES_NAME,
    LEGACY_RUN_STATE_NAME,
    LOCK_NAME,
    PENDING,
    RUN_STATE_FORMAT,
    RUN_STATE_NAME,
    Record,
    RunLock,
    RunState,
    stale_temporaries,
    video_key,
)

Manifest = RunState
MANIFEST_NAME = RUN_STATE_NAME
MANIFEST_FORMAT = RUN_STATE_FORMAT

__all__ = ["Manifest", "MANIFEST_NAME", "MANIFEST_FORMAT", "RunState", "RUN_STATE_NAME", "RUN_STATE_FORMAT",
           "LEGACY_RUN_STATE_NAME", "FAILURES_NAME", "LOCK_NAME", "PENDING", "DONE", "FAILED", "Record", "RunLock",
           "stale_temporaries", "video_key"]
