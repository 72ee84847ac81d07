"""Face video jobs: the stage graph of :mod:`faceveil.pipeline.graph` with the face step.

Every ``detect_every``-th frame is searched for faces; the tracker carries them between
detections and the bidirectional fill hides each track from its first frame to its last. The
output, its regions audit trail and its manifest appear together or not at all.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.config import AnonymizerConfig, DetectorConfig, check_choice
from faceveil.core.detections import Detections
from faceveil.core.frame import Frame, FrameTime
from faceveil.errors import ConfigError, FaceveilError, InputError
from faceveil.media.video_io import DecodedFrame, VideoInfo, VideoOutputConfig, open_input, probe, read_media
from faceveil.pipeline.graph import FrameStep, GraphCounts, Progress, Rendered, render_file
from faceveil.review.document import FrameRegions, RegionsDocument, file_identity, regions_from_detections
from faceveil.tracking.backfill import Backfill
from faceveil.tracking.tracker import FaceTracker, TrackerConfig

if TYPE_CHECKING:
    from faceveil.compliance.manifest import ManifestOptions
    from faceveil.review.identity import KeepFaces

ON_ERROR = ("hide-frame", "skip-frame", "abort")

# Video defaults: the coarse-to-fine ``video`` preset (a 960 px pass, then full-resolution looks
# around small and doubtful candidates) every fourth frame; the tracker and the bidirectional
# fill cover the frames between. --preset balanced --detect-every 1 looks harder.
DEFAULT_VIDEO_PRESET: Final = "video"
DEFAULT_VIDEO_MAX_SIDE: int | None = None
DEFAULT_DETECT_EVERY = 4


def _default_video_anonymizer() -> AnonymizerConfig:
    return AnonymizerConfig(
        detector=DetectorConfig(name=DEFAULT_VIDEO_PRESET, max_side=DEFAULT_VIDEO_MAX_SIDE)
    )


@dataclass(frozen=True)
class VideoJobConfig:
    """Everything a video job needs besides its files.

    Attributes:
        anonymizer: detector and mask settings (as for photos).
        output: encoder, quality and audio settings.
        tracker: how faces are carried between detections.
        detect_every: run the detector on every N-th frame and track in between.
        on_error: a frame the decoder flags as damaged, or on which detection fails, is
            ``hide-frame``: written black (the default, fail closed); ``skip-frame``: left out
            of the output; ``abort``: the job stops with an error and writes nothing.
        queue_size: frames buffered between stages.
    """

    anonymizer: AnonymizerConfig = field(default_factory=_default_video_anonymizer)
    output: VideoOutputConfig = field(default_factory=VideoOutputConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    detect_every: int = DEFAULT_DETECT_EVERY
    on_error: str = "hide-frame"
    queue_size: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.detect_every <= 60:
            raise ConfigError(f"detect_every must lie in [1, 60], got {self.detect_every}")
        check_choice("on-error policy", self.on_error, ON_ERROR)
        if self.queue_size < 1:
            raise ConfigError("queue_size must be at least 1")


@dataclass
class VideoReport:
    """The end-of-job report: what was processed and how fast."""

    source: str
    output: str
    frames: int = 0
    frames_in: int = 0
    faces: int = 0
    tracks: int = 0
    hidden_whole: int = 0
    skipped: int = 0
    wall_s: float = 0.0
    info: VideoInfo | None = None

    @property
    def fps(self) -> float:
        """Frames written per second of wall time."""
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def counts(self) -> dict[str, int]:
        """What the job counted (as a manifest records it)."""
        return {
            "frames": self.frames,
            "frames_in": self.frames_in,
            "faces": self.faces,
            "tracks": self.tracks,
            "frames_hidden_whole": self.hidden_whole,
            "frames_skipped": self.skipped,
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary."""
        counts = {k: v for k, v in self.counts().items() if k != "frames_in"}
        return {
            "source": self.source,
            "output": self.output,
            **counts,
            "wall_s": round(self.wall_s, 3),
            "fps": round(self.fps, 2),
        }


