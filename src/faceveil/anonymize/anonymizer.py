"""`Anonymizer`: detector + filter, loaded once, applied to many images."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from faceveil.anonymize.filters import Filter, create_filter, draw_outlines
from faceveil.anonymize.planes import I420Blur
from faceveil.anonymize.regions import Region, build_regions
from faceveil.config import AnonymizerConfig
from faceveil.core.detections import Detections
from faceveil.core.frame import Frame
from faceveil.core.i420 import I420Image, i420_size
from faceveil.detection.base import Detector, create_detector
from faceveil.errors import ValidationError

if TYPE_CHECKING:
    from faceveil.pose.coverage import BodyCoverage
    from faceveil.pose.landmarks import PersonPose

RGBImage = npt.NDArray[np.uint8]


@dataclass(frozen=True, eq=False)
class Result:
    """What :meth:`Anonymizer.apply` returns.

    Attributes:
        image: the anonymized ``(H, W, 3)`` RGB image (a new array; the input is not changed).
        detections: the faces found, in the image's pixels.
        regions: the regions actually hidden (scaled and shaped; person silhouettes included).
        people: the people pose found (``head``/``person`` targets and ``skeleton_only``).
    """

    image: RGBImage
    detections: Detections
    regions: list[Region]
    people: list[PersonPose] = field(default_factory=list)

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
        body: pose and segmentation for the ``head``/``person`` targets and ``skeleton_only``;
            built from ``config`` when needed and None (tests pass one with fake backends).

    Thread-safe: one Anonymizer may serve several threads.
    """

    def __init__(
        self,
        config: AnonymizerConfig | None = None,
        detector: Detector | None = None,
        body: BodyCoverage | None = None,
    ) -> None:
        self.config = config or AnonymizerConfig()
        self.detector = detector if detector is not None else create_detector(self.config.detector)
        self.filter: Filter = create_filter(self.config.mask)
        self.body = body if body is not None else _body_coverage(self.config)

    def detect(self, image: RGBImage | Frame) -> Detections:
        """Find the faces (and, for the ``head``/``person`` targets, every head pose finds)."""
        return self._find(_rgb(image))[0]

    def hide(self, image: RGBImage | Frame, detections: Detections) -> Result:
        """Hide the given detections (for example detections merged with tracks) in a copy.

        With the ``person`` target the silhouettes around them are hidden too; with
        ``skeleton_only`` pose runs on ``image`` to draw the skeletons.
        """
        return self._hide(_rgb(image), detections, None)

    @property
    def hides_i420(self) -> bool:
        """Whether :meth:`hide_i420` can hide as :meth:`hide` does: the ``blur`` and ``none``
        modes of the ``face`` target, without outlines, skeletons or a watermark (everything
        else needs the RGB picture)."""
        config = self.config
        plain = config.target == "face" and not config.skeleton_only and config.watermark is None
        return (
            plain and self.body is None and not config.mask.outline and config.mask.mode in ("blur", "none")
        )

    def hide_i420(self, yuv: I420Image, detections: Detections) -> I420Image:
        """Hide ``detections`` in a copy of the I420 picture ``yuv`` ``(3H/2, W)``, in its planes
        (see :mod:`faceveil.anonymize.planes`): pixels outside the regions keep their bytes.

        Only where :attr:`hides_i420` holds; raises `ValidationError` elsewhere.
        """
        if not self.hides_i420:
            raise ValidationError("this anonymizer's mask, target or watermark needs the RGB picture")
        width, height = i420_size(yuv)
        out = np.array(yuv, dtype=np.uint8, order="C")
        mask = self.config.mask
        if mask.mode == "none":
            return out
        regions = build_regions(detections.xyxy, mask.scale, mask.shape, width, height, mask.min_margin)
        return I420Blur(mask.blur_strength).apply(out, regions)

    def apply(self, image: RGBImage | Frame) -> Result:
        """Find every face in ``image`` and hide it; returns the new image and what was found."""
        rgb = _rgb(image)
        detections, people = self._find(rgb)
        return self._hide(rgb, detections, people)

    def mark(self, image: RGBImage) -> RGBImage:
        """Draw the configured watermark on a finished picture (in place), if there is one.

        `hide` and `apply` already do; pipelines call it on pictures they make themselves (a
        frame hidden whole). It never changes what was found or hidden.
        """
        if self.config.watermark is not None:
            from faceveil.compliance.watermark import draw_watermark

            draw_watermark(image, self.config.watermark)
        return image

    def _find(self, rgb: RGBImage) -> tuple[Detections, list[PersonPose]]:
        faces = self.detector.detect(rgb)
        if self.body is None:
            return faces, []
        people = self.body.people(rgb, faces)
        if self.config.target == "face":
            return faces, people  # skeleton_only on the face target: people are drawn, not boxed
        return self.body.add_heads(faces, people), people

    def _hide(self, rgb: RGBImage, detections: Detections, people: list[PersonPose] | None) -> Result:
        mask = self.config.mask
        height, width = rgb.shape[:2]
        regions = build_regions(detections.xyxy, mask.scale, mask.shape, width, height, mask.min_margin)
        shown = list(regions)
        body = self.body
        if body is not None and people is None and self.config.skeleton_only:
            people = body.people(rgb, detections)
        if body is not None and body.wants_silhouettes:
            regions = regions + body.silhouettes(rgb, detections, people or [])
        out = self.filter.apply(rgb.copy(), regions)
        if mask.outline:
            out = draw_outlines(out, shown, mask.shape)
        if self.config.skeleton_only and people:
            from faceveil.pose.draw import draw_skeletons

            out = draw_skeletons(out, people, self.config.pose)
        out = self.mark(out)
        return Result(image=out, detections=detections, regions=regions, people=people or [])


def _body_coverage(config: AnonymizerConfig) -> BodyCoverage | None:
    if config.target == "face" and not config.skeleton_only:
        return None
    from faceveil.pose.coverage import BodyCoverage

    return BodyCoverage(config)


def _rgb(image: RGBImage | Frame) -> RGBImage:
    rgb = image.rgb if isinstance(image, Frame) else image
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        raise ValidationError(f"expected an (H, W, 3) uint8 RGB image, got {shape}")
    return rgb
