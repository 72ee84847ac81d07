"""CenterFace over several scales, with a zoomed second look where small faces are doubtful.

One full-resolution pass finds most faces and also marks where small, doubtful candidates are.
Cheap downscaled passes add the large faces a full-resolution pass scores poorly; a 2x pass runs
only on the tiles around doubtful small candidates (in a crowd, that is much of the picture; in a
portrait, almost nothing), where small faces become large enough to be scored with confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from faceveil.core.detections import Detections
from faceveil.detection.centerface import PRECISIONS, CenterFace
from faceveil.detection.compose import union
from faceveil.errors import ConfigError

RGBImage = npt.NDArray[np.uint8]
_MAX_INPUT = 2048  # longest side fed to the network at once; larger inputs are tiled
_TILE_OVERLAP = 96


def brighten_if_dark(rgb: RGBImage, dark: float = 60.0) -> RGBImage | None:
    """A levels-stretched, gamma-lifted copy of a dark picture (mean below ``dark``), else None."""
    small = rgb[:: max(1, rgb.shape[0] // 256), :: max(1, rgb.shape[1] // 256)]
    if float(small.mean()) >= dark:
        return None
    top = max(float(np.percentile(small, 99.5)), 1.0)
    levels = np.clip(np.arange(256, dtype=np.float32) / top, 0.0, 1.0) ** 0.6 * 255.0
    return np.asarray(cv2.LUT(rgb, levels.astype(np.uint8)), dtype=np.uint8)


@dataclass(frozen=True)
class ScalePass:
    """One pass of the network on the image resized by ``scale``.

    Faces whose box height (in original pixels) lies in ``[min_height, max_height)`` are kept
    when they score at least ``threshold``. ``rotations`` (multiples of 90 degrees) run the
    pass on turned copies too, for faces of people lying down or pictures taken sideways.
    ``only_new`` keeps only faces no earlier pass found (a turned pass also finds upright faces,
    with looser boxes that would only widen their regions). ``precision`` picks the float or the
    int8 network for this pass (see :class:`MultiScaleCenterFace`).
    """

    scale: float
    threshold: float
    min_height: float = 0.0
    max_height: float = float("inf")
    rotations: tuple[int, ...] = (0,)
    only_new: bool = False
    precision: str = "fp32"

    def __post_init__(self) -> None:
        _check_precision(self.precision)
        if not 0.05 <= self.scale <= 4.0:
            raise ConfigError(f"pass scale must lie in [0.05, 4], got {self.scale}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"pass threshold must lie in [0, 1], got {self.threshold}")
        if any(r not in (0, 90, 180, 270) for r in self.rotations):
            raise ConfigError(f"rotations must be among 0, 90, 180, 270, got {self.rotations}")

    def keep(self, found: Detections) -> Detections:
        """The detections this pass vouches for."""
        heights = found.height
        wanted = (found.confidence >= self.threshold) & (heights >= self.min_height)
        return found[wanted & (heights < self.max_height)]


@dataclass(frozen=True)
class ZoomLook:
    """The zoomed second look at tiles holding doubtful small candidates.

    Candidates of the full-resolution pass shorter than ``seed_height`` and scoring at least
    ``seed_threshold`` mark their ``tile`` x ``tile`` cell; marked cells (with ``margin`` pixels
    of context) run at ``scale``; faces found there, centred in a marked cell and shorter than
    ``max_height``, are kept when they score at least ``threshold``. ``everywhere`` zooms the
    whole image, as is done for images whose longer side is under ``everywhere_below`` pixels
    (a small picture of a group has faces too small for one full-resolution pass). ``precision``
    picks the network, as for :class:`ScalePass`.
    """

    scale: float = 2.0
    threshold: float = 0.12
    tile: int = 64
    margin: int = 32
    seed_height: float = 40.0
    seed_threshold: float = 0.05
    seed_max_score: float = 1.0
    max_height: float = 64.0
    everywhere: bool = False
    everywhere_below: int = 640
    precision: str = "fp32"

    def __post_init__(self) -> None:
        _check_precision(self.precision)


class MultiScaleCenterFace:
    """CenterFace at full resolution, extra scales, and a zoomed look; results fused.

    Args:
        model: the loaded float CenterFace (one session shared by every float pass).
        base: the full-resolution pass (its scale must be 1).
        extra: further passes, typically downscaled ones for large faces.
        zoom: the zoomed second look, or None.
        int8_model: the int8 CenterFace for passes whose ``precision`` is ``int8``; without
            it, those passes run the float model.
        base_max_side: run the base pass on a copy no larger than this (coarse to fine: the
            zoomed look then reads the picture's own pixels around the doubtful candidates the
            coarse pass marks); None runs it at full resolution.
    """

    def __init__(
        self,
        model: CenterFace,
        base: ScalePass,
        extra: Sequence[ScalePass] = (),
        zoom: ZoomLook | None = None,
        int8_model: CenterFace | None = None,
        base_max_side: int | None = None,
    ) -> None:
        if base.scale != 1.0:
            raise ConfigError("the base pass must run at scale 1 (use base_max_side to coarsen it)")
        if base_max_side is not None and base_max_side < 64:
            raise ConfigError(f"base_max_side must be at least 64 pixels, got {base_max_side}")
        self.model = model
        self.models = {"fp32": model, "int8": int8_model or model}
        self.base = base
        self.extra = tuple(extra)
        self.zoom = zoom
        self.base_max_side = base_max_side

    def base_scale(self, rgb: RGBImage) -> float:
        """The scale the base pass runs at on ``rgb`` (1 unless ``base_max_side`` is smaller)."""
        longest = max(rgb.shape[:2])
        if self.base_max_side is None or longest <= self.base_max_side:
            return 1.0
        return self.base_max_side / longest

    @property
    def providers(self) -> list[str]:
        """The execution providers of the float network's session."""
        return self.model.providers

    def describe(self) -> list[dict[str, Any]]:
        """Every pass, with the precision it asks for and the one its network actually runs."""
        passes: list[dict[str, Any]] = []
        for name, spec in (("full", self.base), *(("extra", extra) for extra in self.extra)):
            passes.append(
                {
                    "pass": name,
                    "scale": spec.scale,
                    **({"max_side": self.base_max_side} if name == "full" and self.base_max_side else {}),
                    "threshold": spec.threshold,
                    "rotations": list(spec.rotations),
                    "precision": self.models[spec.precision].precision,
                }
            )
        if self.zoom is not None:
            zoom = self.zoom
            passes.append(
                {
                    "pass": "zoom",
                    "scale": zoom.scale,
                    "threshold": zoom.threshold,
                    "everywhere": zoom.everywhere,
                    "precision": self.models[zoom.precision].precision,
                }
            )
        return passes

    def detect(self, rgb: RGBImage) -> Detections:
        """Faces in ``rgb`` from every pass, fused."""
        floor = min(self.base.threshold, self.zoom.seed_threshold if self.zoom else 1.0)
        base, scale = self.base, self.base_scale(rgb)
        full = self.run(rgb, scale, floor, base.precision)
        parts = [base.keep(full)]
        brightened = brighten_if_dark(rgb)
        if brightened is not None:  # a dark picture: look again with its levels stretched
            parts.append(base.keep(self.run(brightened, scale, base.threshold, base.precision)))
        for extra in self.extra:
            found = Detections.merge([extra.keep(self._turned(rgb, turn, extra)) for turn in extra.rotations])
            parts.append(_new_only(found, Detections.merge(parts)) if extra.only_new else found)
        if self.zoom is not None:
            parts.append(self._zoomed(rgb, full, self.zoom))
        return union(parts)

    def run(self, rgb: RGBImage, scale: float, threshold: float, precision: str = "fp32") -> Detections:
        """One pass at ``scale``, tiled when the network input would be too large."""
        model = self.models[precision]
        height, width = rgb.shape[:2]
        if max(height, width) * scale <= _MAX_INPUT:
            return model.detect(rgb, scale=scale, threshold=threshold)
        step = int(_MAX_INPUT / scale) - _TILE_OVERLAP
        parts = []
        for y in range(0, max(1, height - _TILE_OVERLAP), step):
            for x in range(0, max(1, width - _TILE_OVERLAP), step):
                crop = rgb[y : y + step + _TILE_OVERLAP, x : x + step + _TILE_OVERLAP]
                found = model.detect(crop, scale=scale, threshold=threshold)
                parts.append(found.transformed(1.0, x, y))
        return union(parts)

    def _turned(self, rgb: RGBImage, degrees: int, spec: ScalePass) -> Detections:
        """Run ``spec`` on ``rgb`` turned counter-clockwise by ``degrees``; boxes come back upright."""
        if degrees == 0:
            return self.run(rgb, spec.scale, spec.threshold, spec.precision)
        turns = degrees // 90
        turned = np.ascontiguousarray(np.rot90(rgb, turns))
        found = self.run(turned, spec.scale, spec.threshold, spec.precision)
        return unturn(found, turns, rgb.shape[1], rgb.shape[0])

    def _zoomed(self, rgb: RGBImage, full: Detections, zoom: ZoomLook) -> Detections:
        height, width = rgb.shape[:2]
        rows, cols = -(-height // zoom.tile), -(-width // zoom.tile)
        marked = np.zeros((rows, cols), dtype=np.uint8)
        if zoom.everywhere or max(height, width) < zoom.everywhere_below:
            marked[:] = 1
        else:
            doubtful = (full.confidence >= zoom.seed_threshold) & (full.confidence < zoom.seed_max_score)
            seeds = full[(full.height < zoom.seed_height) & doubtful]
            centre = (seeds.xyxy[:, :2] + seeds.xyxy[:, 2:]) / 2 // zoom.tile
            cx = np.clip(centre[:, 0].astype(np.int64), 0, cols - 1)
            cy = np.clip(centre[:, 1].astype(np.int64), 0, rows - 1)
            marked[cy, cx] = 1
        if not marked.any():
            return Detections.empty()
        count, _, stats, _ = cv2.connectedComponentsWithStats(marked, connectivity=8)
        parts = []
        for left, top, span_x, span_y, _area in stats[1:count]:
            x1 = max(0, left * zoom.tile - zoom.margin)
            y1 = max(0, top * zoom.tile - zoom.margin)
            x2 = min(width, (left + span_x) * zoom.tile + zoom.margin)
            y2 = min(height, (top + span_y) * zoom.tile + zoom.margin)
            crop = rgb[y1:y2, x1:x2]
            found = self.run(crop, zoom.scale, zoom.threshold, zoom.precision).transformed(1.0, x1, y1)
            parts.append(found)
        found = Detections.merge(parts)
        if not len(found):
            return found
        centre = (found.xyxy[:, :2] + found.xyxy[:, 2:]) / 2 // zoom.tile
        cx = np.clip(centre[:, 0].astype(np.int64), 0, cols - 1)
        cy = np.clip(centre[:, 1].astype(np.int64), 0, rows - 1)
        return found[(marked[cy, cx] == 1) & (found.height < zoom.max_height)]


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")


def _new_only(found: Detections, known: Detections) -> Detections:
    """The detections of ``found`` whose centre lies in no box of ``known``."""
    if not len(found) or not len(known):
        return found
    centre = (found.xyxy[:, :2] + found.xyxy[:, 2:]) / 2
    boxes = known.xyxy
    inside = (
        (centre[:, None, 0] >= boxes[None, :, 0])
        & (centre[:, None, 0] <= boxes[None, :, 2])
        & (centre[:, None, 1] >= boxes[None, :, 1])
        & (centre[:, None, 1] <= boxes[None, :, 3])
    )
    return found[~inside.any(axis=1)]


def unturn(found: Detections, turns: int, width: int, height: int) -> Detections:
    """Map detections made on ``np.rot90(image, turns)`` back to the upright ``width x height`` image."""
    corners = found.xyxy.reshape(-1, 2, 2)  # (x1, y1), (x2, y2)
    points = [corners]
    if found.landmarks is not None:
        points.append(found.landmarks)
    mapped = []
    for p in points:
        x, y = p[..., 0], p[..., 1]
        for step in reversed(range(turns % 4)):
            # turn number `step` (counter-clockwise) took (x, y) on an image `w` wide to (y, w - x)
            w = width if step % 2 == 0 else height
            x, y = w - y, x
        mapped.append(np.stack([x, y], axis=-1))
    boxes = mapped[0]
    xyxy = np.concatenate([boxes.min(axis=1), boxes.max(axis=1)], axis=1)
    landmarks = mapped[1] if len(mapped) > 1 else None
    return Detections(xyxy, found.confidence, landmarks, found.tracker_id, found.data)
