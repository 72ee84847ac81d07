"""Tests of video anonymization: tiny videos built with PyAV, run through `VideoJob` and `faceveil video`.

Detection is replaced by a fake detector that reports one face at `FACE_BOX`, hidden in solid
magenta, so every test is fast and knows exactly where the face is.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.cli import exit_codes
from faceveil.cli.main import main
from faceveil.config import AnonymizerConfig, MaskConfig
from faceveil.core.detections import Detections
from faceveil.detection.fake import FakeDetector, boxes
from faceveil.errors import CorruptInputError, InputError, JobCancelledError, OutputError
from faceveil.media.video_io import OUTPUT_FORMATS, VideoOutputConfig, VideoSink, read_media
from faceveil.pipeline.video import DEFAULT_DETECT_EVERY, VideoJob, VideoJobConfig, VideoReport

RGBImage = npt.NDArray[np.uint8]

NTSC = Fraction(30000, 1001)
FACE_BOX = (16.0, 12.0, 40.0, 36.0)  # the face the fake detector reports, (x1, y1, x2, y2)
CENTRE = (28, 24)  # its centre (x, y)
MAGENTA = (255, 0, 255)
TAGS = {"title": "secret", "location": "+48.85+002.35/", "comment": "secret comment"}
#: Pieces of the tags above that must never reach an output (the mp4 muxer reformats locations).
SECRETS = ("secret", "48.85", "002.35")
#: Gaps between consecutive frames of a variable-frame-rate video, in frame periods.
VFR_GAPS = (1, 2, 1, 3, 1, 1, 2)


# ---------------------------------------------------------------------------------------------
# building and reading videos


def picture(index: int, width: int, height: int) -> RGBImage:
    """Frame ``index`` of a test video: smooth gradients that change from frame to frame, a white
    8x8 block in the top-left corner (shows the orientation), and no magenta anywhere."""
    y, x = np.mgrid[0:height, 0:width]
    red = 40 + (2 * x) % 128 + 3 * index
    green = 60 + (2 * y) % 128
    blue = np.full_like(x, 100 + 4 * index)
    rgb: RGBImage = np.stack([red, green, blue], axis=2).clip(0, 255).astype(np.uint8)
    rgb[:8, :8] = 255
    return rgb


def make_video(
    path: Path,
    frames: int = 20,
    size: tuple[int, int] = (64, 48),
    rate: Fraction = NTSC,
    audio: bool = True,
    vfr: bool = False,
    tags: dict[str, str] | None = None,
    *,
    time_base: Fraction | None = None,
    audio_streams: int = 1,
    extras: bool = False,
    rotation: int = 0,
    faststart: bool = False,
) -> Path:
    """Write a small H.264 video (format from the extension) and return its path.

    Args:
        frames: number of video frames; each one looks different (see `picture`).
        size: upright (display) size, ``(width, height)``.
        rate: nominal frame rate; frame ``i`` is shown at ``units[i] / rate`` seconds.
        audio: add a mono 440 Hz sine (AAC, or Opus in Matroska) as long as the video.
        vfr: irregular gaps between frames (`VFR_GAPS`) instead of a constant rate.
        tags: metadata set on the container and on every stream.
        time_base: the video stream's time base (Matroska always uses 1/1000).
        audio_streams: how many audio streams (when ``audio``).
        extras: also a subtitle stream and an attachment (Matroska only).
        rotation: display rotation (counter-clockwise degrees) stored in the container; the
            pixels are stored turned the other way, so the video displays upright.
        faststart: MP4 index at the start of the file.
    """
    width, height = size
    suffix = path.suffix.lower()
    matroska = suffix in (".mkv", ".webm")
    tb = Fraction(1, 1000) if matroska else (time_base or Fraction(1, 90000))
    units, unit = [], 0
    for i in range(frames):
        units.append(unit)
        unit += VFR_GAPS[i % len(VFR_GAPS)] if vfr else 1
    pts = [round(Fraction(u) / rate / tb) for u in units]
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        out.metadata.update(tags or {})
        video = out.add_stream("libx264", rate=rate)
        coded_w, coded_h = (height, width) if rotation in (90, 270) else (width, height)
        video.width, video.height = coded_w, coded_h
        video.pix_fmt = "yuv444p" if coded_w % 2 or coded_h % 2 else "yuv420p"
        video.time_base = tb
        video.codec_context.time_base = tb
        video.options = {"preset": "ultrafast", "crf": "12"}
        video.metadata.update(tags or {})
        if rotation:
            video.set_display_rotation(rotation)
        sounds: list[Any] = []
        for _ in range(audio_streams if audio else 0):
            sound = out.add_stream("libopus" if matroska else "aac", rate=48000)
            sound.layout = "mono"
            sound.metadata.update(tags or {})
            sounds.append(sound)
        subtitles = out.add_mux_stream("subrip") if extras else None
        if extras:
            out.add_attachment("notes.txt", "text/plain", b"secret notes")
        for i in range(frames):
            # stored turned clockwise by `rotation`: a player turns it back counter-clockwise
            rgb = np.ascontiguousarray(np.rot90(picture(i, width, height), -(rotation // 90)))
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = pts[i], tb
            for packet in video.encode(frame):
                out.mux(packet)
                if subtitles is not None and packet.pts == 0:
                    text = av.Packet(b"secret subtitle")
                    text.stream = subtitles
                    text.time_base, text.pts, text.dts, text.duration = Fraction(1, 1000), 0, 0, 500
                    out.mux(text)
        for packet in video.encode(None):
            out.mux(packet)
        seconds = (units[-1] + 1) / rate
        for sound in sounds:
            samples = int(seconds * 48000)
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            for start in range(0, samples, 960):
                chunk = av.AudioFrame.from_ndarray(
                    wave[None, start : start + 960].copy(), format="fltp", layout="mono"
                )
                chunk.sample_rate, chunk.pts, chunk.time_base = 48000, start, Fraction(1, 48000)
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
    return path


@dataclass
class Media:
    """What a test needs to know about a video file, read with PyAV alone."""

    times: list[Fraction]  # every video frame's presentation time, exact
    images: list[RGBImage]
    width: int
    height: int
    video_codec: str
    video_seconds: float
    audio_codecs: list[str]
    audio_seconds: float | None  # of the first audio stream, from its decoded samples
    stream_types: list[str]
    tags: dict[str, str] = field(default_factory=dict)  # container and stream tags, "where:key"


def read_video(path: Path) -> Media:
    """Decode every frame of ``path`` (and its first audio stream) with PyAV."""
    with av.open(str(path)) as container:
        tags = {f"container:{k}": v for k, v in container.metadata.items()}
        for stream in container.streams:
            tags |= {f"stream{stream.index}:{k}": v for k, v in stream.metadata.items()}
        types: list[str] = [stream.type for stream in container.streams]
        video = container.streams.video[0]
        if video.duration and video.time_base:
            video_seconds = float(video.duration * video.time_base)
        elif "DURATION" in video.metadata:  # Matroska: "HH:MM:SS.nnnnnnnnn"
            hours, minutes, seconds = video.metadata["DURATION"].split(":")
            video_seconds = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        else:
            video_seconds = (container.duration or 0) / 1_000_000
        times: list[Fraction] = []
        images: list[RGBImage] = []
        for frame in container.decode(video):
            assert frame.pts is not None and frame.time_base is not None
            times.append(frame.pts * frame.time_base)
            images.append(np.asarray(frame.to_ndarray(format="rgb24"), np.uint8))
        audio_codecs = [s.codec_context.name for s in container.streams.audio]
        audio_seconds = None
        if container.streams.audio:
            container.seek(0)
            sound = container.streams.audio[0]
            samples = sum(f.samples for f in container.decode(sound))
            audio_seconds = samples / sound.codec_context.sample_rate
        return Media(
            times=times,
            images=images,
            width=video.codec_context.width,
            height=video.codec_context.height,
            video_codec=video.codec_context.name,
            video_seconds=video_seconds,
            audio_codecs=audio_codecs,
            audio_seconds=audio_seconds,
            stream_types=types,
            tags=tags,
        )


@dataclass(frozen=True)
class Clips:
    """The input videos shared by the tests (read only)."""

    root: Path
    ntsc: Path  # 20 frames at 30000/1001 fps, AAC audio, tags
    vfr_mp4: Path  # 20 frames at irregular times, 1/90000 time base, AAC audio
    vfr_mkv: Path  # 20 frames at irregular times, 1/1000, two Opus streams, subtitles, attachment
    odd: Path  # 63x47, no audio
    rotated: Path  # 48x64 portrait, stored landscape with a 90-degree display rotation


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    root = tmp_path_factory.mktemp("clips")
    return Clips(
        root=root,
        ntsc=make_video(root / "ntsc.mp4", tags=TAGS),
        vfr_mp4=make_video(root / "vfr.mp4", vfr=True, tags=TAGS),
        vfr_mkv=make_video(root / "vfr.mkv", vfr=True, tags=TAGS, audio_streams=2, extras=True),
        odd=make_video(root / "odd.mp4", frames=10, size=(63, 47), audio=False),
        rotated=make_video(root / "rotated.mp4", frames=6, size=(48, 64), audio=False, rotation=90),
    )


@pytest.fixture(scope="session")
def inputs(clips: Clips) -> dict[Path, Media]:
    """Each clip as read back from its file (decoded once)."""
    return {path: read_video(path) for path in (clips.ntsc, clips.vfr_mp4, clips.vfr_mkv, clips.odd)}


# ---------------------------------------------------------------------------------------------
# helpers


def anonymizer(detector: Any = None) -> Anonymizer:
    """Solid magenta masks; faces from ``detector`` (by default one face at `FACE_BOX`)."""
    config = AnonymizerConfig(mask=MaskConfig(mode="solid", color=MAGENTA))
    return Anonymizer(config, detector=detector if detector is not None else FakeDetector(boxes(FACE_BOX)))


def run_job(
    source: Path,
    target: Path,
    detector: Any = None,
    regions: Path | None = None,
    **config: Any,
) -> VideoReport:
    config.setdefault("detect_every", 1)  # these tests count detector calls frame by frame
    return VideoJob(VideoJobConfig(**config), anonymizer(detector)).run(source, target, regions)


def leftovers(root: Path) -> list[Path]:
    """Temporary files a job left behind."""
    return [p for p in root.rglob("*") if "faceveil-tmp" in p.name]


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def is_hidden(rgb: RGBImage) -> bool:
    """The face centre is magenta (within codec loss)."""
    x, y = CENTRE
    patch = rgb[y - 3 : y + 4, x - 3 : x + 4].reshape(-1, 3).astype(int).mean(axis=0)
    return bool(patch[0] > 200 and patch[1] < 60 and patch[2] > 200)


def far_from_face(rgb: RGBImage) -> RGBImage:
    """The columns well left and right of the hidden ellipse (scaled 1.3: x in [12.4, 43.6])."""
    return np.concatenate([rgb[:, :6], rgb[:, 52:]], axis=1)


def run_cli(argv: list[str]) -> int:
    """Exit code of ``faceveil argv``, whether main returns it or argparse raises SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


