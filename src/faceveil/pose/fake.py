"""Fakes of the pose backend and the segmenter, for tests: answer what they are told, record calls."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from faceveil.pose.landmarks import NUM_LANDMARKS

RGBImage = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]


class FakePoseBackend:
    """Returns ``handler(rgb)`` (normalised ``(33, 4)`` landmarks or None) and counts calls.

    Args:
        handler: the answer for each image; by default nobody is ever found.
        error: if given, every call raises it.
    """

    def __init__(
        self,
        handler: Callable[[RGBImage], FloatArray | None] | None = None,
        error: Exception | None = None,
    ) -> None:
        self._handler = handler
        self._error = error
        self.calls: list[tuple[int, int]] = []

    def estimate(self, rgb: RGBImage) -> FloatArray | None:
        """The configured answer for ``rgb``."""
        self.calls.append((int(rgb.shape[0]), int(rgb.shape[1])))
        if self._error is not None:
            raise self._error
        return None if self._handler is None else self._handler(rgb)


class FakeSegmenter:
    """Segments pixels for which ``handler(rgb)`` is True (by default: none) and counts calls."""

    def __init__(self, handler: Callable[[RGBImage], npt.NDArray[np.bool_]] | None = None) -> None:
        self._handler = handler
        self.calls: list[tuple[int, int]] = []

    def segment(self, rgb: RGBImage) -> FloatArray:
        """1.0 where the handler says person, 0.0 elsewhere."""
        self.calls.append((int(rgb.shape[0]), int(rgb.shape[1])))
        if self._handler is None:
            return np.zeros(rgb.shape[:2], np.float32)
        return np.asarray(self._handler(rgb), dtype=np.float32)


def stick_figure(nose: tuple[float, float], size: float, visibility: float = 0.9) -> npt.NDArray[np.float32]:
    """``(33, 3)`` pixel points of an upright person whose head (``size`` px) is at ``nose``.

    For tests: a plausible skeleton (eyes, ears, shoulders, arms, hips, legs) with the given
    visibility everywhere; convert with :func:`normalized` for a fake backend.
    """
    x, y = nose
    s = size
    offsets = {
        0: (0, 0), 1: (-0.1, -0.1), 2: (-0.15, -0.1), 3: (-0.2, -0.1), 4: (0.1, -0.1), 5: (0.15, -0.1),
        6: (0.2, -0.1), 7: (-0.35, -0.05), 8: (0.35, -0.05), 9: (-0.1, 0.2), 10: (0.1, 0.2),
        11: (-0.8, 1.0), 12: (0.8, 1.0), 13: (-1.0, 2.2), 14: (1.0, 2.2), 15: (-1.1, 3.3),
        16: (1.1, 3.3), 17: (-1.15, 3.5), 18: (1.15, 3.5), 19: (-1.1, 3.55), 20: (1.1, 3.55),
        21: (-1.0, 3.4), 22: (1.0, 3.4), 23: (-0.5, 3.4), 24: (0.5, 3.4), 25: (-0.55, 5.0),
        26: (0.55, 5.0), 27: (-0.6, 6.6), 28: (0.6, 6.6), 29: (-0.65, 6.8), 30: (0.65, 6.8),
        31: (-0.5, 6.9), 32: (0.5, 6.9),
    }  # fmt: skip
    points = np.zeros((NUM_LANDMARKS, 4), np.float32)
    for i, (dx, dy) in offsets.items():
        points[i] = (x + dx * s, y + dy * s, 0.0, visibility)
    return points


def normalized(points: npt.NDArray[np.float32], width: int, height: int) -> FloatArray:
    """Pixel ``(33, 4)`` ``x, y, z, visibility`` -> the normalised form a backend returns."""
    out = np.asarray(points, np.float32).copy()
    out[:, 0] /= width
    out[:, 1] /= height
    out[:, 2] /= width
    return out
