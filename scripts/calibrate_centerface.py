"""Measure the activation ranges the int8 CenterFace is built with, and write the shipped table.

    .venv/bin/python scripts/calibrate_centerface.py [--data DIR] [--output PATH]

The pictures are the unlabelled photos in ``DIR/images`` and a few frames of every video in
``DIR/videos`` (the shared test data), never the labelled evaluation sets (``wider_dev``,
``mask_dev``), so that the evaluation of the int8 model stays honest. Each picture is fed the way
the ``balanced`` preset feeds the network: whole, at half size, and as a 2x zoomed crop.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from faceveil.detection.centerface import to_blob
from faceveil.detection.quantize import RANGES_PATH, collect_ranges, save_ranges
from faceveil.media.image_io import read_image
from faceveil.pipeline.video import iter_frames

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
RGB = npt.NDArray[np.uint8]


def pictures(data: Path, frames_per_video: int = 3, every: int = 60) -> Iterator[RGB]:
    """The calibration pictures: every photo of ``data/images``, a few frames of each video."""
    for path in sorted((data / "images").iterdir()):
        if path.suffix.lower() in {".jpg", ".jpeg", ".png"}:
            yield read_image(path).rgb
    for path in sorted((data / "videos").iterdir()):
        if path.suffix.lower() not in {".mp4", ".avi", ".mkv", ".mov"}:
            continue
        frames = iter_frames(path)
        kept = 0
        for frame in frames:
            if frame.index % every == 0:
                yield frame.rgb
                kept += 1
            if kept >= frames_per_video:
                frames.close()  # stops decoding and closes the file
                break


def network_inputs(images: Iterator[RGB], seed: int = 0) -> Iterator[npt.NDArray[np.float32]]:
    """Each picture whole (at most 2048 px), at half size, and a 256 px crop zoomed 2x."""
    rng = np.random.default_rng(seed)
    for rgb in images:
        height, width = rgb.shape[:2]
        shrink = min(1.0, 2048 / max(height, width))
        whole = rgb if shrink == 1.0 else _resized(rgb, shrink)
        yield to_blob(np.ascontiguousarray(whole))
        yield to_blob(_resized(whole, 0.5))
        side_y, side_x = min(256, height), min(256, width)
        y = int(rng.integers(0, height - side_y + 1))
        x = int(rng.integers(0, width - side_x + 1))
        crop = np.ascontiguousarray(rgb[y : y + side_y, x : x + side_x])
        yield to_blob(_resized(crop, 2.0))


def _resized(rgb: RGB, factor: float) -> RGB:
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=interpolation), np.uint8)


def main() -> int:
    """Collect the ranges and write the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--output", type=Path, default=RANGES_PATH)
    args = parser.parse_args()
    ranges = collect_ranges(network_inputs(pictures(args.data)))
    source = "mean per-input min/max over the shared test data's unlabelled photos and video frames"
    save_ranges(ranges, args.output, source)
    print(f"{len(ranges)} tensor ranges written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
