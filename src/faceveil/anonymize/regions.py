"""Hidden regions: the scaled face boxes and their pixel masks (ellipse or box)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from faceveil.core.geometry import scale_boxes

BoolMask = npt.NDArray[np.bool_]

#: Pixels every hidden region reaches beyond its face box, whatever the mask scale.
MIN_MARGIN = 2.0


@dataclass(frozen=True)
class Region:
    """One region to hide: its (unclipped) box, the pixel window inside the image, and its mask.

    ``box`` may reach past the image border (a face cut by the border); ``window`` is the part
    inside the image as integer ``(x1, y1, x2, y2)``; ``mask`` has the window's shape.
    """

    box: tuple[float, float, float, float]
    window: tuple[int, int, int, int]
    mask: BoolMask

    @property
    def size(self) -> float:
        """The longer side of the unclipped box, in pixels."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def _window(box: npt.NDArray[np.float32], width: int, height: int) -> tuple[int, int, int, int]:
    # floor/ceil: a pixel the region touches at all is inside the window (recall first)
    x1 = max(0, int(np.floor(box[0])))
    y1 = max(0, int(np.floor(box[1])))
    x2 = min(width, int(np.ceil(box[2])))
    y2 = min(height, int(np.ceil(box[3])))
    return x1, y1, x2, y2


def ellipse_mask(box: tuple[float, float, float, float], window: tuple[int, int, int, int]) -> BoolMask:
    """Pixels of ``window`` whose centres lie in the ellipse inscribed in ``box``.

    A pixel whose centre misses the ellipse by less than half a pixel is included too, so that
    thin regions (a few pixels) are never left with holes.
    """
    x1, y1, x2, y2 = window
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    ax = max((box[2] - box[0]) / 2, 0.5) + 0.5
    ay = max((box[3] - box[1]) / 2, 0.5) + 0.5
    ys = (np.arange(y1, y2, dtype=np.float32) + 0.5 - cy) / ay
    xs = (np.arange(x1, x2, dtype=np.float32) + 0.5 - cx) / ax
    return np.asarray((ys[:, None] ** 2 + xs[None, :] ** 2) <= 1.0)


def build_regions(
    xyxy: npt.NDArray[np.float32],
    scale: float,
    shape: str,
    width: int,
    height: int,
    min_margin: float = MIN_MARGIN,
) -> list[Region]:
    """Regions for face boxes ``xyxy``: scaled by ``scale``, shaped, kept to the image.

    Each region also reaches at least ``min_margin`` pixels beyond its face box on every side:
    a box a few pixels off matters little on a large face, but can uncover half of a tiny one.
    """
    regions = []
    scaled = scale_boxes(xyxy, scale)
    margin = np.asarray([-min_margin, -min_margin, min_margin, min_margin], dtype=np.float32)
    padded = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4) + margin
    outer = np.concatenate(
        [np.minimum(scaled[:, :2], padded[:, :2]), np.maximum(scaled[:, 2:], padded[:, 2:])], 1
    )
    for row in outer:
        window = _window(row, width, height)
        if window[2] <= window[0] or window[3] <= window[1]:
            continue  # entirely outside the image
        box = (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
        if shape == "ellipse":
            mask = ellipse_mask(box, window)
        else:
            mask = np.ones((window[3] - window[1], window[2] - window[0]), dtype=bool)
        regions.append(Region(box=box, window=window, mask=mask))
    return regions


#: Regions whose windows share at least this part of the smaller one are blurred as one.
MERGE_SHARE = 0.5


def merge_overlapping(regions: list[Region], share: float = MERGE_SHARE) -> list[Region]:
    """``regions`` with each group of strongly overlapping ones replaced by one region.

    Two regions are grouped when the intersection of their windows is at least ``share`` of the
    smaller window (a tracked box and the filled box of the same face, say). A group becomes one
    region: the union of the boxes (so its size, and a blur's sigma, is at least each member's),
    the union of the windows, and the union of the masks, so every pixel any member hides is
    still hidden. Regions left alone keep their order; merged groups come after them.
    """
    if len(regions) < 2:
        return regions
    windows = np.asarray([r.window for r in regions], dtype=np.int64)
    width = np.maximum(
        0,
        np.minimum(windows[:, None, 2], windows[None, :, 2])
        - np.maximum(windows[:, None, 0], windows[None, :, 0]),
    )
    height = np.maximum(
        0,
        np.minimum(windows[:, None, 3], windows[None, :, 3])
        - np.maximum(windows[:, None, 1], windows[None, :, 1]),
    )
    areas = (windows[:, 2] - windows[:, 0]) * (windows[:, 3] - windows[:, 1])
    smaller = np.minimum(areas[:, None], areas[None, :])
    close = np.triu(width * height >= share * np.maximum(smaller, 1), k=1)
    if not close.any():
        return regions
    parent = list(range(len(regions)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(close), strict=True):
        parent[root(int(j))] = root(int(i))
    groups: dict[int, list[int]] = {}
    for i in range(len(regions)):
        groups.setdefault(root(i), []).append(i)
    alone = [regions[g[0]] for g in groups.values() if len(g) == 1]
    return alone + [_merged([regions[i] for i in g]) for g in groups.values() if len(g) > 1]


def _merged(group: list[Region]) -> Region:
    """One region covering every pixel of ``group`` (see `merge_overlapping`)."""
    x1 = min(r.window[0] for r in group)
    y1 = min(r.window[1] for r in group)
    x2 = max(r.window[2] for r in group)
    y2 = max(r.window[3] for r in group)
    mask = np.zeros((y2 - y1, x2 - x1), dtype=bool)
    for r in group:
        wx1, wy1, wx2, wy2 = r.window
        mask[wy1 - y1 : wy2 - y1, wx1 - x1 : wx2 - x1] |= r.mask
    box = (
        min(r.box[0] for r in group),
        min(r.box[1] for r in group),
        max(r.box[2] for r in group),
        max(r.box[3] for r in group),
    )
    return Region(box=box, window=(x1, y1, x2, y2), mask=mask)


def union_mask(regions: list[Region], width: int, height: int) -> BoolMask:
    """All hidden pixels of an image as one ``(H, W)`` mask."""
    mask = np.zeros((height, width), dtype=bool)
    for region in regions:
        x1, y1, x2, y2 = region.window
        mask[y1:y2, x1:x2] |= region.mask
    return mask
