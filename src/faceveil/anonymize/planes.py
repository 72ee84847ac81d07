"""Hiding in the decoder's own 4:2:0 pixels (I420), without a full-frame RGB round trip.

A Gaussian blur is linear and the YUV to RGB conversion affine, so blurring a region's Y, U and
V planes hides it as blurring its RGB pixels does. U and V have half the resolution: a region's
chroma covers every 2x2 block of pixels the region touches (its window rounded outward to even
coordinates), so no chroma of a face is left clear along its edge. Every pixel outside the
regions (and their chroma blocks) keeps the decoder's exact bytes.
"""

from __future__ import annotations

import numpy as np

from faceveil.anonymize.filters import BlurFilter, paste
from faceveil.anonymize.regions import Region, merge_overlapping
from faceveil.core.i420 import I420Image, i420_planes


def chroma_region(region: Region) -> Region:
    """``region`` on the half-resolution U/V planes: every 2x2 block it touches is in it."""
    x1, y1, x2, y2 = region.window
    ex1, ey1, ex2, ey2 = x1 - x1 % 2, y1 - y1 % 2, x2 + x2 % 2, y2 + y2 % 2
    full = np.zeros((ey2 - ey1, ex2 - ex1), dtype=bool)
    full[y1 - ey1 : y2 - ey1, x1 - ex1 : x2 - ex1] = region.mask
    half = full[0::2, 0::2] | full[0::2, 1::2] | full[1::2, 0::2] | full[1::2, 1::2]
    bx1, by1, bx2, by2 = region.box
    box = (min(bx1, ex1) / 2, min(by1, ey1) / 2, max(bx2, ex2) / 2, max(by2, ey2) / 2)
    return Region(box=box, window=(ex1 // 2, ey1 // 2, ex2 // 2, ey2 // 2), mask=half)


class I420Blur:
    """`BlurFilter` applied to the planes of an I420 picture (U and V at half resolution, with
    half the sigma in their pixels: the same blur on the picture)."""

    def __init__(self, strength: float = 0.2) -> None:
        self.blur = BlurFilter(strength)

    def apply(self, yuv: I420Image, regions: list[Region]) -> I420Image:
        """Hide every region of the contiguous I420 array ``yuv`` in place; return it."""
        y, u, v = i420_planes(yuv)
        for region in merge_overlapping(regions):  # as BlurFilter.apply groups them
            paste(y, region, self.blur.blurred(y, region))
            chroma = chroma_region(region)
            hidden = self.blur.blurred(u, chroma, also=v)  # both chroma planes in one blur
            paste(u, chroma, hidden[..., 0])
            paste(v, chroma, hidden[..., 1])
        return yuv
