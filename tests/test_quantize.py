"""The int8 CenterFace: built from the shipped ranges, close to the float network, routed per pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from faceveil.core.detections import Detections
from faceveil.core.geometry import box_iou
from faceveil.detection.centerface import CenterFace, to_blob
from faceveil.detection.multiscale import MultiScaleCenterFace, ScalePass, ZoomLook
from faceveil.detection.quantize import (
    RANGES_PATH,
    centerface_int8_graph,
    collect_ranges,
    head_nodes,
    load_ranges,
    save_ranges,
)
from faceveil.errors import ConfigError, ModelError
from faceveil.media.image_io import read_image

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "faceveil" / "samples" / "grace_hopper.jpg"


def test_shipped_table_covers_every_quantised_tensor() -> None:
    import onnx

    from faceveil.detection.centerface import centerface_graph
    from faceveil.detection.quantize import _named, _tensors_to_calibrate

    needed = _tensors_to_calibrate(_named(onnx.load_from_string(centerface_graph())))
    ranges = load_ranges()
    assert needed <= ranges.keys()
    assert all(low <= high for low, high in ranges.values())
    assert ranges["input.1"] == (0.0, 255.0)  # pixels


def test_int8_graph_quantises_the_body_and_keeps_the_heads_in_float() -> None:
    import onnx

    model = onnx.load_from_string(centerface_int8_graph())
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("QuantizeLinear") > 50
    int8_weights = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    assert len(int8_weights) >= 60  # every Conv and ConvTranspose weight of the body
    heads = set(head_nodes(model))
    assert len(heads) == 5  # score (Conv + Sigmoid), size, offset, landmarks
    float_inputs = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    for node in model.graph.node:
        if node.name in heads and node.op_type == "Conv":
            assert node.input[1] in float_inputs


def test_int8_finds_what_the_float_network_finds() -> None:
    rgb = read_image(SAMPLE).rgb
    float_found = CenterFace(device="cpu").detect(rgb)
    int8 = CenterFace(device="cpu", precision="int8")
    assert int8.precision == "int8"
    int8_found = int8.detect(rgb)
    assert len(float_found) == len(int8_found) == 1
    assert box_iou(float_found.xyxy, int8_found.xyxy)[0, 0] > 0.85
    assert abs(float(float_found.confidence[0] - int8_found.confidence[0])) < 0.1


def test_precision_is_validated_with_the_choices_named() -> None:
    with pytest.raises(ConfigError, match="fp32, int8"):
        CenterFace(device="cpu", precision="int4")
    with pytest.raises(ConfigError, match="fp32, int8"):
        ScalePass(1.0, 0.2, precision="half")
    with pytest.raises(ConfigError, match="fp32, int8"):
        ZoomLook(precision="bf16")


def test_gpu_devices_run_the_float_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    import faceveil.detection.centerface as centerface

    monkeypatch.setattr(centerface, "choose_providers", lambda device: ["CUDAExecutionProvider", "CPU"])
    monkeypatch.setattr(centerface, "create_session", lambda graph, device, threads: graph)
    model = CenterFace(device="cuda", precision="int8")
    assert model.precision == "fp32"
    assert model._session == centerface.centerface_graph()


def test_collect_ranges_averages_per_input_extremes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    dark = to_blob(rng.integers(0, 40, (60, 90, 3), dtype=np.uint8))
    bright = to_blob(rng.integers(200, 256, (60, 90, 3), dtype=np.uint8))
    ranges = collect_ranges([dark, bright, dark])
    assert ranges["input.1"] == (0.0, 255.0)  # pixels, whatever the pictures
    low, high = ranges["365"]  # the first ReLU: never below 0
    assert low == 0.0 < high
    first = collect_ranges([bright])["365"][1]
    assert high < first  # two dark inputs out of three pull the top down from the bright one's
    assert high > (2 * collect_ranges([dark])["365"][1] + first) / 3  # but less than a mean would
    path = tmp_path / "ranges.json"
    save_ranges(ranges, path, "synthetic")
    assert load_ranges(path)["365"] == pytest.approx((low, high), rel=1e-5)
    assert json.loads(path.read_text())["source"] == "synthetic"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "cannot read"),
        ('{"ranges": {}}', "no 'ranges'"),
        ('{"ranges": {"a": [2, 1]}}', "bad range"),
        ('{"ranges": {"a": [0, NaN]}}', "bad range"),
    ],
)
def test_broken_tables_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ranges.json"
    path.write_text(text)
    with pytest.raises(ModelError, match=message):
        load_ranges(path)
    with pytest.raises(ModelError, match="cannot read"):
        load_ranges(tmp_path / "missing.json")


def test_shipped_table_is_inside_the_package() -> None:
    assert RANGES_PATH.is_file()
    assert "faceveil" in RANGES_PATH.parts


class _Model:
    """Stands in for one CenterFace; records the scales it ran."""

    def __init__(self) -> None:
        self.scales: list[float] = []

    def detect(
        self, rgb: npt.NDArray[np.uint8], scale: float = 1.0, threshold: float | None = None
    ) -> Detections:
        self.scales.append(scale)
        return Detections(np.asarray([[100, 100, 116, 116]], np.float32), np.asarray([0.1], np.float32))


def test_each_pass_runs_the_network_its_precision_names() -> None:
    float_model, int8_model = _Model(), _Model()
    detector = MultiScaleCenterFace(
        float_model,  # type: ignore[arg-type]
        ScalePass(1.0, 0.05, precision="int8"),
        extra=(ScalePass(0.5, 0.1),),
        zoom=ZoomLook(scale=2.0, threshold=0.05, precision="int8"),
        int8_model=int8_model,  # type: ignore[arg-type]
    )
    detector.detect(np.full((800, 1000, 3), 128, np.uint8))
    assert float_model.scales == [0.5]
    assert int8_model.scales == [1.0, 2.0]


def test_without_an_int8_model_every_pass_runs_the_float_one() -> None:
    only = _Model()
    detector = MultiScaleCenterFace(only, ScalePass(1.0, 0.05, precision="int8"))  # type: ignore[arg-type]
    detector.detect(np.full((200, 300, 3), 128, np.uint8))
    assert only.scales == [1.0]
