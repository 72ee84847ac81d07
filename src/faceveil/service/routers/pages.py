"""The web pages: photos, videos, jobs, live camera, streams, login (server-rendered, plain JavaScript)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from faceveil.service.deps import State, current_principal

router = APIRouter(include_in_schema=False)

PAGES = {
    "photos": "Photos",
    "videos": "Videos",
    "jobs": "Jobs",
    "live": "Live camera",
    "streams": "Streams",
    "pose": "Pose",
}


def _render(request: Request, state: State, page: str) -> Response:
    principal = current_principal(request, state)
    if principal is None:
        return RedirectResponse(f"/login?next=/{page}", status_code=303)
    settings = state.settings
    context = {
        "page": page,
        "pages": PAGES,
        "title": PAGES[page],
        "csrf_token": principal.csrf or "",
        "auth_required": state.guard.required,
        "max_upload_bytes": settings.max_upload_bytes,
        "max_photo_bytes": settings.max_photo_bytes,
        "default_preset": settings.default_preset,
        "encryption_available": state.keys.encryption is not None,
    }
    response: Response = request.app.state.templates.TemplateResponse(request, f"{page}.html", context)
    return response


@router.get("/")
def home() -> Response:
    """The photos page is the front page."""
    return RedirectResponse("/photos", status_code=303)


@router.get("/photos")
def photos(request: Request, state: State) -> Response:
    """Drop photos, see before/after, download one or all."""
    return _render(request, state, "photos")


@router.get("/videos")
def videos(request: Request, state: State) -> Response:
    """Upload a video, watch its job, preview and download the result."""
    return _render(request, state, "videos")


@router.get("/jobs")
def jobs(request: Request, state: State) -> Response:
    """Every job, with retry, cancel and delete."""
    return _render(request, state, "jobs")


@router.get("/live")
def live(request: Request, state: State) -> Response:
    """The browser's camera, anonymized live."""
    return _render(request, state, "live")


@router.get("/streams")
def streams(request: Request, state: State) -> Response:
    """The server's cameras and network streams: add, start, watch, record."""
    return _render(request, state, "streams")


@router.get("/pose")
def pose(request: Request, state: State) -> Response:
    """Body landmarks drawn as skeletons, faces hidden."""
    return _render(request, state, "pose")


@router.get("/jobs/{job_id}/review")
def review(request: Request, state: State, job_id: str) -> Response:
    """Review a job before release: its tracks, its frames with the hidden regions, approval.

    Shows the unanonymized original: never cached, and only to a logged-in user.
    """
    principal = current_principal(request, state)
    if principal is None or not job_id.isalnum() or len(job_id) != 32:
        return RedirectResponse(f"/login?next=/jobs/{job_id}/review" if job_id.isalnum() else "/login", 303)
    context = {
        "page": "jobs",
        "pages": PAGES,
        "title": "Review",
        "csrf_token": principal.csrf or "",
        "auth_required": state.guard.required,
        "job_id": job_id,
    }
    response: Response = request.app.state.templates.TemplateResponse(request, "review.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login")
def login(request: Request, state: State, next: str = "/photos") -> Response:
    """Ask for the access secret (only when the server requires one)."""
    target = next if next.startswith("/") and not next.startswith("//") else "/photos"
    if not state.guard.required or current_principal(request, state) is not None:
        return RedirectResponse(target, status_code=303)
    context = {
        "page": "login",
        "pages": PAGES,
        "title": "Log in",
        "next": target,
        "csrf_token": "",
        "auth_required": True,
    }
    response: Response = request.app.state.templates.TemplateResponse(request, "login.html", context)
    return response
