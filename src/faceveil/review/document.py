"""The regions document: what a job hid on every frame, as JSON lines a person can edit.

Schema version 2 (``faceveil video --regions``; ``faceveil image --regions`` writes the same with
one frame). The first line is a header, every other line one frame, in frame order::

    {"schema": "faceveil-regions", "version": 2, "kind": "video",
     "source": {"name": "talk.mp4", "sha256": "...", "bytes": 123, "width": 1280, "height": 720,
                "frames": 250, "fps": "25"},
     "tracks": {"3": {"keep": false, "first": 0, "last": 120, "frames": 121, "best": 40}}}
    {"frame": 0, "pts": 0, "regions": [{"box": [x1, y1, x2, y2], "track": 3, "score": 0.93,
                                         "source": "detected"}]}

Frame lines keep the fields of version 1 (``frame``, ``pts``, ``regions`` with ``box``, ``track``,
``score``, ``source``; ``hidden_whole`` on a frame hidden whole; new: ``skipped`` on a frame
``--on-error skip-frame`` left out), so readers of the audit trail keep
working once they skip the header. The edits a document can carry:

- **keep a track**: ``"keep": true`` in the header's ``tracks`` entry; its regions are then shown
  and written with ``"kept": true`` (a region's ``kept`` must agree with its track);
- **add a box**: a region with ``"source": "manual"`` (its ``track`` null); it is hidden, and
  followed forwards and backwards through the video (see :mod:`faceveil.review.follow`);
- **remove a box**: ``"removed": true`` on a region; it is no longer hidden.

The loader refuses anything else: a missing or foreign header, another schema version, unknown
fields, boxes outside the picture, frames missing, repeated or out of order, and (with
:func:`check_source`) a document written for another file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np

from faceveil.core.detections import Detections
from faceveil.errors import InputError

SCHEMA = "faceveil-regions"
VERSION = 2
KINDS = ("video", "image")
#: Where a region came from: found by the detector, carried by the tracker, filled between two
#: detections, drawn by hand, or a hand box followed by the visual tracker.
SOURCES = ("detected", "tracked", "filled", "manual", "followed")


class RegionsError(InputError):
    """A regions document is malformed, or was written for another input."""

    code = "invalid_regions"


@dataclass(frozen=True)
class SourceIdentity:
    """Which input a document belongs to.

    Attributes:
        name: the input's file name (no folder).
        sha256: hex SHA-256 of the input file's bytes.
        size: the input's size in bytes.
        width, height: upright picture size.
        frames: number of frames (1 for a photo).
        fps: average frame rate as an exact fraction (``"30000/1001"``), None when unknown.
    """

    name: str
    sha256: str
    size: int
    width: int
    height: int
    frames: int
    fps: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The header's ``source`` object."""
        return {
            "name": self.name,
            "sha256": self.sha256,
            "bytes": self.size,
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "fps": self.fps,
        }


@dataclass(frozen=True)
class Region:
    """One box of one frame.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in pixels of the upright picture.
        track: the tracker's id, or None (a manual box, or an untracked photo face).
        score: detector score in ``[0, 1]`` (1 for a manual box).
        source: one of :data:`SOURCES`.
        kept: shown because its track is kept (written from the header's ``keep``).
        removed: removed by a reviewer: not hidden.
    """

    box: tuple[float, float, float, float]
    track: int | None = None
    score: float = 1.0
    source: str = "detected"
    kept: bool = False
    removed: bool = False

    @property
    def hidden(self) -> bool:
        """True when rendering hides this region."""
        return not (self.kept or self.removed)

    def to_json(self) -> dict[str, Any]:
        """One ``regions`` entry (``kept``/``removed`` only when set)."""
        record: dict[str, Any] = {
            "box": [_exact(v) for v in self.box],
            "track": self.track,
            "score": round(float(self.score), 4),
            "source": self.source,
        }
        if self.kept:
            record["kept"] = True
        if self.removed:
            record["removed"] = True
        return record


@dataclass(frozen=True)
class FrameRegions:
    """The regions of one frame (``hidden_whole``: the frame is written black; ``skipped``: the
    frame was left out of the output by ``--on-error skip-frame``, and a render leaves it out)."""

    frame: int
    pts: int | None
    regions: tuple[Region, ...] = ()
    hidden_whole: bool = False
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        """One frame line."""
        record: dict[str, Any] = {
            "frame": self.frame,
            "pts": self.pts,
            "regions": [r.to_json() for r in self.regions],
        }
        if self.hidden_whole:
            record["hidden_whole"] = True
        if self.skipped:
            record["skipped"] = True
        return record


@dataclass(frozen=True)
class TrackSummary:
    """A track as the review shows it: where it is, and its clearest frame."""

    track: int
    first: int
    last: int
    frames: int
    best: int
    keep: bool = False

    def to_json(self) -> dict[str, Any]:
        """The header's entry for this track."""
        return {
            "keep": self.keep,
            "first": self.first,
            "last": self.last,
            "frames": self.frames,
            "best": self.best,
        }


@dataclass(frozen=True)
class RegionsDocument:
    """A whole regions document: its source, the tracks kept, and every frame's regions.

    Build with :func:`build_document`, read with :func:`faceveil.review.loader.load_document`, write with
    :meth:`write`. Frames are ``0 .. source.frames - 1`` in order (validated).
    """

    kind: str
    source: SourceIdentity
    frames: tuple[FrameRegions, ...]
    keep: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RegionsError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for expected, frame in enumerate(self.frames):
            if frame.frame != expected:
                raise RegionsError(f"frame {expected} is missing or out of order (found frame {frame.frame})")
        if len(self.frames) != self.source.frames:
            raise RegionsError(
                f"the document lists {len(self.frames)} frames but its source has {self.source.frames}"
            )
            for region in frame.regions:
                if region.kept != (region.track is not None and region.track in self.keep):
                    raise RegionsError(
                        f"frame {frame.frame}: a region's kept flag disagrees with its track's keep "
                        f"(track {region.track}); mark tracks kept in the header's tracks"
                    )
        unknown = self.keep - set(self.tracks())
        if unknown:
            raise RegionsError(f"kept tracks not in the document: {sorted(unknown)}")

    # -----------------------------------------------------------------------------------------
    def tracks(self) -> dict[int, TrackSummary]:
        """Every track of the document with its first/last frame, frame count and clearest frame."""
        spans: dict[int, list[int]] = {}
        best: dict[int, tuple[float, int]] = {}
        for frame in self.frames:
            for region in frame.regions:
                if region.track is None:
                    continue
                spans.setdefault(region.track, []).append(frame.frame)
                x1, y1, x2, y2 = region.box
                clarity = (region.score if region.source == "detected" else 0.0) * (x2 - x1) * (y2 - y1)
                if region.track not in best or clarity > best[region.track][0]:
                    best[region.track] = (clarity, frame.frame)
        return {
            track: TrackSummary(
                track, min(seen), max(seen), len(set(seen)), best[track][1], keep=track in self.keep
            )
            for track, seen in sorted(spans.items())
        }

    def with_keep(self, keep: Iterable[int]) -> RegionsDocument:
        """The same document with these tracks kept (and their regions marked ``kept``)."""
        kept = frozenset(int(t) for t in keep)
        frames = tuple(
            replace(
                f,
                regions=tuple(replace(r, kept=r.track is not None and r.track in kept) for r in f.regions),
            )
            for f in self.frames
        )
        return RegionsDocument(self.kind, self.source, frames, kept)

    def edits(self) -> dict[str, int]:
        """What a reviewer changed: tracks kept, boxes added by hand, boxes removed."""
        added = sum(r.source == "manual" for f in self.frames for r in f.regions)
        removed = sum(r.removed for f in self.frames for r in f.regions)
        return {"kept_tracks": len(self.keep), "added": added, "removed": removed}

    def header(self) -> dict[str, Any]:
        """The first line."""
        return {
            "schema": SCHEMA,
            "version": VERSION,
            "kind": self.kind,
            "source": self.source.to_json(),
            "tracks": {str(t): s.to_json() for t, s in self.tracks().items()},
        }

    def lines(self) -> Iterator[str]:
        """The document as JSON lines (header first), each without its newline."""
        yield json.dumps(self.header())
        for frame in self.frames:
            yield json.dumps(frame.to_json())

    def write(self, handle: IO[str]) -> None:
        """Write the document to an open text file."""
        for line in self.lines():
            handle.write(line + "\n")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the document to ``path`` through a temporary name (no partial file on error)."""
        path = Path(path)
        temp = path.with_name(f".{path.name}.faceveil-tmp-{os.getpid()}")
        try:
            with open(temp, "w", encoding="utf-8") as handle:
                self.write(handle)
            temp.replace(path)
        finally:
            temp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
def _exact(value: float) -> float:
    """A float32 coordinate as the shortest decimal that reads back to the same float32."""
    return float(str(np.float32(value)))


def file_identity(
    path: str | os.PathLike[str], width: int, height: int, frames: int, fps: Fraction | None
) -> SourceIdentity:
    """The identity of an input file: its name, SHA-256 and size, plus its picture facts."""
    path = Path(path)
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return SourceIdentity(
        path.name, digest.hexdigest(), size, width, height, frames, None if fps is None else str(fps)
    )


def regions_from_detections(detections: Detections) -> tuple[Region, ...]:
    """The rows of a `Detections` (tracker ids and ``data["source"]`` when present) as regions."""
    sources = detections.data.get("source")
    kept = detections.data.get("kept")
    rows = []
    for i in range(len(detections)):
        x1, y1, x2, y2 = (float(v) for v in detections.xyxy[i])
        rows.append(
            Region(
                box=(x1, y1, x2, y2),
                track=None if detections.tracker_id is None else int(detections.tracker_id[i]),
                score=float(detections.confidence[i]),
                source="detected" if sources is None else str(sources[i]),
                kept=bool(kept[i]) if kept is not None else False,
            )
        )
    return tuple(rows)


def hidden_detections(
    frame: FrameRegions, extra: Iterable[tuple[float, float, float, float]] = ()
) -> Detections:
    """What rendering hides on ``frame``: its regions neither kept nor removed, plus ``extra`` boxes
    (hand boxes followed onto this frame), as `Detections` with the document's exact boxes."""
    rows = [r for r in frame.regions if r.hidden]
    boxes = [r.box for r in rows] + [tuple(b) for b in extra]
    scores = [r.score for r in rows] + [1.0] * (len(boxes) - len(rows))
    if not boxes:
        return Detections.empty()
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32))


