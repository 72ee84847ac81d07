"""A cheap second look at doubtful candidates: many enlarged crops, one network run.

A low threshold finds nearly every face but also many things that are not faces. Instead of
hiding all of them (over-blur) or none (missed faces), each doubtful candidate is cut out with
some context, scaled so the face is a size CenterFace sees well, and packed with the others into
one mosaic; one inference on the mosaic scores them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from faceveil.core.detections import Detections
from faceveil.detection.centerface import CenterFace

RGBImage = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class SecondLookResult:
    """Per candidate: the best score found at its place, and that face's box (original pixels)."""

    scores: npt.NDArray[np.float32]
    boxes: npt.NDArray[np.float32]


class SecondLook:
    """Re-scores candidate boxes on enlarged crops.

    Args:
        model: the CenterFace instance to reuse (its session is shared).
        cell: side of each crop in the mosaic, pixels.
        context: the crop's side as a multiple of the candidate box's longer side.
        grid: at most ``grid x grid`` crops per inference.
    """

    def __init__(self, model: CenterFace, cell: int = 96, context: float = 2.0, grid: int = 8) -> None:
        self.model = model
        self.cell = cell
        self.context = context
        self.grid = grid

    def score(self, rgb: RGBImage, candidates: Detections) -> SecondLookResult:
        """Look again at each candidate; a candidate with no face found there scores 0."""
        n = len(candidates)
        scores = np.zeros(n, dtype=np.float32)
        boxes = candidates.xyxy.copy()
        per_run = self.grid * self.grid
        for start in range(0, n, per_run):
            chunk = candidates.xyxy[start : start + per_run]
            s, b = self._run(rgb, chunk)
            scores[start : start + len(chunk)] = s
            boxes[start : start + len(chunk)] = b
        return SecondLookResult(scores, boxes)

    def _run(
        self, rgb: RGBImage, xyxy: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        cell = self.cell
        cols = int(np.ceil(np.sqrt(len(xyxy))))
        rows = int(np.ceil(len(xyxy) / cols))
        mosaic = np.zeros((rows * cell, cols * cell, 3), dtype=np.uint8)
        centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        side = np.maximum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]) * self.context
        side = np.maximum(side, 1.0)
        zoom = cell / side
        for i in range(len(xyxy)):  # one affine warp per crop, the network runs once
            r, c = divmod(i, cols)
            tx = -zoom[i] * (centre[i, 0] - side[i] / 2)
            ty = -zoom[i] * (centre[i, 1] - side[i] / 2)
            warp = np.array([[zoom[i], 0, tx], [0, zoom[i], ty]], dtype=np.float32)
            mosaic[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = cv2.warpAffine(
                rgb, warp, (cell, cell), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )
        found = self.model.detect(mosaic, threshold=0.05)
        return self._match(found, xyxy, centre, side, zoom, cols)

    def _match(
        self,
        found: Detections,
        xyxy: npt.NDArray[np.float32],
        centre: npt.NDArray[np.float32],
        side: npt.NDArray[np.float32],
        zoom: npt.NDArray[np.float32],
        cols: int,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        cell = self.cell
        n = len(xyxy)
        scores = np.zeros(n, dtype=np.float32)
        boxes = xyxy.copy()
        if not len(found):
            return scores, boxes
        fc = (found.xyxy[:, :2] + found.xyxy[:, 2:]) / 2
        col = (fc[:, 0] // cell).astype(np.int64)
        row = (fc[:, 1] // cell).astype(np.int64)
        index = row * cols + col
        offset = fc - (np.stack([col, row], axis=1) + 0.5) * cell
        expected = cell / self.context
        size = np.maximum(found.width, found.height)
        near = (
            (np.abs(offset).max(axis=1) <= 0.25 * cell) & (size >= 0.4 * expected) & (size <= 2.5 * expected)
        )
        for j in np.flatnonzero(near & (index < n)):
            i = int(index[j])
            if found.confidence[j] > scores[i]:
                scores[i] = found.confidence[j]
                origin = np.array([col[j], row[j]], dtype=np.float32) * cell
                local = found.xyxy[j].reshape(2, 2) - origin
                boxes[i] = (local / zoom[i] + (centre[i] - side[i] / 2)).reshape(4)
        return scores, boxes
