"""Review quality on real labelled data (../shared/data): hand boxes followed, faces kept by identity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from faceveil.evaluation.video import score_track
from faceveil.review.follow import follow_box

pytestmark = pytest.mark.quality


def _sequences(shared_data: Path) -> list[dict[str, Any]]:
    sequences: list[dict[str, Any]] = json.loads((shared_data / "ytf_tracks" / "tracks.json").read_text())
    return sequences


def _frames(shared_data: Path, sequence: dict[str, Any]) -> list[np.ndarray[Any, np.dtype[np.uint8]]]:
    folder = shared_data / "ytf_tracks" / sequence["frames_dir"]
    return [np.asarray(Image.open(folder / r["frame_file"]).convert("RGB")) for r in sequence["frames"]]


def test_one_hand_box_hides_the_face_through_the_sequence(shared_data: Path) -> None:
    """One box drawn on the middle frame, followed both ways, hides >= 95% of each sequence's
    labelled frames (hidden: at least 70% of the labelled box under the rendered ellipse)."""
    for sequence in _sequences(shared_data):
        frames = _frames(shared_data, sequence)
        truth = {r["frame_index"]: r["boxes"][0] for r in sequence["frames"]}
        seed = len(frames) // 2
        followed = follow_box(frames, seed, tuple(truth[seed]))
        regions = {i: np.asarray([box], np.float32) for i, box in followed.items()}
        height, width = frames[0].shape[:2]
        score = score_track(truth, regions, width, height)
        assert score.share >= 0.95, (sequence["sequence"], score)
