"""Reading live sources: cameras (v4l2), network streams, files at their real pace.

:class:`SourceReader` opens a checked `SourceSpec` with timeouts on opening and on every read,
decodes with low delay (no frame threading, no input buffering) and hands each frame on with its
capture time. A stream that drops or ends, and a camera that disappears, is reopened with
exponential backoff until it comes back or ``give_up_after`` seconds pass without a frame. A
file played with ``realtime`` ends at its end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from faceveil.errors import ConfigError, InputError, StreamError
from faceveil.stream.audio import AUDIO_RATE, MAX_CHANNELS, AudioBlock, Samples
from faceveil.stream.safety import SourceSpec, redact_in

RGBImage = npt.NDArray[np.uint8]
log = logging.getLogger("faceveil.stream")

#: A source timestamp this much further (seconds) than the wall clock moved is a discontinuity.
_JUMP_S = 5.0


@dataclass(frozen=True)
class SourceConfig:
    """How a source is opened, read and reopened.

    Attributes:
        open_timeout: seconds to wait for a source to open (connect, handshake, first probe).
        read_timeout: seconds a read may block before the source counts as dropped.
        realtime: play a file at the pace of its timestamps (required for files).
        reconnect_delay: first wait before reopening a dropped source; doubled at each failure.
        reconnect_max_delay: longest wait between two attempts.
        give_up_after: stop trying after this many seconds without a frame (None: never).
        camera_size: ``WxH`` asked of a camera (None: its default).
        camera_fps: frame rate asked of a camera (None: its default).
    """

    open_timeout: float = 10.0
    read_timeout: float = 5.0
    realtime: bool = False
    reconnect_delay: float = 0.5
    reconnect_max_delay: float = 10.0
    give_up_after: float | None = None
    camera_size: str | None = None
    camera_fps: float | None = None

    def __post_init__(self) -> None:
        for name in ("open_timeout", "read_timeout", "reconnect_delay", "reconnect_max_delay"):
            value = getattr(self, name)
            if not 0.01 <= value <= 3600:
                raise ConfigError(f"{name} must lie in [0.01, 3600] seconds, got {value!r}")
        if self.reconnect_max_delay < self.reconnect_delay:
            raise ConfigError("reconnect_max_delay must be at least reconnect_delay")
        if self.give_up_after is not None and self.give_up_after < 0:
            raise ConfigError(f"give_up_after must be >= 0 seconds, got {self.give_up_after!r}")
        if self.camera_size is not None and not _is_size(self.camera_size):
            raise ConfigError(f"camera_size must look like 1280x720, got {self.camera_size!r}")
        if self.camera_fps is not None and not 1 <= self.camera_fps <= 240:
            raise ConfigError(f"camera_fps must lie in [1, 240], got {self.camera_fps!r}")


def _is_size(text: str) -> bool:
    width, _, height = text.partition("x")
    return width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0


@dataclass(frozen=True, eq=False)
class CapturedFrame:
    """A decoded frame on its way to the engine.

    Attributes:
        rgb: ``(H, W, 3)`` uint8 RGB pixels, upright.
        capture_time: when it was decoded (or due, for a file in real time), ``time.monotonic()``.
        pts: seconds on the output timeline: the source's own timing, kept across reconnections.
        source_pts: seconds as the source stamped it (None when it has no timestamps).
        connection: 1 for the first connection, 2 after the first reconnection, and so on.
        period: the source's frame period (seconds, a moving average over every frame read,
            kept or dropped later), None until two frames came.
    """

    rgb: RGBImage
    capture_time: float
    pts: float
    source_pts: float | None
    connection: int
    period: float | None = None


def _av() -> Any:
    import av

    return av


def open_container(spec: SourceSpec, config: SourceConfig) -> Any:
    """Open ``spec`` with PyAV, within the timeouts.

    Raises:
        InputError: it cannot be opened now (worth trying again).
        StreamError: it can never be opened here (a protocol this FFmpeg lacks).
    """
    av = _av()
    if spec.kind == "file":
        from faceveil.media.video_io import open_input

        return open_input(spec.target)
    options = {
        "fflags": "nobuffer",
        "flags": "low_delay",
        "analyzeduration": "300000",
        "probesize": "65536",
    }
    options |= spec.ffmpeg_options()
    fmt = None
    if spec.kind == "camera":
        fmt = "v4l2"
        options = {}
        if config.camera_size:
            options["video_size"] = config.camera_size
        if config.camera_fps:
            options["framerate"] = f"{config.camera_fps:g}"
    try:
        container = av.open(
            spec.target,
            mode="r",
            format=fmt,
            options=options,
            timeout=(config.open_timeout, config.read_timeout),
        )
    except av.error.ProtocolNotFoundError:
        raise StreamError(
            f"{spec.scheme}:// is not supported by the FFmpeg inside PyAV here (built without it)"
        ) from None
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"cannot open {spec.display}: {redact_in(str(exc), spec.target)}") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{spec.display} has no video stream")
    return container


def decode(container: Any) -> Iterator[tuple[RGBImage, float | None]]:
    """Upright RGB frames and their timestamps (seconds) of the first video stream, low delay."""
    for kind, payload, seconds in demux(container, audio=False):
        if kind == "video":
            yield payload, seconds


def demux(container: Any, audio: bool = True) -> Iterator[tuple[str, Any, float | None]]:
    """``("video", rgb, seconds)`` of the first video stream and, with ``audio``,
    ``("audio", samples, seconds)`` of the first audio stream (float32 ``(n, channels)`` at
    `AUDIO_RATE`, mono or stereo), in the container's order, low delay."""
    stream = container.streams.video[0]
    stream.codec_context.thread_type = "SLICE"  # frame threads would hold frames back
    sound = container.streams.audio[0] if audio and container.streams.audio else None
    streams = (stream,) if sound is None else (stream, sound)
    resample = None if sound is None else _Resampler(sound)
    if resample is not None:  # tell the outputs about the sound before the first picture
        yield "audio", np.zeros((0, resample.channels), np.float32), None
    for packet in container.demux(*streams):
        if sound is not None and packet.stream.index == sound.index:
            assert resample is not None
            for frame in packet.decode():
                for samples, seconds in resample(frame):
                    yield "audio", samples, seconds
            continue
        for frame in packet.decode():
            rgb = frame.to_ndarray(format="rgb24")
            turn = round(float(getattr(frame, "rotation", 0) or 0) / 90) % 4
            if turn:
                rgb = np.ascontiguousarray(np.rot90(rgb, turn))
            yield "video", rgb, _seconds(frame)


