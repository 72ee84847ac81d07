"""The sound of a live stream: decoded blocks, the per-stream audio filter hook, AAC timing.

Audio takes its own path beside the pictures: the reader decodes it to 48 kHz float32 blocks
(``(n, channels)``, values in [-1, 1]) stamped on the same output timeline as the video frames,
an audio thread runs them through the stream's filter (none by default: passed through), and
every sink that records or pushes gets every block. Video frames the engine drops never cut
the sound: audio is never dropped with them.

A filter is any object with these members (a voice disguiser, for one)::

    latency_samples: int                              # how many samples its output lags
    def process(self, block: np.ndarray) -> np.ndarray   # float32 (n, channels) -> same shape
    def flush(self) -> np.ndarray                        # what it still holds, at the end

:class:`FilteredAudio` restamps the filter's output so that it lines up with the pictures: the
first ``latency_samples`` samples out are the filter's priming and are left out, so output
sample ``k`` carries the time of input sample ``k``. A filter that fails, or returns another
shape, makes that block silent (fail closed: a voice meant to be disguised is never passed on
as it came).

A stream's ``voice`` setting (:data:`VOICE_CHOICES`, as ``faceveil video --voice``) picks what
happens to its sound: ``keep`` it as it is, ``disguise`` the voices in it (the filter of
:func:`disguiser`: one random transform drawn per stream run, every channel the same), or
``drop`` it (no audio track in recordings and pushes; the sound is not even decoded).
:func:`sound_settings` turns ``audio`` and ``voice`` into what the worker runs.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from faceveil.errors import ConfigError

if TYPE_CHECKING:
    from faceveil.voice.config import VoiceConfig

log = logging.getLogger("faceveil.stream")

Samples = npt.NDArray[np.float32]
#: Sample rate of every live audio path (and of the AAC in recordings and pushes).
AUDIO_RATE = 48_000
#: Most channels kept (more are mixed down to stereo).
MAX_CHANNELS = 2
AUDIO_CHOICES = ("keep", "drop")


@runtime_checkable
class AudioFilter(Protocol):
    """A per-stream audio filter (the hook the voice disguiser plugs into)."""

    latency_samples: int

    def process(self, block: Samples) -> Samples:
        """Filter one float32 ``(n, channels)`` block in [-1, 1]; returns the same shape."""

    def flush(self) -> Samples:
        """The samples still held (``(m, channels)``), once the stream ends."""


class SilentFilter:
    """A filter that gives silence: what runs when a stream's filter cannot be built."""

    latency_samples = 0

    def process(self, block: Samples) -> Samples:
        """Silence of ``block``'s shape."""
        return np.zeros_like(block)

    def flush(self) -> Samples:
        """Nothing is held."""
        return np.zeros((0, 1), np.float32)


#: Builds a stream's filter for its sample rate and channel count (a fresh one per run).
AudioFilterFactory = Callable[[int, int], AudioFilter]
#: What a stream's ``voice`` setting may choose (the same choices as ``faceveil video --voice``).
VOICE_CHOICES = ("keep", "disguise", "drop")
#: The older spelling of ``keep`` (the setting used to name an audio filter, ``none`` by default).
_KEEP_ALIASES = ("none",)


@dataclass(frozen=True)
class Disguiser:
    """The voice disguise as a stream's audio filter factory (see :func:`disguiser`).

    Attributes:
        config: the disguise's settings (None: `VoiceConfig()`); a manifest records them, never
            the seed.
    """

    config: VoiceConfig | None = None

    def __call__(self, rate: int, channels: int) -> AudioFilter:
        """A fresh `VoiceBlockFilter` with its own random transform (one per stream run)."""
        from faceveil.voice import voice_filter as disguise

        made: AudioFilter = disguise(rate, channels, self.config)
        return made


def disguiser(config: VoiceConfig | None = None) -> AudioFilterFactory:
    """The voice disguise as a stream's audio filter factory.

    Each call of the factory (one per stream run, once the source's channels are known) draws
    its own transform from ``config`` (default `VoiceConfig()`; from ``config.seed`` when
    given), the same on every channel; its latency (one analysis frame, 40 ms by default) is
    compensated by `FilteredAudio`.
    """
    return Disguiser(config)


def describe_sound(audio: str, audio_filter: AudioFilterFactory | None) -> dict[str, object]:
    """What a stream does with its sound, for its manifests: ``voice`` (keep, disguise, drop or
    the name of another filter) and, for the disguise, its settings (without the seed)."""
    if audio == "drop":
        return {"audio": audio, "voice": "drop"}
    if audio_filter is None:
        return {"audio": audio, "voice": "keep"}
    if isinstance(audio_filter, Disguiser):
        from faceveil.voice import VoiceConfig

        return {"audio": audio, "voice": "disguise", "disguise": audio_filter.config or VoiceConfig()}
    return {"audio": audio, "voice": getattr(audio_filter, "__name__", type(audio_filter).__name__)}


