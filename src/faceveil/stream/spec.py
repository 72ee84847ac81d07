"""What one live stream is: its source, outputs and settings, checked when built."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from faceveil.compliance.keys import EncryptionKey
from faceveil.config import check_choice
from faceveil.errors import ConfigError
from faceveil.stream.audio import AUDIO_CHOICES, AudioFilterFactory
from faceveil.stream.engine import LiveConfig
from faceveil.stream.records import SegmentManifestConfig
from faceveil.stream.safety import SourceSpec
from faceveil.stream.sinks import EncoderConfig, OutputSpec, check_encryptable_recording
from faceveil.stream.sources import SourceConfig

ON_LATE = ("drop", "repeat")


@dataclass(frozen=True)
class StreamSpec:
    """Everything one stream needs.

    Attributes:
        name: a label for logs and reports.
        source: the checked source.
        outputs: where anonymized frames go (at least one).
        live: the engine's settings.
        source_config: timeouts, pacing, reconnection.
        encoder: H.264 settings of files and push targets.
        segment_s: rolling recording files of this many seconds (None: one file).
        keep_segments: keep only the newest N segment files (None: all).
        overwrite: replace existing recording files.
        on_late: ``drop`` late frames, or ``repeat`` the last anonymized frame in their place.
        max_lag: frames older than this (seconds since capture) when their turn comes are dropped.
        queue_size: decoded frames that may wait for the engine.
        duration: stop after this many seconds (None: until the source ends or gives up).
        regions: write one JSON line per output frame (regions, timing) to this path.
        encryption: CENC-encrypt every recorded file (MP4 recordings only; pushes and previews
            are not encrypted).
        manifest: write a (signed) manifest of every finished recorded file.
        audio: ``keep`` the source's sound in recordings and pushes (AAC), or ``drop`` it.
        output_size: ``(width, height)`` the pictures are scaled down to fit, before they are
            anonymized (None: the source's size; a picture is never scaled up).
        audio_filter: builds the stream's audio filter from (sample rate, channels) once the
            source's sound is known (e.g. a voice disguiser); None passes the sound through.
    """

    name: str
    source: SourceSpec
    outputs: tuple[OutputSpec, ...]
    live: LiveConfig = field(default_factory=LiveConfig)
    source_config: SourceConfig = field(default_factory=SourceConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    segment_s: float | None = None
    keep_segments: int | None = None
    overwrite: bool = False
    on_late: str = "drop"
    max_lag: float = 0.5
    queue_size: int = 2
    duration: float | None = None
    regions: Path | None = None
    encryption: EncryptionKey | None = None
    manifest: SegmentManifestConfig | None = None
    audio: str = "keep"
    audio_filter: AudioFilterFactory | None = None
    output_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not self.outputs:
            raise ConfigError(f"stream {self.name!r} has no output")
        files = [Path(o.target) for o in self.outputs if o.kind == "file"]
        for what, value in (("encrypt", self.encryption), ("manifest", self.manifest)):
            if value is not None and not files:
                raise ConfigError(f"{what} applies to recordings, and stream {self.name!r} records no file")
        for path in files:
            check_encryptable_recording(path, self.encryption)
        check_choice("on-late policy", self.on_late, ON_LATE)
        check_choice("audio", self.audio, AUDIO_CHOICES)
        if self.output_size is not None and not all(16 <= v <= 7680 for v in self.output_size):
            raise ConfigError(f"output_size must lie in [16, 7680] px on each side, got {self.output_size!r}")
        if self.audio_filter is not None and not callable(self.audio_filter):
            raise ConfigError("audio_filter must build a filter from (sample rate, channels)")
        if not 0.02 <= self.max_lag <= 60:
            raise ConfigError(f"max_lag must lie in [0.02, 60] seconds, got {self.max_lag!r}")
        if not 1 <= self.queue_size <= 64:
            raise ConfigError(f"queue_size must lie in [1, 64], got {self.queue_size!r}")
        if self.duration is not None and self.duration <= 0:
            raise ConfigError(f"duration must be positive, got {self.duration!r}")
        if self.source.kind == "file" and not self.source_config.realtime:
            raise ConfigError(f"{self.source.display} is a file: play it with realtime (--realtime)")