def _seconds(frame: Any) -> float | None:
    return float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None


class _Resampler:
    """Audio frames to float32 ``(n, channels)`` at `AUDIO_RATE`, stamped on a sample count that
    follows the source's own timestamps (re-anchored when they jump by more than 50 ms)."""

    def __init__(self, stream: Any) -> None:
        av = _av()
        channels = min(MAX_CHANNELS, max(1, int(stream.codec_context.channels or 1)))
        self.channels = channels
        self.layout = "mono" if channels == 1 else "stereo"
        self._resampler = av.AudioResampler(format="flt", layout=self.layout, rate=AUDIO_RATE)
        self._next: float | None = None

    def __call__(self, frame: Any) -> Iterator[tuple[Samples, float | None]]:
        start = _seconds(frame)
        if start is not None and (self._next is None or abs(start - self._next) > 0.05):
            self._next = start
        for out in self._resampler.resample(frame):
            samples = np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1, self.channels)
            seconds = self._next
            if self._next is not None:
                self._next += len(samples) / AUDIO_RATE
            yield samples, seconds


class _Timeline:
    """Maps source timestamps to one output timeline that keeps going across reconnections.

    Within a connection, the source's own timing is kept exactly; a new connection, or a jump of
    the source's clock (backwards, or more than `_JUMP_S` further than the wall clock moved),
    starts again from the wall clock.
    """

    def __init__(self, start: float) -> None:
        self.start = start
        self.offset: float | None = None
        self.last = -1.0
        self._previous: tuple[float, float] | None = None  # (source pts, wall) of the last frame
        self._last_pts: float | None = None
        self._period: float | None = None

    def reconnected(self) -> None:
        self.offset = None
        self._previous = None

    def place(self, source_pts: float | None, capture_time: float) -> float:
        wall = capture_time - self.start
        if source_pts is None:
            pts = wall
        else:
            if self.offset is None or self._jumped(source_pts, wall):
                self.offset = wall - source_pts
            self._previous = (source_pts, wall)
            pts = source_pts + self.offset
        pts = max(pts, self.last + 0.001)
        self.last = pts
        return pts

    def place_audio(self, source_pts: float | None, capture_time: float) -> float:
        """Output seconds of a sound block: the offset the pictures of this connection use."""
        wall = capture_time - self.start
        if source_pts is None:
            return wall
        if self.offset is None:
            self.offset = wall - source_pts
        return source_pts + self.offset

    def period(self, pts: float) -> float | None:
        """Moving average of the gaps between output timestamps (the source's frame period)."""
        if self._last_pts is not None and 0.0 < pts - self._last_pts < 2.0:
            gap = pts - self._last_pts
            self._period = gap if self._period is None else self._period + 0.1 * (gap - self._period)
        self._last_pts = pts
        return self._period

    def _jumped(self, source_pts: float, wall: float) -> bool:
        if self._previous is None:
            return False
        step = source_pts - self._previous[0]
        return step < 0 or step > (wall - self._previous[1]) + _JUMP_S


