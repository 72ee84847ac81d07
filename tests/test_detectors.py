"""The real detectors on real photos (../shared/data): faces found, boxes in original pixels."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from faceveil.anonymize.regions import build_regions
from faceveil.config import DetectorConfig
from faceveil.core.detections import Detections
from faceveil.core.geometry import box_iou
from faceveil.detection import Detector, available_detectors, create_detector
from faceveil.detection.centerface import CenterFace
from faceveil.detection.runtime import choose_providers
from faceveil.errors import ConfigError
from faceveil.media.image_io import read_image

RGB = npt.NDArray[np.uint8]
CENTERFACE_LIKE = ("centerface", "yunet", "fast", "balanced")
BLAZEFACE = ("blazeface", "blazeface-short")
#: Approximate face centres (x, y) in fr_two_people.jpg (1126 x 661), checked by eye.
TWO_PEOPLE_CENTRES = ((310, 125), (866, 155))
#: dlib_voc photos with faces of 60-110 px, each box [x1, y1, x2, y2, ignore].
DLIB_PHOTOS = ("images/2008_001009.jpg", "images/2008_001322.jpg", "images/2008_002506.jpg")


@pytest.fixture(scope="module")
def detectors() -> Iterator[Callable[[str], Detector]]:
    """Build each detector once per module, on first use."""
    built: dict[str, Detector] = {}

    def get(name: str) -> Detector:
        if name not in built:
            built[name] = create_detector(DetectorConfig(name=name))
        return built[name]

    yield get
    for detector in built.values():
        close = getattr(detector, "close", None)
        if close is not None:
            close()


@pytest.fixture(scope="module")
def photos(shared_data: Path) -> Callable[[str], RGB]:
    """Decoded photos of ../shared/data/images, each read once."""
    cache: dict[str, RGB] = {}

    def get(name: str) -> RGB:
        if name not in cache:
            cache[name] = read_image(shared_data / "images" / name).rgb
        return cache[name]

    return get


def check_well_formed(found: Detections, rgb: RGB, landmark_count: int) -> None:
    """Scores in [0, 1]; boxes centred inside the image, spilling over by at most half a box;
    ``(N, K, 2)`` landmarks that lie near their box."""
    height, width = rgb.shape[:2]
    assert found.xyxy.dtype == np.float32
    assert np.all((found.confidence >= 0) & (found.confidence <= 1))
    w, h = found.width, found.height
    assert np.all(w > 0) and np.all(h > 0)
    x1, y1, x2, y2 = found.xyxy.T
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    assert np.all((cx >= 0) & (cx <= width) & (cy >= 0) & (cy <= height)), found.xyxy
    assert np.all((x1 >= -w / 2) & (y1 >= -h / 2) & (x2 <= width + w / 2) & (y2 <= height + h / 2))
    assert found.landmarks is not None
    assert found.landmarks.shape == (len(found), landmark_count, 2)
    for box, points in zip(found.xyxy, found.landmarks, strict=True):
        bw, bh = box[2] - box[0], box[3] - box[1]
        assert np.all(points[:, 0] >= box[0] - bw) and np.all(points[:, 0] <= box[2] + bw)
        assert np.all(points[:, 1] >= box[1] - bh) and np.all(points[:, 1] <= box[3] + bh)


def contains(found: Detections, point: tuple[float, float]) -> bool:
    x, y = point
    x1, y1, x2, y2 = found.xyxy.T
    return bool(np.any((x1 <= x) & (x <= x2) & (y1 <= y) & (y <= y2)))


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*CENTERFACE_LIKE, *BLAZEFACE])
def test_finds_two_people(
    name: str, detectors: Callable[[str], Detector], photos: Callable[[str], RGB]
) -> None:
    rgb = photos("fr_two_people.jpg")
    found = detectors(name).detect(rgb)
    assert len(found) >= 2, found.xyxy
    check_well_formed(found, rgb, 6 if name in BLAZEFACE else 5)
    # boxes are in the photo's own pixels: each real face centre lies inside a detected box
    for centre in TWO_PEOPLE_CENTRES:
        assert contains(found, centre), (centre, found.xyxy)
    # and every confident box is one of the two faces (face-sized, not the whole photo)
    confident = found[found.confidence >= 0.5]
    assert len(confident) == 2
    assert np.all((confident.height > 120) & (confident.height < 320))


@pytest.mark.parametrize("name", BLAZEFACE)
@pytest.mark.parametrize("photo", ["fr_low_res_240p.jpg", "egoblur_gen1_person_portrait.jpg"])
def test_blazeface_close_up(
    name: str, photo: str, detectors: Callable[[str], Detector], photos: Callable[[str], RGB]
) -> None:
    rgb = photos(photo)
    found = detectors(name).detect(rgb)
    assert len(found) >= 1
    check_well_formed(found, rgb, 6)


@pytest.mark.parametrize("name", ["centerface", "yunet"])
def test_boxes_match_dlib_ground_truth(
    name: str, shared_data: Path, detectors: Callable[[str], Detector]
) -> None:
    root = shared_data / "dlib_voc"
    records = {r["image"]: r for r in json.loads((root / "annotations.json").read_text())}
    detector = detectors(name)
    for image in DLIB_PHOTOS:
        rgb = read_image(root / image).rgb
        truth = np.asarray([row[:4] for row in records[image]["boxes"]], np.float32)
        found = detector.detect(rgb)
        check_well_formed(found, rgb, 5)
        assert len(found) >= len(truth)
        best = box_iou(truth, found.xyxy).max(axis=1)
        assert np.all(best >= 0.4), (image, best)


@pytest.mark.parametrize("name", ["centerface", "yunet"])
def test_boxes_follow_upscaled_photo(
    name: str, shared_data: Path, detectors: Callable[[str], Detector]
) -> None:
    """On a 2x copy the boxes are 2x the ground truth: results are in the input's own pixels."""
    root = shared_data / "dlib_voc"
    records = {r["image"]: r for r in json.loads((root / "annotations.json").read_text())}
    image = DLIB_PHOTOS[0]
    rgb = read_image(root / image).rgb
    big = np.asarray(
        cv2.resize(rgb, (rgb.shape[1] * 2, rgb.shape[0] * 2), interpolation=cv2.INTER_LINEAR), np.uint8
    )
    truth = 2 * np.asarray([row[:4] for row in records[image]["boxes"]], np.float32)
    found = detectors(name).detect(big)
    assert len(found) >= len(truth)
    assert np.all(box_iou(truth, found.xyxy).max(axis=1) >= 0.4)


