"""Scoring functions for `faceveil eval`: protection coverage, AP at IoU 0.5, over-blur.

All of them work on plain arrays, so they can be checked against hand-computed cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from faceveil.core.geometry import box_iou, scale_boxes

BoolMask = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float32]

#: Size bins by GT box height in pixels: (name, low inclusive, high exclusive).
SIZE_BINS: tuple[tuple[str, float, float], ...] = (
    ("<10", 0.0, 10.0),
    ("10-32", 10.0, 32.0),
    ("32-96", 32.0, 96.0),
    (">=96", 96.0, float("inf")),
)
PROTECTED_COVERAGE = 0.7
OVERBLUR_GT_SCALE = 1.3


def _gt_window(box: FloatArray, width: int, height: int) -> tuple[int, int, int, int]:
    x1 = min(max(0, int(np.floor(box[0]))), width - 1)
    y1 = min(max(0, int(np.floor(box[1]))), height - 1)
    x2 = min(width, max(x1 + 1, int(np.ceil(box[2]))))
    y2 = min(height, max(y1 + 1, int(np.ceil(box[3]))))
    return x1, y1, x2, y2


def coverage(hidden: BoolMask, gt_xyxy: FloatArray) -> FloatArray:
    """Share of each GT box's pixels (inside the image) that ``hidden`` covers."""
    height, width = hidden.shape
    result = np.zeros(len(gt_xyxy), dtype=np.float32)
    for i, box in enumerate(np.asarray(gt_xyxy, dtype=np.float32).reshape(-1, 4)):
        x1, y1, x2, y2 = _gt_window(box, width, height)
        result[i] = hidden[y1:y2, x1:x2].mean()
    return result


def overblur(hidden: BoolMask, gt_xyxy: FloatArray) -> float:
    """Share of the image's area that is hidden but lies outside every GT box scaled by 1.3."""
    height, width = hidden.shape
    allowed = np.zeros_like(hidden)
    for box in scale_boxes(np.asarray(gt_xyxy, np.float32).reshape(-1, 4), OVERBLUR_GT_SCALE):
        x1, y1, x2, y2 = _gt_window(box, width, height)
        allowed[y1:y2, x1:x2] = True
    return float((hidden & ~allowed).sum() / hidden.size)


@dataclass
class APAccumulator:
    """VOC all-point average precision at IoU 0.5, accumulated image by image.

    A detection matching an ignored GT box (best IoU >= 0.5 with it, and no unmatched counted
    box) is neither a hit nor a false alarm.
    """

    iou_threshold: float = 0.5
    scores: list[float] = field(default_factory=list)
    hits: list[bool] = field(default_factory=list)
    positives: int = 0

    def add(
        self, det_xyxy: FloatArray, det_scores: FloatArray, gt_xyxy: FloatArray, ignored: BoolMask
    ) -> None:
        """Match one image's detections (greedily, best score first) to its GT boxes."""
        gt_xyxy = np.asarray(gt_xyxy, np.float32).reshape(-1, 4)
        ignored = np.asarray(ignored, bool).reshape(-1)
        self.positives += int((~ignored).sum())
        order = np.argsort(-np.asarray(det_scores), kind="stable")
        iou = box_iou(np.asarray(det_xyxy, np.float32).reshape(-1, 4), gt_xyxy)
        taken = np.zeros(len(gt_xyxy), dtype=bool)
        for d in order:
            candidates = np.where(~taken & ~ignored & (iou[d] >= self.iou_threshold), iou[d], -1.0)
            best = int(np.argmax(candidates)) if len(gt_xyxy) else -1
            if best >= 0 and candidates[best] >= 0:
                taken[best] = True
                self.scores.append(float(det_scores[d]))
                self.hits.append(True)
            elif len(gt_xyxy) and np.any(ignored & (iou[d] >= self.iou_threshold)):
                continue  # on an ignored face: neither hit nor false alarm
            else:
                self.scores.append(float(det_scores[d]))
                self.hits.append(False)

    def result(self) -> tuple[float, float]:
        """``(AP, recall)`` at the IoU threshold over everything added."""
        if self.positives == 0:
            return 0.0, 0.0
        order = np.argsort(-np.asarray(self.scores), kind="stable")
        hits = np.asarray(self.hits, dtype=bool)[order]
        tp = np.cumsum(hits)
        fp = np.cumsum(~hits)
        recall = tp / self.positives
        precision = tp / np.maximum(tp + fp, 1)
        # all-point interpolation (VOC2010+): precision envelope, area under the step curve
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
        ap = float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))
        return ap, float(recall[-1]) if len(recall) else 0.0
