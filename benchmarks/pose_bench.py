"""Pose and whole-person privacy speed: ms per photo and fps on video, as ratios to face-only.

Run with ``make bench-pose``. Every figure is measured in the same run as the face-only
reference (same detector, same pictures), because absolute times on a shared 2-core machine are
noisy. Photos: group photos and portraits from ../shared/data/images; video: the lab clip
(1080p, two people) and the arm-wrestling clip (340x256), through the real video pipelines.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.config import AnonymizerConfig, DetectorConfig
from faceveil.media.image_io import read_image
from faceveil.pipeline.video import VideoJob, VideoJobConfig
from faceveil.pose.photo import PoseProcessor
from faceveil.pose.video import PoseVideoConfig, PoseVideoJob

DATA = Path(os.environ.get("FACEVEIL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
PHOTOS = [
    "fr_two_people.jpg",
    "ua_coco01_two_people.jpg",
    "dp2_norwegian_government_group.jpg",
    "deface_city_crosswalk.jpg",
]
VIDEOS = ["mmaction2_ntu_two_people.mp4", "mmaction2_arm_wrestling.mp4"]
MODES = ("face", "head", "person", "skeleton-only")


def _config(mode: str, detector: DetectorConfig) -> AnonymizerConfig:
    if mode == "skeleton-only":
        return AnonymizerConfig(detector=detector, skeleton_only=True)
    return AnonymizerConfig(detector=detector, target=mode)  # type: ignore[arg-type]


def photos() -> None:
    pictures = [read_image(DATA / "images" / name).rgb for name in PHOTOS]
    detector = DetectorConfig()
    runs: dict[str, float] = {}
    for mode in (*MODES, "pose"):
        tool = (
            PoseProcessor(_config("face", detector))
            if mode == "pose"
            else Anonymizer(_config(mode, detector))
        )
        tool.apply(pictures[0])  # warm up
        start = time.perf_counter()
        for rgb in pictures:
            tool.apply(rgb)
        runs[mode] = (time.perf_counter() - start) * 1000 / len(pictures)
    print(f"photos ({len(pictures)}, preset balanced): ms per photo, ratio to face")
    for mode, ms in runs.items():
        print(f"  {mode:14s} {ms:8.0f} ms   x{ms / runs['face']:.2f}")


def videos() -> None:
    detector = DetectorConfig(name="fast", max_side=1440)
    for name in VIDEOS:
        source = DATA / "videos" / name
        fps: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for mode in (*MODES, "pose"):
                target = Path(tmp) / f"{mode}.mp4"
                if mode == "pose":
                    fps[mode] = (
                        PoseVideoJob(PoseVideoConfig(anonymizer=_config("face", detector)))
                        .run(source, target)
                        .fps
                    )
                else:
                    config = VideoJobConfig(anonymizer=_config(mode, detector))
                    fps[mode] = VideoJob(config).run(source, target).fps
        print(f"video {name}: frames per second, ratio to face")
        for mode, value in fps.items():
            print(f"  {mode:14s} {value:8.2f} fps  x{value / fps['face']:.2f}")


def main() -> int:
    if not (DATA / "images").is_dir():
        print(f"pose_bench: the shared data is missing at {DATA}", file=sys.stderr)
        return 1
    print(f"cpus: {os.cpu_count()}, numpy {np.__version__}")
    photos()
    videos()
    return 0


if __name__ == "__main__":
    sys.exit(main())
