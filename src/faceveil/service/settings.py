"""Service configuration: one typed object, read from ``FACEVEIL_*`` environment variables."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from faceveil.detection.base import PRESETS

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
GiB = 1024**3
MiB = 1024**2


def default_data_dir() -> Path:
    """Where jobs, results and the audit log live unless ``FACEVEIL_DATA_DIR`` says otherwise."""
    base = os.environ.get("XDG_DATA_HOME")
    return (Path(base) if base else Path.home() / ".local" / "share") / "faceveil"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (IPv4 127/8 and IPv6 ::1)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServiceSettings(BaseSettings):
    """Everything ``faceveil serve`` can be told; every field has an environment variable
    ``FACEVEIL_<FIELD>`` (for example ``FACEVEIL_ACCESS_SECRET``, ``FACEVEIL_RESULT_TTL_S``)."""

    model_config = SettingsConfigDict(env_prefix="FACEVEIL_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Field(default_factory=default_data_dir)
    access_secret: SecretStr | None = None
    allowed_hosts: tuple[str, ...] | None = None

    workers: int = Field(1, ge=1, le=16, description="video jobs run at once")
    photo_workers: int = Field(2, ge=1, le=32, description="photos anonymized at once")
    default_preset: str = "balanced"
    live_sessions: int = Field(2, ge=1, le=16, description="live camera sessions at once")
    max_streams: int = Field(4, ge=1, le=32, description="server-side live streams running at once")
    stream_allowlist: tuple[str, ...] = Field(
        (),
        description="hosts, addresses or networks (JSON list) a stream URL may name although they are "
        'private or loopback, e.g. ["192.168.1.0/24", "cam.lan"]',
    )

    max_upload_bytes: int = Field(4 * GiB, ge=1)
    max_photo_bytes: int = Field(50 * MiB, ge=1)
    max_photo_pixels: int = Field(100_000_000, ge=1)
    max_video_seconds: float = Field(4 * 3600, gt=0)
    max_video_side: int = Field(4096, ge=64)
    disk_quota_bytes: int = Field(50 * GiB, ge=1, description="all uploads and results together")
    min_free_bytes: int = Field(1 * GiB, ge=0, description="uploads stop before the disk has less free")

    delete_originals: Literal["job_end", "expiry"] = "job_end"
    result_ttl_s: float = Field(24 * 3600, gt=0)
    sweep_interval_s: float = Field(60, gt=0)

    encryption_key_file: Path | None = Field(
        None, description="the key file (faceveil keygen) that encrypts video results asked for encrypted"
    )
    signing_key_file: Path | None = Field(
        None, description="the Ed25519 key (faceveil keygen --signing) that signs every job's manifest"
    )

    ray_address: str | None = Field(
        None, description="video jobs run on this Ray cluster ('auto' or HOST:PORT; needs faceveil[ray])"
    )
    ray_segment_seconds: float = Field(60, gt=0, description="segment length of video jobs on the cluster")
    ray_workers: int | None = Field(None, ge=1, description="actors per video job (default: one per CPU)")

    session_ttl_s: float = Field(12 * 3600, gt=0)
    login_max_failures: int = Field(5, ge=1)
    login_window_s: float = Field(300, gt=0)

    @field_validator("access_secret", "encryption_key_file", "signing_key_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @model_validator(mode="after")
    def _check(self) -> ServiceSettings:
        if self.default_preset not in PRESETS:
            raise ValueError(
                f"unknown default_preset {self.default_preset!r}; choose one of: {', '.join(PRESETS)}"
            )
        if not is_loopback(self.host) and self.access_secret is None:
            raise ValueError(
                f"refusing to listen on {self.host}, which other machines can reach, without an access "
                "secret: set FACEVEIL_ACCESS_SECRET, or start with --generate-secret to have one made "
                "and printed once"
            )
        if self.access_secret is not None and len(self.access_secret.get_secret_value()) < 12:
            raise ValueError("the access secret must be at least 12 characters long")
        return self

    @property
    def auth_required(self) -> bool:
        """True when requests must prove they know the access secret."""
        return self.access_secret is not None

    @property
    def trusted_hosts(self) -> list[str]:
        """Host headers accepted (loopback names only when bound to loopback: no DNS rebinding)."""
        if self.allowed_hosts is not None:
            return list(self.allowed_hosts)
        return list(LOOPBACK_NAMES) if is_loopback(self.host) else ["*"]

    @property
    def audit_path(self) -> Path:
        """The audit log (JSON lines)."""
        return self.data_dir / "audit.jsonl"
