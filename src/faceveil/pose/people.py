"""Several people per picture: one BlazePose landmark pass per person crop.

The bundled landmark model follows one person (the most prominent the pose detector sees), so
each person is given a crop of their own:

1. ``hints``: boxes where people were in the previous video frame;
2. each face the face detector found (largest first): a crop that holds the body below it, with
   every *other* face in the crop painted over, so that the pose detector (which uses the face
   as its anchor) picks this person; the answer is kept only if its nose lies in that face;
3. ``search_rounds`` looks at the whole picture with everyone found so far painted over, for
   people without a usable face (seen from behind, in profile, too small for the face detector).

Limits (see docs/pose.md): a person whose face was not found and who is small in the whole
picture is missed (the pose detector sees the picture at 224x224); people standing behind one
another share crops and may be confused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from faceveil.config import PoseConfig
from faceveil.core.detections import Detections
from faceveil.core.geometry import box_iou
from faceveil.pose.backend import PoseBackend
from faceveil.pose.landmarks import PersonPose, from_normalized

RGBImage = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]

#: Two poses whose landmark boxes overlap more than this are the same person, whatever their noses.
DUPLICATE_IOU_STRICT = 0.8
#: A person found by the whole-picture search must have at least this mean visibility.
MIN_SEARCH_SCORE = 0.35


def body_box(face: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """The crop that holds a standing person's body under ``face`` (arms spread), in the picture."""
    x1, y1, x2, y2 = face
    size = max(x2 - x1, y2 - y1)
    cx = (x1 + x2) / 2
    return _clip((cx - 3.5 * size, y1 - 1.2 * size, cx + 3.5 * size, y1 + 8.5 * size), width, height)


def grow(box: Box, share: float, width: int, height: int) -> tuple[int, int, int, int]:
    """``box`` enlarged by ``share`` of its size on every side, clipped to the picture."""
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * share, (y2 - y1) * share
    return _clip((x1 - dx, y1 - dy, x2 + dx, y2 + dy), width, height)


def _clip(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    x1 = min(max(0, int(np.floor(box[0]))), width)
    y1 = min(max(0, int(np.floor(box[1]))), height)
    x2 = min(max(0, int(np.ceil(box[2]))), width)
    y2 = min(max(0, int(np.ceil(box[3]))), height)
    return x1, y1, x2, y2


def _inside(point: tuple[float, float], box: Box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _paint(image: RGBImage, boxes: Sequence[Box], origin: tuple[int, int]) -> None:
    """Fill ``boxes`` (picture pixels) in ``image`` (a crop at ``origin``) with its mean colour."""
    if not boxes:
        return
    height, width = image.shape[:2]
    fill = image.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    ox, oy = origin
    for box in boxes:
        x1, y1, x2, y2 = _clip((box[0] - ox, box[1] - oy, box[2] - ox, box[3] - oy), width, height)
        image[y1:y2, x1:x2] = fill


class PoseEstimator:
    """Finds everyone's 33 landmarks in a picture, one landmark pass per person.

    Args:
        config: thresholds and limits.
        backend: the single-person model; the bundled BlazePose when None (tests pass a
            :class:`faceveil.pose.fake.FakePoseBackend`).

    Thread-safe when the backend is (BlazePose is).
    """

    def __init__(self, config: PoseConfig | None = None, backend: PoseBackend | None = None) -> None:
        self.config = config or PoseConfig()
        if backend is None:
            from faceveil.pose.backend import BlazePose

            backend = BlazePose(self.config.min_detection)
        self.backend = backend

    def estimate(
        self,
        rgb: RGBImage,
        faces: Detections | None = None,
        hints: Sequence[PersonPose] = (),
        *,
        search: bool = True,
    ) -> list[PersonPose]:
        """Everyone found in ``rgb``: from ``hints`` (people of the previous frame), ``faces``, a search.

        ``search`` False skips the whole-picture search (video frames between detections).
        """
        height, width = rgb.shape[:2]
        face_boxes = self._faces(faces)
        people: list[PersonPose] = []
        limit = self.config.max_people
        for hint in hints:
            if len(people) >= limit:
                break
            crop = grow(hint.box(), 0.25, width, height)
            # the other people's heads are painted over, so that the detector picks this one
            others = [o.head_box() for o in hints if o is not hint and not same_person(o, hint)]
            found = self._run(rgb, crop, others, None)
            if found is not None and same_person(found, hint):
                self._keep(people, self._with_face(found, face_boxes))
        for face in face_boxes:
            if len(people) >= limit:
                break
            if any(_inside(p.nose, face) for p in people):
                continue  # this face's person is already found
            others = [f for f in face_boxes if f is not face]
            found = self._run(rgb, body_box(face, width, height), others, face)
            if found is not None and _inside(found.nose, face):
                self._keep(people, found)
        if search:
            self._search(rgb, people)
        return people[:limit]

    # ------------------------------------------------------------------------------------------
    def _faces(self, faces: Detections | None) -> list[Box]:
        if faces is None or not len(faces):
            return []
        sizes = np.maximum(faces.width, faces.height)
        order = np.argsort(-sizes, kind="stable")
        return [
            (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
            for b, size, score in zip(faces.xyxy[order], sizes[order], faces.confidence[order], strict=True)
            if size >= self.config.min_face and score >= self.config.min_face_score
        ]

    def _run(
        self, rgb: RGBImage, crop: tuple[int, int, int, int], paint: Sequence[Box], face: Box | None
    ) -> PersonPose | None:
        x1, y1, x2, y2 = crop
        if x2 - x1 < 8 or y2 - y1 < 8:
            return None
        view = np.array(rgb[y1:y2, x1:x2], copy=True)
        _paint(view, paint, (x1, y1))
        found = self.backend.estimate(view)
        if found is None:
            return None
        return from_normalized(found, x2 - x1, y2 - y1).moved(x1, y1).with_face(face)

    def _search(self, rgb: RGBImage, people: list[PersonPose]) -> None:
        height, width = rgb.shape[:2]
        for _ in range(self.config.search_rounds):
            if len(people) >= self.config.max_people:
                return
            painted = [_as_box(grow(p.box(), 0.1, width, height)) for p in people]
            found = self._run(rgb, (0, 0, width, height), painted, None)
            if found is None or found.score < MIN_SEARCH_SCORE:
                return
            if not self._keep(people, found):
                return  # the detector keeps finding someone already known

    @staticmethod
    def _with_face(person: PersonPose, faces: Sequence[Box]) -> PersonPose:
        for face in faces:
            if _inside(person.nose, face):
                return person.with_face(face)
        return person

    @staticmethod
    def _keep(people: list[PersonPose], person: PersonPose) -> bool:
        if any(same_person(person, p) for p in people):
            return False
        people.append(person)
        return True


def same_person(a: PersonPose, b: PersonPose) -> bool:
    """True when two poses are one person: noses closer than a third of a head, or boxes alike.

    (People standing close, one behind the other, have overlapping boxes but distinct noses.)
    """
    heads = [a.head_box(), b.head_box()]
    size = max(min(h[2] - h[0], h[3] - h[1]) for h in heads)
    gap = float(np.hypot(a.nose[0] - b.nose[0], a.nose[1] - b.nose[1]))
    return gap < size / 3 or _iou(a.box(), b.box()) > DUPLICATE_IOU_STRICT


def _as_box(box: tuple[int, int, int, int]) -> Box:
    return float(box[0]), float(box[1]), float(box[2]), float(box[3])


def _iou(a: Box, b: Box) -> float:
    return float(box_iou(np.asarray([a], np.float32), np.asarray([b], np.float32))[0, 0])
