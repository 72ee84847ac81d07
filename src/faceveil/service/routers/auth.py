"""``/api/v1/auth``: browser login with the access secret, logout, and the current session."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from faceveil.service.deps import Client, State, current_principal
from faceveil.service.errors import ApiError
from faceveil.service.routers.common import errors
from faceveil.service.schemas import LoginIn, SessionOut
from faceveil.service.security import SESSION_COOKIE, check_origin

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login", response_model=SessionOut, summary="Log in", responses=errors(401, 403, 409, 422, 429))
def login(body: LoginIn, request: Request, response: Response, state: State, client: Client) -> SessionOut:
    """Trade the access secret for an HttpOnly, SameSite=Strict session cookie and a CSRF token."""
    headers = request.headers
    check_origin(request.method, headers.get("host"), headers.get("origin"), headers.get("sec-fetch-site"))
    if not state.guard.required:
        raise ApiError(409, "no_login_needed", "this server needs no login (it only listens on this machine)")
    try:
        token, principal = state.guard.login(body.secret, client)
    except ApiError as exc:
        state.audit.record("login_failed", client=client, principal="anonymous", reason=exc.code)
        raise
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(state.settings.session_ttl_s),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    state.audit.record("login", client=client, principal=principal.name, session=principal.session_id)
    return SessionOut(authenticated=True, auth_required=True, csrf_token=principal.csrf)


@router.post("/logout", status_code=204, summary="Log out", responses=errors(403))
def logout(request: Request, state: State, client: Client) -> Response:
    """End the browser session."""
    headers = request.headers
    check_origin(request.method, headers.get("host"), headers.get("origin"), headers.get("sec-fetch-site"))
    state.guard.logout(request.cookies.get(SESSION_COOKIE))
    state.audit.record("logout", client=client, principal="session")
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/session", response_model=SessionOut, summary="The current session")
def session(request: Request, state: State) -> SessionOut:
    """Whether this browser is logged in (and its CSRF token)."""
    principal = current_principal(request, state)
    return SessionOut(
        authenticated=principal is not None,
        auth_required=state.guard.required,
        csrf_token=principal.csrf if principal is not None else None,
    )
