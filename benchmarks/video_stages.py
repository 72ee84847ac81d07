"""Where a video frame's time goes: each stage of the default video path run alone over a whole
clip, in CPU milliseconds per frame (all threads of the process counted).

    .venv/bin/python benchmarks/video_stages.py [--video PATH] [--height 1080]

Stages: decode (to the decoder's 4:2:0 pixels), to_rgb (OpenCV, only the frames detection runs
on), detect (the video default, every ``detect_every``-th frame, amortised over all frames),
track (tracker and bidirectional fill), hide_i420 (the regions blurred in the Y, U and V planes)
and encode (x264 at the default preset and quality, fed the planes as they are). The stages run
one after another here, so the sum is the work per frame; a real job overlaps decoding, the
per-frame step and encoding on separate threads.

The reference, measured in the same run: the RGB path every frame took before (the whole frame
to RGB, hidden there, back to 4:2:0), whose three stages the planes replace; the ratio is its
cost over the cost of to_rgb + hide_i420.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import av
import cv2
import numpy as np
import numpy.typing as npt

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.core.detections import Detections
from faceveil.detection.runtime import machine_report
from faceveil.media.video_io import DecodedFrame, VideoOutputConfig, codec_threads
from faceveil.pipeline.video import VideoJobConfig
from faceveil.tracking.backfill import Backfill
from faceveil.tracking.tracker import FaceTracker

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "facenet_pytorch_crowd_walk.mp4"
T = TypeVar("T")


def _clock(costs: dict[str, float], name: str, work: Callable[[], T]) -> T:
    start = time.process_time()
    result = work()
    costs[name] = time.process_time() - start
    return result


def _scaled_copy(path: Path, height: int, target: Path) -> Path:
    """``path`` re-encoded at ``height`` lines (near-lossless), or ``path`` if it has them."""
    with av.open(str(path)) as src:
        stream_in = src.streams.video[0]
        if stream_in.codec_context.height == height:
            return path
        width = round(stream_in.codec_context.width * height / stream_in.codec_context.height / 2) * 2
        with av.open(str(target), "w") as out:
            stream = out.add_stream("libx264", rate=stream_in.average_rate or Fraction(25))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": "12", "preset": "veryfast"}
            for frame in src.decode(stream_in):
                for packet in stream.encode(frame.reformat(width=width, height=height, format="yuv420p")):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    return target


def _decode(path: Path) -> tuple[list[npt.NDArray[np.uint8]], Fraction]:
    """Every frame's 4:2:0 pixels, decoded as a job decodes them."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type, stream.thread_count = "AUTO", codec_threads()
        rate = Fraction(stream.average_rate or 25)
        return [np.asarray(f.to_ndarray(), np.uint8) for f in container.decode(stream)], rate


def stage_costs(path: Path, height: int, work: Path) -> dict[str, Any]:
    """CPU ms per frame of each stage on ``path`` scaled to ``height`` lines."""
    config = VideoJobConfig()
    anonymizer = Anonymizer(config.anonymizer)
    clip = _scaled_copy(path, height, work / "clip.mp4")
    costs: dict[str, float] = {}
    pixels, rate = _clock(costs, "decode", lambda: _decode(clip))
    width = pixels[0].shape[1]
    anonymizer.detect(np.zeros((height, width, 3), np.uint8))  # models loaded before timing
    every = config.detect_every
    frames = _clock(
        costs,
        "to_rgb",
        lambda: [
            DecodedFrame(p, i, i, Fraction(1, 25)).frame for i, p in enumerate(pixels) if i % every == 0
        ],
    )
    found = _clock(
        costs,
        "detect",
        lambda: [
            anonymizer.detect(frames[i // every]) if i % every == 0 else Detections.empty()
            for i in range(len(pixels))
        ],
    )

    def track() -> list[Detections]:
        tracker, backfill = FaceTracker(config.tracker), Backfill(config.tracker)
        done: dict[int, Detections] = {}
        for index, faces in enumerate(found):
            done.update(backfill.push(index, tracker.update(faces)))
        done.update(backfill.flush())
        return [done[i] for i in range(len(found))]

    regions = _clock(costs, "track", track)
    hidden = _clock(
        costs,
        "hide_i420",
        lambda: [anonymizer.hide_i420(p, r) for p, r in zip(pixels, regions, strict=True)],
    )
    planar = [av.VideoFrame.from_ndarray(image, format="yuv420p") for image in hidden]
    reference = _rgb_path(anonymizer, pixels, regions)
    output = VideoOutputConfig()

    def encode() -> None:
        with av.open(str(work / "out.mp4"), "w") as out:
            stream = out.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = planar[0].width, planar[0].height, "yuv420p"
            stream.options = {"crf": str(output.quality), "preset": output.preset}
            stream.codec_context.thread_count = codec_threads()
            for frame in planar:
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)

    _clock(costs, "encode", encode)
    count = len(pixels)
    per_frame = {name: round(1000 * seconds / count, 1) for name, seconds in costs.items()}
    rgb_path = {name: round(1000 * seconds / count, 1) for name, seconds in reference.items()}
    planes = (costs["to_rgb"] + costs["hide_i420"]) / count
    return {
        "video": str(path),
        "height": height,
        "frames": count,
        "regions_per_frame": round(float(np.mean([len(r) for r in regions])), 1),
        "cpu_ms_per_frame": per_frame,
        "total_cpu_ms_per_frame": round(sum(per_frame.values()), 1),
        "reference_rgb_path_ms_per_frame": rgb_path,
        "rgb_path_over_planes": round(sum(reference.values()) / count / planes, 2),
    }


def _rgb_path(
    anonymizer: Anonymizer, pixels: list[npt.NDArray[np.uint8]], regions: list[Detections]
) -> dict[str, float]:
    """CPU seconds of the RGB path: every frame to RGB, hidden, back to 4:2:0."""
    costs: dict[str, float] = {}
    frames = _clock(
        costs,
        "to_rgb_all",
        lambda: [DecodedFrame(p, i, i, Fraction(1, 25)).frame for i, p in enumerate(pixels)],
    )
    hidden = _clock(
        costs, "hide_rgb", lambda: [anonymizer.hide(f, r).image for f, r in zip(frames, regions, strict=True)]
    )
    _clock(
        costs,
        "from_rgb",
        lambda: [np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), np.uint8) for image in hidden],
    )
    return costs


def main() -> int:
    """Print the table and its JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--height", type=int, default=1080)
    args = parser.parse_args()
    machine = machine_report()
    features = " ".join(machine["cpu_features"])
    print(f"machine: {machine['cpu']}, {os.cpu_count()} cores, {features}", flush=True)
    with tempfile.TemporaryDirectory(prefix="faceveil-stages-") as tmp:
        result = stage_costs(args.video, args.height, Path(tmp))
    print("| stage | CPU ms per frame |\n|---|---|")
    for name, value in result["cpu_ms_per_frame"].items():
        print(f"| {name} | {value} |")
    print(f"| **total** | **{result['total_cpu_ms_per_frame']}** |")
    reference = " + ".join(f"{k} {v}" for k, v in result["reference_rgb_path_ms_per_frame"].items())
    print(f"reference RGB path: {reference} ms; x{result['rgb_path_over_planes']} to_rgb + hide_i420")
    print(json.dumps({"machine": machine, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
