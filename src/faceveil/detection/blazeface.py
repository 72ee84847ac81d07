"""BlazeFace short- and full-range, bundled with ``mediapipe==0.10.21`` (run fully offline)."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from faceveil.core.detections import Detections
from faceveil.errors import ModelError

RGBImage = npt.NDArray[np.uint8]


class BlazeFace:
    """MediaPipe BlazeFace.

    Args:
        threshold: minimum detection confidence; 0.3 by default (recall first).
        full_range: the full-range model (faces up to ~5 m) instead of the short-range one
            (faces within ~2 m of a selfie camera).

    Both models miss most faces under ~96 px; they are here for the original design's
    behaviour and for close-up video calls.
    """

    default_threshold = 0.3

    def __init__(self, threshold: float | None = None, full_range: bool = True) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        try:
            from mediapipe.python.solutions import face_detection
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelError(f"mediapipe is not installed: {exc}") from exc
        self.threshold = self.default_threshold if threshold is None else float(threshold)
        self._model: Any = face_detection.FaceDetection(
            model_selection=1 if full_range else 0, min_detection_confidence=self.threshold
        )
        self._lock = threading.Lock()  # a MediaPipe graph runs one image at a time

    def detect(self, rgb: RGBImage) -> Detections:
        """Faces in ``rgb``."""
        height, width = rgb.shape[:2]
        with self._lock:
            results = self._model.process(np.ascontiguousarray(rgb))
        found = results.detections or []
        if not found:
            return Detections.empty()
        boxes, scores, points = [], [], []
        for det in found:  # a handful of faces at most: MediaPipe returns protobufs
            rel = det.location_data.relative_bounding_box
            x1, y1 = rel.xmin * width, rel.ymin * height
            boxes.append([x1, y1, x1 + rel.width * width, y1 + rel.height * height])
            scores.append(det.score[0])
            points.append([[k.x * width, k.y * height] for k in det.location_data.relative_keypoints])
        return Detections(
            xyxy=np.asarray(boxes, np.float32),
            confidence=np.clip(np.asarray(scores, np.float32), 0, 1),
            landmarks=np.asarray(points, np.float32),
        )

    def close(self) -> None:
        """Release the MediaPipe graph."""
        self._model.close()