def build_document(
    kind: str, source: SourceIdentity, frames: Iterable[FrameRegions], keep: Iterable[int] = ()
) -> RegionsDocument:
    """A document from frames in order; regions of ``keep`` tracks are marked ``kept``."""
    document = RegionsDocument(kind, source, tuple(frames), frozenset())
    return document.with_keep(keep) if keep else document


def check_source(document: RegionsDocument, identity: SourceIdentity, kind: str) -> None:
    """Refuse a document written for another input: other kind, file contents, size or frame count."""
    problems = []
    if document.kind != kind:
        problems.append(f"it is for a {document.kind}, not a {kind}")
    if document.source.sha256 != identity.sha256 or document.source.size != identity.size:
        problems.append(
            f"it was written for another file ({document.source.name}, "
            f"sha256 {document.source.sha256[:12]}...; "
            f"this input is {identity.name}, sha256 {identity.sha256[:12]}...)"
        )
    if (document.source.width, document.source.height) != (identity.width, identity.height):
        problems.append(
            f"its picture is {document.source.width}x{document.source.height}, "
            f"the input's {identity.width}x{identity.height}"
        )
    if identity.frames and document.source.frames != identity.frames:
        problems.append(f"it has {document.source.frames} frames, the input {identity.frames}")
    if problems:
        raise RegionsError("the regions file does not match the input: " + "; ".join(problems))
