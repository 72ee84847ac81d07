"""Hand-computed cases for the evaluation metrics, the annotations loader and the eval runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.config import AnonymizerConfig, MaskConfig
from faceveil.core.detections import Detections
from faceveil.detection.fake import FakeDetector, boxes
from faceveil.errors import InputError
from faceveil.evaluation.dataset import LabelledImage, load_annotations
from faceveil.evaluation.metrics import APAccumulator, coverage, overblur
from faceveil.evaluation.runner import evaluate


def f32(*rows: tuple[float, float, float, float]) -> npt.NDArray[np.float32]:
    return np.asarray(rows, np.float32).reshape(-1, 4)


def no_ignored(n: int) -> npt.NDArray[np.bool_]:
    return np.zeros(n, bool)


# ------------------------------------------------------------------------------------------------
# coverage


def test_coverage_full_half_and_none() -> None:
    hidden = np.zeros((100, 100), bool)
    hidden[10:30, 10:30] = True  # box A fully covered
    hidden[50:60, 50:55] = True  # left half of box B (50, 50)-(60, 60)
    gt = f32((10, 10, 30, 30), (50, 50, 60, 60), (70, 70, 90, 90), (12, 12, 18, 18))
    np.testing.assert_allclose(coverage(hidden, gt), [1.0, 0.5, 0.0, 1.0])


def test_coverage_quarter_and_clipped_box() -> None:
    hidden = np.zeros((40, 40), bool)
    hidden[:, :10] = True
    # (0, 0)-(20, 20): the left half -> 0.5; (-10, 0)-(10, 10): only (0..10) x (0..10) is in the
    # image, and all of it is hidden -> 1.0; (5, 5)-(15, 25): x 5..10 of 5..15 -> 0.5
    gt = f32((0, 0, 20, 20), (-10, 0, 10, 10), (5, 5, 15, 25))
    np.testing.assert_allclose(coverage(hidden, gt), [0.5, 1.0, 0.5])
    assert coverage(hidden, f32()).shape == (0,)


# ------------------------------------------------------------------------------------------------
# overblur


def test_overblur_hand_computed() -> None:
    hidden = np.zeros((100, 100), bool)
    hidden[30:70, 30:70] = True  # 40 x 40 = 1600 hidden pixels
    # GT (40, 40)-(60, 60) scaled by 1.3 about (50, 50): (37, 37)-(63, 63) = 26 x 26 = 676 allowed
    # hidden outside the allowed area: 1600 - 676 = 924 -> 924 / 10000
    assert overblur(hidden, f32((40, 40, 60, 60))) == pytest.approx(0.0924)
    # no GT: every hidden pixel is over-blur
    assert overblur(hidden, f32()) == pytest.approx(0.16)
    # hidden exactly the scaled GT box: nothing is over-blur
    exact = np.zeros((100, 100), bool)
    exact[37:63, 37:63] = True
    assert overblur(exact, f32((40, 40, 60, 60))) == 0.0
    # plus a far 10 x 10 patch: 100 / 10000
    exact[0:10, 0:10] = True
    assert overblur(exact, f32((40, 40, 60, 60))) == pytest.approx(0.01)


# ------------------------------------------------------------------------------------------------
# AP at IoU 0.5


def test_ap_hit_miss_ignored_and_false_alarm() -> None:
    gt = f32(
        (10, 10, 50, 50),  # A: detected -> hit
        (100, 10, 140, 50),  # B: no detection -> miss
        (10, 100, 50, 140),  # C: ignored, detected -> neither hit nor false alarm
    )
    ignored = np.array([False, False, True])
    det = f32(
        (11, 11, 51, 51),  # on A, IoU 1521 / 1679 = 0.906
        (12, 100, 50, 139),  # on C (ignored)
        (300, 300, 340, 340),  # far from any GT: false alarm
    )
    scores = np.array([0.90, 0.99, 0.95], np.float32)
    acc = APAccumulator()
    acc.add(det, scores, gt, ignored)
    # positives = 2 (A and B). Ranked, without the ignored one: FA (0.95), hit (0.90)
    #   precision [0/1, 1/2], recall [0, 1/2]
    #   mrec = [0, 0, 0.5, 1], mpre = [0, 0, 0.5, 0] -> envelope [0.5, 0.5, 0.5, 0]
    #   AP = (0.5 - 0) * 0.5 + (1 - 0.5) * 0 = 0.25; recall = 0.5
    # (counting the ignored detection as a false alarm would give 1/6; as a positive, recall 1/3)
    assert acc.positives == 2
    ranked = sorted(zip(acc.scores, acc.hits, strict=True))
    assert [hit for _, hit in ranked] == [True, False]
    assert [score for score, _ in ranked] == pytest.approx([0.90, 0.95])
    ap, recall = acc.result()
    assert ap == pytest.approx(0.25)
    assert recall == pytest.approx(0.5)


def test_ap_hit_ranked_first() -> None:
    # one hit at 0.9, one false alarm at 0.8, one of two faces missed
    #   precision [1, 1/2], recall [1/2, 1/2]; envelope over mrec [0, .5, .5, 1] is [1, 1, .5, 0]
    #   AP = 0.5 * 1 + 0.5 * 0 = 0.5
    acc = APAccumulator()
    acc.add(
        f32((0, 0, 10, 10), (50, 50, 60, 60)),
        np.array([0.9, 0.8]),
        f32((0, 0, 10, 10), (20, 0, 30, 10)),
        no_ignored(2),
    )
    assert acc.result() == pytest.approx((0.5, 0.5))


def test_perfect_detector() -> None:
    acc = APAccumulator()
    gt1 = f32((0, 0, 10, 10), (20, 20, 40, 40))
    gt2 = f32((5, 5, 25, 25))
    acc.add(gt1, np.array([0.3, 0.9]), gt1, no_ignored(2))
    acc.add(gt2, np.array([0.6]), gt2, no_ignored(1))
    acc.add(f32(), np.zeros(0, np.float32), f32(), no_ignored(0))  # an image without faces or detections
    assert acc.positives == 3
    assert acc.hits == [True, True, True]
    assert acc.result() == pytest.approx((1.0, 1.0))


def test_duplicate_detection_is_a_false_alarm() -> None:
    gt = f32((0, 0, 20, 20), (50, 50, 70, 70))
    det = f32((0, 0, 20, 20), (1, 1, 21, 21), (50, 50, 70, 70))
    acc = APAccumulator()
    acc.add(det, np.array([0.9, 0.8, 0.7]), gt, no_ignored(2))
    assert acc.hits == [True, False, True]
    # ranked: hit, duplicate (false alarm), hit; precision [1, 1/2, 2/3], recall [1/2, 1/2, 1]
    #   mrec [0, .5, .5, 1, 1], envelope [1, 1, 2/3, 2/3, 0] -> AP = 0.5 * 1 + 0.5 * 2/3 = 5/6
    ap, recall = acc.result()
    assert ap == pytest.approx(5 / 6)
    assert recall == pytest.approx(1.0)


def test_low_iou_detection_is_a_false_alarm() -> None:
    acc = APAccumulator()
    # IoU of (0, 0, 10, 10) with (5, 0, 15, 10) = 50 / 150 < 0.5
    acc.add(f32((5, 0, 15, 10)), np.array([0.9]), f32((0, 0, 10, 10)), no_ignored(1))
    assert acc.hits == [False]
    assert acc.result() == (0.0, 0.0)


def test_detection_prefers_counted_face_over_ignored_one() -> None:
    # a counted and an ignored face in the same place: the detection is a hit on the counted one
    gt = f32((0, 0, 10, 10), (0, 0, 10, 10))
    acc = APAccumulator()
    acc.add(f32((0, 0, 10, 10)), np.array([0.5]), gt, np.array([True, False]))
    assert acc.positives == 1
    assert acc.hits == [True]
    assert acc.result() == pytest.approx((1.0, 1.0))


def test_no_positives_gives_zero() -> None:
    acc = APAccumulator()
    acc.add(f32((0, 0, 10, 10)), np.array([0.5]), f32((0, 0, 10, 10)), np.array([True]))
    assert acc.positives == 0
    assert acc.hits == []
    assert acc.result() == (0.0, 0.0)


# ------------------------------------------------------------------------------------------------
# annotations.json


def wider(x1: float, y1: float, x2: float, y2: float, invalid: int = 0, difficulty: int = 0) -> list[float]:
    # x1, y1, x2, y2, blur, expression, illumination, invalid, occlusion, pose, difficulty
    return [x1, y1, x2, y2, 0, 0, 0, invalid, 0, 0, difficulty]


def test_load_annotations_ignores_invalid_and_hard_wider_rows(tmp_path: Path) -> None:
    records = [
        {
            "image": "a/one.jpg",
            "boxes": [
                wider(1, 2, 11, 12),
                wider(20, 20, 30, 30, invalid=1),
                wider(40, 40, 50, 50, difficulty=3),
                wider(60, 60, 70, 70, difficulty=2),
            ],
        },
        # mask_dev style rows (5 columns) are never ignored, whatever their last value
        {"image": "two.png", "boxes": [[0, 0, 5, 5, 1], [5, 5, 9, 9, 3], [1, 1, 2, 2]]},
        {"image": "three.png", "boxes": []},
    ]
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(records))
    images = load_annotations(path)
    assert [im.path for im in images] == [
        tmp_path / "a" / "one.jpg",
        tmp_path / "two.png",
        tmp_path / "three.png",
    ]
    np.testing.assert_array_equal(
        images[0].boxes, [[1, 2, 11, 12], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]]
    )
    assert images[0].boxes.dtype == np.float32
    assert images[0].ignored.tolist() == [False, True, True, False]
    assert images[1].ignored.tolist() == [False, False, False]
    np.testing.assert_array_equal(images[1].boxes, [[0, 0, 5, 5], [5, 5, 9, 9], [1, 1, 2, 2]])
    assert images[2].boxes.shape == (0, 4)
    assert images[2].ignored.shape == (0,)


@pytest.mark.parametrize(
    "text", ["not json", '{"image": "a.png"}', '[{"boxes": []}]', '[{"image": "a", "boxes": [["x"]]}]']
)
def test_load_annotations_rejects_malformed_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "annotations.json"
    path.write_text(text)
    with pytest.raises(InputError):
        load_annotations(path)


def test_load_annotations_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_annotations(tmp_path / "missing.json")


# ------------------------------------------------------------------------------------------------
# end to end: evaluate()


def test_evaluate_end_to_end(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # image 1 (160 x 200): a 60 px face that is found, a 20 px face that is missed
    # image 2 (120 x 100): an ignored (WIDER invalid) face that is found
    Image.fromarray(rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)).save(tmp_path / "one.png")
    Image.fromarray(rng.integers(0, 256, (120, 100, 3), dtype=np.uint8)).save(tmp_path / "two.png")
    records = [
        {"image": "one.png", "boxes": [[20, 20, 80, 80, 1], [120, 130, 140, 150, 1]]},
        {"image": "two.png", "boxes": [wider(30, 30, 70, 70, invalid=1)]},
    ]
    (tmp_path / "annotations.json").write_text(json.dumps(records))
    labelled = load_annotations(tmp_path / "annotations.json")
    found = {(160, 200): boxes((21, 20, 80, 81), score=0.9), (120, 100): boxes((30, 31, 70, 70), score=0.8)}

    def detect(rgb: npt.NDArray[np.uint8]) -> Detections:
        return found[(rgb.shape[0], rgb.shape[1])]

    detector = FakeDetector(detect)
    anonymizer = Anonymizer(AnonymizerConfig(mask=MaskConfig(mode="none")), detector=detector)
    seen: list[int] = []
    report = evaluate(labelled, anonymizer, {"detector": "fake"}, progress=seen.append)
    figures = report.as_dict()

    assert detector.calls == [(160, 200), (120, 100)]
    assert seen == [1, 1]
    assert figures["images"] == 2
    assert figures["faces"] == 2
    assert figures["ignored_faces"] == 1
    assert figures["protected"] == pytest.approx(0.5)
    assert figures["protected_by_height"] == {"<10": None, "10-32": 0.0, "32-96": 1.0, ">=96": None}
    assert figures["faces_by_height"] == {"<10": 0, "10-32": 1, "32-96": 1, ">=96": 0}
    # positives 2, one hit, the detection on the ignored face does not count:
    #   mrec [0, .5, 1], envelope [1, 1, 0] -> AP = 0.5, recall = 0.5
    assert figures["AP50"] == pytest.approx(0.5)
    assert figures["recall50"] == pytest.approx(0.5)
    assert 0.0 < figures["overblur"] < 0.2
    assert figures["median_ms"] >= 0.0
    assert figures["config"] == {"detector": "fake"}
    json.dumps(figures)


def test_evaluate_partial_cover_is_not_protected(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "a.png")
    # the detection covers only the left part of the 40 px face (scale 1: box (30, 30)-(44, 70))
    detector = FakeDetector(boxes((30, 30, 44, 70)))
    anonymizer = Anonymizer(AnonymizerConfig(mask=MaskConfig(shape="box", scale=1.0)), detector=detector)
    labelled = [LabelledImage(tmp_path / "a.png", f32((30, 30, 70, 70)), no_ignored(1))]
    figures = evaluate(labelled, anonymizer, {}).as_dict()
    assert figures["protected"] == 0.0  # coverage 14 / 40 = 0.35 < 0.7
    assert figures["protected_by_height"]["32-96"] == 0.0
    assert figures["AP50"] == 0.0
