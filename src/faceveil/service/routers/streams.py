"""``/api/v1/streams``: the server's live streams: add, edit, start, stop, delete, watch, recordings.

A source is a camera the server lists (``GET /api/v1/streams/cameras``) or an rtsp/rtmp/http(s)
URL checked by ``check_url`` (private and loopback addresses only when
``FACEVEIL_STREAM_ALLOWLIST`` names them). Credentials in a URL are stored but never returned:
every answer, the audit log and the server's log show it redacted (``rtsp://user:***@cam/``).
Only anonymized frames are ever served (the preview is the newest frame the sinks got).
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from faceveil.errors import ConfigError
from faceveil.service.deps import Caller, Client, State
from faceveil.service.errors import ApiError
from faceveil.service.routers.common import errors
from faceveil.service.state import ServiceState
from faceveil.service.streams.manager import StreamManager, check_push, check_source
from faceveil.service.streams.recordings import camera_name, list_cameras
from faceveil.service.streams.schemas import (
    Camera,
    CameraList,
    RecordingList,
    RecordingOut,
    ServerLoad,
    StreamFigures,
    StreamIn,
    StreamList,
    StreamOut,
)
from faceveil.service.streams.store import RUNNING, STOPPED, StreamRecord, new_stream_id
from faceveil.stream.safety import public_url, redact

router = APIRouter(prefix="/api/v1/streams", tags=["streams"])

StreamId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="the stream's id")]
_PLACEHOLDER = "***"


def _manager(state: ServiceState) -> StreamManager:
    if state.streams is None:
        raise ApiError(503, "unavailable", "live streams are not available on this server")
    return state.streams


def _get(state: ServiceState, stream_id: str) -> StreamRecord:
    record = _manager(state).store.get(stream_id)
    if record is None:
        raise ApiError(404, "not_found", "no such stream (it may have been deleted)")
    return record


def stream_out(manager: StreamManager, record: StreamRecord) -> StreamOut:
    """The API view of a stream: credentials redacted, state and figures."""
    live = manager.live.get(record.id)
    state = "stopped" if live is None else live.state()
    options = dict(record.options)
    if options.get("push"):
        options["push"] = shown_push(str(options["push"]))
    running = state not in ("stopped", "failed")
    preview = running and bool(options.get("preview", True))
    return StreamOut(
        id=record.id,
        name=record.name,
        source=redact(record.source),
        source_kind="url" if "://" in record.source else "camera",
        options=options,
        desired=RUNNING if record.desired == RUNNING else STOPPED,
        state=state,
        error=None if live is None else live.message(),
        retry_in_s=None if live is None or live.worker is None else _retry_in(live.worker.reader),
        figures=StreamFigures(**manager.figures(record.id)),
        preview_url=f"/api/v1/streams/{record.id}/preview.jpg" if preview else None,
        recordings_url=f"/api/v1/streams/{record.id}/recordings",
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def shown_push(url: str) -> str:
    """A push target as shown: no password, and for RTMP no stream key (``rtmp://host/app/***``)."""
    return public_url(url)


def _retry_in(reader: object) -> float | None:
    value = getattr(reader, "retry_in", None)
    return None if value is None else round(float(value), 1)


def _checked(body: StreamIn, state: ServiceState, keep: StreamRecord | None) -> tuple[str, dict[str, object]]:
    """(source, options) of a request, checked; a redacted URL sent back keeps the stored one."""
    source = body.source.strip()
    options = body.model_dump(exclude={"name", "source"})
    if keep is not None:
        if source == redact(keep.source):
            source = keep.source
        stored_push = keep.options.get("push")
        if stored_push and body.push is not None and body.push.strip() == shown_push(str(stored_push)):
            options["push"] = stored_push
    if _PLACEHOLDER in source and "@" in source:
        raise ApiError(422, "invalid_request", "give the source's password again (it is shown as ***)")
    if _PLACEHOLDER in str(options.get("push") or ""):
        raise ApiError(422, "invalid_request", "give the push URL's key or password again (shown as ***)")
    manager = _manager(state)
    check_source(source, manager.settings, list_cameras())
    if options.get("push"):
        options["push"] = check_push(str(options["push"]), manager.settings).target
    else:
        options["push"] = None
    options["voice"] = body.sound  # stored as the one choice it makes: keep, disguise or drop
    options["audio"] = "drop" if body.sound == "drop" else "keep"
    if not (body.record or options["push"] or body.preview):
        raise ConfigError("a stream needs at least one of: record, push, preview")
    return source, options


@router.get("", response_model=StreamList, summary="List streams", responses=errors(401))
def list_streams(state: State, caller: Caller) -> StreamList:
    """Every stream with its state and figures, and the server's load."""
    manager = _manager(state)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return StreamList(
        streams=[stream_out(manager, r) for r in manager.store.streams()],
        server=ServerLoad(
            cpus=os.cpu_count() or 1,
            cpu_percent=manager.cpu_percent,
            load_1m=None if load is None else round(load, 2),
            gpu_percent=manager.gpu_percent,
            running=manager.running_count(),
            max_streams=manager.settings.max_streams,
        ),
    )


@router.get("/cameras", response_model=CameraList, summary="The server's cameras", responses=errors(401))
def cameras(state: State, caller: Caller) -> CameraList:
    """The V4L2 cameras this server can open."""
    return CameraList(cameras=[Camera(device=d, name=camera_name(d)) for d in list_cameras()])


@router.post(
    "", status_code=201, response_model=StreamOut, summary="Add a stream", responses=errors(401, 403, 422)
)
def create_stream(
    body: StreamIn,
    state: State,
    caller: Caller,
    client: Client,
    start: Annotated[bool, Query(description="start it at once")] = False,
) -> StreamOut:
    """Define a stream (its source is checked now); with ``start``, run it."""
    source, options = _checked(body, state, None)
    manager = _manager(state)
    record = manager.store.add(
        StreamRecord(new_stream_id(), caller.name, body.name.strip(), source, options, STOPPED)
    )
    _audit(state, "stream_create", caller.name, client, record)
    if start:
        _start(state, record, caller.name, client)
    return stream_out(manager, _get(state, record.id))


@router.get("/{stream_id}", response_model=StreamOut, summary="A stream", responses=errors(401, 404))
def get_stream(stream_id: StreamId, state: State, caller: Caller) -> StreamOut:
    """Its definition (credentials redacted), state and figures."""
    return stream_out(_manager(state), _get(state, stream_id))


@router.put(
    "/{stream_id}", response_model=StreamOut, summary="Edit a stream", responses=errors(401, 403, 404, 422)
)
def edit_stream(
    stream_id: StreamId, body: StreamIn, state: State, caller: Caller, client: Client
) -> StreamOut:
    """Replace its settings; a running stream restarts with them."""
    record = _get(state, stream_id)
    source, options = _checked(body, state, record)
    manager = _manager(state)
    manager.store.update(stream_id, body.name.strip(), source, options)
    updated = _get(state, stream_id)
    _audit(state, "stream_update", caller.name, client, updated)
    live = manager.live.get(stream_id)
    if live is not None and live.alive:
        manager.halt(stream_id)
        _start(state, updated, caller.name, client)
    return stream_out(manager, _get(state, stream_id))


@router.post(
    "/{stream_id}/start", response_model=StreamOut, summary="Start", responses=errors(401, 403, 404, 422)
)
def start_stream(stream_id: StreamId, state: State, caller: Caller, client: Client) -> StreamOut:
    """Run the stream (and again after a server restart, until it is stopped)."""
    record = _get(state, stream_id)
    _start(state, record, caller.name, client)
    return stream_out(_manager(state), _get(state, stream_id))


@router.post("/{stream_id}/stop", response_model=StreamOut, summary="Stop", responses=errors(401, 403, 404))
async def stop_stream(stream_id: StreamId, state: State, caller: Caller, client: Client) -> StreamOut:
    """Stop it; its recording is finished before the answer."""
    record = _get(state, stream_id)
    manager = _manager(state)
    manager.store.set_desired(stream_id, STOPPED)
    await run_in_threadpool(manager.halt, stream_id)
    _audit(state, "stream_stop", caller.name, client, record)
    return stream_out(manager, _get(state, stream_id))


@router.delete(
    "/{stream_id}",
    status_code=204,
    summary="Delete a stream and its recordings",
    responses=errors(401, 403, 404),
)
async def delete_stream(stream_id: StreamId, state: State, caller: Caller, client: Client) -> Response:
    """Stop it, then delete its definition and recordings."""
    record = _get(state, stream_id)
    manager = _manager(state)
    await run_in_threadpool(manager.forget, stream_id)
    manager.store.delete(stream_id)
    manager.recordings.remove_stream(stream_id)
    _audit(state, "stream_delete", caller.name, client, record)
    return Response(status_code=204)


@router.get(
    "/{stream_id}/preview.jpg",
    summary="The newest anonymized frame",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}},
        204: {"description": "no frame now"},
        **errors(401, 404),
    },
)
def preview(stream_id: StreamId, state: State, caller: Caller) -> Response:
    """The newest anonymized frame as JPEG (poll it); 204 while the stream shows none."""
    _get(state, stream_id)
    live = _manager(state).live.get(stream_id)
    got = None if live is None or live.preview is None or not live.alive else live.preview.jpeg()
    if got is None:
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    return Response(got[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get(
    "/{stream_id}/recordings",
    response_model=RecordingList,
    summary="A stream's recordings",
    responses=errors(401, 404),
)
def recordings(stream_id: StreamId, state: State, caller: Caller) -> RecordingList:
    """Its recorded segments, oldest first, with when each is deleted."""
    _get(state, stream_id)
    manager = _manager(state)
    busy = {p.resolve() for p in manager.busy_files()}
    ttl = manager.settings.result_ttl_s
    base = f"/api/v1/streams/{stream_id}/recordings"
    return RecordingList(
        recordings=[
            RecordingOut(
                name=r.path.name,
                bytes=r.size,
                modified_at=r.modified_at,
                expires_at=r.modified_at + ttl,
                recording=r.path.resolve() in busy,
                url=f"{base}/{r.path.name}",
                play_url=f"{base}/{r.path.name}?inline=true",
            )
            for r in manager.recordings.of(stream_id)
        ]
    )


RecordingName = Annotated[str, Path(pattern=r"^\d{8}-\d{9}-\d{5}\.mp4$", description="a recording")]


@router.get(
    "/{stream_id}/recordings/{name}",
    summary="Download or play a recording",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}, **errors(401, 404)},
)
def recording(
    stream_id: StreamId,
    name: RecordingName,
    state: State,
    caller: Caller,
    client: Client,
    inline: Annotated[bool, Query(description="for playing in the page rather than saving")] = False,
) -> FileResponse:
    """The MP4 segment (H.264 + AAC; HTTP ranges, so a browser can play and seek it)."""
    record = _get(state, stream_id)
    path = _manager(state).recordings.path(stream_id, name)
    if path is None:
        raise ApiError(404, "not_found", "no such recording (its retention time may have ended)")
    if not inline:
        state.audit.record(
            "recording_download", client=client, principal=caller.name, stream_id=record.id, name=name
        )
    return FileResponse(
        path,
        media_type="video/mp4",
        filename=f"{record.id[:8]}-{name}",
        content_disposition_type="inline" if inline else "attachment",
        headers={"Cache-Control": "no-store"},
    )


