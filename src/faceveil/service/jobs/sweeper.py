"""The retention sweeper: deletes results (and any original still kept) once they expire."""

from __future__ import annotations

import logging
import threading
import time

from faceveil.service.audit import AuditLog
from faceveil.service.jobs.store import EXPIRED, JobStore
from faceveil.service.uploads import JobFiles

log = logging.getLogger("faceveil.service.sweeper")


def sweep(store: JobStore, files: JobFiles, audit: AuditLog, now: float | None = None) -> list[str]:
    """Delete the files of every expired job and mark it ``expired``; returns their ids."""
    swept = []
    for job in store.expired(time.time() if now is None else now):
        files.remove(job.id)
        store.set_fields(job.id, status=EXPIRED, has_input=0, output_bytes=None)
        audit.record("job_expired", client=None, principal="sweeper", job_id=job.id)
        swept.append(job.id)
    return swept


def remove_orphans(store: JobStore, files: JobFiles) -> list[str]:
    """Delete job folders with no job (uploads cut short by a crash); returns their ids."""
    orphans = files.orphans(store.ids())
    for job_id in orphans:
        files.remove(job_id)
    return orphans


class Sweeper:
    """Runs :func:`sweep` every ``interval_s`` seconds on a background thread."""

    def __init__(self, store: JobStore, files: JobFiles, audit: AuditLog, interval_s: float) -> None:
        self.store = store
        self.files = files
        self.audit = audit
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="faceveil-sweeper", daemon=True)

    def start(self) -> None:
        """Start sweeping."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and join."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                sweep(self.store, self.files, self.audit)
            except OSError as exc:
                log.error("retention sweep failed: %s", exc)
