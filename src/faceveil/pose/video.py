"""Pose on video files: everyone's landmarks, smoothed across frames, one JSON line per frame.

Each frame, the landmark model runs once per person: in a crop around where each person was in
the previous frame, and, every ``detect_every`` frames, in a crop under each face the face
detector finds and on the whole frame (for newcomers). Faces are tracked between detections
and hidden as in ``faceveil video``; skeletons are drawn over the result.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.config import AnonymizerConfig, DetectorConfig
from faceveil.core.detections import Detections
from faceveil.core.frame import Frame
from faceveil.errors import ConfigError, OutputError
from faceveil.media.video_io import (
    AudioPacket,
    VideoOutputConfig,
    VideoSink,
    open_input,
    output_format,
    probe,
    read_media,
)
from faceveil.pipeline.video import Progress, temp_output_path
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
        source, target = Path(source), Path(target)
        fmt = output_format(target)
        if target.resolve() == source.resolve():
            raise OutputError(f"refusing to overwrite the input {source}")
        container = open_input(source)
        tmp = temp_output_path(target)
        try:
            info = probe(container)
            audio_in = container.streams.audio[0] if container.streams.audio else None
            audio_in = None if self.config.output.audio == "drop" else audio_in
            target.parent.mkdir(parents=True, exist_ok=True)
            sink = VideoSink(tmp, fmt, info, audio_in, self.config.output)
            report = PoseVideoReport(str(source), str(target))
            start = time.perf_counter()
            try:
                self._frames(
                    read_media(container, info, audio_in is not None), sink, landmarks, report, info.frames
                )
            except BaseException:
                sink.abort()
                raise
            sink.close()
            report.wall_s = time.perf_counter() - start
            tmp.replace(target)
            return report
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc}") from exc
        finally:
            container.close()
            with suppress(FileNotFoundError):
                tmp.unlink()

    def _frames(
        self,
        items: Any,
        sink: VideoSink,
        landmarks: IO[str] | None,
        report: PoseVideoReport,
        total: int | None,
    ) -> None:
        smoother = PoseSmoother(self.config.smoothing)
        tracker = FaceTracker(self.config.tracker)
        tracks: set[int] = set()
        for item in items:
            if isinstance(item, AudioPacket):
                sink.write_audio(item.packet)
                continue
            frame: Frame = item.frame
            result, rgb = self._one(frame, smoother, tracker)
            tracks.update(p.track for p in result.people if p.track is not None)
            report.people += len(result.people)
            if landmarks is not None:
                seconds = None if frame.time is None else round(float(frame.time), 6)
                landmarks.write(
                    json.dumps(result.to_json(frame=frame.index, pts=frame.pts, time=seconds)) + "\n"
                )
            sink.write(frame, rgb)
            report.frames += 1
            if self.progress is not None:
                self.progress(report.frames, total)
        report.tracks = len(tracks)

    def _one(self, frame: Frame, smoother: PoseSmoother, tracker: FaceTracker) -> tuple[PoseResult, Any]:
        looking = frame.index % self.config.detect_every == 0
        faces = self.anonymizer.detector.detect(frame.rgb) if looking else Detections.empty()
        hidden = tracker.update(faces)
        hints = smoother.recent()
        found = self.estimator.estimate(frame.rgb, faces, hints, search=looking)
        seconds = float(frame.time) if frame.time is not None else frame.index / 25.0
        people = smoother.update(found, seconds)
        if self.anonymizer.body is not None:
            hidden = self.anonymizer.body.add_heads(hidden, people)
        rgb = self.anonymizer.hide(frame, hidden).image
        draw_skeletons(rgb, people, self.config.anonymizer.pose)
        return PoseResult(frame.width, frame.height, people), rgb


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
