"""Dependencies of the routes (``Annotated`` aliases): the service state and who is asking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from faceveil.service.errors import ApiError
from faceveil.service.security import CSRF_HEADER, SESSION_COOKIE, Principal, check_csrf, check_origin
from faceveil.service.state import ServiceState


def get_state(request: Request) -> ServiceState:
    """The running service's state."""
    state: ServiceState = request.app.state.faceveil
    return state


State = Annotated[ServiceState, Depends(get_state)]


def client_of(request: Request) -> str:
    """The client's address, for the audit log and the login rate limit."""
    return request.client.host if request.client is not None else "unknown"


def current_principal(request: Request, state: State) -> Principal | None:
    """Who is asking, or None when the request carries no valid credentials."""
    return state.guard.identify(request.cookies.get(SESSION_COOKIE), request.headers.get("authorization"))


def require_principal(request: Request, state: State) -> Principal:
    """The authenticated caller; state-changing requests also pass the origin and CSRF checks."""
    headers = request.headers
    check_origin(request.method, headers.get("host"), headers.get("origin"), headers.get("sec-fetch-site"))
    principal = current_principal(request, state)
    if principal is None:
        raise ApiError(
            401,
            "unauthorized",
            "log in first, or send the access secret as a Bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    check_csrf(principal, request.method, headers.get(CSRF_HEADER))
    return principal


Caller = Annotated[Principal, Depends(require_principal)]
Client = Annotated[str, Depends(client_of)]
