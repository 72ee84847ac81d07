"""Shared fixtures. Tests that need the labelled data in ../shared/data fail loudly without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository (or ``$FACEVEIL_SHARED_DATA``)."""
    return Path(os.environ.get("FACEVEIL_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real test data; a missing folder is a failure, never a skip."""
    root = shared_data_dir()
    if not (root / "wider_dev" / "annotations.json").is_file():
        pytest.fail(f"the shared test data is missing: expected it at {root}", pytrace=False)
    return root
