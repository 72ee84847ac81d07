"""Photos for the API: decode bytes, find and hide faces, encode, with one model per preset."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.config import AnonymizerConfig, DetectorConfig, ImageIOConfig
from faceveil.core.detections import Detections
from faceveil.detection.base import Detector, create_detector
from faceveil.media.image_io import Photo, encode_image, read_image
from faceveil.service.schemas import PhotoOptions

if TYPE_CHECKING:
    from faceveil.pose.coverage import BodyCoverage

_MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


@dataclass(frozen=True)
class PhotoResult:
    """An anonymized photo, encoded."""

    data: bytes
    media_type: str
    extension: str
    width: int
    height: int
    detections: Detections
    pose: dict[str, Any] | None = None


class PhotoEngine:
    """Loads each preset's detector once and bounds how many photos run at once.

    Args:
        default_preset: used when a request names none.
        max_pixels: photos with more pixels are refused before decoding.
        concurrency: photos processed at the same time (the rest wait).
        detector_factory: builds the detector of a preset name (tests pass a fake).
    """

    def __init__(
        self,
        default_preset: str,
        max_pixels: int,
        concurrency: int,
        detector_factory: Callable[[str], Detector] | None = None,
    ) -> None:
        self.default_preset = default_preset
        self.io = ImageIOConfig(max_pixels=max_pixels)
        self._factory = detector_factory or (lambda name: create_detector(DetectorConfig(name=name)))
        self._detectors: dict[str, Detector] = {}
        self._bodies: dict[tuple[str, bool], BodyCoverage] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)

    def detector(self, preset: str | None) -> Detector:
        """The loaded detector of ``preset`` (loaded on first use)."""
        name = preset or self.default_preset
        with self._lock:
            if name not in self._detectors:
                self._detectors[name] = self._factory(name)
            return self._detectors[name]

    def decode(self, data: bytes) -> Photo:
        """Decode an uploaded photo (by content; pixel limit checked before decoding)."""
        return read_image(data, self.io)

    def anonymizer(self, options: PhotoOptions) -> Anonymizer:
        """An Anonymizer for these options, on the shared, already loaded models."""
        config = options.anonymizer(options.preset or self.default_preset)
        body = None
        if config.target != "face" or config.skeleton_only:
            body = self._body(config.target, config.skeleton_only, config)
        return Anonymizer(config, detector=self.detector(options.preset), body=body)

    def anonymize(self, data: bytes, options: PhotoOptions) -> PhotoResult:
        """Find and hide every face (or head, or person); encode as ``options.format``."""
        photo = self.decode(data)
        anonymizer = self.anonymizer(options)
        with self._slots:
            result = anonymizer.apply(photo.rgb)
        return self._encode(photo, result.image, result.detections, options.format)

    def review(
        self,
        data: bytes,
        options: PhotoOptions,
        keep: list[tuple[float, float, float, float]],
        add: list[tuple[float, float, float, float]],
    ) -> tuple[PhotoResult, int]:
        """Render a reviewed photo: every face found again is hidden unless it overlaps a ``keep``
        box (IoU >= 0.5), and the ``add`` boxes are hidden too. Returns the result and how many
        found faces were kept. A face the reviewer never saw is still hidden (fail closed)."""
        import numpy as np

        photo = self.decode(data)
        anonymizer = self.anonymizer(options)
        with self._slots:
            found = anonymizer.detect(photo.rgb)
            shown = np.array([_best_iou(found.xyxy[i], keep) >= 0.5 for i in range(len(found))], bool)
            extra = np.asarray(add, np.float32).reshape(-1, 4)
            hidden = Detections.merge(
                [found[~shown] if len(found) else found, Detections(extra, np.ones(len(extra), np.float32))]
            )
            result = anonymizer.hide(photo.rgb, hidden)
        return self._encode(photo, result.image, found, options.format), int(shown.sum())

    def pose(self, data: bytes, options: PhotoOptions) -> PhotoResult:
        """Everyone's pose, and the picture with faces hidden and skeletons drawn."""
        from faceveil.pose.photo import PoseProcessor

        photo = self.decode(data)
        anonymizer = self.anonymizer(options)
        if anonymizer.body is None:  # the face target: pose still has to run
            body = self._body("face", False, anonymizer.config)  # pose only, no silhouettes
            anonymizer = Anonymizer(anonymizer.config, detector=anonymizer.detector, body=body)
        processor = PoseProcessor(anonymizer.config, self.io, anonymizer=anonymizer)
        with self._slots:
            output = processor.apply(photo.rgb)
        encoded = self._encode(photo, output.image, output.detections, options.format)
        return replace(encoded, pose=output.to_json())

    def _encode(self, photo: Photo, rgb: Any, detections: Detections, requested: str) -> PhotoResult:
        fmt = _output_format(requested, photo.format)
        encoded = encode_image(rgb, photo.alpha, photo.grayscale, fmt, self.io)
        media, ext = _MEDIA_TYPES[fmt], _EXTENSIONS[fmt]
        return PhotoResult(encoded, media, ext, photo.width, photo.height, detections)

    def _body(self, target: str, skeleton_only: bool, config: AnonymizerConfig) -> BodyCoverage:
        from faceveil.pose.coverage import BodyCoverage

        key = (target, skeleton_only)
        with self._lock:
            if key not in self._bodies:
                self._bodies[key] = BodyCoverage(config)
            return self._bodies[key]

    def detect(self, data: bytes, preset: str | None) -> tuple[Photo, Detections]:
        """Only find the faces."""
        photo = self.decode(data)
        with self._slots:
            found = self.detector(preset).detect(photo.rgb)
        return photo, found


def _best_iou(box: Any, others: list[tuple[float, float, float, float]]) -> float:
    best = 0.0
    x1, y1, x2, y2 = (float(v) for v in box)
    for a1, b1, a2, b2 in others:
        inter = max(0.0, min(x2, a2) - max(x1, a1)) * max(0.0, min(y2, b2) - max(y1, b1))
        union = (x2 - x1) * (y2 - y1) + (a2 - a1) * (b2 - b1) - inter
        best = max(best, inter / union if union > 0 else 0.0)
    return best


def _output_format(requested: str, uploaded: str) -> str:
    if requested != "same":
        return requested.upper()
    if uploaded in _MEDIA_TYPES:
        return uploaded
    return "PNG"  # lossless for everything else (BMP, TIFF, GIF, HEIF...)