class FlakyDetector:
    """Finds the face at `FACE_BOX`, except on call number ``fail_on`` (0-based), where it raises."""

    def __init__(self, error: BaseException, fail_on: int | None = 5) -> None:
        self.error = error
        self.fail_on = fail_on
        self.calls = 0

    def detect(self, rgb: RGBImage) -> Detections:
        call, self.calls = self.calls, self.calls + 1
        if self.fail_on is None or call == self.fail_on:
            raise self.error
        return boxes(FACE_BOX)


@pytest.fixture
def threads() -> Iterator[None]:
    """Fails the test if it leaves a thread running."""
    before = threading.active_count()
    yield
    assert threading.active_count() == before


# ---------------------------------------------------------------------------------------------
# 1. frames, size and exact timestamps


@pytest.mark.parametrize(
    ("clip", "suffix"),
    [("ntsc", ".mp4"), ("ntsc", ".mov"), ("vfr_mp4", ".mp4"), ("vfr_mkv", ".mkv"), ("vfr_mkv", ".mp4")],
)
def test_frames_size_and_timestamps_are_kept(
    clips: Clips, inputs: dict[Path, Media], tmp_path: Path, clip: str, suffix: str
) -> None:
    source: Path = getattr(clips, clip)
    target = tmp_path / f"out{suffix}"
    report = run_job(source, target)
    before, after = inputs[source], read_video(target)
    assert report.frames == report.frames_in == len(before.times) == 20
    assert len(after.times) == 20
    assert (after.width, after.height) == (before.width, before.height) == (64, 48)
    assert after.times == before.times  # exact, as fractions of a second
    if "vfr" in clip:
        gaps = {b - a for a, b in zip(before.times, before.times[1:], strict=False)}
        assert len(gaps) >= 3  # the input really is irregular
    assert abs(after.video_seconds - before.video_seconds) <= 1 / NTSC
    assert report.info is not None and report.info.rate is not None


