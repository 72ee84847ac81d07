"""Video jobs: decode -> detect + track -> hide -> encode, overlapped in threads.

Three stages run at once, joined by bounded queues (memory stays bounded on hour-long inputs):
the reader decodes frames (FFmpeg's own threads), the main thread detects, tracks and hides,
the writer encodes. An exception in any stage stops the others and is raised in the caller;
Ctrl-C (or the ``cancel`` event) stops them cleanly. The output is written to a temporary file
next to the target and renamed only when everything succeeded.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable, Generator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.config import AnonymizerConfig, DetectorConfig, check_choice
from faceveil.core.detections import Detections
from faceveil.core.frame import Frame
from faceveil.errors import ConfigError, FaceveilError, InputError, JobCancelledError, OutputError
from faceveil.media.video_io import (
    AudioPacket,
    DecodedFrame,
    VideoInfo,
    VideoOutputConfig,
    VideoSink,
    check_encryptable,
    open_input,
    output_format,
    probe,
    read_media,
)
from faceveil.tracking.backfill import Backfill
from faceveil.tracking.tracker import FaceTracker, TrackerConfig

if TYPE_CHECKING:
    from faceveil.compliance.manifest import ManifestOptions

ON_ERROR = ("hide-frame", "skip-frame", "abort")

# Video defaults: one full-resolution pass (up to 1440 px) every fourth frame; the tracker and the
# bidirectional fill cover the frames between. On the YouTube Faces tracks this hides every
# labelled face frame (see the issue notes); --preset balanced --detect-every 1 looks harder.
DEFAULT_VIDEO_PRESET = "fast"
DEFAULT_VIDEO_MAX_SIDE = 1440
DEFAULT_DETECT_EVERY = 4


def _default_video_anonymizer() -> AnonymizerConfig:
    return AnonymizerConfig(
        detector=DetectorConfig(name=DEFAULT_VIDEO_PRESET, max_side=DEFAULT_VIDEO_MAX_SIDE)
    )


_DONE = object()


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
    queue_size: int = 8

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


#: ``progress(frames_done, frames_total_or_None)``, called from the writer thread.
Progress = Callable[[int, int | None], None]


class _StopError(Exception):
    """Raised inside a stage when another stage failed or the job was cancelled."""


class _Stage(threading.Thread):
    """A worker thread that records its exception instead of printing it."""

    def __init__(self, name: str, target: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self._stop_all = stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except _StopError:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, re-raised there
            self.error = exc
            self._stop_all.set()


def _put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _StopError
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    while True:
        if stop.is_set():
            raise _StopError
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue


class VideoJob:
    """One video file anonymized into another. Use :func:`anonymize_video` for one call."""

    def __init__(
        self,
        config: VideoJobConfig | None = None,
        anonymizer: Anonymizer | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.config = config or VideoJobConfig()
        self.anonymizer = anonymizer or Anonymizer(self.config.anonymizer)
        self.progress = progress
        self.stop = cancel or threading.Event()
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
        source, target = Path(source), Path(target)
        fmt = output_format(target)
        if self.config.output.encryption is not None:
            check_encryptable(target)
        if target.resolve() == source.resolve():  # also when target does not exist yet
            raise OutputError(f"refusing to overwrite the input {source}")
        extra = [Path(p) for p in (regions, manifest.path if manifest else None) if p is not None]
        if len({p.resolve() for p in (source, target, *extra)}) != 2 + len(extra):
            raise OutputError("the output, the regions file and the manifest must be different files")
        container = open_input(source)
        temps: dict[Path, Path] = {}  # final path -> temporary path
        try:
            info = probe(container)
            audio_in = container.streams.audio[0] if container.streams.audio else None
            if self.config.output.audio == "drop":
                audio_in = None
            tmp = temps[target] = temp_output_path(target)
            sink = VideoSink(tmp, fmt, info, audio_in, self.config.output)
            audit = None
            if regions is not None:
                audit_tmp = temps[Path(regions)] = temp_output_path(Path(regions))
                audit = open(audit_tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed below
            report = self.report = VideoReport(str(source), str(target), info=info)
            start = time.perf_counter()
            try:
                self._stages(container, info, sink, audit, report, audio_in is not None)
            except BaseException:
                sink.abort()
                raise
            finally:
                if audit is not None:
                    audit.close()
            sink.close()
            report.wall_s = time.perf_counter() - start
            if manifest is not None:
                audit_path = temps.get(Path(regions)) if regions is not None else None
                temps[manifest.path] = temp_output_path(manifest.path)
                self._write_manifest(source, target, tmp, audit_path, report, manifest, temps[manifest.path])
            for final, temp in temps.items():
                temp.replace(final)
            return report
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc}") from exc
        finally:
            container.close()
            for path in temps.values():
                with suppress(FileNotFoundError):
                    path.unlink()

    def _write_manifest(
        self,
        source: Path,
        target: Path,
        written: Path,
        regions: Path | None,
        report: VideoReport,
        options: ManifestOptions,
        temp: Path,
    ) -> None:
        """Build, sign and write the manifest of ``written`` (the output's temporary name) to
        ``temp`` (the manifest's temporary name)."""
        from faceveil.compliance.manifest import build_manifest, manifest_text, sha256_file, sign
        from faceveil.compliance.models import model_files

        document = build_manifest(
            kind="video",
            input_digest=sha256_file(source),
            output=written,
            output_name=target.name,
            settings={"video": self.config},
            models=model_files(self.config.anonymizer),
            counts=report.counts(),
            regions=regions,
        )
        temp.write_text(manifest_text(sign(document, options.signing_key)), encoding="utf-8")

    # ------------------------------------------------------------------------------------------
    def _stages(
        self,
        container: Any,
        info: VideoInfo,
        sink: VideoSink,
        audit: IO[str] | None,
        report: VideoReport,
        audio: bool,
    ) -> None:
        decoded: queue.Queue[Any] = queue.Queue(self.config.queue_size)
        encoded: queue.Queue[Any] = queue.Queue(self.config.queue_size)
        stop = self.stop

        def read() -> None:
            for item in read_media(container, info, audio):
                _put(decoded, item, stop)
            _put(decoded, _DONE, stop)

        def write() -> None:
            while (item := _get(encoded, stop)) is not _DONE:
                if isinstance(item, AudioPacket):
                    sink.write_audio(item.packet)
                    continue
                frame, rgb = item
                sink.write(frame, rgb)
                report.frames += 1
                if self.progress is not None:
                    self.progress(report.frames, info.frames)

        reader = _Stage("faceveil-decode", read, stop)
        writer = _Stage("faceveil-encode", write, stop)
        reader.start()
        writer.start()
        try:
            self._process(decoded, encoded, audit, report)
        except _StopError:
            pass  # a worker failed or the job was cancelled: its reason is raised below
        except BaseException:
            stop.set()
            raise
        finally:
            writer.join()
            if writer.error is not None or stop.is_set():
                stop.set()
            reader.join()
        for stage in (reader, writer):
            if stage.error is not None:
                raise stage.error
        if stop.is_set():
            raise JobCancelledError("the video job was cancelled; nothing was written")

    def _process(
        self, decoded: queue.Queue[Any], encoded: queue.Queue[Any], audit: IO[str] | None, report: VideoReport
    ) -> None:
        """The main thread's stage: detect, track, fill, hide, in frame order."""
        stop = self.stop
        tracker = FaceTracker(self.config.tracker)
        backfill = Backfill(self.config.tracker)
        held: dict[int, tuple[Frame, bool | None]] = {}
        tracks: set[int] = set()

        def emit(done: list[tuple[int, Detections]]) -> None:
            for index, regions in done:
                frame, whole = held.pop(index)
                if whole is None:
                    continue  # --on-error skip-frame: left out of the output
                if regions.tracker_id is not None:
                    tracks.update(int(t) for t in regions.tracker_id)
                if audit is not None:
                    audit.write(json.dumps(_audit_record(frame, regions, whole)) + "\n")
                if whole:
                    report.hidden_whole += 1
                    rgb = self.anonymizer.mark(np.zeros_like(frame.rgb))
                else:
                    rgb = self.anonymizer.hide(frame, regions).image
                _put(encoded, (frame, rgb), stop)

        try:
            while (item := _get(decoded, stop)) is not _DONE:
                if isinstance(item, AudioPacket):
                    _put(encoded, item, stop)
                    continue
                report.frames_in += 1
                found, whole = self._detect(item, report)
                if whole is None:
                    report.skipped += 1
                held[item.frame.index] = (item.frame, whole)
                emit(backfill.push(item.frame.index, tracker.update(found)))
            emit(backfill.flush())
        finally:
            report.tracks = len(tracks)
        _put(encoded, _DONE, stop)

    def _detect(self, item: DecodedFrame, report: VideoReport) -> tuple[Detections, bool | None]:
        """(detections, hide whole frame?); None instead of a bool means: leave the frame out."""
        policy = self.config.on_error
        if item.corrupt:
            return self._failed(policy, f"frame {item.frame.index} is damaged")
        if item.frame.index % self.config.detect_every:
            return Detections.empty(), False
        try:
            found = self.anonymizer.detect(item.frame)
        except (FaceveilError, ValueError, RuntimeError) as exc:
            return self._failed(policy, f"detection failed on frame {item.frame.index}: {exc}")
        report.faces += len(found)
        return found, False

    @staticmethod
    def _failed(policy: str, message: str) -> tuple[Detections, bool | None]:
        if policy == "abort":
            raise InputError(message)
        return Detections.empty(), (True if policy == "hide-frame" else None)


def _audit_record(frame: Frame, regions: Detections, whole: bool) -> dict[str, Any]:
    sources = regions.data.get("source")
    rows = []
    for i in range(len(regions)):
        rows.append(
            {
                "box": [round(float(v), 1) for v in regions.xyxy[i]],
                "track": None if regions.tracker_id is None else int(regions.tracker_id[i]),
                "score": round(float(regions.confidence[i]), 4),
                "source": "detected" if sources is None else str(sources[i]),
            }
        )
    record: dict[str, Any] = {"frame": frame.index, "pts": frame.pts, "regions": rows}
    if whole:
        record["hidden_whole"] = True
    return record


def temp_output_path(target: Path) -> Path:
    """A hidden temporary name beside ``target`` (its folder is made); renamed to it at the end."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(
        f".{target.stem}.faceveil-tmp-{os.getpid()}-{threading.get_ident()}{target.suffix}"
    )


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
