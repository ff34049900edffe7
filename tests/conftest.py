"""Shared fixtures: a seeded rng, the shared real data folder, one torch thread per module."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# One OpenBLAS thread per test process, set before numpy loads: alone on 2 cores the suite takes
# the same time (3 min 33 s against 3 min 34 s), and beside another busy process (a benchmark)
# two BLAS threads per process oversubscribe the cores (a 20 s test file took 2 min 44 s).
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# The user cache (numeric-mode choices, compiled kernels, feature caches) goes to a folder of
# this test session, never the user's ~/.cache/musicperf; subprocesses inherit it.
if "MUSICPERF_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["MUSICPERF_CACHE_DIR"] = tempfile.mkdtemp(prefix="musicperf-test-cache-")

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
