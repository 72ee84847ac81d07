"""Live engine and stream worker on synthetic input with fake detectors.

The fake detector reports one face at `FACE`, hidden in solid magenta: a frame that leaves
unprocessed has no magenta there, so every test can check that no raw frame gets out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from faceveil.anonymize.anonymizer import Anonymizer, Result
from faceveil.config import AnonymizerConfig, MaskConfig
from faceveil.core.detections import Detections
from faceveil.core.frame import Frame
from faceveil.detection.fake import FakeDetector, boxes
from faceveil.errors import ConfigError, InputError, ModelError, StreamError, ValidationError
from faceveil.stream.engine import LiveConfig, LiveSession
from faceveil.stream.overlay import overlay_text
from faceveil.stream.safety import SourceSpec
from faceveil.stream.sinks import OutputFrame, OutputSpec
from faceveil.stream.sources import CapturedFrame, SourceConfig, SourceReader
from faceveil.stream.spec import StreamSpec
from faceveil.stream.worker import StreamWorker, run_streams
from faceveil.tracking.tracker import TrackerConfig

RGBImage = npt.NDArray[np.uint8]
FACE = (20.0, 16.0, 44.0, 40.0)
MAGENTA = np.array([255, 0, 255], np.uint8)
SOLID = AnonymizerConfig(mask=MaskConfig(mode="solid", color=(255, 0, 255), shape="box", scale=1.0))


def picture(index: int, width: int = 96, height: int = 64) -> RGBImage:
    """A frame with no magenta anywhere; its index is written in the bottom-right pixel."""
    rgb = np.full((height, width, 3), (40 + index % 100, 90, 120), np.uint8)
    rgb[-1, -1] = (index % 256, index // 256, 7)
    return rgb


def face_hidden(image: RGBImage) -> bool:
    """Is the whole `FACE` box magenta?"""
    x1, y1, x2, y2 = (int(v) for v in FACE)
    return bool(np.all(image[y1:y2, x1:x2] == MAGENTA))


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def slow_detector(clock: FakeClock | None, cost: float, result: Detections) -> FakeDetector:
    """A fake detector that takes ``cost`` seconds (on the fake clock, or really sleeping)."""

    def detect(rgb: RGBImage) -> Detections:
        if clock is None:
            time.sleep(cost)
        else:
            clock.now += cost
        return result

    return FakeDetector(detect)


def session(detector: FakeDetector, clock: FakeClock | None = None, **kwargs: object) -> LiveSession:
    config = LiveConfig(anonymizer=SOLID, **kwargs)  # type: ignore[arg-type]
    anonymizer = Anonymizer(SOLID, detector=detector)
    return LiveSession(config, anonymizer=anonymizer, clock=clock or time.monotonic)


# ---------------------------------------------------------------------------------------------
# LiveSession


def test_every_frame_is_hidden_and_the_input_is_left_alone() -> None:
    live = session(FakeDetector(boxes(FACE)))
    for i in range(10):
        rgb = picture(i)
        before = rgb.copy()
        out = live.process(rgb, time.monotonic())
        assert face_hidden(out.image)
        assert np.array_equal(rgb, before)
        assert out.image.shape == rgb.shape and out.image.dtype == np.uint8
        assert out.faces >= 1


def test_detection_budget_spreads_the_detector_and_the_tracker_covers_between() -> None:
    clock = FakeClock()
    # the detector costs 100 ms, frames come every 40 ms, 60% of a frame may go to detection:
    # ceil(0.1 / (0.6 * 0.04)) = 5, capped by max_detect_every=4
    detector = slow_detector(clock, 0.1, boxes(FACE))
    live = session(detector, clock, max_detect_every=4, detect_budget=0.6)
    detected = []
    for i in range(20):
        clock.now = 100.0 + i * 0.04
        out = live.process(picture(i), clock.now)
        detected.append(out.detected)
        assert face_hidden(out.image), f"frame {i}"
        kinds = set(out.regions.data["source"])
        assert kinds == ({"detected"} if out.detected else {"tracked"})
    # the first detection warms the model up and is not timed; from the second one on, every 4th
    assert detected[:3] == [True, True, False]
    assert live.detect_every == 4
    assert detected[5:17] == [True, False, False, False] * 3


def test_budget_follows_the_source_rate_not_the_rate_of_kept_frames() -> None:
    clock = FakeClock()
    live = session(slow_detector(clock, 0.06, boxes(FACE)), clock, max_detect_every=4)
    for i in range(6):
        clock.now = 100.0 + i * 0.2  # the caller kept one frame in five of a 25 fps source
        live.process(picture(i), clock.now, frame_period=0.04)
    assert live.detect_every == 2  # ceil(0.06 / 0.04); measured on the kept frames it would be 1


def test_cheap_detector_runs_on_every_frame() -> None:
    clock = FakeClock()
    live = session(slow_detector(clock, 0.005, boxes(FACE)), clock)
    flags = []
    for i in range(8):
        clock.now = 100.0 + i * 0.04
        flags.append(live.process(picture(i), clock.now).detected)
    assert all(flags) and live.detect_every == 1


def test_latency_and_fps_accounting() -> None:
    clock = FakeClock()
    live = session(slow_detector(clock, 0.03, boxes(FACE)), clock)
    for i in range(5):
        capture = 100.0 + i * 0.05
        clock.now = capture + 0.01  # the frame waited 10 ms before processing
        out = live.process(picture(i), capture)
        assert out.latency_ms == pytest.approx(40.0 if out.detected else 10.0, abs=1e-6)
    assert out.fps == pytest.approx(20.0, rel=0.05)  # one frame done every 50 ms


def test_detector_failure_hides_the_whole_frame() -> None:
    live = session(FakeDetector(error=ModelError("boom")))
    out = live.process(picture(1), time.monotonic())
    assert out.hidden_whole and out.detected
    assert not out.image.any()
    assert live.detector_failures == 1


def test_raw_detections_are_never_dropped_by_the_tracker() -> None:
    other = (60.0, 10.0, 80.0, 30.0)
    calls = iter([boxes(FACE), boxes(other), boxes(FACE, other)])
    live = session(FakeDetector(lambda rgb: next(calls)), max_detect_every=1)
    for i in range(3):
        out = live.process(picture(i), time.monotonic())
        assert out.detected
        found = out.regions[out.regions.data["source"] == "detected"]
        assert len(found) >= 1
    assert face_hidden(out.image)
    assert np.all(out.image[10:30, 60:80] == MAGENTA)


def test_reset_detects_the_next_frame() -> None:
    clock = FakeClock()
    live = session(slow_detector(clock, 0.2, boxes(FACE)), clock)
    for i in range(3):
        clock.now = 100.0 + i * 0.04
        live.process(picture(i), clock.now)
    live.reset()
    assert live.tracker.track_count == 0
    assert live.process(picture(9), clock.now).detected


def test_overlay_is_drawn_after_hiding() -> None:
    config = LiveConfig(anonymizer=SOLID, overlay=True)
    live = LiveSession(config, anonymizer=Anonymizer(SOLID, detector=FakeDetector(boxes(FACE))))
    rgb = picture(0, 320, 240)
    out = live.process(rgb, time.monotonic())
    assert not np.array_equal(out.image[:12, :100], rgb[:12, :100])  # the text band
    assert overlay_text(25.04, 1, 37.6) == "25.0 fps | 1 face | 38 ms"


def test_bad_input_and_bad_config_are_refused() -> None:
    live = session(FakeDetector())
    with pytest.raises(ValidationError):
        live.process(np.zeros((4, 4), np.uint8), 0.0)
    with pytest.raises(ConfigError, match="detect_budget"):
        LiveConfig(detect_budget=0.0)
    with pytest.raises(ConfigError, match="hold"):
        LiveConfig(max_detect_every=10, tracker=TrackerConfig(hold=3))
    with pytest.raises(ConfigError, match="either"):
        LiveSession(anonymizer=Anonymizer(SOLID, detector=FakeDetector()), detector=FakeDetector())


# ---------------------------------------------------------------------------------------------
# StreamWorker: drop / repeat policy, never a raw frame


class ListSource:
    """Emits ``count`` synthetic frames ``gap`` seconds apart (captured now), then ends."""

    def __init__(self, count: int, gap: float, connection_at: int | None = None) -> None:
        self.count, self.gap, self.connections = count, gap, 0
        self.connection_at = connection_at

    def run(self, emit: Callable[[CapturedFrame], None]) -> None:
        self.connections = 1
        start = time.monotonic()
        for i in range(self.count):
            if self.connection_at is not None and i == self.connection_at:
                self.connections += 1
            wait = start + i * self.gap - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            emit(CapturedFrame(picture(i), time.monotonic(), i * self.gap, i * self.gap, self.connections))


class CollectSink:
    """Keeps every frame it is given."""

    def __init__(self, name: str = "collect") -> None:
        self.name = name
        self.frames: list[OutputFrame] = []
        self.closed = False

    def write(self, frame: OutputFrame) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True


def spec(name: str = "s", **kwargs: object) -> StreamSpec:
    live = LiveConfig(anonymizer=SOLID, max_detect_every=1)
    values: dict[str, object] = {
        "name": name,
        "source": SourceSpec("url", "rtmp://203.0.113.1/live/x", "rtmp"),
        "outputs": (OutputSpec("file", "unused.mkv"),),
        "live": live,
        "queue_size": 1,
        **kwargs,
    }
    return StreamSpec(**values)  # type: ignore[arg-type]


def run_worker(
    policy: str, detector: FakeDetector, source: ListSource, **kwargs: object
) -> tuple[StreamWorker, CollectSink]:
    sink = CollectSink()
    worker = StreamWorker(
        spec("s", on_late=policy, **kwargs),
        Anonymizer(SOLID, detector=detector),
        sinks=[sink],
        source=source,
    )
    worker.run()
    assert sink.closed
    return worker, sink


@pytest.mark.parametrize("policy", ["drop", "repeat"])
def test_a_slow_engine_drops_frames_and_never_passes_one_raw(policy: str) -> None:
    # frames every 10 ms, the detector (run on every frame) takes 40 ms: most frames must go
    source = ListSource(40, 0.01)
    worker, sink = run_worker(policy, slow_detector(None, 0.04, boxes(FACE)), source)
    stats = worker.stats
    assert stats.frames_in == 40
    assert stats.dropped + stats.dropped_late > 10
    assert stats.anonymized + stats.dropped + stats.dropped_late == 40
    assert all(face_hidden(f.image) for f in sink.frames)
    pts = [f.pts for f in sink.frames]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    if policy == "repeat":
        # every input frame has an output at its own time: anonymized or the last one repeated
        # (from the first anonymized frame on: before it there is nothing to repeat)
        expected = [i * 0.01 for i in range(40) if i * 0.01 >= pts[0] - 1e-9]
        assert pts == pytest.approx(expected)
        assert stats.sink_dropped["collect"] == 0
    else:
        assert len(sink.frames) == stats.anonymized and stats.repeated == 0


class SlowHiding(Anonymizer):
    """An Anonymizer whose hiding takes ``cost`` seconds (sleeping, as a busy C library would)."""

    def __init__(self, detector: FakeDetector, cost: float) -> None:
        super().__init__(SOLID, detector=detector)
        self.cost = cost

    def hide(self, image: RGBImage | Frame, detections: Detections) -> Result:
        time.sleep(self.cost)
        return super().hide(image, detections)


def test_detecting_the_next_frame_overlaps_hiding_this_one() -> None:
    """Detection (25 ms) and hiding (25 ms) of every frame, frames 40 ms apart: one after the
    other they would need 50 ms a frame and drop a fifth of them; overlapped, none is dropped."""
    source = ListSource(30, 0.04)
    sink = CollectSink()
    anonymizer = SlowHiding(slow_detector(None, 0.025, boxes(FACE)), 0.025)
    worker = StreamWorker(spec("s", queue_size=2), anonymizer, sinks=[sink], source=source)
    worker.run()
    assert worker.stats.dropped == worker.stats.dropped_late == 0
    assert worker.stats.detected == 30
    assert [f.pts for f in sink.frames] == pytest.approx([i * 0.04 for i in range(30)])
    assert all(face_hidden(f.image) for f in sink.frames)


def test_prepare_then_finish_is_process() -> None:
    one, two = session(FakeDetector(boxes(FACE))), session(FakeDetector(boxes(FACE)))
    for i in range(6):
        rgb = picture(i)
        prepared = two.prepare(rgb, 100.0 + i * 0.04)
        a, b = one.process(rgb, 100.0 + i * 0.04), two.finish(prepared)
        assert np.array_equal(a.image, b.image) and a.detected == b.detected and a.faces == b.faces
    assert one.detections == two.detections >= 1


def test_frames_older_than_max_lag_are_dropped() -> None:
    source = ListSource(12, 0.0)  # a burst: all captured at once
    worker, sink = run_worker(
        "drop", slow_detector(None, 0.03, boxes(FACE)), source, queue_size=64, max_lag=0.1
    )
    assert worker.stats.dropped_late > 0
    assert len(sink.frames) == worker.stats.anonymized < 12
    assert all(face_hidden(f.image) for f in sink.frames)


def test_a_fast_engine_keeps_every_frame_and_its_timing() -> None:
    source = ListSource(25, 0.02)
    worker, sink = run_worker("drop", FakeDetector(boxes(FACE)), source, queue_size=4)
    assert worker.stats.dropped == worker.stats.dropped_late == 0
    assert [f.pts for f in sink.frames] == pytest.approx([i * 0.02 for i in range(25)])
    assert all(face_hidden(f.image) for f in sink.frames)
    assert len(worker.stats.latency_ms) == 25 and max(worker.stats.latency_ms) < 500
    assert len(worker.stats.delivered_ms["collect"]) == 25


def test_a_new_connection_resets_the_tracks() -> None:
    calls: list[int] = []
    detector = FakeDetector(lambda rgb: calls.append(1) or boxes(FACE))  # type: ignore[func-returns-value]
    live = LiveConfig(anonymizer=SOLID, max_detect_every=4, detect_budget=0.05)
    source = ListSource(10, 0.02, connection_at=5)
    worker = StreamWorker(
        spec(live=live, queue_size=8),
        Anonymizer(SOLID, detector=detector),
        sinks=[CollectSink()],
        source=source,
    )
    worker.run()
    assert worker.stats.reconnects == 1
    assert worker.stats.connection == 2


def test_a_failing_sink_stops_the_stream_with_its_error() -> None:
    class Broken(CollectSink):
        def write(self, frame: OutputFrame) -> None:
            raise OSError("disk full")

    worker = StreamWorker(
        spec(),
        Anonymizer(SOLID, detector=FakeDetector(boxes(FACE))),
        sinks=[Broken()],
        source=ListSource(50, 0.01),
    )
    with pytest.raises((OSError, StreamError), match="disk full"):
        worker.run()


def test_source_reader_gives_up_on_a_dead_source_within_its_limit() -> None:
    attempts: list[float] = []

    def opener(spec: SourceSpec, config: SourceConfig) -> object:
        attempts.append(time.monotonic())
        raise InputError("connection refused")

    config = SourceConfig(reconnect_delay=0.05, reconnect_max_delay=0.2, give_up_after=0.6)
    reader = SourceReader(
        SourceSpec("url", "rtsp://203.0.113.1/x", "rtsp"), config, threading.Event(), opener=opener
    )
    start = time.monotonic()
    with pytest.raises(StreamError, match="giving up"):
        reader.run(lambda frame: None)
    assert time.monotonic() - start < 2.0
    assert len(attempts) >= 3
    gaps = np.diff(attempts)
    # backoff: the waits double (0.05, 0.1, 0.2 s); a wait never ends early, only late (machine load)
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and all(gaps[2:] >= 0.2)


def test_a_protocol_this_ffmpeg_lacks_fails_at_once() -> None:
    config = SourceConfig(open_timeout=1.0, reconnect_delay=5.0)
    reader = SourceReader(SourceSpec("url", "srt://127.0.0.1:9", "srt"), config, threading.Event())
    start = time.monotonic()
    with pytest.raises(StreamError, match="srt"):
        reader.run(lambda frame: None)
    assert time.monotonic() - start < 3.0


def test_source_reader_stops_promptly_when_asked() -> None:
    stop = threading.Event()

    def opener(spec: SourceSpec, config: SourceConfig) -> object:
        raise InputError("down")

    reader = SourceReader(
        SourceSpec("url", "rtsp://203.0.113.1/x", "rtsp"),
        SourceConfig(reconnect_delay=5.0),
        stop,
        opener=opener,
    )
    thread = threading.Thread(target=reader.run, args=(lambda frame: None,))
    thread.start()
    time.sleep(0.2)
    stop.set()
    thread.join(2.0)
    assert not thread.is_alive()


# ---------------------------------------------------------------------------------------------
# several streams


def tiny_video(path: Path, frames: int = 30, rate: int = 30) -> Path:
    """An H.264 video of `picture` frames."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10"}
        for i in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture(i), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_one_failing_stream_does_not_stop_the_others(tmp_path: Path) -> None:
    import av

    from faceveil.stream.safety import parse_source

    video = tiny_video(tmp_path / "in.mp4")
    realtime = SourceConfig(realtime=True)
    dead = SourceConfig(open_timeout=0.5, read_timeout=0.5, reconnect_delay=0.05, give_up_after=0.5)
    specs = [
        spec(
            "good",
            source=parse_source(str(video), allow_files=True),
            source_config=realtime,
            outputs=(OutputSpec("file", str(tmp_path / "good.mkv")),),
            queue_size=4,
        ),
        spec(
            "missing",
            source=parse_source(str(tmp_path / "nope.mp4"), allow_files=True),
            source_config=realtime,
            outputs=(OutputSpec("file", str(tmp_path / "missing.mkv")),),
        ),
        spec(
            "refused",
            source=parse_source("rtmp://127.0.0.1:9/live/x"),
            source_config=dead,
            outputs=(OutputSpec("mjpeg", "mjpeg://127.0.0.1:0"),),
        ),
    ]
    models: list[Anonymizer] = []

    def make(stream: StreamSpec) -> Anonymizer:
        models.append(Anonymizer(SOLID, detector=FakeDetector(boxes(FACE))))
        return models[-1]

    results = run_streams(specs, threading.Event(), make)
    assert list(results) == ["good", "missing", "refused"]
    good = results["good"]
    assert not isinstance(good, BaseException), good
    assert good.frames_out == 30 and good.anonymized == 30
    assert isinstance(results["missing"], StreamError)
    assert isinstance(results["refused"], StreamError)
    with av.open(str(tmp_path / "good.mkv")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 30
    # lossy H.264: the face box is (nearly) magenta in every frame
    x1, y1, x2, y2 = (int(v) for v in FACE)
    for rgb in frames:
        centre = rgb[y1 + 4 : y2 - 4, x1 + 4 : x2 - 4].astype(int)
        assert np.abs(centre - MAGENTA.astype(int)).max() < 40


def test_run_streams_refuses_duplicate_names() -> None:
    with pytest.raises(ConfigError, match="unique"):
        run_streams(
            [spec("a"), spec("a")], threading.Event(), lambda s: Anonymizer(SOLID, detector=FakeDetector())
        )