def test_webm_keeps_timestamps_to_the_millisecond(
    clips: Clips, inputs: dict[Path, Media], tmp_path: Path
) -> None:
    target = tmp_path / "out.webm"
    run_job(clips.vfr_mp4, target)
    before, after = inputs[clips.vfr_mp4], read_video(target)
    assert len(after.times) == len(before.times)
    assert all(abs(a - b) <= Fraction(1, 1000) for a, b in zip(after.times, before.times, strict=True))


# ---------------------------------------------------------------------------------------------
# 2. audio and codecs


@pytest.mark.parametrize(
    ("clip", "suffix", "video_codec", "audio_codec"),
    [
        ("ntsc", ".mp4", "h264", "aac"),
        ("ntsc", ".mkv", "h264", "aac"),
        ("ntsc", ".webm", "vp9", "opus"),  # AAC transcoded to Opus
        ("ntsc", ".avi", "mjpeg", "mp3"),  # AAC transcoded to MP3
        ("vfr_mkv", ".mp4", "h264", "opus"),  # Opus copied into MP4
        ("vfr_mkv", ".webm", "vp9", "opus"),
    ],
)
def test_audio_is_kept_with_its_duration(
    clips: Clips,
    inputs: dict[Path, Media],
    tmp_path: Path,
    clip: str,
    suffix: str,
    video_codec: str,
    audio_codec: str,
) -> None:
    source: Path = getattr(clips, clip)
    target = tmp_path / f"out{suffix}"
    run_job(source, target)
    before, after = inputs[source], read_video(target)
    assert after.video_codec == video_codec
    assert len(after.audio_codecs) == 1
    assert after.audio_codecs[0].startswith(audio_codec)  # the MP3 decoder is "mp3float"
    assert before.audio_seconds is not None and after.audio_seconds is not None
    assert abs(after.audio_seconds - before.audio_seconds) < 0.1
    assert len(after.times) == 20


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_audio_drop(clips: Clips, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"out{suffix}"
    run_job(clips.ntsc, target, output=VideoOutputConfig(audio="drop"))
    after = read_video(target)
    assert after.stream_types == ["video"]
    assert after.audio_seconds is None


# ---------------------------------------------------------------------------------------------
# 3. metadata


@pytest.mark.parametrize(
    ("clip", "suffix"),
    [
        ("ntsc", ".mp4"),
        ("vfr_mkv", ".mp4"),
        ("vfr_mkv", ".mov"),
        ("vfr_mkv", ".mkv"),
        ("vfr_mkv", ".webm"),
        ("vfr_mkv", ".avi"),
    ],
)
def test_no_metadata_and_no_extra_streams(
    clips: Clips, inputs: dict[Path, Media], tmp_path: Path, clip: str, suffix: str
) -> None:
    source: Path = getattr(clips, clip)
    before = inputs[source]
    # the input really carries what must not come through
    assert any("secret" in v for v in before.tags.values())
    if clip == "vfr_mkv":
        assert before.stream_types == ["video", "audio", "audio", "subtitle", "attachment"]
    target = tmp_path / f"out{suffix}"
    run_job(source, target)
    after = read_video(target)
    assert after.stream_types == ["video", "audio"]
    leaked = {k: v for k, v in after.tags.items() if any(s in v for s in SECRETS)}
    assert not leaked
    keys = {k.split(":", 1)[1].lower() for k in after.tags}
    assert not keys & {"title", "location", "location-eng", "comment", "filename", "mimetype"}
    encoders = {v for k, v in after.tags.items() if k.lower().endswith(":encoder")}
    if suffix in (".mkv", ".webm"):
        # Matroska's mandatory MuxingApp element: bit-exact mode writes just "Lavf", no version
        assert encoders <= {"Lavf"}
    else:
        assert not encoders
    assert not any(
        "lavf" in v.lower() or "lavc" in v.lower() for k, v in after.tags.items() if "encoder" not in k
    )


# ---------------------------------------------------------------------------------------------
# 4. the face is hidden in every frame, the rest untouched


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".webm"])
def test_face_hidden_in_every_frame(
    clips: Clips, inputs: dict[Path, Media], tmp_path: Path, suffix: str
) -> None:
    target = tmp_path / f"out{suffix}"
    report = run_job(clips.ntsc, target)
    assert report.faces == 20 and report.tracks == 1 and report.hidden_whole == 0
    before, after = inputs[clips.ntsc], read_video(target)
    assert len(after.images) == 20
    for original, hidden in zip(before.images, after.images, strict=True):
        assert not is_hidden(original)
        assert is_hidden(hidden)
        diff = np.abs(far_from_face(original).astype(int) - far_from_face(hidden).astype(int))
        assert diff.mean() < 6, diff.mean()
        assert np.percentile(diff, 99) < 40


