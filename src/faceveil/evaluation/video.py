"""Scoring a video job against per-frame face boxes (the YouTube Faces tracks).

Reads the regions audit trail a video job writes (``--regions``) and measures, for each
labelled frame, whether at least 70% of the face box is hidden, and the longest run of
consecutive unprotected frames.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from faceveil.anonymize.regions import build_regions, union_mask
from faceveil.evaluation.metrics import PROTECTED_COVERAGE, coverage


@dataclass(frozen=True)
class TrackScore:
    """Protection of one labelled face track."""

    frames: int
    protected: int
    longest_miss_run: int

    @property
    def share(self) -> float:
        """Share of labelled frames protected."""
        return self.protected / self.frames if self.frames else 1.0


def load_regions(path: str | Path) -> dict[int, npt.NDArray[np.float32]]:
    """Frame index -> region boxes ``(N, 4)`` from a regions JSON-lines file."""
    regions: dict[int, npt.NDArray[np.float32]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if "schema" in record:
                continue  # the header of a regions document
            boxes = [r["box"] for r in record["regions"]]
            if record.get("hidden_whole"):
                boxes = [[-1e6, -1e6, 1e6, 1e6]]
            regions[int(record["frame"])] = np.asarray(boxes, np.float32).reshape(-1, 4)
    return regions


def score_track(
    truth: Mapping[int, Sequence[float]],
    regions: Mapping[int, npt.NDArray[np.float32]],
    width: int,
    height: int,
    scale: float = 1.3,
    shape: str = "ellipse",
) -> TrackScore:
    """Score a track: ``truth`` maps frame index -> GT box, ``regions`` frame index -> hidden boxes."""
    protected = run = longest = 0
    for index in sorted(truth):
        boxes = regions.get(index, np.zeros((0, 4), np.float32))
        hidden = _hidden(boxes, width, height, scale, shape)
        gt = np.asarray([truth[index]], np.float32)
        if float(coverage(hidden, gt)[0]) >= PROTECTED_COVERAGE:
            protected += 1
            run = 0
        else:
            run += 1
            longest = max(longest, run)
    return TrackScore(frames=len(truth), protected=protected, longest_miss_run=longest)


def hidden_share(
    regions: Mapping[int, npt.NDArray[np.float32]],
    width: int,
    height: int,
    scale: float = 1.3,
    shape: str = "ellipse",
) -> float:
    """Mean share of the frame area hidden, over every frame in ``regions``."""
    if not regions:
        return 0.0
    shares = [_hidden(boxes, width, height, scale, shape).mean() for boxes in regions.values()]
    return float(np.mean(shares))


def _hidden(
    boxes: npt.NDArray[np.float32], width: int, height: int, scale: float, shape: str
) -> npt.NDArray[np.bool_]:
    """The pixels a job hides for the face boxes of one frame."""
    return union_mask(build_regions(boxes, scale, shape, width, height), width, height)
