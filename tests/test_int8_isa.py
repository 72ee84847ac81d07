"""The int8 CenterFace detects the same faces on every processor.

onnxruntime's u8 x s8 kernels for AVX2, AVX-512 without VNNI and SSSE3 add pairs of products in a
saturating 16-bit register; VNNI, AMX and ARM's dot-product kernels do not. A graph whose pair sums
can exceed 16 bits therefore detects differently from one CPU to the next. These tests catch that
on any machine: by the bound (pure arithmetic on the built graph), by running the graph on
emulated older x86 processors (QEMU's user-mode emulator, installed by ``scripts/system-deps.sh``)
and comparing with this machine, and by comparing int8 with float on real pictures.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from faceveil.core.geometry import box_iou
from faceveil.detection.centerface import CenterFace, to_blob
from faceveil.detection.quantize import (
    PAIR_SUM_LIMIT,
    build_int8_graph,
    centerface_int8_graph,
    int8_safe_here,
    pair_sum_bound,
)
from faceveil.detection.runtime import cpu_features
from faceveil.errors import ModelError
from faceveil.media.image_io import read_image

Outputs = dict[str, npt.NDArray[np.float32]]
CHILD = Path(__file__).with_name("isa_child.py")
# QEMU models, each without the instruction sets of the one before:
# AVX2 without AVX-512 (vpmaddubsw, saturating), AVX, SSE4.2 (pmaddubsw, saturating)
EMULATED = ("Haswell-v4", "SandyBridge", "Nehalem")
# a float head (box size, landmarks) may round differently with FMA or without: far below a pixel
FLOAT_ROUNDING = 1e-4
PICTURES = ("dp2_norwegian_government_group.jpg", "fr_two_people.jpg", "deface_city_crosswalk.jpg")


def test_int8_graph_cannot_saturate_a_16_bit_pair_sum() -> None:
    assert pair_sum_bound(centerface_int8_graph()) <= PAIR_SUM_LIMIT
    # the check can fail: full 8-bit weights (faceveil's graph before 7-bit weights) overflow it
    assert pair_sum_bound(build_int8_graph(reduce_range=False)) > PAIR_SUM_LIMIT


def test_a_graph_that_could_saturate_is_never_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import faceveil.detection.quantize as quantize

    full = build_int8_graph(reduce_range=False)
    monkeypatch.setenv("FACEVEIL_MODEL_CACHE", "off")
    monkeypatch.setattr(quantize, "build_int8_graph", lambda reduce_range=True: full)
    quantize.centerface_int8_graph.cache_clear()
    try:
        with pytest.raises(ModelError, match="16-bit pair sum"):
            quantize.centerface_int8_graph()
    finally:
        quantize.centerface_int8_graph.cache_clear()


def test_unchecked_architectures_run_the_float_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    assert not int8_safe_here()
    assert CenterFace(device="cpu", precision="int8").precision == "fp32"
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert int8_safe_here()


@pytest.fixture(scope="module")
def blobs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Network inputs made from real pictures (320 px: the emulator is slow), saved as .npy."""
    folder = tmp_path_factory.mktemp("isa")
    paths = []
    for index, name in enumerate(PICTURES[:2]):
        rgb = read_image(shared_data / "images" / name).rgb
        height, width = rgb.shape[:2]
        factor = 320 / max(height, width)
        small = cv2.resize(rgb, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_AREA)
        path = folder / f"blob{index}.npy"
        np.save(path, to_blob(np.asarray(small, dtype=np.uint8)))
        paths.append(path)
    return paths


def _run(graph: Path, blobs: list[Path], out: Path, cpu: str | None) -> Outputs:
    command = [sys.executable, str(CHILD), str(graph), str(out), *map(str, blobs)]
    if cpu is not None:
        emulator = shutil.which("qemu-x86_64")
        if emulator is None:
            pytest.fail("qemu-x86_64 is missing: scripts/system-deps.sh installs it (qemu-user)")
        command = [emulator, "-cpu", cpu, *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(out) as saved:
        return {key: saved[key] for key in saved.files}


def _largest_difference(a: Outputs, b: Outputs) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[key] - b[key]).max()) for key in a)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("graphs")
    paths = {"shipped": folder / "int8.onnx", "full-range": folder / "full.onnx"}
    paths["shipped"].write_bytes(centerface_int8_graph())
    paths["full-range"].write_bytes(build_int8_graph(reduce_range=False))
    return paths


@pytest.mark.skipif(platform.machine() != "x86_64", reason="emulates x86-64 processors on an x86-64 host")
@pytest.mark.parametrize("cpu", EMULATED)
def test_int8_outputs_are_the_same_on_older_x86_processors(
    cpu: str, graphs: dict[str, Path], blobs: list[Path], tmp_path: Path
) -> None:
    here = _run(graphs["shipped"], blobs, tmp_path / "here.npz", None)
    emulated = _run(graphs["shipped"], blobs, tmp_path / "emulated.npz", cpu)
    assert _largest_difference(here, emulated) <= FLOAT_ROUNDING


@pytest.mark.skipif(platform.machine() != "x86_64", reason="emulates x86-64 processors on an x86-64 host")
def test_the_emulated_processor_really_runs_the_saturating_kernel(
    graphs: dict[str, Path], blobs: list[Path], tmp_path: Path
) -> None:
    """Full 8-bit weights differ under emulated AVX2 from a VNNI/AMX host (so the check above bites)."""
    if not {"avx512_vnni", "avx_vnni", "amx_int8"} & set(cpu_features()):
        pytest.skip("this host saturates like the emulated AVX2 processor: nothing to tell apart")
    here = _run(graphs["full-range"], blobs, tmp_path / "here.npz", None)
    emulated = _run(graphs["full-range"], blobs, tmp_path / "emulated.npz", EMULATED[0])
    assert _largest_difference(here, emulated) > 0.01


def test_int8_finds_every_face_float_is_sure_of_on_real_pictures(shared_data: Path) -> None:
    """Every face float scores >= 0.5 is found by int8 (IoU >= 0.7, its score within 0.3; median 0.03)."""
    float_net = CenterFace(device="cpu", threshold=0.3)
    int8_net = CenterFace(device="cpu", precision="int8", threshold=0.3)
    pictures = [shared_data / "images" / name for name in PICTURES]
    pictures += sorted((shared_data / "dlib_voc").rglob("*.jpg"))
    differences: list[float] = []
    for path in pictures:
        rgb = read_image(path).rgb
        sure = float_net.detect(rgb)
        sure = sure[sure.confidence >= 0.5]
        found = int8_net.detect(rgb)
        assert len(sure) and len(found) >= len(sure), path.name
        overlap = box_iou(sure.xyxy, found.xyxy)
        best = overlap.argmax(axis=1)
        assert overlap.max(axis=1).min() >= 0.7, path.name
        gaps = np.abs(sure.confidence - found.confidence[best])
        assert gaps.max() <= 0.3, path.name
        differences.extend(gaps.tolist())
    assert len(differences) >= 40
    assert float(np.median(differences)) <= 0.03


def test_a_graph_that_could_saturate_is_never_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import faceveil.detection.quantize as quantize

    full = build_int8_graph(reduce_range=False)
    monkeypatch.setenv("FACEVEIL_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(quantize, "build_int8_graph", lambda reduce_range=True: full)
    quantize.centerface_int8_graph.cache_clear()
    try:
        with pytest.raises(ModelError, match="16-bit pair sum"):
            quantize.centerface_int8_graph()
    finally:
        quantize.centerface_int8_graph.cache_clear()
    assert not list((tmp_path / "cache").glob("*.bin"))
