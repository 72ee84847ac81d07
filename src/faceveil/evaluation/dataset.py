"""Labelled photo sets in the ``annotations.json`` format of the project's test data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from faceveil.errors import InputError

# WIDER FACE rows: x1, y1, x2, y2, blur, expression, illumination, invalid, occlusion, pose, difficulty
_WIDER_COLUMNS = 11
_WIDER_INVALID = 7
_WIDER_DIFFICULTY = 10
_WIDER_IGNORED_DIFFICULTY = 3


@dataclass(frozen=True, eq=False)
class LabelledImage:
    """One photo and its GT faces; ``ignored`` faces count neither as hits nor as misses."""

    path: Path
    boxes: npt.NDArray[np.float32]
    ignored: npt.NDArray[np.bool_]


def load_annotations(path: str | Path) -> list[LabelledImage]:
    """Read ``annotations.json``: ``[{"image": relative path, "boxes": [[x1, y1, x2, y2, ...]]}]``.

    Rows with WIDER FACE's 11 columns are ignored when flagged ``invalid`` or difficulty 3 (in
    no official evaluation set); other formats count every box.
    """
    path = Path(path)
    try:
        records = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read annotations {path}: {exc}") from exc
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a JSON list of {{'image', 'boxes'}} records")
    images = []
    for record in records:
        try:
            rows = [list(map(float, row)) for row in record["boxes"]]
            image = path.parent / record["image"]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: malformed record {str(record)[:80]}: {exc}") from exc
        boxes = np.asarray([row[:4] for row in rows], dtype=np.float32).reshape(-1, 4)
        ignored = np.asarray([_is_ignored(row) for row in rows], dtype=bool)
        images.append(LabelledImage(path=image, boxes=boxes, ignored=ignored))
    return images


def _is_ignored(row: list[float]) -> bool:
    if len(row) != _WIDER_COLUMNS:
        return False
    return row[_WIDER_INVALID] == 1 or row[_WIDER_DIFFICULTY] == _WIDER_IGNORED_DIFFICULTY