class SourceReader:
    """Reads one source until it ends, it gives up, or ``stop`` is set.

    Args:
        spec: the checked source.
        config: timeouts, pacing and reconnection.
        stop: set it to end :meth:`run` (within ``read_timeout`` at worst).
        clock: the clock of capture times (``time.monotonic``).
        opener: opens a container (tests inject failures); :func:`open_container` by default.
    """

    def __init__(
        self,
        spec: SourceSpec,
        config: SourceConfig,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
        opener: Callable[[SourceSpec, SourceConfig], Any] = open_container,
    ) -> None:
        if spec.kind == "file" and not config.realtime:
            raise ConfigError(f"{spec.display} is a file: play it with realtime (--realtime)")
        self.spec = spec
        self.config = config
        self.stop = stop
        self.clock = clock
        self.opener = opener
        self.connections = 0
        self.frames = 0
        #: Where decoded sound goes (set before :meth:`run`; None: the sound is not decoded).
        self.on_audio: Callable[[AudioBlock], None] | None = None
        #: The last reason the source could not be read (None while it is read).
        self.last_error: str | None = None
        #: Seconds until the next attempt while reconnecting (None otherwise).
        self.retry_in: float | None = None

    @property
    def reconnects(self) -> int:
        """Successful reopenings after the first connection."""
        return max(0, self.connections - 1)

    def run(self, emit: Callable[[CapturedFrame], None]) -> None:
        """Read frames and hand each to ``emit``, reconnecting as configured.

        Raises:
            StreamError: the source never opened (or gave nothing) before ``give_up_after``.
        """
        timeline = _Timeline(self.clock())
        delay = self.config.reconnect_delay
        last_frame = self.clock()
        while not self.stop.is_set():
            got = self._session(emit, timeline)
            if self.spec.kind == "file":  # a file ends at its end, and is not retried
                if not got and not self.stop.is_set():
                    raise StreamError(f"{self.spec.display}: no frame could be read")
                return
            if got:
                last_frame, delay = self.clock(), self.config.reconnect_delay
            limit = self.config.give_up_after
            if limit is not None and self.clock() - last_frame + delay > limit:
                if self.frames == 0:
                    raise StreamError(f"{self.spec.display}: no frame within {limit:g} s; giving up")
                log.warning(
                    "%s: no frame for %.1f s; giving up", self.spec.display, self.clock() - last_frame
                )
                return
            log.info("%s: reconnecting in %.1f s", self.spec.display, delay)
            self.retry_in = delay
            self.stop.wait(delay)
            self.retry_in = None
            delay = min(delay * 2, self.config.reconnect_max_delay)

    def _session(self, emit: Callable[[CapturedFrame], None], timeline: _Timeline) -> int:
        """One connection: frames handed on until it drops or ends; returns how many."""
        av = _av()
        try:
            container = self.opener(self.spec, self.config)
        except InputError as exc:  # unreachable or refused for now: tried again (other errors are final)
            log.warning("%s", exc)
            self.last_error = str(exc)
            return 0
        self.connections += 1
        timeline.reconnected()
        count = 0
        try:
            for kind, payload, source_pts in self._paced(demux(container, self.on_audio is not None)):
                if self.stop.is_set():
                    break
                now = self.clock()
                if kind == "audio":
                    assert self.on_audio is not None
                    self.on_audio(AudioBlock(payload, timeline.place_audio(source_pts, now)))
                    continue
                pts = timeline.place(source_pts, now)
                period = timeline.period(pts)
                emit(CapturedFrame(payload, now, pts, source_pts, self.connections, period))
                self.last_error = None
                count += 1
                self.frames += 1
        except (av.error.FFmpegError, OSError, EOFError) as exc:
            why = redact_in(str(exc), self.spec.target)
            log.warning("%s: the stream dropped: %s", self.spec.display, why)
            self.last_error = f"{self.spec.display}: the stream dropped: {why}"
        finally:
            container.close()
        return count

    def _paced(
        self, items: Iterator[tuple[str, Any, float | None]]
    ) -> Iterator[tuple[str, Any, float | None]]:
        """For a file in real time, hold each frame (and sound block) until its timestamp comes."""
        if not self.config.realtime or self.spec.kind != "file":
            yield from items
            return
        start: float | None = None
        first = 0.0
        for kind, payload, seconds in items:
            if seconds is not None:
                if start is None:
                    start, first = self.clock(), seconds
                wait = start + (seconds - first) - self.clock()
                if wait > 0 and self.stop.wait(wait):
                    return
            yield kind, payload, seconds
