"""Tests of the `faceveil` command line, run in-process with a fake detector (fast, no models)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import ExifTags, Image

from faceveil import __version__
from faceveil.cli import exit_codes
from faceveil.cli.main import main
from faceveil.core.detections import Detections
from faceveil.detection import available_detectors
from faceveil.detection.fake import FakeDetector

FACE = (10.0, 10.0, 40.0, 40.0)  # the face the fake detector reports, in pixels
CENTRE = (25, 25)  # its centre (x, y)


def run_cli(argv: Sequence[str]) -> int:
    """Exit code of ``faceveil argv``, whether main returns it or argparse raises SystemExit."""
    try:
        return main(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def face_detections(rgb: npt.NDArray[np.uint8]) -> Detections:
    """One face at `FACE`, with 5 landmarks; the score depends on the image width (per-image data)."""
    x1, y1, x2, y2 = FACE
    landmarks = np.array([[[18, 20], [32, 20], [25, 26], [19, 33], [31, 33]]], np.float32)
    score = min(1.0, rgb.shape[1] / 1000)
    return Detections(
        xyxy=np.array([[x1, y1, x2, y2]], np.float32),
        confidence=np.array([score], np.float32),
        landmarks=landmarks,
    )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeDetector:
    """Replace every detector the CLI builds with one fake that finds one face at `FACE`."""
    detector = FakeDetector(face_detections)
    monkeypatch.setattr("faceveil.anonymize.anonymizer.create_detector", lambda cfg: detector)
    return detector


def make_image(path: Path, width: int = 64, height: int = 64, value: int = 128, **save: Any) -> Path:
    """A uniform grey photo (with a little texture) saved at ``path`` (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([np.full_like(x, value), (x + y) % 32 + value - 16, np.full_like(x, value)], axis=2)
    Image.fromarray(rgb.astype(np.uint8)).save(path, **save)
    return path


def pixels(path: Path) -> npt.NDArray[np.uint8]:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if "faceveil-tmp" in p.name]


