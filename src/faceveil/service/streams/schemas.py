"""Request and response bodies of ``/api/v1/streams`` (they make its part of the OpenAPI schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from faceveil.service.schemas import Preset

#: Output sizes a stream may be scaled down to (``source``: as it comes).
SIZES = ("source", "640x360", "854x480", "1280x720", "1920x1080")
Size = Literal["source", "640x360", "854x480", "1280x720", "1920x1080"]
#: What a stream does with its sound (as ``faceveil stream --voice``).
Voice = Literal["keep", "disguise", "drop"]
StreamState = Literal["stopped", "starting", "connecting", "running", "retrying", "failed"]


class StreamIn(BaseModel):
    """A stream's definition, as the page or an API client sends it (JSON body)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=80, description="display name")
    source: str = Field(
        ...,
        min_length=1,
        max_length=2000,
        description="a camera the server lists (/dev/video0), or an rtsp://, rtmp://, http(s):// URL; "
        "credentials in it are stored but never shown (when editing, send the shown, redacted URL "
        "back to keep them)",
    )
    size: Size = Field("source", description="scale the pictures down to fit this size before hiding")
    record: bool = Field(True, description="record rolling MP4 segments (H.264 + AAC) on the server")
    segment_s: int = Field(300, ge=10, le=3600, description="length of each recorded segment")
    push: str | None = Field(
        None, max_length=2000, description="push the anonymized stream to this rtmp:// or rtsp:// URL"
    )
    preview: bool = Field(True, description="show the anonymized preview in the page")
    preset: Preset = Field("fast", description="detector preset (live default: fast)")
    mode: Literal["blur", "pixelate", "solid"] = Field("blur", description="how faces are hidden")
    shape: Literal["ellipse", "box"] = Field("ellipse", description="shape of each hidden region")
    color: str = Field("000000", pattern="^[0-9a-fA-F]{6}$", description="fill colour of solid mode")
    audio: Literal["keep", "drop"] = Field(
        "keep", description="carry the source's sound (AAC), or drop it (the older spelling; see voice)"
    )
    voice: Voice | None = Field(
        None,
        description="the sound: keep it as it is, disguise the voices in it (a random pitch, formant "
        "and timbre transform drawn each time the stream starts, in sync, 40 ms of added latency; "
        "words, accent and speaking style remain), or drop it (no audio track); absent: as audio says",
    )

    @model_validator(mode="after")
    def _one_sound_choice(self) -> StreamIn:
        if self.audio == "drop" and self.voice not in (None, "drop"):
            raise ValueError(f"audio=drop and voice={self.voice} contradict each other; give one of them")
        return self

    @property
    def sound(self) -> Voice:
        """What happens to the sound: keep, disguise or drop."""
        return self.voice or self.audio


class StreamFigures(BaseModel):
    """What a running stream is doing now."""

    fps: float | None = None
    faces: int = 0
    latency_p95_ms: float | None = None
    dropped: int = 0
    reconnects: int = 0
    frames_out: int = 0
    audio_s: float = 0.0


class StreamOut(BaseModel):
    """A stream: its definition (credentials redacted), state and figures."""

    id: str
    name: str
    source: str = Field(..., description="the source, any password replaced by ***")
    source_kind: Literal["camera", "url"]
    options: dict[str, object]
    desired: Literal["running", "stopped"]
    state: StreamState
    error: str | None = None
    retry_in_s: float | None = None
    figures: StreamFigures
    preview_url: str | None = None
    recordings_url: str
    created_at: float
    updated_at: float


class ServerLoad(BaseModel):
    """The server's load while streams run."""

    cpus: int
    cpu_percent: float = Field(..., description="this server process, share of all CPUs")
    load_1m: float | None = None
    gpu_percent: float | None = Field(None, description="GPU load where one is used (None: none)")
    running: int
    max_streams: int


class StreamList(BaseModel):
    """Every stream and the server's load."""

    streams: list[StreamOut]
    server: ServerLoad


class Camera(BaseModel):
    """A V4L2 camera this server can open."""

    device: str
    name: str


class CameraList(BaseModel):
    """The server's cameras."""

    cameras: list[Camera]


class RecordingOut(BaseModel):
    """One recorded segment."""

    name: str
    bytes: int
    modified_at: float
    expires_at: float
    recording: bool = Field(..., description="still being written")
    url: str
    play_url: str


class RecordingList(BaseModel):
    """A stream's recorded segments, oldest first."""

    recordings: list[RecordingOut]
