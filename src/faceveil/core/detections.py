"""`Detections`: the one type every detector returns and every later stage consumes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from faceveil.errors import ValidationError

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def _as_float_array(name: str, value: Any, shape_tail: tuple[int, ...]) -> FloatArray:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 1 + len(shape_tail) or array.shape[1:] != shape_tail:
        if array.size == 0:
            return np.zeros((0, *shape_tail), dtype=np.float32)
        expected = ", ".join(["N", *(str(d) for d in shape_tail)])
        raise ValidationError(f"{name} must have shape ({expected}), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValidationError(f"{name} must contain only finite numbers")
    return array


@dataclass(frozen=True, eq=False)
class Detections:
    """Objects found in one image, as parallel arrays (one row per object).

    Attributes:
        xyxy: ``(N, 4)`` float32 boxes ``x1, y1, x2, y2`` in pixels of the original image.
        confidence: ``(N,)`` float32 scores in ``[0, 1]``.
        landmarks: ``(N, K, 2)`` float32 points in pixels (eyes, nose, mouth corners...) or None
            when the model gives none.
        tracker_id: ``(N,)`` int64 track ids, or None before tracking.
        data: extra per-object arrays of length ``N`` (for example ``"source"``).

    The constructor validates shapes, dtypes, ranges and box order, so every `Detections` that
    exists is consistent.
    """

    xyxy: FloatArray
    confidence: FloatArray
    landmarks: FloatArray | None = None
    tracker_id: IntArray | None = None
    data: Mapping[str, npt.NDArray[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        xyxy = _as_float_array("xyxy", self.xyxy, (4,))
        n = len(xyxy)
        confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if confidence.shape != (n,):
            raise ValidationError(f"confidence must have shape ({n},), got {confidence.shape}")
        if n and (np.any(confidence < 0) or np.any(confidence > 1) or np.any(np.isnan(confidence))):
            raise ValidationError("confidence must lie in [0, 1]")
        if n and np.any(xyxy[:, 2:] < xyxy[:, :2]):
            raise ValidationError("boxes must satisfy x1 <= x2 and y1 <= y2")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "landmarks", self._checked_landmarks(n))
        object.__setattr__(self, "tracker_id", self._checked_tracker_id(n))
        object.__setattr__(self, "data", self._checked_data(n))

    def _checked_landmarks(self, n: int) -> FloatArray | None:
        if self.landmarks is None:
            return None
        landmarks = np.asarray(self.landmarks, dtype=np.float32)
        if landmarks.ndim != 3 or landmarks.shape[0] != n or landmarks.shape[2] != 2:
            if n == 0 and landmarks.size == 0:
                return np.zeros((0, landmarks.shape[1] if landmarks.ndim == 3 else 0, 2), np.float32)
            raise ValidationError(f"landmarks must have shape ({n}, K, 2), got {landmarks.shape}")
        return landmarks

    def _checked_tracker_id(self, n: int) -> IntArray | None:
        if self.tracker_id is None:
            return None
        tracker_id = np.asarray(self.tracker_id)
        if tracker_id.shape != (n,) or (n and not np.issubdtype(tracker_id.dtype, np.integer)):
            raise ValidationError(f"tracker_id must be {n} integers, got {tracker_id.shape}")
        return tracker_id.astype(np.int64)

    def _checked_data(self, n: int) -> dict[str, npt.NDArray[Any]]:
        checked = {}
        for key, value in self.data.items():
            array = np.asarray(value)
            if array.ndim == 0 or len(array) != n:
                raise ValidationError(f"data[{key!r}] must have length {n}, got {array.shape}")
            checked[key] = array
        return checked

    # ----------------------------------------------------------------------------------------
    @classmethod
    def empty(cls) -> Detections:
        """No detections."""
        return cls(xyxy=np.zeros((0, 4), np.float32), confidence=np.zeros(0, np.float32))

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """Concatenate several `Detections`; optional fields are kept only if all parts have them."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return merge_columns(parts)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self)))

    def __getitem__(self, index: int | slice | Sequence[int] | npt.NDArray[Any]) -> Detections:
        """Select rows by index, slice, index list or boolean mask; always returns `Detections`."""
        if isinstance(index, int | np.integer):
            index = [index]
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            landmarks=None if self.landmarks is None else self.landmarks[index],
            tracker_id=None if self.tracker_id is None else self.tracker_id[index],
            data={k: v[index] for k, v in self.data.items()},
        )

    @property
    def width(self) -> FloatArray:
        """Box widths in pixels."""
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    @property
    def height(self) -> FloatArray:
        """Box heights in pixels."""
        return self.xyxy[:, 3] - self.xyxy[:, 1]

    def with_boxes(self, xyxy: FloatArray) -> Detections:
        """The same objects with new boxes (for example scaled or clipped)."""
        return Detections(xyxy, self.confidence, self.landmarks, self.tracker_id, self.data)

    def transformed(self, scale: float, offset_x: float = 0.0, offset_y: float = 0.0) -> Detections:
        """Map boxes and landmarks from a resized/cropped view back: ``p / scale + offset``."""
        shift = np.array([offset_x, offset_y], dtype=np.float32)
        xyxy = self.xyxy / np.float32(scale) + np.tile(shift, 2)
        landmarks = None if self.landmarks is None else self.landmarks / np.float32(scale) + shift
        return Detections(xyxy, self.confidence, landmarks, self.tracker_id, self.data)

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-ready list: ``{"box": [x1, y1, x2, y2], "score", "landmarks"}`` per object."""
        records = []
        for i in range(len(self)):
            record: dict[str, Any] = {
                "box": [round(float(v), 1) for v in self.xyxy[i]],
                "score": round(float(self.confidence[i]), 4),
                "landmarks": None
                if self.landmarks is None
                else [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks[i]],
            }
            if self.tracker_id is not None:
                record["track"] = int(self.tracker_id[i])
            records.append(record)
        return records


class Columns(Protocol):
    """What `merge_columns` reads of each part: a `Detections`, or rows kept as plain arrays."""

    @property
    def xyxy(self) -> npt.NDArray[np.float32]: ...
    @property
    def confidence(self) -> npt.NDArray[np.float32]: ...
    @property
    def landmarks(self) -> npt.NDArray[np.float32] | None: ...
    @property
    def tracker_id(self) -> npt.NDArray[np.int64] | None: ...
    @property
    def data(self) -> Mapping[str, npt.NDArray[Any]]: ...


def merge_columns(parts: Sequence[Columns]) -> Detections:
    """One validated `Detections` of ``parts``' rows in order; the optional columns (landmarks,
    tracker ids, data keys) are kept only where every part has them."""
    landmarks = None
    shapes = {p.landmarks.shape[1] if p.landmarks is not None else -1 for p in parts}
    if len(shapes) == 1 and -1 not in shapes:
        landmarks = np.concatenate([p.landmarks for p in parts if p.landmarks is not None])
    tracker_id = None
    if all(p.tracker_id is not None for p in parts):
        tracker_id = np.concatenate([p.tracker_id for p in parts if p.tracker_id is not None])
    keys = set.intersection(*(set(p.data) for p in parts))
    return Detections(
        xyxy=np.concatenate([p.xyxy for p in parts]),
        confidence=np.concatenate([p.confidence for p in parts]),
        landmarks=landmarks,
        tracker_id=tracker_id,
        data={k: np.concatenate([p.data[k] for p in parts]) for k in sorted(keys)},
    )