class FaceStep:
    """The face video step: detect (every ``detect_every`` frames), track, fill backwards, hide.

    Frames are held until the bidirectional fill has settled their regions; each frame's
    regions go out as its ``record`` (the regions audit trail). Counts land in ``report``.
    """

    def __init__(
        self, anonymizer: Anonymizer, config: VideoJobConfig, report: VideoReport, *, render: bool = True
    ) -> None:
        self.anonymizer = anonymizer
        self.config = config
        self.report = report
        self.render = render  # False: only find the regions (the frames come back unchanged)
        self.tracker = FaceTracker(config.tracker)
        self.backfill = Backfill(config.tracker)
        self._held: dict[int, tuple[DecodedFrame, bool | None]] = {}
        self._tracks: set[int] = set()

    def push(self, item: DecodedFrame) -> Iterator[Rendered]:
        """Detect or track on ``item``; return the frames whose regions are final (each is
        hidden as the caller takes it, so at most one finished picture waits here)."""
        found, whole = self._detect(item)
        if whole is None:
            self.report.skipped += 1
        item.compact()  # held in its 4:2:0 form until hidden
        self._held[item.index] = (item, whole)
        return self._emit(self.backfill.push(item.index, self.tracker.update(found)))

    def flush(self) -> Iterator[Rendered]:
        """The frames still waiting for the fill."""
        return self._emit(self.backfill.flush())

    def _emit(self, done: list[tuple[int, Detections]]) -> Iterator[Rendered]:
        for index, regions in done:
            held, whole = self._held.pop(index)
            if whole is None:
                continue  # --on-error skip-frame: left out of the output
            if regions.tracker_id is not None:
                self._tracks.update(int(t) for t in regions.tracker_id)
                self.report.tracks = len(self._tracks)
            record = _audit_record(held.index, held.pts, regions, whole)
            if whole:
                self.report.hidden_whole += 1
                frame = held.frame
                yield Rendered(frame, self.anonymizer.mark(np.zeros_like(frame.rgb)), record)
            elif self.render:
                yield Rendered(*hide_decoded(self.anonymizer, held, regions), record)
            else:
                yield Rendered(held.frame, held.frame.rgb, record)

    def _detect(self, item: DecodedFrame) -> tuple[Detections, bool | None]:
        """(detections, hide whole frame?); None instead of a bool means: leave the frame out."""
        policy = self.config.on_error
        if item.corrupt:
            return _failed(policy, f"frame {item.index} is damaged")
        if item.index % self.config.detect_every:
            return Detections.empty(), False
        try:
            found = self.anonymizer.detect(item.frame)
        except (FaceveilError, ValueError, RuntimeError) as exc:
            return _failed(policy, f"detection failed on frame {item.index}: {exc}")
        self.report.faces += len(found)
        return found, False


def _failed(policy: str, message: str) -> tuple[Detections, bool | None]:
    if policy == "abort":
        raise InputError(message)
    return Detections.empty(), (True if policy == "hide-frame" else None)


class VideoJob:
    """One video file anonymized into another. Use :func:`anonymize_video` for one call."""

    def __init__(
        self,
        config: VideoJobConfig | None = None,
        anonymizer: Anonymizer | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        keep: KeepFaces | None = None,
    ) -> None:
        self.config = config or VideoJobConfig()
        self.anonymizer = anonymizer or Anonymizer(self.config.anonymizer)
        self.progress = progress
        self.stop = cancel or threading.Event()
        self.keep = keep
        self.report: VideoReport | None = None

    @property
    def faces_so_far(self) -> int:
        """Face detections of the run in progress (for progress displays)."""
        return self.report.faces if self.report is not None else 0

    def run(
        self,
        source: str | os.PathLike[str],
        target: str | os.PathLike[str],
        regions: str | os.PathLike[str] | None = None,
        manifest: ManifestOptions | None = None,
    ) -> VideoReport:
        """Anonymize ``source`` into ``target``; optionally write the regions audit trail and a
        manifest (hashes, settings, counts; signed when ``manifest`` has a key).

        The output, the regions and the manifest are written under temporary names and renamed
        together at the end: a failed or cancelled job leaves none of them.
        """
        if self.keep is not None:
            from faceveil.pipeline.regions import detect_document

            document = detect_document(
                source, self.anonymizer, self.config, self.keep, self.stop, self.progress
            )
            return self.render(source, target, document, regions, manifest)
        report = self.report = VideoReport(str(source), str(target))
        step = FaceStep(self.anonymizer, self.config, report)
        return self._render(source, target, step, report, regions, manifest)

    def render(
        self,
        source: str | os.PathLike[str],
        target: str | os.PathLike[str],
        document: RegionsDocument,
        regions: str | os.PathLike[str] | None = None,
        manifest: ManifestOptions | None = None,
    ) -> VideoReport:
        """Render ``source`` from a regions document (``--regions-in``) without detecting: hides
        its regions that are neither kept nor removed, and its hand boxes wherever followed.

        ``document`` must have been checked against ``source`` (:func:`load_for` does); a frame
        count that differs while decoding stops the job with nothing written.
        """
        from faceveil.pipeline.regions import RegionsStep, follow_in_video

        report = self.report = VideoReport(str(source), str(target))
        step = RegionsStep(self.anonymizer, document, follow_in_video(source, document))
        report.tracks = len(document.tracks())
        report = self._render(source, target, step, report, regions, manifest, keep=document.keep)
        report.hidden_whole = step.hidden_whole
        report.skipped = sum(f.skipped for f in document.frames)
        report.faces = sum(r.source == "detected" for f in document.frames for r in f.regions)
        return report

    def _render(
        self,
        source: str | os.PathLike[str],
        target: str | os.PathLike[str],
        step: FrameStep,
        report: VideoReport,
        regions: str | os.PathLike[str] | None,
        manifest: ManifestOptions | None,
        keep: frozenset[int] = frozenset(),
    ) -> VideoReport:
        counts = GraphCounts()

        def finish(written: Path, side: Path | None) -> dict[Path, str]:
            self._sync(report, counts)
            if side is not None and counts.info is not None:
                from faceveil.pipeline.regions import finish_regions_file

                info = counts.info
                identity = file_identity(source, info.width, info.height, counts.frames_in, info.rate)
                finish_regions_file(side, identity, counts.frames_in, keep)
            if manifest is None:
                return {}
            text = video_manifest(self.config, Path(source), Path(target), written, side, report, manifest)
            return {manifest.path: text}

        render_file(
            source,
            target,
            self.config.output,
            step,
            side_path=regions,
            extra=[manifest.path] if manifest is not None else [],
            finish=finish,
            stop=self.stop,
            progress=self.progress,
            queue_size=self.config.queue_size,
            counts=counts,
        )
        self._sync(report, counts)
        return report

    @staticmethod
    def _sync(report: VideoReport, counts: GraphCounts) -> None:
        report.frames, report.frames_in = counts.frames, counts.frames_in
        report.wall_s, report.info = counts.wall_s, counts.info


