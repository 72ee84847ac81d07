"""Tests of hiding faces: regions, the four filters, outlines and the Anonymizer, on noise images."""

from __future__ import annotations

from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from faceveil.anonymize.anonymizer import Anonymizer, Result
from faceveil.anonymize.regions import build_regions, ellipse_mask, merge_overlapping, union_mask
from faceveil.config import AnonymizerConfig, MaskConfig
from faceveil.core.detections import Detections
from faceveil.core.frame import Frame
from faceveil.detection.fake import FakeDetector, boxes
from faceveil.errors import ConfigError, ValidationError

RGB = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]
MODES = ["blur", "pixelate", "solid", "none"]
SHAPES = ["ellipse", "box"]
MAGENTA = (255, 0, 255)
GREEN = (0, 255, 0)


def noise(height: int, width: int, seed: int = 0) -> RGB:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def anonymizer(*faces: Box, **mask: Any) -> Anonymizer:
    detector = FakeDetector(boxes(*faces)) if faces else FakeDetector()
    mask.setdefault("min_margin", 0.0)  # exact scale/shape geometry; the margin has its own test
    return Anonymizer(AnonymizerConfig(mask=MaskConfig(**mask)), detector=detector)


def run(image: RGB, *faces: Box, **mask: Any) -> tuple[Result, npt.NDArray[np.bool_]]:
    """Apply an Anonymizer with a FakeDetector; also return the union of the hidden regions."""
    result = anonymizer(*faces, **mask).apply(image)
    height, width = image.shape[:2]
    return result, union_mask(result.regions, width, height)


def changed(a: RGB, b: RGB) -> npt.NDArray[np.bool_]:
    """Pixels where any channel differs."""
    return cast(npt.NDArray[np.bool_], np.any(a != b, axis=2))


# fractional boxes: the first one's scaled left edge is at x = 24.89 (fraction > 0.5)
FACES: tuple[Box, ...] = ((30.8, 30.9, 70.2, 80.4), (100.0, 20.0, 140.0, 60.0))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", MODES)
def test_only_regions_change(mode: str, shape: str) -> None:
    image = noise(120, 160)
    original = image.copy()
    result, hidden = run(image, *FACES, mode=mode, shape=shape, color=MAGENTA)

    assert result.image.shape == image.shape
    assert result.image.dtype == np.uint8
    assert result.faces == 2
    assert len(result.regions) == 2
    assert hidden.sum() > 2000
    # (a) outside the hidden regions nothing changed, byte for byte
    np.testing.assert_array_equal(result.image[~hidden], original[~hidden])
    # (b) inside, every real filter changed (nearly) every noise pixel; "none" changed nothing
    share = changed(result.image, original)[hidden].mean()
    if mode == "none":
        assert share == 0.0
    else:
        assert share > 0.95
    # (c) the input is untouched and the result is a new array
    np.testing.assert_array_equal(image, original)
    assert not np.shares_memory(result.image, image)


@pytest.mark.parametrize("shape", SHAPES)
def test_solid_fills_exactly_the_colour(shape: str) -> None:
    image = noise(120, 160)
    result, hidden = run(image, *FACES, mode="solid", shape=shape, color=MAGENTA)
    assert np.all(result.image[hidden] == MAGENTA)
    assert not np.any(np.all(result.image[~hidden] != image[~hidden], axis=1))


def test_pixelate_cells_are_means_of_their_pixels() -> None:
    image = noise(100, 100, seed=3)
    # scale 1: the region is the box (16, 24)-(80, 88), 64 px = 8 cells of 8 px
    result, hidden = run(image, (16, 24, 80, 88), mode="pixelate", shape="box", scale=1.0, cells=8)
    assert result.regions[0].window == (16, 24, 80, 88)
    crop = image[24:88, 16:80].astype(np.float64)
    means = np.rint(crop.reshape(8, 8, 8, 8, 3).mean(axis=(1, 3))).astype(np.uint8)
    expected = np.repeat(np.repeat(means, 8, axis=0), 8, axis=1)
    np.testing.assert_array_equal(result.image[24:88, 16:80], expected)
    cells = result.image[24:88, 16:80].reshape(8, 8, 8, 8, 3)
    assert np.all(cells == cells[:, :1, :, :1, :])  # every cell is uniform
    np.testing.assert_array_equal(result.image[~hidden], image[~hidden])


