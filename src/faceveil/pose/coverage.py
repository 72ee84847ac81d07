"""What the ``head`` and ``person`` targets and ``skeleton_only`` add to face hiding.

Privacy rule: everything here only ADDS hidden pixels. The faces the face detector found are
always hidden as in ``face`` mode; head boxes from pose landmarks and person silhouettes come on
top, so ``head`` and ``person`` are supersets of ``face``.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from faceveil.anonymize.regions import Region
from faceveil.config import AnonymizerConfig
from faceveil.core.detections import Detections
from faceveil.pose.backend import Segmenter
from faceveil.pose.draw import visible_bones
from faceveil.pose.landmarks import PersonPose
from faceveil.pose.people import PoseEstimator, body_box, grow

RGBImage = npt.NDArray[np.uint8]
BoolMask = npt.NDArray[np.bool_]
Box = tuple[float, float, float, float]

#: Segmentation probability above which a pixel belongs to a person.
PERSON_THRESHOLD = 0.5
#: The silhouette is dilated by this share of its crop's height (hair, loose clothes, edges).
DILATE_SHARE = 0.02
#: Landmarks at least this visible add their limbs to the silhouette.
BODY_VISIBILITY = 0.5
#: Limbs added from the pose are this share of the person's size thick.
BONE_SHARE = 0.06
#: Shoulders and hips, in order around the torso.
TORSO = (11, 12, 24, 23)
#: Pose points used as the 5 face landmarks of a head box (eyes, nose, mouth corners as seen).
_FACE_POINTS = [5, 2, 0, 10, 9]


class BodyCoverage:
    """Finds people (pose) and their silhouettes (segmentation) for an :class:`Anonymizer`.

    Args:
        config: the anonymizer's settings (target, pose thresholds).
        estimator: the multi-person pose estimator; built from ``config.pose`` when None.
        segmenter: the person segmenter; the bundled selfie segmentation when None, and only
            built when the target is ``person`` or ``skeleton_only`` is set.
    """

    def __init__(
        self,
        config: AnonymizerConfig,
        estimator: PoseEstimator | None = None,
        segmenter: Segmenter | None = None,
    ) -> None:
        self.config = config
        self.estimator = estimator or PoseEstimator(config.pose)
        if segmenter is None and self.wants_silhouettes:
            from faceveil.pose.backend import SelfieSegmenter

            segmenter = SelfieSegmenter()
        self.segmenter = segmenter

    @property
    def wants_silhouettes(self) -> bool:
        """True when whole people are hidden (``person`` target or ``skeleton_only``)."""
        return self.config.target == "person" or self.config.skeleton_only

    def people(self, rgb: RGBImage, faces: Detections) -> list[PersonPose]:
        """Everyone pose finds in ``rgb``, seeded by ``faces``."""
        return self.estimator.estimate(rgb, faces)

    def add_heads(self, faces: Detections, people: Sequence[PersonPose]) -> Detections:
        """``faces`` (unchanged, first) followed by a head box for every person."""
        if not people:
            return faces
        boxes = np.asarray([p.head_box() for p in people], np.float32)
        scores = np.asarray([p.score for p in people], np.float32)
        landmarks = None
        if faces.landmarks is not None and faces.landmarks.shape[1] == len(_FACE_POINTS):
            landmarks = np.stack([p.points[_FACE_POINTS, :2] for p in people]).astype(np.float32)
        heads = Detections(boxes, np.clip(scores, 0.0, 1.0), landmarks)
        if not len(faces):
            return heads
        return Detections.merge([faces, heads])

    def silhouettes(
        self, rgb: RGBImage, regions: Detections, people: Sequence[PersonPose] = ()
    ) -> list[Region]:
        """Person silhouettes around ``people`` and around every face or head box in ``regions``.

        Each person gets a crop of their own (the selfie model is made for one framed person);
        pixels outside every crop are never touched.
        """
        height, width = rgb.shape[:2]
        crops = [_person_crop(p, width, height) for p in people]
        for box in regions.xyxy:
            face = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
            if not any(_inside(_centre(face), p.box()) for p in people):
                crops.append(body_box(face, width, height))
        mask = np.zeros((height, width), dtype=bool)
        for crop in crops:
            self._segment_into(rgb, crop, mask)
        for person in people:  # where the pose sees a body, it is hidden even if segmentation missed it
            _draw_body(mask, person)
        return mask_regions(mask)

    def _segment_into(self, rgb: RGBImage, crop: tuple[int, int, int, int], mask: BoolMask) -> None:
        x1, y1, x2, y2 = crop
        if x2 - x1 < 4 or y2 - y1 < 4 or self.segmenter is None:
            return
        person = self.segmenter.segment(np.ascontiguousarray(rgb[y1:y2, x1:x2])) > PERSON_THRESHOLD
        radius = max(1, round(DILATE_SHARE * (y2 - y1)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        grown = cv2.dilate(person.astype(np.uint8), kernel).astype(bool)
        mask[y1:y2, x1:x2] |= grown


def _draw_body(mask: BoolMask, person: PersonPose) -> None:
    """Add ``person``'s visible torso and limbs to ``mask``, as a thick skeleton."""
    x1, y1, x2, y2 = person.box()
    thickness = max(3, round(BONE_SHARE * max(x2 - x1, y2 - y1)))
    canvas = np.zeros(mask.shape, dtype=np.uint8)
    if (person.visibility[list(TORSO)] >= BODY_VISIBILITY).all():
        corners = np.rint(person.points[list(TORSO), :2]).astype(np.int32)
        cv2.fillPoly(canvas, [corners], (1,))
    for start, end in visible_bones(person, BODY_VISIBILITY):
        cv2.line(canvas, start, end, (1,), thickness)
    mask |= canvas.astype(bool)


def _person_crop(person: PersonPose, width: int, height: int) -> tuple[int, int, int, int]:
    """A crop around a person's landmarks, with room for hair above and clothes around."""
    x1, y1, x2, y2 = person.box()
    hx1, hy1, hx2, hy2 = person.head_box()
    return grow((min(x1, hx1), min(y1, hy1), max(x2, hx2), max(y2, hy2)), 0.15, width, height)


def _inside(point: tuple[float, float], box: Box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def mask_regions(mask: BoolMask) -> list[Region]:
    """One :class:`Region` per connected part of ``mask`` (its bounding window and pixels)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    regions = []
    for label in range(1, count):
        x, y, w, h = (int(v) for v in stats[label, :4])
        window = (x, y, x + w, y + h)
        part = np.asarray(labels[y : y + h, x : x + w] == label)
        regions.append(Region(box=(float(x), float(y), float(x + w), float(y + h)), window=window, mask=part))
    return regions
