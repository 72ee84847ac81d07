"""The two ends of a live stream's sound: the audio thread and what each output does with it.

:class:`SoundPath` is a stream's audio thread: the reader hands it every decoded block, it runs
the block through the stream's filter (:class:`~faceveil.stream.audio.FilteredAudio`, built once
the source's channels are known) and gives the result to every output that carries sound. It
measures the sound's latency on this path: from a block's arrival to the moment its samples go
to the outputs (a filter's priming, the voice disguise's one analysis frame, shows up here).
:class:`AudioFeed` is the output's side: it holds the sound until the pictures have reached its
time, then lays it on the open file's (or push's) continuous AAC track.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from faceveil.errors import StreamError
from faceveil.stream.audio import (
    AUDIO_RATE,
    AudioBlock,
    AudioBuffer,
    AudioFilter,
    AudioFilterFactory,
    AudioTrack,
    FilteredAudio,
    Samples,
    SilentFilter,
)

if TYPE_CHECKING:
    from faceveil.stream.stats import StreamStats

log = logging.getLogger("faceveil.stream")


class SoundPath:
    """The audio thread of one stream.

    Args:
        name: the stream's name (for the thread and logs).
        audio_filter: builds the filter from (sample rate, channels); None passes sound through.
        deliver: gives one finished block to the outputs (may raise `StreamError` once an output
            failed: the picture side reports that failure).
        stats: where the samples handed out and the filter's failures are counted.
    """

    def __init__(
        self,
        name: str,
        audio_filter: AudioFilterFactory | None,
        deliver: Callable[[AudioBlock], None],
        stats: StreamStats,
    ) -> None:
        self.name = name
        self.factory = audio_filter
        self.deliver = deliver
        self.stats = stats
        self.audio: FilteredAudio | None = None
        self._items: deque[tuple[AudioBlock, float] | None] = deque()
        self._arrivals: deque[tuple[int, float]] = deque()  # (input sample index after it, arrival)
        self._taken = 0  # input samples so far
        self._given = 0  # samples handed to the outputs so far (the same sample clock)
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name=f"faceveil-audio-{name}", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def put(self, block: AudioBlock | None) -> None:
        """One decoded block from the reader (never blocks; None: the end).

        An empty block (the source has sound, with this many channels) goes to the outputs at
        once, from the reader's thread, so that they know of the sound before the first picture.
        """
        if block is not None and not len(block.samples):
            try:
                self.deliver(block)
            except StreamError as exc:
                log.warning("%s: sound: %s", self.name, exc)
            return
        with self._ready:
            self._items.append(None if block is None else (block, time.monotonic()))
            self._ready.notify()

    def finish(self) -> None:
        """Flush the filter, hand out the rest and wait for the thread."""
        self.put(None)
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        try:
            while True:
                with self._ready:
                    self._ready.wait_for(lambda: bool(self._items))
                    item = self._items.popleft()
                if item is None:
                    break
                block, arrival = item
                self._taken += len(block.samples)
                self._arrivals.append((self._taken, arrival))
                outs = self._filtered(block)
                self._measure(sum(len(out.samples) for out in outs))
                for out in outs:
                    self.stats.audio_samples += len(out.samples)
                    self.deliver(out)
            if self.audio is not None:
                for out in self.audio.flush():
                    self.deliver(out)
        except StreamError as exc:
            log.warning("%s: sound: %s", self.name, exc)

    def _measure(self, count: int) -> None:
        """Latency of the next ``count`` samples out (what one input block let out), that of the
        oldest of them: now minus the arrival of the block it came in."""
        if not count:
            return
        while self._arrivals and self._arrivals[0][0] <= self._given:
            self._arrivals.popleft()
        if self._arrivals:
            self.stats.audio_latency_ms.append((time.monotonic() - self._arrivals[0][1]) * 1000.0)
        self._given += count

    def _filtered(self, block: AudioBlock) -> list[AudioBlock]:
        if self.audio is None:
            channels = int(block.samples.shape[1])
            self.audio = FilteredAudio(self._build(channels), channels)
        out = self.audio.push(block)
        self.stats.audio_filter_failures = self.audio.failures
        return out

    def _build(self, channels: int) -> AudioFilter | None:
        """The stream's filter; one that cannot be built gives silence (fail closed)."""
        if self.factory is None:
            return None
        try:
            return self.factory(AUDIO_RATE, channels)
        except Exception as exc:  # noqa: BLE001 - fail closed: never the sound as it came
            log.warning("%s: the audio filter cannot be built, the sound is silent: %s", self.name, exc)
            return SilentFilter()


class SoundEncoder(Protocol):
    """What an :class:`AudioFeed` writes to: an open output with (or without) an AAC track."""

    audio: object

    def encode_audio(self, samples: Samples) -> None:
        """Encode samples that continue the track."""


class AudioFeed:
    """The sound side of a recording or a push: held until the pictures reach it, then laid on
    the open output's continuous track (silence in gaps, nothing before its first frame)."""

    def __init__(self) -> None:
        self.buffer = AudioBuffer()
        self.channels: int | None = None
        self.track: AudioTrack | None = None

    def add(self, block: AudioBlock, encoder: SoundEncoder | None) -> None:
        """Take a block (an empty one announces the channels)."""
        if self.channels is None and block.samples.ndim == 2 and block.samples.shape[1]:
            self.channels = int(block.samples.shape[1])
        if len(block.samples):
            self.buffer.add(block)
        overdue = self.buffer.overdue()
        if overdue is not None:
            if encoder is None:
                self.buffer.take(overdue)  # no output open: the sound of no picture
            else:
                self.write(encoder, overdue)

    def start(self, origin: float) -> None:
        """A new output starts at ``origin`` seconds (its first frame)."""
        self.track = None if self.channels is None else AudioTrack(origin, self.channels)

    def write(self, encoder: SoundEncoder, until: float | None) -> None:
        """Write the sound held up to ``until`` seconds (None: all of it)."""
        blocks = self.buffer.take_all() if until is None else self.buffer.take(until)
        if self.track is None or encoder.audio is None:
            return
        for block in blocks:
            encoder.encode_audio(self.track.place(block))
