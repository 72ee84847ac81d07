"""`faceveil video --voice keep|disguise|drop`: the sound track disguised, in sync, same length."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from faceveil.cli import exit_codes
from faceveil.detection.fake import FakeDetector, boxes
from test_cli import run_cli
from test_video import picture, read_video
from voice_support import f0_autocorrelation, vowel

RATE = 48000
FPS = Fraction(30)
FRAMES = 60
BURST_AT = 1.2  # seconds: a loud noise burst marks a moment of the sound track


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeDetector:
    detector = FakeDetector(boxes((16.0, 12.0, 40.0, 36.0)))
    monkeypatch.setattr("faceveil.anonymize.anonymizer.create_detector", lambda cfg: detector)
    return detector


def sound_track() -> npt.NDArray[np.float32]:
    """Two seconds of stereo voice-like sound with a noise burst at `BURST_AT`."""
    n = int(FRAMES / FPS * RATE)
    voice = vowel(RATE, n / RATE, f0=130.0)
    burst = int(BURST_AT * RATE)
    voice[burst - 4800 : burst] *= 0.02  # quiet before the burst: its onset is sharp
    voice[burst : burst + 2400] = 0.5 * np.random.default_rng(0).uniform(-1, 1, 2400)
    return np.asarray(np.stack([voice, 0.7 * voice], axis=1), dtype=np.float32)


def make_clip(path: Path) -> npt.NDArray[np.float32]:
    """A 64x48 H.264 clip at 30 fps with `sound_track` (AAC, or Opus in Matroska); returns the sound."""
    track = sound_track()
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "18"}
        sound = out.add_stream("libopus" if path.suffix == ".mkv" else "aac", rate=RATE)
        sound.layout = "stereo"
        for i in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(picture(i, 64, 48), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1) / FPS
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        for start in range(0, len(track), 960):
            chunk = np.ascontiguousarray(track[start : start + 960]).reshape(1, -1)
            part = av.AudioFrame.from_ndarray(chunk, format="flt", layout="stereo")
            part.sample_rate, part.pts, part.time_base = RATE, start, Fraction(1, RATE)
            for packet in sound.encode(part):
                out.mux(packet)
        for packet in sound.encode(None):
            out.mux(packet)
    return track


def decoded_sound(path: Path) -> tuple[npt.NDArray[np.float32], float]:
    """The first audio stream's samples ``(n, channels)`` and its start time in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        blocks, start = [], None
        for frame in container.decode(stream):
            if start is None:
                known = frame.pts is not None and frame.time_base is not None
                start = float(frame.pts * frame.time_base) if known else 0.0  # type: ignore[operator]
            blocks.append(
                frame.to_ndarray().T if frame.format.is_planar else frame.to_ndarray().reshape(-1, 2)
            )
        return np.concatenate(blocks).astype(np.float32), start or 0.0


def onset(x: npt.NDArray[np.float32], rate: int) -> float:
    """Time of the burst: found as the first 5 ms window far louder than the median, timed by
    its energy's centre over the following 50 ms (where the threshold crossing alone would move
    with the onset's steepness, which the disguise's 40 ms frames soften)."""
    hop = rate // 200
    energy = np.add.reduceat(x[:, 0] ** 2, np.arange(0, len(x) - hop, hop))
    first = int(np.argmax(energy > 20 * np.median(energy)))
    part = x[max(0, (first - 2) * hop) : (first + 10) * hop, 0].astype(np.float64) ** 2
    centre = float((np.arange(len(part)) * part).sum() / part.sum())
    return max(0, (first - 2) * hop) / rate + centre / rate - 0.025


def checked_disguise(source: Path, target: Path, sync: float = 0.010) -> float:
    """Check that ``target`` (``source`` with ``--voice disguise``) keeps every frame at its time,
    a stereo sound track of the same length and start, and the burst in sync (within ``sync``
    seconds); return the pitch move over the first second in semitones."""
    before, after = read_video(source), read_video(target)
    assert after.times == before.times  # every frame, at its own time
    assert after.stream_types == ["video", "audio"]
    x, x_start = decoded_sound(source)
    y, y_start = decoded_sound(target)
    assert y.shape[1] == 2
    assert abs(len(y) - len(x)) <= 1024  # one encoder frame at most (the codec's own padding)
    assert abs(y_start - x_start) < 0.002
    # A/V sync: the burst is where it was (a disguise delays nothing)
    assert abs((onset(y, RATE) + y_start) - (onset(x, RATE) + x_start)) <= sync
    head = int(RATE * 1.0)
    return float(12 * np.log2(f0_autocorrelation(y[:head, 0], RATE) / f0_autocorrelation(x[:head, 0], RATE)))


@pytest.mark.parametrize(("suffix", "out_suffix"), [(".mp4", ".mp4"), (".mkv", ".webm")])
def test_disguise_keeps_frames_duration_and_sync(
    tmp_path: Path, fake: FakeDetector, suffix: str, out_suffix: str
) -> None:
    source = tmp_path / f"in{suffix}"
    make_clip(source)
    target = tmp_path / f"out{out_suffix}"
    argv = ["video", str(source), "-o", str(target), "-q", "--voice", "disguise", "--seed", "3"]
    assert run_cli(argv) == exit_codes.OK
    # the voice is moved: the default never moves the pitch by less than 1 semitone
    assert abs(checked_disguise(source, target)) > 1.0


def test_keep_copies_and_drop_removes(tmp_path: Path, fake: FakeDetector) -> None:
    source = tmp_path / "in.mp4"
    make_clip(source)
    kept, dropped = tmp_path / "kept.mp4", tmp_path / "dropped.mp4"
    assert run_cli(["video", str(source), "-o", str(kept), "-q", "--voice", "keep"]) == exit_codes.OK
    assert run_cli(["video", str(source), "-o", str(dropped), "-q", "--voice", "drop"]) == exit_codes.OK
    x, _ = decoded_sound(source)
    y, _ = decoded_sound(kept)
    np.testing.assert_array_equal(x, y)  # copied packet for packet
    assert read_video(dropped).stream_types == ["video"]


def test_contradicting_audio_options_refused(tmp_path: Path, fake: FakeDetector) -> None:
    source = tmp_path / "in.mp4"
    make_clip(source)
    target = tmp_path / "out.mp4"
    argv = ["video", str(source), "-o", str(target), "-q", "--audio", "drop", "--voice", "disguise"]
    assert run_cli(argv) == exit_codes.USAGE
    assert not target.exists()


def test_seed_never_in_the_manifest(tmp_path: Path, fake: FakeDetector) -> None:
    source = tmp_path / "in.mp4"
    make_clip(source)
    target, manifest = tmp_path / "out.mp4", tmp_path / "out.manifest.json"
    argv = ["video", str(source), "-o", str(target), "-q", "--voice", "disguise", "--seed", "987654"]
    assert run_cli([*argv, "--manifest", str(manifest)]) == exit_codes.OK
    text = manifest.read_text(encoding="utf-8")
    assert '"audio": "disguise"' in text and '"pitch"' in text
    assert "seed" not in text and "987654" not in text
