"""`faceveil serve`: the web app and REST API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from faceveil.cli import exit_codes
from faceveil.errors import ConfigError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Add the ``serve`` subcommand."""
    parser = commands.add_parser(
        "serve",
        help="start the web app and REST API",
        description="Serve the web app (photos, videos, jobs, live camera) and the REST API "
        "(docs at /api/docs). Listens on 127.0.0.1:8000 by default, where no login is needed; on "
        "any other address an access secret is required (FACEVEIL_ACCESS_SECRET or "
        "--generate-secret). Every setting also has a FACEVEIL_* environment variable.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: 8000)")
    parser.add_argument("--data-dir", type=Path, help="where jobs, results and the audit log are kept")
    parser.add_argument("--workers", type=int, help="video jobs run at once (default: 1)")
    parser.add_argument(
        "--generate-secret",
        action="store_true",
        help="make a random access secret and print it once (when FACEVEIL_ACCESS_SECRET is not set)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Build the settings, then serve until interrupted."""
    import uvicorn
    from pydantic import ValidationError

    from faceveil.service.app import create_app
    from faceveil.service.security import generate_secret
    from faceveil.service.settings import ServiceSettings

    overrides: dict[str, Any] = {
        key: value
        for key, value in (
            ("host", args.host),
            ("port", args.port),
            ("data_dir", args.data_dir),
            ("workers", args.workers),
        )
        if value is not None
    }
    secret = None
    if args.generate_secret and not _env_secret():
        secret = generate_secret()
        overrides["access_secret"] = secret
    try:
        settings = ServiceSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(
            "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        ) from None
    if secret is not None:
        print(f"faceveil: access secret (shown only now; keep it): {secret}", file=sys.stderr, flush=True)
    app = create_app(settings)
    print(
        f"faceveil: serving on http://{_url_host(settings.host)}:{settings.port}/ (Ctrl-C stops)",
        file=sys.stderr,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
    return exit_codes.OK


def _env_secret() -> bool:
    import os

    return bool(os.environ.get("FACEVEIL_ACCESS_SECRET"))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
