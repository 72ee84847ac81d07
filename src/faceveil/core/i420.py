"""I420 pictures: the decoder's 4:2:0 pixels as one ``(3H/2, W)`` uint8 array (Y, then U, then V;
U and V at half the width and height)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from faceveil.errors import ValidationError

I420Image = npt.NDArray[np.uint8]
Plane = npt.NDArray[np.uint8]


def i420_size(yuv: I420Image) -> tuple[int, int]:
    """``(width, height)`` of an I420 array ``(3H/2, W)``; both must be even."""
    height = yuv.shape[0] * 2 // 3 if yuv.ndim == 2 else 0
    if (
        yuv.dtype != np.uint8
        or yuv.ndim != 2
        or yuv.shape[0] % 3
        or yuv.shape[1] % 2
        or height % 2
        or not height
    ):
        raise ValidationError(f"expected a (3H/2, W) uint8 I420 array of even size, got {yuv.shape}")
    return int(yuv.shape[1]), height


def i420_planes(yuv: I420Image) -> tuple[Plane, Plane, Plane]:
    """Views of the Y ``(H, W)``, U and V ``(H/2, W/2)`` planes of a C-contiguous I420 array."""
    width, height = i420_size(yuv)
    if not yuv.flags.c_contiguous:
        raise ValidationError("the I420 array must be C-contiguous (its planes are views of it)")
    flat = yuv.reshape(-1)
    luma, chroma = width * height, width * height // 4
    y = flat[:luma].reshape(height, width)
    u = flat[luma : luma + chroma].reshape(height // 2, width // 2)
    v = flat[luma + chroma :].reshape(height // 2, width // 2)
    return y, u, v
