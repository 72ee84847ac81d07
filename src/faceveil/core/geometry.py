"""Vectorised box geometry shared by detectors, anonymizers and evaluation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


def scale_boxes(xyxy: FloatArray, factor: float) -> FloatArray:
    """Scale boxes about their centres by ``factor`` (1.3 makes each side 30% longer)."""
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    half = (xyxy[:, 2:] - xyxy[:, :2]) * (factor / 2)
    out: FloatArray = np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)
    return out


def clip_boxes(xyxy: FloatArray, width: int, height: int) -> FloatArray:
    """Clip boxes to the image ``[0, width] x [0, height]``."""
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4).copy()
    xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, width)
    xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, height)
    return xyxy


def box_area(xyxy: FloatArray) -> FloatArray:
    """Area of each box (0 for degenerate boxes)."""
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    widths = np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None)
    heights = np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None)
    area: FloatArray = (widths * heights).astype(np.float32)
    return area


def intersection(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pairwise intersection areas, shape ``(len(a), len(b))``."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter: FloatArray = (wh[..., 0] * wh[..., 1]).astype(np.float32)
    return inter


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pairwise IoU, shape ``(len(a), len(b))``."""
    inter = intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def nms(xyxy: FloatArray, scores: FloatArray, iou_threshold: float) -> npt.NDArray[np.int64]:
    """Greedy non-maximum suppression; returns kept indices, best score first.

    The loop runs once per *kept* box, each step vectorised over the remaining candidates.
    """
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
    areas = box_area(xyxy)
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        inter = intersection(xyxy[best : best + 1], xyxy[rest])[0]
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[iou < iou_threshold]
    return np.asarray(keep, dtype=np.int64)
