"""``/api/v1/photos``: anonymize a photo synchronously, or only detect its faces."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from faceveil.service.deps import Caller, Client, State
from faceveil.service.errors import ApiError
from faceveil.service.routers.common import audit_upload, errors, raw_body, read_photo
from faceveil.service.schemas import DetectOut, Face, PhotoOptions, PhotoReviewOptions, Preset

router = APIRouter(prefix="/api/v1/photos", tags=["photos"])

_ERRORS = errors(401, 403, 413, 415, 422, 429)


@router.post(
    "/anonymize",
    summary="Anonymize a photo",
    response_class=Response,
    responses={
        200: {
            "content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}},
            "description": "The photo with every face hidden; `X-Faceveil-Faces` says how many.",
        },
        **_ERRORS,
    },
    openapi_extra=raw_body("the photo file (JPEG, PNG, WebP, HEIC, TIFF, BMP, GIF)"),
)
async def anonymize(
    request: Request, options: Annotated[PhotoOptions, Query()], state: State, caller: Caller, client: Client
) -> Response:
    """Find every face in the uploaded photo and hide it. Metadata (EXIF, GPS, thumbnails) is not kept."""
    data = await read_photo(request, state)
    result = await run_in_threadpool(state.photos.anonymize, data, options)
    audit_upload(state, "photo_anonymize", caller.name, client, data, faces=len(result.detections))
    return Response(
        result.data,
        media_type=result.media_type,
        headers={
            "X-Faceveil-Faces": str(len(result.detections)),
            "Content-Disposition": f'inline; filename="anonymized{result.extension}"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/detect",
    summary="Find the faces in a photo",
    response_model=DetectOut,
    responses=_ERRORS,
    openapi_extra=raw_body("the photo file"),
)
async def detect(
    request: Request,
    state: State,
    caller: Caller,
    client: Client,
    preset: Annotated[Preset | None, Query(description="detector preset")] = None,
) -> DetectOut:
    """Only find the faces: boxes in pixels, scores and five landmarks each."""
    data = await read_photo(request, state)
    photo, found = await run_in_threadpool(state.photos.detect, data, preset)
    audit_upload(state, "photo_detect", caller.name, client, data, faces=len(found))
    faces = [Face.model_validate(record) for record in found.to_records()]
    return DetectOut(width=photo.width, height=photo.height, faces=faces)


@router.post(
    "/review",
    summary="Render a reviewed photo",
    response_class=Response,
    responses={
        200: {
            "content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}},
            "description": "The photo hidden as reviewed; `X-Faceveil-Kept` says how many faces were kept.",
        },
        **_ERRORS,
    },
    openapi_extra=raw_body("the photo file"),
)
async def review(
    request: Request,
    options: Annotated[PhotoReviewOptions, Query()],
    state: State,
    caller: Caller,
    client: Client,
) -> Response:
    """Review before release for a photo: faces are found again and hidden, except those the
    reviewer kept (``keep``); boxes drawn by hand (``add``) are hidden too. The audit log records
    who approved, how many faces were kept and how many boxes were added."""
    try:
        keep, add = options.boxes("keep"), options.boxes("add")
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    data = await read_photo(request, state)
    result, kept = await run_in_threadpool(state.photos.review, data, options, keep, add)
    audit_upload(
        state,
        "photo_approve",
        caller.name,
        client,
        data,
        faces=len(result.detections),
        kept_faces=kept,
        boxes_added=len(add),
    )
    return Response(
        result.data,
        media_type=result.media_type,
        headers={
            "X-Faceveil-Faces": str(len(result.detections)),
            "X-Faceveil-Kept": str(kept),
            "Content-Disposition": f'inline; filename="anonymized{result.extension}"',
            "Cache-Control": "no-store",
        },
    )
