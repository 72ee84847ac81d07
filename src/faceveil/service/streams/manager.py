"""Runs the server's live streams: one `StreamWorker` per running stream, in the server process.

Each running stream has a thread that loads its model (shared between streams with the same
settings), builds its sinks (rolling MP4 segments in the stream's folder, an RTMP/RTSP push,
the page's preview) and runs the worker until it is stopped. A monitor thread measures fps and
the server's CPU load, stops recordings when the disk quota is reached, and deletes recordings
whose retention time has passed. Nothing but anonymized frames reaches a sink, and no source
URL is ever logged, returned or audited with its password.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.config import AnonymizerConfig, DetectorConfig, MaskConfig, parse_color
from faceveil.detection.base import Detector
from faceveil.errors import ConfigError, FaceveilError
from faceveil.service.audit import AuditLog
from faceveil.service.errors import ApiError
from faceveil.service.settings import ServiceSettings
from faceveil.service.streams.recordings import Recordings
from faceveil.service.streams.store import RUNNING, StreamRecord, StreamStore
from faceveil.service.uploads import JobFiles
from faceveil.stream.audio import sound_settings
from faceveil.stream.engine import DEFAULT_LIVE_MAX_SIDE, LiveConfig
from faceveil.stream.mjpeg import PreviewSink
from faceveil.stream.safety import SourceSpec, check_url, parse_source, redact_in
from faceveil.stream.sinks import EncoderConfig, FileSink, OutputSpec, PushSink, Sink, parse_output
from faceveil.stream.sources import SourceConfig
from faceveil.stream.spec import StreamSpec
from faceveil.stream.stats import percentile
from faceveil.stream.worker import StreamWorker

log = logging.getLogger("faceveil.service.streams")
#: Seconds between two looks of the monitor (fps window, quota).
_MONITOR_S = 1.0
#: Latency samples the p95 shown is taken over (about 10 s at 25 fps).
_RECENT = 250


def check_source(source: str, settings: ServiceSettings, cameras: list[str]) -> SourceSpec:
    """A stream source from a client: a listed camera, or a URL ``check_url`` accepts (private
    and loopback addresses only through ``FACEVEIL_STREAM_ALLOWLIST``)."""
    text = source.strip()
    if "://" not in text:
        spec = parse_source(text)  # a camera, or refused
        if spec.target not in cameras:
            listed = ", ".join(cameras) or "none"
            raise ConfigError(f"{spec.target} is not a camera this server can open; listed: {listed}")
        return spec
    spec = check_url(text, allow_private=False, allowlist=settings.stream_allowlist)
    if spec.scheme not in ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https"):
        raise ConfigError(f"a stream URL is rtsp://, rtmp:// or http(s)://, got {spec.scheme}://")
    return spec


def check_push(url: str, settings: ServiceSettings) -> OutputSpec:
    """A push target from a client: rtmp(s):// or rtsp(s)://, checked like a source URL."""
    output = parse_output(url.strip())
    if output.kind not in ("rtmp", "rtsp"):
        raise ConfigError("a push target is an rtmp:// or rtsp:// URL")
    check_url(output.target, allow_private=False, allowlist=settings.stream_allowlist)
    return output


def live_config(options: dict[str, Any]) -> LiveConfig:
    """The engine's settings of a stream's options."""
    mode, shape = options.get("mode", "blur"), options.get("shape", "ellipse")
    mask = MaskConfig(
        mode=mode if mode in ("blur", "pixelate", "solid") else "blur",
        shape="box" if shape == "box" else "ellipse",
        color=parse_color(str(options.get("color", "000000"))),
    )
    detector = DetectorConfig(name=str(options.get("preset", "fast")), max_side=DEFAULT_LIVE_MAX_SIDE)
    return LiveConfig(anonymizer=AnonymizerConfig(detector=detector, mask=mask))


