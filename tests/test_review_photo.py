"""Photos and their regions document: written, rendered from again, edited, refused when foreign."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.config import AnonymizerConfig, MaskConfig
from faceveil.detection.fake import FakeDetector, boxes
from faceveil.pipeline.photo import PhotoProcessor
from faceveil.review.loader import load_document

FACES = ((10, 10, 40, 40), (60, 10, 90, 40))


def _processor() -> PhotoProcessor:
    config = AnonymizerConfig(mask=MaskConfig(mode="solid", color=(255, 0, 255), shape="box"))
    return PhotoProcessor(Anonymizer(config, detector=FakeDetector(boxes(*FACES))))


def _photo(path: Path, seed: int = 1) -> np.ndarray:  # type: ignore[type-arg]
    rgb = np.random.default_rng(seed).integers(0, 255, (60, 100, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return rgb


def _pixels(path: Path) -> np.ndarray:  # type: ignore[type-arg]
    return np.asarray(Image.open(path).convert("RGB"))


def test_photo_regions_round_trip_and_edits(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    original = _photo(source)
    first, regions = tmp_path / "first.png", tmp_path / "in.regions.jsonl"
    assert _processor().process(source, first, regions=regions).error is None
    document = load_document(regions)
    assert document.kind == "image" and [r.track for r in document.frames[0].regions] == [1, 2]
    again = tmp_path / "again.png"
    assert _processor().process(source, again, regions_in=regions).error is None
    assert np.array_equal(_pixels(first), _pixels(again))

    header, frame = (json.loads(line) for line in regions.read_text(encoding="utf-8").splitlines())
    header["tracks"]["1"]["keep"] = True
    frame["regions"][1]["removed"] = True
    frame["regions"].append({"box": [40, 45, 60, 58], "track": None, "score": 1.0, "source": "manual"})
    regions.write_text(json.dumps(header) + "\n" + json.dumps(frame) + "\n", encoding="utf-8")
    edited = tmp_path / "edited.png"
    assert _processor().process(source, edited, regions_in=regions).error is None
    out = _pixels(edited)
    assert np.array_equal(out[10:40, 10:40], original[10:40, 10:40])  # kept
    assert np.array_equal(out[10:40, 60:90], original[10:40, 60:90])  # removed
    assert (out[47:56, 42:58] == [255, 0, 255]).all()  # added by hand


def test_photo_regions_of_another_photo_are_refused(tmp_path: Path) -> None:
    source, other = tmp_path / "in.png", tmp_path / "other.png"
    _photo(source)
    _photo(other, seed=2)
    regions = tmp_path / "regions.jsonl"
    assert _processor().process(source, tmp_path / "first.png", regions=regions).error is None
    target = tmp_path / "out.png"
    report = _processor().process(other, target, regions_in=regions)
    assert report.error is not None and "written for another file" in str(report.error)
    assert not target.exists()


def test_cli_image_regions_round_trip_and_keep_face(tmp_path: Path) -> None:
    """The real detector and descriptor on the sample photo: --regions then --regions-in gives the
    same pixels; --keep-face with a crop of the same person leaves her face as it was."""
    from faceveil.cli.main import main

    sample = Path(__file__).resolve().parents[1] / "src" / "faceveil" / "samples" / "grace_hopper.jpg"
    first, regions, again = tmp_path / "first.png", tmp_path / "sample.regions.jsonl", tmp_path / "again.png"
    assert main(["image", str(sample), "-o", str(first), "--regions", str(regions), "-q"]) == 0
    document = load_document(regions)
    assert len(document.frames[0].regions) >= 1 and not document.keep
    assert main(["image", str(sample), "-o", str(again), "--regions-in", str(regions), "-q"]) == 0
    assert np.array_equal(_pixels(first), _pixels(again))

    x1, y1, x2, y2 = (round(v) for v in document.frames[0].regions[0].box)
    reference = tmp_path / "reference.png"
    rgb = np.asarray(Image.open(sample).convert("RGB"))
    height, width = rgb.shape[:2]
    Image.fromarray(rgb[max(0, y1 - 80) : min(height, y2 + 80), max(0, x1 - 80) : min(width, x2 + 80)]).save(
        reference
    )
    kept, kept_regions = tmp_path / "kept.png", tmp_path / "kept.regions.jsonl"
    argv = [
        "image",
        str(sample),
        "-o",
        str(kept),
        "--keep-face",
        str(reference),
        "--regions",
        str(kept_regions),
        "-q",
    ]
    assert main(argv) == 0
    assert load_document(kept_regions).keep == {document.frames[0].regions[0].track}
    assert np.array_equal(_pixels(kept)[y1:y2, x1:x2], rgb[y1:y2, x1:x2])
