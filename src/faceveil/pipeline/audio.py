"""Audio files in, disguised audio files out: decode, disguise in blocks, encode, rename.

Memory stays bounded (a first pass measures the recording's long-term spectrum, then the
block filter runs over the decoded blocks); the output is written under a temporary name and
renamed at the end, so a failed job leaves no file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceveil.errors import OutputError
from faceveil.media.audio_io import AudioInfo, AudioWriter, decode_blocks, format_for, open_audio
from faceveil.voice.config import VoiceConfig, draw_params
from faceveil.voice.transform import FloatArray, VoiceBlockFilter, measure_spectrum, voice_filter

Block = npt.NDArray[np.float32]


@dataclass
class AudioReport:
    """What one audio job did."""

    source: str
    target: str
    seconds: float = 0.0
    rate: int = 0
    channels: int = 0
    format: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (the transform's parameters are never part of it)."""
        return {
            "audio": self.source,
            "output": self.target,
            "seconds": round(self.seconds, 3),
            "rate": self.rate,
            "channels": self.channels,
            "format": self.format,
        }


def disguised_blocks(blocks: Iterator[Block], filt: VoiceBlockFilter) -> Iterator[Block]:
    """The disguised stream of ``blocks``, with the filter's latency removed: the same number of
    samples, aligned with the input."""
    skip = filt.latency_samples
    for block in _run(blocks, filt):
        if skip:
            cut = min(skip, block.shape[0])
            block, skip = block[cut:], skip - cut
        if block.shape[0]:
            yield block


def _run(blocks: Iterator[Block], filt: VoiceBlockFilter) -> Iterator[Block]:
    for block in blocks:
        yield filt.process(block)
    yield filt.flush()


def _spectrum(source: Path, info: AudioInfo, rate: int, config: VoiceConfig) -> FloatArray | None:
    """The recording's long-term spectrum: a first pass over the file (decoding is cheap next to
    the disguise), so that the whole recording is normalised alike."""
    container, _ = open_audio(source)
    try:
        return measure_spectrum(decode_blocks(container, info, rate), rate, config.frame_ms)
    finally:
        container.close()


def temp_path(target: Path) -> Path:
    """A hidden temporary name beside ``target`` (its folder is made)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(
        f".{target.stem}.faceveil-tmp-{os.getpid()}-{threading.get_ident()}{target.suffix}"
    )


def disguise_audio_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    config: VoiceConfig | None = None,
    rng: np.random.Generator | None = None,
    progress: Callable[[float], None] | None = None,
    *,
    keep_format: bool = False,
) -> AudioReport:
    """Disguise the voices of the audio file ``source`` into ``target``.

    The format is the input's (recognised by content) unless ``target``'s extension names
    another audio format and ``keep_format`` is False; nothing but the audio is written (no
    tags, no cover art). The transform is drawn from ``config`` (with ``rng`` when given, else
    ``config.seed``).
    ``progress`` gets the seconds done so far.
    """
    config = config or VoiceConfig()
    source, target = Path(source), Path(target)
    if target.resolve() == source.resolve():
        raise OutputError(f"refusing to overwrite the input {source}")
    container, info = open_audio(source)
    tmp = temp_path(target)
    writer: AudioWriter | None = None
    try:
        fmt = format_for(info, None if keep_format else target)
        rate = fmt.rate or info.rate
        spectrum = _spectrum(source, info, rate, config) if config.normalise else None
        filt = voice_filter(rate, info.channels, config, params=draw_params(config, rng), spectrum=spectrum)
        writer = AudioWriter(tmp, fmt, rate, info.layout)
        report = AudioReport(str(source), str(target), rate=rate, channels=info.channels, format=fmt.muxer)
        done = 0
        for block in disguised_blocks(decode_blocks(container, info, rate), filt):
            writer.write(block)
            done += block.shape[0]
            if progress is not None:
                progress(done / rate)
        writer.close()
        writer = None
        report.seconds = done / rate
        tmp.replace(target)
        return report
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc}") from exc
    finally:
        if writer is not None:
            writer.abort()
        container.close()
        with suppress(FileNotFoundError):
            tmp.unlink()
