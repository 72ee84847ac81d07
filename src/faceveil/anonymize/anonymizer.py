"""`Anonymizer`: detector + filter, loaded once, applied to many images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from faceveil.anonymize.filters import Filter, create_filter, draw_outlines
from faceveil.anonymize.regions import Region, build_regions
from faceveil.config import AnonymizerConfig
from faceveil.core.detections import Detections
from faceveil.core.frame import Frame
from faceveil.detection.base import Detector, create_detector
from faceveil.errors import ValidationError

RGBImage = npt.NDArray[np.uint8]


@dataclass(frozen=True, eq=False)
class Result:
    """What :meth:`Anonymizer.apply` returns.

    Attributes:
        image: the anonymized ``(H, W, 3)`` RGB image (a new array; the input is not changed).
        detections: the faces found, in the image's pixels.
        regions: the regions actually hidden (scaled and shaped).
    """

    image: RGBImage
    detections: Detections
    regions: list[Region]

    @property
    def faces(self) -> int:
        """Number of faces found."""
        return len(self.detections)


class Anonymizer:
    """Finds faces and hides them. The model is loaded once, when the Anonymizer is built.

    Args:
        config: detector and mask settings; defaults hide every face with a strong blur.
        detector: use this detector instead of the one ``config.detector`` names (tests pass a
            :class:`faceveil.detection.fake.FakeDetector`).

    Thread-safe: one Anonymizer may serve several threads.
    """

    def __init__(self, config: AnonymizerConfig | None = None, detector: Detector | None = None) -> None:
        self.config = config or AnonymizerConfig()
        self.detector = detector if detector is not None else create_detector(self.config.detector)
        self.filter: Filter = create_filter(self.config.mask)

    def detect(self, image: RGBImage | Frame) -> Detections:
        """Only find the faces."""
        return self.detector.detect(_rgb(image))

    def hide(self, image: RGBImage | Frame, detections: Detections) -> Result:
        """Hide the given detections (for example detections merged with tracks) in a copy."""
        rgb = _rgb(image)
        mask = self.config.mask
        height, width = rgb.shape[:2]
        regions = build_regions(detections.xyxy, mask.scale, mask.shape, width, height, mask.min_margin)
        out = self.filter.apply(rgb.copy(), regions)
        if mask.outline:
            out = draw_outlines(out, regions, mask.shape)
        return Result(image=out, detections=detections, regions=regions)

    def apply(self, image: RGBImage | Frame) -> Result:
        """Find every face in ``image`` and hide it; returns the new image and what was found."""
        return self.hide(image, self.detect(image))


def _rgb(image: RGBImage | Frame) -> RGBImage:
    rgb = image.rgb if isinstance(image, Frame) else image
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        raise ValidationError(f"expected an (H, W, 3) uint8 RGB image, got {shape}")
    return rgb
