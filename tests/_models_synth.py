"""Tiny synthetic clips for the model and training tests: a bright square on noise.

Class 0 "square": a bright square is present. Class 1 "moving": the square moves (vs stays put).
A clip without a square has neither class.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


def square_clips(n: int, *, frames: int = 8, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Clips ``(n, 3, frames, size, size)`` in [0, 1] and binary targets ``(n, 2)``."""
    rng = np.random.default_rng(seed)
    clips = rng.uniform(0.0, 0.35, size=(n, 3, frames, size, size)).astype(np.float32)
    y = np.zeros((n, 2), dtype=np.float32)
    side = size // 4
    for i in range(n):
        kind = i % 3  # 0: none, 1: static square, 2: moving square
        if kind == 0:
            continue
        y[i, 0] = 1
        r0, c0 = rng.integers(0, size - side, size=2)
        step = 0
        if kind == 2:
            y[i, 1] = 1
            step = 1 if c0 < size // 2 else -1
        for t in range(frames):
            c = int(np.clip(c0 + step * 2 * t, 0, size - side))
            clips[i, :, t, r0:r0 + side, c:c + side] = rng.uniform(0.85, 1.0)
    perm = rng.permutation(n)
    return torch.from_numpy(clips[perm]), y[perm]


class TensorPairs(Dataset):
    def __init__(self, x, y):
        self.x = torch.as_tensor(x)
        self.targets = torch.as_tensor(y)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.targets[i]


def one_thread():
    """Context for tests: one intra-op thread (2 shared cores; OpenMP spinning under contention
    makes tiny convolutions 10x slower with 2 threads)."""
    import contextlib

    @contextlib.contextmanager
    def ctx():
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(n)

    return ctx()
