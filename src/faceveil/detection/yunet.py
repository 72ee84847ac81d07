"""YuNet (libfacedetection, BSD), compiled into the ``yuface`` wheel."""

from __future__ import annotations

import threading
import warnings

import cv2
import numpy as np
import numpy.typing as npt

from faceveil.core.detections import Detections

RGBImage = npt.NDArray[np.uint8]


class YuNet:
    """YuNet detector.

    Args:
        threshold: score threshold in [0, 1]; 0.5 by default.
        max_side: images whose longer side exceeds this are downscaled first (the compiled
            model is tuned for inputs up to about 960 px); None never downscales.
    """

    default_threshold = 0.5

    def __init__(self, threshold: float | None = None, max_side: int | None = None) -> None:
        import yuface

        self._yuface = yuface
        self.threshold = self.default_threshold if threshold is None else float(threshold)
        self.max_side = max_side
        self._lock = threading.Lock()  # the C library keeps static buffers

    def detect(self, rgb: RGBImage) -> Detections:
        """Faces in ``rgb``."""
        height, width = rgb.shape[:2]
        scale = 1.0
        if self.max_side and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            rgb = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        with self._lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = np.asarray(self._yuface.c_detect(bgr), dtype=np.float32).reshape(-1, 16)
        result = result[result[:, 0] >= self.threshold * 100]
        if not len(result):
            return Detections.empty()
        x, y, w, h = result[:, 1], result[:, 2], result[:, 3], result[:, 4]
        xyxy = np.stack([x, y, x + w, y + h], axis=1)
        landmarks = result[:, 5:15].reshape(-1, 5, 2)
        found = Detections(xyxy=xyxy, confidence=result[:, 0] / 100, landmarks=landmarks)
        return found.transformed(scale) if scale != 1.0 else found
