"""Segment planning: where a long video is cut so that its parts can be anonymized in parallel.

The planner only demuxes (no frame is decoded): it reads every video packet's timestamp and
keyframe flag from the container, sorts the timestamps into display order and cuts the video on
keyframes about every ``segment_seconds``. A segment is then decoded from its keyframe on its
own, and the frames it owns are known exactly (their count and timestamps), so a worker can check
that it decoded precisely those frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from faceveil.errors import ConfigError, CorruptInputError, UnsupportedInputError
from faceveil.media.video_io import open_input

#: The default length of a segment, in seconds.
DEFAULT_SEGMENT_SECONDS = 60.0


@dataclass(frozen=True)
class Segment:
    """One part of a video: the frames ``first .. first + len(pts) - 1`` in display order.

    Attributes:
        number: position of the segment in the video (0, 1, ...).
        first: the display index of the segment's first frame.
        seek_pts: the keyframe the decoder starts from (None: the start of the file).
        pts: the timestamps of the segment's frames, in display order (the stream's time base).
    """

    number: int
    first: int
    seek_pts: int | None
    pts: tuple[int, ...]

    @property
    def frames(self) -> int:
        """Frames the segment owns."""
        return len(self.pts)

    @property
    def end(self) -> int:
        """The display index after the segment's last frame."""
        return self.first + len(self.pts)


@dataclass(frozen=True)
class SegmentPlan:
    """The segments of one video, in order, with what the planner read."""

    segments: tuple[Segment, ...]
    frames: int
    keyframes: int
    time_base: Fraction

    def __len__(self) -> int:
        return len(self.segments)


def plan_segments(
    source: str | os.PathLike[str], segment_seconds: float = DEFAULT_SEGMENT_SECONDS
) -> SegmentPlan:
    """Cut ``source`` on keyframes into segments of about ``segment_seconds`` (never shorter,
    except the last; longer where keyframes are far apart). Nothing is decoded.

    Raises:
        ConfigError: ``segment_seconds`` is not positive.
        CorruptInputError, UnsupportedInputError: the video's packets cannot be planned on
            (missing or repeated timestamps, no keyframe at the start).
    """
    if not segment_seconds > 0:
        raise ConfigError(f"segment_seconds must be > 0, got {segment_seconds!r}")
    stamps, keys, time_base = _packet_index(Path(source))
    order = sorted(stamps)
    if len(set(order)) != len(order):
        raise UnsupportedInputError("the video repeats frame timestamps; it cannot be split into segments")
    rank = {pts: i for i, pts in enumerate(order)}
    step = Fraction(segment_seconds) / time_base  # segment length in time-base units
    cuts: list[int] = []  # keyframe timestamps that start a segment
    for pts in sorted(keys):
        if rank[pts] == 0 or (cuts and pts - cuts[-1] >= step):
            cuts.append(pts)
    if not cuts or rank[cuts[0]] != 0:
        raise UnsupportedInputError("the video does not start with a keyframe; it cannot be split")
    segments = []
    for number, pts in enumerate(cuts):
        first = rank[pts]
        end = rank[cuts[number + 1]] if number + 1 < len(cuts) else len(order)
        seek = None if number == 0 else pts
        segments.append(Segment(number, first, seek, tuple(order[first:end])))
    return SegmentPlan(tuple(segments), len(order), len(keys), time_base)


def _packet_index(source: Path) -> tuple[list[int], list[int], Fraction]:
    """(every video packet's pts, the keyframes' pts, the stream's time base), demuxed only."""
    container = open_input(source)
    try:
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        stamps: list[int] = []
        keys: list[int] = []
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the demuxer's end-of-stream marker
            if packet.pts is None:
                raise UnsupportedInputError(
                    "a video packet has no timestamp; it cannot be split into segments"
                )
            stamps.append(int(packet.pts))
            if packet.is_keyframe:
                keys.append(int(packet.pts))
    finally:
        container.close()
    if not stamps:
        raise CorruptInputError("the video has no frames")
    return stamps, keys, time_base
