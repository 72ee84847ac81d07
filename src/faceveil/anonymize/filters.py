"""Ways to hide a region: Gaussian blur, mosaic, solid fill, or nothing (detect only).

Each filter has one verb, ``apply(image, regions)``: it changes only the pixels inside the
regions' masks and returns the image it was given (changed in place).
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from faceveil.anonymize.regions import Region, merge_overlapping
from faceveil.config import MaskConfig

Image = npt.NDArray[np.uint8]


class Filter(Protocol):
    """Hides regions of an ``(H, W, C)`` uint8 image in place."""

    def apply(self, image: Image, regions: list[Region]) -> Image:
        """Hide every region of ``image``; return it."""
        ...


def paste(image: Image, region: Region, hidden: Image) -> None:
    """Write ``hidden`` (the window's new pixels) into ``image`` where ``region``'s mask is set."""
    x1, y1, x2, y2 = region.window
    view = image[y1:y2, x1:x2]
    if view.size == 0:
        return
    # cv2.copyTo writes into the view in place (a tenth of np.copyto's time with a mask)
    cv2.copyTo(np.ascontiguousarray(hidden), region.mask.view(np.uint8), view)


class BlurFilter:
    """Gaussian blur whose sigma grows with the region (``strength`` x its longer side).

    Large sigmas are computed on a copy downscaled so that about 3 px of sigma remain, with a
    separable Gaussian kernel (OpenCV's ``GaussianBlur`` costs 5-30x more on small crops); the
    blur reads some context around the region so that its edge blends in.
    """

    def __init__(self, strength: float = 0.2) -> None:
        self.strength = strength

    def apply(self, image: Image, regions: list[Region]) -> Image:
        """Blur every region; strongly overlapping ones (the same face seen twice) are blurred
        once, as one region covering all their pixels (see `merge_overlapping`)."""
        for region in merge_overlapping(regions):
            paste(image, region, self.blurred(image, region))
        return image

    def blurred(self, image: Image, region: Region, also: Image | None = None) -> Image:
        """The pixels of ``region``'s window blurred (read with context around it); with
        ``also`` (a second plane of the same size) both, as the two channels of the result."""
        height, width = image.shape[:2]
        sigma = max(1.0, self.strength * region.size)
        pad = int(np.ceil(sigma))
        x1, y1, x2, y2 = region.window
        cx1, cy1 = max(0, x1 - pad), max(0, y1 - pad)
        cx2, cy2 = min(width, x2 + pad), min(height, y2 + pad)
        crop = image[cy1:cy2, cx1:cx2]
        if also is not None:
            crop = np.asarray(cv2.merge((crop, also[cy1:cy2, cx1:cx2])), np.uint8)
        blurred = _gaussian(crop, sigma)
        return blurred[y1 - cy1 : y2 - cy1, x1 - cx1 : x2 - cx1]


#: the sigma left to blur after downscaling (larger sigmas are blurred on a smaller copy)
_SIGMA_AFTER_DOWNSCALE = 3.0


def _gaussian(crop: Image, sigma: float) -> Image:
    """``crop`` blurred with a Gaussian of ``sigma`` px (approximated, see `BlurFilter`)."""
    h, w = crop.shape[:2]
    factor = max(1, int(sigma // _SIGMA_AFTER_DOWNSCALE))
    small = crop
    if factor > 1 and min(h, w) >= 2 * factor:
        size = (max(1, w // factor), max(1, h // factor))
        small = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), np.uint8)
    else:
        factor = 1
    # sepFilter2D, not stackBlur: OpenCV's stack blur reads outside a crop smaller than its
    # kernel and gives different pixels from run to run
    left = sigma / factor
    kernel = cv2.getGaussianKernel(2 * int(np.ceil(3 * left)) + 1, left)
    small = np.asarray(cv2.sepFilter2D(small, -1, kernel, kernel, borderType=cv2.BORDER_REPLICATE), np.uint8)
    if factor == 1:
        return np.asarray(small, np.uint8).reshape(crop.shape)
    return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8).reshape(crop.shape)


class PixelateFilter:
    """Mosaic: ``cells`` square cells along the region's longer side, each the mean of its pixels."""

    def __init__(self, cells: int = 8) -> None:
        self.cells = cells

    def apply(self, image: Image, regions: list[Region]) -> Image:
        for region in regions:
            cell = max(1.0, region.size / self.cells)
            x1, y1, x2, y2 = region.window
            # the grid is anchored at the unclipped box, so a face cut by the border keeps its cells
            col_cell = _cell_index(region.box[0], x1, x2, cell)
            row_cell = _cell_index(region.box[1], y1, y2, cell)
            crop = image[y1:y2, x1:x2].astype(np.float64)
            # a first pixel whose centre lies just before the box edge has cell -1: start there too
            col_starts = np.flatnonzero(np.diff(col_cell, prepend=col_cell[0] - 1))
            row_starts = np.flatnonzero(np.diff(row_cell, prepend=row_cell[0] - 1))
            sums = np.add.reduceat(np.add.reduceat(crop, row_starts, axis=0), col_starts, axis=1)
            rows = np.diff(np.append(row_starts, y2 - y1))
            cols = np.diff(np.append(col_starts, x2 - x1))
            counts = (rows[:, None] * cols[None, :]).reshape(len(rows), len(cols), *([1] * (crop.ndim - 2)))
            means = np.rint(sums / counts).astype(np.uint8)
            mosaic = np.repeat(np.repeat(means, rows, axis=0), cols, axis=1)
            paste(image, region, mosaic)
        return image


def _cell_index(origin: float, lo: int, hi: int, cell: float) -> npt.NDArray[np.int64]:
    """Mosaic cell number of each pixel in ``[lo, hi)``, for cells of ``cell`` px from ``origin``."""
    centres = np.arange(lo, hi, dtype=np.float64) + 0.5
    index: npt.NDArray[np.int64] = np.floor((centres - origin) / cell).astype(np.int64)
    return index


class SolidFilter:
    """Fills each region with one colour."""

    def __init__(self, color: tuple[int, int, int] = (0, 0, 0)) -> None:
        self.color = color

    def apply(self, image: Image, regions: list[Region]) -> Image:
        fill = np.asarray(self.color, dtype=np.uint8)[: image.shape[2] if image.ndim == 3 else 1]
        for region in regions:
            x1, y1, x2, y2 = region.window
            image[y1:y2, x1:x2][region.mask] = fill
        return image


class NoFilter:
    """Leaves the image as it is (``--mode none``: detect and report only)."""

    def apply(self, image: Image, regions: list[Region]) -> Image:
        return image


def create_filter(config: MaskConfig) -> Filter:
    """The filter ``config.mode`` names (validated by `MaskConfig`)."""
    if config.mode == "blur":
        return BlurFilter(config.blur_strength)
    if config.mode == "pixelate":
        return PixelateFilter(config.cells)
    if config.mode == "solid":
        return SolidFilter(config.color)
    return NoFilter()


def draw_outlines(image: Image, regions: list[Region], shape: str) -> Image:
    """Draw a green outline around each region: 2 px on images up to 1280 px, 3 px above."""
    thickness = 2 if max(image.shape[:2]) <= 1280 else 3
    green = (0, 255, 0)
    for region in regions:
        x1, y1, x2, y2 = (round(v) for v in region.box)
        if shape == "ellipse":
            centre = ((x1 + x2) // 2, (y1 + y2) // 2)
            axes = (max(1, (x2 - x1) // 2), max(1, (y2 - y1) // 2))
            cv2.ellipse(image, centre, axes, 0, 0, 360, green, thickness, cv2.LINE_AA)
        else:
            cv2.rectangle(image, (x1, y1), (x2, y2), green, thickness)
    return image
