"""Photo jobs: read a file, hide its faces, write the result with no metadata."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceveil.anonymize.anonymizer import Anonymizer, Result, RGBImage
from faceveil.config import AnonymizerConfig, ImageIOConfig
from faceveil.core.detections import Detections
from faceveil.errors import FaceveilError, InputError, OutputError
from faceveil.media.image_io import read_image, write_image
from faceveil.review.document import (
    FrameRegions,
    RegionsDocument,
    build_document,
    check_source,
    file_identity,
    hidden_detections,
    regions_from_detections,
)
from faceveil.review.loader import load_document

if TYPE_CHECKING:
    from faceveil.compliance.manifest import ManifestOptions
    from faceveil.review.identity import KeepFaces


@dataclass(frozen=True, eq=False)
class PhotoReport:
    """The outcome of one photo: what was found and where it went, or why it failed."""

    image: str
    output: str | None = None
    width: int = 0
    height: int = 0
    detections: Detections | None = None
    error: FaceveilError | None = None

    @property
    def ok(self) -> bool:
        """True when the photo was processed (and written, if an output was asked for)."""
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """One JSON record: ``{"image", "width", "height", "faces": [...]}`` or ``{"image", "error"}``."""
        if self.error is not None:
            return {"image": self.image, "error": {"code": self.error.code, "message": str(self.error)}}
        record: dict[str, Any] = {"image": self.image, "width": self.width, "height": self.height}
        if self.output is not None:
            record["output"] = self.output
        record["faces"] = self.detections.to_records() if self.detections is not None else []
        return record


class PhotoProcessor:
    """Runs photo jobs with one loaded :class:`Anonymizer` (safe to share between threads).

    Args:
        anonymizer: detector and mask settings.
        io: pixel limit and encoder settings.
    """

    def __init__(
        self, anonymizer: Anonymizer, io: ImageIOConfig | None = None, keep: KeepFaces | None = None
    ) -> None:
        self.anonymizer = anonymizer
        self.io = io or ImageIOConfig()
        self.keep = keep

    def process(
        self,
        source: str | os.PathLike[str],
        target: str | os.PathLike[str] | None,
        *,
        in_place: bool = False,
        manifest: ManifestOptions | None = None,
        regions: str | os.PathLike[str] | None = None,
        regions_in: str | os.PathLike[str] | None = None,
    ) -> PhotoReport:
        """Anonymize ``source`` into ``target`` (None: detect only). Errors are reported, not raised.

        The input is never overwritten unless ``in_place`` is True. With ``manifest``, a manifest
        of the result is written after it (and the result removed again if that fails). With
        ``regions``, the photo's regions document is written (each face a track of its own);
        with ``regions_in``, the faces are not searched: that document says what to hide (it is
        checked to belong to this photo first). Faces matching a ``keep`` person stay visible.
        """
        name = os.fspath(source)
        try:
            photo = read_image(source, self.io)
            if target is None:
                found = self.anonymizer.detect(photo.rgb)
                return PhotoReport(name, None, photo.width, photo.height, found)
            digest = self._input_digest(source) if manifest is not None else None
            document = None
            if regions is not None or regions_in is not None or self.keep is not None:
                document = self._document(source, photo.rgb, regions_in)
                result = self.anonymizer.hide(photo.rgb, hidden_detections(document.frames[0]))
                result = Result(result.image, _found(document), result.regions, result.people)
            else:
                result = self.anonymizer.apply(photo.rgb)
            forbid = () if in_place else (Path(source),)
            write_image(target, result.image, photo.alpha, photo.grayscale, self.io, forbid=forbid)
            if regions is not None and document is not None:
                self._save(document, Path(regions), Path(target), in_place)
            if manifest is not None and digest is not None:
                self._write_manifest(digest, Path(target), len(result.detections), manifest, in_place)
            return PhotoReport(name, os.fspath(target), photo.width, photo.height, result.detections)
        except FaceveilError as exc:
            return PhotoReport(name, error=exc)

    def _document(
        self, source: str | os.PathLike[str], rgb: RGBImage, regions_in: str | os.PathLike[str] | None
    ) -> RegionsDocument:
        """The photo's regions: read from ``regions_in`` (checked), or found, faces kept by identity."""
        height, width = rgb.shape[:2]
        identity = file_identity(source, width, height, 1, None)
        if regions_in is not None:
            document = load_document(regions_in)
            check_source(document, identity, "image")
            return document
        found = self.anonymizer.detect(rgb)
        rows = tuple(replace(region, track=i + 1) for i, region in enumerate(regions_from_detections(found)))
        keep = {int(r.track or 0) for r in rows if self._kept(rgb, r.box)}
        return build_document("image", identity, [FrameRegions(0, None, rows)], keep)

    def _kept(self, rgb: RGBImage, box: tuple[float, float, float, float]) -> bool:
        """Is this photo face one of the ``keep`` people? (one face: one descriptor decides)"""
        keep = self.keep
        if keep is None or min(box[2] - box[0], box[3] - box[1]) < keep.config.min_face:
            return False
        return keep.matches([keep.describer.describe(rgb, box)], min_samples=1)

    @staticmethod
    def _save(document: RegionsDocument, path: Path, target: Path, in_place: bool) -> None:
        try:
            document.save(path)
        except OSError as exc:
            if not in_place:  # no result without its regions file
                target.unlink(missing_ok=True)
            raise OutputError(f"cannot write the regions file {path}: {exc.strerror or exc}") from None

    @staticmethod
    def _input_digest(source: str | os.PathLike[str]) -> tuple[str, int]:
        from faceveil.compliance.manifest import sha256_file

        try:
            return sha256_file(source)
        except OSError as exc:
            raise InputError(f"cannot read {os.fspath(source)}: {exc.strerror or exc}") from None

    def _write_manifest(
        self, digest: tuple[str, int], target: Path, faces: int, options: ManifestOptions, in_place: bool
    ) -> None:
        from faceveil.compliance.manifest import build_manifest, sign, write_manifest
        from faceveil.compliance.models import model_files

        try:
            document = build_manifest(
                kind="photo",
                input_digest=digest,
                output=target,
                settings={"photo": {"anonymizer": self.anonymizer.config, "io": self.io}},
                models=model_files(self.anonymizer.config),
                counts={"faces": faces},
            )
            write_manifest(options.path, sign(document, options.signing_key))
        except (FaceveilError, OSError) as exc:
            if not in_place:  # no result without its manifest (an input overwritten in place stays)
                target.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise OutputError(f"cannot write the manifest of {target}: {exc}") from None
            raise


def _found(document: RegionsDocument) -> Detections:
    """Every face of a photo's document (kept ones too), as the report lists them."""
    frame = document.frames[0]
    return hidden_detections(
        replace(frame, regions=tuple(replace(r, kept=False, removed=False) for r in frame.regions))
    )


def anonymize_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    config: AnonymizerConfig | None = None,
    io: ImageIOConfig | None = None,
) -> PhotoReport:
    """One call: hide every face of the photo ``source`` and write it to ``target``.

    Raises the :class:`faceveil.errors.FaceveilError` that stopped it, if any.
    """
    report = PhotoProcessor(Anonymizer(config), io).process(source, target)
    if report.error is not None:
        raise report.error
    return report
