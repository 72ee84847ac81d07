"""Rendering from a regions document: round trip, edits, and refusals before anything is written."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.cli import exit_codes
from faceveil.cli.main import main
from faceveil.config import AnonymizerConfig, MaskConfig
from faceveil.core.detections import Detections
from faceveil.detection.fake import FakeDetector
from faceveil.media.video_io import VideoOutputConfig
from faceveil.pipeline.regions import load_for
from faceveil.pipeline.video import VideoJob, VideoJobConfig
from faceveil.review.document import RegionsError
from faceveil.review.loader import load_document

RGB = npt.NDArray[np.uint8]
FRAMES, WIDTH, HEIGHT, SIDE = 24, 160, 96, 24
LOSSLESS = VideoOutputConfig(codec="ffv1", audio="drop")


def _patch_x(index: int) -> int:
    return 10 + 3 * index


def _make_video(path: Path, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    background = rng.integers(40, 120, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    patch = rng.integers(150, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    other = rng.integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv444p"
        for i in range(FRAMES):
            rgb = background.copy()
            x = _patch_x(i)
            rgb[20 : 20 + SIDE, x : x + SIDE] = patch
            rgb[60 : 60 + SIDE, 120 : 120 + SIDE] = other  # a second, still "face" nobody detects
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _decode(path: Path) -> list[RGB]:
    with av.open(str(path)) as container:
        return [np.asarray(f.to_ndarray(format="rgb24"), np.uint8) for f in container.decode(video=0)]


def _detector() -> FakeDetector:
    """Finds the moving patch (the brightest block of the frame's top half)."""

    def find(rgb: RGB) -> Detections:
        strip = rgb[20 : 20 + SIDE].astype(np.int32).sum(axis=(0, 2))
        x = int(np.argmax(np.convolve(strip, np.ones(SIDE), mode="valid")))
        box = np.asarray([[x, 20, x + SIDE, 20 + SIDE]], np.float32)
        return Detections(box, np.asarray([0.9], np.float32))

    return FakeDetector(find)


def _job() -> VideoJob:
    config = VideoJobConfig(
        anonymizer=AnonymizerConfig(mask=MaskConfig(mode="solid", color=(255, 0, 255))),
        output=LOSSLESS,
        detect_every=3,
    )
    return VideoJob(config, Anonymizer(config.anonymizer, detector=_detector()))


def _shown(rgb: RGB, original: RGB, x: int, y: int) -> bool:
    """The patch at (x, y) is as in the input (within 4:2:0 chroma loss), nothing hidden."""
    here = rgb[y : y + SIDE, x : x + SIDE].astype(np.int32)
    there = original[y : y + SIDE, x : x + SIDE].astype(np.int32)
    return _magenta(rgb, x, y, x + SIDE, y + SIDE) == 0.0 and float(np.abs(here - there).mean()) < 25


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mkv"
    _make_video(path)
    return path


def _magenta(rgb: RGB, x1: int, y1: int, x2: int, y2: int) -> float:
    block = rgb[y1:y2, x1:x2].astype(np.int32)
    hit = (block[..., 0] > 200) & (block[..., 1] < 60) & (block[..., 2] > 200)
    return float(hit.mean())


def test_rendering_the_unedited_document_gives_the_same_frames(clip: Path, tmp_path: Path) -> None:
    first, regions = tmp_path / "first.mkv", tmp_path / "first.regions.jsonl"
    report = _job().run(clip, first, regions)
    assert report.frames == FRAMES
    document = load_for(clip, regions)
    assert {r.source for f in document.frames for r in f.regions} >= {"detected", "tracked"}
    again, regions_again = tmp_path / "again.mkv", tmp_path / "again.regions.jsonl"
    _job().render(clip, again, document, regions_again)
    a, b = _decode(first), _decode(again)
    assert len(a) == len(b) == FRAMES
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert _magenta(a[5], _patch_x(5) + 2, 22, _patch_x(5) + SIDE - 2, 42) > 0.95
    # the render's own regions document lists the same frames
    assert list(load_document(regions_again).lines())[1:] == list(document.lines())[1:]


def test_edits_keep_a_track_add_a_followed_box_remove_a_box(clip: Path, tmp_path: Path) -> None:
    regions = tmp_path / "regions.jsonl"
    _job().run(clip, tmp_path / "first.mkv", regions)
    lines = [json.loads(line) for line in regions.read_text(encoding="utf-8").splitlines()]
    header, frames = lines[0], lines[1:]
    tracks = list(header["tracks"])
    assert len(tracks) == 1
    header["tracks"][tracks[0]]["keep"] = True  # the moving patch stays visible
    frames[10]["regions"].append(
        {"box": [120, 60, 120 + SIDE, 60 + SIDE], "track": None, "score": 1.0, "source": "manual"}
    )
    edited = tmp_path / "edited.jsonl"
    edited.write_text("\n".join(json.dumps(x) for x in [header, *frames]) + "\n", encoding="utf-8")
    document = load_for(clip, edited)
    assert document.edits() == {"kept_tracks": 1, "added": 1, "removed": 0}
    out = tmp_path / "edited.mkv"
    _job().render(clip, out, document)
    original = _decode(clip)
    for index, rgb in enumerate(_decode(out)):
        x = _patch_x(index)
        assert _shown(rgb, original[index], x, 20), index
        assert _magenta(rgb, 122, 62, 120 + SIDE - 2, 60 + SIDE - 2) > 0.95, index  # followed both ways

    # a removed box is shown again
    header["tracks"][tracks[0]]["keep"] = False
    frames[10]["regions"] = [dict(r, removed=True) for r in frames[10]["regions"] if r["source"] != "manual"]
    edited.write_text("\n".join(json.dumps(x) for x in [header, *frames]) + "\n", encoding="utf-8")
    document = load_for(clip, edited)
    assert document.edits() == {"kept_tracks": 0, "added": 0, "removed": len(frames[10]["regions"])}
    _job().render(clip, out, document)
    rendered = _decode(out)
    x = _patch_x(10)
    assert _shown(rendered[10], original[10], x, 20)
    assert _magenta(rendered[11], _patch_x(11) + 2, 22, _patch_x(11) + SIDE - 2, 42) > 0.95


def test_a_document_of_another_video_is_refused(clip: Path, tmp_path: Path) -> None:
    regions = tmp_path / "regions.jsonl"
    _job().run(clip, tmp_path / "first.mkv", regions)
    other = tmp_path / "other.mkv"
    _make_video(other, seed=4)
    with pytest.raises(RegionsError, match="written for another file"):
        load_for(other, regions)


def test_a_frame_count_that_differs_writes_nothing(clip: Path, tmp_path: Path) -> None:
    regions = tmp_path / "regions.jsonl"
    _job().run(clip, tmp_path / "first.mkv", regions)
    lines = regions.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    header["source"]["frames"] = FRAMES - 4
    regions.write_text("\n".join([json.dumps(header), *lines[1 : FRAMES - 3]]) + "\n", encoding="utf-8")
    document = load_for(clip, regions)  # same file: the frame count is only known once decoded
    target = tmp_path / "short.mkv"
    with pytest.raises(RegionsError, match="more frames than the regions file"):
        _job().render(clip, target, document)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv", "first.mkv", "regions.jsonl"]


def test_cli_regions_in(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    regions, out = tmp_path / "regions.jsonl", tmp_path / "out.mkv"
    _job().run(clip, tmp_path / "first.mkv", regions)
    argv = ["video", str(clip), "-o", str(out), "--codec", "ffv1", "--audio", "drop", "-q"]
    argv += ["--mode", "solid", "--color", "ff00ff"]
    assert main([*argv, "--regions-in", str(regions)]) == 0
    assert all(
        np.array_equal(x, y) for x, y in zip(_decode(out), _decode(tmp_path / "first.mkv"), strict=True)
    )
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{}\n", encoding="utf-8")
    out.unlink()
    assert main([*argv, "--regions-in", str(broken)]) != 0
    assert "header" in capsys.readouterr().err and not out.exists()
    assert main([*argv, "--regions-in", str(regions), "--keep-face", str(clip)]) == exit_codes.USAGE
    assert "mark tracks kept in the file" in capsys.readouterr().err
