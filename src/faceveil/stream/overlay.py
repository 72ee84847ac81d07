"""The optional on-screen figures of a live stream: fps, faces in view, added latency."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def overlay_text(fps: float, faces: int, latency_ms: float) -> str:
    """The overlay's one line, e.g. ``25.0 fps | 2 faces | 38 ms``."""
    noun = "face" if faces == 1 else "faces"
    return f"{fps:.1f} fps | {faces} {noun} | {latency_ms:.0f} ms"


def draw_overlay(image: npt.NDArray[np.uint8], *, fps: float, faces: int, latency_ms: float) -> None:
    """Draw the figures in the top-left corner of ``image`` (RGB, changed in place).

    Drawn after the faces are hidden, on a dark band so that it stays readable; the text scales
    with the frame's height.
    """
    import cv2

    text = overlay_text(fps, faces, latency_ms)
    height = image.shape[0]
    scale = max(0.35, height / 900.0)
    thickness = max(1, round(scale * 2))
    (width, text_h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, round(4 * scale))
    bottom = min(height, text_h + base + 2 * pad)
    right = min(image.shape[1], width + 2 * pad)
    image[:bottom, :right] = (image[:bottom, :right] // 3).astype(np.uint8)
    cv2.putText(
        image,
        text,
        (pad, pad + text_h),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )
