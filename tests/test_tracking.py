"""Tests of face tracking: Kalman filter, FaceTracker (online) and Backfill (files).

Privacy rule checked throughout: tracking only ADDS regions, a raw detection is never removed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from faceveil.anonymize.regions import build_regions, union_mask
from faceveil.core.detections import Detections
from faceveil.core.geometry import box_iou
from faceveil.errors import ConfigError
from faceveil.evaluation.metrics import coverage
from faceveil.tracking import Backfill, FaceTracker, KalmanBoxFilter, TrackerConfig

Boxes = npt.NDArray[np.float32]


def moving_box(t: int, x0: float = 20, y0: float = 40, vx: float = 6, vy: float = 2) -> Boxes:
    """A 60x70 face moving at constant speed, at frame ``t``, as a ``(1, 4)`` array."""
    x, y = x0 + vx * t, y0 + vy * t
    return np.array([[x, y, x + 60, y + 70]], np.float32)


def dets(xyxy: Any, score: float = 0.9, landmarks: Any = None) -> Detections:
    boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
    return Detections(boxes, np.full(len(boxes), score, np.float32), landmarks)


def sources(found: Detections) -> list[str]:
    return [str(s) for s in found.data["source"]]


def rows_of(found: Detections, source: str) -> Detections:
    return found[np.asarray(found.data["source"]) == source]


def random_sequence(seed: int, frames: int = 40) -> list[Detections]:
    """Random detections: 0-4 boxes per frame, random places, sizes and scores."""
    rng = np.random.default_rng(seed)
    sequence = []
    for _ in range(frames):
        n = int(rng.integers(0, 5))
        corner = rng.uniform(0, 300, (n, 2))
        size = rng.uniform(2, 80, (n, 2))
        sequence.append(
            Detections(np.hstack([corner, corner + size]), rng.uniform(0, 1, n).astype(np.float32))
        )
    return sequence


def run_files(
    sequence: list[Detections], config: TrackerConfig
) -> tuple[list[Detections], list[tuple[int, Detections]]]:
    """Tracker then Backfill over ``sequence``: (tracker outputs, Backfill releases in order)."""
    tracker, backfill = FaceTracker(config), Backfill(config)
    tracked, released = [], []
    for index, found in enumerate(sequence):
        tracked.append(tracker.update(found))
        released += backfill.push(index, tracked[-1])
        assert backfill.pending <= backfill.capacity
    released += backfill.flush()
    assert backfill.pending == 0
    return tracked, released


# ------------------------------------------------------------------------------------------------
# configuration and Kalman filter


def test_config_defaults() -> None:
    config = TrackerConfig()
    assert (config.hold, config.lookback, config.max_gap) == (12, 6, 30)
    assert config.iou_threshold == pytest.approx(0.2)
    assert config.margin_growth == pytest.approx(0.04)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hold", -1),
        ("hold", 1.5),
        ("iou_threshold", 0.0),
        ("iou_threshold", 1.5),
        ("margin_growth", -0.1),
        ("lookback", -2),
        ("max_gap", True),
        ("high_score", 2.0),
    ],
)
def test_config_errors_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        TrackerConfig(**{field: value})


def test_kalman_learns_constant_velocity() -> None:
    kf = KalmanBoxFilter(moving_box(0)[0])
    for t in range(1, 10):
        kf.predict()
        kf.update(moving_box(t)[0])
    for _ in range(10, 14):
        kf.predict()
    assert np.allclose(kf.box, moving_box(13)[0], atol=3.0)
    assert np.allclose(kf.velocity[:2], [6, 2], atol=0.5)


def test_kalman_keeps_width_and_height_positive() -> None:
    kf = KalmanBoxFilter([0, 0, 100, 100])
    for t in range(1, 8):  # a box shrinking fast, then predicted far ahead
        kf.predict()
        kf.update([0, 0, 100 - 14 * t, 100 - 14 * t])
    for _ in range(30):
        kf.predict()
        assert kf.box[2] - kf.box[0] >= 1.0
        assert kf.box[3] - kf.box[1] >= 1.0


# ------------------------------------------------------------------------------------------------
# FaceTracker


def test_tracker_covers_the_frames_the_detector_missed() -> None:
    tracker = FaceTracker(TrackerConfig())
    ids = set()
    for t in range(12):
        out = tracker.update(Detections.empty() if t in (5, 6, 7) else dets(moving_box(t)))
        assert out.tracker_id is not None
        ids |= set(out.tracker_id.tolist())
        assert len(out) == 1
        if t in (5, 6, 7):
            assert sources(out) == ["tracked"]
            assert box_iou(out.xyxy, moving_box(t))[0, 0] >= 0.5
            assert 0 < out.confidence[0] < 0.9
        else:
            assert sources(out) == ["detected"]
    assert ids == {1}


def test_held_boxes_grow_each_frame_without_detection() -> None:
    tracker = FaceTracker(TrackerConfig(margin_growth=0.1))
    for _ in range(5):
        tracker.update(dets([[100, 100, 150, 150]]))
    widths = [float(tracker.update(Detections.empty()).width[0]) for _ in range(3)]
    assert widths == pytest.approx([60, 70, 80], abs=1.0)


def test_new_face_is_hidden_from_its_first_frame() -> None:
    tracker = FaceTracker()
    for t in range(5):
        tracker.update(dets(moving_box(t)))
    newcomer = [[250, 10, 290, 60]]
    out = tracker.update(dets(np.vstack([moving_box(5), newcomer]), score=0.3))
    assert np.array_equal(out.xyxy[1], np.asarray(newcomer[0], np.float32))
    assert sources(out) == ["detected", "detected"]
    assert out.tracker_id is not None
    assert out.tracker_id.tolist() == [1, 2]
    assert tracker.track_count == 2


def test_track_stops_after_hold_frames_without_detection() -> None:
    tracker = FaceTracker(TrackerConfig(hold=3))
    tracker.update(dets([[10, 10, 50, 50]]))
    held = [len(tracker.update(Detections.empty())) for _ in range(5)]
    assert held == [1, 1, 1, 0, 0]
    assert tracker.track_count == 0
    out = tracker.update(dets([[10, 10, 50, 50]]))  # the face comes back: a new track
    assert out.tracker_id is not None
    assert out.tracker_id.tolist() == [2]


def test_reset_forgets_tracks_and_ids() -> None:
    tracker = FaceTracker()
    tracker.update(dets([[10, 10, 50, 50], [100, 10, 150, 60]]))
    tracker.reset()
    assert tracker.track_count == 0
    out = tracker.update(Detections.empty())
    assert len(out) == 0
    assert out.tracker_id is not None
    assert out.data["source"].dtype.kind == "U"
    out = tracker.update(dets([[10, 10, 50, 50]]))
    assert out.tracker_id is not None
    assert out.tracker_id.tolist() == [1]


def test_crossing_faces_mostly_keep_distinct_ids() -> None:
    rng = np.random.default_rng(3)
    tracker = FaceTracker()
    kept, frames = 0, 40
    for t in range(frames):
        a = moving_box(t, x0=10, y0=50, vx=7, vy=0)
        b = moving_box(t, x0=290, y0=70, vx=-7, vy=0)
        noisy = np.vstack([a, b]) + rng.normal(0, 1.0, (2, 4)).astype(np.float32)
        out = tracker.update(dets(noisy))
        assert out.tracker_id is not None
        ids = out.tracker_id[:2].tolist()
        assert ids[0] != ids[1]
        kept += ids == [1, 2]
    assert kept >= 0.8 * frames


def test_strong_detections_are_associated_first() -> None:
    tracker = FaceTracker()
    tracker.update(dets([[100, 100, 200, 200]]))
    weak = dets([[100, 100, 200, 200]], score=0.2)
    strong = dets([[140, 100, 240, 200]], score=0.9)
    out = tracker.update(Detections.merge([weak, strong]))
    assert out.tracker_id is not None
    assert out.tracker_id.tolist() == [2, 1]  # the strong one continues the track


def test_held_rows_keep_landmarks_on_the_face() -> None:
    tracker = FaceTracker(TrackerConfig(margin_growth=0.0))
    points = np.array([[[110, 120], [140, 120]]], np.float32)
    tracker.update(dets([[100, 100, 150, 150]], landmarks=points))
    out = tracker.update(Detections.empty())
    assert out.landmarks is not None
    assert np.allclose(out.landmarks, points, atol=1.0)


@pytest.mark.parametrize("seed", range(6))
def test_detections_are_never_removed_nor_changed(seed: int) -> None:
    tracker = FaceTracker(TrackerConfig(hold=int(seed % 3) * 4))
    for found in random_sequence(seed):
        found = Detections(found.xyxy, found.confidence, data={"note": np.arange(len(found))})
        out = tracker.update(found)
        n = len(found)
        assert np.array_equal(out.xyxy[:n], found.xyxy)
        assert np.array_equal(out.confidence[:n], found.confidence)
        assert sources(out).count("detected") == n
        assert set(sources(out)[n:]) <= {"tracked"}
        assert out.tracker_id is not None
        assert len(set(out.tracker_id[:n].tolist())) == n
        assert len(set(out.tracker_id.tolist())) == len(out)  # one row per track


# ------------------------------------------------------------------------------------------------
# Backfill


def test_backfill_interpolates_a_gap_between_two_detections() -> None:
    sequence = [Detections.empty() if 3 <= t <= 6 else dets(moving_box(t)) for t in range(10)]
    _, released = run_files(sequence, TrackerConfig())
    for index, found in released:
        filled = rows_of(found, "filled")
        if 3 <= index <= 6:
            assert len(filled) == 1
            assert np.allclose(filled.xyxy, moving_box(index), atol=1e-3)
            assert filled.tracker_id is not None
            assert filled.tracker_id.tolist() == [1]
            assert len(rows_of(found, "tracked")) == 1  # the tracked box is kept too (union)
        else:
            assert len(filled) == 0


def test_backfill_links_a_face_whose_track_was_dropped() -> None:
    sequence = [Detections.empty() if 3 <= t <= 10 else dets(moving_box(t, vx=2)) for t in range(14)]
    _, released = run_files(sequence, TrackerConfig(hold=2, lookback=0))
    for index, found in released:
        if 3 <= index <= 10:
            filled = rows_of(found, "filled")
            assert len(filled) == 1
            assert np.allclose(filled.xyxy, moving_box(index, vx=2), atol=1e-3)


def test_backfill_leaves_gaps_longer_than_max_gap() -> None:
    sequence = [Detections.empty() if 3 <= t <= 8 else dets(moving_box(t)) for t in range(12)]
    _, released = run_files(sequence, TrackerConfig(max_gap=6))  # 2 -> 9 is a gap of 7
    assert all(len(rows_of(found, "filled")) == 0 for _, found in released)


@pytest.mark.parametrize(("max_gap", "lookback"), [(5, 0), (2, 7)])
def test_the_longest_fills_still_reach_frames_not_yet_released(max_gap: int, lookback: int) -> None:
    config = TrackerConfig(max_gap=max_gap, lookback=lookback, hold=0)
    box = [[50, 50, 90, 100]]
    detected_at = {1, 1 + max_gap, 1 + max_gap + lookback + 1}
    sequence = [dets(box) if t in detected_at else Detections.empty() for t in range(20)]
    _, released = run_files(sequence, config)
    last_birth = 1 + max_gap + lookback + 1
    for index, found in released:
        if 1 < index < 1 + max_gap or last_birth - lookback <= index < last_birth:
            assert "filled" in sources(found), index
            assert np.array_equal(found.xyxy, np.repeat(np.asarray(box, np.float32), len(found), 0))


def test_lookback_hides_the_frames_before_a_birth() -> None:
    first = [[100, 100, 140, 150]]
    sequence = [Detections.empty() if t < 10 else dets(first) for t in range(14)]
    _, released = run_files(sequence, TrackerConfig(lookback=6))
    for index, found in released:
        if 4 <= index <= 9:
            assert sources(found) == ["filled"]
            assert np.array_equal(found.xyxy, np.asarray(first, np.float32))
        elif index < 4:
            assert len(found) == 0


@pytest.mark.parametrize(
    ("seed", "max_gap", "lookback"), [(0, 30, 6), (1, 5, 10), (2, 0, 0), (3, 2, 1), (4, 8, 3)]
)
def test_backfill_returns_every_frame_once_in_order_as_a_superset(
    seed: int, max_gap: int, lookback: int
) -> None:
    config = TrackerConfig(max_gap=max_gap, lookback=lookback, hold=seed % 3)
    sequence = random_sequence(seed, frames=60)
    tracked, released = run_files(sequence, config)
    assert [index for index, _ in released] == list(range(len(sequence)))
    for (_, found), original in zip(released, tracked, strict=True):
        n = len(original)
        assert np.array_equal(found.xyxy[:n], original.xyxy)
        assert sources(found)[:n] == sources(original)
        assert set(sources(found)[n:]) <= {"filled"}


def test_backfill_buffer_is_bounded_and_frames_come_out_as_soon_as_final() -> None:
    config = TrackerConfig(max_gap=5, lookback=2)
    backfill = Backfill(config)
    assert backfill.capacity == 6
    out_at = {}
    for index in range(100):
        for done, _ in backfill.push(index, Detections.empty()):
            out_at[done] = index
        assert len(backfill) <= backfill.capacity
    # no face was ever seen: only a face first detected at frame 100 could reach back (2 frames)
    assert len(backfill) == 2
    assert all(out_at[i] - i == 2 for i in out_at)


class _FixedDelayBackfill(Backfill):
    """The plain rule: hold every frame max(max_gap - 1, lookback) frames, whatever happens."""

    def _settled(self, frame: int) -> int:
        return frame - self._delay


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("max_gap", "lookback", "every"), [(30, 6, 4), (5, 2, 1), (8, 3, 3)])
def test_backfill_releasing_early_changes_no_region(
    seed: int, max_gap: int, lookback: int, every: int
) -> None:
    config = TrackerConfig(max_gap=max_gap, lookback=lookback)
    sequence = [d if i % every == 0 else Detections.empty() for i, d in enumerate(random_sequence(seed, 90))]
    tracked = []
    tracker = FaceTracker(config)
    for found in sequence:
        tracked.append(tracker.update(found))
    early, fixed = Backfill(config), _FixedDelayBackfill(config)
    got, want = [], []
    held_early, held_fixed = 0, 0
    for index, regions in enumerate(tracked):
        got += early.push(index, regions)
        want += fixed.push(index, regions)
        held_early, held_fixed = held_early + early.pending, held_fixed + fixed.pending
    got += early.flush()
    want += fixed.flush()
    assert [i for i, _ in got] == [i for i, _ in want] == list(range(len(sequence)))
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert np.array_equal(a.xyxy, b.xyxy) and sources(a) == sources(b)
    assert held_early <= held_fixed


def test_backfill_holds_frames_while_a_face_is_lost() -> None:
    config = TrackerConfig(max_gap=10, lookback=2, hold=0)
    tracker, backfill = FaceTracker(config), Backfill(config)
    face = Detections(np.array([[10, 10, 50, 50]], np.float32), np.array([0.9], np.float32))
    pending = []
    for index in range(30):
        found = face if index < 5 or index == 12 else Detections.empty()
        backfill.push(index, tracker.update(found))
        pending.append(backfill.pending)
    assert pending[3] == 2  # seen at 3: frames 2..3 wait for the look-back only
    assert pending[11] == 7  # lost after 4: frames 5..11 wait, a detection may still fill them
    # found again at 12 (a new track linked to the lost one, the gap filled); once the old track
    # is out of reach (frame 14), everything up to the look-back is released
    assert pending[14] == 2


def test_backfill_refuses_frames_out_of_order() -> None:
    backfill = Backfill()
    backfill.push(0, Detections.empty())
    with pytest.raises(ValueError, match="expected frame 1"):
        backfill.push(2, Detections.empty())


# ------------------------------------------------------------------------------------------------
# real face tracks (YouTube Faces): detector misses simulated by dropping every 3rd frame


def test_real_tracks_stay_covered_when_every_third_detection_is_missed(shared_data: Path) -> None:
    sequences = json.loads((shared_data / "ytf_tracks" / "tracks.json").read_text())
    assert len(sequences) == 4
    width, height = 320, 240
    for sequence in sequences:
        truth = [np.asarray(f["boxes"], np.float32).reshape(-1, 4) for f in sequence["frames"]]
        shown = [Detections.empty() if i % 3 == 2 else dets(boxes) for i, boxes in enumerate(truth)]
        _, released = run_files(shown, TrackerConfig())
        assert [i for i, _ in released] == list(range(len(truth)))
        for index, found in released:
            hidden = union_mask(build_regions(found.xyxy, 1.3, "ellipse", width, height), width, height)
            covered = coverage(hidden, truth[index])
            assert covered.min() >= 0.7, f"{sequence['sequence']} frame {index}: {covered.min():.2f}"


# ------------------------------------------------------------------------------------------------
# the vectorised tracker and fill give exactly what the row-by-row ones gave


#: digests of the row-by-row tracker and fill (before they were vectorised) on the two inputs below
GOLDEN_CROWD = ("7b294abff5ee06b8", "b5751c0ae4f9f6d2")
GOLDEN_YTF = [
    ("fdc975a8c1025444", "1e31055693e657da"),
    ("8389bc4daafe591a", "c6f567d1d6892d85"),
    ("41ec445165e85dd2", "f949489256a24c69"),
    ("704e144fdc147652", "4d0e31311c61694a"),
]


def crowd_sequence(seed: int, frames: int = 160, faces: int = 14) -> list[Detections]:
    """A crowd: faces entering and leaving, moving, often missed, some weak, with landmarks and
    an extra data column; detection every other frame like a video job's ``detect_every``."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 600, (faces, 2))
    speed = rng.uniform(-4, 4, (faces, 2))
    size = rng.uniform(12, 90, faces)
    born = rng.integers(0, frames // 2, faces)
    gone = born + rng.integers(10, frames, faces)
    points = rng.uniform(0.2, 0.8, (faces, 5, 2)).astype(np.float32)
    sequence = []
    for t in range(frames):
        rows = [f for f in range(faces) if born[f] <= t < gone[f] and rng.uniform() > 0.35]
        if t % 2 or not rows:
            sequence.append(Detections.empty())
            continue
        corner = start[rows] + speed[rows] * t + rng.normal(0, 1.5, (len(rows), 2))
        side = (size[rows] * rng.uniform(0.9, 1.1, len(rows)))[:, None]
        xyxy = np.hstack([corner, corner + side]).astype(np.float32)
        landmarks = xyxy[:, None, :2] + points[rows] * side[:, None, :].astype(np.float32)
        scores = rng.uniform(0.2, 1.0, len(rows)).astype(np.float32)
        kind = np.asarray(["near" if s > 40 else "far" for s in side[:, 0]], dtype="<U8")  # wider than needed
        sequence.append(Detections(xyxy, scores, landmarks, data={"kind": kind}))
    return sequence


def digest(outputs: list[Detections]) -> str:
    """One hash over every row (boxes to 1/1000 px, scores to 1e-5) and column of ``outputs``."""
    text = []
    for found in outputs:
        landmarks = None if found.landmarks is None else np.round(found.landmarks, 3).tolist()
        ids = None if found.tracker_id is None else found.tracker_id.tolist()
        data = {key: [str(v.dtype), v.tolist()] for key, v in found.data.items()}
        boxes, scores = np.round(found.xyxy, 3).tolist(), np.round(found.confidence, 5).tolist()
        text.append(json.dumps([boxes, scores, landmarks, ids, data], sort_keys=True))
    return hashlib.sha256("\n".join(text).encode()).hexdigest()[:16]


def test_tracking_output_is_the_row_by_row_output() -> None:
    # digests of the row-by-row implementation (one validated Detections per row), which the
    # vectorised one replaced: same rows, same order, same columns, same numbers
    tracked, released = run_files(crowd_sequence(7), TrackerConfig())
    assert [i for i, _ in released] == list(range(len(tracked)))
    assert (digest(tracked), digest([r for _, r in released])) == GOLDEN_CROWD


def test_tracking_output_on_real_tracks_is_the_row_by_row_output(shared_data: Path) -> None:
    sequences = json.loads((shared_data / "ytf_tracks" / "tracks.json").read_text())
    found = []
    for sequence in sequences:
        truth = [np.asarray(f["boxes"], np.float32).reshape(-1, 4) for f in sequence["frames"]]
        shown = [Detections.empty() if i % 4 else dets(b, 0.3 + 0.1 * (i % 7)) for i, b in enumerate(truth)]
        tracked, released = run_files(shown, TrackerConfig(max_gap=6))
        found.append((digest(tracked), digest([r for _, r in released])))
    assert found == GOLDEN_YTF