#: Filters a stream's ``voice`` setting names, each built from the disguise's settings.
VOICE_FILTERS: dict[str, Callable[[VoiceConfig | None], AudioFilterFactory]] = {"disguise": disguiser}


def _check_voice(name: str | None) -> str:
    if name is None or name in _KEEP_ALIASES:
        return "keep"
    if name not in VOICE_CHOICES:
        raise ConfigError(f"unknown voice setting {name!r}; choose one of: {', '.join(VOICE_CHOICES)}")
    return name


def voice_filter(name: str | None, config: VoiceConfig | None = None) -> AudioFilterFactory | None:
    """The filter factory of the ``voice`` setting ``name`` (None for ``keep``, its older
    spelling ``none``, and ``drop``, which sends no sound at all: see `sound_settings`)."""
    name = _check_voice(name)
    return VOICE_FILTERS[name](config) if name in VOICE_FILTERS else None


def sound_settings(
    audio: str, voice: str | None, config: VoiceConfig | None = None
) -> tuple[str, AudioFilterFactory | None]:
    """``(audio, filter factory)`` of a stream from its ``audio`` (``keep``/``drop``) and
    ``voice`` (``keep``/``disguise``/``drop``, None: as ``audio`` says) settings.

    ``voice="drop"`` drops the sound as ``audio="drop"`` does (no audio track); ``audio="drop"``
    with ``voice="disguise"`` contradicts itself and is refused.
    """
    if audio not in AUDIO_CHOICES:
        raise ConfigError(f"unknown audio setting {audio!r}; choose one of: {', '.join(AUDIO_CHOICES)}")
    choice = None if voice is None else _check_voice(voice)
    if choice == "drop":
        return "drop", None
    if audio == "drop" and choice == "disguise":
        raise ConfigError("audio drop and voice disguise contradict each other; give one of them")
    return audio, voice_filter(choice, config)


@dataclass(frozen=True, eq=False)
class AudioBlock:
    """Decoded sound on its way to the sinks.

    Attributes:
        samples: float32 ``(n, channels)`` in [-1, 1], at `AUDIO_RATE`.
        pts: output-timeline seconds of the first sample (the video frames' timeline).
    """

    samples: Samples
    pts: float

    @property
    def end(self) -> float:
        """Seconds just after the last sample."""
        return self.pts + len(self.samples) / AUDIO_RATE


class FilteredAudio:
    """Runs a stream's blocks through its filter and stamps the output with the input's times.

    Args:
        audio_filter: the filter (None: blocks pass through unchanged).
        channels: channels of every block.
    """

    def __init__(self, audio_filter: AudioFilter | None, channels: int) -> None:
        if audio_filter is not None:
            latency = getattr(audio_filter, "latency_samples", None)
            if isinstance(latency, bool) or not isinstance(latency, int) or latency < 0:
                raise ConfigError(f"an audio filter's latency_samples must be an int >= 0, got {latency!r}")
        self.filter = audio_filter
        self.channels = channels
        self.latency = 0 if audio_filter is None else int(audio_filter.latency_samples)
        self.failures = 0
        self._inputs: deque[tuple[int, float, int]] = deque()  # (first sample index, pts, count)
        self._taken = 0  # input samples so far
        self._given = 0  # filter output samples so far (priming included)

    def push(self, block: AudioBlock) -> list[AudioBlock]:
        """Filter one block; the blocks now ready (restamped), possibly none."""
        if self.filter is None:
            return [block]
        count = len(block.samples)
        self._inputs.append((self._taken, block.pts, count))
        self._taken += count
        try:
            out = np.asarray(self.filter.process(block.samples))
        except Exception as exc:  # noqa: BLE001 - fail closed: whatever went wrong, silence
            self._failed(exc)
            self._keep_clock(count)
            return self._stamp(np.zeros_like(block.samples))
        if out.shape != block.samples.shape:
            self._failed(f"returned shape {out.shape} for a block of {block.samples.shape}")
            out = np.zeros_like(block.samples)
        return self._stamp(out)

    def _failed(self, why: object) -> None:
        self.failures += 1
        log.warning("the audio filter failed on a block (made silent): %s", why)

    def _keep_clock(self, count: int) -> None:
        """After a block the filter refused: give it that much silence instead, so that what it
        gives later still lines up with its input (its output now is dropped: silence stands in)."""
        assert self.filter is not None
        try:
            self.filter.process(np.zeros((count, self.channels), np.float32))
        except Exception as exc:  # noqa: BLE001 - a filter that keeps failing: its blocks stay silent
            log.debug("the audio filter refused silence too: %s", exc)

    def flush(self) -> list[AudioBlock]:
        """What the filter still holds, stamped (call once, at the end)."""
        if self.filter is None:
            return []
        try:
            tail = np.asarray(self.filter.flush(), dtype=np.float32).reshape(-1, self.channels)
        except Exception as exc:  # noqa: BLE001 - fail closed: the rest is left out
            self.failures += 1
            log.warning("the audio filter failed to flush: %s", exc)
            tail = np.zeros((0, self.channels), np.float32)
        owed = self._taken + self.latency - self._given  # output samples that belong to input
        tail = tail[: max(0, owed)]
        return self._stamp(tail)

    def _stamp(self, out: npt.NDArray[np.generic]) -> list[AudioBlock]:
        samples = np.clip(np.nan_to_num(out.astype(np.float32, copy=False)), -1.0, 1.0)
        start = self._given
        self._given += len(samples)
        skip = max(0, self.latency - start)  # priming: no input sample behind it
        samples = samples[skip:]
        index = start + skip - self.latency  # input sample index of samples[0]
        blocks: list[AudioBlock] = []
        while len(samples):
            while self._inputs and self._inputs[0][0] + self._inputs[0][2] <= index:
                self._inputs.popleft()
            if not self._inputs:
                break
            first, pts, count = self._inputs[0]
            take = min(len(samples), first + count - index)
            blocks.append(AudioBlock(samples[:take], pts + (index - first) / AUDIO_RATE))
            samples, index = samples[take:], index + take
        return blocks


