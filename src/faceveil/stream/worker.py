"""One live stream end to end: source -> `LiveSession` -> sinks, in threads, never a raw frame.

The reader thread decodes frames into a mailbox of ``queue_size`` frames; when it is full the
oldest waiting frame is dropped. The detection thread takes the next frame, drops it too when it
is older than ``max_lag`` seconds, and otherwise runs the engine's detection stage on it; the
worker thread then tracks and hides it (the engine's second stage, in capture order, while the
next frame is being detected). Only that result goes to the sinks. With ``on_late="repeat"``
every dropped frame is replaced by the last anonymized frame at the dropped frame's time
(outputs keep a steady frame rate); with ``drop`` it is left out. Before the first frame is
anonymized, a dropped frame is replaced by nothing.

Sound (``audio="keep"``, the default) goes its own way: the reader hands each decoded block to
an audio thread, which runs it through the stream's audio filter (none by default) and gives
it to every sink that records or pushes. Frames dropped on the picture side never cut it.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import IO, Any, Protocol

import numpy as np
import numpy.typing as npt

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.errors import ConfigError, StreamError
from faceveil.stream.audio import AudioBlock, FilteredAudio
from faceveil.stream.engine import LiveFrame, LiveSession
from faceveil.stream.handoff import HANDOFF_SIZE, Handoff, Mailbox, hand_over
from faceveil.stream.mjpeg import MjpegSink
from faceveil.stream.records import SegmentManifests
from faceveil.stream.runner import SinkRunner
from faceveil.stream.sinks import (
    FileSink,
    OutputFrame,
    OutputSpec,
    PushSink,
    Sink,
)
from faceveil.stream.sound import SoundPath
from faceveil.stream.sources import CapturedFrame, SourceReader
from faceveil.stream.spec import StreamSpec
from faceveil.stream.stats import StreamStats

log = logging.getLogger("faceveil.stream")
RGBImage = npt.NDArray[np.uint8]


def build_sink(spec: OutputSpec, stream: StreamSpec) -> Sink:
    """The sink an `OutputSpec` names, with the stream's encoder and segment settings."""
    if spec.kind == "file":
        observer = None if stream.manifest is None else SegmentManifests(stream, stream.manifest)
        return FileSink(
            spec.target,
            stream.encoder,
            stream.segment_s,
            stream.keep_segments,
            stream.overwrite,
            encryption=stream.encryption,
            observer=observer,
        )
    if spec.kind in ("rtmp", "rtsp"):
        return PushSink(spec.target, stream.encoder, timeout=stream.source_config.open_timeout)
    return MjpegSink(spec.target)


class FrameSource(Protocol):
    """What a worker reads: :class:`SourceReader`, or a synthetic source in tests."""

    connections: int

    def run(self, emit: Callable[[CapturedFrame], None]) -> None:
        """Hand every frame to ``emit`` until the source ends (or the worker's stop is set)."""


