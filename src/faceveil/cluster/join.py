"""Joining rendered segments into one output: remuxed, never re-encoded.

The segments' video packets are copied in order into one container; the audio is taken once from
the original input (copied, or transcoded where the container needs it, exactly as a single run
does) and interleaved by time. The result has the input's frame count, timestamps and
resolution. It is written under a temporary name by the caller and renamed only at the end.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from faceveil.errors import OutputError
from faceveil.media.video_io import VideoInfo, VideoOutputConfig, VideoSink, open_input, output_format

#: The container of rendered segments: NUT keeps every timestamp exactly in the stream's own
#: time base (an MP4 segment would round its start through the movie's time scale).
SEGMENT_MUXER = "nut"


class _JoinSink(VideoSink):
    """A `VideoSink` whose video stream takes encoded packets (copied from the segments)."""

    def __init__(
        self,
        path: Path,
        fmt: tuple[str, str, str],
        info: VideoInfo,
        audio_in: Any,
        config: VideoOutputConfig,
        template: Any,
    ) -> None:
        self._template = template
        super().__init__(path, fmt, info, audio_in, config)

    def _video_stream(self, codec: str, info: VideoInfo, config: VideoOutputConfig) -> Any:
        stream = self.container.add_stream_from_template(self._template)
        stream.time_base = info.time_base  # as a single run writes it (the segments use a multiple)
        stream.metadata.clear()
        return stream

    def write_packet(self, packet: Any) -> None:
        """Copy one encoded video packet of a segment."""
        packet.stream = self.video
        self.container.mux(packet)

    def close(self) -> None:
        """Flush the audio encoder (when the audio is transcoded) and finish the file."""
        if self.audio is not None and not self._audio_copy:
            for packet in self.audio.encode(None):
                self.container.mux(packet)
        self.container.close()


def open_part(path: Path) -> Any:
    """Open a rendered segment (NUT, written by faceveil itself; local files only)."""
    import av

    return av.open(str(path), mode="r", format=SEGMENT_MUXER, options={"protocol_whitelist": "file"})


def _when(packet: Any) -> Fraction:
    stamp = packet.dts if packet.dts is not None else packet.pts
    return Fraction(stamp or 0) * Fraction(packet.time_base)


def _video_packets(parts: Sequence[Path]) -> Iterator[tuple[Fraction, int, Any]]:
    for part in parts:
        with open_part(part) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.size:
                    yield _when(packet), 0, packet


def _audio_packets(container: Any) -> Iterator[tuple[Fraction, int, Any]]:
    stream = container.streams.audio[0]
    for packet in container.demux(stream):
        if packet.size:
            yield _when(packet), 1, packet


def join_segments(
    parts: Sequence[str | os.PathLike[str]],
    source: str | os.PathLike[str],
    info: VideoInfo,
    target: str | os.PathLike[str],
    output: VideoOutputConfig,
) -> int:
    """Remux the segment files ``parts`` (in order) and the audio of ``source`` into ``target``
    (its extension picks the container); returns the video packets written."""
    paths = [Path(p) for p in parts]
    if not paths:
        raise OutputError("no segments to join")
    fmt = output_format(Path(target))
    original = open_input(source)
    try:
        audio_in = original.streams.audio[0] if original.streams.audio and output.audio == "keep" else None
        with open_part(paths[0]) as first:
            sink = _JoinSink(Path(target), fmt, info, audio_in, output, first.streams.video[0])
        written = 0
        try:
            streams = [_video_packets(paths)]
            if audio_in is not None:
                streams.append(_audio_packets(original))
            for _, kind, packet in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
                if kind == 0:
                    sink.write_packet(packet)
                    written += 1
                else:
                    sink.write_audio(packet)
        except BaseException:
            sink.abort()
            raise
        sink.close()
        return written
    finally:
        original.close()
