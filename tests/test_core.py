"""Tests of the core types (Detections, Frame), box geometry, box fusion and configuration."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any, cast

import numpy as np
import pytest

from faceveil.config import (
    AnonymizerConfig,
    DetectorConfig,
    ImageIOConfig,
    MaskConfig,
    check_choice,
    parse_color,
)
from faceveil.core.detections import Detections
from faceveil.core.frame import Frame
from faceveil.core.geometry import box_area, box_iou, clip_boxes, intersection, nms, scale_boxes
from faceveil.detection.compose import fuse, union
from faceveil.detection.fake import boxes
from faceveil.errors import ConfigError, FaceveilError, ValidationError


def make(**fields: Any) -> Detections:
    """`Detections` from plain lists or arrays of any dtype (the constructor converts them)."""
    return Detections(**fields)


def _dets(n: int = 3, k: int | None = 5, tracked: bool = False) -> Detections:
    """``n`` boxes ``(10i, 10i, 10i + 5, 10i + 8)`` with scores ``0.1 * (i + 1)``."""
    xyxy = np.array([[10 * i, 10 * i, 10 * i + 5, 10 * i + 8] for i in range(n)], np.float32)
    landmarks = None if k is None else np.arange(n * k * 2, dtype=np.float32).reshape(n, k, 2)
    return Detections(
        xyxy=xyxy,
        confidence=np.array([0.1 * (i + 1) for i in range(n)], np.float32),
        landmarks=landmarks,
        tracker_id=np.arange(100, 100 + n) if tracked else None,
        data={"source": np.array([f"s{i}" for i in range(n)])},
    )


# ------------------------------------------------------------------------------------------------
# Detections: validation


def test_valid_detections_are_normalised_to_float32() -> None:
    dets = make(xyxy=[[1, 2, 3, 4]], confidence=[0.5], tracker_id=np.array([7], np.int32))
    assert dets.xyxy.dtype == np.float32
    assert dets.xyxy.shape == (1, 4)
    assert dets.confidence.dtype == np.float32
    assert dets.tracker_id is not None
    assert dets.tracker_id.dtype == np.int64
    assert len(dets) == 1


@pytest.mark.parametrize(
    "xyxy",
    [
        np.zeros((2, 3), np.float32),  # 3 columns
        np.zeros((2, 4, 1), np.float32),  # 3 dimensions
        np.zeros(4, np.float32),  # 1-D
    ],
)
def test_wrong_box_shape_is_rejected(xyxy: np.ndarray[Any, Any]) -> None:
    with pytest.raises(ValidationError, match="xyxy must have shape"):
        make(xyxy=xyxy, confidence=np.zeros(len(xyxy), np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_box_is_rejected(bad: float) -> None:
    with pytest.raises(ValidationError, match="finite"):
        make(xyxy=[[0, 0, bad, 10]], confidence=[0.5])


def test_confidence_length_mismatch_is_rejected() -> None:
    with pytest.raises(ValidationError, match="confidence must have shape"):
        make(xyxy=[[0, 0, 1, 1], [0, 0, 2, 2]], confidence=[0.5])


@pytest.mark.parametrize("score", [-0.01, 1.01, np.nan])
def test_confidence_outside_unit_interval_is_rejected(score: float) -> None:
    with pytest.raises(ValidationError, match=r"\[0, 1\]"):
        make(xyxy=[[0, 0, 1, 1]], confidence=[score])


def test_confidence_bounds_are_accepted() -> None:
    dets = make(xyxy=[[0, 0, 1, 1], [0, 0, 2, 2]], confidence=[0.0, 1.0])
    assert dets.confidence.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("box", [[10, 0, 5, 10], [0, 10, 10, 5]])
def test_inverted_box_is_rejected(box: list[float]) -> None:
    with pytest.raises(ValidationError, match="x1 <= x2"):
        make(xyxy=[box], confidence=[0.5])


def test_degenerate_box_is_accepted() -> None:
    assert len(make(xyxy=[[5, 5, 5, 5]], confidence=[0.5])) == 1


@pytest.mark.parametrize("shape", [(2, 5, 3), (3, 5, 2), (2, 10), (2,)])
def test_wrong_landmark_shape_is_rejected(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValidationError, match="landmarks must have shape"):
        make(xyxy=[[0, 0, 1, 1], [0, 0, 2, 2]], confidence=[0.5, 0.5], landmarks=np.ones(shape))


@pytest.mark.parametrize(
    "tracker_id",
    [np.array([1.0, 2.0]), np.array([1.5, 2.5]), np.array(["a", "b"]), np.array([1, 2, 3])],
)
def test_bad_tracker_id_is_rejected(tracker_id: np.ndarray[Any, Any]) -> None:
    with pytest.raises(ValidationError, match="tracker_id"):
        make(xyxy=[[0, 0, 1, 1], [0, 0, 2, 2]], confidence=[0.5, 0.5], tracker_id=tracker_id)


@pytest.mark.parametrize("value", [np.array([1, 2, 3]), np.array(1), np.array([1])])
def test_data_length_mismatch_is_rejected(value: np.ndarray[Any, Any]) -> None:
    with pytest.raises(ValidationError, match=r"data\['source'\]"):
        make(xyxy=[[0, 0, 1, 1], [0, 0, 2, 2]], confidence=[0.5, 0.5], data={"source": value})


def test_validation_error_belongs_to_the_error_tree() -> None:
    assert issubclass(ValidationError, FaceveilError)
    assert issubclass(ValidationError, ValueError)


# ------------------------------------------------------------------------------------------------
# Detections: construction helpers and selection


def test_empty() -> None:
    dets = Detections.empty()
    assert len(dets) == 0
    assert dets.xyxy.shape == (0, 4)
    assert dets.confidence.shape == (0,)
    assert dets.landmarks is None
    assert dets.tracker_id is None
    assert dets.to_records() == []
    assert list(dets) == []


def test_merge_concatenates_and_keeps_landmarks_with_same_k() -> None:
    a, b = _dets(2, k=5, tracked=True), _dets(3, k=5, tracked=True)
    merged = Detections.merge([a, Detections.empty(), b])
    assert len(merged) == 5
    np.testing.assert_array_equal(merged.xyxy, np.concatenate([a.xyxy, b.xyxy]))
    np.testing.assert_array_equal(merged.confidence, np.concatenate([a.confidence, b.confidence]))
    assert merged.landmarks is not None
    assert merged.landmarks.shape == (5, 5, 2)
    assert merged.tracker_id is not None
    assert merged.tracker_id.tolist() == [100, 101, 100, 101, 102]
    assert merged.data["source"].tolist() == ["s0", "s1", "s0", "s1", "s2"]


@pytest.mark.parametrize(("k_a", "k_b"), [(5, 3), (5, None), (None, 5)])
def test_merge_drops_landmarks_unless_all_parts_have_same_k(k_a: int | None, k_b: int | None) -> None:
    merged = Detections.merge([_dets(2, k=k_a), _dets(3, k=k_b)])
    assert len(merged) == 5
    assert merged.landmarks is None


def test_merge_drops_tracker_id_and_data_not_in_all_parts() -> None:
    a = _dets(2, tracked=True)
    b = make(xyxy=[[0, 0, 1, 1]], confidence=[0.3])
    merged = Detections.merge([a, b])
    assert merged.tracker_id is None
    assert dict(merged.data) == {}


def test_merge_of_nothing_is_empty() -> None:
    assert len(Detections.merge([])) == 0
    assert len(Detections.merge([Detections.empty(), Detections.empty()])) == 0


def test_getitem_int() -> None:
    dets = _dets(3, tracked=True)
    one = dets[1]
    assert isinstance(one, Detections)
    assert len(one) == 1
    np.testing.assert_array_equal(one.xyxy, [[10, 10, 15, 18]])
    assert one.confidence.tolist() == pytest.approx([0.2])
    assert one.landmarks is not None
    assert dets.landmarks is not None
    np.testing.assert_array_equal(one.landmarks[0], dets.landmarks[1])
    assert one.tracker_id is not None
    assert one.tracker_id.tolist() == [101]
    assert one.data["source"].tolist() == ["s1"]
    assert dets[-1].xyxy.tolist() == [[20, 20, 25, 28]]


def test_getitem_numpy_integer() -> None:
    dets = _dets(3)
    keep = nms(dets.xyxy, dets.confidence, 0.5)  # int64 indices, best first
    best = dets[keep[0]]
    assert len(best) == 1
    np.testing.assert_array_equal(best.xyxy, [[20, 20, 25, 28]])


def test_getitem_slice_and_list() -> None:
    dets = _dets(3, tracked=True)
    part = dets[1:]
    assert len(part) == 2
    assert part.data["source"].tolist() == ["s1", "s2"]
    assert part.tracker_id is not None
    assert part.tracker_id.tolist() == [101, 102]
    picked = dets[[2, 0]]
    assert picked.xyxy[:, 0].tolist() == [20, 0]


def test_getitem_bool_mask() -> None:
    dets = _dets(3)
    chosen = dets[np.array([True, False, True])]
    assert len(chosen) == 2
    assert chosen.confidence.tolist() == pytest.approx([0.1, 0.3])
    assert chosen.data["source"].tolist() == ["s0", "s2"]
    assert len(dets[np.zeros(3, bool)]) == 0


def test_width_height() -> None:
    dets = _dets(2)
    assert dets.width.tolist() == [5, 5]
    assert dets.height.tolist() == [8, 8]


def test_transformed_maps_boxes_and_landmarks_back() -> None:
    dets = make(xyxy=[[20, 40, 60, 80]], confidence=[0.9], landmarks=[[[30, 50], [40, 60]]], tracker_id=[3])
    back = dets.transformed(2.0, offset_x=10, offset_y=20)
    np.testing.assert_allclose(back.xyxy, [[20, 40, 40, 60]])
    assert back.landmarks is not None
    np.testing.assert_allclose(back.landmarks, [[[25, 45], [30, 50]]])
    assert back.confidence.tolist() == pytest.approx([0.9])
    assert back.tracker_id is not None
    assert back.tracker_id.tolist() == [3]
    np.testing.assert_array_equal(dets.xyxy, [[20, 40, 60, 80]])  # the original is unchanged


def test_to_records_is_json_ready() -> None:
    dets = make(
        xyxy=[[1.04, 2.06, 3.0, 4.0], [5, 6, 7, 8]],
        confidence=[0.123456, 1.0],
        landmarks=[[[1.26, 2.0]], [[3.0, 4.0]]],
    )
    records = json.loads(json.dumps(dets.to_records()))
    assert records == [
        {"box": [1.0, 2.1, 3.0, 4.0], "score": 0.1235, "landmarks": [[1.3, 2.0]]},
        {"box": [5.0, 6.0, 7.0, 8.0], "score": 1.0, "landmarks": [[3.0, 4.0]]},
    ]
    tracked = make(xyxy=[[0, 0, 1, 1]], confidence=[0.5], tracker_id=[42]).to_records()
    assert tracked == [{"box": [0.0, 0.0, 1.0, 1.0], "score": 0.5, "landmarks": None, "track": 42}]


# ------------------------------------------------------------------------------------------------
# Frame


def test_frame_accepts_rgb_uint8() -> None:
    frame = Frame(np.zeros((4, 6, 3), np.uint8), index=2)
    assert (frame.height, frame.width, frame.index) == (4, 6, 2)
    assert frame.time is None


@pytest.mark.parametrize(
    "rgb",
    [
        np.zeros((4, 6, 3), np.float32),
        np.zeros((4, 6, 3), np.uint16),
        np.zeros((4, 6), np.uint8),
        np.zeros((4, 6, 4), np.uint8),
        np.zeros((0, 6, 3), np.uint8),
        np.zeros((4, 0, 3), np.uint8),
        [[[0, 0, 0]]],
    ],
)
def test_frame_rejects_bad_pixels(rgb: Any) -> None:
    with pytest.raises(ValidationError, match=r"Frame\.rgb"):
        Frame(rgb)


def test_frame_rejects_negative_index() -> None:
    with pytest.raises(ValidationError, match="index"):
        Frame(np.zeros((2, 2, 3), np.uint8), index=-1)


def test_frame_time_is_exact() -> None:
    frame = Frame(np.zeros((2, 2, 3), np.uint8), index=3, pts=3003, time_base=Fraction(1, 30000))
    assert isinstance(frame.time, Fraction)
    assert frame.time == Fraction(1001, 10000)
    ntsc = Frame(np.zeros((2, 2, 3), np.uint8), pts=1, time_base=Fraction(1001, 30000))
    assert ntsc.time == Fraction(1001, 30000)
    assert Frame(np.zeros((2, 2, 3), np.uint8), pts=5).time is None
    assert Frame(np.zeros((2, 2, 3), np.uint8), time_base=Fraction(1, 25)).time is None


# ------------------------------------------------------------------------------------------------
# geometry


def test_scale_boxes_about_centre() -> None:
    out = scale_boxes(np.array([[10, 20, 30, 60]], np.float32), 1.5)
    np.testing.assert_allclose(out, [[5, 10, 35, 70]])
    np.testing.assert_allclose(scale_boxes(np.array([[10, 20, 30, 60]], np.float32), 1.0), [[10, 20, 30, 60]])
    np.testing.assert_allclose(
        scale_boxes(np.array([[0, 0, 10, 10]], np.float32), 0.5), [[2.5, 2.5, 7.5, 7.5]]
    )
    assert scale_boxes(np.zeros((0, 4), np.float32), 1.3).shape == (0, 4)


def test_clip_boxes() -> None:
    xyxy = np.array([[-5, -3, 120, 50], [10, 10, 20, 20]], np.float32)
    out = clip_boxes(xyxy, width=100, height=40)
    np.testing.assert_array_equal(out, [[0, 0, 100, 40], [10, 10, 20, 20]])
    assert xyxy[0, 0] == -5  # the input is not changed


def test_box_area_and_intersection() -> None:
    a = np.array([[0, 0, 10, 10], [5, 5, 5, 9]], np.float32)
    b = np.array([[5, 5, 15, 15]], np.float32)
    np.testing.assert_array_equal(box_area(a), [100, 0])
    np.testing.assert_array_equal(intersection(a, b), [[25], [0]])


def test_box_iou_hand_computed() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array(
        [
            [5, 5, 15, 15],  # inter 25, union 175 -> 1/7
            [0, 0, 10, 10],  # identical -> 1
            [10, 0, 20, 10],  # touching -> 0
            [0, 0, 10, 5],  # inside: inter 50, union 100 -> 0.5
            [2, 2, 4, 4],  # inside: 4 / 100
        ],
        np.float32,
    )
    iou = box_iou(a, b)
    assert iou.shape == (1, 5)
    np.testing.assert_allclose(iou[0], [1 / 7, 1.0, 0.0, 0.5, 0.04], rtol=1e-6)
    zero = np.array([[3, 3, 3, 3]], np.float32)
    assert box_iou(zero, zero).tolist() == [[0.0]]


def test_nms_keeps_best_and_drops_overlaps() -> None:
    xyxy = np.array(
        [
            [1, 0, 11, 10],  # 0.8, IoU 90/110 with the best -> dropped
            [0, 0, 10, 10],  # 0.9, best
            [20, 20, 30, 30],  # 0.7, disjoint -> kept
            [0, 0, 10, 5],  # 0.6, IoU exactly 0.5 with the best -> dropped (>= threshold)
            [20, 20, 30, 29],  # 0.5, IoU 0.9 with index 2 -> dropped
        ],
        np.float32,
    )
    scores = np.array([0.8, 0.9, 0.7, 0.6, 0.5], np.float32)
    keep = nms(xyxy, scores, 0.5)
    assert keep.dtype == np.int64
    assert keep.tolist() == [1, 2]
    assert nms(xyxy, scores, 0.95).tolist() == [1, 0, 2, 3, 4]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []


# ------------------------------------------------------------------------------------------------
# compose.fuse / union


def test_fuse_overlapping_boxes_become_one_enclosing_box() -> None:
    found = make(
        xyxy=[[10, 10, 50, 50], [14, 12, 54, 52], [100, 100, 120, 120]],
        confidence=[0.6, 0.9, 0.3],
    )
    fused = fuse(found)
    assert len(fused) == 2
    np.testing.assert_array_equal(fused.xyxy, [[10, 10, 54, 52], [100, 100, 120, 120]])
    assert fused.confidence.tolist() == pytest.approx([0.9, 0.3])


def test_fuse_keeps_disjoint_boxes_and_absorbs_contained_ones() -> None:
    disjoint = boxes((0, 0, 10, 10), (20, 0, 30, 10), (0, 20, 10, 30))
    assert len(fuse(disjoint)) == 3
    # a weaker box mostly inside the best one (IoU 0.01 < 0.4) still joins it
    nested = make(xyxy=[[10, 10, 20, 20], [0, 0, 100, 100]], confidence=[0.5, 0.95])
    fused = fuse(nested)
    assert len(fused) == 1
    np.testing.assert_array_equal(fused.xyxy, [[0, 0, 100, 100]])
    assert fused.confidence.tolist() == pytest.approx([0.95])
    # a stronger small box is not swallowed by a weaker big one: both stay (both get hidden)
    assert len(fuse(make(xyxy=[[10, 10, 20, 20], [0, 0, 100, 100]], confidence=[0.95, 0.5]))) == 2


def test_union_of_two_models() -> None:
    a = boxes((10, 10, 50, 50), score=0.7)
    b = boxes((12, 8, 52, 48), (200, 200, 240, 240), score=0.8)
    merged = union([a, b])
    assert len(merged) == 2
    np.testing.assert_array_equal(merged.xyxy[0], [10, 8, 52, 50])
    assert merged.confidence.tolist() == pytest.approx([0.8, 0.8])


# ------------------------------------------------------------------------------------------------
# config


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MaskConfig(mode=cast(Any, "smear")), "choose one of: blur, pixelate, solid, none"),
        (lambda: MaskConfig(shape=cast(Any, "circle")), "choose one of: ellipse, box"),
        (lambda: DetectorConfig(device=cast(Any, "gpu")), "choose one of: auto, cpu, cuda"),
    ],
)
def test_invalid_choice_names_valid_choices(build: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    assert message in str(info.value)


def test_check_choice() -> None:
    check_choice("mode", "blur", ("blur", "none"))
    with pytest.raises(ConfigError, match="unknown mode 'x'; choose one of: blur, none"):
        check_choice("mode", "x", ("blur", "none"))


@pytest.mark.parametrize(
    ("text", "rgb"),
    [
        ("ff00ff", (255, 0, 255)),
        ("#FF00fF", (255, 0, 255)),
        (" 102030 ", (16, 32, 48)),
        ("000000", (0, 0, 0)),
    ],
)
def test_parse_color(text: str, rgb: tuple[int, int, int]) -> None:
    assert parse_color(text) == rgb


@pytest.mark.parametrize("text", ["ff00f", "ff00ff0", "gg0000", "", "#", "red", "0xff00"])
def test_parse_color_rejects_bad_colours(text: str) -> None:
    with pytest.raises(ConfigError, match="RRGGBB"):
        parse_color(text)


@pytest.mark.parametrize("scale", [0.5, 1.3, 4.0])
def test_mask_scale_in_range(scale: float) -> None:
    assert MaskConfig(scale=scale).scale == scale


@pytest.mark.parametrize("scale", [0.49, 4.01, 0.0, -1.0])
def test_mask_scale_out_of_range(scale: float) -> None:
    with pytest.raises(ConfigError, match="scale"):
        MaskConfig(scale=scale)


@pytest.mark.parametrize(
    "kwargs",
    [{"color": (256, 0, 0)}, {"color": (-1, 0, 0)}, {"color": (0, 0)}, {"blur_strength": 0.0}, {"cells": 1}],
)
def test_mask_other_ranges(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        MaskConfig(**kwargs)


@pytest.mark.parametrize("threshold", [None, 0.0, 0.5, 1.0])
def test_threshold_in_range(threshold: float | None) -> None:
    assert DetectorConfig(threshold=threshold).threshold == threshold


@pytest.mark.parametrize("threshold", [-0.01, 1.01])
def test_threshold_out_of_range(threshold: float) -> None:
    with pytest.raises(ConfigError, match="threshold"):
        DetectorConfig(threshold=threshold)


def test_defaults_and_image_io_limits() -> None:
    config = AnonymizerConfig()
    assert (config.mask.mode, config.mask.shape, config.mask.scale) == ("blur", "ellipse", 1.3)
    assert config.detector.device == "auto"
    with pytest.raises(ConfigError, match="jpeg_quality"):
        ImageIOConfig(jpeg_quality=0)
    with pytest.raises(ConfigError, match="max_pixels"):
        ImageIOConfig(max_pixels=0)
