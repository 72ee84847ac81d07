"""Request options and response bodies of the REST API (they make its OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from faceveil.config import AnonymizerConfig, DetectorConfig, MaskConfig
from faceveil.media.video_io import VideoOutputConfig
from faceveil.pipeline.video import DEFAULT_VIDEO_MAX_SIDE, VideoJobConfig

Target = Literal["face", "head", "person"]
Mode = Literal["blur", "pixelate", "solid", "none"]
Shape = Literal["ellipse", "box"]
Preset = Literal["fast", "balanced", "thorough"]


class MaskOptions(BaseModel):
    """How faces are hidden (query parameters)."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = Field("blur", description="blur, pixelate, solid fill, or none (detect only)")
    shape: Shape = Field("ellipse", description="shape of each hidden region")
    strength: float = Field(0.2, ge=0.01, le=1.0, description="blur strength, share of the face size")
    box: bool = Field(False, description="draw a green outline around each hidden face")

    target: Target = Field(
        "face", description="face; head (face, hair and ears, from body pose); person (whole silhouette)"
    )
    skeleton_only: bool = Field(False, description="replace people by their skeletons")

    def mask(self) -> MaskConfig:
        """The library's mask settings."""
        return MaskConfig(mode=self.mode, shape=self.shape, blur_strength=self.strength, outline=self.box)

    def anonymizer(self, preset: str, max_side: int | None = None) -> AnonymizerConfig:
        """The library's anonymizer settings with this detector preset."""
        return AnonymizerConfig(
            detector=DetectorConfig(name=preset, max_side=max_side),
            mask=self.mask(),
            target=self.target,
            skeleton_only=self.skeleton_only,
        )


class PhotoOptions(MaskOptions):
    """Options of the photo endpoints."""

    preset: Preset | None = Field(None, description="detector preset; the server's default when absent")
    format: Literal["same", "jpeg", "png", "webp"] = Field("same", description="output image format")


class VideoOptions(MaskOptions):
    """Options of a video job."""

    preset: Preset = Field("fast", description="detector preset (the video default, as on the command line)")
    audio: Literal["keep", "drop"] = Field("keep", description="carry the sound over, or drop it")
    format: Literal["mp4", "mkv", "webm", "mov"] = Field("mp4", description="output container")
    filename: str = Field("video", max_length=200, description="display name only; never used as a path")

    def job_config(self) -> VideoJobConfig:
        """The library's video job settings."""
        return VideoJobConfig(
            anonymizer=self.anonymizer(self.preset, DEFAULT_VIDEO_MAX_SIDE),
            output=VideoOutputConfig(audio=self.audio),
        )


class PoseOptions(PhotoOptions):
    """Options of the pose endpoints (faces are blurred in the drawn image unless mode is none)."""


class Landmark(BaseModel):
    """One of the 33 BlazePose landmarks: pixels, normalised (0-1), and visibility."""

    name: str
    x: float
    y: float
    z: float
    nx: float
    ny: float
    nz: float
    visibility: float


class Person(BaseModel):
    """One person found."""

    person: int
    track: int | None
    box: list[float] = Field(description="[x1, y1, x2, y2] around the landmarks, in pixels")
    score: float
    face_box: list[float] | None
    landmarks: list[Landmark]


class PoseOut(BaseModel):
    """Everyone's pose in a photo (schema version 1, as ``faceveil pose --json``)."""

    model_config = ConfigDict(populate_by_name=True)

    schema_version: int = Field(alias="schema")
    width: int
    height: int
    people: list[Person]


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str = Field(description="stable, machine-readable")
    message: str = Field(description="for people")


class ErrorOut(BaseModel):
    """Every error answer."""

    error: ErrorDetail


class Face(BaseModel):
    """One face found in a photo."""

    box: list[float] = Field(description="[x1, y1, x2, y2] in pixels")
    score: float
    landmarks: list[list[float]] | None = None


class DetectOut(BaseModel):
    """Faces found in a photo."""

    width: int
    height: int
    faces: list[Face]


class Progress(BaseModel):
    """Where a job stands."""

    frames_done: int
    frames_total: int | None
    fps: float | None
    eta_s: float | None
    faces: int = Field(description="face detections so far")
    tracks: int | None = Field(description="distinct faces followed, known when the job is done")


class JobOut(BaseModel):
    """A video job."""

    id: str
    status: Literal["queued", "running", "done", "failed", "cancelled", "expired"]
    input_name: str
    input_bytes: int
    options: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float | None
    attempts: int
    progress: Progress
    error: ErrorDetail | None
    result_url: str | None
    output_bytes: int | None
    retryable: bool


class JobList(BaseModel):
    """Jobs, newest first."""

    jobs: list[JobOut]


class Health(BaseModel):
    """The server is up."""

    status: Literal["ok"]
    version: str
    auth_required: bool
    workers: int
    queued: int
    running: int


class LoginIn(BaseModel):
    """The access secret."""

    model_config = ConfigDict(extra="forbid")

    secret: str = Field(min_length=1, max_length=512)


class SessionOut(BaseModel):
    """The browser session."""

    authenticated: bool
    auth_required: bool
    csrf_token: str | None
