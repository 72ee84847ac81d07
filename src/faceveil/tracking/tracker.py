"""Online face tracking: keeps a face hidden through the frames where the detector misses it.

Privacy rule: a tracker only ever ADDS regions. Every detection given to
:meth:`FaceTracker.update` is returned unchanged (same box, same score); tracks only add a
predicted, enlarged box for a face that was detected within the last ``hold`` frames but not in
this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from faceveil.core.detections import Detections
from faceveil.core.geometry import box_iou
from faceveil.errors import ConfigError
from faceveil.tracking.kalman import KalmanBoxFilter

#: Each frame without detection, a held track's score is multiplied by this.
SCORE_DECAY = 0.9
#: ``data["source"]`` of a raw detection, of a held track's prediction, and of a backfilled box.
DETECTED, TRACKED, FILLED = "detected", "tracked", "filled"


def _check_int(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_float(name: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value > high or value < low or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise ConfigError(f"{name} must lie in {bracket}{low}, {high}], got {value!r}")


@dataclass(frozen=True)
class TrackerConfig:
    """How faces are tracked between detections. Every value is validated when built.

    Attributes:
        hold: frames a track keeps being hidden after its last detection (0 disables holding).
        iou_threshold: least IoU between a detection and a track's predicted box to associate them.
        margin_growth: each held frame, the predicted box grows by this share of its size on each
            side, so that a face that moves unexpectedly stays covered.
        lookback: for files, frames before a track's first detection that are hidden too.
        max_gap: for files, longest gap (in frames) between two detections of one face that is
            filled by interpolating their boxes.
        high_score: detections scoring at least this are associated first (ByteTrack's two stages);
            the weaker ones then take the tracks that are left.
    """

    hold: int = 12
    iou_threshold: float = 0.2
    margin_growth: float = 0.04
    lookback: int = 6
    max_gap: int = 30
    high_score: float = 0.5

    def __post_init__(self) -> None:
        _check_int("hold", self.hold, 0)
        _check_float("iou_threshold", self.iou_threshold, 0.0, 1.0, low_open=True)
        _check_float("margin_growth", self.margin_growth, 0.0, 1.0)
        _check_int("lookback", self.lookback, 0)
        _check_int("max_gap", self.max_gap, 0)
        _check_float("high_score", self.high_score, 0.0, 1.0)


def greedy_match(iou: npt.NDArray[np.float32], threshold: float) -> list[tuple[int, int]]:
    """One-to-one ``(row, column)`` pairs, highest IoU first, each with IoU >= ``threshold``."""
    if iou.size == 0:
        return []
    rows, cols = iou.shape
    order = np.argsort(-iou, axis=None, kind="stable")
    taken_rows = np.zeros(rows, dtype=bool)
    taken_cols = np.zeros(cols, dtype=bool)
    pairs: list[tuple[int, int]] = []
    for flat in order:
        r, c = divmod(int(flat), cols)
        if iou[r, c] < threshold or iou[r, c] <= 0:
            break
        if not taken_rows[r] and not taken_cols[c]:
            taken_rows[r] = taken_cols[c] = True
            pairs.append((r, c))
    return pairs


def move_landmarks(
    landmarks: npt.NDArray[np.float32], old: npt.NDArray[np.float32], new: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Landmarks ``(N, K, 2)`` placed in boxes ``old`` moved to the same place in boxes ``new``
    (one box ``(4,)`` for all, or one per row ``(N, 4)``)."""
    old, new = old[..., None, :], new[..., None, :]  # broadcast over the K points
    old_size = np.maximum(old[..., 2:] - old[..., :2], 1e-6)
    moved = (landmarks - old[..., :2]) / old_size * (new[..., 2:] - new[..., :2]) + new[..., :2]
    return np.asarray(moved, dtype=np.float32)


def with_source(found: Detections, source: str, tracker_id: npt.NDArray[np.int64]) -> Detections:
    """``found`` with its ``tracker_id`` and ``data["source"]`` set (other data kept)."""
    data = dict(found.data)
    data["source"] = np.full(len(found), source, dtype=f"<U{len(DETECTED)}")
    return Detections(found.xyxy, found.confidence, found.landmarks, tracker_id, data)


def empty_output() -> Detections:
    """No regions, with an empty ``tracker_id`` and ``data["source"]`` (the output schema)."""
    return with_source(Detections.empty(), DETECTED, np.zeros(0, dtype=np.int64))


class _Track:
    """One face followed over frames; its last detection is row ``row`` of ``found``."""

    def __init__(self, track_id: int, found: Detections, row: int) -> None:
        self.track_id = track_id
        self.filter = KalmanBoxFilter(found.xyxy[row])
        self.found, self.row = found, row  # the frame output holding this face's last detection
        self.since = 0  # frames since the last detection

    def detected(self, found: Detections, row: int) -> None:
        self.filter.update(found.xyxy[row])
        self.found, self.row = found, row
        self.since = 0


def _held_rows(tracks: list[_Track], margin_growth: float) -> list[Detections]:
    """Each held track's predicted box, enlarged for the frames without detection, as tracked
    rows: one `Detections` for all of them (validated once), or one per track when their last
    detections differ in landmarks or data columns (so that merging drops the same columns)."""
    if not tracks:
        return []
    first = _columns(tracks[0].found)
    if len(tracks) == 1 or any(_columns(t.found) != first for t in tracks):
        return [_held_block([t], margin_growth) for t in tracks]
    return [_held_block(tracks, margin_growth)]


def _columns(found: Detections) -> tuple[int | None, list[str]]:
    """What merging compares: the number of landmarks (None without) and the data columns."""
    return (None if found.landmarks is None else found.landmarks.shape[1]), list(found.data)


def _held_block(tracks: list[_Track], margin_growth: float) -> Detections:
    """The tracked rows of ``tracks``, whose last detections have the same columns."""
    predicted = np.stack([t.filter.box for t in tracks]).astype(np.float32)
    size = predicted[:, 2:] - predicted[:, :2]
    grow = np.array([np.float32(margin_growth * t.since) for t in tracks], np.float32)[:, None] * size
    box = np.concatenate([predicted[:, :2] - grow, predicted[:, 2:] + grow], axis=1)
    last_box = np.stack([t.found.xyxy[t.row] for t in tracks])
    landmarks = None
    if tracks[0].found.landmarks is not None:
        points = np.stack([t.found.landmarks[t.row] for t in tracks])  # type: ignore[index]
        landmarks = move_landmarks(points, last_box, predicted)
    decay = np.array([SCORE_DECAY**t.since for t in tracks]).astype(np.float32)
    confidence = np.array([t.found.confidence[t.row] for t in tracks], np.float32)
    score = np.clip(confidence * decay, 0.0, 1.0)
    # one-row slices, concatenated: each column keeps its dtype (a string column its width)
    data = {
        key: np.concatenate([t.found.data[key][t.row : t.row + 1] for t in tracks])
        for key in tracks[0].found.data
    }
    data["source"] = np.full(len(tracks), TRACKED)
    if len(tracks) > 1:
        data = {key: data[key] for key in sorted(data)}  # as `Detections.merge` orders them
    return Detections(
        xyxy=box,
        confidence=score,
        landmarks=landmarks,
        tracker_id=np.array([t.track_id for t in tracks], dtype=np.int64),
        data=data,
    )


class FaceTracker:
    """ByteTrack-style tracker that adds coverage for faces the detector missed.

    Call :meth:`update` once per frame, in order, with that frame's detections (an empty
    `Detections` when the detector did not run or found nothing).
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        """A tracker with no track yet."""
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every track (a new video starts); ids start again from 1."""
        self._tracks = []
        self._next_id = 1

    @property
    def track_count(self) -> int:
        """Tracks alive now (detected within the last ``hold`` frames)."""
        return len(self._tracks)

    def _associate(self, detections: Detections) -> list[tuple[int, int]]:
        """``(detection, track)`` index pairs: strong detections first, then the weak ones."""
        if not self._tracks or not len(detections):
            return []
        predicted = np.stack([t.filter.box for t in self._tracks]).astype(np.float32)
        iou = box_iou(detections.xyxy, predicted)
        strong = detections.confidence >= self.config.high_score
        pairs: list[tuple[int, int]] = []
        free_tracks = np.ones(len(self._tracks), dtype=bool)
        for stage in (strong, ~strong):
            det_idx = np.flatnonzero(stage)
            trk_idx = np.flatnonzero(free_tracks)
            sub = iou[np.ix_(det_idx, trk_idx)]
            for d, t in greedy_match(sub, self.config.iou_threshold):
                pairs.append((int(det_idx[d]), int(trk_idx[t])))
                free_tracks[trk_idx[t]] = False
        return pairs

    def update(self, detections: Detections) -> Detections:
        """Track this frame's detections; return them plus the held tracks' predicted boxes.

        The first ``len(detections)`` rows are the input detections, in order and unchanged,
        with ``tracker_id`` set and ``data["source"] == "detected"``. The following rows are one
        enlarged predicted box per track detected within the last ``hold`` frames but not in
        this one (``data["source"] == "tracked"``).
        """
        for track in self._tracks:
            track.filter.predict()
        pairs = self._associate(detections)
        ids = np.zeros(len(detections), dtype=np.int64)  # ids start at 1: 0 is "no track yet"
        for d, t in pairs:
            ids[d] = self._tracks[t].track_id
        born = np.flatnonzero(ids == 0)
        ids[born] = np.arange(self._next_id, self._next_id + len(born))
        self._next_id += len(born)
        found = with_source(detections, DETECTED, ids)
        for d, t in pairs:
            self._tracks[t].detected(found, d)
        matched = {t for _, t in pairs}
        for i, track in enumerate(self._tracks):
            if i not in matched:
                track.since += 1
        self._tracks = [t for t in self._tracks if t.since <= self.config.hold]
        # a new face is a track from its first frame (no minimum number of hits)
        self._tracks.extend(_Track(int(ids[d]), found, int(d)) for d in born)
        held = _held_rows([t for t in self._tracks if t.since > 0], self.config.margin_growth)
        out = Detections.merge([found, *held])
        return out if len(out) else empty_output()