# ---------------------------------------------------------------------------------------------
# 5. the regions audit trail


def test_regions_audit_trail(clips: Clips, tmp_path: Path) -> None:
    target, regions = tmp_path / "out.mp4", tmp_path / "audit" / "regions.jsonl"
    run_job(clips.vfr_mp4, target, regions=regions)
    records = read_lines(regions)
    assert [r["frame"] for r in records] == list(range(20))
    with av.open(str(clips.vfr_mp4)) as container:
        stream = container.streams.video[0]
        pts = [p.pts for p in container.demux(stream) if p.size]
    assert [r["pts"] for r in records] == sorted(p for p in pts if p is not None)
    for record in records:
        assert set(record) == {"frame", "pts", "regions"}
        assert record["regions"], record
        for row in record["regions"]:
            assert set(row) == {"box", "track", "score", "source"}
            assert row["source"] in {"detected", "tracked", "filled"}
            assert isinstance(row["track"], int)
            assert len(row["box"]) == 4
        detected = [row for row in record["regions"] if row["source"] == "detected"]
        assert [row["box"] for row in detected] == [list(FACE_BOX)]
        assert detected[0]["score"] == pytest.approx(0.9)
    assert not leftovers(tmp_path)


# ---------------------------------------------------------------------------------------------
# 6. detect every N frames


