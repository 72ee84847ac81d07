"""Multi-scale CenterFace: turned passes, new-only filtering, low-light pass, zoom tiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from faceveil.core.detections import Detections
from faceveil.detection.multiscale import (
    MultiScaleCenterFace,
    ScalePass,
    ZoomLook,
    _new_only,
    brighten_if_dark,
    unturn,
)
from faceveil.errors import ConfigError


def _det(
    boxes: list[list[float]] | list[list[int]] | list[npt.NDArray[np.int64]],
    scores: list[float],
    landmarks: npt.NDArray[np.float32] | None = None,
) -> Detections:
    return Detections(np.asarray(boxes, np.float32), np.asarray(scores, np.float32), landmarks)


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_unturn_maps_boxes_and_landmarks_back(turns: int) -> None:
    height, width = 100, 200
    upright = np.zeros((height, width), dtype=bool)
    upright[10:40, 30:60] = True
    turned = np.rot90(upright, turns)
    ys, xs = np.nonzero(turned)
    box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    point = np.zeros((height, width), dtype=bool)
    point[12, 33] = True
    py, px = np.nonzero(np.rot90(point, turns))
    found = _det([box], [0.9], landmarks=np.asarray([[[px[0] + 0.5, py[0] + 0.5]] * 5], np.float32))
    back = unturn(found, turns, width, height)
    np.testing.assert_allclose(back.xyxy[0], [30, 10, 60, 40])
    assert back.landmarks is not None
    np.testing.assert_allclose(back.landmarks[0, 0], [33.5, 12.5])


def test_new_only_drops_faces_already_known() -> None:
    known = _det([[0, 0, 50, 50]], [0.9])
    found = _det([[10, 10, 40, 45], [100, 100, 150, 150]], [0.6, 0.6])
    kept = _new_only(found, known)
    np.testing.assert_array_equal(kept.xyxy, [[100, 100, 150, 150]])
    assert len(_new_only(found, Detections.empty())) == 2


def test_brighten_only_dark_pictures() -> None:
    rng = np.random.default_rng(1)
    bright = rng.integers(80, 255, (64, 64, 3), dtype=np.uint8)
    assert brighten_if_dark(bright) is None
    dark = (bright // 8).astype(np.uint8)
    lifted = brighten_if_dark(dark)
    assert lifted is not None and lifted.shape == dark.shape and lifted.dtype == np.uint8
    assert lifted.mean() > 3 * dark.mean()
    assert np.all(np.diff(np.unique(dark)) > 0)  # sanity: the LUT is monotonic below
    order = np.argsort(dark.reshape(-1), kind="stable")
    assert np.all(np.diff(lifted.reshape(-1)[order].astype(int)) >= 0)


def test_pass_validation_names_the_problem() -> None:
    with pytest.raises(ConfigError, match="rotations"):
        ScalePass(0.5, 0.2, rotations=(45,))
    with pytest.raises(ConfigError, match="scale"):
        ScalePass(8.0, 0.2)
    with pytest.raises(ConfigError, match="threshold"):
        ScalePass(1.0, 1.5)


class _Recorder:
    """Stands in for CenterFace: "finds" the white square of the picture, records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, int], float]] = []

    def detect(
        self, rgb: npt.NDArray[np.uint8], scale: float = 1.0, threshold: float | None = None
    ) -> Detections:
        self.calls.append(((rgb.shape[0], rgb.shape[1]), scale))
        ys, xs = np.nonzero(rgb[..., 0] == 255)
        if not len(xs):
            return Detections.empty()
        return _det([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], [0.1])


def _picture(height: int, width: int) -> npt.NDArray[np.uint8]:
    rgb = np.full((height, width, 3), 128, np.uint8)
    rgb[100:120, 100:120] = 255  # one small, doubtful face
    return rgb


def test_zoom_runs_only_around_doubtful_small_faces() -> None:
    model = _Recorder()
    detector = MultiScaleCenterFace(
        model,  # type: ignore[arg-type]
        ScalePass(1.0, 0.15),
        zoom=ZoomLook(scale=2.0, threshold=0.05, tile=64, margin=16),
    )
    found = detector.detect(_picture(1000, 1200))
    zoomed = [shape for shape, scale in model.calls if scale == 2.0]
    assert len(zoomed) == 1
    assert zoomed[0][0] * zoomed[0][1] < 0.05 * 1000 * 1200  # a few tiles, not the picture
    assert len(found) == 1  # the doubtful face, confirmed by the zoomed look
    np.testing.assert_allclose(found.xyxy[0], [100, 100, 120, 120])


def test_small_pictures_are_zoomed_everywhere() -> None:
    model = _Recorder()
    detector = MultiScaleCenterFace(
        model,  # type: ignore[arg-type]
        ScalePass(1.0, 0.15),
        zoom=ZoomLook(everywhere_below=640),
    )
    detector.detect(_picture(300, 400))
    assert ((300, 400), 2.0) in model.calls


def test_faces_in_the_dark_are_still_hidden(shared_data: Path) -> None:
    """dlib_voc group photos darkened to 10% brightness: every labelled face is still hidden."""
    from faceveil.anonymize.regions import build_regions, union_mask
    from faceveil.config import DetectorConfig
    from faceveil.detection import create_detector
    from faceveil.evaluation.dataset import load_annotations
    from faceveil.evaluation.metrics import coverage
    from faceveil.media.image_io import read_image

    detector = create_detector(DetectorConfig(name="balanced", device="cpu"))
    for labelled in load_annotations(shared_data / "dlib_voc" / "annotations.json")[:4]:
        dark = (read_image(labelled.path).rgb.astype(np.float32) * 0.1).astype(np.uint8)
        found = detector.detect(dark)
        height, width = dark.shape[:2]
        hidden = union_mask(build_regions(found.xyxy, 1.3, "ellipse", width, height), width, height)
        assert np.all(coverage(hidden, labelled.boxes) >= 0.7), labelled.path.name
