"""Shared fixtures. Tests that need the labelled data in ../shared/data fail loudly without it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_MODEL_CACHE: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """One private model cache for the run (servers started by tests share it), removed after."""
    folder = tempfile.mkdtemp(prefix="faceveil-model-cache-")
    _MODEL_CACHE.append(folder)
    os.environ["FACEVEIL_MODEL_CACHE"] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the run's model cache."""
    for folder in _MODEL_CACHE:
        shutil.rmtree(folder, ignore_errors=True)


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