def test_centerface_input_sizes_in_one_session(
    detectors: Callable[[str], Detector], photos: Callable[[str], RGB]
) -> None:
    model = detectors("centerface")
    assert isinstance(model, CenterFace)
    rgb = photos("fr_two_people.jpg")
    height, width = rgb.shape[:2]
    half = np.asarray(cv2.resize(rgb, (width // 2, height // 2), interpolation=cv2.INTER_AREA), np.uint8)
    first = model.detect(rgb)
    small = model.detect(half)
    third = model.detect(rgb)
    assert len(first) >= 2
    np.testing.assert_array_equal(first.xyxy, third.xyxy)
    np.testing.assert_array_equal(first.confidence, third.confidence)
    assert first.landmarks is not None and third.landmarks is not None
    np.testing.assert_array_equal(first.landmarks, third.landmarks)
    # the half-size result, mapped back, finds the same faces
    back = small.transformed(width // 2 / width)
    check_well_formed(small, half, 5)
    strong = first[first.confidence >= 0.5]
    assert len(back) >= len(strong)
    assert np.all(box_iou(strong.xyxy, back.xyxy).max(axis=1) >= 0.5)
    # the scale argument does the same resize internally
    scaled = model.detect(rgb, scale=0.5)
    assert np.all(box_iou(strong.xyxy, scaled.xyxy).max(axis=1) >= 0.5)


def test_balanced_finds_face_cut_by_left_border(
    detectors: Callable[[str], Detector], photos: Callable[[str], RGB]
) -> None:
    rgb = photos("fr_partial_face_left_edge.jpg")
    height, width = rgb.shape[:2]
    found = detectors("balanced").detect(rgb)
    assert len(found) >= 1
    check_well_formed(found, rgb, 5)
    face = found[int(np.argmax(found.confidence))]
    assert float(face.confidence[0]) >= 0.5
    assert float(face.xyxy[0, 0]) <= 5  # the box starts at (or past) the left border
    regions = build_regions(face.xyxy, 1.3, "ellipse", width, height)
    assert len(regions) == 1
    region = regions[0]
    assert region.window[0] == 0  # the hidden region reaches x = 0
    assert region.mask[:, 0].any()  # and so does its ellipse, not just its window


def test_unknown_detector_lists_names() -> None:
    with pytest.raises(ConfigError) as exc:
        create_detector(DetectorConfig(name="no-such-model"))
    message = str(exc.value)
    assert "no-such-model" in message
    for name in available_detectors():
        assert name in message
    assert set(CENTERFACE_LIKE) | set(BLAZEFACE) <= set(available_detectors())


def test_choose_providers_cpu_only() -> None:
    assert choose_providers("cpu") == ["CPUExecutionProvider"]
    auto = choose_providers("auto")
    assert auto[-1] == "CPUExecutionProvider"
    names = [p[0] if isinstance(p, tuple) else p for p in auto]
    assert "AzureExecutionProvider" not in names


def test_choose_providers_never_remote(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    everything = ["AzureExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: everything)
    for device in ("auto", "cuda"):
        names = [p[0] if isinstance(p, tuple) else p for p in choose_providers(device)]
        assert "AzureExecutionProvider" not in names
        assert names == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers("cpu") == ["CPUExecutionProvider"]
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["AzureExecutionProvider", "CPUExecutionProvider"]
    )
    assert choose_providers("auto") == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="auto, cpu"):
        choose_providers("cuda")
