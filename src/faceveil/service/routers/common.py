"""Pieces shared by the routers: documented error answers and raw-body uploads."""

from __future__ import annotations

from typing import Any

from faceveil.service.schemas import ErrorOut


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