def video_manifest(
    config: VideoJobConfig,
    source: Path,
    target: Path,
    written: Path,
    regions: Path | None,
    report: VideoReport,
    options: ManifestOptions,
) -> str:
    """The manifest of a video job, signed when ``options`` has a key: ``written`` is the output
    under its temporary name, ``regions`` the regions file's (one run's and a cluster's alike)."""
    from faceveil.compliance.manifest import build_manifest, manifest_text, sha256_file, sign
    from faceveil.compliance.models import model_files

    document = build_manifest(
        kind="video",
        input_digest=sha256_file(source),
        output=written,
        output_name=target.name,
        settings={"video": config},
        models=model_files(config.anonymizer),
        counts=report.counts(),
        regions=regions,
    )
    return manifest_text(sign(document, options.signing_key))


def hide_decoded(
    anonymizer: Anonymizer, item: DecodedFrame, detections: Detections
) -> tuple[Frame | FrameTime, npt.NDArray[np.uint8]]:
    """``item`` with ``detections`` hidden, as (its place in time, the pixels to encode).

    Where the anonymizer can (the default blur) and the decoder's I420 pixels are upright, the
    regions are hidden in those planes and the encoder takes them as they are: no RGB round trip,
    and every pixel outside the regions keeps the decoder's bytes. Otherwise the RGB frame is
    hidden. Either way only the hidden pixels are kept: the original is freed with ``item``.
    """
    planes = item.i420
    if planes is not None and anonymizer.hides_i420:
        return FrameTime(item.index, item.pts, item.time_base), anonymizer.hide_i420(planes, detections)
    frame = item.frame
    rgb = anonymizer.hide(frame, detections).image
    return Frame(rgb, frame.index, frame.pts, frame.time_base), rgb


def _audit_record(index: int, pts: int | None, regions: Detections, whole: bool) -> dict[str, Any]:
    """One frame line of the regions document (exact boxes: a render from it hides the same pixels)."""
    return FrameRegions(index, pts, regions_from_detections(regions), whole).to_json()


def anonymize_video(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    config: VideoJobConfig | None = None,
    progress: Progress | None = None,
    regions: str | os.PathLike[str] | None = None,
    manifest: ManifestOptions | None = None,
) -> VideoReport:
    """One call: hide every face of the video ``source`` and write it to ``target``."""
    return VideoJob(config, progress=progress).run(source, target, regions, manifest)


def iter_frames(source: str | os.PathLike[str]) -> Generator[Frame, None, None]:
    """Upright frames of a video file (for evaluation and tests)."""
    container = open_input(source)
    try:
        info = probe(container)
        for item in read_media(container, info, audio=False):
            if isinstance(item, DecodedFrame):
                yield item.frame
    finally:
        container.close()
