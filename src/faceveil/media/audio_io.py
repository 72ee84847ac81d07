"""Audio files through PyAV: safe opening by content, decoding to float blocks, encoding.

- Inputs are opened with the ``file`` protocol and a demuxer allow-list (no playlists or
  references to other files); the format is recognised by content, not by the file's name.
- Outputs carry the one audio stream and nothing else: no tags, cover art or chapters
  (``fflags=+bitexact`` drops the encoder tag too).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceveil.errors import CorruptInputError, OutputError, UnsupportedInputError
from faceveil.media.local import av_module, input_options, open_local
from faceveil.voice.config import VoiceConfig
from faceveil.voice.transform import FloatArray, measure_spectrum, voice_filter

#: Demuxers faceveil reads audio files with.
AUDIO_DEMUXERS = "wav,flac,mp3,mov,mp4,m4a,aac,ogg"
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".oga"})


@dataclass(frozen=True)
class AudioFormat:
    """How an audio file is written: muxer, encoder, sample format, rate (None: the input's)."""

    muxer: str
    codec: str
    sample_format: str
    rate: int | None = None
    bit_rate: int | None = None


#: Output format by extension (used when an output's name asks for another format).
EXTENSION_FORMATS = {
    ".wav": AudioFormat("wav", "pcm_s16le", "s16"),
    ".flac": AudioFormat("flac", "flac", "s16"),
    ".mp3": AudioFormat("mp3", "libmp3lame", "fltp", bit_rate=192_000),
    ".m4a": AudioFormat("mp4", "aac", "fltp", bit_rate=192_000),
    ".aac": AudioFormat("adts", "aac", "fltp", bit_rate=192_000),
    ".ogg": AudioFormat("ogg", "libopus", "flt", rate=48000, bit_rate=128_000),
    ".opus": AudioFormat("ogg", "libopus", "flt", rate=48000, bit_rate=128_000),
    ".oga": AudioFormat("ogg", "libopus", "flt", rate=48000, bit_rate=128_000),
}
_PCM = {"pcm_s16le": "s16", "pcm_s24le": "s32", "pcm_s32le": "s32", "pcm_f32le": "flt"}


@dataclass(frozen=True)
class AudioInfo:
    """What faceveil needs to know about an input audio file."""

    rate: int
    channels: int
    layout: str
    codec: str
    demuxer: str
    duration: float | None


def open_audio(path: str | os.PathLike[str]) -> tuple[Any, AudioInfo]:
    """Open an audio file for reading (by content); refuse what is not a plain audio file."""
    path = Path(path)
    container = open_local(path, AUDIO_DEMUXERS, "an audio file")
    try:
        if container.streams.video and any(s.frames != 1 for s in container.streams.video):
            raise UnsupportedInputError(f"{path} has a video stream: use faceveil video --voice disguise")
        if not container.streams.audio:
            raise UnsupportedInputError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        if ctx is None or not ctx.name or not ctx.sample_rate or not ctx.channels:
            raise CorruptInputError(f"{path}: the audio stream's codec, rate or channels are unknown")
        duration = float(stream.duration * stream.time_base) if stream.duration else None
        info = AudioInfo(
            rate=int(ctx.sample_rate),
            channels=int(ctx.channels),
            layout=ctx.layout.name,
            codec=ctx.name,
            demuxer=container.format.name,
            duration=duration,
        )
    except BaseException:
        container.close()
        raise
    return container, info


def format_for(info: AudioInfo, target: Path | None = None) -> AudioFormat:
    """The output format: the input's own (by content), unless ``target``'s extension names
    another one."""
    by_name = EXTENSION_FORMATS.get(target.suffix.lower()) if target is not None else None
    native = _native_format(info)
    if by_name is None or by_name.muxer == native.muxer:
        return native
    return by_name


def _native_format(info: AudioInfo) -> AudioFormat:
    demuxer = set(info.demuxer.split(","))
    if "wav" in demuxer:
        codec = info.codec if info.codec in _PCM else "pcm_s16le"
        return AudioFormat("wav", codec, _PCM[codec])
    if "flac" in demuxer:
        return AudioFormat("flac", "flac", "s32" if info.codec == "flac" and _wide(info) else "s16")
    if "mp3" in demuxer:
        return EXTENSION_FORMATS[".mp3"]
    if "mp4" in demuxer:
        return EXTENSION_FORMATS[".m4a"]
    if "aac" in demuxer:
        return EXTENSION_FORMATS[".aac"]
    if "ogg" in demuxer and info.codec == "flac":
        return AudioFormat("ogg", "flac", "s16")
    return EXTENSION_FORMATS[".ogg"]


def _wide(info: AudioInfo) -> bool:
    return False  # 16-bit is what FLAC inputs carry in practice; 24-bit ones are written as 16


def decode_blocks(
    container: Any, info: AudioInfo, rate: int | None = None
) -> Iterator[npt.NDArray[np.float32]]:
    """Float32 ``(n, channels)`` blocks of the first audio stream (resampled to ``rate`` if given)."""
    av = av_module()
    count = 0
    try:
        stream = container.streams.audio[0]
        for block in _resampled(container, stream, info.layout, info.channels, rate or info.rate):
            yield block
            count += block.shape[0]
    except av.error.FFmpegError as exc:
        where = "cannot be decoded" if count == 0 else f"is damaged after {count} samples"
        raise CorruptInputError(f"the audio {where}: {exc}") from None
    if count == 0:
        raise CorruptInputError("the audio has no samples")


def _resampled(
    container: Any, stream: Any, layout: str, channels: int, rate: int
) -> Iterator[npt.NDArray[np.float32]]:
    """Float32 ``(n, channels)`` blocks of ``stream``, resampled to ``layout`` and ``rate``."""
    resampler = av_module().AudioResampler(format="flt", layout=layout, rate=rate)
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            yield _packed(out, channels)
    for out in resampler.resample(None):
        yield _packed(out, channels)


def _packed(frame: Any, channels: int) -> npt.NDArray[np.float32]:
    return np.asarray(frame.to_ndarray(), dtype=np.float32).reshape(-1, channels)


@dataclass(frozen=True)
class AudioClip:
    """A whole decoded recording: ``samples`` ``(n, channels)`` float32 in [-1, 1]."""

    samples: npt.NDArray[np.float32]
    rate: int
    info: AudioInfo


def read_audio(path: str | os.PathLike[str]) -> AudioClip:
    """Decode a whole audio file (for tests, benchmarks and short recordings)."""
    container, info = open_audio(path)
    try:
        blocks = list(decode_blocks(container, info))
    finally:
        container.close()
    return AudioClip(np.concatenate(blocks), info.rate, info)


class AudioWriter:
    """Encodes float32 ``(n, channels)`` blocks into a new audio file with no metadata.

    Args:
        path: where to write (the caller passes a temporary name and renames it at the end).
        fmt: muxer, encoder and sample format (see :func:`format_for`).
        rate: sample rate of the blocks.
        layout: channel layout name (``mono``, ``stereo``, ...).
    """

    def __init__(self, path: Path, fmt: AudioFormat, rate: int, layout: str) -> None:
        av = self._av = av_module()
        try:
            self.container = av.open(str(path), mode="w", format=fmt.muxer, options={"fflags": "+bitexact"})
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {path}: {exc}") from None
        self.container.metadata.clear()
        try:
            self.stream = self.container.add_stream(fmt.codec, rate=rate)
            self.stream.layout = layout
            self.stream.format = fmt.sample_format
            if fmt.bit_rate:
                self.stream.bit_rate = fmt.bit_rate
        except (av.error.FFmpegError, ValueError) as exc:
            self.abort()
            raise OutputError(f"cannot encode {fmt.codec} audio ({layout}, {rate} Hz): {exc}") from None
        self.stream.metadata.clear()
        self._rate, self._layout = rate, layout
        self._pts = 0

    def write(self, block: npt.NDArray[np.float32]) -> None:
        """Encode one block."""
        if block.shape[0] == 0:
            return
        data = np.ascontiguousarray(np.clip(block, -1.0, 1.0), dtype=np.float32).reshape(1, -1)
        frame = self._av.AudioFrame.from_ndarray(data, format="flt", layout=self._layout)
        frame.sample_rate = self._rate
        frame.pts = self._pts
        self._pts += block.shape[0]
        self._encode(frame)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        self._encode(None)
        self.container.close()

    def _encode(self, frame: Any) -> None:
        try:
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
        except self._av.error.FFmpegError as exc:
            raise OutputError(f"cannot encode the audio: {exc}") from None

    def abort(self) -> None:
        """Close without flushing (the caller deletes the file)."""
        with contextlib.suppress(self._av.error.FFmpegError):
            self.container.close()


def track_spectrum(stream: Any, rate: int, layout: str, config: VoiceConfig) -> FloatArray | None:
    """The long-term spectrum of a file's sound track ``stream`` (a PyAV stream of an open file),
    from a first pass over that track alone in a container of its own; None when the file
    cannot be read again (the track is then normalised as it comes, like live sound)."""
    av = av_module()
    try:
        # the demuxer that opened the file already (its name lists every format it reads)
        demuxer = stream.container.format.name
        container = av.open(str(stream.container.name), mode="r", options=input_options(demuxer))
    except (av.error.FFmpegError, OSError, AttributeError):
        return None
    try:
        channels = len(av.AudioLayout(layout).channels)
        blocks = _resampled(container, container.streams[stream.index], layout, channels, rate)
        return measure_spectrum(blocks, rate, config.frame_ms)
    except (av.error.FFmpegError, IndexError):
        return None
    finally:
        container.close()


class DisguisedTrack:
    """A container's sound track, disguised on its way through: decoded frames in, disguised
    frames out, with the filter's latency removed (same samples, same start, same duration).

    Args:
        rate: the output's sample rate (the encoder's).
        layout: the output's channel layout name.
        config: the disguise (one transform is drawn for the track).
        source: the input's sound track (a PyAV stream), measured beforehand so that the whole
            track is normalised alike (see `track_spectrum`); None: as it comes.
    """

    def __init__(self, rate: int, layout: str, config: VoiceConfig, source: Any = None) -> None:
        av = self._av = av_module()
        self._resampler = av.AudioResampler(format="flt", layout=layout, rate=rate)
        self._channels = len(av.AudioLayout(layout).channels)
        spectrum = track_spectrum(source, rate, layout, config) if config.normalise and source else None
        self._filter = voice_filter(rate, self._channels, config, spectrum=spectrum)
        self._rate, self._layout = rate, layout
        self._skip = self._filter.latency_samples
        self._pts: int | None = None

    def push(self, frame: Any) -> list[Any]:
        """Disguised frames for one decoded input frame (None: the end of the track)."""
        if self._pts is None and frame is not None:
            start = frame.pts * frame.time_base * self._rate if frame.pts is not None else 0
            self._pts = max(0, round(start))
        out = []
        for resampled in self._resampler.resample(frame):
            out += self._frames(self._filter.process(_packed(resampled, self._channels)))
        if frame is None:
            out += self._frames(self._filter.flush())
        return out

    def _frames(self, block: npt.NDArray[np.float32]) -> list[Any]:
        if self._skip:
            cut = min(self._skip, block.shape[0])
            block, self._skip = block[cut:], self._skip - cut
        if block.shape[0] == 0:
            return []
        data = np.ascontiguousarray(block, dtype=np.float32).reshape(1, -1)
        frame = self._av.AudioFrame.from_ndarray(data, format="flt", layout=self._layout)
        frame.sample_rate = self._rate
        frame.pts = self._pts or 0
        self._pts = frame.pts + block.shape[0]
        return [frame]
