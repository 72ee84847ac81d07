"""A per-user disk cache for models faceveil derives at load time (the int8 CenterFace).

Building the int8 graph takes seconds; a command that runs once per photo would pay that at every
start. The built bytes are kept in the user's cache folder (``$XDG_CACHE_HOME/faceveil/models``,
else ``~/.cache/faceveil/models``), under a name made from a hash of everything they derive from,
so a new faceveil, onnxruntime, weights file or calibration table never reads an old entry.

- Each entry carries the SHA-256 of its content and is checked on every load; a damaged or
  truncated entry is rebuilt and replaced.
- Entries are written to a private temporary file in the same folder and renamed into place, so
  a reader never sees half an entry and two processes building at once both end with a whole one.
- The folder is created private (0700) and used only when it belongs to the user and no one else
  can write to it; otherwise nothing is cached and the model is built in memory, as without cache.
- ``FACEVEIL_MODEL_CACHE=off`` turns the cache off; a path there moves it.

Only derived model bytes are kept: nothing a user gives faceveil is ever written here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

_MAGIC = b"faceveil-model-cache 1\n"
_DIGEST = 32


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is turned off."""
    setting = os.environ.get("FACEVEIL_MODEL_CACHE", "").strip()
    if setting.lower() in ("off", "0", "no", "false"):
        return None
    if setting:
        return Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "faceveil" / "models"


def cache_key(parts: Iterable[str | bytes]) -> str:
    """A hex digest of ``parts`` (each length-prefixed, so no two lists give the same key)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def cached(name: str, key: str, build: Callable[[], bytes], check: Callable[[bytes], bool]) -> bytes:
    """The bytes ``build()`` makes, read from the cache when an intact entry for ``key`` is there.

    ``check`` vouches for bytes read back (beyond their checksum); bytes it refuses are rebuilt.
    """
    folder = _private_folder()
    path = folder / f"{name}-{key[:32]}.bin" if folder is not None else None
    if path is not None:
        data = _read(path)
        if data is not None and check(data):
            return data
    data = build()
    if path is not None:
        _write(path, data)
    return data


def _private_folder() -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return None  # another user's folder: never read what someone else could have written
    return folder


def _read(path: Path) -> bytes | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    head = len(_MAGIC) + _DIGEST
    if len(raw) <= head or not raw.startswith(_MAGIC):
        return None
    digest, data = raw[len(_MAGIC) : head], raw[head:]
    return data if hashlib.sha256(data).digest() == digest else None


def _write(path: Path, data: bytes) -> None:
    """Write an entry atomically; a failure only means no cache (the model is already built)."""
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".building-", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(_MAGIC + hashlib.sha256(data).digest() + data)
            out.flush()
            os.fsync(out.fileno())
        Path(temporary).replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
    _sweep(path.parent)


def _sweep(folder: Path, older_than_s: float = 3600.0) -> None:
    """Remove temporary files a killed process left behind (an hour old: no build takes that)."""
    now = time.time()
    for leftover in folder.glob(".building-*.tmp"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > older_than_s:
                leftover.unlink()
