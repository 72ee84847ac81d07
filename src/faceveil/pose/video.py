"""Pose on video files: everyone's landmarks, smoothed across frames, one JSON line per frame.

The pose step of the one video stage graph (:mod:`faceveil.pipeline.graph`). Each frame, the
landmark model runs once per person: in a crop around where each person was in the previous
frame, and, every ``detect_every`` frames, in a crop under each face the face detector finds and
on the whole frame (for newcomers). Faces are tracked between detections and hidden as in
``faceveil video``; skeletons are drawn over the result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import IO, Any

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.config import AnonymizerConfig, DetectorConfig
from faceveil.core.detections import Detections
from faceveil.core.frame import Frame
from faceveil.errors import ConfigError
from faceveil.media.video_io import DecodedFrame, VideoOutputConfig
from faceveil.pipeline.graph import Progress, Rendered, render_file
from faceveil.pose.coverage import BodyCoverage
from faceveil.pose.draw import draw_skeletons
from faceveil.pose.landmarks import PoseResult
from faceveil.pose.people import PoseEstimator
from faceveil.pose.smoothing import PoseSmoother, SmoothingConfig
from faceveil.tracking.tracker import FaceTracker, TrackerConfig


def _default_anonymizer() -> AnonymizerConfig:
    return AnonymizerConfig(detector=DetectorConfig(name="fast", max_side=1440))


@dataclass(frozen=True)
class PoseVideoConfig:
    """Settings of a pose video job.

    Attributes:
        anonymizer: face detector, how faces are hidden, ``target`` and ``skeleton_only``
            (people hidden whole under their skeletons), and ``pose`` thresholds and colours.
        output: encoder settings.
        smoothing: landmark smoothing across frames.
        tracker: how hidden faces are carried between face detections.
        detect_every: look for faces and new people every N frames (people already found are
            followed every frame).
    """

    anonymizer: AnonymizerConfig = field(default_factory=_default_anonymizer)
    output: VideoOutputConfig = field(default_factory=VideoOutputConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    detect_every: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.detect_every <= 60:
            raise ConfigError(f"detect_every must lie in [1, 60], got {self.detect_every}")


@dataclass
class PoseVideoReport:
    """The end-of-job report."""

    source: str
    output: str
    frames: int = 0
    people: int = 0
    tracks: int = 0
    wall_s: float = 0.0

    @property
    def fps(self) -> float:
        """Frames per second of wall time."""
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "source": self.source,
            "output": self.output,
            "frames": self.frames,
            "people": self.people,
            "tracks": self.tracks,
            "wall_s": round(self.wall_s, 3),
            "fps": round(self.fps, 2),
        }


class PoseStep:
    """The pose video step: faces tracked and hidden, everyone's landmarks drawn over them."""

    def __init__(self, job: PoseVideoJob, report: PoseVideoReport) -> None:
        self.job = job
        self.report = report
        self.smoother = PoseSmoother(job.config.smoothing)
        self.tracker = FaceTracker(job.config.tracker)
        self._tracks: set[int] = set()

    def push(self, item: DecodedFrame) -> list[Rendered]:
        """Pose and hide one frame (nothing is held back)."""
        frame = item.frame
        result, rgb = self._one(frame)
        self._tracks.update(p.track for p in result.people if p.track is not None)
        self.report.tracks = len(self._tracks)
        self.report.people += len(result.people)
        seconds = None if frame.time is None else round(float(frame.time), 6)
        return [Rendered(frame, rgb, result.to_json(frame=frame.index, pts=frame.pts, time=seconds))]

    def flush(self) -> list[Rendered]:
        """Nothing is held."""
        return []

    def _one(self, frame: Frame) -> tuple[PoseResult, Any]:
        job = self.job
        looking = frame.index % job.config.detect_every == 0
        faces = job.anonymizer.detector.detect(frame.rgb) if looking else Detections.empty()
        hidden = self.tracker.update(faces)
        hints = self.smoother.recent()
        found = job.estimator.estimate(frame.rgb, faces, hints, search=looking)
        seconds = float(frame.time) if frame.time is not None else frame.index / 25.0
        people = self.smoother.update(found, seconds)
        if job.anonymizer.body is not None:
            hidden = job.anonymizer.body.add_heads(hidden, people)
        rgb = job.anonymizer.hide(frame, hidden).image
        draw_skeletons(rgb, people, job.config.anonymizer.pose)
        return PoseResult(frame.width, frame.height, people), rgb


class PoseVideoJob:
    """One video file in, the same video with skeletons (and hidden faces) out."""

    def __init__(self, config: PoseVideoConfig | None = None, progress: Progress | None = None) -> None:
        self.config = config or PoseVideoConfig()
        wanted = self.config.anonymizer
        # skeleton_only: people are hidden whole (person target) and the skeletons drawn here
        hiding = replace(wanted, target="person", skeleton_only=False) if wanted.skeleton_only else wanted
        self.estimator = PoseEstimator(wanted.pose)
        body = BodyCoverage(hiding, estimator=self.estimator) if hiding.target != "face" else None
        self.anonymizer = Anonymizer(hiding, body=body)
        self.progress = progress

    def run(
        self,
        source: str | os.PathLike[str],
        target: str | os.PathLike[str],
        landmarks: IO[str] | None = None,
    ) -> PoseVideoReport:
        """Draw the poses of ``source`` into ``target``; one JSON line per frame to ``landmarks``."""
        report = PoseVideoReport(str(source), str(target))
        counts = render_file(
            source,
            target,
            self.config.output,
            PoseStep(self, report),
            side=landmarks,
            progress=self.progress,
        )
        report.frames, report.wall_s = counts.frames, counts.wall_s
        return report


def pose_video(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    landmarks: str | os.PathLike[str] | None = None,
    config: PoseVideoConfig | None = None,
    progress: Progress | None = None,
) -> PoseVideoReport:
    """One call: the poses of the video ``source`` drawn into ``target``, landmarks as JSON lines."""
    job = PoseVideoJob(config, progress)
    if landmarks is None:
        return job.run(source, target)
    with open(landmarks, "w", encoding="utf-8") as sink:
        return job.run(source, target, sink)
