"""Where anonymized live frames go: files (optionally in rolling segments), RTMP/RTSP push.

Only anonymized frames ever reach a sink: the worker hands a sink the engine's output and
nothing else. Each sink runs in its own thread behind a small queue (:class:`SinkRunner`): a slow
sink drops its oldest waiting frames rather than hold the others back. Files are fragmented MP4
or Matroska, readable up to the last fragment even when the process is killed. A push target
that drops is reopened with backoff; frames meanwhile are counted as lost for that target.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from faceveil.errors import ConfigError, OutputError
from faceveil.stream.audio import AUDIO_RATE, AudioBlock, Samples
from faceveil.stream.safety import redact, redact_in
from faceveil.stream.sound import AudioFeed

if TYPE_CHECKING:
    from faceveil.compliance.keys import EncryptionKey

RGBImage = npt.NDArray[np.uint8]
log = logging.getLogger("faceveil.stream")

#: Containers a live recording may use, by extension.
FILE_FORMATS = {".mp4": "mp4", ".mkv": "matroska"}
_TIME_BASE = Fraction(1, 1000)

OutputKind = Literal["file", "rtmp", "rtsp", "mjpeg"]


@dataclass(frozen=True, eq=False)
class OutputFrame:
    """One anonymized frame for the sinks: pixels, output time (seconds), capture time, and
    what was hidden on it (faces, the whole frame) and whether it repeats the frame before."""

    image: RGBImage
    pts: float
    capture_time: float
    faces: int = 0
    hidden_whole: bool = False
    repeated: bool = False


@dataclass
class SegmentCounts:
    """What one recorded file holds: frames, faces hidden on them (summed over the frames),
    frames hidden whole (the detector failed), frames that repeat the one before."""

    frames: int = 0
    faces: int = 0
    frames_hidden_whole: int = 0
    frames_repeated: int = 0

    def add(self, frame: OutputFrame) -> None:
        """Count one written frame."""
        self.frames += 1
        self.faces += frame.faces
        self.frames_hidden_whole += frame.hidden_whole
        self.frames_repeated += frame.repeated


class SegmentObserver(Protocol):
    """Told when a recorded file is finished (closed, final) and when one is deleted."""

    def finished(self, path: Path, counts: SegmentCounts) -> None:
        """``path`` is complete and will not change again."""

    def removed(self, path: Path) -> None:
        """``path`` was deleted (``keep`` rolled it out)."""


class Sink(Protocol):
    """A destination of anonymized frames."""

    name: str

    def write(self, frame: OutputFrame) -> None:
        """Send one frame on."""

    def close(self) -> None:
        """Finish and release everything."""


class AudioSink(Protocol):
    """A sink that also carries the sound (recordings and pushes; a preview does not)."""

    def write_audio(self, block: AudioBlock) -> None:
        """Take one block of sound (an empty block announces the source's channels)."""


@dataclass(frozen=True)
class OutputSpec:
    """A checked output: a file path, an RTMP/RTSP push URL, or an MJPEG preview address."""

    kind: OutputKind
    target: str


def parse_output(text: str) -> OutputSpec:
    """Check an ``--output``: ``rec.mp4``/``rec.mkv``, ``rtmp(s)://``, ``rtsp(s)://``, ``mjpeg://HOST:PORT``."""
    lower = text.lower()
    if lower.startswith(("rtmp://", "rtmps://")):
        return OutputSpec("rtmp", text)
    if lower.startswith(("rtsp://", "rtsps://")):
        return OutputSpec("rtsp", text)
    if lower.startswith("mjpeg://"):
        match = re.fullmatch(r"mjpeg://(\[[0-9a-f:]+\]|[\w.-]*):(\d{1,5})/?", text, re.IGNORECASE)
        if match is None or int(match.group(2)) > 65535:
            raise ConfigError(
                f"an MJPEG preview is mjpeg://HOST:PORT (e.g. mjpeg://127.0.0.1:8090), got {text!r}"
            )
        return OutputSpec("mjpeg", text)
    if "://" in text:
        raise ConfigError(
            f"unsupported output {redact(text)!r}; choose a .mp4/.mkv file, rtmp://, rtsp:// or mjpeg://HOST:PORT"
        )
    if Path(text).suffix.lower() not in FILE_FORMATS:
        raise ConfigError(f"a recording must end in one of: {', '.join(FILE_FORMATS)}; got {text!r}")
    return OutputSpec("file", text)


@dataclass(frozen=True)
class EncoderConfig:
    """H.264 settings of files and push targets.

    Attributes:
        quality: x264 CRF (lower is better).
        preset: x264 speed preset (``ultrafast`` leaves the most CPU to detection).
        keyframe_s: seconds between keyframes (segments and new viewers start at one).
    """

    quality: int = 23
    preset: str = "ultrafast"
    keyframe_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 <= self.quality <= 51:
            raise ConfigError(f"quality must lie in [0, 51], got {self.quality}")
        presets = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
        if self.preset not in presets:
            raise ConfigError(f"unknown encoder preset {self.preset!r}; choose one of: {', '.join(presets)}")
        if not 0.1 <= self.keyframe_s <= 60:
            raise ConfigError(f"keyframe_s must lie in [0.1, 60], got {self.keyframe_s}")


class _Encoder:
    """One open H.264 output (file or URL); the size is fixed by the first frame."""

    def __init__(
        self,
        target: str,
        muxer: str,
        config: EncoderConfig,
        size: tuple[int, int],
        options: dict[str, str],
        timeout: float,
        audio_channels: int | None = None,
    ) -> None:
        import av

        self._av = av
        self.size = size  # (width, height), both even
        self.container = av.open(target, mode="w", format=muxer, options=options, timeout=(timeout, timeout))
        self.container.metadata.clear()
        stream = self.container.add_stream("libx264", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = _TIME_BASE
        stream.codec_context.time_base = _TIME_BASE
        keyint = max(1, round(config.keyframe_s * 25))
        stream.options = {
            "crf": str(config.quality),
            "preset": config.preset,
            "tune": "zerolatency",
            "g": str(keyint),
            "bf": "0",
        }
        self.stream = stream
        self.last_pts = -1
        self.audio: Any = None
        self._pending = np.zeros((0, audio_channels or 1), np.float32)
        self._audio_pts = 0
        if audio_channels is not None:
            self.audio = self.container.add_stream(
                "aac", rate=AUDIO_RATE, layout="mono" if audio_channels == 1 else "stereo"
            )
            self.audio.bit_rate = 128_000
            self.audio.time_base = Fraction(1, AUDIO_RATE)

    def encode(self, image: RGBImage, pts_ms: int) -> None:
        width, height = self.size
        if image.shape[1] != width or image.shape[0] != height:
            image = _fit(image, width, height)
        import cv2

        # OpenCV's 4:2:0 conversion (both sides even): a third of the encoder's own swscale's time
        yuv = np.asarray(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YUV_I420), np.uint8)
        frame = self._av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = max(pts_ms, self.last_pts + 1)
        frame.time_base = _TIME_BASE
        self.last_pts = frame.pts
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def encode_audio(self, samples: Samples) -> None:
        """Encode sound that continues the track (AAC frames of 1024 samples, pts by count)."""
        if self.audio is None or not len(samples):
            return
        pending = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        size = 1024
        whole = len(pending) // size * size
        for start in range(0, whole, size):
            self._audio_frame(pending[start : start + size])
        self._pending = pending[whole:]

    def _audio_frame(self, chunk: Samples) -> None:
        av = self._av
        layout = "mono" if chunk.shape[1] == 1 else "stereo"
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk.T), format="fltp", layout=layout)
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._audio_pts
        frame.time_base = Fraction(1, AUDIO_RATE)
        self._audio_pts += len(chunk)
        for packet in self.audio.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
            if self.audio is not None:
                if len(self._pending):  # the last frame, filled up with silence
                    fill = np.zeros((1024 - len(self._pending), self._pending.shape[1]), np.float32)
                    self._audio_frame(np.concatenate([self._pending, fill]))
                for packet in self.audio.encode(None):
                    self.container.mux(packet)
        finally:
            self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except (self._av.error.FFmpegError, OSError) as exc:
            log.debug("closing a broken output: %s", exc)


