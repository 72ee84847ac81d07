"""Typed, frozen configuration for the library. Every value is validated when built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from faceveil.errors import ConfigError

MODES = ("blur", "pixelate", "solid", "none")
SHAPES = ("ellipse", "box")
DEVICES = ("auto", "cpu", "cuda")
TARGETS = ("face", "head", "person")
WATERMARK_POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left", "center")

Mode = Literal["blur", "pixelate", "solid", "none"]
Shape = Literal["ellipse", "box"]
Device = Literal["auto", "cpu", "cuda"]
Target = Literal["face", "head", "person"]


def check_choice(kind: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise `ConfigError` naming the valid choices when ``value`` is not one of them."""
    if value not in choices:
        raise ConfigError(f"unknown {kind} {value!r}; choose one of: {', '.join(choices)}")


def parse_color(text: str) -> tuple[int, int, int]:
    """Parse ``RRGGBB`` (optionally with a leading ``#``) into an ``(r, g, b)`` tuple."""
    value = text.strip().removeprefix("#")
    if len(value) != 6 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise ConfigError(f"colour must be six hex digits RRGGBB (e.g. ff00ff), got {text!r}")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


@dataclass(frozen=True)
class DetectorConfig:
    """Which face detector to run and how.

    Attributes:
        name: a detector name from :func:`faceveil.detection.available_detectors` or a preset
            (``fast``, ``balanced``, ``thorough``).
        threshold: score threshold; None uses the detector's own recall-first default.
        device: ``auto`` uses a GPU execution provider when one is installed, ``cpu`` never does.
        max_side: pictures whose longer side is larger are downscaled to it for detection (boxes
            still come back in the picture's own pixels); None detects at full resolution.
    """

    name: str = "balanced"
    threshold: float | None = None
    device: Device = "auto"
    max_side: int | None = None

    def __post_init__(self) -> None:
        if self.max_side is not None and self.max_side < 64:
            raise ConfigError(f"max_side must be at least 64 pixels, got {self.max_side}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must lie in [0, 1], got {self.threshold}")
        check_choice("device", self.device, DEVICES)


@dataclass(frozen=True)
class MaskConfig:
    """How each found face is hidden.

    Attributes:
        mode: ``blur`` (Gaussian), ``pixelate`` (mosaic), ``solid`` (fill colour) or ``none``.
        shape: ``ellipse`` (inscribed in the scaled box) or ``box``.
        scale: the face box is scaled by this factor about its centre before hiding.
        color: fill colour for ``solid``, as ``(r, g, b)``.
        blur_strength: Gaussian sigma as a share of the region's longer side (0.2 by default: a
            200 px face is blurred with sigma 52 px, so no facial feature survives).
        cells: mosaic cells along the region's longer side for ``pixelate``.
        outline: draw a visible green outline around each hidden region.
        min_margin: every region reaches at least this many pixels beyond its face box (a box
            a few pixels off uncovers half of a tiny face, not of a large one).
    """

    mode: Mode = "blur"
    shape: Shape = "ellipse"
    scale: float = 1.3
    color: tuple[int, int, int] = (0, 0, 0)
    blur_strength: float = 0.2
    cells: int = 8
    outline: bool = False
    min_margin: float = 2.0

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, MODES)
        check_choice("shape", self.shape, SHAPES)
        if not 0.5 <= self.scale <= 4.0:
            raise ConfigError(f"mask scale must lie in [0.5, 4], got {self.scale}")
        if len(self.color) != 3 or any(not 0 <= int(c) <= 255 for c in self.color):
            raise ConfigError(f"color must be three integers in [0, 255], got {self.color}")
        if not 0.01 <= self.blur_strength <= 1.0:
            raise ConfigError(f"blur strength must lie in [0.01, 1], got {self.blur_strength}")
        if not 0 <= self.min_margin <= 50:
            raise ConfigError(f"min margin must lie in [0, 50] pixels, got {self.min_margin}")
        if not 2 <= self.cells <= 64:
            raise ConfigError(f"cells must lie in [2, 64], got {self.cells}")