class AudioTrack:
    """Lays blocks on a continuous sample clock that starts at ``origin`` (seconds).

    Overlapping samples (a reconnection that starts a little earlier) are cut, gaps are filled
    with silence, samples before ``origin`` are left out: the track has sound for its whole
    length and each sample sits where its timestamp puts it (to one sample).
    """

    def __init__(self, origin: float, channels: int) -> None:
        self.origin = origin
        self.channels = channels
        self.next = 0  # index of the next sample on the track
        self.padded = 0  # silent samples added for gaps

    def place(self, block: AudioBlock) -> Samples:
        """The samples of ``block`` that continue the track (with any silence before them)."""
        samples = block.samples
        if samples.shape[1] != self.channels:
            samples = _fit_channels(samples, self.channels)
        position = round((block.pts - self.origin) * AUDIO_RATE)
        if position < self.next:
            samples = samples[self.next - position :]
            position = self.next
        gap = position - self.next
        if gap > 0:
            self.padded += gap
            samples = np.concatenate([np.zeros((gap, self.channels), np.float32), samples])
        self.next += len(samples)
        return samples

    def silence_until(self, seconds: float) -> Samples:
        """Silence from the end of the track up to ``seconds`` after the origin (for an end)."""
        target = round(seconds * AUDIO_RATE)
        gap = max(0, target - self.next)
        self.next += gap
        self.padded += gap
        return np.zeros((gap, self.channels), np.float32)


def _fit_channels(samples: Samples, channels: int) -> Samples:
    if samples.shape[1] > channels:
        return np.ascontiguousarray(samples.mean(axis=1, keepdims=True).repeat(channels, axis=1))
    return np.ascontiguousarray(np.repeat(samples[:, :1], channels, axis=1))


class AudioBuffer:
    """Blocks held back until the pictures have caught up with them (the sinks' side).

    Sound arrives before the pictures it goes with (the pictures are being anonymized); a sink
    writes it once a frame at least as late has been written, so that a recording split into
    segments puts each sample in the file its time belongs to.

    Args:
        max_s: blocks older than this many seconds behind the newest are let go first (a sink
            with no pictures for that long writes its sound anyway; nothing is thrown away).
    """

    def __init__(self, max_s: float = 5.0) -> None:
        self.blocks: deque[AudioBlock] = deque()
        self.max_s = max_s

    def add(self, block: AudioBlock) -> None:
        """Hold ``block``."""
        self.blocks.append(block)

    def take(self, until: float) -> list[AudioBlock]:
        """Blocks (cut at ``until``) whose samples lie before ``until`` seconds, in order."""
        out: list[AudioBlock] = []
        while self.blocks:
            block = self.blocks[0]
            if block.pts >= until:
                break
            self.blocks.popleft()
            if block.end <= until:
                out.append(block)
                continue
            cut = max(1, round((until - block.pts) * AUDIO_RATE))
            out.append(AudioBlock(block.samples[:cut], block.pts))
            self.blocks.appendleft(AudioBlock(block.samples[cut:], block.pts + cut / AUDIO_RATE))
            break
        return out

    def overdue(self) -> float | None:
        """A time up to which sound should be written without waiting for pictures, if any."""
        if len(self.blocks) < 2:
            return None
        newest = self.blocks[-1].end
        if newest - self.blocks[0].pts > self.max_s:
            return newest - self.max_s
        return None

    def take_all(self) -> list[AudioBlock]:
        """Everything held (the end of the stream)."""
        out = list(self.blocks)
        self.blocks.clear()
        return out