def test_pixelate_non_square_region_uses_longer_side() -> None:
    image = noise(100, 100, seed=4)
    # 64 x 32 region, 8 cells along the longer side -> 8 px cells: an 4 x 8 grid
    result, _ = run(image, (10, 20, 74, 52), mode="pixelate", shape="box", scale=1.0, cells=8)
    crop = image[20:52, 10:74].astype(np.float64)
    means = np.rint(crop.reshape(4, 8, 8, 8, 3).mean(axis=(1, 3))).astype(np.uint8)
    expected = np.repeat(np.repeat(means, 8, axis=0), 8, axis=1)
    np.testing.assert_array_equal(result.image[20:52, 10:74], expected)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("box", [(10.7, 10.7, 50.2, 50.2), (10.6, 12.9, 49.5, 47.7), (0.9, 0.8, 30.6, 30.6)])
def test_pixelate_fractional_boxes(box: Box, shape: str) -> None:
    # a box edge with a fraction above 0.5 puts the first pixel's centre before the grid origin
    image = noise(64, 64, seed=5)
    result, hidden = run(image, box, mode="pixelate", shape=shape, scale=1.0)
    np.testing.assert_array_equal(result.image[~hidden], image[~hidden])
    assert changed(result.image, image)[hidden].mean() > 0.95


@pytest.mark.parametrize("shape", SHAPES)
def test_blur_strength_scales_with_face_size(shape: str) -> None:
    image = noise(400, 400, seed=6)
    big, big_mask = run(image, (100, 100, 300, 300), mode="blur", shape=shape)  # sigma 52
    small, small_mask = run(image, (40, 40, 60, 60), mode="blur", shape=shape)  # sigma 5.2
    big_std = float(big.image[big_mask].astype(np.float64).std(axis=0).max())
    small_std = float(small.image[small_mask].astype(np.float64).std(axis=0).max())
    noise_std = float(image.astype(np.float64).std())
    assert noise_std > 70
    assert big_std < 3
    assert small_std < 10
    # a fixed sigma would leave both about equally smooth; a size-relative one smooths more
    assert big_std < small_std / 2
    weak, weak_mask = run(image, (100, 100, 300, 300), mode="blur", shape=shape, blur_strength=0.01)
    assert float(weak.image[weak_mask].astype(np.float64).std(axis=0).max()) > 2 * big_std


def test_box_shape_covers_full_scaled_window() -> None:
    image = noise(120, 120)
    # (40, 30)-(80, 90) scaled by 1.3 about (60, 60): (34, 21)-(86, 99)
    result, hidden = run(image, (40, 30, 80, 90), mode="solid", shape="box", color=MAGENTA)
    region = result.regions[0]
    assert region.window == (34, 21, 86, 99)
    assert region.box == pytest.approx((34, 21, 86, 99))
    expected = np.zeros((120, 120), bool)
    expected[21:99, 34:86] = True
    np.testing.assert_array_equal(hidden, expected)
    np.testing.assert_array_equal(changed(result.image, image), expected)


def test_ellipse_covers_less_than_box_but_the_centre() -> None:
    image = noise(120, 120)
    _, box_mask = run(image, (40, 30, 80, 90), mode="solid", shape="box")
    result, hidden = run(image, (40, 30, 80, 90), mode="solid", shape="ellipse")
    assert result.regions[0].window == (34, 21, 86, 99)
    assert not np.any(hidden & ~box_mask)
    assert hidden.sum() < box_mask.sum()
    assert 0.7 < hidden.sum() / box_mask.sum() < 0.85  # pi / 4 plus the half-pixel margin
    assert hidden[60, 60]
    assert hidden[60, 34] and hidden[60, 85] and hidden[21, 60] and hidden[98, 60]  # the axes' ends
    for y, x in [(21, 34), (21, 85), (98, 34), (98, 85), (25, 38)]:
        assert not hidden[y, x]


def test_ellipse_mask_of_thin_region_has_no_holes() -> None:
    mask = ellipse_mask((10.0, 10.0, 11.0, 30.0), (10, 10, 11, 30))
    assert mask.shape == (20, 1)
    assert mask.all()


