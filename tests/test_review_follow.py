"""Following a hand-drawn box: synthetic frames with a moving textured patch, a flash and a cut."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from faceveil.errors import ConfigError
from faceveil.review.follow import FollowConfig, follow_all, follow_box

RGB = npt.NDArray[np.uint8]


def _scene(count: int, flash: int | None = None, cut: int | None = None) -> list[RGB]:
    rng = np.random.default_rng(7)
    background = rng.integers(60, 120, (120, 160, 3), dtype=np.uint8)
    other = np.zeros_like(background)
    other[:, :, 2] = 220  # a different shot: blue, nothing in common with the first
    patch = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    frames = []
    for i in range(count):
        frame = (other if cut is not None and i >= cut else background).copy()
        x = 20 + 2 * i
        frame[40:64, x : x + 24] = patch
        if flash is not None and i == flash:
            frame = np.clip(frame.astype(np.int16) + 110, 0, 255).astype(np.uint8)
        frames.append(frame)
    return frames


def _covers(box: tuple[float, float, float, float], x: int) -> bool:
    x1, y1, x2, y2 = box
    return x1 <= x + 2 and x2 >= x + 22 and y1 <= 42 and y2 >= 62


def test_a_box_is_followed_forwards_and_backwards_and_padded() -> None:
    frames = _scene(30)
    seed = 15
    found = follow_box(frames, seed, (20 + 2 * seed, 40, 44 + 2 * seed, 64))
    assert sorted(found) == list(range(30))
    assert all(_covers(box, 20 + 2 * i) for i, box in found.items())
    x1, _, x2, _ = found[seed]
    assert x2 - x1 > 24  # padded


def test_following_stops_at_a_cut_not_at_a_flash() -> None:
    frames = _scene(30, flash=10, cut=22)
    found = follow_box(frames, 5, (30, 40, 54, 64), FollowConfig(tracker="kcf"))
    assert 10 in found and 21 in found  # past the flash
    assert max(found) == 21  # not into the next shot


def test_follow_all_collects_several_seeds_and_config_is_checked() -> None:
    frames = _scene(8)
    followed = follow_all(frames, [(0, (20, 40, 44, 64)), (7, (34, 40, 58, 64))], FollowConfig(max_frames=2))
    assert sorted(followed) == [0, 1, 2, 5, 6, 7]
    with pytest.raises(ConfigError, match="csrt, kcf"):
        FollowConfig(tracker="mosse")
    with pytest.raises(ConfigError, match="does not exist"):
        follow_box(frames, 8, (0, 0, 5, 5))