@dataclass(frozen=True)
class ImageIOConfig:
    """Limits and encoder settings for photo files.

    Attributes:
        max_pixels: images with more pixels are refused before they are decoded.
        jpeg_quality: quality of JPEG (and lossy WebP/HEIC) output, 1-100.
    """

    max_pixels: int = 100_000_000
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        if self.max_pixels < 1:
            raise ConfigError(f"max_pixels must be positive, got {self.max_pixels}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"jpeg_quality must lie in [1, 100], got {self.jpeg_quality}")


def _check_rgb(name: str, color: tuple[int, int, int]) -> None:
    if len(color) != 3 or any(not 0 <= int(c) <= 255 for c in color):
        raise ConfigError(f"{name} must be three integers in [0, 255], got {color}")


@dataclass(frozen=True)
class PoseConfig:
    """How people are found (BlazePose, one landmark pass per person) and how skeletons are drawn.

    Attributes:
        min_detection: least confidence of the pose detector inside each person's crop.
        min_face: faces smaller than this (pixels, longer side) do not seed a person crop.
        min_face_score: faces scoring less do not seed a person crop (they are still hidden).
        max_people: most people kept per picture.
        search_rounds: full-picture searches for people no face was found for (backs, profiles);
            each round hides the people already found and asks the pose detector again.
        min_visibility: landmarks less visible than this are not drawn.
        joint_color, bone_color: skeleton colours as ``(r, g, b)`` (red joints, white bones).
        thickness: bone width in pixels; 0 picks one from the picture's size.
    """

    min_detection: float = 0.5
    min_face: float = 12.0
    min_face_score: float = 0.5
    max_people: int = 32
    search_rounds: int = 2
    min_visibility: float = 0.5
    joint_color: tuple[int, int, int] = (255, 0, 0)
    bone_color: tuple[int, int, int] = (255, 255, 255)
    thickness: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_detection <= 1.0:
            raise ConfigError(f"min_detection must lie in [0, 1], got {self.min_detection}")
        if not 0.0 <= self.min_visibility <= 1.0:
            raise ConfigError(f"min_visibility must lie in [0, 1], got {self.min_visibility}")
        if not 0.0 <= self.min_face_score <= 1.0:
            raise ConfigError(f"min_face_score must lie in [0, 1], got {self.min_face_score}")
        if not 4.0 <= self.min_face <= 4096.0:
            raise ConfigError(f"min_face must lie in [4, 4096] pixels, got {self.min_face}")
        if not 1 <= self.max_people <= 256:
            raise ConfigError(f"max_people must lie in [1, 256], got {self.max_people}")
        if not 0 <= self.search_rounds <= 16:
            raise ConfigError(f"search_rounds must lie in [0, 16], got {self.search_rounds}")
        if not 0 <= self.thickness <= 64:
            raise ConfigError(f"thickness must lie in [0, 64] pixels, got {self.thickness}")
        _check_rgb("joint_color", self.joint_color)
        _check_rgb("bone_color", self.bone_color)


@dataclass(frozen=True)
class WatermarkConfig:
    """A visible label drawn on every output picture after its faces are hidden.

    Attributes:
        text: the label, e.g. ``anonymized 2026-12-01`` (printable ASCII: it is drawn with
            OpenCV's built-in Hershey font, so no font file is needed).
        position: ``bottom-right`` (default), ``bottom-left``, ``top-right``, ``top-left`` or ``center``.
        size: text height as a share of the picture's height (shrunk to fit its width).
        opacity: how opaque the label (light text on a dark band) is, 0.05-1.
    """

    text: str
    position: str = "bottom-right"
    size: float = 0.04
    opacity: float = 0.7

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ConfigError("the watermark text is empty")
        if len(self.text) > 200:
            raise ConfigError(f"the watermark text has {len(self.text)} characters; at most 200")
        if not (self.text.isascii() and self.text.isprintable()):
            raise ConfigError(
                f"the watermark text must be printable ASCII (the built-in font has no other letters), "
                f"got {self.text!r}"
            )
        check_choice("watermark position", self.position, WATERMARK_POSITIONS)
        if not 0.01 <= self.size <= 0.5:
            raise ConfigError(f"watermark size must lie in [0.01, 0.5] of the height, got {self.size}")
        if not 0.05 <= self.opacity <= 1.0:
            raise ConfigError(f"watermark opacity must lie in [0.05, 1], got {self.opacity}")


@dataclass(frozen=True)
class AnonymizerConfig:
    """Everything an :class:`faceveil.Anonymizer` needs: which detector, what to hide, and how.

    Attributes:
        detector: the face detector.
        mask: how each region is hidden.
        target: ``face`` (the default), ``head`` (face plus hair and ears, from pose landmarks, so
            people seen from the side or behind are hidden too) or ``person`` (the whole
            silhouette, from the selfie-segmentation model). Every target hides the faces the
            face detector found: ``head`` and ``person`` only ever add.
        skeleton_only: also hide every person found by pose and draw their skeletons over.
        pose: how people are found and skeletons drawn (used by ``head``, ``person`` and
            ``skeleton_only``).
        watermark: a visible label drawn on every result after hiding (None: no label).
    """

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    target: Target = "face"
    skeleton_only: bool = False
    pose: PoseConfig = field(default_factory=PoseConfig)
    watermark: WatermarkConfig | None = None

    def __post_init__(self) -> None:
        check_choice("target", self.target, TARGETS)
