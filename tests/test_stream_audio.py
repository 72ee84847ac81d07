"""Sound on live streams, on synthetic input: the audio filter hook, the timing of sound against
pictures in real recordings (H.264 + AAC), and that dropped pictures never cut the sound.

The synthetic source flashes a white square in the top-left corner for the first 0.1 s of every
second and beeps (1 kHz) over exactly the same time: in a recording, the start of each beep
minus the start of its flash is the audio/video offset.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from av_support import read as decode
from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.config import AnonymizerConfig, MaskConfig
from faceveil.detection.fake import FakeDetector, boxes
from faceveil.errors import ConfigError
from faceveil.stream.audio import (
    AUDIO_RATE,
    AudioBlock,
    AudioBuffer,
    AudioFilter,
    AudioTrack,
    FilteredAudio,
    voice_filter,
)
from faceveil.stream.engine import LiveConfig
from faceveil.stream.runner import SinkRunner
from faceveil.stream.safety import SourceSpec
from faceveil.stream.sinks import FileSink, OutputFrame, OutputSpec
from faceveil.stream.sources import CapturedFrame
from faceveil.stream.spec import StreamSpec
from faceveil.stream.worker import StreamWorker

Samples = npt.NDArray[np.float32]
FPS = 25
BLOCK = 960  # 20 ms of sound
SOLID = AnonymizerConfig(mask=MaskConfig(mode="solid", color=(255, 0, 255), shape="box", scale=1.0))
FACE = (40.0, 30.0, 70.0, 60.0)


def beep(start: float, count: int, channels: int = 2) -> Samples:
    """``count`` samples from ``start`` s: a 1 kHz tone in the first 0.1 s of each second."""
    t = start + np.arange(count) / AUDIO_RATE
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t) * (np.mod(t, 1.0) < 0.1)
    return np.repeat(tone[:, None], channels, axis=1).astype(np.float32)


def flash(index: int) -> npt.NDArray[np.uint8]:
    """Frame ``index`` at 25 fps: grey, with a white corner square in the first 0.1 s of each second."""
    rgb = np.full((96, 128, 3), 60, np.uint8)
    if (index / FPS) % 1.0 < 0.1 - 1e-9:
        rgb[:24, :24] = 255
    return rgb


class DelayFilter:
    """A filter whose output lags by ``latency_samples`` (what a real voice filter does)."""

    def __init__(self, latency: int, channels: int, gain: float = 1.0) -> None:
        self.latency_samples = latency
        self.gain = gain
        self._held = np.zeros((latency, channels), np.float32)

    def process(self, block: Samples) -> Samples:
        both = np.concatenate([self._held, block])
        self._held = both[len(block) :]
        return np.asarray(both[: len(block)] * self.gain, dtype=np.float32)

    def flush(self) -> Samples:
        out, self._held = self._held, self._held[:0]
        return np.asarray(out * self.gain, dtype=np.float32)


class AVSource:
    """A live source of flashing frames and beeping sound at their real pace."""

    def __init__(self, seconds: float, skip: Callable[[int], bool] = lambda i: False) -> None:
        self.seconds = seconds
        self.skip = skip  # frames the "camera" loses: the sound goes on
        self.connections = 0
        self.on_audio: Callable[[AudioBlock], None] | None = None

    def run(self, emit: Callable[[CapturedFrame], None]) -> None:
        self.connections = 1
        start = time.monotonic()
        frame = sample = 0
        total = round(self.seconds * FPS)
        if self.on_audio is not None:
            self.on_audio(AudioBlock(np.zeros((0, 2), np.float32), 0.0))
        while frame < total:
            t_frame, t_sound = frame / FPS, sample / AUDIO_RATE
            now = min(t_frame, t_sound)
            wait = start + now - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if t_sound <= t_frame:
                if self.on_audio is not None:
                    self.on_audio(AudioBlock(beep(t_sound, BLOCK), t_sound))
                sample += BLOCK
                continue
            if not self.skip(frame):
                emit(CapturedFrame(flash(frame), time.monotonic(), t_frame, t_frame, 1, 1 / FPS))
            frame += 1


def stream_spec(path: Path, **values: object) -> StreamSpec:
    return StreamSpec(
        name="av",
        source=SourceSpec("url", "rtmp://203.0.113.1/live/x", "rtmp"),
        outputs=(OutputSpec("file", str(path)),),
        live=LiveConfig(anonymizer=SOLID, max_detect_every=1),
        queue_size=1,
        **values,  # type: ignore[arg-type]
    )


def record(path: Path, source: AVSource, detector: FakeDetector, **values: object) -> StreamWorker:
    spec = stream_spec(path, **values)
    sink = FileSink(path, segment_s=values.get("segment_s"))  # type: ignore[arg-type]
    worker = StreamWorker(spec, Anonymizer(SOLID, detector=detector), sinks=[sink], source=source)
    worker.run()
    return worker


def onsets(sound: Samples, start: float) -> list[float]:
    loud = np.flatnonzero(np.abs(sound) > 0.1)
    if not len(loud):
        return []
    firsts = [loud[0]] + [b for a, b in pairwise(loud) if b - a > AUDIO_RATE // 2]
    return [start + i / AUDIO_RATE for i in firsts]


def offsets(path: Path) -> tuple[list[float], float, float, float]:
    """A/V offsets (sound minus picture, seconds) at each flash whose first frame was kept, the
    sound's length, the pictures' length, and the share of the recording's length with sound."""
    times, lit, sound, start = decode(path)
    period = 1.0 / FPS
    flashes = [
        times[i]
        for i in range(1, len(times))
        if lit[i] and not lit[i - 1] and abs(times[i] - times[i - 1] - period) < 0.002
    ]
    beeps = onsets(sound, start)
    assert beeps and flashes
    pairs = [min(beeps, key=lambda b, f=f: abs(b - f)) - f for f in flashes]  # type: ignore[misc]
    sound_s = len(sound) / AUDIO_RATE
    video_s = times[-1] - times[0] + period
    return pairs, sound_s, video_s, start - times[0]