@pytest.mark.parametrize(
    ("scale", "window"), [(1.3, (37, 37, 63, 63)), (1.0, (40, 40, 60, 60)), (2.0, (30, 30, 70, 70))]
)
def test_mask_scale_enlarges_about_centre(scale: float, window: tuple[int, int, int, int]) -> None:
    image = noise(100, 100)
    result, hidden = run(image, (40, 40, 60, 60), mode="solid", shape="box", scale=scale, color=MAGENTA)
    assert result.regions[0].window == window
    x1, y1, x2, y2 = window
    assert hidden.sum() == (x2 - x1) * (y2 - y1)
    assert np.all(result.image[y1:y2, x1:x2] == MAGENTA)
    np.testing.assert_array_equal(result.image[~hidden], image[~hidden])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_face_half_outside_is_hidden_up_to_the_border(mode: str, shape: str) -> None:
    image = noise(100, 120)
    # (-20, 30)-(20, 70) scaled by 1.3: (-26, 24)-(26, 76); the visible part is x in [0, 26)
    result, hidden = run(image, (-20, 30, 20, 70), mode=mode, shape=shape, color=MAGENTA)
    region = result.regions[0]
    assert region.window == (0, 24, 26, 76)
    assert region.box[0] == pytest.approx(-26)
    np.testing.assert_array_equal(result.image[~hidden], image[~hidden])
    if shape == "box":
        assert hidden[24:76, 0:26].all()
        assert hidden.sum() == 26 * 52
    else:
        assert hidden[50, 0] and hidden[50, 25]  # the ellipse reaches the border on its axis
    if mode == "solid":
        assert np.all(result.image[hidden] == MAGENTA)
    elif mode != "none":
        assert changed(result.image, image)[hidden].mean() > 0.95


def test_face_entirely_outside_is_skipped() -> None:
    image = noise(100, 150)
    faces = ((-50, -50, -10, -10), (200, 10, 260, 50), (10, 120, 40, 160))
    result, hidden = run(image, *faces, mode="solid", shape="box")
    assert result.faces == 3
    assert result.regions == []
    assert not hidden.any()
    np.testing.assert_array_equal(result.image, image)


def test_build_regions_skips_outside_boxes() -> None:
    xyxy = np.array([[-50, -50, -10, -10], [10, 10, 20, 20], [100, 0, 120, 10]], np.float32)
    regions = build_regions(xyxy, 1.0, "box", 100, 50, min_margin=0.0)
    assert [r.window for r in regions] == [(10, 10, 20, 20)]
    assert regions[0].size == 10
    assert build_regions(np.zeros((0, 4), np.float32), 1.3, "ellipse", 10, 10) == []


def _green(image: RGB) -> npt.NDArray[np.bool_]:
    return cast(npt.NDArray[np.bool_], np.all(image == GREEN, axis=2))


@pytest.mark.parametrize(("size", "thickness"), [(1000, 2), (1280, 2), (1281, 3), (2000, 3)])
def test_outline_thickness_depends_on_image_size(size: int, thickness: int) -> None:
    image = np.zeros((size, size, 3), np.uint8)
    face = (size * 0.4, size * 0.4, size * 0.6, size * 0.6)
    result, hidden = run(image, face, mode="none", shape="box", scale=1.0, outline=True)
    x1, y1, x2, y2 = (round(v) for v in result.regions[0].box)
    expected = cv2.rectangle(np.zeros_like(image), (x1, y1), (x2, y2), GREEN, thickness)
    np.testing.assert_array_equal(result.image, expected)
    assert _green(result.image)[~hidden].any()  # the outline is visible around the region


def test_outline_is_thicker_on_large_images() -> None:
    def stroke(size: int) -> int:
        image = np.zeros((size, size, 3), np.uint8)
        face = (size * 0.4, size * 0.4, size * 0.6, size * 0.6)
        result, _ = run(image, face, mode="none", shape="box", scale=1.0, outline=True)
        row = _green(result.image)[size // 2]
        return int(row[: size // 2].sum())  # the left edge crossed by the middle row

    assert 0 < stroke(1000) < stroke(2000)


def test_ellipse_outline_and_no_outline() -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    plain, _ = run(image, (60, 60, 140, 140), mode="none", shape="ellipse")
    assert not _green(plain.image).any()
    result, hidden = run(image, (60, 60, 140, 140), mode="none", shape="ellipse", outline=True)
    drawn = np.any(result.image != 0, axis=2)
    assert _green(result.image).sum() > 100
    assert not drawn[100, 100]  # nothing inside
    assert drawn[100, 47:53].any() and drawn[100, 147:153].any()  # the ellipse at x = 48 and 152
    assert not drawn[:40].any() and not drawn[:, :40].any()  # nothing far away
    assert hidden[100, 100]


def test_outline_follows_the_filter() -> None:
    image = noise(200, 200)
    result, _ = run(image, (60, 60, 140, 140), mode="solid", shape="box", scale=1.0, outline=True)
    green = _green(result.image)
    assert green[100, 59:62].all()  # the stroke sits on the region's edge x = 60
    assert np.all(result.image[70:130, 70:130] == (0, 0, 0))  # solid black inside


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10, 3), np.float32),
        np.zeros((10, 10, 3), np.uint16),
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((10,), np.uint8),
        [[[0, 0, 0]]],
    ],
)
def test_rejects_bad_images(bad: Any) -> None:
    detector = FakeDetector(boxes((1, 1, 5, 5)))
    anon = Anonymizer(AnonymizerConfig(mask=MaskConfig(mode="blur")), detector=detector)
    with pytest.raises(ValidationError, match="uint8"):
        anon.apply(bad)
    with pytest.raises(ValidationError):
        anon.hide(bad, boxes((1, 1, 5, 5)))
    assert detector.calls == []


