"""Figures of a running stream: frames in/out, drops, detections, added latency percentiles."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from faceveil.stream.engine import LiveFrame
    from faceveil.stream.sinks import OutputFrame

#: Latency samples kept per series (the newest ones; about an hour at 25 fps).
_SAMPLES = 100_000


def percentile(samples: deque[float] | list[float], q: float) -> float | None:
    """The ``q``-th percentile of ``samples`` (None when there are none)."""
    values = list(samples)  # a copy: another thread may be appending
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass
class StreamStats:
    """Counters of one stream; updated by its threads, read at any time.

    Attributes:
        frames_in: frames decoded from the source.
        frames_out: frames handed to the sinks (anonymized plus repeated).
        anonymized: frames the engine processed.
        detected: frames the detector ran on.
        dropped: frames dropped because the engine was busy (the queue was full).
        dropped_late: frames dropped because they were older than ``max_lag`` when their turn came.
        repeated: last anonymized frame sent again in place of a dropped one (``on_late=repeat``).
        hidden_whole: frames hidden whole because the detector failed on them.
        faces: the highest number of faces in view on one frame.
        faces_now: faces in view on the newest anonymized frame.
        connection: the source connection being read (1, then 2 after a reconnection...).
        reconnects: successful reconnections of the source.
        latency_ms: added latency of each anonymized frame, capture to anonymized.
        delivered_ms: per output, capture to written (encoded, sent or published).
        sink_dropped: per output, frames its queue dropped because it was slower than the stream.
        audio_samples: sound samples (per channel, 48 kHz) handed to the outputs.
        audio_filter_failures: sound blocks made silent because the audio filter failed on them.
        audio_dropped: per output, sound samples let go because the output was stuck.
        audio_latency_ms: per sound block from the source, the latency of the oldest sample it
            let out: that sample's arrival to its hand-over to the outputs (the audio thread's
            wait and the audio filter's latency, e.g. the voice disguise's analysis frame, rounded
            up to whole source blocks).
    """

    frames_in: int = 0
    frames_out: int = 0
    anonymized: int = 0
    detected: int = 0
    dropped: int = 0
    dropped_late: int = 0
    repeated: int = 0
    hidden_whole: int = 0
    faces: int = 0
    faces_now: int = 0
    connection: int = 0
    reconnects: int = 0
    latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    delivered_ms: dict[str, deque[float]] = field(default_factory=dict)
    sink_dropped: dict[str, int] = field(default_factory=dict)
    audio_samples: int = 0
    audio_filter_failures: int = 0
    audio_dropped: dict[str, int] = field(default_factory=dict)
    audio_latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    start: float | None = None
    end: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def started(self) -> None:
        """Mark the start of the stream."""
        self.start = time.monotonic()

    def ended(self, connections: int) -> None:
        """Mark its end, with the number of source connections made."""
        self.end = time.monotonic()
        self.reconnects = max(0, connections - 1)

    def processed(self, out: LiveFrame) -> None:
        """Count one frame the engine anonymized."""
        self.anonymized += 1
        self.detected += int(out.detected)
        self.hidden_whole += int(out.hidden_whole)
        self.faces = max(self.faces, out.faces)
        self.faces_now = out.faces
        self.latency_ms.append(out.latency_ms)

    def delivered(self, sink: str, frame: OutputFrame) -> None:
        """Record that output ``sink`` has written ``frame`` (called from the sink's thread)."""
        latency = (time.monotonic() - frame.capture_time) * 1000.0
        with self._lock:
            self.delivered_ms.setdefault(sink, deque(maxlen=_SAMPLES)).append(latency)

    @property
    def wall_s(self) -> float:
        """Seconds the stream has run."""
        if self.start is None:
            return 0.0
        return (self.end or time.monotonic()) - self.start

    @property
    def fps(self) -> float:
        """Frames sent to the outputs per second of wall time."""
        return self.frames_out / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (latencies in milliseconds, rounded)."""

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        with self._lock:
            delivered = {
                name: {"p50": ms(percentile(v, 50)), "p95": ms(percentile(v, 95))}
                for name, v in self.delivered_ms.items()
            }
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "anonymized": self.anonymized,
            "detected": self.detected,
            "dropped": self.dropped + self.dropped_late,
            "dropped_busy": self.dropped,
            "dropped_late": self.dropped_late,
            "repeated": self.repeated,
            "hidden_whole": self.hidden_whole,
            "max_faces": self.faces,
            "reconnects": self.reconnects,
            "wall_s": round(self.wall_s, 2),
            "fps": round(self.fps, 2),
            "latency_ms": {
                "p50": ms(percentile(self.latency_ms, 50)),
                "p95": ms(percentile(self.latency_ms, 95)),
            },
            "delivered_ms": delivered,
            "output_dropped": dict(self.sink_dropped),
            "audio_s": round(self.audio_samples / 48_000, 2),
            "audio_filter_failures": self.audio_filter_failures,
            "audio_dropped": dict(self.audio_dropped),
            "audio_latency_ms": {
                "p50": ms(percentile(self.audio_latency_ms, 50)),
                "p95": ms(percentile(self.audio_latency_ms, 95)),
                "max": ms(max(list(self.audio_latency_ms), default=None)),
            },
        }
