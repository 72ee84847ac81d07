"""Following a box drawn by hand through a video, forwards and backwards, with OpenCV's trackers.

A reviewer draws one box on a face the detector missed; :func:`follow_box` carries it to the
frames before and after with CSRT (or KCF) until the tracker loses it for ``patience`` frames in
a row (the frames between keep the last box), the box leaves the picture, or a shot cut is
reached. Every box it returns is padded on each side: it errs towards hiding more.

The cut signal is the Bhattacharyya distance of hue-saturation histograms. A cut is a change
that lasts: frame ``i`` starts a new shot when it and the frame after it both differ by more than
``cut_distance`` from both of the two frames before it, so a one-frame camera flash is no cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from faceveil.config import check_choice
from faceveil.errors import ConfigError

RGBImage = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]
TRACKERS = ("csrt", "kcf")

#: Measured with the rule above on the four YouTube Faces sequences, both directions: within a
#: sequence the signal stays at or below 0.24 (a camera flash included; 99th percentile 0.12);
#: joining two different sequences gives 0.52 at least (median 0.66). 0.4 lies between.
DEFAULT_CUT_DISTANCE = 0.4


@dataclass(frozen=True)
class FollowConfig:
    """How a hand-drawn box is followed.

    Attributes:
        tracker: ``csrt`` (accurate, follows scale; the default) or ``kcf`` (faster).
        max_side: frames are tracked on a copy whose longer side is at most this many pixels.
        pad: each followed box grows by this share of its width and height on every side.
        cut_distance: a histogram distance between consecutive frames above this is a shot cut.
        max_frames: frames followed at most in each direction.
        patience: frames in a row the tracker may lose the box (they keep its last box) before
            following stops.
    """

    tracker: str = "csrt"
    max_side: int = 480
    pad: float = 0.15
    cut_distance: float = DEFAULT_CUT_DISTANCE
    max_frames: int = 300
    patience: int = 3

    def __post_init__(self) -> None:
        check_choice("tracker", self.tracker, TRACKERS)
        if self.max_side < 64:
            raise ConfigError(f"max_side must be at least 64, got {self.max_side}")
        if not 0.0 <= self.pad <= 1.0:
            raise ConfigError(f"pad must lie in [0, 1], got {self.pad}")
        if not 0.0 < self.cut_distance <= 1.0:
            raise ConfigError(f"cut_distance must lie in (0, 1], got {self.cut_distance}")
        if self.max_frames < 0:
            raise ConfigError(f"max_frames must be >= 0, got {self.max_frames}")
        if self.patience < 1:
            raise ConfigError(f"patience must be at least 1, got {self.patience}")


def _cv2() -> Any:
    import cv2

    return cv2


def histogram(rgb: RGBImage) -> npt.NDArray[np.float32]:
    """The normalised hue-saturation histogram :func:`cut_distance` compares."""
    cv2 = _cv2()
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [30, 32], [0, 180, 0, 256])
    cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1)
    return np.asarray(hist, np.float32)


def cut_distance(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """Bhattacharyya distance of two :func:`histogram` results (0 same, 1 nothing in common)."""
    return float(_cv2().compareHist(a, b, _cv2().HISTCMP_BHATTACHARYYA))


def _create(kind: str) -> Any:
    cv2 = _cv2()
    if kind == "csrt":
        params = cv2.TrackerCSRT_Params()
        return cv2.TrackerCSRT_create(params)
    return cv2.TrackerKCF_create()


class _Scaled:
    """Frames shrunk to the tracking size (each computed once, with its histogram)."""

    def __init__(self, frames: Callable[[int], RGBImage | None], max_side: int) -> None:
        self._frames = frames
        self._max_side = max_side
        self._cache: dict[int, tuple[Any, npt.NDArray[np.float32]] | None] = {}
        self.scale = 1.0

    def get(self, index: int) -> tuple[Any, npt.NDArray[np.float32]] | None:
        if index not in self._cache:
            rgb = self._frames(index) if index >= 0 else None
            if rgb is None:
                self._cache[index] = None
            else:
                cv2 = _cv2()
                height, width = rgb.shape[:2]
                self.scale = min(1.0, self._max_side / max(height, width))
                small = rgb
                if self.scale < 1.0:
                    size = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
                    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                bgr = np.ascontiguousarray(small[:, :, ::-1])
                self._cache[index] = (bgr, histogram(small))
        return self._cache[index]


def follow_box(
    frames: Sequence[RGBImage] | Callable[[int], RGBImage | None],
    seed: int,
    box: Box,
    config: FollowConfig | None = None,
) -> dict[int, Box]:
    """Frame index -> padded box wherever ``box`` (drawn on frame ``seed``) can be followed.

    ``frames`` is a sequence of RGB frames or a function giving frame ``i`` (None past the end).
    The seed frame gets the drawn box itself, padded like the rest.
    """
    config = config or FollowConfig()
    get = _getter(frames)
    scaled = _Scaled(get, config.max_side)
    first = scaled.get(seed)
    if first is None:
        raise ConfigError(f"frame {seed} does not exist")
    height, width = first[0].shape[:2]
    full_w, full_h = width / scaled.scale, height / scaled.scale
    out = {seed: _pad(box, config.pad, full_w, full_h)}
    for step in (1, -1):
        for index, found in _one_way(scaled, seed, box, step, config):
            out[index] = _pad(found, config.pad, full_w, full_h)
    return dict(sorted(out.items()))


def _getter(
    frames: Sequence[RGBImage] | Callable[[int], RGBImage | None],
) -> Callable[[int], RGBImage | None]:
    if callable(frames):
        return frames
    sequence = frames

    def get(index: int) -> RGBImage | None:
        return sequence[index] if 0 <= index < len(sequence) else None

    return get


def _one_way(
    scaled: _Scaled, seed: int, box: Box, step: int, config: FollowConfig
) -> Iterable[tuple[int, Box]]:
    start = scaled.get(seed)
    assert start is not None
    s = scaled.scale
    x1, y1, x2, y2 = box
    rect = (round(x1 * s), round(y1 * s), max(2, round((x2 - x1) * s)), max(2, round((y2 - y1) * s)))
    tracker = _create(config.tracker)
    tracker.init(start[0], rect)
    before = [start[1]]  # the histograms of the (at most two) frames before the current one
    height, width = start[0].shape[:2]
    last = box
    missed = 0
    for n in range(1, config.max_frames + 1):
        current = scaled.get(seed + step * n)
        if current is None:
            return
        following = scaled.get(seed + step * (n + 1))
        if is_cut(before, current[1], None if following is None else following[1], config.cut_distance):
            return
        before = [before[-1], current[1]]
        ok, found = tracker.update(current[0])
        fx, fy, fw, fh = (float(v) for v in found)
        inside = fw >= 2 and fh >= 2 and fx + fw > 0 and fy + fh > 0 and fx < width and fy < height
        if ok and inside:
            missed = 0
            last = (fx / s, fy / s, (fx + fw) / s, (fy + fh) / s)
        else:
            missed += 1
            if missed >= config.patience:
                return
        yield seed + step * n, last


def is_cut(
    before: Sequence[npt.NDArray[np.float32]],
    current: npt.NDArray[np.float32],
    following: npt.NDArray[np.float32] | None,
    threshold: float,
) -> bool:
    """True when ``current`` (and ``following``, if any) differ from every frame in ``before``."""
    if min(cut_distance(b, current) for b in before) <= threshold:
        return False
    return following is None or min(cut_distance(b, following) for b in before) > threshold


def _pad(box: Box, pad: float, width: float, height: float) -> Box:
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * pad, (y2 - y1) * pad
    return (
        max(0.0, x1 - dx),
        max(0.0, y1 - dy),
        min(width, x2 + dx),
        min(height, y2 + dy),
    )


def follow_all(
    frames: Sequence[RGBImage] | Callable[[int], RGBImage | None],
    seeds: Iterable[tuple[int, Box]],
    config: FollowConfig | None = None,
) -> dict[int, list[Box]]:
    """Frame index -> followed boxes, for several hand boxes ``(frame, box)``."""
    out: dict[int, list[Box]] = {}
    for seed, box in seeds:
        for index, found in follow_box(frames, seed, box, config).items():
            out.setdefault(index, []).append(found)
    return out


def seeds_of(document_frames: Iterable[Any]) -> list[tuple[int, Box]]:
    """The hand boxes (``source: manual``, not removed) of a document's frames."""
    return [
        (frame.frame, region.box)
        for frame in document_frames
        for region in frame.regions
        if region.source == "manual" and not region.removed
    ]