def test_hide_uses_given_detections_without_detecting() -> None:
    image = noise(80, 80)
    detector = FakeDetector(boxes((0, 0, 80, 80)))
    anon = Anonymizer(
        AnonymizerConfig(mask=MaskConfig(mode="solid", shape="box", scale=1.0, min_margin=0.0)),
        detector=detector,
    )
    given = boxes((10, 10, 30, 30))
    result = anon.hide(image, given)
    assert detector.calls == []
    assert result.detections is given
    assert [r.window for r in result.regions] == [(10, 10, 30, 30)]
    assert np.all(result.image[10:30, 10:30] == 0)
    np.testing.assert_array_equal(result.image[40:], image[40:])
    empty = anon.hide(image, Detections.empty())
    np.testing.assert_array_equal(empty.image, image)
    assert detector.calls == []


def test_apply_calls_detector_once_and_accepts_frames() -> None:
    image = noise(60, 90)
    detector = FakeDetector(boxes((10, 10, 30, 30)))
    anon = Anonymizer(AnonymizerConfig(mask=MaskConfig(mode="solid", shape="box")), detector=detector)
    result = anon.apply(Frame(image, index=4))
    assert detector.calls == [(60, 90)]
    assert result.faces == 1
    assert len(anon.detect(image)) == 1
    assert detector.calls == [(60, 90), (60, 90)]


def test_min_margin_widens_small_regions_only() -> None:
    tiny = build_regions(np.asarray([[50, 50, 56, 56]], np.float32), 1.3, "box", 200, 200)
    assert tiny[0].window == (48, 48, 58, 58)  # 2 px on every side beats 1.3x (0.9 px)
    large = build_regions(np.asarray([[50, 50, 150, 150]], np.float32), 1.3, "box", 200, 200)
    assert large[0].window == (35, 35, 165, 165)  # 1.3x (15 px) beats 2 px
    with pytest.raises(ConfigError, match="margin"):
        MaskConfig(min_margin=-1)


def test_overlapping_regions_merge_without_losing_a_pixel() -> None:
    """The same face seen twice (a tracked and a filled box) becomes one region; a neighbour that
    only touches it stays apart; the union of the hidden pixels is exactly the same."""
    rng = np.random.default_rng(3)
    faces = [(100.0, 100.0, 160.0, 170.0), (104.0, 98.0, 166.0, 172.0), (150.0, 100.0, 210.0, 170.0)]
    faces += [(x, y, x + s, y + s) for x, y, s in rng.uniform([0, 0, 10], [500, 300, 120], (40, 3))]
    regions = build_regions(np.asarray(faces, np.float32), 1.3, "ellipse", 640, 480)
    merged = merge_overlapping(regions)
    assert len(merged) < len(regions)
    assert np.array_equal(union_mask(merged, 640, 480), union_mask(regions, 640, 480))
    for region in regions:  # each region lies in one merged region at least as large (the blur's sigma)
        x1, y1, x2, y2 = region.window
        holders = [
            m
            for m in merged
            if m.window[0] <= x1 and m.window[1] <= y1 and m.window[2] >= x2 and m.window[3] >= y2
        ]
        assert any(m.size >= region.size for m in holders)
    first_two = merge_overlapping(regions[:3])
    assert len(first_two) == 2  # the duplicate pair is one; the third overlaps it by less than half
    assert first_two[0] is regions[2]


def test_a_face_given_twice_is_blurred_once_and_fully() -> None:
    image = noise(300, 300, seed=9)
    face: Box = (100, 100, 180, 190)
    twice, mask = run(image, face, (102, 99, 183, 192), mode="blur")
    once, _ = run(image, (100, 99, 183, 192), mode="blur")
    assert np.all(changed(image, twice.image)[mask])
    assert not changed(image, twice.image)[~mask].any()
    assert float(twice.image[mask].astype(np.float64).std(axis=0).max()) < 20
    # blurred once over the union, not a second time over the first blur
    assert np.abs(twice.image.astype(int) - once.image.astype(int))[mask].mean() < 3
