"""``/api/v1/health``: is the server up (no login needed)."""

from __future__ import annotations

from fastapi import APIRouter

from faceveil import __version__
from faceveil.service.deps import State
from faceveil.service.jobs.store import QUEUED, RUNNING
from faceveil.service.schemas import Health

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/health", response_model=Health, summary="Server status")
def health(state: State) -> Health:
    """Always answers while the server runs; says whether a login is required."""
    return Health(
        status="ok",
        version=__version__,
        auth_required=state.guard.required,
        workers=state.settings.workers,
        queued=state.store.count(QUEUED),
        running=state.store.count(RUNNING),
    )