# -- the filter hook --------------------------------------------------------------------------


def test_a_delaying_filter_is_compensated_to_the_sample() -> None:
    channels, latency = 2, 700
    audio = FilteredAudio(DelayFilter(latency, channels), channels)
    source = np.random.default_rng(1).uniform(-0.9, 0.9, (5 * 480, channels)).astype(np.float32)
    out: list[AudioBlock] = []
    for i in range(5):
        out += audio.push(AudioBlock(source[i * 480 : (i + 1) * 480], 10.0 + i * 480 / AUDIO_RATE))
    out += audio.flush()
    joined = np.concatenate([b.samples for b in out])
    np.testing.assert_array_equal(joined, source)  # every input sample, once, none of the priming
    assert out[0].pts == pytest.approx(10.0 + 0 / AUDIO_RATE)
    position = 0
    for block in out:  # each block carries the time of the input samples it holds
        assert block.pts == pytest.approx(10.0 + position / AUDIO_RATE, abs=1e-9)
        position += len(block.samples)


def test_restamping_follows_gaps_in_the_input() -> None:
    audio = FilteredAudio(DelayFilter(300, 1), 1)
    first = AudioBlock(np.full((480, 1), 0.25, np.float32), 1.0)
    second = AudioBlock(np.full((480, 1), -0.25, np.float32), 5.0)  # a reconnection later
    out = audio.push(first) + audio.push(second) + audio.flush()
    starts = {round(b.pts, 6): float(b.samples[0, 0]) for b in out}
    assert starts[1.0] == 0.25 and starts[5.0] == -0.25
    assert sum(len(b.samples) for b in out) == 960


def test_a_failing_filter_makes_silence_never_the_raw_sound() -> None:
    class Broken:
        latency_samples = 0

        def process(self, block: Samples) -> Samples:
            raise RuntimeError("model crashed")

        def flush(self) -> Samples:
            return np.zeros((0, 1), np.float32)

    class WrongShape(Broken):
        def process(self, block: Samples) -> Samples:
            return block[:10]

    for bad in (Broken(), WrongShape()):
        audio = FilteredAudio(bad, 1)
        out = audio.push(AudioBlock(np.full((480, 1), 0.5, np.float32), 0.0))
        assert np.all(np.concatenate([b.samples for b in out]) == 0.0)
        assert audio.failures == 1


def test_filter_and_voice_settings_are_checked() -> None:
    class NoLatency:
        latency_samples = -1

        def process(self, block: Samples) -> Samples:
            return block

        def flush(self) -> Samples:
            return np.zeros((0, 1), np.float32)

    with pytest.raises(ConfigError, match="latency_samples"):
        FilteredAudio(NoLatency(), 1)
    assert isinstance(DelayFilter(1, 1), AudioFilter)
    assert voice_filter(None) is None and voice_filter("none") is None
    with pytest.raises(ConfigError, match="choose one of: keep, disguise, drop"):
        voice_filter("robot")
    with pytest.raises(ConfigError, match="audio"):
        stream_spec(Path("x.mp4"), audio="mute")


def test_track_fills_gaps_with_silence_and_cuts_overlaps() -> None:
    track = AudioTrack(origin=2.0, channels=1)
    assert len(track.place(AudioBlock(np.ones((480, 1), np.float32), 1.995))) == 240  # before the origin
    gap = track.place(AudioBlock(np.ones((480, 1), np.float32), 2.02))
    assert len(gap) == 1200 and np.all(gap[:720] == 0) and np.all(gap[720:] == 1) and track.padded == 720
    overlap = track.place(AudioBlock(np.ones((480, 1), np.float32), 2.025))  # starts 240 samples early
    assert len(overlap) == 240 and track.next == 1680


