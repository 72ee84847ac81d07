"""The job table in SQLite: the embedded default, nothing to install, survives restarts."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceveil.service.database import SqliteStore

QUEUED, RUNNING, DONE = "queued", "running", "done"
FAILED, CANCELLED, EXPIRED = "failed", "cancelled", "expired"
#: A "review before release" job stopped after detection, waiting for a person's approval.
REVIEW = "review"
STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED, EXPIRED, REVIEW)
FINAL = frozenset({DONE, FAILED, CANCELLED, EXPIRED})
#: A job that was running when the server stopped is run once more, then failed.
MAX_ATTEMPTS = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    options TEXT NOT NULL,
    input_name TEXT NOT NULL,
    input_bytes INTEGER NOT NULL,
    input_sha256 TEXT NOT NULL,
    output_ext TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    expires_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER,
    fps REAL,
    faces INTEGER NOT NULL DEFAULT 0,
    tracks INTEGER,
    output_bytes INTEGER,
    error_code TEXT,
    error_message TEXT,
    has_input INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created_at);
"""


@dataclass(frozen=True)
class JobRecord:
    """One row of the job table."""

    id: str
    owner: str
    status: str
    options: dict[str, Any]
    input_name: str
    input_bytes: int
    input_sha256: str
    output_ext: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    expires_at: float | None = None
    attempts: int = 0
    frames_done: int = 0
    frames_total: int | None = None
    fps: float | None = None
    faces: int = 0
    tracks: int | None = None
    output_bytes: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    has_input: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        """True once the job will not change any more (but for expiry)."""
        return self.status in FINAL


def new_job_id() -> str:
    """A random job id (also the name of the job's folder; never derived from client input)."""
    return uuid.uuid4().hex


class JobStore(SqliteStore):
    """Thread-safe access to the job table (one connection, one lock, WAL journal)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    # -- reading ------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        """The job, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _record(row) if row is not None else None

    def jobs(self, owner: str | None = None, limit: int = 200) -> list[JobRecord]:
        """Newest first; only ``owner``'s when given."""
        query, args = "SELECT * FROM jobs", [str(limit)]
        if owner is not None:
            query, args = query + " WHERE owner = ?", [owner, str(limit)]
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created_at DESC LIMIT ?", args).fetchall()
        return [_record(r) for r in rows]

    def count(self, status: str) -> int:
        """Number of jobs in ``status``."""
        with self._lock:
            return int(
                self._db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (status,)).fetchone()[0]
            )

    def ids(self) -> set[str]:
        """Every job id (to find orphaned folders)."""
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM jobs").fetchall()}

    def expired(self, now: float) -> list[JobRecord]:
        """Finished jobs whose files are due for deletion."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE status IN (?, ?, ?) AND expires_at IS NOT NULL AND expires_at <= ?",
                (DONE, FAILED, CANCELLED, now),
            ).fetchall()
        return [_record(r) for r in rows]

    # -- writing ------------------------------------------------------------------------------
    def add(self, record: JobRecord) -> None:
        """Insert a new job."""
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, owner, status, options, input_name, input_bytes, input_sha256, "
                "output_ext, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.owner,
                    record.status,
                    json.dumps(record.options),
                    record.input_name,
                    record.input_bytes,
                    record.input_sha256,
                    record.output_ext,
                    record.created_at,
                ),
            )

    def claim(self) -> JobRecord | None:
        """Take the oldest queued job and mark it running (atomically), or None."""
        with self._lock:
            row = self._db.execute(
                "UPDATE jobs SET status = ?, started_at = ?, attempts = attempts + 1, frames_done = 0 "
                "WHERE id = (SELECT id FROM jobs WHERE status = ? ORDER BY created_at LIMIT 1) RETURNING *",
                (RUNNING, time.time(), QUEUED),
            ).fetchone()
        return _record(row) if row is not None else None

    def progress(
        self, job_id: str, frames_done: int, frames_total: int | None, fps: float, faces: int
    ) -> None:
        """Record a running job's progress."""
        self._update(
            job_id,
            "frames_done = ?, frames_total = ?, fps = ?, faces = ?",
            (frames_done, frames_total, fps, faces),
            RUNNING,
        )

    def finish(self, job_id: str, status: str, ttl_s: float, **values: Any) -> bool:
        """Move a queued or running job to a final ``status``; False if it had already ended."""
        now = time.time()
        columns = {"status": status, "finished_at": now, "expires_at": now + ttl_s, **values}
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._lock:
            cursor = self._db.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ? AND status IN (?, ?)",  # column names are fixed
                (*columns.values(), job_id, QUEUED, RUNNING),
            )
        return cursor.rowcount == 1

    def requeue(self, job_id: str) -> bool:
        """Queue an ended job again (retry); its attempts start over."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status = ?, attempts = 0, frames_done = 0, fps = NULL, faces = 0, "
                "tracks = NULL, error_code = NULL, error_message = NULL, started_at = NULL, "
                "finished_at = NULL, expires_at = NULL, output_bytes = NULL "
                "WHERE id = ? AND status IN (?, ?) AND has_input = 1",
                (QUEUED, job_id, FAILED, CANCELLED),
            )
        return cursor.rowcount == 1

    def to_review(self, job_id: str, faces: int, tracks: int) -> bool:
        """A running review job found its regions: it waits for approval (False if it had ended)."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status = ?, faces = ?, tracks = ? WHERE id = ? AND status = ?",
                (REVIEW, faces, tracks, job_id, RUNNING),
            )
        return cursor.rowcount == 1

    def approve(self, job_id: str, options: dict[str, Any]) -> bool:
        """Queue a job in review again, to render (``options`` mark it approved)."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status = ?, options = ?, attempts = 0, frames_done = 0 "
                "WHERE id = ? AND status = ?",
                (QUEUED, json.dumps(options), job_id, REVIEW),
            )
        return cursor.rowcount == 1

    def set_fields(self, job_id: str, **values: Any) -> None:
        """Set columns of a job whatever its status (e.g. ``has_input`` after deleting the original)."""
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id))

    def delete(self, job_id: str) -> bool:
        """Remove the row; False if there was none."""
        with self._lock:
            return self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount == 1

    def recover(self, ttl_s: float) -> tuple[list[str], list[str]]:
        """After a restart: jobs left running run once more, or fail after their second try.

        Returns (requeued ids, failed ids).
        """
        requeued, failed = [], []
        for record in [r for r in self.jobs(limit=1_000_000) if r.status == RUNNING]:
            if record.attempts < MAX_ATTEMPTS:
                self._update(record.id, "status = ?, frames_done = 0", (QUEUED,), RUNNING)
                requeued.append(record.id)
            else:
                self.finish(
                    record.id,
                    FAILED,
                    ttl_s,
                    error_code="interrupted",
                    error_message="the server stopped twice while this job was running; "
                    "it was not tried a third time",
                )
                failed.append(record.id)
        return requeued, failed

    def _update(self, job_id: str, assignments: str, values: tuple[Any, ...], status: str) -> None:
        with self._lock:
            self._db.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ? AND status = ?",  # column names are fixed
                (*values, job_id, status),
            )


def _record(row: sqlite3.Row) -> JobRecord:
    data = dict(row)
    data["options"] = json.loads(data["options"])
    data["has_input"] = bool(data["has_input"])
    return JobRecord(**data)
