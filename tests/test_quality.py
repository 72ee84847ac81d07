"""Quality regression: the default preset on the real labelled photos must meet its targets.

Runs `faceveil eval` end to end (the same command users run) on ../shared/data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from faceveil.cli.main import main

pytestmark = pytest.mark.quality


def run_eval(annotations: Path, tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "figures.json"
    assert main(["eval", str(annotations), "-q", "-o", str(out), *extra]) == 0
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def protected_at_least_32(figures: dict[str, Any]) -> float:
    counts = figures["faces_by_height"]
    shares = figures["protected_by_height"]
    hits = sum(counts[b] * shares[b] for b in ("32-96", ">=96"))
    return float(hits / (counts["32-96"] + counts[">=96"]))


def test_default_preset_on_wider_dev(shared_data: Path, tmp_path: Path) -> None:
    figures = run_eval(shared_data / "wider_dev" / "annotations.json", tmp_path)
    assert figures["config"]["detector"]["name"] == "balanced"
    assert figures["images"] == 305
    assert figures["protected"] >= 0.96
    assert protected_at_least_32(figures) >= 0.98
    assert figures["overblur"] <= 0.025
    # what produced the figures is recorded with them
    runtime = figures["config"]["runtime"]
    assert runtime["machine"]["onnxruntime"] and runtime["machine"]["execution_providers"]
    assert {step["pass"] for step in runtime["passes"]} == {"full", "extra", "zoom"}
    if any(step["precision"] == "int8" for step in runtime["passes"]):
        assert runtime["int8"]["pair_sum_bound"] <= runtime["int8"]["pair_sum_limit"]


def test_default_preset_on_masked_faces(shared_data: Path, tmp_path: Path) -> None:
    figures = run_eval(shared_data / "mask_dev" / "annotations.json", tmp_path)
    assert figures["images"] == 200
    assert figures["protected"] >= 0.95


def test_default_preset_on_voc_group_photos(shared_data: Path, tmp_path: Path) -> None:
    figures = run_eval(shared_data / "dlib_voc" / "annotations.json", tmp_path)
    assert figures["protected"] >= 0.95
