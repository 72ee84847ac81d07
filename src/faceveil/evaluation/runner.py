"""Run a detector configuration over a labelled set and compute every figure of `faceveil eval`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.anonymize.regions import build_regions, union_mask
from faceveil.config import MaskConfig
from faceveil.core.detections import Detections
from faceveil.evaluation.dataset import LabelledImage
from faceveil.evaluation.metrics import (
    PROTECTED_COVERAGE,
    SIZE_BINS,
    APAccumulator,
    coverage,
    overblur,
)
from faceveil.media.image_io import read_image


@dataclass
class _Tally:
    protected: int = 0
    total: int = 0

    def share(self) -> float | None:
        return self.protected / self.total if self.total else None


@dataclass
class EvalReport:
    """Figures of one evaluation run (see :meth:`as_dict` for the JSON schema)."""

    config: dict[str, Any]
    images: int = 0
    faces: int = 0
    ignored: int = 0
    overall: _Tally = field(default_factory=_Tally)
    by_height: dict[str, _Tally] = field(default_factory=lambda: {b[0]: _Tally() for b in SIZE_BINS})
    ap50: float = 0.0
    recall50: float = 0.0
    overblur: float = 0.0
    median_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "images": self.images,
            "faces": self.faces,
            "ignored_faces": self.ignored,
            "protected": self.overall.share(),
            "protected_by_height": {k: v.share() for k, v in self.by_height.items()},
            "faces_by_height": {k: v.total for k, v in self.by_height.items()},
            "AP50": self.ap50,
            "recall50": self.recall50,
            "overblur": self.overblur,
            "median_ms": self.median_ms,
            "config": self.config,
        }


class Scorer:
    """Accumulates the figures of one configuration, image by image.

    Args:
        config: a description of the configuration, copied into the report.
        mask: the mask settings that decide what is actually hidden.
    """

    def __init__(self, config: dict[str, Any], mask: MaskConfig) -> None:
        self.mask = mask
        self._report = EvalReport(config=config)
        self._ap = APAccumulator()
        self._times: list[float] = []
        self._overblurs: list[float] = []

    def add(
        self, labelled: LabelledImage, width: int, height: int, found: Detections, seconds: float
    ) -> None:
        """Score the detections ``found`` on one labelled image that took ``seconds``."""
        mask = self.mask
        regions = build_regions(found.xyxy, mask.scale, mask.shape, width, height, mask.min_margin)
        hidden = union_mask(regions, width, height)
        _tally(self._report, labelled, coverage(hidden, labelled.boxes))
        self._ap.add(found.xyxy, found.confidence, labelled.boxes, labelled.ignored)
        self._overblurs.append(overblur(hidden, labelled.boxes))
        self._times.append(seconds)
        self._report.images += 1

    def report(self) -> EvalReport:
        """The figures over every image added so far."""
        report = self._report
        report.ap50, report.recall50 = self._ap.result()
        report.overblur = float(np.mean(self._overblurs)) if self._overblurs else 0.0
        report.median_ms = float(np.median(self._times) * 1000) if self._times else 0.0
        return report


def evaluate(
    images: Sequence[LabelledImage],
    anonymizer: Anonymizer,
    config: dict[str, Any],
    progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """Detect faces on every labelled image and score what the anonymizer would hide.

    The time per photo is the detection time, without decoding the file.
    """
    scorer = Scorer(config, anonymizer.config.mask)
    for labelled in images:
        rgb = read_image(labelled.path).rgb
        start = time.perf_counter()
        found = anonymizer.detect(rgb)
        seconds = time.perf_counter() - start
        scorer.add(labelled, rgb.shape[1], rgb.shape[0], found, seconds)
        if progress is not None:
            progress(1)
    return scorer.report()


def _tally(report: EvalReport, labelled: LabelledImage, covered: npt.NDArray[np.float32]) -> None:
    heights = labelled.boxes[:, 3] - labelled.boxes[:, 1]
    report.ignored += int(labelled.ignored.sum())
    for share, height, ignored in zip(covered, heights, labelled.ignored, strict=True):
        if ignored:
            continue
        hit = bool(share >= PROTECTED_COVERAGE)
        report.faces += 1
        report.overall.total += 1
        report.overall.protected += hit
        for name, low, high in SIZE_BINS:
            if low <= height < high:
                report.by_height[name].total += 1
                report.by_height[name].protected += hit
