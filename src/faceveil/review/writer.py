"""Writing a regions document while a job runs (frames stream in; the header is known at the end)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import IO

from faceveil.core.detections import Detections
from faceveil.review.document import (
    SCHEMA,
    VERSION,
    FrameRegions,
    SourceIdentity,
    TrackSummary,
    regions_from_detections,
)


class RegionsWriter:
    """Streams frame lines to a scratch file and writes the document (header first) on `finish`.

    Args:
        target: the file to write (a pipeline passes its temporary name; it renames it).
        kind: ``video`` or ``image``.
        source: the input's identity; its ``frames`` is replaced by the number of frames written.
        keep: tracks kept visible (their regions are written with ``"kept": true``).

    The scratch file lives beside ``target`` and is removed by `finish` and `abort`.
    """

    def __init__(
        self,
        target: str | os.PathLike[str],
        kind: str,
        source: SourceIdentity,
        keep: frozenset[int] = frozenset(),
    ) -> None:
        self.target = Path(target)
        self.kind = kind
        self.source = source
        self.keep = keep
        self._count = 0
        self._tracks: dict[int, list[float]] = {}  # id -> [first, last, frames, best clarity, best frame]
        fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".body", dir=self.target.parent)
        self._body_path = Path(name)
        self._body: IO[str] = os.fdopen(fd, "w", encoding="utf-8")

    def frame(self, index: int, pts: int | None, detections: Detections, hidden_whole: bool = False) -> None:
        """Record what is hidden on one frame (frames must come in order, from 0)."""
        self.write(FrameRegions(index, pts, regions_from_detections(detections), hidden_whole))

    def write(self, frame: FrameRegions) -> None:
        """Record one frame (its regions marked ``kept`` as their track is kept or not)."""
        frame = replace(
            frame,
            regions=tuple(
                replace(r, kept=r.track is not None and r.track in self.keep) for r in frame.regions
            ),
        )
        if frame.frame != self._count:
            raise ValueError(f"frames must be written in order: expected {self._count}, got {frame.frame}")
        self._count += 1
        for region in frame.regions:
            if region.track is None:
                continue
            x1, y1, x2, y2 = region.box
            clarity = (region.score if region.source == "detected" else 0.0) * (x2 - x1) * (y2 - y1)
            entry = self._tracks.setdefault(region.track, [frame.frame, frame.frame, 0, -1.0, frame.frame])
            entry[1] = frame.frame
            entry[2] += 1
            if clarity > entry[3]:
                entry[3], entry[4] = clarity, frame.frame
        self._body.write(json.dumps(frame.to_json()) + "\n")

    def finish(self) -> None:
        """Write the header and the frames to ``target``; removes the scratch file."""
        self._body.close()
        try:
            source = SourceIdentity(
                self.source.name,
                self.source.sha256,
                self.source.size,
                self.source.width,
                self.source.height,
                self._count,
                self.source.fps,
            )
            tracks = {
                str(t): TrackSummary(
                    t, int(e[0]), int(e[1]), int(e[2]), int(e[4]), keep=t in self.keep
                ).to_json()
                for t, e in sorted(self._tracks.items())
            }
            header = {
                "schema": SCHEMA,
                "version": VERSION,
                "kind": self.kind,
                "source": source.to_json(),
                "tracks": tracks,
            }
            with (
                open(self.target, "w", encoding="utf-8") as out,
                open(self._body_path, encoding="utf-8") as body,
            ):
                out.write(json.dumps(header) + "\n")
                for line in body:
                    out.write(line)
        finally:
            self._body_path.unlink(missing_ok=True)

    def abort(self) -> None:
        """Drop everything written so far."""
        self._body.close()
        self._body_path.unlink(missing_ok=True)
