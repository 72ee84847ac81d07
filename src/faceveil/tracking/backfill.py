"""Bidirectional filling for files: hides a face in the frames before and between its detections.

A live stream can only hide a face after it was first seen (`FaceTracker`). A file can look
ahead: :class:`Backfill` holds each frame's regions back for a bounded number of frames, and adds

* the linear interpolation of a face's two detections to every frame between them, when the
  detector lost the face for at most ``max_gap`` frames, and
* a face's first box to the ``lookback`` frames before its first detection (a face that enters or
  turns towards the camera is often visible a little before it is detected).

Regions are only ever ADDED: every pushed frame comes back with all of its original rows.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from faceveil.core.detections import Detections, merge_columns
from faceveil.tracking.tracker import DETECTED, FILLED, TrackerConfig

#: A face born near where a lost one vanished is the same face when their centres are closer than
#: this share of their mean size, and their sizes differ by less than this factor.
LINK_DISTANCE = 1.0
LINK_SIZE_RATIO = 2.0


@dataclass(frozen=True, eq=False)
class _Row:
    """One region row as plain arrays (the columns of a one-row `Detections`, not validated:
    the frame's rows are validated once, when :meth:`Backfill.push` releases them merged)."""

    xyxy: npt.NDArray[np.float32]  # (1, 4)
    confidence: npt.NDArray[np.float32]  # (1,)
    landmarks: npt.NDArray[np.float32] | None  # (1, K, 2)
    tracker_id: npt.NDArray[np.int64]  # (1,)
    data: dict[str, npt.NDArray[Any]]  # each of length 1

    @classmethod
    def of(cls, regions: Detections, index: int, tracker_id: npt.NDArray[np.int64]) -> _Row:
        """Row ``index`` of ``regions`` (whose ``tracker_id`` is ``tracker_id``)."""
        rows = slice(index, index + 1)
        landmarks = None if regions.landmarks is None else regions.landmarks[rows]
        data = {key: value[rows] for key, value in regions.data.items()}
        return cls(regions.xyxy[rows], regions.confidence[rows], landmarks, tracker_id[rows], data)

    def detections(self) -> Detections:
        """This row as a validated `Detections`."""
        return Detections(self.xyxy, self.confidence, self.landmarks, self.tracker_id, self.data)


@dataclass
class _Seen:
    """The last detection of one track."""

    frame: int
    row: _Row  # the detection as the tracker returned it
    linked: bool = False  # already continued by a newer track


def filled_row(first: _Row, second: _Row, share: float) -> _Row:
    """One ``filled`` row between detections ``first`` and ``second`` (``share`` 0 is ``first``)."""
    weight = np.float32(share)
    box = (1 - weight) * first.xyxy + weight * second.xyxy
    landmarks = None
    a, b = first.landmarks, second.landmarks
    if a is not None and b is not None and a.shape == b.shape:
        landmarks = (1 - weight) * a + weight * b
    data = dict(second.data)
    data["source"] = np.array([FILLED])
    confidence = np.minimum(first.confidence, second.confidence)
    return _Row(box, confidence, landmarks, second.tracker_id, data)


def merged(regions: Detections, rows: list[_Row]) -> Detections:
    """``regions`` and the added ``rows``, exactly as ``Detections.merge`` of all of them as one-row
    `Detections` would give (columns kept only where every non-empty part has them), built and
    validated once."""
    if not rows:
        return regions
    parts: list[Detections | _Row] = [regions, *rows] if len(regions) else list(rows)
    if len(parts) == 1:
        return rows[0].detections()
    return merge_columns(parts)


class Backfill:
    """Adds interpolated and look-back regions to tracker output, with a bounded delay.

    Push every frame's `FaceTracker` output in order; each call returns the frames that no later
    detection can change any more. At the end, :meth:`flush` returns the rest. At most
    :attr:`capacity` frames (``max(max_gap, lookback) + 1``) are held at any time, whatever the
    length of the video, and far fewer while no face is lost; they hold only `Detections` (the
    caller keeps the pixels).
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        """An empty buffer."""
        self.config = config or TrackerConfig()
        # a detection at frame b fills frames down to b - delay, never earlier
        self._delay = max(self.config.max_gap - 1, self.config.lookback, 0)
        self._buffer: deque[tuple[int, Detections, list[_Row]]] = deque()
        self._seen: dict[int, _Seen] = {}
        self._next: int | None = None

    @property
    def capacity(self) -> int:
        """The most frames ever held: ``max(max_gap, lookback) + 1``."""
        return max(self.config.max_gap, self.config.lookback) + 1

    @property
    def pending(self) -> int:
        """Frames pushed but not yet returned."""
        return len(self._buffer)

    def __len__(self) -> int:
        return self.pending

    def push(self, index: int, regions: Detections) -> list[tuple[int, Detections]]:
        """Take the regions of frame ``index``; return the frames that are now final, in order.

        Frames must be pushed in order and consecutively (the first one may have any index >= 0).
        """
        if self._next is None and index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        if self._next is not None and index != self._next:
            raise ValueError(f"frames must be pushed in order: expected frame {self._next}, got {index}")
        self._next = index + 1
        self._buffer.append((index, regions, []))
        self._fill(index, regions)
        self._forget(index)
        return self._release(self._settled(index))

    def flush(self) -> list[tuple[int, Detections]]:
        """Return every frame still held (the video ended); the `Backfill` can then start again."""
        released = self._release(None)
        self._seen.clear()
        self._next = None
        return released

    # --------------------------------------------------------------------------------------------
    def _add(self, frame: int, row: _Row) -> None:
        if not self._buffer:
            return
        position = frame - self._buffer[0][0]
        if 0 <= position < len(self._buffer):
            self._buffer[position][2].append(row)

    def _interpolate(self, start: _Seen, end: _Row, frame: int) -> None:
        span = frame - start.frame
        for step in range(1, span):
            self._add(start.frame + step, filled_row(start.row, end, step / span))

    def _fill(self, frame: int, regions: Detections) -> None:
        if regions.tracker_id is None or not len(regions):
            return
        source = regions.data.get("source")
        detected = np.ones(len(regions), bool) if source is None else np.asarray(source) == DETECTED
        born: list[_Row] = []
        for i in np.flatnonzero(detected):
            row = _Row.of(regions, int(i), regions.tracker_id)
            track_id = int(regions.tracker_id[i])
            seen = self._seen.get(track_id)
            if seen is None:
                born.append(row)
                first = filled_row(row, row, 1.0)  # the same row for every frame before
                for before in range(max(0, frame - self.config.lookback), frame):
                    self._add(before, first)
            elif 2 <= frame - seen.frame <= self.config.max_gap:
                self._interpolate(seen, row, frame)
            self._seen[track_id] = _Seen(frame, row)
        if born:
            self._link(frame, born)

    def _link(self, frame: int, born: list[_Row]) -> None:
        """Interpolate from lost tracks to new tracks that continue them (the same face)."""
        lost = [
            s for s in self._seen.values() if not s.linked and 2 <= frame - s.frame <= self.config.max_gap
        ]
        if not lost:
            return
        distances = link_distances(
            np.concatenate([s.row.xyxy for s in lost]), np.concatenate([r.xyxy for r in born])
        )
        pairs = [
            (float(distances[b, old]), int(b), int(old))
            for b, old in zip(*np.nonzero(distances <= LINK_DISTANCE), strict=True)
        ]
        used_born: set[int] = set()
        for _, b, old in sorted(pairs):
            if b in used_born or lost[old].linked:
                continue
            used_born.add(b)
            lost[old].linked = True
            self._interpolate(lost[old], born[b], frame)

    def _settled(self, frame: int) -> int:
        """The last frame no later detection can add to, now that ``frame`` was pushed.

        A face first detected later reaches back ``lookback`` frames; a face seen at frame ``s``
        and detected again (or continued by a new track) within ``max_gap`` frames fills the
        frames after ``s``. Frames before both are final; while every face keeps being detected
        that is only ``lookback`` frames, and never more than ``max(max_gap - 1, lookback)``.
        """
        upto = frame - self.config.lookback
        reachable = frame + 1 - self.config.max_gap  # seen before this: can no longer be continued
        for seen in self._seen.values():
            if seen.frame >= reachable:
                upto = min(upto, seen.frame)
        return max(upto, frame - self._delay)

    def _forget(self, frame: int) -> None:
        # a track id can come back up to hold + 1 frames later; a gap is filled up to max_gap
        horizon = frame - max(self.config.max_gap, self.config.hold + 1)
        for track_id in [k for k, s in self._seen.items() if s.frame < horizon]:
            del self._seen[track_id]

    def _release(self, upto: int | None) -> list[tuple[int, Detections]]:
        released = []
        while self._buffer and (upto is None or self._buffer[0][0] <= upto):
            index, regions, rows = self._buffer.popleft()
            released.append((index, merged(regions, rows)))
        return released


def link_distances(old: npt.NDArray[np.float32], new: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """``(len(new), len(old))`` centre distances of boxes over their mean size; infinite where the
    sizes differ by more than ``LINK_SIZE_RATIO``."""
    old, new = old[None, :, :], new[:, None, :]
    old_size = np.maximum(old[..., 2:] - old[..., :2], 1e-6)
    new_size = np.maximum(new[..., 2:] - new[..., :2], 1e-6)
    ratio = np.max(np.maximum(old_size / new_size, new_size / old_size), axis=-1)
    centre_gap = np.linalg.norm(
        (old[..., :2] + old[..., 2:]) / 2 - (new[..., :2] + new[..., 2:]) / 2, axis=-1
    )
    mean_size = np.mean((old_size + new_size) / 2, axis=-1)
    distance = centre_gap.astype(np.float64) / mean_size.astype(np.float64)
    return np.where(ratio > LINK_SIZE_RATIO, np.inf, distance)
