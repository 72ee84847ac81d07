"""API errors: every failure is JSON ``{"error": {"code", "message"}}`` with a stable code."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceveil.errors import (
    ConfigError,
    CorruptInputError,
    EmptyInputError,
    FaceveilError,
    InputError,
    TooLargeInputError,
    UnsupportedInputError,
)

log = logging.getLogger("faceveil.service")

#: HTTP status of each library error family.
_STATUS_OF: tuple[tuple[type[FaceveilError], int], ...] = (
    (TooLargeInputError, 413),
    (UnsupportedInputError, 415),
    (EmptyInputError, 422),
    (CorruptInputError, 422),
    (InputError, 422),
    (ConfigError, 422),
)
_CODE_OF_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media",
    422: "invalid_request",
    429: "too_many_requests",
}


class ApiError(Exception):
    """An error answered to the client as JSON with ``status``, a stable ``code`` and a message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_body(code: str, message: str) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {"error": {"code": code, "message": message}}


def _json(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def status_of(exc: FaceveilError) -> int:
    """HTTP status for a library error (500 for failures that are not the client's)."""
    for kind, status in _STATUS_OF:
        if isinstance(exc, kind):
            return status
    return 500


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _json(exc.status, exc.code, exc.message, exc.headers)


async def _faceveil_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FaceveilError)
    status = status_of(exc)
    if status == 500:
        log.error("request failed: %s", exc)
    return _json(status, exc.code, str(exc))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for item in exc.errors()[:5]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where or 'request'}: {item.get('msg', 'invalid')}")
    return _json(422, "invalid_request", "; ".join(parts) or "the request is not valid")


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_OF_STATUS.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    return _json(exc.status_code, code, message, getattr(exc, "headers", None))


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return _json(500, "internal_error", "the server hit an unexpected error; see its log")


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(FaceveilError, _faceveil_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
