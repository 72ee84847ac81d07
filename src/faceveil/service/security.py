"""Access control: the access secret, browser sessions, CSRF tokens and the login rate limit.

- Bound to loopback with no secret configured, every local request is allowed (principal
  ``local``); state-changing requests from another web origin are still refused.
- With a secret, API clients send it as ``Authorization: Bearer <secret>``; browsers log in once
  and get an HttpOnly, SameSite=Strict session cookie, and every state-changing request made
  with that cookie must carry the session's CSRF token in ``X-CSRF-Token``.
- Failed logins are counted per client; past the limit the client waits (HTTP 429).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

from faceveil.service.errors import ApiError

SESSION_COOKIE = "faceveil_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    """Who is making a request.

    Attributes:
        name: ``local`` (no secret configured), ``session`` (browser) or ``token`` (Bearer).
        csrf: the session's CSRF token (browser sessions only).
        session_id: a short, non-secret identifier of the browser session, for the audit log.
    """

    name: str
    csrf: str | None = None
    session_id: str | None = None


@dataclass
class _Session:
    csrf: str
    expires: float
    ident: str


def generate_secret() -> str:
    """A new random access secret (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


class LoginLimiter:
    """Counts failed logins per client in a sliding window."""

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Raise 429 when ``client`` has failed too often lately."""
        now = time.monotonic()
        with self._lock:
            recent = self._recent(client, now)
            if len(recent) >= self.max_failures:
                wait = max(1, int(recent[0] + self.window_s - now) + 1)
                raise ApiError(
                    429,
                    "too_many_attempts",
                    f"too many failed logins; try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )

    def failed(self, client: str) -> None:
        """Record one failed login."""
        with self._lock:
            self._recent(client, time.monotonic()).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        """Forget a client's failures after it logged in."""
        with self._lock:
            self._failures.pop(client, None)

    def _recent(self, client: str, now: float) -> deque[float]:
        recent = self._failures.setdefault(client, deque())
        while recent and recent[0] < now - self.window_s:
            recent.popleft()
        return recent


class AccessGuard:
    """Checks credentials and keeps browser sessions (in memory: a restart logs browsers out)."""

    def __init__(self, secret: str | None, session_ttl_s: float, limiter: LoginLimiter) -> None:
        self._secret = _digest(secret) if secret is not None else None
        self.session_ttl_s = session_ttl_s
        self.limiter = limiter
        self._sessions: dict[bytes, _Session] = {}
        self._lock = threading.Lock()

    @property
    def required(self) -> bool:
        """True when a secret is configured."""
        return self._secret is not None

    def secret_matches(self, candidate: str) -> bool:
        """Constant-time comparison with the configured secret."""
        return self._secret is not None and hmac.compare_digest(self._secret, _digest(candidate))

    def login(self, candidate: str, client: str) -> tuple[str, Principal]:
        """Start a session for the right secret; returns (cookie value, principal)."""
        self.limiter.check(client)
        if not self.secret_matches(candidate):
            self.limiter.failed(client)
            raise ApiError(401, "bad_secret", "that access secret is not right")
        self.limiter.succeeded(client)
        token = secrets.token_urlsafe(32)
        session = _Session(secrets.token_urlsafe(24), time.time() + self.session_ttl_s, token[:8])
        with self._lock:
            self._drop_expired()
            self._sessions[_digest(token)] = session
        return token, Principal("session", session.csrf, session.ident)

    def logout(self, token: str | None) -> None:
        """End the session of this cookie value, if any."""
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)

    def identify(self, cookie: str | None, authorization: str | None) -> Principal | None:
        """The principal these credentials prove, or None."""
        if self._secret is None:
            return Principal("local")
        if authorization and authorization.lower().startswith("bearer "):
            if self.secret_matches(authorization[7:].strip()):
                return Principal("token")
            return None
        if cookie:
            with self._lock:
                session = self._sessions.get(_digest(cookie))
                if session is not None and session.expires > time.time():
                    return Principal("session", session.csrf, session.ident)
        return None

    def _drop_expired(self) -> None:
        now = time.time()
        for key in [k for k, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[key]


def check_csrf(principal: Principal, method: str, header: str | None) -> None:
    """A browser session's state-changing request must carry its CSRF token."""
    if method in SAFE_METHODS or principal.name != "session":
        return
    if not header or principal.csrf is None or not hmac.compare_digest(header, principal.csrf):
        raise ApiError(403, "csrf_failed", "missing or wrong CSRF token; reload the page and try again")


def check_origin(method: str, host: str | None, origin: str | None, fetch_site: str | None) -> None:
    """Refuse state-changing requests that a page of another web origin made the browser send.

    Command-line clients send neither ``Origin`` nor ``Sec-Fetch-Site`` and pass.
    """
    if method in SAFE_METHODS:
        return
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise ApiError(403, "cross_origin", "requests from other web sites are refused")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc != (host or "")):
        raise ApiError(403, "cross_origin", "requests from other web sites are refused")
