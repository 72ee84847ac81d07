"""`PersonPose` and `PoseResult`: BlazePose's 33 body landmarks for each person in a picture."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from faceveil.errors import ValidationError

FloatArray = npt.NDArray[np.float32]

#: BlazePose's 33 landmarks, in the model's order (index = position in every array).
LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)
NUM_LANDMARKS = len(LANDMARK_NAMES)
NOSE, LEFT_EAR, RIGHT_EAR, LEFT_SHOULDER, RIGHT_SHOULDER = 0, 7, 8, 11, 12
#: The face landmarks (nose, eyes, ears, mouth).
HEAD = tuple(range(11))

#: Bones drawn between landmarks (MediaPipe's POSE_CONNECTIONS).
CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)  # fmt: skip

#: Version of the JSON written by :meth:`PoseResult.to_json`; changes only when the schema does.
SCHEMA_VERSION = 1


@dataclass(frozen=True, eq=False)
class PersonPose:
    """One person's landmarks, in pixels of the whole picture.

    Attributes:
        points: ``(33, 3)`` float32 ``x, y, z``: ``x, y`` in pixels; ``z`` is depth relative to
            the hips, in pixels on the same scale as ``x`` (smaller is nearer the camera).
        visibility: ``(33,)`` float32 in ``[0, 1]``: how likely each landmark is in view.
        face: the face box ``(x1, y1, x2, y2)`` that led to this person, or None when the pose
            detector found them on its own (a back or a profile the face detector missed).
        track: the person's id across video frames, or None on a photo.
    """

    points: FloatArray
    visibility: FloatArray
    face: tuple[float, float, float, float] | None = None
    track: int | None = None

    def __post_init__(self) -> None:
        points = np.asarray(self.points, dtype=np.float32)
        visibility = np.asarray(self.visibility, dtype=np.float32).reshape(-1)
        if points.shape != (NUM_LANDMARKS, 3) or visibility.shape != (NUM_LANDMARKS,):
            raise ValidationError(
                f"a pose has {NUM_LANDMARKS} points (x, y, z) and visibilities, "
                f"got {points.shape} and {visibility.shape}"
            )
        if not (np.all(np.isfinite(points)) and np.all(np.isfinite(visibility))):
            raise ValidationError("pose landmarks must be finite numbers")
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "visibility", np.clip(visibility, 0.0, 1.0))

    @property
    def score(self) -> float:
        """Mean visibility of the landmarks: a rough confidence that this is a whole person."""
        return float(self.visibility.mean())

    @property
    def nose(self) -> tuple[float, float]:
        """The nose landmark in pixels."""
        return float(self.points[NOSE, 0]), float(self.points[NOSE, 1])

    def box(self) -> tuple[float, float, float, float]:
        """The box around all 33 landmarks (also those predicted out of view)."""
        xy = self.points[:, :2]
        return (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max()))

    def head_box(self) -> tuple[float, float, float, float]:
        """A box around the whole head: face, hair and ears, whichever way the person faces.

        Sized from the largest of the ear span, the face landmarks' spread and half the
        shoulder width, so a head seen from behind (face landmarks squeezed) keeps its size;
        it reaches higher above the eyes than below the mouth (hair), and always holds the
        face this person was found from.
        """
        head = self.points[list(HEAD), :2]
        ears = self.points[[LEFT_EAR, RIGHT_EAR], :2]
        shoulders = self.points[[LEFT_SHOULDER, RIGHT_SHOULDER], :2]
        spread = float(np.max(head.max(0) - head.min(0)))
        ear_span = float(np.linalg.norm(ears[0] - ears[1]))
        shoulder_span = float(np.linalg.norm(shoulders[0] - shoulders[1]))
        size = max(1.4 * ear_span, 1.2 * spread, 0.5 * shoulder_span, 4.0)
        cx, cy = (float(v) for v in head.mean(0))
        x1, y1, x2, y2 = cx - 0.6 * size, cy - 0.8 * size, cx + 0.6 * size, cy + 0.6 * size
        if self.face is not None:
            fx1, fy1, fx2, fy2 = self.face
            x1, y1, x2, y2 = min(x1, fx1), min(y1, fy1), max(x2, fx2), max(y2, fy2)
        return x1, y1, x2, y2

    def with_face(self, face: tuple[float, float, float, float] | None) -> PersonPose:
        """The same pose, anchored to ``face`` (picture pixels)."""
        return replace(self, face=face)

    def with_track(self, track: int | None) -> PersonPose:
        """The same pose with a track id."""
        return replace(self, track=track)

    def moved(self, dx: float, dy: float, scale: float = 1.0) -> PersonPose:
        """Map from a crop back to the picture: ``p * scale + (dx, dy)`` (z scales too)."""
        points = self.points * np.float32(scale)
        points[:, 0] += dx
        points[:, 1] += dy
        face = self.face
        if face is not None:
            face = (face[0] * scale + dx, face[1] * scale + dy, face[2] * scale + dx, face[3] * scale + dy)
        return replace(self, points=points, face=face)

    def to_json(self, width: int, height: int, index: int) -> dict[str, Any]:
        """One person as JSON: ids, box, score, face box and the 33 named landmarks."""
        landmarks = []
        for i, name in enumerate(LANDMARK_NAMES):
            x, y, z = (float(v) for v in self.points[i])
            landmarks.append(
                {
                    "name": name,
                    "x": round(x, 1),
                    "y": round(y, 1),
                    "z": round(z, 1),
                    "nx": round(x / width, 5),
                    "ny": round(y / height, 5),
                    "nz": round(z / width, 5),
                    "visibility": round(float(self.visibility[i]), 4),
                }
            )
        return {
            "person": index,
            "track": self.track,
            "box": [round(v, 1) for v in self.box()],
            "score": round(self.score, 4),
            "face_box": None if self.face is None else [round(v, 1) for v in self.face],
            "landmarks": landmarks,
        }


@dataclass(frozen=True, eq=False)
class PoseResult:
    """Everyone found in one picture (a photo, or one video frame)."""

    width: int
    height: int
    people: list[PersonPose]

    def to_json(self, **extra: Any) -> dict[str, Any]:
        """``{"schema", "width", "height", ...extra, "people": [...]}``; see docs/pose.md."""
        record: dict[str, Any] = {"schema": SCHEMA_VERSION, "width": self.width, "height": self.height}
        record.update(extra)
        record["people"] = [p.to_json(self.width, self.height, i) for i, p in enumerate(self.people)]
        return record


def from_normalized(
    landmarks: npt.ArrayLike, width: int, height: int, face: tuple[float, float, float, float] | None = None
) -> PersonPose:
    """A pose from a backend's ``(33, 4)`` normalised ``x, y, z, visibility``.

    (The picture the backend saw; move it into a larger one with :meth:`PersonPose.moved`.)
    """
    array = np.asarray(landmarks, dtype=np.float32)
    if array.shape != (NUM_LANDMARKS, 4):
        raise ValidationError(f"expected ({NUM_LANDMARKS}, 4) normalised landmarks, got {array.shape}")
    points = array[:, :3] * np.asarray([width, height, width], dtype=np.float32)
    return PersonPose(points=points, visibility=array[:, 3], face=face)
