"""``/api/v1/jobs``: video jobs: create (streamed upload), status, progress, result, cancel, retry, delete."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response, StreamingResponse

from faceveil.errors import FaceveilError, TooLargeInputError
from faceveil.media.video_io import VideoInfo, check_encryptable, open_input, probe
from faceveil.service.deps import Caller, Client, State
from faceveil.service.errors import ApiError
from faceveil.service.jobs.store import CANCELLED, DONE, FINAL, QUEUED, RUNNING, JobRecord, new_job_id
from faceveil.service.routers.common import declared_length, errors, raw_body
from faceveil.service.schemas import ErrorDetail, JobList, JobOut, Progress, VideoOptions
from faceveil.service.settings import ServiceSettings
from faceveil.service.state import ServiceState

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

JobId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="the job's id")]
_EVENT_PERIOD_S = 0.5


def job_out(job: JobRecord) -> JobOut:
    """The API view of a job."""
    eta = None
    encrypted = bool(job.options.get("encrypt", False))
    if job.status == RUNNING and job.fps and job.frames_total:
        eta = round(max(job.frames_total - job.frames_done, 0) / job.fps, 1)
    error = ErrorDetail(code=job.error_code, message=job.error_message or "") if job.error_code else None
    return JobOut(
        id=job.id,
        status=job.status,
        input_name=job.input_name,
        input_bytes=job.input_bytes,
        options=job.options,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        expires_at=job.expires_at,
        attempts=job.attempts,
        progress=Progress(
            frames_done=job.frames_done,
            frames_total=job.frames_total,
            fps=job.fps,
            eta_s=eta,
            faces=job.faces,
            tracks=job.tracks,
        ),
        error=error,
        result_url=f"/api/v1/jobs/{job.id}/result" if job.status == DONE else None,
        output_bytes=job.output_bytes,
        retryable=job.status in (CANCELLED, "failed") and job.has_input,
        encrypted=encrypted,
        playback=PLAYBACK if encrypted else None,
        manifest_url=f"/api/v1/jobs/{job.id}/manifest" if job.status == DONE else None,
        review_url=f"/jobs/{job.id}/review" if job.status == "review" else None,
    )


#: How to play a result encrypted with the server's key (shown on the download page).
PLAYBACK = (
    "This video is encrypted (MP4 Common Encryption, AES-128 CTR) with this server's key; browsers "
    "cannot play it. Whoever holds the server's key file plays or decrypts it with FFmpeg: "
    "ffplay -decryption_key KEYHEX FILE, or ffmpeg -decryption_key KEYHEX -i FILE -c copy plain.mp4, "
    'where KEYHEX is the "key" in the key file.'
)


def _check_options(options: VideoOptions, state: ServiceState) -> None:
    """Refuse options the job could not run with, before anything is uploaded."""
    if options.encrypt:
        if state.keys.encryption is None:
            raise ApiError(
                422,
                "encryption_unavailable",
                "this server has no encryption key; its operator sets FACEVEIL_ENCRYPTION_KEY_FILE",
            )
        check_encryptable(f"result.{options.format}")
    options.job_config(state.keys.encryption)  # a bad watermark, for one, is refused here


def _get(state: State, job_id: str) -> JobRecord:
    job = state.store.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", "no such job (it may have been deleted)")
    return job


def _check_video(path: str, settings: ServiceSettings) -> VideoInfo:
    """Refuse what is not a video (by content), or is too long or too large."""
    container = open_input(path)
    try:
        info = probe(container)
    finally:
        container.close()
    if info.duration is not None and info.duration > settings.max_video_seconds:
        raise TooLargeInputError(
            f"the video lasts {info.duration / 60:.1f} min; this server takes at most "
            f"{settings.max_video_seconds / 60:.0f} min"
        )
    if max(info.width, info.height) > settings.max_video_side:
        raise TooLargeInputError(
            f"the video is {info.width}x{info.height}; this server takes at most "
            f"{settings.max_video_side} px on the longer side"
        )
    return info


def _display_name(name: str) -> str:
    """A harmless display name (the file name is only ever shown, never used as a path)."""
    cleaned = re.sub(r"[^\w .()\-]+", "_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    return cleaned[:120] or "video"


@router.post(
    "",
    status_code=201,
    response_model=JobOut,
    summary="Create a video job",
    responses=errors(401, 403, 413, 415, 422, 507),
    openapi_extra=raw_body("the video file, streamed (MP4, MOV, MKV, WebM, AVI...)"),
)
async def create_job(
    request: Request, options: Annotated[VideoOptions, Query()], state: State, caller: Caller, client: Client
) -> JobOut:
    """Upload a video; it is checked (by content, duration, size), queued and anonymized in the background."""
    _check_options(options, state)
    job_id = new_job_id()
    settings = state.settings
    upload = await state.files.receive(
        job_id,
        request.stream(),
        declared_length(request.headers.get("content-length")),
        settings.max_upload_bytes,
    )
    try:
        await run_in_threadpool(_check_video, str(upload.path), settings)
    except FaceveilError:
        state.files.remove(job_id)
        raise
    options = options.model_copy(update={"filename": _display_name(options.filename)})
    record = JobRecord(
        id=job_id,
        owner=caller.name,
        status=QUEUED,
        options=options.model_dump(),
        input_name=options.filename,
        input_bytes=upload.size,
        input_sha256=upload.sha256,
        output_ext=f".{options.format}",
        created_at=time.time(),
    )
    state.store.add(record)
    state.pool.wake()
    state.audit.record(
        "job_create",
        client=client,
        principal=caller.name,
        job_id=job_id,
        input_bytes=upload.size,
        input_sha256=upload.sha256,
    )
    return job_out(record)


@router.get("", response_model=JobList, summary="List jobs", responses=errors(401))
def list_jobs(state: State, caller: Caller) -> JobList:
    """Every job, newest first."""
    return JobList(jobs=[job_out(job) for job in state.store.jobs()])


@router.get("/{job_id}", response_model=JobOut, summary="Job status", responses=errors(401, 404))
def get_job(job_id: JobId, state: State, caller: Caller) -> JobOut:
    """Status, progress and, when done, where to download the result."""
    return job_out(_get(state, job_id))


@router.get(
    "/{job_id}/events",
    summary="Job progress as server-sent events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(401, 404)},
)
async def job_events(job_id: JobId, request: Request, state: State, caller: Caller) -> StreamingResponse:
    """One ``data:`` line (the job as JSON) on every change, until the job ends."""
    _get(state, job_id)

    async def events() -> AsyncIterator[str]:
        last = None
        while not await request.is_disconnected():
            job = state.store.get(job_id)
            if job is None:
                yield "event: deleted\ndata: {}\n\n"
                return
            text = job_out(job).model_dump_json()
            if text != last:
                last = text
                yield f"data: {text}\n\n"
            if job.status in FINAL or job.status == "review":  # review: nothing changes until approved
                return
            await asyncio.sleep(_EVENT_PERIOD_S)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/{job_id}/result",
    summary="Download the anonymized video",
    response_class=FileResponse,
    responses={
        200: {"content": {"video/mp4": {}, "video/webm": {}, "video/x-matroska": {}, "video/quicktime": {}}},
        **errors(401, 404, 409, 410),
    },
)
def job_result(
    job_id: JobId,
    state: State,
    caller: Caller,
    client: Client,
    inline: Annotated[bool, Query(description="for playing in the page rather than saving")] = False,
) -> FileResponse:
    """The result file (supports HTTP ranges, so a browser can play and seek it)."""
    job = _get(state, job_id)
    if job.status == "expired":
        raise ApiError(410, "expired", "the result was deleted when its retention time ended")
    if job.status != DONE:
        raise ApiError(409, "not_ready", f"the job is {job.status}; there is no result yet")
    path = state.files.output(job.id, job.output_ext)
    if not path.is_file():
        raise ApiError(410, "expired", "the result is no longer on the server")
    if not inline:
        state.audit.record("job_download", client=client, principal=caller.name, job_id=job.id)
    stem = job.input_name.rsplit(".", 1)[0] or "video"
    return FileResponse(
        path,
        media_type=_MEDIA_TYPES.get(job.output_ext, "application/octet-stream"),
        filename=f"{stem}.anonymized{job.output_ext}",
        content_disposition_type="inline" if inline else "attachment",
        headers={"Cache-Control": "no-store"},
    )


@router.get(
    "/{job_id}/manifest",
    summary="Download the result's manifest",
    response_class=FileResponse,
    responses={200: {"content": {"application/json": {}}}, **errors(401, 404, 409, 410)},
)
def job_manifest(job_id: JobId, state: State, caller: Caller, client: Client) -> FileResponse:
    """The manifest: faceveil version, model hashes, settings, input and output SHA-256, counts and
    time, signed with the server's key when it has one. Check it with ``faceveil verify``."""
    job = _get(state, job_id)
    if job.status == "expired":
        raise ApiError(410, "expired", "the manifest was deleted with the result")
    if job.status != DONE:
        raise ApiError(409, "not_ready", f"the job is {job.status}; there is no manifest yet")
    path = state.files.manifest(job.id)
    if not path.is_file():
        raise ApiError(410, "expired", "the manifest is no longer on the server")
    state.audit.record("job_manifest", client=client, principal=caller.name, job_id=job.id)
    stem = job.input_name.rsplit(".", 1)[0] or "video"
    return FileResponse(
        path,
        media_type="application/json",
        filename=f"{stem}.anonymized{job.output_ext}.manifest.json",
        headers={"Cache-Control": "no-store"},
    )


_MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".mov": "video/quicktime",
}


@router.post(
    "/{job_id}/cancel", response_model=JobOut, summary="Cancel a job", responses=errors(401, 403, 404, 409)
)
def cancel_job(job_id: JobId, state: State, caller: Caller, client: Client) -> JobOut:
    """Stop a queued or running job; nothing is written."""
    job = _get(state, job_id)
    if job.status not in (QUEUED, RUNNING):
        raise ApiError(409, "not_running", f"the job is already {job.status}")
    if not state.pool.cancel(job_id, wait_s=10.0):
        state.store.finish(job_id, CANCELLED, state.settings.result_ttl_s)
        if state.settings.delete_originals == "job_end":
            state.files.remove_input(job_id)
            state.store.set_fields(job_id, has_input=0)
    state.audit.record("job_cancel", client=client, principal=caller.name, job_id=job_id)
    return job_out(_get(state, job_id))


@router.post(
    "/{job_id}/retry", response_model=JobOut, summary="Run a job again", responses=errors(401, 403, 404, 409)
)
def retry_job(job_id: JobId, state: State, caller: Caller, client: Client) -> JobOut:
    """Queue a failed or cancelled job again (only while its original is still kept)."""
    job = _get(state, job_id)
    if not state.store.requeue(job_id):
        reason = (
            "its uploaded original was deleted when it ended (upload the video again)"
            if not job.has_input
            else f"it is {job.status}"
        )
        raise ApiError(409, "not_retryable", f"this job cannot be retried: {reason}")
    state.pool.wake()
    state.audit.record("job_retry", client=client, principal=caller.name, job_id=job_id)
    return job_out(_get(state, job_id))


@router.delete(
    "/{job_id}", status_code=204, summary="Delete a job and its files", responses=errors(401, 403, 404)
)
def delete_job(job_id: JobId, state: State, caller: Caller, client: Client) -> Response:
    """Cancel it if it runs, then delete its upload, result and record."""
    _get(state, job_id)
    state.pool.cancel(job_id, wait_s=10.0)
    state.store.delete(job_id)
    state.files.remove(job_id)
    state.audit.record("job_delete", client=client, principal=caller.name, job_id=job_id)
    return Response(status_code=204)
