"""Presets: ready-made detector pipelines for speed/recall trade-offs.

- ``fast``: one int8 CenterFace pass at full resolution.
- ``balanced`` (default): full resolution + 1/2 and 1/4 scale passes for large faces + a 2x look
  at the tiles where small faces are doubtful; a dark picture gets a second, brightened full pass.
  The full-resolution pass and the 2x look run the int8 network.
- ``video`` (the video default): one int8 pass on a copy downscaled to 960 px, then a
  full-resolution int8 look at the tiles around small or doubtful candidates of that pass. On
  1080p crowds it finds more of the faces a full 1920 px pass finds than one 1440 px pass does,
  at 0.6x its cost; pictures up to 960 px run as ``fast`` plus that look.
- ``thorough``: like balanced, but the 2x look covers the whole picture, a 1/2 scale pass also
  runs turned by 90 degrees both ways (people lying down, pictures taken sideways), thresholds
  are lower; only the 2x look runs in int8.

On a GPU every pass runs the float network (see :class:`~faceveil.detection.centerface.CenterFace`).
"""

from __future__ import annotations

from faceveil.config import DetectorConfig
from faceveil.detection.base import Detector
from faceveil.detection.centerface import CenterFace
from faceveil.detection.multiscale import MultiScaleCenterFace, ScalePass, ZoomLook
from faceveil.errors import ConfigError

PRESET_NAMES = ("fast", "balanced", "thorough", "video")

#: The longest side of the ``video`` preset's coarse pass.
VIDEO_COARSE_SIDE = 960


def build_preset(name: str, config: DetectorConfig) -> Detector:
    """The detector pipeline preset ``name`` names.

    ``config.threshold``, when given, replaces the full-resolution pass's threshold.
    """
    if name not in PRESET_NAMES:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESET_NAMES)}")
    int8 = CenterFace(device=config.device, precision="int8")

    def base(default: float, precision: str = "fp32") -> ScalePass:
        threshold = default if config.threshold is None else config.threshold
        return ScalePass(1.0, threshold, precision=precision)

    if name == "fast":  # every pass int8: no float session is loaded
        return MultiScaleCenterFace(int8, base(0.15, "int8"), int8_model=int8)
    if name == "video":  # every pass int8, coarse to fine
        look = ZoomLook(
            scale=1.0,
            threshold=0.12,
            margin=16,
            seed_height=64.0,
            max_height=96.0,
            everywhere_below=0,
            precision="int8",
        )
        return MultiScaleCenterFace(
            int8, base(0.15, "int8"), zoom=look, int8_model=int8, base_max_side=VIDEO_COARSE_SIDE
        )
    # on a GPU the "int8" model runs the float graph already: one session serves every pass
    model = int8 if int8.precision == "fp32" else CenterFace(device=config.device)
    if name == "balanced":
        # int8 where it costs nothing measurable; the cheap downscaled passes stay in float,
        # where an 8-bit step in box size is a larger error in original pixels
        return MultiScaleCenterFace(
            model,
            base=base(0.15, "int8"),
            extra=(
                ScalePass(0.5, 0.1, min_height=32),
                ScalePass(0.25, 0.2, min_height=128),
            ),
            zoom=ZoomLook(scale=2.0, threshold=0.12, seed_max_score=0.15, margin=16, precision="int8"),
            int8_model=int8,
        )
    return MultiScaleCenterFace(  # thorough
        model,
        base=base(0.12),
        extra=(
            ScalePass(0.5, 0.1, min_height=32),
            ScalePass(0.25, 0.15, min_height=96),
            ScalePass(0.5, 0.5, min_height=64, rotations=(90, 270), only_new=True),
        ),
        zoom=ZoomLook(scale=2.0, threshold=0.1, everywhere=True, precision="int8"),
        int8_model=int8,
    )