@dataclass
class _Meter:
    """Frames out over the last few seconds (the fps shown)."""

    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=4))

    def add(self, now: float, frames: int) -> None:
        self.samples.append((now, frames))

    def fps(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, f0), (t1, f1) = self.samples[0], self.samples[-1]
        return round((f1 - f0) / (t1 - t0), 1) if t1 > t0 else None


def gpu_percent() -> float | None:
    """The busiest GPU's load (NVIDIA's ``nvidia-smi``, where one is installed), else None."""
    import shutil
    import subprocess

    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    try:
        done = subprocess.run(
            [tool, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=2.0,
            check=True,
        )
        values = [float(v) for v in done.stdout.split() if v.replace(".", "", 1).isdigit()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return max(values) if values else None


class LiveStream:
    """One running stream: its thread, worker, sinks and figures."""

    def __init__(self, record: StreamRecord, spec: StreamSpec, preview: PreviewSink | None) -> None:
        self.record = record
        self.spec = spec
        self.preview = preview
        self.worker: StreamWorker | None = None
        self.recorder: FileSink | None = None
        self.push: PushSink | None = None
        self.error: str | None = None
        self.stopping = threading.Event()
        self.meter = _Meter()
        self.thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """Whether its thread still runs."""
        return self.thread is not None and self.thread.is_alive()

    def state(self) -> str:
        """``starting``, ``connecting``, ``running``, ``retrying``, ``failed`` or ``stopped``."""
        if not self.alive:
            return "failed" if self.error else "stopped"
        worker = self.worker
        if worker is None:
            return "starting"
        reader: Any = worker.reader
        # the reader clears its last error with every frame: while one is set, nothing comes
        if getattr(reader, "retry_in", None) is not None or getattr(reader, "last_error", None):
            return "retrying"
        return "running" if worker.stats.frames_out else "connecting"

    def message(self) -> str | None:
        """Why it failed or is retrying (never with the source's password)."""
        text = self.error
        if text is None and self.worker is not None:
            text = getattr(self.worker.reader, "last_error", None)
        if text is None and self.push is not None:
            text = self.push.last_error
        return None if text is None else redact_in(text, self.record.source)


class StreamManager:
    """Starts, stops and watches the server's streams.

    Args:
        store: the stream definitions.
        settings: limits, quota, retention, allow-list.
        files: the jobs' files (the quota covers jobs and recordings together).
        audit: where starts, stops and failures are recorded.
        detector_factory: builds the detector of a preset (tests pass a fake).
    """

    def __init__(
        self,
        store: StreamStore,
        settings: ServiceSettings,
        files: JobFiles,
        audit: AuditLog,
        detector_factory: Callable[[str], Detector] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.files = files
        self.audit = audit
        self.recordings = Recordings(settings.data_dir / "streams")
        self.detector_factory = detector_factory
        self.live: dict[str, LiveStream] = {}
        self.cpu_percent = 0.0
        self.gpu_percent: float | None = None
        self._models: dict[AnonymizerConfig, Anonymizer] = {}
        self._models_lock = threading.Lock()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="faceveil-streams-monitor", daemon=True)
        self._last_sweep = 0.0

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the streams that were running before the server stopped, then the monitor."""
        for record in self.store.streams():
            if record.desired == RUNNING:
                try:
                    self.run(record)
                except (FaceveilError, ValueError) as exc:
                    log.warning(
                        "stream %s could not start again: %s", record.id, redact_in(str(exc), record.source)
                    )
        self._monitor.start()

    def stop(self) -> None:
        """Stop every stream (recordings finished; they start again after the next start)."""
        self._stop.set()
        with self._lock:
            streams = list(self.live.values())
        for stream in streams:
            stream.stopping.set()
            if stream.worker is not None:
                stream.worker.stop.set()
        for stream in streams:
            if stream.thread is not None:
                stream.thread.join(30)
        if self._monitor.is_alive():
            self._monitor.join(5)

    # -- one stream ---------------------------------------------------------------------------
    def spec_of(self, record: StreamRecord) -> StreamSpec:
        """The worker's settings of a stream definition (checked again: the allow-list may have changed)."""
        from faceveil.service.streams.recordings import list_cameras

        options = record.options
        source = check_source(record.source, self.settings, list_cameras())
        outputs: list[OutputSpec] = []
        if options.get("record", True):
            outputs.append(OutputSpec("file", str(self.recordings.new_base(record.id))))
        if options.get("push"):
            outputs.append(check_push(str(options["push"]), self.settings))
        size = str(options.get("size", "source"))
        width, _, height = size.partition("x")
        voice = options.get("voice")  # a disguise draws its transform each time the stream starts
        audio, audio_filter = sound_settings(
            str(options.get("audio", "keep")), None if voice is None else str(voice)
        )
        return StreamSpec(
            name=record.id,
            source=source,
            outputs=tuple(outputs) or (OutputSpec("mjpeg", "preview"),),
            live=live_config(options),
            source_config=SourceConfig(open_timeout=5.0, read_timeout=5.0, reconnect_max_delay=30.0),
            encoder=EncoderConfig(),
            segment_s=float(options.get("segment_s", 300)),
            audio=audio,
            audio_filter=audio_filter,
            output_size=None if size == "source" else (int(width), int(height)),
        )

    def run(self, record: StreamRecord) -> LiveStream:
        """Start ``record`` (a no-op when it runs already)."""
        with self._lock:
            current = self.live.get(record.id)
            if current is not None and current.alive:
                return current
            running = sum(1 for s in self.live.values() if s.alive)
            if running >= self.settings.max_streams:
                raise ConfigError(
                    f"{running} streams run already, the most this server runs at once "
                    "(FACEVEIL_MAX_STREAMS); stop one first"
                )
            spec = self.spec_of(record)
            preview = PreviewSink() if record.options.get("preview", True) else None
            stream = LiveStream(record, spec, preview)
            stream.thread = threading.Thread(
                target=self._run, args=(stream,), name=f"faceveil-stream-{record.id[:8]}", daemon=True
            )
            self.live[record.id] = stream
            stream.thread.start()
        return stream

    def halt(self, stream_id: str, wait_s: float = 30.0) -> None:
        """Stop a stream and wait until its recording is finished."""
        with self._lock:
            stream = self.live.get(stream_id)
        if stream is None:
            return
        stream.stopping.set()
        if stream.worker is not None:
            stream.worker.stop.set()
        if stream.thread is not None:
            stream.thread.join(wait_s)

    def forget(self, stream_id: str) -> None:
        """Stop a stream and drop what is kept of its last run."""
        self.halt(stream_id)
        with self._lock:
            self.live.pop(stream_id, None)

    def _anonymizer(self, config: AnonymizerConfig) -> Anonymizer:
        with self._models_lock:
            if config not in self._models:
                detector = None
                if self.detector_factory is not None:
                    detector = self.detector_factory(config.detector.name)
                self._models[config] = Anonymizer(config, detector=detector)
            return self._models[config]

    def _run(self, stream: LiveStream) -> None:
        record, spec = stream.record, stream.spec
        try:
            anonymizer = self._anonymizer(spec.live.anonymizer)
            if stream.stopping.is_set():
                return
            sinks = self._sinks(stream)
            worker = StreamWorker(spec, anonymizer, sinks=sinks)
            stream.worker = worker
            if stream.stopping.is_set():
                worker.stop.set()
            self.audit.record("stream_run", client=None, principal="streams", stream_id=record.id)
            worker.run()
        except (FaceveilError, OSError, ValueError) as exc:
            stream.error = redact_in(str(exc), record.source)
            log.warning("stream %s failed: %s", record.id, stream.error)
            self.audit.record(
                "stream_failed", client=None, principal="streams", stream_id=record.id, reason=stream.error
            )
        finally:
            if stream.preview is not None:
                stream.preview.close()

    def _sinks(self, stream: LiveStream) -> list[Sink]:
        spec = stream.spec
        sinks: list[Sink] = []
        for output in spec.outputs:
            if output.kind == "file":
                stream.recorder = FileSink(output.target, spec.encoder, spec.segment_s)
                sinks.append(stream.recorder)
            elif output.kind in ("rtmp", "rtsp"):
                stream.push = PushSink(output.target, spec.encoder, timeout=spec.source_config.open_timeout)
                sinks.append(stream.push)
        if stream.preview is not None:
            sinks.append(stream.preview)
        if not sinks:
            raise ConfigError("a stream needs at least one of: record, push, preview")
        return sinks

    # -- figures ------------------------------------------------------------------------------
    def figures(self, stream_id: str) -> dict[str, Any]:
        """What the stream does now (zeros when it does not run)."""
        stream = self.live.get(stream_id)
        worker = None if stream is None else stream.worker
        if stream is None or worker is None or not stream.alive:
            return {}
        stats = worker.stats
        recent = list(stats.latency_ms)[-_RECENT:]
        p95 = percentile(recent, 95)
        return {
            "fps": stream.meter.fps(),
            "faces": stats.faces_now,
            "latency_p95_ms": None if p95 is None else round(p95, 1),
            "dropped": stats.dropped + stats.dropped_late,
            "reconnects": max(0, worker.reader.connections - 1),
            "frames_out": stats.frames_out,
            "audio_s": round(stats.audio_samples / 48_000, 1),
        }

    def running_count(self) -> int:
        """Streams whose thread runs."""
        with self._lock:
            return sum(1 for s in self.live.values() if s.alive)

    def busy_files(self) -> list[Path]:
        """Recordings being written now."""
        with self._lock:
            return [s.recorder.current for s in self.live.values() if s.recorder and s.recorder.current]

    # -- monitor ------------------------------------------------------------------------------
    def _watch(self) -> None:
        last_wall, last_cpu = time.monotonic(), time.process_time()
        while not self._stop.wait(_MONITOR_S):
            now, cpu = time.monotonic(), time.process_time()
            cpus = os.cpu_count() or 1
            self.cpu_percent = round(100.0 * (cpu - last_cpu) / max(1e-6, now - last_wall) / cpus, 1)
            last_wall, last_cpu = now, cpu
            self.gpu_percent = gpu_percent() if self.running_count() else None
            with self._lock:
                streams = list(self.live.values())
            for stream in streams:
                if stream.worker is not None and stream.alive:
                    stream.meter.add(now, stream.worker.stats.frames_out)
            try:
                self._check_quota(streams)
                if time.time() - self._last_sweep >= self.settings.sweep_interval_s:
                    self._last_sweep = time.time()
                    self.sweep()
            except OSError as exc:
                log.error("stream housekeeping failed: %s", exc)

    def _check_quota(self, streams: list[LiveStream]) -> None:
        """Stop the recording streams once the quota or the free disk is reached (as uploads are refused)."""
        recording = [s for s in streams if s.alive and s.recorder is not None]
        if not recording:
            return
        try:
            self.files.check_room(0)
        except ApiError as exc:  # 507: the quota uploads are refused by
            reason = exc.message
            for stream in recording:
                stream.error = f"recording stopped: {reason}"
                self.audit.record(
                    "stream_quota", client=None, principal="streams", stream_id=stream.record.id
                )
                stream.stopping.set()
                if stream.worker is not None:
                    stream.worker.stop.set()

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete recordings past their retention time; returns their names."""
        gone = []
        for stream_id, path in self.recordings.expired(self.settings.result_ttl_s, self.busy_files(), now):
            path.unlink(missing_ok=True)
            self.audit.record(
                "recording_expired", client=None, principal="sweeper", stream_id=stream_id, name=path.name
            )
            gone.append(path.name)
        return gone
