"""Keeping chosen people visible: face descriptors (dlib's ResNet) compared with reference photos.

The model is dlib's 128-d face descriptor network with its 5-point landmark model, both from the
``face_recognition_models`` wheel (public-domain weights) run by ``dlib-bin`` (Boost licence);
this is faceveil's own code around them. Decisions are made per track, never per frame: a track
is kept only when enough of its frames were described and most of them lie close to one reference
person (see :class:`KeepConfig`). When in doubt, it is hidden.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceveil.errors import ConfigError, InputError, ModelError

RGBImage = npt.NDArray[np.uint8]
Descriptor = npt.NDArray[np.float32]
Box = tuple[float, float, float, float]

_PREDICTOR = "shape_predictor_5_face_landmarks.dat"
_NETWORK = "dlib_face_recognition_resnet_model_v1.dat"


def _model_folder() -> Path:
    # find_spec locates the package without running its __init__ (which needs pkg_resources)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the face_recognition_models package is not installed (needed by --keep-face)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class FaceDescriber:
    """Describes a face (a box in an RGB picture) as a 128-d vector; same person: close vectors.

    Loads both dlib models once (about 100 MB in memory). Thread-safe (one lock around dlib).
    """

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise ModelError(f"dlib (the dlib-bin package) is not installed: {exc}") from None
        folder = _model_folder()
        try:
            self._predictor = dlib.shape_predictor(str(folder / _PREDICTOR))
            self._network = dlib.face_recognition_model_v1(str(folder / _NETWORK))
        except RuntimeError as exc:
            raise ModelError(f"cannot load the face descriptor models from {folder.name}: {exc}") from None
        self._dlib = dlib
        self._lock = threading.Lock()

    def describe(self, rgb: RGBImage, box: Box, jitters: int = 0) -> Descriptor:
        """The descriptor of the face in ``box`` (pixels of ``rgb``); with ``jitters``, the mean
        over that many randomly shifted, mirrored copies (steadier, slower: for references)."""
        x1, y1, x2, y2 = box
        rect = self._dlib.rectangle(round(x1), round(y1), round(x2), round(y2))
        image = np.ascontiguousarray(rgb)
        with self._lock:
            shape = self._predictor(image, rect)
            vector = self._network.compute_face_descriptor(image, shape, jitters)
        return np.asarray(vector, np.float32)


#: Measured with dlib's descriptor on the YouTube Faces sequences (320x240, faces of about 45 px):
#: against a reference frame (described with 10 jitters) of the same person taken 30+ frames
#: away, the mean descriptor of ten frames of a track lies at 0.46 at most (44 pairs; 95% at or
#: below 0.45); against a reference of anyone else at 0.49 or more (132 pairs); single faces of
#: other people (80 faces of the photo set) came no closer than 0.47 to any track frame. 0.45
#: keeps nearly every genuine track and lies below every impostor distance seen.
DEFAULT_KEEP_DISTANCE = 0.45
#: Jittered copies averaged for each reference photo's descriptor.
REFERENCE_JITTERS = 10


@dataclass(frozen=True)
class KeepConfig:
    """When a track counts as a reference person.

    Attributes:
        threshold: a track is kept when the mean of its frames' descriptors lies within this
            Euclidean distance of a reference's (dlib's examples use 0.6; faceveil's is stricter).
        min_samples: a track with fewer described frames is hidden (too little to decide on).
        samples: frames described per track at most (the clearest, spread over the track).
        min_face: faces smaller than this (shorter side, pixels) are not described.
    """

    threshold: float = DEFAULT_KEEP_DISTANCE
    min_samples: int = 3
    samples: int = 10
    min_face: int = 24

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.5:
            raise ConfigError(f"keep threshold must lie in (0, 1.5), got {self.threshold}")
        if self.min_samples < 1 or self.samples < self.min_samples:
            raise ConfigError("keep needs 1 <= min_samples <= samples")
        if self.min_face < 1:
            raise ConfigError(f"min_face must be at least 1, got {self.min_face}")


@dataclass(frozen=True)
class References:
    """The reference people: one descriptor per reference photo (``names`` for messages)."""

    descriptors: Descriptor
    names: tuple[str, ...]

    def nearest(self, descriptor: Descriptor) -> tuple[int, float]:
        """(reference index, distance) of the closest reference."""
        distances = np.linalg.norm(self.descriptors - descriptor[None, :], axis=1)
        best = int(np.argmin(distances))
        return best, float(distances[best])


def load_references(
    paths: Sequence[str | os.PathLike[str]], find_faces: Any, describer: FaceDescriber
) -> References:
    """Describe the one face of each reference photo (``find_faces(rgb) -> Detections``).

    A photo with no face, or with several faces of which none is clearly the main one (at least
    twice the area of every other), is refused: it would not say whom to keep.
    """
    from faceveil.media.image_io import read_image

    vectors, names = [], []
    for path in paths:
        name = Path(path).name
        photo = read_image(path)
        faces = find_faces(photo.rgb)
        if len(faces) == 0:
            raise InputError(f"no face found in the reference photo {name}")
        areas = faces.width * faces.height
        order = np.argsort(areas)[::-1]
        if len(faces) > 1 and areas[order[0]] < 2 * areas[order[1]]:
            raise InputError(
                f"the reference photo {name} shows {len(faces)} faces of similar size; crop it to one person"
            )
        box = tuple(float(v) for v in faces.xyxy[order[0]])
        vectors.append(describer.describe(photo.rgb, box, REFERENCE_JITTERS))  # type: ignore[arg-type]
        names.append(name)
    if not vectors:
        raise ConfigError("no reference photo given")
    return References(np.stack(vectors).astype(np.float32), tuple(names))


def keep_decision(descriptors: Sequence[Descriptor], references: References, config: KeepConfig) -> bool:
    """Keep a track (or a photo's face) whose ``descriptors`` are these? Their mean must lie within
    ``config.threshold`` of a reference; fewer than ``min_samples`` descriptors: hidden."""
    if len(descriptors) < config.min_samples:
        return False
    mean = np.mean(np.stack(descriptors), axis=0).astype(np.float32)
    return references.nearest(mean)[1] <= config.threshold


def pick_samples(rows: Iterable[tuple[int, Box, float]], config: KeepConfig) -> list[tuple[int, Box]]:
    """Up to ``config.samples`` (frame, box) of a track's detected rows ``(frame, box, score)``:
    faces large enough, the best scored of evenly spaced stretches of the track."""
    usable = [
        (frame, box, score)
        for frame, box, score in rows
        if min(box[2] - box[0], box[3] - box[1]) >= config.min_face
    ]
    if not usable:
        return []
    usable.sort(key=lambda r: r[0])
    chunks = np.array_split(np.arange(len(usable)), min(config.samples, len(usable)))
    picked = []
    for chunk in chunks:
        best = max((usable[i] for i in chunk), key=lambda r: r[2])
        picked.append((best[0], best[1]))
    return picked


def kept_tracks(
    samples: Mapping[int, Sequence[Descriptor]], references: References, config: KeepConfig
) -> set[int]:
    """The tracks to keep, from the descriptors of each track's sampled frames."""
    return {track for track, found in samples.items() if keep_decision(found, references, config)}


@dataclass(frozen=True, eq=False)
class KeepFaces:
    """Reference people to keep visible (``--keep-face``), with the model that compares them."""

    references: References
    describer: FaceDescriber
    config: KeepConfig = KeepConfig()

    @classmethod
    def from_photos(
        cls, paths: Sequence[str | os.PathLike[str]], find_faces: Any, config: KeepConfig | None = None
    ) -> KeepFaces:
        """Load the model and describe each reference photo's face (see :func:`load_references`)."""
        describer = FaceDescriber()
        return cls(load_references(paths, find_faces, describer), describer, config or KeepConfig())

    def matches(self, descriptors: Sequence[Descriptor], min_samples: int | None = None) -> bool:
        """Is this track (or photo face) one of the references? (see :func:`keep_decision`)"""
        config = self.config
        if min_samples is not None:
            config = KeepConfig(
                config.threshold, min_samples, max(min_samples, config.samples), config.min_face
            )
        return keep_decision(descriptors, self.references, config)
