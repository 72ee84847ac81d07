"""Review before release: a job's regions (read, edit), its original frames, approval.

Everything here shows or describes the unanonymized original, so every response is
``Cache-Control: no-store`` and every route needs the authenticated caller (where the server
requires login). Only jobs in the ``review`` status answer.
"""

from __future__ import annotations

import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from faceveil.errors import FaceveilError
from faceveil.review.document import RegionsDocument, RegionsError
from faceveil.review.loader import load_document, parse_document
from faceveil.service.deps import Caller, Client, State
from faceveil.service.errors import ApiError
from faceveil.service.jobs.store import REVIEW, JobRecord
from faceveil.service.routers.common import declared_length, errors, raw_body
from faceveil.service.routers.jobs import JobId, job_out
from faceveil.service.schemas import ApproveOut, FollowIn, FollowOut, RegionsDoc
from faceveil.service.uploads import read_limited

router = APIRouter(prefix="/api/v1/jobs", tags=["review"])
NO_STORE = {"Cache-Control": "no-store"}

FrameIndex = Annotated[int, Path(ge=0, le=10_000_000, description="frame number, from 0")]


def _in_review(state: State, job_id: str) -> JobRecord:
    job = state.store.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", "no such job (it may have been deleted)")
    if job.status != REVIEW:
        raise ApiError(409, "not_in_review", f"the job is {job.status}, not waiting for review")
    return job


def _document(state: State, job: JobRecord) -> RegionsDocument:
    try:
        return load_document(state.files.regions(job.id))
    except RegionsError as exc:
        raise ApiError(410, "expired", f"the job's regions are gone: {exc}") from None


def _out(document: RegionsDocument) -> RegionsDoc:
    lines = [json.loads(line) for line in document.lines()]
    return RegionsDoc(header=lines[0], frames=lines[1:])


def _json(model: Any) -> Response:
    return Response(model.model_dump_json(), media_type="application/json", headers=NO_STORE)


@router.get(
    "/{job_id}/regions",
    response_model=RegionsDoc,
    summary="The regions of a job in review",
    responses=errors(401, 404, 409, 410),
)
def get_regions(job_id: JobId, state: State, caller: Caller) -> Response:
    """Every frame's regions and the tracks (first/last frame, frame count, clearest frame, keep)."""
    return _json(_out(_document(state, _in_review(state, job_id))))


@router.put(
    "/{job_id}/regions",
    response_model=RegionsDoc,
    summary="Save edited regions",
    responses=errors(401, 403, 404, 409, 422),
)
def put_regions(job_id: JobId, body: RegionsDoc, state: State, caller: Caller) -> Response:
    """Replace the job's regions (kept tracks, hand-drawn boxes, removed boxes); validated whole,
    and refused (nothing changes) when malformed or written for another video."""
    job = _in_review(state, job_id)
    current = _document(state, job)
    lines = [json.dumps(body.header), *(json.dumps(frame) for frame in body.frames)]
    try:
        document = parse_document(lines, "regions")
    except RegionsError as exc:
        raise ApiError(422, exc.code, str(exc)) from None
    if document.source != current.source or document.kind != current.kind:
        raise ApiError(422, "invalid_regions", "these regions were written for another video")
    document.save(state.files.regions(job.id))
    return _json(_out(document))


@router.get(
    "/{job_id}/frames/{index}",
    summary="One frame of the original (unanonymized), as JPEG",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **errors(401, 404, 409)},
)
async def get_frame(job_id: JobId, index: FrameIndex, state: State, caller: Caller) -> Response:
    """For the review player: frame ``index`` of the uploaded original, never cached."""
    job = _in_review(state, job_id)
    from faceveil.pipeline.regions import read_frames

    frames = await run_in_threadpool(read_frames, state.files.input(job.id), [index])
    if index not in frames:
        raise ApiError(404, "not_found", f"the video has no frame {index}")
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frames[index]).save(buffer, format="JPEG", quality=90)
    return Response(buffer.getvalue(), media_type="image/jpeg", headers=NO_STORE)