@router.delete(
    "/{stream_id}/recordings/{name}",
    status_code=204,
    summary="Delete a recording",
    responses=errors(401, 403, 404, 409),
)
def delete_recording(
    stream_id: StreamId, name: RecordingName, state: State, caller: Caller, client: Client
) -> Response:
    """Delete one finished segment."""
    _get(state, stream_id)
    manager = _manager(state)
    path = manager.recordings.path(stream_id, name)
    if path is None:
        raise ApiError(404, "not_found", "no such recording")
    if path.resolve() in {p.resolve() for p in manager.busy_files()}:
        raise ApiError(409, "recording", "this segment is being written; stop the stream first")
    path.unlink(missing_ok=True)
    state.audit.record(
        "recording_delete", client=client, principal=caller.name, stream_id=stream_id, name=name
    )
    return Response(status_code=204)


def _start(state: ServiceState, record: StreamRecord, principal: str, client: str) -> None:
    manager = _manager(state)
    manager.run(record)
    manager.store.set_desired(record.id, RUNNING)
    _audit(state, "stream_start", principal, client, record)


def _audit(state: ServiceState, action: str, principal: str, client: str, record: StreamRecord) -> None:
    """An audit entry naming the stream and its source without any password."""
    state.audit.record(
        action,
        client=client,
        principal=principal,
        stream_id=record.id,
        source=redact(record.source),
        record=bool(record.options.get("record")),
        push=bool(record.options.get("push")),
    )