def test_detect_every_three_frames_still_hides_every_frame(clips: Clips, tmp_path: Path) -> None:
    detector = FakeDetector(boxes(FACE_BOX))
    target, regions = tmp_path / "out.mp4", tmp_path / "regions.jsonl"
    report = run_job(clips.ntsc, target, detector, regions, detect_every=3)
    assert len(detector.calls) == 7  # frames 0, 3, ..., 18
    assert report.faces == 7
    records = read_lines(regions)
    assert len(records) == 20
    for record in records:
        sources = {row["source"] for row in record["regions"]}
        if record["frame"] % 3 == 0:
            assert "detected" in sources
        else:
            assert sources and sources <= {"tracked", "filled"}, record
    assert all(is_hidden(rgb) for rgb in read_video(target).images)


# ---------------------------------------------------------------------------------------------
# 7. on-error policies


def test_failed_detection_hides_the_whole_frame(
    clips: Clips, inputs: dict[Path, Media], tmp_path: Path
) -> None:
    detector = FlakyDetector(ValueError("no faces today"))
    target, regions = tmp_path / "out.mp4", tmp_path / "regions.jsonl"
    report = run_job(clips.ntsc, target, detector, regions, on_error="hide-frame")
    assert detector.calls == 20
    assert report.hidden_whole == 1 and report.frames == 20 and report.skipped == 0
    after = read_video(target)
    assert after.times == inputs[clips.ntsc].times
    black = after.images[5]
    assert black.max() < 40 and black.mean() < 5
    for index, rgb in enumerate(after.images):
        if index != 5:
            assert is_hidden(rgb) and rgb.mean() > 50
    records = read_lines(regions)
    assert [r.get("hidden_whole", False) for r in records] == [i == 5 for i in range(20)]


def test_failed_detection_skips_the_frame(clips: Clips, inputs: dict[Path, Media], tmp_path: Path) -> None:
    detector = FlakyDetector(ValueError("no faces today"))
    target = tmp_path / "out.mp4"
    report = run_job(clips.ntsc, target, detector, on_error="skip-frame")
    assert report.skipped == 1 and report.frames == 19 and report.frames_in == 20
    assert report.hidden_whole == 0
    after = read_video(target)
    expected = inputs[clips.ntsc].times
    assert after.times == expected[:5] + expected[6:]
    assert all(is_hidden(rgb) for rgb in after.images)


@pytest.mark.usefixtures("threads")
def test_failed_detection_aborts_and_writes_nothing(clips: Clips, tmp_path: Path) -> None:
    detector = FlakyDetector(ValueError("no faces today"))
    target, regions = tmp_path / "out.mp4", tmp_path / "regions.jsonl"
    with pytest.raises(InputError, match="frame 5"):
        run_job(clips.ntsc, target, detector, regions, on_error="abort")
    assert not target.exists() and not regions.exists()
    assert not leftovers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# 8. cancellation and failures in any stage


