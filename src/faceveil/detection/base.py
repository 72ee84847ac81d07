"""The detector interface and the registry that builds detectors by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from faceveil.config import DetectorConfig
from faceveil.core.detections import Detections
from faceveil.errors import ConfigError

RGBImage = npt.NDArray[np.uint8]


@runtime_checkable
class Detector(Protocol):
    """Finds faces in one RGB image. Boxes come back in that image's pixels."""

    def detect(self, rgb: RGBImage) -> Detections:
        """Return the faces in ``rgb`` (``(H, W, 3)`` uint8)."""
        ...


DetectorFactory = Callable[[DetectorConfig], Detector]


def _centerface(config: DetectorConfig) -> Detector:
    from faceveil.detection.centerface import CenterFace

    return CenterFace(threshold=config.threshold, device=config.device)


def _yunet(config: DetectorConfig) -> Detector:
    from faceveil.detection.yunet import YuNet

    return YuNet(threshold=config.threshold)


def _blazeface_full(config: DetectorConfig) -> Detector:
    from faceveil.detection.blazeface import BlazeFace

    return BlazeFace(threshold=config.threshold, full_range=True)


def _blazeface_short(config: DetectorConfig) -> Detector:
    from faceveil.detection.blazeface import BlazeFace

    return BlazeFace(threshold=config.threshold, full_range=False)


def _preset(name: str) -> DetectorFactory:
    def build(config: DetectorConfig) -> Detector:
        from faceveil.detection.presets import build_preset

        return build_preset(name, config)

    return build


#: Single models, by name. Each is imported only when built.
DETECTORS: dict[str, DetectorFactory] = {
    "centerface": _centerface,
    "yunet": _yunet,
    "blazeface": _blazeface_full,
    "blazeface-short": _blazeface_short,
}

#: Pipelines that combine models (see :mod:`faceveil.detection.presets`).
PRESETS: dict[str, DetectorFactory] = {
    name: _preset(name) for name in ("fast", "balanced", "thorough", "video")
}


def available_detectors() -> tuple[str, ...]:
    """Every name :func:`create_detector` accepts: presets first, then single models."""
    return (*PRESETS, *DETECTORS)


def create_detector(config: DetectorConfig | None = None) -> Detector:
    """Build the detector ``config.name`` names; the error lists the valid names."""
    config = config or DetectorConfig()
    factory = PRESETS.get(config.name) or DETECTORS.get(config.name)
    if factory is None:
        names = ", ".join(available_detectors())
        raise ConfigError(f"unknown detector {config.name!r}; choose one of: {names}")
    detector = factory(config)
    return detector if config.max_side is None else Downscaled(detector, config.max_side)


class Downscaled:
    """Runs ``detector`` on a copy no larger than ``max_side`` pixels; boxes map back."""

    def __init__(self, detector: Detector, max_side: int) -> None:
        self.detector = detector
        self.max_side = max_side

    def detect(self, rgb: RGBImage) -> Detections:
        """Faces in ``rgb``, found on a downscaled copy when ``rgb`` is larger than ``max_side``."""
        height, width = rgb.shape[:2]
        if max(height, width) <= self.max_side:
            return self.detector.detect(rgb)
        import cv2

        factor = self.max_side / max(height, width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        small = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        return self.detector.detect(small).transformed(size[0] / width)


def describe_detector(detector: Detector) -> dict[str, Any]:
    """What ``detector`` runs, for reports: its passes with the precision each one actually runs,
    the onnxruntime execution providers, and the machine (processor, features, runtime version).
    """
    from faceveil.detection.runtime import machine_report

    inner: Any = detector
    described: dict[str, Any] = {}
    if isinstance(detector, Downscaled):
        described["max_side"] = detector.max_side
        inner = detector.detector
    describe = getattr(inner, "describe", None)
    described["passes"] = describe() if callable(describe) else [{"model": type(inner).__name__}]
    if any(step.get("precision") == "int8" for step in described["passes"]):
        from faceveil.detection.quantize import int8_scheme

        described["int8"] = int8_scheme()
    providers = getattr(inner, "providers", None)
    described["machine"] = machine_report(list(providers) if providers else None)
    return described
