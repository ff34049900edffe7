"""Jobs for the engine tests that run in a separate driver process (importable by its workers)."""

from __future__ import annotations

import os
import time
from pathlib import Path


class TxtJob:
    """The skeleton of the engine tests' jobs: one ``<video>.txt`` per video in ``out``, finished
    when it exists; subclasses write it in ``run``."""

    def __init__(self, out: str):
        self.out = out

    def setup(self) -> None:
        pass

    def outputs(self, video: str) -> dict:
        return {"txt": str(Path(self.out) / f"{video}.txt")}

    def finished(self, video: str):
        p = Path(self.outputs(video)["txt"])
        return {"outputs": self.outputs(video)} if p.is_file() else None


class SleepyJob(TxtJob):
    """Writes ``<video>.txt``; marks ``<video>.started`` first and, for every video but 'a', sleeps
    ``$SLEEPY_SECONDS`` (default 60) before writing: a run that can be killed mid-way."""

    task = "sleepy"

    def run(self, video: str) -> dict:
        (Path(self.out) / f"{video}.started").write_text(str(os.getpid()))
        if video != "a":
            time.sleep(float(os.environ.get("SLEEPY_SECONDS", "60")))
        Path(self.outputs(video)["txt"]).write_text("ok")
        return {"outputs": self.outputs(video)}
