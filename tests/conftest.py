"""Shared fixtures: a seeded rng, the shared real data folder, a tmp output dir."""

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


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
