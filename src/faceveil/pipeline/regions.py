"""Rendering a video from a regions document: the per-frame step that hides given regions.

No detection runs: every frame hides what its line of the document lists (neither kept nor
removed), plus the hand-drawn boxes followed onto it. The document is checked against the
input before anything is written, and a frame count that turns out different while decoding
stops the job (its output is never renamed into place).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.core.frame import Frame
from faceveil.errors import JobCancelledError
from faceveil.media.video_io import DecodedFrame, open_input, probe, read_media
from faceveil.pipeline.graph import Rendered
from faceveil.review.document import (
    FrameRegions,
    Region,
    RegionsDocument,
    RegionsError,
    SourceIdentity,
    build_document,
    file_identity,
    hidden_detections,
)
from faceveil.review.follow import Box, FollowConfig, follow_all, seeds_of
from faceveil.review.loader import load_document, parse_frame
from faceveil.review.writer import RegionsWriter

if TYPE_CHECKING:
    from faceveil.review.identity import KeepFaces


class RegionsStep:
    """Hides, on each frame, what ``document`` says (and ``followed`` boxes); detects nothing.

    Each frame's ``record`` is its document line with the followed boxes added (``source:
    followed``), so ``--regions`` on a render writes what was applied.
    """

    def __init__(
        self,
        anonymizer: Anonymizer,
        document: RegionsDocument,
        followed: Mapping[int, list[Box]] | None = None,
    ) -> None:
        self.anonymizer = anonymizer
        self.document = document
        self.followed = dict(followed or {})
        self.seen = 0
        self.hidden_whole = 0

    def push(self, item: DecodedFrame) -> list[Rendered]:
        """Hide the listed regions of this frame."""
        index = item.index
        frames = self.document.frames
        if index >= len(frames):
            raise RegionsError(f"the input has more frames than the regions file ({len(frames)})")
        self.seen += 1
        line = frames[index]
        if line.skipped:
            return []  # left out of the original output: left out again
        extra = self.followed.get(index, [])
        record = _with_followed(line, extra)
        if line.hidden_whole:
            self.hidden_whole += 1
            rgb = self.anonymizer.mark(np.zeros_like(item.frame.rgb))
        else:
            rgb = self.anonymizer.hide(item.frame, hidden_detections(line, extra)).image
        return [Rendered(item.frame, rgb, record.to_json())]

    def flush(self) -> list[Rendered]:
        """Check that every frame of the document was seen."""
        if self.seen != len(self.document.frames):
            raise RegionsError(
                f"the input has {self.seen} frames, the regions file {len(self.document.frames)}"
            )
        return []


def _with_followed(line: FrameRegions, extra: Iterable[Box]) -> FrameRegions:
    added = tuple(Region(tuple(float(v) for v in box), None, 1.0, "followed") for box in extra)  # type: ignore[arg-type]
    return FrameRegions(line.frame, line.pts, line.regions + added, line.hidden_whole) if added else line


def video_identity(source: str | os.PathLike[str], frames: int = 0) -> SourceIdentity:
    """The identity of a video file (its frame count as given; 0: unknown until decoded)."""
    container = open_input(source)
    try:
        info = probe(container)
    finally:
        container.close()
    return file_identity(source, info.width, info.height, frames or (info.frames or 0), info.rate)


def follow_in_video(
    source: str | os.PathLike[str], document: RegionsDocument, config: FollowConfig | None = None
) -> dict[int, list[Box]]:
    """Follow every hand-drawn box of ``document`` through the video ``source``.

    Only the frames within ``max_frames`` of a hand box are kept in memory, shrunk to the
    tracking size; the boxes come back in the video's pixels.
    """
    return follow_seeds(source, seeds_of(document.frames), config)


def follow_seeds(
    source: str | os.PathLike[str], seeds: list[tuple[int, Box]], config: FollowConfig | None = None
) -> dict[int, list[Box]]:
    """Follow hand-drawn boxes ``(frame, box)`` through the video ``source`` (see
    :func:`follow_in_video`)."""
    config = config or FollowConfig()
    if not seeds:
        return {}
    reach = config.max_frames + 2
    wanted: set[int] = set()
    for seed, _ in seeds:
        wanted.update(range(max(0, seed - reach), seed + reach + 1))
    import cv2

    kept: dict[int, Any] = {}
    scale = 1.0
    container = open_input(source)
    try:
        info = probe(container)
        scale = min(1.0, config.max_side / max(info.width, info.height))
        size = (max(1, round(info.width * scale)), max(1, round(info.height * scale)))
        for item in read_media(container, info, audio=False):
            if isinstance(item, DecodedFrame) and item.index in wanted:
                rgb = item.frame.rgb
                kept[item.index] = (
                    rgb if scale == 1.0 else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                )
    finally:
        container.close()
    small = [(seed, (b[0] * scale, b[1] * scale, b[2] * scale, b[3] * scale)) for seed, b in seeds]
    found = follow_all(kept.get, small, config)
    return {
        i: [(x1 / scale, y1 / scale, x2 / scale, y2 / scale) for x1, y1, x2, y2 in boxes]
        for i, boxes in found.items()
    }


def load_for(source: str | os.PathLike[str], regions: str | os.PathLike[str]) -> RegionsDocument:
    """Load ``regions`` and check it belongs to the video ``source`` (before anything is written)."""
    from faceveil.review.document import check_source

    document = load_document(regions)
    # the file's hash says it is the same video; its frame count (a container's figure is not
    # always the decoded one) is checked frame by frame while rendering
    identity = video_identity(source)
    check_source(document, replace(identity, frames=0), "video")
    return document


def finish_regions_file(
    path: Path, source: SourceIdentity, frames_in: int, keep: frozenset[int] = frozenset()
) -> None:
    """Turn the frame lines a face job streamed into ``path`` into a whole document: the header
    first, then a line for every input frame (one ``--on-error skip-frame`` left out is listed
    as ``skipped``)."""
    lines: dict[int, FrameRegions] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                frame = parse_frame(json.loads(line), source, f"{path.name}:{number}")
                lines[frame.frame] = frame
    staged = path.with_name(path.name + ".doc")
    writer = RegionsWriter(staged, "video", source, keep)
    try:
        for index in range(frames_in):
            writer.write(lines.get(index, FrameRegions(index, None, (), skipped=True)))
        writer.finish()
        staged.replace(path)
    except BaseException:
        writer.abort()
        staged.unlink(missing_ok=True)
        raise


def detect_document(
    source: str | os.PathLike[str],
    anonymizer: Anonymizer,
    config: Any,
    keep: KeepFaces | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> RegionsDocument:
    """The regions a face job would hide on ``source`` (``config``: a ``VideoJobConfig``), found
    without rendering; with ``keep``, the tracks that match a reference person are kept.

    Tracks are decided whole: a few of each track's detected faces (every third, the clearest
    spread over the track) are described and their mean compared with the references.
    """
    from faceveil.pipeline.video import FaceStep, VideoReport

    step = FaceStep(anonymizer, config, VideoReport(str(source), ""), render=False)
    container = open_input(source)
    try:
        info = probe(container)
        identity = file_identity(source, info.width, info.height, info.frames or 0, info.rate)
        lines: dict[int, FrameRegions] = {}
        sampler = _Sampler(keep)
        frames_in = 0

        def take(ready: Iterable[Rendered]) -> None:
            for rendered in ready:
                assert rendered.record is not None
                line = parse_frame(rendered.record, identity, f"frame {rendered.frame.index}")
                lines[line.frame] = line
                assert isinstance(rendered.frame, Frame)  # a step that only finds hands back the frame
                sampler.add(rendered.frame.rgb, line)

        for item in read_media(container, info, audio=False):
            if stop is not None and stop.is_set():
                raise JobCancelledError("the video job was cancelled; nothing was written")
            if isinstance(item, DecodedFrame):
                frames_in += 1
                take(step.push(item))
                if progress is not None:
                    progress(frames_in, info.frames)
        take(step.flush())
    finally:
        container.close()
    identity = replace(identity, frames=frames_in)
    frames = [lines.get(i, FrameRegions(i, None, (), skipped=True)) for i in range(frames_in)]
    return build_document("video", identity, frames, sampler.kept())


class _Sampler:
    """Describes every third detected face of each track (at most ``3 * samples``)."""

    def __init__(self, keep: KeepFaces | None) -> None:
        self.keep = keep
        self.seen: dict[int, int] = {}
        self.found: dict[int, list[Any]] = {}

    def add(self, rgb: Any, line: FrameRegions) -> None:
        keep = self.keep
        if keep is None or line.hidden_whole:
            return
        for region in line.regions:
            x1, y1, x2, y2 = region.box
            if region.track is None or region.source != "detected":
                continue
            if min(x2 - x1, y2 - y1) < keep.config.min_face:
                continue
            count = self.seen[region.track] = self.seen.get(region.track, 0) + 1
            found = self.found.setdefault(region.track, [])
            if (count - 1) % 3 == 0 and len(found) < 3 * keep.config.samples:
                found.append(keep.describer.describe(rgb, region.box))

    def kept(self) -> set[int]:
        if self.keep is None:
            return set()
        out = set()
        for track, found in self.found.items():
            picks = np.linspace(0, len(found) - 1, min(self.keep.config.samples, len(found))).astype(int)
            if self.keep.matches([found[i] for i in picks]):
                out.add(track)
        return out


def read_frames(source: str | os.PathLike[str], indices: Iterable[int]) -> dict[int, Any]:
    """The upright RGB frames ``indices`` of a video (decoded once, front to back)."""
    wanted = set(indices)
    found: dict[int, Any] = {}
    if not wanted:
        return found
    container = open_input(source)
    try:
        info = probe(container)
        for item in read_media(container, info, audio=False):
            if isinstance(item, DecodedFrame) and item.index in wanted:
                found[item.index] = item.frame.rgb
                if len(found) == len(wanted):
                    break
    finally:
        container.close()
    return found


def matching_tracks(source: str | os.PathLike[str], document: RegionsDocument, keep: KeepFaces) -> set[int]:
    """The tracks of ``document`` whose faces match a ``keep`` person (decided per track, from
    its clearest detected faces spread over the track, as ``--keep-face`` does)."""
    from faceveil.review.identity import pick_samples

    rows: dict[int, list[tuple[int, Box, float]]] = {}
    for frame in document.frames:
        for region in frame.regions:
            if region.track is not None and region.source == "detected":
                rows.setdefault(region.track, []).append((frame.frame, region.box, region.score))
    picks = {track: pick_samples(found, keep.config) for track, found in rows.items()}
    frames = read_frames(source, {index for chosen in picks.values() for index, _ in chosen})
    return {
        track
        for track, chosen in picks.items()
        if keep.matches([keep.describer.describe(frames[i], box) for i, box in chosen if i in frames])
    }
