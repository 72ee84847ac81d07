"""Drawing skeletons: white bones between landmarks, red joints (colours configurable)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from faceveil.config import PoseConfig
from faceveil.pose.landmarks import CONNECTIONS, PersonPose

RGBImage = npt.NDArray[np.uint8]
Point = tuple[int, int]


def line_width(width: int, height: int, thickness: int = 0) -> int:
    """Bone width: ``thickness`` if given, else 2 px per 640 px of the longer side (at least 2)."""
    return thickness if thickness > 0 else max(2, round(max(width, height) / 320))


def visible_bones(person: PersonPose, min_visibility: float) -> list[tuple[Point, Point]]:
    """The bones (pixel end points) of ``person`` whose two ends are at least ``min_visibility`` seen."""
    seen = person.visibility >= min_visibility
    xy = np.rint(person.points[:, :2]).astype(np.int64)
    return [
        ((int(xy[a, 0]), int(xy[a, 1])), (int(xy[b, 0]), int(xy[b, 1])))
        for a, b in CONNECTIONS
        if seen[a] and seen[b]
    ]


def draw_skeletons(
    image: RGBImage, people: Sequence[PersonPose], style: PoseConfig | None = None
) -> RGBImage:
    """Draw each person's skeleton on ``image`` in place (and return it).

    Only landmarks at least ``style.min_visibility`` visible are drawn, and only bones whose two
    ends are: a skeleton never shows a guessed limb as if it were seen.
    """
    style = style or PoseConfig()
    height, width = image.shape[:2]
    thick = line_width(width, height, style.thickness)
    radius = max(2, round(thick * 1.3))
    bone = tuple(int(c) for c in style.bone_color)
    joint = tuple(int(c) for c in style.joint_color)
    for person in people:
        for start, end in visible_bones(person, style.min_visibility):
            cv2.line(image, start, end, bone, thick, cv2.LINE_AA)
        seen = person.visibility >= style.min_visibility
        xy = np.rint(person.points[:, :2]).astype(np.int64)
        for i in np.flatnonzero(seen):
            cv2.circle(image, (int(xy[i, 0]), int(xy[i, 1])), radius, joint, -1, cv2.LINE_AA)
    return image
