"""faceveil: an offline privacy guard that finds every face in photos and hides it.

Library use::

    import faceveil

    anonymizer = faceveil.Anonymizer(faceveil.AnonymizerConfig())  # loads the model once
    result = anonymizer.apply(rgb)              # (H, W, 3) uint8 RGB -> Result(image, detections, regions)
    faceveil.anonymize_file("in.jpg", "out.jpg")  # one call, file in, file out
    voice = faceveil.disguise_voice(samples, 16000)  # (n,) or (n, channels) -> same shape

Nothing here reaches the network; model weights come from installed packages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Anonymizer",
    "AnonymizerConfig",
    "DetectorConfig",
    "Detections",
    "Frame",
    "ImageIOConfig",
    "MaskConfig",
    "PhotoReport",
    "Result",
    "VoiceConfig",
    "__version__",
    "anonymize_file",
    "available_detectors",
    "create_detector",
    "disguise_voice",
]

# Public names, imported on first use so `import faceveil` stays light.
_EXPORTS = {
    "Anonymizer": "faceveil.anonymize.anonymizer",
    "Result": "faceveil.anonymize.anonymizer",
    "AnonymizerConfig": "faceveil.config",
    "DetectorConfig": "faceveil.config",
    "ImageIOConfig": "faceveil.config",
    "MaskConfig": "faceveil.config",
    "Detections": "faceveil.core.detections",
    "Frame": "faceveil.core.frame",
    "available_detectors": "faceveil.detection.base",
    "create_detector": "faceveil.detection.base",
    "PhotoReport": "faceveil.pipeline.photo",
    "anonymize_file": "faceveil.pipeline.photo",
    "VoiceConfig": "faceveil.voice.config",
    "disguise_voice": "faceveil.voice.transform",
}

if TYPE_CHECKING:
    from faceveil.anonymize.anonymizer import Anonymizer, Result
    from faceveil.config import AnonymizerConfig, DetectorConfig, ImageIOConfig, MaskConfig
    from faceveil.core.detections import Detections
    from faceveil.core.frame import Frame
    from faceveil.detection.base import available_detectors, create_detector
    from faceveil.pipeline.photo import PhotoReport, anonymize_file
    from faceveil.voice.config import VoiceConfig
    from faceveil.voice.transform import disguise_voice


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'faceveil' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
