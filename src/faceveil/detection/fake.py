"""A detector for tests: returns what it is told to and records what it was asked."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from faceveil.core.detections import Detections

RGBImage = npt.NDArray[np.uint8]


class FakeDetector:
    """Returns fixed `Detections` (or the result of ``handler(rgb)``) and counts calls.

    Args:
        result: the detections every call returns, or a function of the image.
        error: if given, every call raises it (to test error paths).
    """

    def __init__(
        self,
        result: Detections | Callable[[RGBImage], Detections] | None = None,
        error: Exception | None = None,
    ) -> None:
        self._result = result if result is not None else Detections.empty()
        self._error = error
        self.calls: list[tuple[int, int]] = []

    def detect(self, rgb: RGBImage) -> Detections:
        """Return the configured detections for ``rgb``."""
        self.calls.append((int(rgb.shape[0]), int(rgb.shape[1])))
        if self._error is not None:
            raise self._error
        if callable(self._result):
            return self._result(rgb)
        return self._result


def boxes(*xyxy: tuple[float, float, float, float], score: float = 0.9) -> Detections:
    """Shorthand: `Detections` for the given boxes, all with the same score."""
    return Detections(
        xyxy=np.asarray(xyxy, np.float32).reshape(-1, 4), confidence=np.full(len(xyxy), score, np.float32)
    )