@router.post(
    "/{job_id}/follow",
    response_model=FollowOut,
    summary="Preview where a hand-drawn box is followed",
    responses=errors(401, 403, 404, 409, 422),
)
async def follow(job_id: JobId, body: FollowIn, state: State, caller: Caller) -> Response:
    """Follow a box drawn on one frame forwards and backwards (as the render will), so the
    reviewer sees where it is hidden. Changes nothing: add the box to the regions to keep it."""
    job = _in_review(state, job_id)
    x1, y1, x2, y2 = body.box
    if not (x1 < x2 and y1 < y2):
        raise ApiError(422, "invalid_request", "box must have x1 < x2 and y1 < y2")
    from faceveil.pipeline.regions import follow_seeds

    found = await run_in_threadpool(follow_seeds, state.files.input(job.id), [(body.frame, (x1, y1, x2, y2))])
    boxes = {index: [round(v, 1) for v in found_boxes[0]] for index, found_boxes in found.items()}
    return _json(FollowOut(boxes=boxes))


@router.post(
    "/{job_id}/keep-face",
    response_model=RegionsDoc,
    summary="Keep the tracks of the person in a reference photo",
    responses=errors(401, 403, 404, 409, 413, 422),
    openapi_extra=raw_body("a photo of the person to keep visible (one face)"),
)
async def keep_face(job_id: JobId, request: Request, state: State, caller: Caller) -> Response:
    """Mark kept every track whose face matches the photo's (decided per track; when in doubt,
    hidden). The photo is only described in memory, never stored."""
    job = _in_review(state, job_id)
    data = await read_limited(
        request.stream(),
        declared_length(request.headers.get("content-length")),
        state.settings.max_photo_bytes,
    )
    document = _document(state, job)
    try:
        kept = await run_in_threadpool(_match, state, job, document, data)
    except FaceveilError as exc:
        raise ApiError(422, exc.code, str(exc)) from None
    document = document.with_keep(document.keep | kept)
    document.save(state.files.regions(job.id))
    return _json(_out(document))


def _match(state: State, job: JobRecord, document: RegionsDocument, data: bytes) -> set[int]:
    import tempfile

    from faceveil.anonymize.anonymizer import Anonymizer
    from faceveil.pipeline.regions import matching_tracks
    from faceveil.review.identity import KeepFaces
    from faceveil.service.schemas import VideoOptions

    options = VideoOptions.model_validate(job.options)
    factory = getattr(state.pool.runner, "detector_factory", None)
    detector = factory(options.preset) if factory is not None else None
    anonymizer = Anonymizer(options.job_config().anonymizer, detector=detector)
    with tempfile.NamedTemporaryFile(dir=state.files.folder(job.id), suffix=".ref") as reference:
        reference.write(data)
        reference.flush()
        keep = KeepFaces.from_photos([reference.name], anonymizer.detect)
    return matching_tracks(state.files.input(job.id), document, keep)


@router.post(
    "/{job_id}/approve",
    response_model=ApproveOut,
    summary="Approve the regions and render",
    responses=errors(401, 403, 404, 409, 410),
)
def approve(job_id: JobId, state: State, caller: Caller, client: Client) -> Response:
    """Render the job from its reviewed regions; the original is deleted once the result is
    written. The audit log records who approved, the kept tracks and the boxes added and removed."""
    job = _in_review(state, job_id)
    document = _document(state, job)
    edits = document.edits()
    if not state.store.approve(job.id, {**job.options, "approved": True}):
        raise ApiError(409, "not_in_review", "the job is no longer waiting for review")
    state.pool.wake()
    kept = sorted(document.keep)
    state.audit.record(
        "job_approve",
        client=client,
        principal=caller.name,
        job_id=job.id,
        kept_tracks=",".join(str(t) for t in kept),
        boxes_added=edits["added"],
        boxes_removed=edits["removed"],
    )
    updated = state.store.get(job.id)
    assert updated is not None
    return _json(
        ApproveOut(job=job_out(updated), kept_tracks=kept, added=edits["added"], removed=edits["removed"])
    )
