"""Single-person models bundled with ``mediapipe==0.10.21``: BlazePose and selfie segmentation.

Both run fully offline from the files inside the mediapipe wheel
(``mediapipe/modules/pose_detection``, ``pose_landmark`` and ``selfie_segmentation``). Only the
``full`` pose landmark model ships in the wheel: the ``lite`` and ``heavy`` ones would be
downloaded at run time, so they are never asked for.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from faceveil.errors import ModelError

RGBImage = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]

#: The only pose landmark model in the wheel (``pose_landmark_full.tflite``).
BUNDLED_COMPLEXITY = 1


class PoseBackend(Protocol):
    """Finds the landmarks of one person (the most prominent) in an RGB image."""

    def estimate(self, rgb: RGBImage) -> FloatArray | None:
        """``(33, 4)`` normalised ``x, y, z, visibility``, or None when nobody is found."""
        ...


class Segmenter(Protocol):
    """Separates people from the background."""

    def segment(self, rgb: RGBImage) -> FloatArray:
        """``(H, W)`` float32 in ``[0, 1]``: how likely each pixel belongs to a person."""
        ...


def _mediapipe_solutions() -> Any:
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        from mediapipe.python import solutions
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError(f"mediapipe is not installed: {exc}") from exc
    return solutions


class BlazePose:
    """MediaPipe BlazePose (detector + ``full`` landmark model), one person per call.

    Args:
        min_detection: least confidence of the pose detector.

    Every call is independent (static image mode): callers crop around each person and
    smooth across frames themselves. Thread-safe (one graph, one call at a time).
    """

    def __init__(self, min_detection: float = 0.5) -> None:
        solutions = _mediapipe_solutions()
        try:
            self._model: Any = solutions.pose.Pose(
                static_image_mode=True,
                model_complexity=BUNDLED_COMPLEXITY,
                enable_segmentation=False,
                min_detection_confidence=float(min_detection),
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"cannot load the bundled BlazePose model: {exc}") from exc
        self._lock = threading.Lock()

    def estimate(self, rgb: RGBImage) -> FloatArray | None:
        """The landmarks of the most prominent person in ``rgb``, normalised to its size."""
        with self._lock:
            results = self._model.process(np.ascontiguousarray(rgb))
        found = results.pose_landmarks
        if found is None:
            return None
        rows = [[p.x, p.y, p.z, p.visibility] for p in found.landmark]
        return np.asarray(rows, dtype=np.float32)

    def close(self) -> None:
        """Release the MediaPipe graph."""
        self._model.close()


class SelfieSegmenter:
    """MediaPipe selfie segmentation (the general 256x256 model), best on one framed person."""

    def __init__(self) -> None:
        solutions = _mediapipe_solutions()
        try:
            self._model: Any = solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"cannot load the bundled selfie segmentation model: {exc}") from exc
        self._lock = threading.Lock()

    def segment(self, rgb: RGBImage) -> FloatArray:
        """Person probability of every pixel of ``rgb``."""
        with self._lock:
            results = self._model.process(np.ascontiguousarray(rgb))
        mask = np.asarray(results.segmentation_mask, dtype=np.float32)
        if mask.shape != rgb.shape[:2]:
            raise ModelError(f"segmentation mask has shape {mask.shape}, expected {rgb.shape[:2]}")
        return mask

    def close(self) -> None:
        """Release the MediaPipe graph."""
        self._model.close()
