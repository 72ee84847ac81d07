"""Combining detections: several scales, several models, and box fusion instead of plain NMS."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from faceveil.core.detections import Detections
from faceveil.core.geometry import box_area, intersection


def fuse(found: Detections, iou_threshold: float = 0.4) -> Detections:
    """Group overlapping boxes and keep one per group, grown to enclose the whole group.

    Unlike NMS, which throws the weaker boxes away, fusion keeps the area they cover, so the
    hidden region never shrinks when several passes or models disagree slightly (recall first).
    The group's best score and its best box's landmarks are kept.
    """
    if len(found) < 2:
        return found
    order = np.argsort(-found.confidence, kind="stable")
    xyxy = found.xyxy
    areas = box_area(xyxy)
    keep: list[int] = []
    boxes: list[npt.NDArray[np.float32]] = []
    while order.size:
        best = int(order[0])
        inter = intersection(xyxy[best : best + 1], xyxy[order])[0]
        iou = inter / np.maximum(areas[best] + areas[order] - inter, 1e-9)
        # a box mostly inside the best one (a second pass's partial face) belongs to it too
        inside = inter / np.maximum(areas[order], 1e-9)
        group = order[(iou >= iou_threshold) | (inside >= 0.8)]
        group = group if group.size else order[:1]
        members = xyxy[group]
        boxes.append(np.concatenate([members[:, :2].min(axis=0), members[:, 2:].max(axis=0)]))
        keep.append(best)
        order = np.setdiff1d(order, group, assume_unique=True)
        order = order[np.argsort(-found.confidence[order], kind="stable")]
    kept = found[np.asarray(keep, dtype=np.int64)]
    return kept.with_boxes(np.asarray(boxes, dtype=np.float32))


def union(parts: Sequence[Detections], iou_threshold: float = 0.4) -> Detections:
    """Merge the detections of several passes or models and fuse duplicates."""
    return fuse(Detections.merge(list(parts)), iou_threshold)
