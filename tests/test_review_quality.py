"""Review quality on real labelled data (../shared/data): hand boxes followed, faces kept by identity."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from faceveil.anonymize.regions import build_regions, union_mask
from faceveil.cli.main import main
from faceveil.evaluation.metrics import PROTECTED_COVERAGE, coverage
from faceveil.evaluation.video import score_track
from faceveil.review.follow import follow_box
from faceveil.review.loader import load_document

pytestmark = pytest.mark.quality


def _sequences(shared_data: Path) -> list[dict[str, Any]]:
    sequences: list[dict[str, Any]] = json.loads((shared_data / "ytf_tracks" / "tracks.json").read_text())
    return sequences


def _frames(shared_data: Path, sequence: dict[str, Any]) -> list[np.ndarray[Any, np.dtype[np.uint8]]]:
    folder = shared_data / "ytf_tracks" / sequence["frames_dir"]
    return [np.asarray(Image.open(folder / r["frame_file"]).convert("RGB")) for r in sequence["frames"]]


def test_one_hand_box_hides_the_face_through_the_sequence(shared_data: Path) -> None:
    """One box drawn on the middle frame, followed both ways, hides >= 95% of each sequence's
    labelled frames (hidden: at least 70% of the labelled box under the rendered ellipse)."""
    for sequence in _sequences(shared_data):
        frames = _frames(shared_data, sequence)
        truth = {r["frame_index"]: r["boxes"][0] for r in sequence["frames"]}
        seed = len(frames) // 2
        followed = follow_box(frames, seed, tuple(truth[seed]))
        regions = {i: np.asarray([box], np.float32) for i, box in followed.items()}
        height, width = frames[0].shape[:2]
        score = score_track(truth, regions, width, height)
        assert score.share >= 0.95, (sequence["sequence"], score)


def _side_by_side(
    shared_data: Path, kept: dict[str, Any], other: dict[str, Any], folder: Path
) -> tuple[Path, Path, dict[int, list[float]], dict[int, list[float]]]:
    """A video of two labelled people side by side (each from a third into their sequence), and a
    reference photo of ``kept`` from the first tenth of theirs (a frame not in the video)."""
    left, right = _frames(shared_data, kept), _frames(shared_data, other)
    start_l, start_r = len(left) // 3, len(right) // 3
    count = min(len(left) - start_l, len(right) - start_r)
    video = folder / "pair.mp4"
    truth_kept, truth_other = {}, {}
    with av.open(str(video), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 640, 240, "yuv444p"
        stream.options = {"crf": "8", "preset": "veryfast"}
        for i in range(count):
            rgb = np.concatenate([left[start_l + i], right[start_r + i]], axis=1)
            truth_kept[i] = kept["frames"][start_l + i]["boxes"][0]
            x1, y1, x2, y2 = other["frames"][start_r + i]["boxes"][0]
            truth_other[i] = [x1 + 320, y1, x2 + 320, y2]
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    reference = folder / "reference.png"
    Image.fromarray(left[len(left) // 10]).save(reference)
    return video, reference, truth_kept, truth_other


def _coverage(boxes: list[list[float]], truth: list[float], width: int, height: int) -> float:
    mask = union_mask(
        build_regions(np.asarray(boxes, np.float32).reshape(-1, 4), 1.3, "ellipse", width, height),
        width,
        height,
    )
    return float(coverage(mask, np.asarray([truth], np.float32))[0])


@pytest.mark.parametrize(
    ("kept", "other"), [("Aaron_Guiel5", "Albert_Brooks0"), ("Albert_Brooks0", "Agbani_Darego0")]
)
def test_keep_face_keeps_one_person_and_hides_the_other(
    shared_data: Path, tmp_path: Path, kept: str, other: str
) -> None:
    """--keep-face with a reference photo of one of two people: that person visible in >= 90% of
    their frames (under 10% of the face hidden), the other hidden in every frame and never kept."""
    sequences = {s["sequence"]: s for s in _sequences(shared_data)}
    video, reference, truth_kept, truth_other = _side_by_side(
        shared_data, sequences[kept], sequences[other], tmp_path
    )
    regions = tmp_path / "pair.regions.jsonl"
    argv = ["video", str(video), "-o", str(tmp_path / "out.mp4"), "--regions", str(regions), "-q"]
    assert main([*argv, "--keep-face", str(reference)]) == 0
    document = load_document(regions)
    assert document.keep
    visible = 0
    for index, line in enumerate(document.frames):
        hidden = [list(r.box) for r in line.regions if r.hidden]
        shown = [list(r.box) for r in line.regions if r.kept]
        if _coverage(hidden, truth_kept[index], 640, 240) <= 0.1:
            visible += 1
        assert _coverage(hidden, truth_other[index], 640, 240) >= PROTECTED_COVERAGE, index
        assert _coverage(shown, truth_other[index], 640, 240) == 0.0, index  # nothing of theirs kept
    assert visible / len(document.frames) >= 0.9


def test_keep_face_in_photos(shared_data: Path, tmp_path: Path) -> None:
    """A reference portrait of one man: in the photo of him beside another man only his face is kept;
    in group photos and crowds he is not in, no face is kept."""
    from faceveil.anonymize.anonymizer import Anonymizer
    from faceveil.pipeline.photo import PhotoProcessor
    from faceveil.review.identity import KeepFaces

    images = shared_data / "images"
    anonymizer = Anonymizer()
    keep = KeepFaces.from_photos([images / "fr_low_res_240p.jpg"], anonymizer.detect)
    processor = PhotoProcessor(anonymizer, keep=keep)
    kept: dict[str, list[list[float]]] = {}
    for name in ("fr_two_people.jpg", "dp2_norwegian_government_group.jpg", "dlib_bald_guys_collage.jpg"):
        regions = tmp_path / f"{name}.regions.jsonl"
        report = processor.process(images / name, tmp_path / f"{name}.png", regions=regions)
        assert report.error is None
        frame = load_document(regions).frames[0]
        assert len(frame.regions) >= 2
        kept[name] = [list(r.box) for r in frame.regions if r.kept]
    assert len(kept["fr_two_people.jpg"]) == 1 and kept["fr_two_people.jpg"][0][2] < 563  # the left man
    assert kept["dp2_norwegian_government_group.jpg"] == [] and kept["dlib_bald_guys_collage.jpg"] == []
