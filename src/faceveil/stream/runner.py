"""Each output of a stream in its own thread: :class:`SinkRunner`, a small queue in front of a sink.

A slow output drops its oldest waiting frames rather than hold the others back; its sound is
never dropped with them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from faceveil.errors import StreamError
from faceveil.stream.audio import AUDIO_RATE, AudioBlock
from faceveil.stream.sinks import OutputFrame, Sink

#: Most sound a sink's queue holds (seconds) before it lets the oldest go (a stuck sink).
AUDIO_BACKLOG_S = 60.0


class SinkRunner(threading.Thread):
    """Runs one sink in its own thread behind a queue of ``depth`` frames (and its sound).

    A full frame queue drops its oldest frame (counted in ``dropped``); sound is never dropped
    with frames (only a sink stuck for `AUDIO_BACKLOG_S` loses its oldest sound, counted in
    ``audio_dropped``). The sink's exception, if any, is kept in ``error`` and raised by
    :meth:`finish` in the caller's thread.

    Args:
        sink: the sink to feed.
        depth: frames that may wait.
        delivered: called after each write with the frame (to measure latency to the output).
    """

    def __init__(
        self, sink: Sink, depth: int = 8, delivered: Callable[[str, OutputFrame], None] | None = None
    ) -> None:
        super().__init__(name=f"faceveil-sink-{sink.name}", daemon=True)
        self.sink = sink
        self.depth = depth
        self.delivered = delivered
        self.dropped = 0
        self.audio_dropped = 0
        self.written = 0
        self.error: BaseException | None = None
        self.takes_audio = callable(getattr(sink, "write_audio", None))
        self._frames: deque[OutputFrame] = deque()
        self._sound: deque[AudioBlock] = deque()
        self._sound_samples = 0
        self._stopping = False
        self._cond = threading.Condition()

    @property
    def queue_length(self) -> int:
        """Frames waiting."""
        return len(self._frames)

    def put(self, frame: OutputFrame) -> None:
        """Queue a frame (never blocks: the oldest waiting frame makes room)."""
        self._check()
        with self._cond:
            if len(self._frames) >= self.depth:
                self._frames.popleft()
                self.dropped += 1
            self._frames.append(frame)
            self._cond.notify()

    def put_audio(self, block: AudioBlock) -> None:
        """Queue sound for a sink that takes it (never blocks, never dropped for frames)."""
        if not self.takes_audio:
            return
        self._check()
        with self._cond:
            self._sound.append(block)
            self._sound_samples += len(block.samples)
            while self._sound_samples > AUDIO_BACKLOG_S * AUDIO_RATE and len(self._sound) > 1:
                old = self._sound.popleft()
                self._sound_samples -= len(old.samples)
                self.audio_dropped += len(old.samples)
            self._cond.notify()

    def _check(self) -> None:
        if self.error is not None:
            raise StreamError(f"output {self.sink.name} failed: {self.error}") from self.error

    def _next(self) -> tuple[str, Any] | None:
        """The next item, sound first (it is held in the sink until the pictures reach it)."""
        with self._cond:
            self._cond.wait_for(lambda: self._sound or self._frames or self._stopping)
            if self._sound:
                block = self._sound.popleft()
                self._sound_samples -= len(block.samples)
                return "audio", block
            if self._frames:
                return "frame", self._frames.popleft()
            return None

    def run(self) -> None:
        try:
            while (item := self._next()) is not None:
                kind, payload = item
                if kind == "audio":
                    self.sink.write_audio(payload)  # type: ignore[attr-defined]
                    continue
                self.sink.write(payload)
                self.written += 1
                if self.delivered is not None:
                    self.delivered(self.sink.name, payload)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller by finish()
            self.error = exc
        finally:
            self._close()

    def _close(self) -> None:
        try:
            self.sink.close()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller by finish()
            self.error = self.error or exc

    def finish(self, timeout: float = 30.0) -> None:
        """Write what is queued, close the sink, and raise its error if it failed."""
        if self.is_alive():
            with self._cond:
                self._stopping = True
                self._cond.notify()
            self.join(timeout)
        if self.error is not None:
            raise self.error
