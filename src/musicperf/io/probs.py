"""The per-frame probability CSV that ``musicperf label`` writes beside each ``.eaf``.

One row per frame of the model's frame grid: ``frame, time_s`` then one probability column
per class, four decimals. Imports numpy and the standard library.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from musicperf._util import atomic_path
from musicperf.errors import ParameterError


def write_probs_csv(path: Path, probs: np.ndarray, *, first: int, fps: float, classes: list[str]) -> None:
    """CSV: ``frame, time_s`` then one probability column per class, one row per frame."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "time_s", *classes])
        for i, row in enumerate(probs):
            f = first + i
            w.writerow([f, f"{f / fps:.4f}", *(f"{v:.4f}" for v in row)])


def read_probs_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a probabilities CSV: ``(times (n,) s, probs (n, K), classes)``."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise ParameterError(f"cannot read '{path}': {exc.strerror}") from None
    if not rows or rows[0][:2] != ["frame", "time_s"]:
        raise ParameterError(f"'{path}' is not a musicperf probabilities CSV (header 'frame,time_s,...' expected)")
    classes = rows[0][2:]
    try:
        data = np.array([[float(v) for v in r[1:]] for r in rows[1:] if r], dtype=float).reshape(-1, 1 + len(classes))
    except ValueError as exc:
        raise ParameterError(f"'{path}' has a non-numeric value: {exc}") from None
    return data[:, 0], data[:, 1:], classes
