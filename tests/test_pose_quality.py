"""Pose and whole-person privacy on the real photos and videos in ../shared/data."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.cli.main import main
from faceveil.config import AnonymizerConfig, DetectorConfig, MaskConfig
from faceveil.evaluation.metrics import PROTECTED_COVERAGE
from faceveil.pipeline.video import iter_frames
from faceveil.pose.landmarks import LANDMARK_NAMES

pytestmark = pytest.mark.quality

MAGENTA = np.asarray([255, 0, 255], np.int32)
TORSO = (11, 12, 23, 24)
PEOPLE = {  # photo -> least number of people (each with a face) that must be found
    "images/fr_two_people.jpg": 2,
    "images/ua_coco01_two_people.jpg": 2,
    "images/dp2_norwegian_government_group.jpg": 15,
    "dlib_voc/images/2008_002506.jpg": 3,
}


def _sequences(shared_data: Path) -> list[dict[str, Any]]:
    sequences: list[dict[str, Any]] = json.loads((shared_data / "ytf_tracks" / "tracks.json").read_text())
    return sequences


def _video_and_truth(
    shared_data: Path, sequence: dict[str, Any], tmp_path: Path
) -> tuple[Path, dict[int, list[float]]]:
    """The sequence as a video (its AVI, or its frames encoded near-losslessly) and its face boxes."""
    root = shared_data / "ytf_tracks"
    if sequence.get("video"):
        return root / sequence["video"], {r["video_frame"]: r["boxes"][0] for r in sequence["video_frames"]}
    target = tmp_path / f"{sequence['sequence']}.mp4"
    folder = root / sequence["frames_dir"]
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height = Image.open(folder / sequence["frames"][0]["frame_file"]).size
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "8", "preset": "veryfast"}
        for record in sequence["frames"]:
            rgb = np.asarray(Image.open(folder / record["frame_file"]).convert("RGB"))
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return target, {r["frame_index"]: r["boxes"][0] for r in sequence["frames"]}


def _magenta(rgb: npt.NDArray[np.uint8], tolerance: int = 70) -> npt.NDArray[np.bool_]:
    return np.asarray(np.abs(rgb.astype(np.int32) - MAGENTA).sum(axis=2) < tolerance)


@pytest.mark.parametrize("name", sorted(PEOPLE))
def test_pose_on_group_photos(shared_data: Path, tmp_path: Path, name: str) -> None:
    out, report = tmp_path / "out.png", tmp_path / "pose.jsonl"
    args = ["pose", str(shared_data / name), "-o", str(out), "--json", str(report), "-q", "--mode", "none"]
    assert main(args) == 0
    (record,) = [json.loads(line) for line in report.read_text().splitlines()]
    assert list(record) == ["schema", "width", "height", "image", "output", "people"]
    people = [p for p in record["people"] if p["face_box"] is not None]
    assert len(people) >= PEOPLE[name]
    drawn = np.asarray(Image.open(out).convert("RGB")).astype(np.int32)
    source = np.asarray(Image.open(shared_data / name).convert("RGB")).astype(np.int32)
    joints = red = 0
    for person in record["people"]:
        assert [lm["name"] for lm in person["landmarks"]] == list(LANDMARK_NAMES)
        for lm in person["landmarks"]:
            assert 0.0 <= lm["visibility"] <= 1.0
            assert lm["nx"] == pytest.approx(lm["x"] / record["width"], abs=0.1 / record["width"])
    for person in people:
        x1, y1, x2, y2 = person["face_box"]
        nose = person["landmarks"][0]
        assert x1 <= nose["x"] <= x2 and y1 <= nose["y"] <= y2, person["person"]
        for lm in person["landmarks"]:  # every visible joint drawn red where the photo was not
            x, y = round(lm["x"]), round(lm["y"])
            if lm["visibility"] >= 0.5 and 0 <= x < drawn.shape[1] and 0 <= y < drawn.shape[0]:
                joints += 1
                red += bool(drawn[y, x, 0] > 200 and drawn[y, x, 1] < 60 and drawn[y, x, 2] < 60)
    assert joints >= 10 * PEOPLE[name]
    assert red >= 0.9 * joints  # a few joints lie under another person's bones, drawn later
    assert np.abs(drawn - source).max(axis=2).astype(bool).mean() < 0.2  # the rest left as it was


def test_pose_on_lab_and_arm_wrestling_videos(shared_data: Path, tmp_path: Path) -> None:
    # measured share of frames with that many people: lab 64/72; arm wrestling 68/280 (low-res,
    # bodies cut by the border and seen from the side: see the limits in docs/pose.md)
    for name, least, share in (
        ("mmaction2_ntu_two_people.mp4", 2, 0.85),
        ("mmaction2_arm_wrestling.mp4", 1, 0.2),
    ):
        report = tmp_path / f"{name}.jsonl"
        out = tmp_path / name
        assert (
            main(["pose", str(shared_data / "videos" / name), "-o", str(out), "--json", str(report), "-q"])
            == 0
        )
        records = [json.loads(line) for line in report.read_text().splitlines()]
        with av.open(str(out)) as container:
            frames = sum(1 for _ in container.decode(video=0))
        assert len(records) == frames
        assert [r["frame"] for r in records] == list(range(frames))
        found = [len(r["people"]) >= least for r in records]
        assert np.mean(found) >= share, name
        for record in records:
            for person in record["people"]:
                assert len(person["landmarks"]) == 33 and person["track"] is not None


def _protected(rgb: npt.NDArray[np.uint8], box: list[float]) -> bool:
    x1, y1, x2, y2 = (round(v) for v in box)
    inside = _magenta(rgb)[max(0, y1) : y2, max(0, x1) : x2]
    return bool(inside.size and inside.mean() >= PROTECTED_COVERAGE)


def _protection(video: Path, truth: dict[int, list[float]], out: Path, target: str) -> dict[int, bool]:
    args = ["video", str(video), "-o", str(out), "-q", "--mode", "solid", "--color", "ff00ff"]
    assert main([*args, "--target", target]) == 0
    with av.open(str(out)) as container:
        return {
            i: _protected(np.asarray(f.to_ndarray(format="rgb24"), np.uint8), truth[i])
            for i, f in enumerate(container.decode(video=0))
            if i in truth
        }


def test_head_and_person_targets_hide_every_face_that_face_mode_hides(
    shared_data: Path, tmp_path: Path
) -> None:
    totals: dict[str, int] = {"face": 0, "head": 0, "person": 0}
    for sequence in _sequences(shared_data):
        video, truth = _video_and_truth(shared_data, sequence, tmp_path)
        seen: dict[str, dict[int, bool]] = {}
        for target in totals:
            seen[target] = _protection(video, truth, tmp_path / f"{target}.mp4", target)
            totals[target] += sum(seen[target].values())
        for target in ("head", "person"):
            lost = [i for i, ok in seen["face"].items() if ok and not seen[target][i]]
            assert lost == [], (sequence["sequence"], target, lost)
    assert totals["head"] >= totals["face"] and totals["person"] >= totals["face"]


def _person_check(rgb: npt.NDArray[np.uint8], anonymizer: Anonymizer, finder: Anonymizer) -> dict[str, Any]:
    hidden = _magenta(anonymizer.apply(rgb).image)
    people = finder.apply(rgb).people
    height, width = rgb.shape[:2]
    torso = on = 0
    near = np.zeros((height, width), bool)
    for person in people:
        for i in TORSO:
            x, y = (round(float(v)) for v in person.points[i, :2])
            if person.visibility[i] >= 0.5 and 0 <= x < width and 0 <= y < height:
                torso += 1
                on += bool(hidden[y, x])
        x1, y1, x2, y2 = person.box()
        hx1, hy1, _, _ = person.head_box()
        size = y2 - y1
        top, left = max(0, int(min(y1, hy1) - 0.3 * size)), max(0, int(min(x1, hx1) - 0.3 * size))
        near[top : int(y2 + 0.3 * size), left : int(x2 + 0.3 * size)] = True
    return {
        "people": len(people),
        "torso": torso,
        "on": on,
        "far_hidden": float(hidden[~near].mean()) if (~near).any() else 0.0,
    }


def test_person_target_hides_people_and_leaves_empty_background(shared_data: Path) -> None:
    solid = MaskConfig(mode="solid", color=(255, 0, 255))
    anonymizer = Anonymizer(AnonymizerConfig(mask=solid, target="person"))
    finder = Anonymizer(AnonymizerConfig(mask=MaskConfig(mode="none"), target="head"))
    pictures = [
        np.asarray(Image.open(shared_data / "images" / n).convert("RGB"))
        for n in ("dp2_norwegian_government_group.jpg", "fr_two_people.jpg", "ua_coco01_two_people.jpg")
    ]
    lab = shared_data / "videos" / "mmaction2_ntu_two_people.mp4"
    pictures += [f.rgb for f in iter_frames(lab) if f.index in (0, 35, 70)]
    for rgb in pictures:
        check = _person_check(rgb, anonymizer, finder)
        assert check["people"] >= 1 and check["torso"] >= 4, check
        assert check["on"] >= 0.95 * check["torso"], check
        # at most 1.5% of the background far from anyone hidden (over-hiding, not a miss): the
        # video frame is converted from 4:2:0 by OpenCV since the speed work, whose +-1 level
        # differences from swscale move the silhouettes' edges: 1.07% measured on one picture
        assert check["far_hidden"] <= 0.015, check
    # and the empty wall above the people in the lab is untouched, pixel for pixel
    frame = pictures[-1]
    out = Anonymizer(AnonymizerConfig(detector=DetectorConfig(name="fast"), mask=solid, target="person"))
    assert np.array_equal(out.apply(frame).image[:150], frame[:150])
