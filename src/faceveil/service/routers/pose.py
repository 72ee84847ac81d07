"""``/api/v1/pose``: everyone's body landmarks in a photo, as JSON or drawn over the picture."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from faceveil.service.deps import Caller, Client, State
from faceveil.service.photos import PhotoResult
from faceveil.service.routers.common import audit_upload, errors, raw_body, read_photo
from faceveil.service.schemas import PoseOptions, PoseOut

router = APIRouter(prefix="/api/v1/pose", tags=["pose"])

_ERRORS = errors(401, 403, 413, 415, 422, 429)


async def _run(request: Request, options: PoseOptions, state: State, caller: str, client: str) -> PhotoResult:
    data = await read_photo(request, state)
    result = await run_in_threadpool(state.photos.pose, data, options)
    people = len(result.pose["people"]) if result.pose is not None else 0
    audit_upload(state, "pose", caller, client, data, people=people)
    return result


@router.post(
    "",
    response_model=PoseOut,
    summary="Body landmarks of everyone in a photo",
    responses=_ERRORS,
    openapi_extra=raw_body("the photo file"),
)
async def pose_json(
    request: Request, options: Annotated[PoseOptions, Query()], state: State, caller: Caller, client: Client
) -> PoseOut:
    """33 BlazePose landmarks per person (pixels, normalised, visibility), as ``faceveil pose --json``."""
    result = await _run(request, options, state, caller.name, client)
    return PoseOut.model_validate(result.pose)


@router.post(
    "/image",
    summary="Skeletons drawn over a photo",
    response_class=Response,
    responses={
        200: {
            "content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}},
            "description": "Faces hidden (unless mode is none), skeletons drawn; `X-Faceveil-People`.",
        },
        **_ERRORS,
    },
    openapi_extra=raw_body("the photo file"),
)
async def pose_image(
    request: Request, options: Annotated[PoseOptions, Query()], state: State, caller: Caller, client: Client
) -> Response:
    """The photo with every face hidden and every skeleton drawn (red joints, white bones)."""
    result = await _run(request, options, state, caller.name, client)
    people = len(result.pose["people"]) if result.pose is not None else 0
    return Response(
        result.data,
        media_type=result.media_type,
        headers={
            "X-Faceveil-People": str(people),
            "X-Faceveil-Faces": str(len(result.detections)),
            "Content-Disposition": f'inline; filename="pose{result.extension}"',
            "Cache-Control": "no-store",
        },
    )
