"""The visible watermark: a short label drawn on a picture after its faces are hidden.

The text is drawn with OpenCV's Hershey simplex font. It is compiled into OpenCV (a dependency
already), so no font file is shipped or looked up on the system, and the same text renders the
same pixels everywhere. The price is ASCII only, which `WatermarkConfig` checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from faceveil.config import WatermarkConfig

RGBImage = npt.NDArray[np.uint8]

_FONT_HEIGHT_AT_1 = 22.0  # cap height of FONT_HERSHEY_SIMPLEX at scale 1, in pixels
_MIN_TEXT_PX = 6.0


@dataclass(frozen=True)
class _Layout:
    box: tuple[int, int, int, int]  # the band, x1, y1, x2, y2
    origin: tuple[int, int]  # text origin (bottom-left of the text) inside the band
    scale: float
    thickness: int


def label_box(shape: tuple[int, ...], config: WatermarkConfig) -> tuple[int, int, int, int]:
    """Where the label goes in a picture of ``shape``: ``(x1, y1, x2, y2)`` in pixels."""
    return _layout(shape[0], shape[1], config).box


def _layout(height: int, width: int, config: WatermarkConfig) -> _Layout:
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(_MIN_TEXT_PX, config.size * height) / _FONT_HEIGHT_AT_1
    while True:  # shrink until the band fits the width (or the text is as small as it gets)
        thickness = max(1, round(scale * 1.6))
        (text_w, text_h), base = cv2.getTextSize(config.text, font, scale, thickness)
        pad = max(2, round(text_h * 0.35))
        band_w, band_h = text_w + 2 * pad, text_h + base + 2 * pad
        if band_w <= width * 0.96 or scale * _FONT_HEIGHT_AT_1 <= _MIN_TEXT_PX:
            break
        scale = max(_MIN_TEXT_PX / _FONT_HEIGHT_AT_1, scale * width * 0.95 / band_w)
    band_w, band_h = min(band_w, width), min(band_h, height)
    margin = max(2, round(0.02 * min(height, width)))
    if config.position == "center":
        x1, y1 = (width - band_w) // 2, (height - band_h) // 2
    else:
        vertical, horizontal = config.position.split("-")
        x1 = margin if horizontal == "left" else width - band_w - margin
        y1 = margin if vertical == "top" else height - band_h - margin
    x1, y1 = min(max(0, x1), width - band_w), min(max(0, y1), height - band_h)  # always inside
    return _Layout((x1, y1, x1 + band_w, y1 + band_h), (pad, pad + text_h), scale, thickness)


def draw_watermark(image: RGBImage, config: WatermarkConfig) -> RGBImage:
    """Draw the label on ``image`` (RGB uint8, changed in place) and return it.

    Light text on a darkened band, blended with ``config.opacity``; only the band's pixels
    change, and it is drawn over the finished picture (faces already hidden).
    """
    import cv2

    layout = _layout(image.shape[0], image.shape[1], config)
    x1, y1, x2, y2 = layout.box
    region = image[y1:y2, x1:x2]
    if region.size == 0:
        return image
    label = np.ascontiguousarray(region // 5)
    cv2.putText(
        label,
        config.text,
        layout.origin,
        cv2.FONT_HERSHEY_SIMPLEX,
        layout.scale,
        (255, 255, 255),
        layout.thickness,
        cv2.LINE_AA,
    )
    alpha = config.opacity
    blended = region.astype(np.float32) * (1.0 - alpha) + label.astype(np.float32) * alpha
    region[...] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return image
