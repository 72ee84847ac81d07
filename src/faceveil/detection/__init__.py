"""Face detectors behind one interface (:class:`Detector`), built by name."""

from faceveil.detection.base import Detector, available_detectors, create_detector

__all__ = ["Detector", "available_detectors", "create_detector"]