class StreamWorker:
    """Runs one `StreamSpec`: call :meth:`run` (blocking) or :meth:`start` then :meth:`join`.

    Args:
        spec: the stream.
        anonymizer: a loaded Anonymizer, shared with other streams (built from ``spec`` if None).
        detector: a detector to use instead (tests).
        stop: set it to end the stream cleanly (sinks are finished, files closed).
        sinks: sinks to use instead of building them from ``spec.outputs`` (tests, benchmarks).
        source: a frame source to read instead of ``spec.source`` (tests, benchmarks).
    """

    def __init__(
        self,
        spec: StreamSpec,
        anonymizer: Anonymizer | None = None,
        *,
        detector: Any = None,
        stop: threading.Event | None = None,
        sinks: list[Sink] | None = None,
        source: FrameSource | None = None,
    ) -> None:
        self.spec = spec
        self.stop = stop or threading.Event()
        self.stats = StreamStats()
        self.session = LiveSession(spec.live, anonymizer=anonymizer, detector=detector)
        self.reader: FrameSource = source or SourceReader(spec.source, spec.source_config, self.stop)
        self._sinks = sinks
        self._repeats: deque[float] = deque()
        self._last: tuple[LiveFrame, float] | None = None
        self._out_count = 0
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.sound: SoundPath | None = None
        if spec.audio == "keep" and hasattr(self.reader, "on_audio"):
            self.reader.on_audio = self._audio_in

    # ------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Run the stream in a background thread."""
        self._thread = threading.Thread(
            target=self._run_keep_error, name=f"faceveil-stream-{self.spec.name}", daemon=True
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the background run is still going."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the background run; raises its error in the caller."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error

    def _run_keep_error(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised by join() in the caller's thread
            self.error = exc

    def run(self) -> StreamStats:
        """Process the stream until its source ends or gives up, ``duration`` passes, or ``stop``."""
        audit = open(self.spec.regions, "w", encoding="utf-8") if self.spec.regions else None  # noqa: SIM115
        try:
            sinks = self._sinks if self._sinks is not None else self._build_sinks()
        except BaseException:
            if audit is not None:
                audit.close()
            raise
        runners = [SinkRunner(s, delivered=self.stats.delivered) for s in sinks]
        for runner in runners:
            runner.start()
        mailbox = Mailbox(self.spec.queue_size, self._dropped_in_queue)
        reader_error: list[BaseException] = []
        reader = threading.Thread(
            target=self._read,
            args=(mailbox, reader_error),
            name=f"faceveil-read-{self.spec.name}",
            daemon=True,
        )
        self.sound = SoundPath(self.spec.name, self.spec.audio_filter, _to_sinks(runners), self.stats)
        self.stats.started()
        self.sound.start()
        reader.start()
        try:
            self._loop(mailbox, runners, audit)
        finally:
            self.stop.set()
            reader.join()
            self.sound.finish()
            errors = self._finish(runners)
            if audit is not None:
                audit.close()
            self.stats.ended(self.reader.connections)
        if reader_error:
            raise reader_error[0]
        if errors:
            raise errors[0]
        return self.stats

    def _build_sinks(self) -> list[Sink]:
        sinks: list[Sink] = []
        try:
            for output in self.spec.outputs:
                sinks.append(build_sink(output, self.spec))
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
        return sinks

    def _read(self, mailbox: Mailbox, errors: list[BaseException]) -> None:
        try:
            self.reader.run(self._counted(mailbox))
        except BaseException as exc:  # noqa: BLE001 - re-raised by run() in the caller's thread
            errors.append(exc)
        finally:
            mailbox.close()

    # -- sound ---------------------------------------------------------------------------------
    @property
    def audio(self) -> FilteredAudio | None:
        """The stream's filtered sound (None before the first block)."""
        return None if self.sound is None else self.sound.audio

    def _audio_in(self, block: AudioBlock) -> None:
        """From the reader: one decoded block."""
        if self.sound is not None:
            self.sound.put(block)

    def _counted(self, mailbox: Mailbox) -> Callable[[CapturedFrame], None]:
        def put(frame: CapturedFrame) -> None:
            self.stats.frames_in += 1
            mailbox.put(frame)

        return put

    def _finish(self, runners: list[SinkRunner]) -> list[BaseException]:
        errors: list[BaseException] = []
        for runner in runners:
            try:
                runner.finish()
            except BaseException as exc:  # noqa: BLE001 - collected, the first is raised by run()
                errors.append(exc)
            self.stats.sink_dropped[runner.sink.name] = runner.dropped
            if runner.audio_dropped:
                self.stats.audio_dropped[runner.sink.name] = runner.audio_dropped
        return errors

    # ------------------------------------------------------------------------------------------
    def _dropped_in_queue(self, frame: CapturedFrame) -> None:
        self._drop(frame, late=False)

    def _drop(self, frame: CapturedFrame, late: bool) -> None:
        if late:
            self.stats.dropped_late += 1
        else:
            self.stats.dropped += 1
        if self.spec.on_late == "repeat":
            self._repeats.append(frame.pts)

    def _loop(self, mailbox: Mailbox, runners: list[SinkRunner], audit: IO[str] | None) -> None:
        """Hide and emit the frames the detection thread prepares, in order, until it ends."""
        handoff: queue.Queue[Handoff] = queue.Queue(maxsize=HANDOFF_SIZE)
        ended = threading.Event()  # this loop has ended: the detection thread stops waiting on it
        detection = threading.Thread(
            target=self._detect_loop,
            args=(mailbox, handoff, ended),
            name=f"faceveil-detect-{self.spec.name}",
            daemon=True,
        )
        detection.start()
        try:
            while True:
                item = handoff.get()
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    break
                captured, prepared = item
                self._flush_repeats(captured.pts, runners, audit)
                out = self.session.finish(prepared)
                self.stats.processed(out)
                self._last = (out, captured.pts)
                self._emit(out, captured.pts, captured.capture_time, runners, audit, captured)
        finally:
            ended.set()
            self.stop.set()
            detection.join()
        self._flush_repeats(float("inf"), runners, audit)

    def _detect_loop(self, mailbox: Mailbox, handoff: queue.Queue[Handoff], ended: threading.Event) -> None:
        """The detection thread: next frame, late ones dropped, the engine's first stage."""
        last: Handoff = None
        try:
            self._prepare_frames(mailbox, lambda item: hand_over(handoff, item, ended))
        except BaseException as exc:  # noqa: BLE001 - raised by the worker loop in its thread
            last = exc
        hand_over(handoff, last, ended)

    def _prepare_frames(self, mailbox: Mailbox, put: Callable[[Handoff], None]) -> None:
        deadline = None if self.spec.duration is None else time.monotonic() + self.spec.duration
        while not self.stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return
            item = mailbox.get(timeout=0.1)
            if item is None:
                if mailbox.closed:
                    return
                continue
            reset = False
            if item.connection != self.stats.connection:
                self.stats.connection = item.connection
                reset = item.connection > 1
            if time.monotonic() - item.capture_time > self.spec.max_lag:
                self._drop(item, late=True)
                continue
            rgb = item.rgb if self.spec.output_size is None else fit_within(item.rgb, self.spec.output_size)
            put((item, self.session.prepare(rgb, item.capture_time, item.period, reset=reset)))

    def _flush_repeats(self, before: float, runners: list[SinkRunner], audit: IO[str] | None) -> None:
        while self._repeats and self._repeats[0] < before:
            pts = self._repeats.popleft()
            if self._last is None:
                continue  # nothing anonymized yet: nothing to repeat, and never a raw frame
            out, _ = self._last
            self.stats.repeated += 1
            self._emit(out, pts, time.monotonic(), runners, audit, None)

    def _emit(
        self,
        out: LiveFrame,
        pts: float,
        capture_time: float,
        runners: list[SinkRunner],
        audit: IO[str] | None,
        source: CapturedFrame | None,
    ) -> None:
        frame = OutputFrame(out.image, pts, capture_time, out.faces, out.hidden_whole, source is None)
        for runner in runners:
            runner.put(frame)
        if audit is not None:
            audit.write(json.dumps(_record(self._out_count, out, pts, source)) + "\n")
        self._out_count += 1
        self.stats.frames_out += 1


def _to_sinks(runners: list[SinkRunner]) -> Callable[[AudioBlock], None]:
    def deliver(block: AudioBlock) -> None:
        for runner in runners:
            runner.put_audio(block)

    return deliver


def fit_within(rgb: RGBImage, size: tuple[int, int]) -> RGBImage:
    """``rgb`` scaled down (aspect kept, even sides) to fit ``size``; unchanged when it fits."""
    height, width = rgb.shape[:2]
    scale = min(size[0] / width, size[1] / height)
    if scale >= 1.0:
        return rgb
    import cv2

    new = (max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2))
    return np.asarray(cv2.resize(rgb, new, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _record(index: int, out: LiveFrame, pts: float, source: CapturedFrame | None) -> dict[str, Any]:
    regions = out.regions
    kinds = regions.data.get("source")
    rows = [
        {
            "box": [round(float(v), 1) for v in regions.xyxy[i]],
            "track": None if regions.tracker_id is None else int(regions.tracker_id[i]),
            "score": round(float(regions.confidence[i]), 4),
            "source": "detected" if kinds is None else str(kinds[i]),
        }
        for i in range(len(regions))
    ]
    record: dict[str, Any] = {"frame": index, "pts": round(pts, 4), "regions": rows}
    if source is None:
        record["repeated"] = True
    else:
        record |= {
            "source_pts": None if source.source_pts is None else round(source.source_pts, 4),
            "connection": source.connection,
            "detected": out.detected,
            "latency_ms": round(out.latency_ms, 2),
        }
    if out.hidden_whole:
        record["hidden_whole"] = True
    return record


def run_streams(
    specs: list[StreamSpec],
    stop: threading.Event,
    make_anonymizer: Callable[[StreamSpec], Anonymizer],
    report: Callable[[str, StreamStats], None] | None = None,
    report_every: float = 0.0,
) -> dict[str, StreamStats | BaseException]:
    """Run several streams at once, each in its own worker; one failing leaves the others running.

    Args:
        specs: the streams (unique names).
        stop: set it to stop every stream cleanly.
        make_anonymizer: the (shared) Anonymizer of a stream.
        report: called every ``report_every`` seconds with each running stream's stats.
        report_every: seconds between reports (0: none).

    Returns each stream's stats, or the exception that ended it.
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"stream names must be unique, got {names}")
    workers = []
    results: dict[str, StreamStats | BaseException] = {}
    for spec in specs:
        try:
            worker = StreamWorker(spec, make_anonymizer(spec), stop=threading.Event())
        except (StreamError, ConfigError, OSError) as exc:
            results[spec.name] = exc
            continue
        workers.append(worker)
        worker.start()
    next_report = time.monotonic() + report_every
    try:
        while any(w.running for w in workers):
            if stop.wait(0.2):
                break
            if report is not None and report_every > 0 and time.monotonic() >= next_report:
                next_report += report_every
                for worker in workers:
                    if worker.running:
                        report(worker.spec.name, worker.stats)
    finally:
        for worker in workers:
            worker.stop.set()
        for worker in workers:
            try:
                worker.join()
                results[worker.spec.name] = worker.stats
            except BaseException as exc:  # noqa: BLE001 - one stream's failure is its own result
                results[worker.spec.name] = exc
    return {name: results[name] for name in names if name in results}
