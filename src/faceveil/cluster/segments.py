"""The work of a segmented video job, without Ray: scan, track, render.

A face that crosses a join must be hidden exactly as in one run. The tracker's state (each
track's Kalman filter) depends on the whole history of a face, so no bounded overlap of frames
reproduces it exactly; instead the job is split where the work is independent:

1. **scan** (parallel, per segment): decode the segment from its keyframe and run the detector on
   the frames a single run detects on (every ``detect_every``-th frame of the whole video);
2. **track** (in order, in the driver): :class:`Tracking` feeds every frame's detections to one
   `FaceTracker` and one `Backfill` — the very objects a single run uses, so tracks, look-back
   and gap filling continue across joins unchanged. It touches no pixels and takes microseconds a
   frame; the final regions of a segment are ready as soon as the next segment is scanned;
3. **render** (parallel, per segment): decode the segment again and hide those regions through
   the stage graph (:func:`faceveil.pipeline.graph.run_graph`), encoding the segment on its own.

Segments are encoded without B-frames, so that their packets join (remux, no re-encode) with
increasing decode timestamps.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.cluster.join import SEGMENT_MUXER
from faceveil.cluster.plan import Segment
from faceveil.core.detections import Detections
from faceveil.core.frame import Frame
from faceveil.errors import CorruptInputError, FaceveilError
from faceveil.media.video_io import (
    DecodedFrame,
    VideoInfo,
    VideoSink,
    open_input,
    output_format,
    probe,
    read_media,
)
from faceveil.pipeline.graph import Rendered, run_graph
from faceveil.pipeline.video import VideoJobConfig, _audit_record, _failed, hide_decoded
from faceveil.tracking.backfill import Backfill
from faceveil.tracking.tracker import FaceTracker


@dataclass(frozen=True)
class FrameScan:
    """What the scan found on one frame: its detections and whether it is hidden whole
    (True), kept (False) or left out (None), as the ``on_error`` policy says."""

    found: Detections
    whole: bool | None


@dataclass(frozen=True)
class SegmentScan:
    """The scan of one segment: one :class:`FrameScan` per frame, and where it ran."""

    number: int
    frames: tuple[FrameScan, ...]
    node: str = ""


@dataclass(frozen=True)
class FrameRegions:
    """The final regions of one frame (after tracking and filling)."""

    regions: Detections
    whole: bool | None


@dataclass
class TrackCounts:
    """What tracking counted over the whole video."""

    faces: int = 0
    tracks: set[int] = field(default_factory=set)
    hidden_whole: int = 0
    skipped: int = 0
    frames_in: int = 0


def segment_items(container: Any, info: VideoInfo, segment: Segment) -> Iterator[DecodedFrame]:
    """Decode exactly the frames of ``segment`` (global indices, the input's timestamps).

    The decoder starts at the segment's keyframe; frames displayed before the segment are
    dropped, and decoding stops as soon as every frame of the segment has come out.

    Raises:
        CorruptInputError: the decoded frames are not the ones the planner listed.
    """
    video = container.streams.video[0]
    if segment.seek_pts is not None:
        container.seek(segment.seek_pts, stream=video, backward=True, any_frame=False)
    wanted = segment.pts
    low, high = wanted[0], wanted[-1]
    got = 0
    frames = read_media(container, info, audio=False)
    try:
        for item in frames:
            if not isinstance(item, DecodedFrame):
                continue
            pts = item.pts
            if pts is None or pts < low or pts > high:
                continue
            if pts != wanted[got]:
                raise CorruptInputError(
                    f"segment {segment.number}: decoded frame at pts {pts}, expected {wanted[got]}"
                )
            yield item.at(segment.first + got)  # still in its decoder's form: converted when used
            got += 1
            if got == len(wanted):
                return
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    raise CorruptInputError(f"segment {segment.number}: {got} of {len(wanted)} frames could be decoded")


def scan_segment(
    source: str | os.PathLike[str], segment: Segment, config: VideoJobConfig, anonymizer: Anonymizer
) -> SegmentScan:
    """Detect faces on the frames of ``segment`` that a single run detects on."""
    container = open_input(source)
    step = _ScanStep(config, anonymizer)
    try:
        info = probe(container)
        items = segment_items(container, info, segment)
        # the stage graph decodes in its own thread while this one detects; nothing is encoded
        run_graph(container, info, cast(VideoSink, _NoSink()), step, audio=False, items=items)
    finally:
        container.close()
    return SegmentScan(segment.number, tuple(step.frames))


class _NoSink:
    """The scan's sink: it never receives a frame (the scan step renders none)."""

    def write(self, frame: Frame, rgb: Any) -> None:
        raise AssertionError("the scan writes no frame")  # pragma: no cover

    def write_audio(self, packet: Any) -> None:
        """No audio is read by a scan."""


class _ScanStep:
    """A :class:`faceveil.pipeline.graph.FrameStep` that only detects, and keeps what it found."""

    def __init__(self, config: VideoJobConfig, anonymizer: Anonymizer) -> None:
        self.config, self.anonymizer = config, anonymizer
        self.frames: list[FrameScan] = []

    def push(self, item: DecodedFrame) -> list[Rendered]:
        """Detect on ``item`` (when a single run would); nothing is rendered."""
        self.frames.append(_scan(item, self.config, self.anonymizer))
        return []

    def flush(self) -> list[Rendered]:
        """Nothing is held back."""
        return []


def _scan(item: DecodedFrame, config: VideoJobConfig, anonymizer: Anonymizer) -> FrameScan:
    """As :class:`faceveil.pipeline.video.FaceStep` decides for one frame."""
    index = item.index
    if item.corrupt:
        return FrameScan(*_failed(config.on_error, f"frame {index} is damaged"))
    if index % config.detect_every:
        return FrameScan(Detections.empty(), False)
    try:
        return FrameScan(anonymizer.detect(item.frame), False)
    except (FaceveilError, ValueError, RuntimeError) as exc:
        return FrameScan(*_failed(config.on_error, f"detection failed on frame {index}: {exc}"))


class Tracking:
    """The one tracker and backfill of a segmented job, fed segment by segment in order.

    :meth:`push` takes the next segment's scan and returns the frames whose regions are final;
    :meth:`flush` the rest at the end. The regions are exactly those of a single run.
    """

    def __init__(self, config: VideoJobConfig) -> None:
        self.tracker = FaceTracker(config.tracker)
        self.backfill = Backfill(config.tracker)
        self.counts = TrackCounts()
        self._whole: dict[int, bool | None] = {}
        self._next = 0

    def push(self, scan: SegmentScan) -> list[tuple[int, FrameRegions]]:
        """Track the frames of ``scan`` (the segment after the last one pushed)."""
        done: list[tuple[int, Detections]] = []
        for frame in scan.frames:
            index = self._next
            self._next += 1
            self.counts.frames_in += 1
            self.counts.faces += len(frame.found) if frame.whole is False else 0
            if frame.whole is None:
                self.counts.skipped += 1
            self._whole[index] = frame.whole
            done += self.backfill.push(index, self.tracker.update(frame.found))
        return self._final(done)

    def flush(self) -> list[tuple[int, FrameRegions]]:
        """The frames still held at the end of the video."""
        return self._final(self.backfill.flush())

    def _final(self, done: list[tuple[int, Detections]]) -> list[tuple[int, FrameRegions]]:
        out = []
        for index, regions in done:
            whole = self._whole.pop(index)
            if whole is not None and regions.tracker_id is not None:
                self.counts.tracks.update(int(t) for t in regions.tracker_id)
            if whole:
                self.counts.hidden_whole += 1
            out.append((index, FrameRegions(regions, whole)))
        return out


def audit_record(frame_pts: int, time_base: Any, index: int, final: FrameRegions) -> dict[str, Any] | None:
    """The regions file's line for one frame, as a single run writes it (None: left out)."""
    if final.whole is None:
        return None
    return _audit_record(index, frame_pts, final.regions, final.whole)


class ReplayStep:
    """A :class:`faceveil.pipeline.graph.FrameStep` that hides regions decided beforehand."""

    def __init__(self, anonymizer: Anonymizer, first: int, regions: list[FrameRegions]) -> None:
        self.anonymizer = anonymizer
        self.first = first
        self.regions = regions

    def push(self, item: DecodedFrame) -> list[Rendered]:
        """Hide the frame's final regions (a frame hidden whole is black)."""
        final = self.regions[item.index - self.first]
        if final.whole is None:
            return []
        if final.whole:
            frame = item.frame
            return [Rendered(frame, self.anonymizer.mark(np.zeros_like(frame.rgb)))]
        return [Rendered(*hide_decoded(self.anonymizer, item, final.regions))]

    def flush(self) -> Iterable[Rendered]:
        """Nothing is held back."""
        return []


def render_segment(
    source: str | os.PathLike[str],
    segment: Segment,
    regions: list[FrameRegions],
    config: VideoJobConfig,
    anonymizer: Anonymizer,
    target: str | os.PathLike[str],
    suffix: str,
) -> int:
    """Hide ``regions`` in the frames of ``segment`` and encode them (no audio) into ``target``,
    in the container ``suffix`` names; returns the frames written."""
    if len(regions) != segment.frames:
        raise ValueError(f"segment {segment.number} has {segment.frames} frames, got {len(regions)} regions")
    container = open_input(source)
    try:
        info = probe(container)
        fmt = (SEGMENT_MUXER, *output_format(Path(f"segment{suffix}"))[1:])
        output = replace(config.output, audio="drop", encryption=None)  # both come with the join
        sink = VideoSink(Path(target), fmt, info, None, output)
        no_b_frames(sink)
        try:
            counts = run_graph(
                container,
                info,
                sink,
                ReplayStep(anonymizer, segment.first, regions),
                audio=False,
                queue_size=config.queue_size,
                items=segment_items(container, info, segment),
            )
        except BaseException:
            sink.abort()
            raise
        sink.close()
        return counts.frames
    finally:
        container.close()


def no_b_frames(sink: VideoSink) -> None:
    """Encode without B-frames: decode order is display order, so segments join cleanly."""
    sink.video.codec_context.max_b_frames = 0
    options = dict(sink.video.options or {})
    if sink.video.codec_context.name == "libx264":
        options["bf"] = "0"
    sink.video.options = options
