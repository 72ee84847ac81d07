"""Pose on photos: everyone's 33 landmarks as JSON, and the skeletons drawn over the picture.

The entry point for other front ends (the web app) is :class:`PoseProcessor`:
``PoseProcessor().apply(rgb)`` gives the drawn image and the JSON-ready landmarks of an
in-memory picture; ``process(source, target)`` does the same from file to file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.config import AnonymizerConfig, ImageIOConfig
from faceveil.core.detections import Detections
from faceveil.core.frame import Frame
from faceveil.errors import FaceveilError
from faceveil.media.image_io import read_image, write_image
from faceveil.pose.coverage import BodyCoverage
from faceveil.pose.draw import draw_skeletons
from faceveil.pose.landmarks import PoseResult

RGBImage = npt.NDArray[np.uint8]


@dataclass(frozen=True, eq=False)
class PoseOutput:
    """What :meth:`PoseProcessor.apply` returns for one picture.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB: the picture with faces hidden as configured (``mode``
            ``none`` keeps them) and every skeleton drawn.
        pose: everyone's landmarks (pixels and normalised, with visibility).
        detections: the regions hidden (faces, and heads for the ``head``/``person`` targets).
    """

    image: RGBImage
    pose: PoseResult
    detections: Detections

    def to_json(self, **extra: Any) -> dict[str, Any]:
        """The landmarks JSON (schema in docs/pose.md), with ``extra`` keys such as ``image``."""
        return self.pose.to_json(**extra)


@dataclass(frozen=True, eq=False)
class PoseReport:
    """The outcome of one photo file: its landmarks and where the drawing went, or why it failed."""

    image: str
    output: str | None = None
    result: PoseOutput | None = None
    error: FaceveilError | None = None

    @property
    def ok(self) -> bool:
        """True when the photo was processed."""
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """``{"schema", "width", "height", "image", "output", "people": [...]}`` or ``{"image", "error"}``."""
        if self.error is not None or self.result is None:
            error = self.error
            details = {"code": error.code, "message": str(error)} if error is not None else None
            return {"image": self.image, "error": details}
        extra: dict[str, Any] = {"image": self.image}
        if self.output is not None:
            extra["output"] = self.output
        return self.result.to_json(**extra)


class PoseProcessor:
    """Finds everyone's pose and draws it; models loaded once, safe to share between threads.

    Args:
        config: face detector (it seeds one person crop per face), how faces are hidden in the
            drawn image (``mask.mode`` ``none`` keeps them), ``target``/``skeleton_only`` as
            for ``faceveil image``, and ``pose`` (thresholds, colours).
        io: pixel limit and encoder settings for files.
        anonymizer: use this one (tests pass one with fake backends); it must have a ``body``.
    """

    def __init__(
        self,
        config: AnonymizerConfig | None = None,
        io: ImageIOConfig | None = None,
        anonymizer: Anonymizer | None = None,
    ) -> None:
        self.config = config or AnonymizerConfig()
        self.io = io or ImageIOConfig()
        if anonymizer is None:
            anonymizer = Anonymizer(self.config, body=BodyCoverage(self.config))
        self.anonymizer = anonymizer

    def apply(self, image: RGBImage | Frame) -> PoseOutput:
        """Landmarks of everyone in ``image`` and the picture with their skeletons drawn."""
        result = self.anonymizer.apply(image)
        height, width = result.image.shape[:2]
        drawn = result.image
        if not self.anonymizer.config.skeleton_only:  # otherwise the anonymizer drew them
            drawn = draw_skeletons(drawn, result.people, self.anonymizer.config.pose)
        return PoseOutput(drawn, PoseResult(width, height, list(result.people)), result.detections)

    def process(
        self,
        source: str | os.PathLike[str] | bytes,
        target: str | os.PathLike[str] | None,
        *,
        in_place: bool = False,
    ) -> PoseReport:
        """Pose of the photo ``source`` (a path or the file's bytes), drawn into ``target``.

        ``target`` None only estimates. Errors are reported, not raised; the input is never
        overwritten unless ``in_place`` is True.
        """
        name = "<bytes>" if isinstance(source, bytes) else os.fspath(source)
        try:
            photo = read_image(source, self.io)
            output = self.apply(photo.rgb)
            if target is None:
                return PoseReport(name, None, output)
            forbid = () if in_place or isinstance(source, bytes) else (Path(source),)
            write_image(target, output.image, photo.alpha, photo.grayscale, self.io, forbid=forbid)
            return PoseReport(name, os.fspath(target), output)
        except FaceveilError as exc:
            return PoseReport(name, error=exc)


def pose_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str] | None,
    config: AnonymizerConfig | None = None,
    io: ImageIOConfig | None = None,
) -> PoseReport:
    """One call: everyone's pose in the photo ``source``, drawn into ``target`` (None: JSON only).

    Raises the :class:`faceveil.errors.FaceveilError` that stopped it, if any.
    """
    report = PoseProcessor(config, io).process(source, target)
    if report.error is not None:
        raise report.error
    return report
