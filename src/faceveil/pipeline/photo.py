"""Photo jobs: read a file, hide its faces, write the result with no metadata."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.config import AnonymizerConfig, ImageIOConfig
from faceveil.core.detections import Detections
from faceveil.errors import FaceveilError, InputError, OutputError
from faceveil.media.image_io import read_image, write_image

if TYPE_CHECKING:
    from faceveil.compliance.manifest import ManifestOptions


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

    def __init__(self, anonymizer: Anonymizer, io: ImageIOConfig | None = None) -> None:
        self.anonymizer = anonymizer
        self.io = io or ImageIOConfig()

    def process(
        self,
        source: str | os.PathLike[str],
        target: str | os.PathLike[str] | None,
        *,
        in_place: bool = False,
        manifest: ManifestOptions | None = None,
    ) -> PhotoReport:
        """Anonymize ``source`` into ``target`` (None: detect only). Errors are reported, not raised.

        The input is never overwritten unless ``in_place`` is True. With ``manifest``, a manifest
        of the result is written after it (and the result removed again if that fails).
        """
        name = os.fspath(source)
        try:
            photo = read_image(source, self.io)
            if target is None:
                found = self.anonymizer.detect(photo.rgb)
                return PhotoReport(name, None, photo.width, photo.height, found)
            digest = self._input_digest(source) if manifest is not None else None
            result = self.anonymizer.apply(photo.rgb)
            forbid = () if in_place else (Path(source),)
            write_image(target, result.image, photo.alpha, photo.grayscale, self.io, forbid=forbid)
            if manifest is not None and digest is not None:
                self._write_manifest(digest, Path(target), len(result.detections), manifest, in_place)
            return PhotoReport(name, os.fspath(target), photo.width, photo.height, result.detections)
        except FaceveilError as exc:
            return PhotoReport(name, error=exc)

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