def _even_size(image: RGBImage) -> tuple[int, int]:
    return max(2, image.shape[1] // 2 * 2), max(2, image.shape[0] // 2 * 2)


def _fit(image: RGBImage, width: int, height: int) -> RGBImage:
    """``image`` at exactly ``width`` x ``height`` (cropped by a pixel when odd, else resized)."""
    if image.shape[1] in (width, width + 1) and image.shape[0] in (height, height + 1):
        return np.ascontiguousarray(image[:height, :width])
    import cv2

    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return np.asarray(resized, dtype=np.uint8)


class FileSink:
    """Records to an MP4 or MKV file, or to rolling segments ``NAME-00000.mp4``, ``NAME-00001.mp4``...

    Args:
        path: the recording (its extension picks the container).
        encoder: H.264 settings.
        segment_s: start a new file every this many seconds (None: one file).
        keep: with segments, delete all but the newest ``keep`` files (None: keep all).
        overwrite: replace existing files instead of refusing them.
        encryption: encrypt every file with MP4 Common Encryption (``cenc-aes-ctr``); MP4 only.
        observer: told of each file once it is finished (e.g. to write its manifest).

    Each file is written under its final name (fragmented, so it is readable up to the last
    fragment even if the process is killed); it is final once ``observer.finished`` is called.
    """

    def __init__(
        self,
        path: str | Path,
        encoder: EncoderConfig | None = None,
        segment_s: float | None = None,
        keep: int | None = None,
        overwrite: bool = False,
        encryption: EncryptionKey | None = None,
        observer: SegmentObserver | None = None,
    ) -> None:
        self.path = Path(path)
        self.muxer = FILE_FORMATS.get(self.path.suffix.lower(), "")
        if not self.muxer:
            raise ConfigError(f"a recording must end in one of: {', '.join(FILE_FORMATS)}")
        check_encryptable_recording(self.path, encryption)
        if segment_s is not None and segment_s < 1:
            raise ConfigError(f"segments must last at least 1 s, got {segment_s}")
        if keep is not None and keep < 1:
            raise ConfigError(f"keep must be at least 1, got {keep}")
        self.name = str(self.path)
        self.encoder_config = encoder or EncoderConfig()
        self.segment_s, self.keep, self.overwrite = segment_s, keep, overwrite
        self.encryption, self.observer = encryption, observer
        self.files: list[Path] = []
        self._started = 0  # files started so far (numbers the segments; `files` loses pruned ones)
        self._encoder: _Encoder | None = None
        self._counts = SegmentCounts()
        self._segment_start = 0.0
        self._audio = AudioFeed()
        if not overwrite and segment_s is None and self.path.exists():
            raise OutputError(f"{self.path} exists; pass overwrite (--overwrite) to replace it")

    def _next_path(self) -> Path:
        if self.segment_s is None:
            return self.path
        return self.path.with_name(f"{self.path.stem}-{self._started:05d}{self.path.suffix}")

    def _open(self, frame: OutputFrame) -> _Encoder:
        path = self._next_path()
        if path.exists() and not self.overwrite and path != self.path:
            raise OutputError(f"{path} exists; pass overwrite (--overwrite) to replace it")
        path.parent.mkdir(parents=True, exist_ok=True)
        options = {"fflags": "+bitexact"}
        if self.muxer == "mp4":
            options["movflags"] = "+frag_keyframe+empty_moov+default_base_moof"
        if self.encryption is not None:
            options |= self.encryption.muxer_options()  # an option dictionary: no command line
        try:
            encoder = _Encoder(
                str(path),
                self.muxer,
                self.encoder_config,
                _even_size(frame.image),
                options,
                10.0,
                self._audio.channels,
            )
        except (OSError, ValueError) as exc:
            raise OutputError(f"cannot write {path}: {exc}") from None
        self.files.append(path)
        self._started += 1
        self._segment_start = frame.pts
        self._audio.start(frame.pts)
        self._counts = SegmentCounts()
        self._prune()
        return encoder

    def _prune(self) -> None:
        if self.keep is None:
            return
        while len(self.files) > self.keep:
            old = self.files.pop(0)
            old.unlink(missing_ok=True)
            if self.observer is not None:
                self.observer.removed(old)

    def write(self, frame: OutputFrame) -> None:
        """Encode one frame; starts the next segment when this one is long enough."""
        encoder = self._encoder
        if (
            encoder is not None
            and self.segment_s is not None
            and frame.pts - self._segment_start >= self.segment_s
        ):
            self._finish_file(until=frame.pts)
            encoder = None
        if encoder is None:
            encoder = self._encoder = self._open(frame)
        encoder.encode(frame.image, round((frame.pts - self._segment_start) * 1000))
        self._audio.write(encoder, frame.pts)
        self._counts.add(frame)

    @property
    def current(self) -> Path | None:
        """The file being written now (None between files)."""
        return self.files[-1] if self._encoder is not None and self.files else None

    def write_audio(self, block: AudioBlock) -> None:
        """Take sound; it is written once the pictures reach its time."""
        self._audio.add(block, self._encoder)

    def close(self) -> None:
        """Finish the current file (then tell the observer it is final)."""
        self._finish_file(until=None)

    def _finish_file(self, until: float | None) -> None:
        """Close the open file with its sound up to ``until`` (None: all the sound held)."""
        if self._encoder is not None:
            encoder, self._encoder = self._encoder, None
            self._audio.write(encoder, until)
            encoder.close()
            if self.observer is not None:
                self.observer.finished(self.files[-1], self._counts)


def check_encryptable_recording(path: Path, encryption: EncryptionKey | None) -> None:
    """Refuse an encrypted recording in a container other than MP4 (Matroska has no CENC)."""
    if encryption is not None and FILE_FORMATS.get(path.suffix.lower()) != "mp4":
        valid = ", ".join(ext for ext, muxer in FILE_FORMATS.items() if muxer == "mp4")
        raise ConfigError(
            f"an encrypted recording (CENC) must be an MP4 file, not {path.name}; choose one of: {valid}"
        )


class PushSink:
    """Pushes H.264 to an RTMP (FLV) or RTSP (ANNOUNCE/RECORD) server; reopens it after a drop.

    Args:
        url: ``rtmp(s)://`` or ``rtsp(s)://`` target.
        encoder: H.264 settings.
        timeout: seconds to connect and to send.
        retry_delay: first wait before reconnecting (doubled up to 30 s).
    """

    def __init__(
        self, url: str, encoder: EncoderConfig | None = None, timeout: float = 10.0, retry_delay: float = 1.0
    ) -> None:
        self.url = url
        self.name = redact(url)
        self.rtsp = url.lower().startswith("rtsp")
        self.encoder_config = encoder or EncoderConfig()
        self.timeout = timeout
        self.retry_delay = retry_delay
        self.lost = 0
        self.connections = 0
        self.last_error: str | None = None
        self._encoder: _Encoder | None = None
        self._retry_at = 0.0
        self._delay = retry_delay
        self._start: float | None = None
        self._audio = AudioFeed()

    def write_audio(self, block: AudioBlock) -> None:
        """Take sound; it is sent once the pictures reach its time."""
        self._audio.add(block, self._encoder)

    def write(self, frame: OutputFrame) -> None:
        """Send one frame; while the target is down, the frame is counted in ``lost``."""
        import av

        if self._encoder is None:
            if time.monotonic() < self._retry_at:
                self.lost += 1
                return
            try:
                self._connect(frame)
            except (av.error.FFmpegError, OSError) as exc:
                self._failed(f"cannot connect: {redact_in(str(exc), self.url)}")
                self.lost += 1
                return
        assert self._encoder is not None and self._start is not None
        try:
            self._encoder.encode(frame.image, round((frame.pts - self._start) * 1000))
            self._audio.write(self._encoder, frame.pts)
        except (av.error.FFmpegError, OSError) as exc:
            self._encoder.abort()
            self._encoder = None
            self._failed(f"the connection dropped: {redact_in(str(exc), self.url)}")
            self.lost += 1

    def _connect(self, frame: OutputFrame) -> None:
        muxer, options = (
            ("rtsp", {"rtsp_transport": "tcp"})
            if self.rtsp
            else ("flv", {"flvflags": "no_duration_filesize"})
        )
        self._encoder = _Encoder(
            self.url,
            muxer,
            self.encoder_config,
            _even_size(frame.image),
            options,
            self.timeout,
            self._audio.channels,
        )
        self._start = frame.pts
        self._audio.start(frame.pts)
        self._delay = self.retry_delay
        self.connections += 1
        self.last_error = None

    def _failed(self, why: str) -> None:
        self.last_error = why
        log.warning("%s: %s; retrying in %.1f s", self.name, why, self._delay)
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, 30.0)

    def close(self) -> None:
        """Finish the stream (sends the end of stream to the server)."""
        import av

        if self._encoder is not None:
            encoder, self._encoder = self._encoder, None
            try:
                self._audio.write(encoder, None)
                encoder.close()
            except (av.error.FFmpegError, OSError) as exc:
                log.warning("%s: closing: %s", self.name, redact_in(str(exc), self.url))
