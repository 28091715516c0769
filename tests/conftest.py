"""Shared fixtures: the real reference data in ../shared/data, and small synthetic corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the project root; tests needing it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (a plain clone has no "
                    f"../shared/data; CI does)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def jamendo_meta(shared_data) -> Path:
    """The real MTG-Jamendo metadata folder (split TSVs and tag files)."""
    return shared_data / "mtg-jamendo"
