"""The stream table in SQLite (the jobs database file): definitions that survive restarts.

A row keeps the source as given, credentials included (the server needs them to connect);
everything that leaves the server shows it through :func:`faceveil.stream.safety.redact`.
``desired`` is what the operator last asked for (``running`` or ``stopped``): after a restart,
the streams that were running start again.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceveil.service.database import SqliteStore

RUNNING, STOPPED = "running", "stopped"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    options TEXT NOT NULL,
    desired TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class StreamRecord:
    """One stream definition.

    Attributes:
        id: random hex id (also the name of its recordings folder).
        owner: who created it.
        name: display name.
        source: ``/dev/videoN`` or the URL (with any credentials: never shown as it is).
        options: the other settings (see :class:`faceveil.service.streams.schemas.StreamIn`).
        desired: ``running`` or ``stopped``.
    """

    id: str
    owner: str
    name: str
    source: str
    options: dict[str, Any] = field(default_factory=dict)
    desired: str = STOPPED
    created_at: float = 0.0
    updated_at: float = 0.0


def new_stream_id() -> str:
    """A random stream id (never derived from client input)."""
    return uuid.uuid4().hex


class StreamStore(SqliteStore):
    """Thread-safe access to the stream table (its own connection to the jobs database)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def get(self, stream_id: str) -> StreamRecord | None:
        """The stream, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM streams WHERE id = ?", (stream_id,)).fetchone()
        return None if row is None else _record(row)

    def streams(self) -> list[StreamRecord]:
        """Every stream, oldest first (the order of the page's grid)."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM streams ORDER BY created_at").fetchall()
        return [_record(r) for r in rows]

    def add(self, record: StreamRecord) -> StreamRecord:
        """Insert a new stream (its times are set here)."""
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO streams (id, owner, name, source, options, desired, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.owner,
                    record.name,
                    record.source,
                    json.dumps(record.options),
                    record.desired,
                    now,
                    now,
                ),
            )
        return StreamRecord(**{**record.__dict__, "created_at": now, "updated_at": now})

    def update(self, stream_id: str, name: str, source: str, options: dict[str, Any]) -> bool:
        """Replace a stream's settings; False if there is no such stream."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE streams SET name = ?, source = ?, options = ?, updated_at = ? WHERE id = ?",
                (name, source, json.dumps(options), time.time(), stream_id),
            )
        return cursor.rowcount == 1

    def set_desired(self, stream_id: str, desired: str) -> None:
        """Remember whether the stream should run (also across restarts)."""
        with self._lock:
            self._db.execute("UPDATE streams SET desired = ? WHERE id = ?", (desired, stream_id))

    def delete(self, stream_id: str) -> bool:
        """Remove the row; False if there was none."""
        with self._lock:
            return self._db.execute("DELETE FROM streams WHERE id = ?", (stream_id,)).rowcount == 1


def _record(row: sqlite3.Row) -> StreamRecord:
    data = dict(row)
    data["options"] = json.loads(data["options"])
    return StreamRecord(**data)
