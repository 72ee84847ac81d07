"""`Frame`: one picture on its way through a pipeline (a photo, or one frame of a video)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from faceveil.errors import ValidationError


@dataclass(frozen=True)
class FrameTime:
    """A frame's place in its source without its pixels (a frame hidden in its 4:2:0 planes).

    Attributes:
        index, pts, time_base: as for `Frame`.
    """

    index: int
    pts: int | None
    time_base: Fraction | None


@dataclass(frozen=True, eq=False)
class Frame:
    """An RGB picture with its place in time.

    Attributes:
        rgb: ``(H, W, 3)`` uint8 RGB pixels.
        index: position in its source (0 for a photo).
        pts: presentation timestamp in ``time_base`` units, or None for a photo.
        time_base: the unit of ``pts`` as an exact fraction of a second.
    """

    rgb: npt.NDArray[np.uint8]
    index: int = 0
    pts: int | None = None
    time_base: Fraction | None = None

    def __post_init__(self) -> None:
        rgb = self.rgb
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8:
            raise ValidationError("Frame.rgb must be a uint8 numpy array")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
            raise ValidationError(f"Frame.rgb must have shape (H, W, 3), got {rgb.shape}")
        if self.index < 0:
            raise ValidationError("Frame.index must be >= 0")

    @property
    def height(self) -> int:
        """Height in pixels."""
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        """Width in pixels."""
        return int(self.rgb.shape[1])

    @property
    def time(self) -> Fraction | None:
        """Exact presentation time in seconds, when known."""
        if self.pts is None or self.time_base is None:
            return None
        return self.pts * self.time_base
