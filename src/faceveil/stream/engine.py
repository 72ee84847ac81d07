"""`LiveSession`: the real-time anonymization engine (one per camera or stream).

Each call of :meth:`LiveSession.process` takes one frame and returns it anonymized, before the
caller lets it go anywhere. The detector runs on as many frames as the detection budget allows
(measured, not guessed: the session times the detector and the gaps between frames) and at least
every ``max_detect_every`` frames; a :class:`~faceveil.tracking.FaceTracker` keeps faces hidden on
the frames between. Raw detections are always hidden; the tracker only adds regions. When the
detector fails on a frame, the whole frame is hidden (black), never shown as it came.

A frame goes through two stages, :meth:`LiveSession.prepare` (detection) and
:meth:`LiveSession.finish` (tracking and hiding); :meth:`LiveSession.process` runs both. A caller
with two threads (``faceveil stream``) runs them overlapped: the next frame is detected while the
one before is hidden, so a slow detection no longer holds up the frames after it.

Used by ``faceveil stream`` and by the web app's live camera page (one session per WebSocket,
called from that connection's worker thread)::

    session = LiveSession(LiveConfig())
    out = session.process(rgb, capture_time=time.monotonic())
    out.image, out.faces, out.latency_ms, out.fps, out.detected
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.config import AnonymizerConfig, DetectorConfig
from faceveil.core.detections import Detections
from faceveil.detection.base import Detector
from faceveil.errors import ConfigError, FaceveilError, ValidationError
from faceveil.stream.overlay import draw_overlay
from faceveil.tracking.tracker import FaceTracker, TrackerConfig

RGBImage = npt.NDArray[np.uint8]

#: Live defaults: one CenterFace pass on a copy of at most 640 px (about 25 ms on a 720p frame on
#: one idle CPU core, against 75 ms at 960 px), leaving the rest of each frame period to decoding,
#: hiding and encoding. Faces under about 20 px in a 720p frame need a larger ``max_side``.
DEFAULT_LIVE_PRESET = "fast"
DEFAULT_LIVE_MAX_SIDE = 640
#: Weight of the newest sample in the moving averages of detector time, frame period and fps.
_EMA = 0.2


def _default_live_anonymizer() -> AnonymizerConfig:
    return AnonymizerConfig(detector=DetectorConfig(name=DEFAULT_LIVE_PRESET, max_side=DEFAULT_LIVE_MAX_SIDE))


@dataclass(frozen=True)
class LiveConfig:
    """Settings of a live session. Every value is validated when built.

    Attributes:
        anonymizer: detector preset and mask settings (as for photos and videos).
        tracker: how faces are carried between detections (``hold`` frames after the last one).
        detect_budget: share of the frame period the detector may use on average; the session
            detects every N-th frame with N = ceil(detector time / (budget x frame period)).
            Decoding and encoding run in other threads, so 1.0 uses one core for detection.
        max_detect_every: detect at least every this many frames, whatever the budget (a face
            that comes into view is found within this many frames; with 2 it is missed on one
            frame at most; frames are dropped rather than detection skipped).
        nominal_fps: frame rate assumed until the gaps between capture times are measured.
        overlay: draw fps, faces in view and latency in the top-left corner (after hiding).
    """

    anonymizer: AnonymizerConfig = field(default_factory=_default_live_anonymizer)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    detect_budget: float = 1.0
    max_detect_every: int = 2
    nominal_fps: float = 25.0
    overlay: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.detect_budget, int | float) and 0.05 <= self.detect_budget <= 4.0):
            raise ConfigError(f"detect_budget must lie in [0.05, 4], got {self.detect_budget!r}")
        if isinstance(self.max_detect_every, bool) or not 1 <= self.max_detect_every <= 30:
            raise ConfigError(f"max_detect_every must lie in [1, 30], got {self.max_detect_every!r}")
        if self.max_detect_every > self.tracker.hold + 1:
            raise ConfigError(
                f"max_detect_every ({self.max_detect_every}) must not exceed the tracker's hold + 1 "
                f"({self.tracker.hold + 1}): faces would flicker between detections"
            )
        if not 1.0 <= self.nominal_fps <= 240.0:
            raise ConfigError(f"nominal_fps must lie in [1, 240], got {self.nominal_fps!r}")


@dataclass(frozen=True, eq=False)
class LiveFrame:
    """One processed frame.

    Attributes:
        image: the anonymized ``(H, W, 3)`` uint8 RGB frame (a new array).
        faces: faces in view: regions hidden on this frame (detected plus held by the tracker).
        latency_ms: added latency, from ``capture_time`` to the end of processing.
        fps: frames processed per second (moving average over wall time).
        detected: whether the detector ran on this frame.
        regions: the hidden regions (with ``tracker_id`` and ``data["source"]``).
        hidden_whole: the detector failed and the whole frame was hidden.
    """

    image: RGBImage
    faces: int
    latency_ms: float
    fps: float
    detected: bool
    regions: Detections
    hidden_whole: bool = False


@dataclass(frozen=True, eq=False)
class Prepared:
    """A frame after the detection stage, on its way to :meth:`LiveSession.finish`.

    Attributes:
        rgb: the frame (not modified).
        capture_time: when it was captured, on the session's clock.
        found: the detector's faces on it (empty when it was not detected).
        detected: whether the detector ran on it.
        failed: the detector failed: the whole frame is hidden.
        reset: the source reconnected before this frame: tracks are forgotten first.
    """

    rgb: RGBImage
    capture_time: float
    found: Detections
    detected: bool
    failed: bool
    reset: bool = False


class _Ema:
    """Exponential moving average; None until the first sample."""

    def __init__(self) -> None:
        self.value: float | None = None

    def add(self, sample: float) -> float:
        self.value = sample if self.value is None else self.value + _EMA * (sample - self.value)
        return self.value


class LiveSession:
    """Anonymizes the frames of one live source, one at a time, in capture order.

    Args:
        config: the session's settings.
        anonymizer: a shared, already loaded Anonymizer (thread-safe; several sessions may share
            one so that the model is loaded once); by default one is built from ``config``.
        detector: use this detector (tests pass a fake) instead of the configured one.
        clock: the clock of ``capture_time`` (``time.monotonic`` by default).

    Not thread-safe: call :meth:`process` from one thread per session, or :meth:`prepare` from
    one thread and :meth:`finish` from one other, each in capture order.
    """

    def __init__(
        self,
        config: LiveConfig | None = None,
        *,
        anonymizer: Anonymizer | None = None,
        detector: Detector | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or LiveConfig()
        if anonymizer is None:
            anonymizer = Anonymizer(self.config.anonymizer, detector=detector)
        elif detector is not None:
            raise ConfigError("pass either an anonymizer or a detector, not both")
        self.anonymizer = anonymizer
        self.clock = clock
        self.tracker = FaceTracker(self.config.tracker)
        self.frames = 0
        self.detections = 0
        self.detector_failures = 0
        self._detect_cost = _Ema()
        self._period = _Ema()
        self._other_cost = _Ema()
        self._fps = _Ema()
        self._since_detect = math.inf
        self._last_capture: float | None = None
        self._last_done: float | None = None

    def reset(self) -> None:
        """Forget tracks and timing (the source reconnected: the next frame is detected)."""
        self.tracker.reset()
        self._restart_detection()

    def _restart_detection(self) -> None:
        """Detect the next frame and measure the frame rate anew (the detection stage's part)."""
        self._since_detect = math.inf
        self._last_capture = None

    @property
    def detector_ms(self) -> float | None:
        """Moving average of one detector run, in milliseconds (None before the second run)."""
        return None if self._detect_cost.value is None else self._detect_cost.value * 1000.0

    @property
    def hide_ms(self) -> float | None:
        """Moving average of tracking and hiding one frame, in milliseconds."""
        return None if self._other_cost.value is None else self._other_cost.value * 1000.0

    @property
    def detect_every(self) -> int:
        """How often the detector runs now (1: every frame), from the measured costs.

        Each frame may spend ``detect_budget`` x the frame period; what the rest of the work
        (tracking, hiding) leaves of it goes to the detector, spread over N frames (also when
        the two stages overlap in two threads: the machine's cores are shared all the same).
        """
        cost = self._detect_cost.value
        if cost is None:
            return 1
        period = self._period.value or 1.0 / self.config.nominal_fps
        left = self.config.detect_budget * period - (self._other_cost.value or 0.0)
        if left <= 0:
            return self.config.max_detect_every
        wanted = math.ceil(cost / left - 1e-9)
        return max(1, min(self.config.max_detect_every, wanted))

    def process(self, rgb: RGBImage, capture_time: float, frame_period: float | None = None) -> LiveFrame:
        """Anonymize one frame (:meth:`prepare`, then :meth:`finish`).

        Args:
            rgb: the ``(H, W, 3)`` uint8 RGB frame (not modified).
            capture_time: when the frame was captured or received, on this session's clock
                (``time.monotonic()`` seconds unless another clock was given).
            frame_period: the source's frame period in seconds, when the caller knows it (a
                caller that drops frames between calls passes it, so that the detection budget
                follows the source's rate, not the rate of the frames it kept).

        Returns:
            the anonymized frame and its figures.
        """
        return self.finish(self.prepare(rgb, capture_time, frame_period))

    def prepare(
        self, rgb: RGBImage, capture_time: float, frame_period: float | None = None, *, reset: bool = False
    ) -> Prepared:
        """The detection stage: detect on ``rgb`` if its turn has come (arguments as for
        :meth:`process`; ``reset``: the source reconnected, the frame is detected and tracks are
        forgotten before it). The frame is not shown yet: only :meth:`finish` makes it safe."""
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValidationError(f"expected an (H, W, 3) uint8 RGB image, got {getattr(rgb, 'shape', None)}")
        if reset:
            self._restart_detection()
        self._note_capture(capture_time, frame_period)
        detect = self._since_detect + 1 >= self.detect_every
        if detect:
            found, failed = self._detect(rgb)
        else:
            self._since_detect += 1
            found, failed = Detections.empty(), False
        return Prepared(rgb, capture_time, found, detect, failed, reset)

    def finish(self, prepared: Prepared) -> LiveFrame:
        """The hiding stage: track and hide a prepared frame (in capture order)."""
        started = self.clock()
        if prepared.reset:
            self.tracker.reset()
        rgb = prepared.rgb
        regions = self.tracker.update(prepared.found)
        failed = prepared.failed
        image = (
            self.anonymizer.mark(np.zeros_like(rgb)) if failed else self.anonymizer.hide(rgb, regions).image
        )
        self.frames += 1
        done = self.clock()
        self._other_cost.add(max(0.0, done - started))
        fps = self._note_done(done)
        latency_ms = max(0.0, (done - prepared.capture_time) * 1000.0)
        if self.config.overlay:
            draw_overlay(image, fps=fps, faces=len(regions), latency_ms=latency_ms)
        return LiveFrame(image, len(regions), latency_ms, fps, prepared.detected, regions, failed)

    # ------------------------------------------------------------------------------------------
    def _note_capture(self, capture_time: float, frame_period: float | None) -> None:
        if frame_period is not None and 0.0 < frame_period < 2.0:
            self._period.value = frame_period
        elif self._last_capture is not None:
            gap = capture_time - self._last_capture
            if 0.0 < gap < 2.0:  # a pause (reconnection, stall) says nothing about the frame rate
                self._period.add(gap)
        self._last_capture = capture_time

    def _note_done(self, done: float) -> float:
        if self._last_done is not None and done > self._last_done:
            self._fps.add(1.0 / (done - self._last_done))
        self._last_done = done
        return self._fps.value or 0.0

    def _detect(self, rgb: RGBImage) -> tuple[Detections, bool]:
        """(detections, failed). A failed detection hides the whole frame (fail closed)."""
        start = self.clock()
        self._since_detect = 0
        try:
            found = self.anonymizer.detect(rgb)
        except (FaceveilError, ValueError, RuntimeError):
            self.detector_failures += 1
            return Detections.empty(), True
        finally:
            if self.detections or self.detector_failures > 1:  # the first run warms the model up
                self._detect_cost.add(max(0.0, self.clock() - start))
        self.detections += 1
        return found, False

    def __repr__(self) -> str:
        return f"LiveSession(frames={self.frames}, detect_every={self.detect_every})"
