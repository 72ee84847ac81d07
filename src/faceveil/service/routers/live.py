"""``/api/v1/live``: the browser's camera anonymized live, over a WebSocket.

The page sends each camera frame as a JPEG (binary message) and waits for the answer before it
sends the next one, so frames never queue up: the answer is the anonymized JPEG (binary message)
followed by its figures as JSON (text message: ``faces``, ``fps``, ``latency_ms``, ``detected``).
Only anonymized pixels ever leave the server. With ``watermark``, the label is drawn on every
returned frame, on the server, after its faces are hidden (as on photos and videos). Recording
happens in the browser, from the anonymized frames it gets back.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from faceveil.config import AnonymizerConfig, DetectorConfig, ImageIOConfig, MaskConfig, WatermarkConfig
from faceveil.errors import ConfigError, FaceveilError
from faceveil.media.image_io import encode_image, read_image
from faceveil.service.schemas import WatermarkPosition
from faceveil.service.security import SESSION_COOKIE
from faceveil.service.state import ServiceState
from faceveil.stream.engine import DEFAULT_LIVE_MAX_SIDE, LiveConfig, LiveSession

router = APIRouter()

#: Largest camera frame accepted (a 4K JPEG is well under this).
MAX_FRAME_BYTES = 8 * 1024 * 1024
_FRAME_IO = ImageIOConfig(max_pixels=3840 * 2160, jpeg_quality=80)
_POLICY_VIOLATION = 1008
_TRY_AGAIN_LATER = 1013


def _allowed(websocket: WebSocket, state: ServiceState) -> bool:
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host")
    if origin is not None and origin.split("://", 1)[-1] != host:
        return False  # another web site's page may not open this socket (cross-site WebSocket hijacking)
    principal = state.guard.identify(
        websocket.cookies.get(SESSION_COOKIE), websocket.headers.get("authorization")
    )
    return principal is not None


@router.websocket("/api/v1/live")
async def live(
    websocket: WebSocket,
    preset: Literal["fast", "balanced", "thorough"] = "fast",
    mode: Literal["blur", "pixelate", "solid"] = "blur",
    shape: Literal["ellipse", "box"] = "ellipse",
    box: bool = False,
    watermark: str | None = None,
    watermark_position: WatermarkPosition = "bottom-right",
    watermark_size: float = 0.04,
    watermark_opacity: float = 0.7,
) -> None:
    """Anonymize JPEG frames from the browser's camera, one at a time (watermarked with
    ``watermark``, a printable ASCII label, like the photo and video endpoints)."""
    state: ServiceState = websocket.app.state.faceveil
    if not _allowed(websocket, state):
        await websocket.close(code=_POLICY_VIOLATION, reason="not logged in, or another web site")
        return
    try:
        mark = None
        if watermark is not None and watermark.strip():
            mark = WatermarkConfig(watermark, watermark_position, watermark_size, watermark_opacity)
    except ConfigError as exc:
        await websocket.close(code=_POLICY_VIOLATION, reason=_short(str(exc)))
        return
    slots: asyncio.Semaphore = websocket.app.state.live_slots
    if slots.locked():
        await websocket.close(code=_TRY_AGAIN_LATER, reason="too many live sessions; try again later")
        return
    async with slots:
        await websocket.accept()
        client = websocket.client.host if websocket.client is not None else "unknown"
        state.audit.record(
            "live_start", client=client, principal="browser", preset=preset, watermark=mark is not None
        )
        config = LiveConfig(
            anonymizer=AnonymizerConfig(
                detector=DetectorConfig(name=preset, max_side=DEFAULT_LIVE_MAX_SIDE),
                mask=MaskConfig(mode=mode, shape=shape, outline=box),
                watermark=mark,
            )
        )
        session = await run_in_threadpool(LiveSession, config)
        try:
            await _serve(websocket, session)
        except WebSocketDisconnect:
            pass
        finally:
            state.audit.record("live_end", client=client, principal="browser", frames=session.frames)


async def _serve(websocket: WebSocket, session: LiveSession) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if not data or len(data) > MAX_FRAME_BYTES:
            await websocket.send_text(json.dumps({"error": "send each frame as one JPEG of at most 8 MiB"}))
            continue
        captured = time.monotonic()
        try:
            jpeg, figures = await run_in_threadpool(_process, session, data, captured)
        except FaceveilError as exc:
            await websocket.send_text(json.dumps({"error": str(exc)}))
            continue
        await websocket.send_bytes(jpeg)
        await websocket.send_text(json.dumps(figures))


def _short(reason: str) -> str:
    """``reason`` cut to what a WebSocket close frame carries (123 bytes of UTF-8)."""
    return reason.encode("utf-8")[:120].decode("utf-8", errors="ignore")


def _process(session: LiveSession, data: bytes, captured: float) -> tuple[bytes, dict[str, object]]:
    photo = read_image(data, _FRAME_IO)
    frame = session.process(photo.rgb, captured)
    jpeg = encode_image(frame.image, None, False, "JPEG", _FRAME_IO)
    return jpeg, {
        "faces": frame.faces,
        "fps": round(frame.fps, 1),
        "latency_ms": round(frame.latency_ms, 1),
        "detected": frame.detected,
    }
