"""Shared fixtures: a seeded rng, the shared real data folder, one torch thread per module."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).parent
# CI clones the repository beside a copy of shared/; MUSICPERF_SHARED_DATA overrides the place.
SHARED_DATA = Path(os.environ.get("MUSICPERF_SHARED_DATA", TESTS.parent.parent / "shared" / "data")).resolve()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module (``pytestmark = pytest.mark.usefixtures(...)``): small
    training runs are faster and bit-reproducible that way on a shared 2-core machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