@pytest.mark.usefixtures("threads")
def test_cancel_writes_nothing(clips: Clips, tmp_path: Path) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int | None) -> None:
        seen.append(done)
        if done == 3:
            cancel.set()

    target, regions = tmp_path / "out.mp4", tmp_path / "regions.jsonl"
    job = VideoJob(VideoJobConfig(), anonymizer(), progress=progress, cancel=cancel)
    with pytest.raises(JobCancelledError):
        job.run(clips.ntsc, target, regions)
    assert seen == [1, 2, 3]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("threads")
def test_unexpected_detector_error_reaches_the_caller(clips: Clips, tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    with pytest.raises(KeyError, match="boom"):
        run_job(clips.ntsc, target, FlakyDetector(KeyError("boom"), fail_on=4))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("threads")
def test_runtime_error_in_the_detector_follows_the_on_error_policy(clips: Clips, tmp_path: Path) -> None:
    # RuntimeError (what ONNX Runtime raises) counts as a failed detection, like ValueError
    target = tmp_path / "out.mp4"
    with pytest.raises(InputError, match="boom"):
        run_job(clips.ntsc, target, FlakyDetector(RuntimeError("boom"), fail_on=2), on_error="abort")
    assert list(tmp_path.iterdir()) == []
    report = run_job(clips.ntsc, target, FlakyDetector(RuntimeError("boom"), fail_on=None))
    assert report.hidden_whole == 20 and report.frames == 20
    assert all(rgb.max() < 40 for rgb in read_video(target).images)


@pytest.mark.usefixtures("threads")
def test_encoder_failure_writes_nothing(
    clips: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = VideoSink.write
    written: list[int] = []

    def failing_write(self: VideoSink, frame: Any, rgb: RGBImage) -> None:
        if len(written) == 2:
            raise OSError(28, "No space left on device")
        written.append(frame.index)
        write(self, frame, rgb)

    monkeypatch.setattr(VideoSink, "write", failing_write)
    target, regions = tmp_path / "out.mp4", tmp_path / "regions.jsonl"
    with pytest.raises(OutputError, match="No space left"):
        run_job(clips.ntsc, target, regions=regions)
    assert written == [0, 1]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("threads")
def test_decoder_failure_writes_nothing(
    clips: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for n, item in enumerate(read_media(*args, **kwargs)):
            if n == 6:
                raise InputError("the disk went away")
            yield item

    monkeypatch.setattr("faceveil.pipeline.graph.read_media", broken)
    target = tmp_path / "out.mp4"
    with pytest.raises(InputError, match="disk went away"):
        run_job(clips.ntsc, target, queue_size=1)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# 9. bad inputs and outputs


def _bad_input(kind: str, root: Path, clips: Clips) -> Path:
    root.mkdir()
    if kind == "text":
        path = root / "notes.mp4"
        path.write_text("this is not a video\n" * 50, encoding="utf-8")
    elif kind == "empty":
        path = root / "empty.mp4"
        path.write_bytes(b"")
    elif kind == "truncated":
        data = clips.ntsc.read_bytes()
        path = root / "truncated.mp4"
        path.write_bytes(data[: int(len(data) * 0.4)])
    elif kind in ("hls", "hls-as-mp4"):
        # a playlist FFmpeg's HLS demuxer would follow to the real local segment
        make_video(root / "segment.ts", frames=10, audio=False)
        path = root / ("playlist.m3u8" if kind == "hls" else "playlist.mp4")
        path.write_text(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:0.4,\nsegment.ts\n#EXT-X-ENDLIST\n",
            encoding="utf-8",
        )
    elif kind in ("ffconcat", "ffconcat-as-mp4"):
        make_video(root / "x.mp4", frames=10, audio=False)
        path = root / ("list.ffconcat" if kind == "ffconcat" else "list.mp4")
        path.write_text("ffconcat version 1.0\nfile 'x.mp4'\n", encoding="utf-8")
    elif kind == "folder":
        path = root / "folder.mp4"
        path.mkdir()
    else:
        path = root / "missing.mp4"
    return path


@pytest.mark.usefixtures("threads")
@pytest.mark.parametrize(
    "kind",
    ["text", "empty", "truncated", "hls", "hls-as-mp4", "ffconcat", "ffconcat-as-mp4", "folder", "missing"],
)
def test_bad_input_is_an_input_error(clips: Clips, tmp_path: Path, kind: str) -> None:
    source = _bad_input(kind, tmp_path / "in", clips)
    out = tmp_path / "out"
    with pytest.raises(InputError) as caught:
        run_job(source, out / "result.mp4", regions=out / "regions.jsonl")
    assert type(caught.value) is not InputError or kind in ("folder", "missing")
    assert not out.exists() or list(out.iterdir()) == []
    assert not leftovers(tmp_path)


def test_truncated_file_with_its_index_first_is_refused(clips: Clips, tmp_path: Path) -> None:
    # with the MP4 index at the start, FFmpeg decodes what is there and stops without an error;
    # the index says how many frames there should be, so the cut is noticed and nothing is written
    whole = make_video(tmp_path / "whole.mp4", faststart=True)
    data = whole.read_bytes()
    assert data[4:8] == b"ftyp" and data.find(b"moov") < data.find(b"mdat")
    source = tmp_path / "cut.mp4"
    source.write_bytes(data[: int(len(data) * 0.6)])
    target = tmp_path / "out.mp4"
    with pytest.raises(CorruptInputError, match="truncated"):
        run_job(source, target)
    assert not target.exists()
    assert not leftovers(tmp_path)


def test_unwritable_output_is_an_output_error(clips: Clips, tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a regular file", encoding="utf-8")
    with pytest.raises(OutputError):
        run_job(clips.ntsc, blocker / "out.mp4")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["file.txt"]


def test_unknown_output_extension_names_the_valid_ones(clips: Clips, tmp_path: Path) -> None:
    with pytest.raises(OutputError) as caught:
        run_job(clips.ntsc, tmp_path / "out.xyz")
    message = str(caught.value)
    assert ".xyz" in message
    for suffix in OUTPUT_FORMATS:
        assert suffix in message
    assert list(tmp_path.iterdir()) == []


def test_output_over_the_input_is_refused(clips: Clips, tmp_path: Path) -> None:
    source = tmp_path / "in.mp4"
    source.write_bytes(clips.ntsc.read_bytes())
    before = source.read_bytes()
    with pytest.raises(OutputError, match="overwrite"):
        run_job(source, source)
    with pytest.raises(OutputError, match="overwrite"):
        run_job(source, tmp_path / "." / "sub" / ".." / "in.mp4")
    assert source.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["in.mp4"]


# ---------------------------------------------------------------------------------------------
# 10. the command line


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeDetector:
    """Replace every detector the CLI builds with one fake that finds one face at `FACE_BOX`."""
    detector = FakeDetector(boxes(FACE_BOX))
    monkeypatch.setattr("faceveil.anonymize.anonymizer.create_detector", lambda cfg: detector)
    return detector


SOLID = ["--mode", "solid", "--color", "ff00ff"]


def test_cli_one_file(clips: Clips, tmp_path: Path, fake: FakeDetector) -> None:
    target, regions = tmp_path / "out.mp4", tmp_path / "regions.jsonl"
    argv = ["video", str(clips.ntsc), "-o", str(target), "-q", "--regions", str(regions), *SOLID]
    assert run_cli(argv) == exit_codes.OK
    assert len(fake.calls) == len(range(0, 20, DEFAULT_DETECT_EVERY))  # the default cadence
    after = read_video(target)
    assert len(after.times) == 20 and after.stream_types == ["video", "audio"]
    assert all(is_hidden(rgb) for rgb in after.images)
    assert [r["frame"] for r in read_lines(regions)] == list(range(20))
    assert not leftovers(tmp_path)


def test_cli_audio_drop(clips: Clips, tmp_path: Path, fake: FakeDetector) -> None:
    target = tmp_path / "out.mkv"
    assert run_cli(["video", str(clips.ntsc), "-o", str(target), "-q", "--audio", "drop"]) == exit_codes.OK
    assert read_video(target).stream_types == ["video"]


def test_cli_folder(
    clips: Clips, tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(clips.ntsc.read_bytes())
    (folder / "b.mkv").write_bytes(clips.vfr_mkv.read_bytes())
    out = tmp_path / "out"
    assert run_cli(["video", str(folder), "-o", str(out), *SOLID]) == exit_codes.OK
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mkv"]
    assert len(read_video(out / "b.mkv").times) == 20
    reports = [json.loads(line.split(": ", 1)[1]) for line in capsys.readouterr().err.splitlines()]
    assert [r["frames"] for r in reports] == [20, 20]


def test_cli_folder_with_a_bad_file(
    clips: Clips, tmp_path: Path, fake: FakeDetector, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.mp4").write_text("not a video", encoding="utf-8")
    (folder / "good.mp4").write_bytes(clips.ntsc.read_bytes())
    out, regions = tmp_path / "out", tmp_path / "regions"
    argv = ["video", str(folder), "-o", str(out), "-q", "--regions", str(regions), *SOLID]
    assert run_cli(argv) == exit_codes.INPUT_FAILED
    assert "bad.mp4" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["good.mp4"]
    assert all(is_hidden(rgb) for rgb in read_video(out / "good.mp4").images)
    assert [p.name for p in regions.iterdir()] == ["good.regions.jsonl"]
    assert len(read_lines(regions / "good.regions.jsonl")) == 20
    assert not leftovers(tmp_path)


@pytest.mark.parametrize(
    "extra", [["--on-error", "foo"], ["--audio", "loud"], ["--detect-every", "0"], ["--quality", "99"]]
)
def test_cli_usage_errors(clips: Clips, tmp_path: Path, fake: FakeDetector, extra: list[str]) -> None:
    target = tmp_path / "out.mp4"
    assert run_cli(["video", str(clips.ntsc), "-o", str(target), "-q", *extra]) == exit_codes.USAGE
    assert not target.exists()


# ---------------------------------------------------------------------------------------------
# 11. odd sizes and rotation


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm", ".avi"])
def test_odd_frame_size_is_kept(clips: Clips, inputs: dict[Path, Media], tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"out{suffix}"
    run_job(clips.odd, target)
    after = read_video(target)
    assert (after.width, after.height) == (63, 47)
    assert len(after.images) == 10
    assert all(rgb.shape == (47, 63, 3) for rgb in after.images)
    assert all(is_hidden(rgb) for rgb in after.images)


def test_rotated_input_is_processed_and_written_upright(clips: Clips, tmp_path: Path) -> None:
    with av.open(str(clips.rotated)) as container:  # stored landscape, displayed portrait
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 48)
        assert next(container.decode(stream)).rotation == 90
    detector = FakeDetector(boxes(FACE_BOX))
    target = tmp_path / "out.mp4"
    report = run_job(clips.rotated, target, detector)
    assert report.info is not None and (report.info.width, report.info.height) == (48, 64)
    assert set(detector.calls) == {(64, 48)}  # (height, width): the detector saw upright frames
    after = read_video(target)
    assert (after.width, after.height) == (48, 64)
    for index, rgb in enumerate(after.images):
        expected = picture(index, 48, 64)
        assert rgb[1:7, 1:7].min() > 200  # the white corner is top-left again
        assert np.abs(far_from_face(rgb).astype(int) - far_from_face(expected).astype(int)).mean() < 8
        assert is_hidden(rgb)


# ---------------------------------------------------------------------------------------------
# 10. the one stage graph: any per-frame step plugs in


class _ReversingStep:
    """Holds every frame to the end, drops frame 3, paints each frame's index into its pixels."""

    def __init__(self) -> None:
        self.held: list[Any] = []

    def push(self, item: Any) -> list[Any]:
        self.held.append(item.frame)
        return []

    def flush(self) -> list[Any]:
        from faceveil.pipeline.graph import Rendered

        out = []
        for frame in self.held:
            if frame.index == 3:
                continue
            image = np.full_like(frame.rgb, frame.index * 10)
            out.append(Rendered(frame, image, {"frame": frame.index}))
        return out


def test_stage_graph_runs_any_step(clips: Clips, inputs: dict[Path, Media], tmp_path: Path) -> None:
    from faceveil.pipeline.graph import render_file

    target, side = tmp_path / "out.mkv", tmp_path / "side.jsonl"
    seen: list[int] = []
    counts = render_file(
        clips.ntsc,
        target,
        VideoOutputConfig(quality=0),
        _ReversingStep(),
        side_path=side,
        progress=lambda done, total: seen.append(done),
    )
    original = inputs[clips.ntsc]
    assert counts.frames_in == len(original.times) and counts.frames == counts.frames_in - 1
    assert seen == list(range(1, counts.frames + 1))
    out = read_video(target)
    kept = [t for i, t in enumerate(original.times) if i != 3]
    assert [t - out.times[0] for t in out.times] == pytest.approx([t - kept[0] for t in kept], abs=1e-3)
    levels = [float(np.median(image)) for image in out.images]  # colour conversion: +-1
    assert levels == pytest.approx([10 * i for i in range(len(original.times)) if i != 3], abs=1.5)
    assert [r["frame"] for r in read_lines(side)] == [i for i in range(len(original.times)) if i != 3]
    assert out.audio_seconds == pytest.approx(original.audio_seconds, abs=0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv", "side.jsonl"]
