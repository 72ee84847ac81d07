"""Request options and response bodies of the REST API (they make its OpenAPI schema)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from faceveil.compliance.keys import EncryptionKey
from faceveil.config import AnonymizerConfig, DetectorConfig, MaskConfig, WatermarkConfig
from faceveil.media.video_io import VideoOutputConfig
from faceveil.pipeline.video import DEFAULT_VIDEO_MAX_SIDE, DEFAULT_VIDEO_PRESET, VideoJobConfig

Target = Literal["face", "head", "person"]
Mode = Literal["blur", "pixelate", "solid", "none"]
Shape = Literal["ellipse", "box"]
Preset = Literal["fast", "balanced", "thorough", "video"]
WatermarkPosition = Literal["bottom-right", "bottom-left", "top-right", "top-left", "center"]


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

    watermark: str | None = Field(
        None, max_length=200, description="a visible label drawn after hiding, e.g. 'anonymized 2026-12-01'"
    )
    watermark_position: WatermarkPosition = Field("bottom-right", description="where the label goes")
    watermark_size: float = Field(0.04, ge=0.01, le=0.5, description="text height, share of the height")
    watermark_opacity: float = Field(0.7, ge=0.05, le=1.0, description="how opaque the label is")

    @field_validator("watermark", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def watermark_config(self) -> WatermarkConfig | None:
        """The library's watermark settings (None without a text)."""
        if self.watermark is None:
            return None
        return WatermarkConfig(
            self.watermark, self.watermark_position, self.watermark_size, self.watermark_opacity
        )

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
            watermark=self.watermark_config(),
        )


class PhotoOptions(MaskOptions):
    """Options of the photo endpoints."""

    preset: Preset | None = Field(None, description="detector preset; the server's default when absent")
    format: Literal["same", "jpeg", "png", "webp"] = Field("same", description="output image format")


class PhotoReviewOptions(PhotoOptions):
    """A reviewed photo: the faces found again are hidden except those the reviewer kept, plus the
    boxes drawn by hand. Boxes are JSON lists of ``[x1, y1, x2, y2]`` in the photo's pixels."""

    keep: str = Field(
        "[]",
        max_length=20_000,
        description="faces to leave visible (a found face overlapping one by IoU >= 0.5)",
    )
    add: str = Field("[]", max_length=20_000, description="boxes drawn by hand on missed faces (hidden)")

    def boxes(self, name: str) -> list[tuple[float, float, float, float]]:
        """The ``keep`` or ``add`` boxes, validated."""
        try:
            value = json.loads(getattr(self, name))
        except json.JSONDecodeError:
            raise ValueError(f"{name} must be a JSON list of [x1, y1, x2, y2] boxes") from None
        if not isinstance(value, list) or len(value) > 500:
            raise ValueError(f"{name} must be a JSON list of at most 500 boxes")
        out = []
        for box in value:
            if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box)):
                raise ValueError(f"each {name} box must be four numbers [x1, y1, x2, y2]")
            x1, y1, x2, y2 = (float(v) for v in box)
            if not (x1 < x2 and y1 < y2):
                raise ValueError(f"a {name} box must have x1 < x2 and y1 < y2")
            out.append((x1, y1, x2, y2))
        return out


class VideoOptions(MaskOptions):
    """Options of a video job."""

    preset: Preset = Field(
        DEFAULT_VIDEO_PRESET, description="detector preset (the video default, as on the command line)"
    )
    audio: Literal["keep", "drop"] = Field("keep", description="carry the sound over, or drop it (see voice)")
    voice: Literal["keep", "disguise", "drop"] | None = Field(
        None,
        description="the sound track: keep it as it is, disguise the voices in it (a random pitch, "
        "formant and timbre transform drawn for this job; words, accent and speaking style remain), "
        "or drop it; absent: as audio says",
    )
    format: Literal["mp4", "mkv", "webm", "mov"] = Field("mp4", description="output container")
    filename: str = Field("video", max_length=200, description="display name only; never used as a path")
    encrypt: bool = Field(
        False, description="encrypt the result (CENC) with the server's key; MP4 and MOV only"
    )
    review: bool = Field(
        False,
        description="review before release: stop after detection (status review) until the regions "
        "are approved (GET/PUT /regions, POST /approve)",
    )
    approved: bool = Field(False, description="set by the server when a reviewed job is approved")

    @model_validator(mode="after")
    def _one_sound_choice(self) -> VideoOptions:
        if self.audio == "drop" and self.voice not in (None, "drop"):
            raise ValueError(f"audio=drop and voice={self.voice} contradict each other; give one of them")
        return self

    @property
    def sound(self) -> str:
        """What happens to the sound track: keep, disguise or drop."""
        return self.voice or self.audio

    def job_config(self, encryption: EncryptionKey | None = None) -> VideoJobConfig:
        """The library's video job settings (``encryption``: the server's key, when ``encrypt``).
        A disguised sound track gets a fresh random transform in every job (no seed is kept)."""
        return VideoJobConfig(
            anonymizer=self.anonymizer(self.preset, DEFAULT_VIDEO_MAX_SIDE),
            output=VideoOutputConfig(audio=self.sound, encryption=encryption if self.encrypt else None),
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
    status: Literal["queued", "running", "done", "failed", "cancelled", "expired", "review"]
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
    encrypted: bool = Field(description="the result is encrypted (CENC) with the server's key")
    playback: str | None = Field(description="how to play an encrypted result")
    manifest_url: str | None = Field(description="the job's manifest (hashes, settings, counts), when done")
    review_url: str | None = Field(None, description="the review page, while the job waits for approval")


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


class RegionsDoc(BaseModel):
    """A job's regions document (see the README's "Regions document"): the header line, then one
    object per frame. Edit ``header.tracks[id].keep``, add ``source: manual`` boxes, set
    ``removed`` on boxes, and PUT it back."""

    header: dict[str, Any]
    frames: list[dict[str, Any]]


class ApproveOut(BaseModel):
    """What an approval changed, as the audit log records it."""

    job: JobOut
    kept_tracks: list[int]
    added: int
    removed: int


class FollowIn(BaseModel):
    """A box drawn by hand on one frame."""

    frame: int = Field(ge=0, description="the frame it was drawn on")
    box: list[float] = Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] in pixels")


class FollowOut(BaseModel):
    """Where the box is followed: frame number -> padded box (what the render will hide)."""

    boxes: dict[int, list[float]]
