"""The service's SQLite database: one file (the jobs database), one connection and one lock per
table's store, autocommit, WAL journal (readers never wait for the writer)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class SqliteStore:
    """Thread-safe access to one table: subclasses run their statements under ``self._lock`` on
    ``self._db`` (rows as :class:`sqlite3.Row`).

    Args:
        path: the database file (its folder is made when missing).
        schema: the ``CREATE TABLE IF NOT EXISTS`` script of the table and its indexes.
    """

    def __init__(self, path: Path, schema: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(schema)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
