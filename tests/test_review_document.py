"""The regions document: written, read back, validated, and refused when it does not fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceveil.core.detections import Detections
from faceveil.review.document import (
    FrameRegions,
    Region,
    RegionsError,
    SourceIdentity,
    build_document,
    check_source,
    file_identity,
    hidden_detections,
    regions_from_detections,
)
from faceveil.review.loader import load_document, parse_document
from faceveil.review.writer import RegionsWriter

SOURCE = SourceIdentity("clip.mp4", "ab" * 32, 1000, 64, 48, 3, "25")


def _document() -> list[str]:
    frames = [
        FrameRegions(0, 0, (Region((1.5, 2.0, 20.25, 30.0), 1, 0.9, "detected"),)),
        FrameRegions(
            1, 512, (Region((2.5, 2.0, 21.0, 30.0), 1, 0.8, "tracked"), Region((40, 5, 60, 20), 2, 0.7))
        ),
        FrameRegions(2, 1024, (), hidden_whole=True),
    ]
    return list(build_document("video", SOURCE, frames).lines())


def test_round_trip_keeps_every_field_and_old_frame_fields() -> None:
    lines = _document()
    header = json.loads(lines[0])
    assert header["schema"] == "faceveil-regions" and header["version"] == 2
    assert header["source"]["frames"] == 3 and header["source"]["fps"] == "25"
    assert header["tracks"]["1"] == {"keep": False, "first": 0, "last": 1, "frames": 2, "best": 0}
    first = json.loads(lines[1])
    assert set(first) == {"frame", "pts", "regions"}
    assert set(first["regions"][0]) == {"box", "track", "score", "source"}  # the version-1 fields
    document = parse_document(lines)
    assert list(document.lines()) == lines
    assert document.frames[2].hidden_whole


def test_boxes_are_written_exactly() -> None:
    box = np.array([10.123456, 20.987654, 30.5, 40.333333], np.float32)
    writer_rows = Detections(box.reshape(1, 4), np.array([0.5], np.float32))
    frame = FrameRegions(0, 0, regions_from_detections(writer_rows))
    document = build_document("image", SourceIdentity("a.png", "cd" * 32, 5, 64, 48, 1), [frame])
    again = parse_document(list(document.lines()))
    assert np.array_equal(hidden_detections(again.frames[0]).xyxy, writer_rows.xyxy)


def test_edits_keep_add_remove() -> None:
    lines = _document()
    header = json.loads(lines[0])
    header["tracks"]["2"]["keep"] = True
    frame1 = json.loads(lines[2])
    frame1["regions"][1]["kept"] = True
    frame1["regions"][0]["removed"] = True
    frame1["regions"].append({"box": [5, 5, 15, 15], "track": None, "score": 1.0, "source": "manual"})
    edited = [json.dumps(header), lines[1], json.dumps(frame1), lines[3]]
    document = parse_document(edited)
    assert document.keep == {2}
    assert document.edits() == {"kept_tracks": 1, "added": 1, "removed": 1}
    hidden = hidden_detections(document.frames[1])
    assert hidden.xyxy.tolist() == [[5, 5, 15, 15]]  # the removed one and the kept one are shown


def test_keep_from_header_marks_regions_kept() -> None:
    document = parse_document(_document()).with_keep([1])
    rows = [r for f in document.frames for r in f.regions if r.track == 1]
    assert rows and all(r.kept for r in rows)
    assert len(hidden_detections(document.frames[0])) == 0


def _broken(change: str) -> list[str]:
    lines = _document()
    header, frame = json.loads(lines[0]), json.loads(lines[2])
    if change == "version":
        header["version"] = 3
    elif change == "unknown":
        frame["regions"][0]["keep"] = True
    elif change == "kept-without-track-keep":
        frame["regions"][0]["kept"] = True
    elif change == "box":
        frame["regions"][0]["box"] = [30, 2, 10, 40]
    elif change == "outside":
        frame["regions"][0]["box"] = [500, 500, 600, 600]
    elif change == "source":
        frame["regions"][0]["source"] = "guessed"
    elif change == "keep-unknown-track":
        header["tracks"]["9"] = {"keep": True}
    elif change == "missing-frame":
        return [json.dumps(header), lines[1], lines[3]]
    elif change == "no-header":
        return lines[1:]
    elif change == "not-json":
        return [lines[0], "{oops", *lines[2:]]
    elif change == "frames":
        header["source"]["frames"] = 4
    return [json.dumps(header), lines[1], json.dumps(frame), lines[3]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("version", "version 3 is not supported"),
        ("unknown", "unknown field(s) keep"),
        ("kept-without-track-keep", "kept flag disagrees"),
        ("box", "x1 <= x2"),
        ("outside", "outside the 64x48 picture"),
        ("source", "source must be one of"),
        ("keep-unknown-track", "kept tracks not in the document: [9]"),
        ("missing-frame", "frame 1 is missing or out of order"),
        ("no-header", "written by an older faceveil"),
        ("not-json", "not JSON"),
        ("frames", "lists 3 frames but its source has 4"),
    ],
)
def test_malformed_documents_are_refused(change: str, message: str) -> None:
    with pytest.raises(RegionsError) as info:
        parse_document(_broken(change))
    assert message in str(info.value)


def test_mismatched_source_is_refused(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not the same bytes")
    document = parse_document(_document())
    identity = file_identity(video, 64, 48, 3, None)
    with pytest.raises(RegionsError, match="written for another file"):
        check_source(document, identity, "video")
    same = SourceIdentity("clip.mp4", SOURCE.sha256, SOURCE.size, 64, 48, 5)
    with pytest.raises(RegionsError, match="it has 3 frames, the input 5"):
        check_source(document, same, "video")
    with pytest.raises(RegionsError, match="for a video, not a image"):
        check_source(document, SOURCE, "image")
    check_source(document, SOURCE, "video")


def test_writer_streams_frames_and_writes_the_header_last(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    writer = RegionsWriter(target, "video", SOURCE, keep=frozenset({4}))
    found = Detections(
        np.array([[1, 2, 10, 12], [20, 20, 30, 30]], np.float32),
        np.array([0.9, 0.6], np.float32),
        tracker_id=np.array([4, 5], np.int64),
        data={"source": np.array(["detected", "filled"])},
    )
    writer.frame(0, 0, found)
    writer.frame(1, 40, Detections.empty(), hidden_whole=True)
    with pytest.raises(ValueError, match="in order"):
        writer.frame(5, 50, Detections.empty())
    writer.finish()
    document = load_document(target)
    assert document.source.frames == 2 and document.keep == {4}
    assert [r.kept for r in document.frames[0].regions] == [True, False]
    assert [r.source for r in document.frames[0].regions] == ["detected", "filled"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # no scratch file left


def test_file_identity_hashes_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    identity = file_identity(path, 1, 1, 1, None)
    assert identity.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert identity.size == 3 and identity.name == "a.bin"
