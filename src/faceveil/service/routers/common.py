"""Pieces shared by the routers: documented error answers and raw-body uploads."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request

from faceveil.service.schemas import ErrorOut
from faceveil.service.state import ServiceState
from faceveil.service.uploads import read_limited


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses (all share one JSON shape)."""
    return {status: {"model": ErrorOut} for status in statuses}


def raw_body(description: str) -> dict[str, Any]:
    """OpenAPI for an endpoint whose request body is the file itself (streamed, not multipart)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    }


def declared_length(value: str | None) -> int | None:
    """The Content-Length header as a number (None when absent or not a number)."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


async def read_photo(request: Request, state: ServiceState) -> bytes:
    """The request body (a photo), refused past the photo size limit."""
    declared = declared_length(request.headers.get("content-length"))
    return await read_limited(request.stream(), declared, state.settings.max_photo_bytes)


def audit_upload(
    state: ServiceState, action: str, principal: str, client: str, data: bytes, **facts: Any
) -> None:
    """Record an action on an uploaded file: its size and SHA-256, never its content."""
    sha = hashlib.sha256(data).hexdigest()
    state.audit.record(
        action, client=client, principal=principal, input_bytes=len(data), input_sha256=sha, **facts
    )