def test_buffer_holds_sound_until_the_pictures_reach_it() -> None:
    buffer = AudioBuffer(max_s=1.0)
    for i in range(10):
        buffer.add(AudioBlock(np.zeros((480, 1), np.float32), i * 0.01))
    taken = buffer.take(0.045)
    assert sum(len(b.samples) for b in taken) == round(0.045 * AUDIO_RATE)
    assert buffer.blocks[0].pts == pytest.approx(0.045)
    assert buffer.overdue() is None


def test_a_full_frame_queue_never_drops_sound() -> None:
    class Slow:
        name = "slow"

        def __init__(self) -> None:
            self.frames = 0
            self.samples = 0
            self.gate = threading.Event()

        def write(self, frame: OutputFrame) -> None:
            self.gate.wait(5)
            self.frames += 1

        def write_audio(self, block: AudioBlock) -> None:
            self.samples += len(block.samples)

        def close(self) -> None:
            pass

    sink = Slow()
    runner = SinkRunner(sink, depth=2)
    runner.start()
    image = np.zeros((8, 8, 3), np.uint8)
    for i in range(20):
        runner.put(OutputFrame(image, i / 25, time.monotonic()))
        runner.put_audio(AudioBlock(np.zeros((960, 2), np.float32), i / 25))
    sink.gate.set()
    runner.finish()
    assert runner.dropped >= 10 and sink.frames <= 10
    assert sink.samples == 20 * 960 and runner.audio_dropped == 0


# -- recordings -------------------------------------------------------------------------------


def test_recording_keeps_sound_in_sync_and_whole_when_frames_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "rec.mp4"
    lost = {i for i in range(200) if i % 7 == 3}  # the camera loses frames: the sound goes on
    worker = record(path, AVSource(6.0, skip=lambda i: i in lost), FakeDetector(boxes(FACE)))
    pairs, sound_s, video_s, lead = offsets(path)
    assert len(pairs) >= 4
    assert max(abs(p) for p in pairs) <= 0.040, pairs
    assert max(pairs) - min(pairs) <= 0.025, pairs  # no drift
    assert abs(lead) <= 0.030
    assert sound_s >= video_s - 0.05, (sound_s, video_s)  # sound for the whole length
    assert worker.stats.audio_samples >= 5.9 * AUDIO_RATE


def test_recording_with_a_slow_engine_drops_pictures_not_sound(tmp_path: Path) -> None:
    path = tmp_path / "rec.mkv"

    class Slow(FakeDetector):
        def detect(self, rgb: npt.NDArray[np.uint8]) -> object:  # type: ignore[override]
            time.sleep(0.06)  # slower than the frame rate: the engine drops frames
            return super().detect(rgb)

    worker = record(path, AVSource(5.0), Slow(boxes(FACE)))
    assert worker.stats.dropped + worker.stats.dropped_late > 20
    # lengths straight from the file: with most pictures dropped, few flashes keep their first
    # frame, so the flash-based offsets would depend on which ones the load let through
    times, _, sound, _ = decode(path)
    sound_s, video_s = len(sound) / AUDIO_RATE, times[-1] - times[0] + 1.0 / FPS
    assert sound_s >= video_s - 0.05 and sound_s >= 4.5


def test_the_filter_hook_is_applied_and_stays_in_sync(tmp_path: Path) -> None:
    path = tmp_path / "rec.mp4"
    latency = round(0.08 * AUDIO_RATE)  # 80 ms: uncompensated, the beeps would come late
    filtered = record(
        path,
        AVSource(4.0),
        FakeDetector(boxes(FACE)),
        audio_filter=lambda rate, channels: DelayFilter(latency, channels, gain=-0.5),
    )
    pairs, sound_s, video_s, _ = offsets(path)
    assert max(abs(p) for p in pairs) <= 0.040, pairs
    assert sound_s >= video_s - 0.05
    assert filtered.audio is not None and filtered.audio.latency == latency
    # the filter's output is what was recorded: the beeps at half their loudness (0.5 went in)
    _, _, sound, start = decode(path)
    window = sound[round((1.0 - start + 0.02) * AUDIO_RATE) : round((1.0 - start + 0.08) * AUDIO_RATE)]
    assert 0.2 <= float(np.abs(window).max()) <= 0.3


def test_segments_split_the_sound_with_the_pictures(tmp_path: Path) -> None:
    path = tmp_path / "rec.mp4"
    record(path, AVSource(5.0), FakeDetector(boxes(FACE)), segment_s=2.0)
    segments = sorted(tmp_path.glob("rec-*.mp4"))
    assert len(segments) == 3
    for segment in segments:
        _, _, sound, _ = decode(segment)
        times, _, _, _ = decode(segment)
        video_s = times[-1] - times[0] + 1 / FPS
        assert abs(len(sound) / AUDIO_RATE - video_s) <= 0.06, segment.name


def test_drop_leaves_the_recording_silent(tmp_path: Path) -> None:
    path = tmp_path / "rec.mkv"
    record(path, AVSource(1.5), FakeDetector(boxes(FACE)), audio="drop")
    with av.open(str(path)) as container:
        assert not container.streams.audio and container.streams.video
