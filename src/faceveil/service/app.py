"""The app factory: ``create_app(settings)`` builds the FastAPI app with every router and the jobs engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceveil import __version__
from faceveil.detection.base import Detector
from faceveil.service.audit import AuditLog
from faceveil.service.errors import install_error_handlers
from faceveil.service.jobs.store import JobStore
from faceveil.service.jobs.sweeper import Sweeper
from faceveil.service.jobs.worker import ComplianceKeys, Runner, VideoRunner, WorkerPool, cluster_settings
from faceveil.service.photos import PhotoEngine
from faceveil.service.routers import auth, docs, health, jobs, live, pages, photos, pose, review, streams
from faceveil.service.security import AccessGuard, LoginLimiter
from faceveil.service.settings import ServiceSettings
from faceveil.service.state import ServiceState
from faceveil.service.streams.manager import StreamManager
from faceveil.service.streams.store import StreamStore

HERE = Path(__file__).parent

#: Nothing is loaded from anywhere but this server; no inline script; no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(self), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    """Adds the Content-Security-Policy and related headers to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build_state(
    settings: ServiceSettings,
    runner: Runner | None = None,
    detector_factory: Callable[[str], Detector] | None = None,
) -> ServiceState:
    """The service's parts, not started yet (the key files are read here: a bad one stops the start)."""
    from faceveil.service.uploads import JobFiles

    keys = ComplianceKeys.load(settings.encryption_key_file, settings.signing_key_file)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(settings.data_dir / "jobs.sqlite3")
    files = JobFiles(settings.data_dir, settings.disk_quota_bytes, settings.min_free_bytes)
    audit = AuditLog(settings.audit_path)
    secret = settings.access_secret.get_secret_value() if settings.access_secret is not None else None
    guard = AccessGuard(
        secret, settings.session_ttl_s, LoginLimiter(settings.login_max_failures, settings.login_window_s)
    )
    runner = runner or VideoRunner(keys, detector_factory, cluster_settings(settings))
    pool = WorkerPool(
        store, files, audit, settings.workers, settings.result_ttl_s, settings.delete_originals, runner
    )
    sweeper = Sweeper(store, files, audit, settings.sweep_interval_s)
    photos_engine = PhotoEngine(
        settings.default_preset, settings.max_photo_pixels, settings.photo_workers, detector_factory
    )
    stream_manager = StreamManager(
        StreamStore(settings.data_dir / "jobs.sqlite3"), settings, files, audit, detector_factory
    )
    return ServiceState(
        settings, store, files, audit, guard, pool, sweeper, photos_engine, keys, stream_manager
    )


def create_app(
    settings: ServiceSettings | None = None,
    *,
    runner: Runner | None = None,
    detector_factory: Callable[[str], Detector] | None = None,
) -> FastAPI:
    """Build the web app.

    Args:
        settings: configuration (default: from ``FACEVEIL_*`` environment variables).
        runner: what runs a video job (tests pass a fake); the real pipeline by default.
        detector_factory: builds the detector of a preset name for photos (and, with the
            default runner, videos); tests pass a fake.
    """
    settings = settings or ServiceSettings()
    state = build_state(settings, runner, detector_factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current: ServiceState = app.state.faceveil
        if current.stopped:  # the same app started again (test clients do): fresh parts
            current = app.state.faceveil = build_state(settings, runner, detector_factory)
        current.start()
        try:
            yield
        finally:
            current.stop()

    app = FastAPI(
        title="faceveil",
        version=__version__,
        summary="Offline privacy guard: hide every face in photos and videos. Nothing leaves this server.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.faceveil = state
    app.state.live_slots = asyncio.Semaphore(settings.live_sessions)
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    install_error_handlers(app)
    for module in (health, auth, photos, pose, jobs, review, live, streams, pages, docs):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount("/vendor/swagger", StaticFiles(directory=_swagger_dir()), name="swagger")
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts)
    app.add_middleware(SecurityHeaders)
    return app


def _swagger_dir() -> Path:
    """Swagger UI 5 (OpenAPI 3.1) as shipped, files only, inside the fastapi-offline wheel."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"