def read_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# version, help, usage


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert f"faceveil {__version__}" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--help"], ["image", "--help"], ["detect", "--help"], ["eval", "--help"]])
def test_help_documents_exit_codes(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes" in out
    for code in (exit_codes.OK, exit_codes.INPUT_FAILED, exit_codes.USAGE, exit_codes.MODEL, 130):
        assert f"  {code} " in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli([]) == exit_codes.USAGE
    assert "usage" in capsys.readouterr().err


def test_image_needs_an_output(
    tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_image(tmp_path / "a.jpg")
    assert run_cli(["image", str(src)]) == exit_codes.INPUT_FAILED
    assert "--in-place" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# faceveil image


def test_image_writes_png(tmp_path: Path, fake: FakeDetector) -> None:
    src = make_image(tmp_path / "a.jpg", width=80, height=60, quality=95)
    out = tmp_path / "b.png"
    assert run_cli(["image", str(src), "-o", str(out), "-q"]) == exit_codes.OK
    with Image.open(out) as img:
        assert img.format == "PNG"
        assert img.size == (80, 60)
    assert fake.calls == [(60, 80)]
    # the default blur changed the face but not a far corner
    before, after = pixels(src), pixels(out)
    assert not np.array_equal(before[15:35, 15:35], after[15:35, 15:35])
    np.testing.assert_array_equal(before[55:, 70:], after[55:, 70:])


def test_solid_colour_at_face_centre(tmp_path: Path, fake: FakeDetector) -> None:
    src = make_image(tmp_path / "a.png")
    out = tmp_path / "b.png"
    argv = ["image", str(src), "-o", str(out), "--mode", "solid", "--color", "ff00ff", "-q"]
    assert run_cli(argv) == exit_codes.OK
    result = pixels(out)
    x, y = CENTRE
    assert tuple(result[y, x]) == (255, 0, 255)
    assert tuple(result[y - 10 : y + 10, x - 10 : x + 10].reshape(-1, 3).min(axis=0)) == (255, 0, 255)
    assert tuple(result[63, 63]) != (255, 0, 255)  # outside the face


def test_box_draws_green_outline(tmp_path: Path, fake: FakeDetector) -> None:
    src = make_image(tmp_path / "a.png")
    plain, boxed = tmp_path / "plain.png", tmp_path / "boxed.png"
    assert run_cli(["image", str(src), "-o", str(plain), "--mode", "none", "-q"]) == exit_codes.OK
    assert run_cli(["image", str(src), "-o", str(boxed), "--mode", "none", "--box", "-q"]) == exit_codes.OK

    def green(rgb: npt.NDArray[np.uint8]) -> int:
        r, g, b = (rgb[..., i].astype(int) for i in range(3))
        return int(np.count_nonzero((g >= 200) & (r <= 60) & (b <= 60)))

    assert green(pixels(plain)) == 0
    assert green(pixels(boxed)) > 20


def test_folder_input_mirrored(tmp_path: Path, fake: FakeDetector) -> None:
    src = tmp_path / "in"
    make_image(src / "a.jpg")
    make_image(src / "sub" / "deeper" / "b.png")
    (src / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"
    assert run_cli(["image", str(src), "-o", str(out), "-q"]) == exit_codes.OK
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.jpg", "sub/deeper/b.png"]
    with Image.open(out / "sub" / "deeper" / "b.png") as img:
        assert img.format == "PNG"


def test_folder_output_format(tmp_path: Path, fake: FakeDetector) -> None:
    src = tmp_path / "in"
    make_image(src / "a.jpg")
    make_image(src / "sub" / "b.bmp")
    out = tmp_path / "out"
    assert run_cli(["image", str(src), "-o", str(out), "--format", "png", "-q"]) == exit_codes.OK
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a.png", "sub/b.png"]


def test_glob_input(tmp_path: Path, fake: FakeDetector) -> None:
    src = tmp_path / "in"
    make_image(src / "a.jpg")
    make_image(src / "b.png")
    make_image(src / "sub" / "c.jpg")
    out = tmp_path / "out"
    assert run_cli(["image", str(src / "**" / "*.jpg"), "-o", str(out), "-q"]) == exit_codes.OK
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.jpg", "sub/c.jpg"]


def test_glob_matching_nothing_fails(
    tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    pattern = str(tmp_path / "*.jpg")
    assert run_cli(["image", pattern, "-o", str(tmp_path / "out"), "-q"]) == exit_codes.INPUT_FAILED
    assert "no file matches" in capsys.readouterr().err


def test_several_files(tmp_path: Path, fake: FakeDetector) -> None:
    first = make_image(tmp_path / "x" / "a.jpg")
    second = make_image(tmp_path / "y" / "b.png")
    out = tmp_path / "out"
    assert run_cli(["image", str(first), str(second), "-o", str(out), "-q"]) == exit_codes.OK
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png"]
    assert len(fake.calls) == 2


def test_batch_with_bad_files_continues(
    tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    make_image(src / "good1.jpg")
    make_image(src / "good2.png")
    (src / "bad.jpg").write_text("this is a text file, not a JPEG\n")
    (src / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    report = tmp_path / "report.jsonl"
    code = run_cli(["image", str(src), "-o", str(out), "--json", str(report), "--workers", "2"])
    assert code == exit_codes.INPUT_FAILED
    assert sorted(p.name for p in out.iterdir()) == ["good1.jpg", "good2.png"]
    err = capsys.readouterr().err
    assert "bad.jpg" in err
    assert "empty.png" in err
    assert "2 of 4 photos done" in err
    records = {Path(r["image"]).name: r for r in read_lines(report.read_text())}
    assert set(records) == {"good1.jpg", "good2.png", "bad.jpg", "empty.png"}
    assert records["bad.jpg"]["error"]["code"] == "unsupported_input"
    assert records["empty.png"]["error"]["code"] == "empty_input"
    assert "faces" in records["good1.jpg"]
    assert not temp_files(tmp_path)


def test_missing_input_reported(
    tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    good = make_image(tmp_path / "a.jpg")
    code = run_cli(["image", str(good), str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "out"), "-q"])
    assert code == exit_codes.INPUT_FAILED
    assert (tmp_path / "out" / "a.jpg").is_file()
    assert "nope.jpg" in capsys.readouterr().err


def check_record(record: dict[str, Any], width: int, height: int) -> None:
    assert {"image", "width", "height", "faces"} <= set(record)
    assert (record["width"], record["height"]) == (width, height)
    assert len(record["faces"]) == 1
    for face in record["faces"]:
        assert set(face) >= {"box", "score", "landmarks"}
        assert len(face["box"]) == 4
        assert all(isinstance(v, int | float) for v in face["box"])
        assert face["box"] == list(FACE)
        assert 0.0 <= face["score"] <= 1.0
        assert len(face["landmarks"]) == 5
        assert all(len(point) == 2 for point in face["landmarks"])


def test_image_json_report(tmp_path: Path, fake: FakeDetector) -> None:
    first = make_image(tmp_path / "in" / "a.jpg", width=100, height=70)
    second = make_image(tmp_path / "in" / "b.png", width=90, height=80)
    report = tmp_path / "faces.jsonl"
    argv = ["image", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--json", str(report), "-q"]
    assert run_cli(argv) == exit_codes.OK
    lines = report.read_text().splitlines()
    assert len(lines) == 2
    records = {Path(r["image"]).name: r for r in map(json.loads, lines)}
    check_record(records["a.jpg"], 100, 70)
    check_record(records["b.png"], 90, 80)
    assert Path(records["a.jpg"]["image"]) == first.resolve()
    assert Path(records["b.png"]["output"]) == (tmp_path / "out" / "b.png")
    assert second.is_file()


def test_detect_writes_json_to_stdout(
    tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    make_image(tmp_path / "a.jpg", width=120, height=64)
    make_image(tmp_path / "b.png", width=64, height=100)
    before = sorted(tmp_path.rglob("*"))
    assert run_cli(["detect", str(tmp_path), "-q"]) == exit_codes.OK
    records = {Path(r["image"]).name: r for r in read_lines(capsys.readouterr().out)}
    assert set(records) == {"a.jpg", "b.png"}
    check_record(records["a.jpg"], 120, 64)
    check_record(records["b.png"], 64, 100)
    assert "output" not in records["a.jpg"]
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_detect_summary_on_stderr(
    tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    make_image(tmp_path / "a.jpg")
    assert run_cli(["detect", str(tmp_path / "a.jpg")]) == exit_codes.OK
    captured = capsys.readouterr()
    assert len(read_lines(captured.out)) == 1
    assert "1 of 1 photos done, 1 faces, 0 failed" in captured.err


def test_workers_give_same_records(tmp_path: Path, fake: FakeDetector) -> None:
    for i, (width, height) in enumerate([(64, 64), (100, 70), (80, 120), (150, 90)]):
        make_image(tmp_path / "in" / f"p{i}.png", width=width, height=height)
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert run_cli(["detect", str(tmp_path / "in"), "--workers", "1", "--json", str(one), "-q"]) == 0
    assert run_cli(["detect", str(tmp_path / "in"), "--workers", "2", "--json", str(two), "-q"]) == 0
    first, second = read_lines(one.read_text()), read_lines(two.read_text())
    assert len(first) == 4

    def key(record: dict[str, Any]) -> str:
        return json.dumps(record, sort_keys=True)

    assert sorted(map(key, first)) == sorted(map(key, second))


def test_workers_must_be_positive(
    tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    make_image(tmp_path / "a.jpg")
    assert run_cli(["detect", str(tmp_path / "a.jpg"), "--workers", "0"]) == exit_codes.INPUT_FAILED
    assert "--workers" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# never overwrite the input; failures leave nothing behind


def test_refuses_to_overwrite_input(
    tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_image(tmp_path / "a.jpg")
    original = src.read_bytes()
    assert run_cli(["image", str(src), "-o", str(src), "-q"]) == exit_codes.INPUT_FAILED
    assert src.read_bytes() == original
    assert "refusing to overwrite" in capsys.readouterr().err
    assert not temp_files(tmp_path)


def test_refuses_to_overwrite_input_in_folder_mode(tmp_path: Path, fake: FakeDetector) -> None:
    src = tmp_path / "in"
    photo = make_image(src / "a.jpg")
    original = photo.read_bytes()
    assert run_cli(["image", str(src), "-o", str(src), "-q"]) == exit_codes.INPUT_FAILED
    assert photo.read_bytes() == original
    assert not temp_files(tmp_path)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_output_folder_inside_input_folder_keeps_inputs(
    tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str], workers: str
) -> None:
    src = tmp_path / "in"
    make_image(src / "a.png", value=128)
    inner = make_image(src / "sub" / "a.png", value=60)
    original = inner.read_bytes()
    code = run_cli(["image", str(src), "-o", str(src / "sub"), "--workers", workers, "-q"])
    assert code == exit_codes.INPUT_FAILED  # in/a.png -> in/sub/a.png would destroy an input
    assert inner.read_bytes() == original
    assert "would overwrite the input" in capsys.readouterr().err
    assert not (src / "sub" / "sub").exists()  # files in the output folder are not inputs
    assert not temp_files(tmp_path)


def test_folder_without_photos_fails_with_message(
    tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no photos here")
    assert run_cli(["image", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q"]) == 1
    assert "no photos found" in capsys.readouterr().err
    assert run_cli(["detect", str(tmp_path / "in"), "-q"]) == exit_codes.INPUT_FAILED
    assert "no photos found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert fake.calls == []


def test_in_place_overwrites(tmp_path: Path, fake: FakeDetector) -> None:
    src = make_image(tmp_path / "a.png")
    original = pixels(src)
    assert run_cli(["image", str(src), "--in-place", "--mode", "solid", "-q"]) == exit_codes.OK
    result = pixels(src)
    assert result.shape == original.shape
    x, y = CENTRE
    assert tuple(result[y, x]) == (0, 0, 0)
    assert not np.array_equal(result, original)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_output_under_regular_file(
    tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_image(tmp_path / "a.jpg")
    blocker = tmp_path / "file.txt"
    blocker.write_text("a regular file")
    code = run_cli(["image", str(src), "-o", str(blocker / "sub" / "out.png"), "-q"])
    assert code == exit_codes.INPUT_FAILED
    assert "file.txt" in capsys.readouterr().err
    assert blocker.read_text() == "a regular file"
    assert not temp_files(tmp_path)
    # the same into a folder output
    code = run_cli(["image", str(src), str(src), "-o", str(blocker / "dir"), "-q"])
    assert code == exit_codes.INPUT_FAILED
    assert not temp_files(tmp_path)


def test_failed_rename_leaves_no_temp_file(
    tmp_path: Path, fake: FakeDetector, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_image(tmp_path / "a.jpg")

    def refuse(self: Path, target: Any) -> Path:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "replace", refuse)
    assert run_cli(["image", str(src), "-o", str(tmp_path / "out.png"), "-q"]) == exit_codes.INPUT_FAILED
    assert not (tmp_path / "out.png").exists()
    assert not temp_files(tmp_path)


def test_unknown_output_extension(
    tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_image(tmp_path / "a.jpg")
    assert run_cli(["image", str(src), "-o", str(tmp_path / "out.xyz"), "-q"]) == exit_codes.INPUT_FAILED
    assert ".png" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# metadata


def test_exif_gps_removed(tmp_path: Path, fake: FakeDetector) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    exif.get_ifd(ExifTags.IFD.GPSInfo).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)})
    src = make_image(tmp_path / "a.jpg", exif=exif)
    with Image.open(src) as img:  # the input really carries GPS data
        assert img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    out = tmp_path / "out.jpg"
    assert run_cli(["image", str(src), "-o", str(out), "-q"]) == exit_codes.OK
    with Image.open(out) as img:
        assert img.format == "JPEG"
        assert not img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert len(img.getexif()) == 0
        assert "exif" not in img.info
    data = out.read_bytes()
    assert b"Exif" not in data
    assert b"SpyCam" not in data


# ---------------------------------------------------------------------------------------------
# invalid options


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--mode", "foo", ["blur", "pixelate", "solid", "none"]),
        ("--shape", "star", ["ellipse", "box"]),
        ("--color", "zzz", ["RRGGBB"]),
        ("--threshold", "2", ["[0, 1]"]),
        ("--mask-scale", "10", ["[0.5, 4]"]),
        ("--jpeg-quality", "0", ["[1, 100]"]),
        ("--format", "gif", ["png", "jpg"]),
    ],
)
def test_invalid_option_values(
    tmp_path: Path,
    fake: FakeDetector,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    expected: list[str],
) -> None:
    src = make_image(tmp_path / "a.jpg")
    code = run_cli(["image", str(src), "-o", str(tmp_path / "b.png"), option, value, "-q"])
    assert code == exit_codes.USAGE
    err = capsys.readouterr().err
    for text in expected:
        assert text in err
    assert not (tmp_path / "b.png").exists()


def test_unknown_detector_lists_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_image(tmp_path / "a.jpg")
    assert run_cli(["detect", str(src), "--detector", "nope"]) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert "nope" in err
    for name in available_detectors():
        assert name in err


def test_model_error_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from faceveil.errors import ModelError

    def broken(cfg: Any) -> FakeDetector:
        raise ModelError("weights missing")

    monkeypatch.setattr("faceveil.anonymize.anonymizer.create_detector", broken)
    src = make_image(tmp_path / "a.jpg")
    assert run_cli(["detect", str(src), "-q"]) == exit_codes.MODEL
    assert "weights missing" in capsys.readouterr().err


def test_detector_options_reach_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = []

    def factory(cfg: Any) -> FakeDetector:
        seen.append(cfg)
        return FakeDetector(face_detections)

    monkeypatch.setattr("faceveil.anonymize.anonymizer.create_detector", factory)
    src = make_image(tmp_path / "a.jpg")
    argv = ["detect", str(src), "--detector", "yunet", "--threshold", "0.4", "--device", "cpu", "-q"]
    assert run_cli(argv) == exit_codes.OK
    assert run_cli(["detect", str(src), "--preset", "fast", "-q"]) == exit_codes.OK
    assert run_cli(["detect", str(src), "-q"]) == exit_codes.OK
    assert [(c.name, c.threshold, c.device) for c in seen] == [
        ("yunet", 0.4, "cpu"),
        ("fast", None, "auto"),
        ("balanced", None, "auto"),
    ]


# ---------------------------------------------------------------------------------------------
# faceveil eval


def test_eval_on_tiny_set(tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]) -> None:
    make_image(tmp_path / "imgs" / "one.png")
    make_image(tmp_path / "imgs" / "two.jpg", width=96, height=80)
    annotations = tmp_path / "annotations.json"
    boxes = [[12, 12, 38, 40, 0]]
    annotations.write_text(
        json.dumps([{"image": "imgs/one.png", "boxes": boxes}, {"image": "imgs/two.jpg", "boxes": boxes}])
    )
    out = tmp_path / "figures.json"
    assert run_cli(["eval", str(annotations), "-o", str(out), "-q"]) == exit_codes.OK
    table = capsys.readouterr().out
    assert "protected" in table
    assert "photos 2" in table
    assert "100.00" in table
    figures = json.loads(out.read_text())
    assert {"protected", "protected_by_height", "AP50", "recall50", "overblur", "median_ms", "config"} <= set(
        figures
    )
    assert figures["protected"] == pytest.approx(1.0)
    assert figures["recall50"] == pytest.approx(1.0)
    assert figures["AP50"] == pytest.approx(1.0)
    assert 0.0 <= figures["overblur"] <= 1.0
    assert figures["median_ms"] >= 0.0
    assert figures["config"]["detector"]["name"] == "balanced"
    assert len(fake.calls) == 2


def test_eval_missing_annotations(
    tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["eval", str(tmp_path / "nope.json"), "-q"]) == exit_codes.INPUT_FAILED
    assert "nope.json" in capsys.readouterr().err


def test_in_place_with_output_is_a_usage_error(tmp_path: Path, fake: FakeDetector) -> None:
    photo = make_image(tmp_path / "a.png")
    original = photo.read_bytes()
    code = run_cli(["image", str(photo), "-o", str(tmp_path / "b.png"), "--in-place", "-q"])
    assert code == exit_codes.USAGE
    assert photo.read_bytes() == original
    assert not (tmp_path / "b.png").exists()


def test_video_command_defaults_are_the_library_defaults() -> None:
    from faceveil.cli.main import build_parser
    from faceveil.cli.video_cmd import _job_config
    from faceveil.pipeline.video import VideoJobConfig

    args = build_parser().parse_args(["video", "in.mp4", "-o", "out.mp4"])
    assert _job_config(args) == VideoJobConfig()
