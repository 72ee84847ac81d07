"""Everything the running service holds: built once by the app factory, shut down with it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from faceveil.service.audit import AuditLog
from faceveil.service.jobs.store import JobStore
from faceveil.service.jobs.sweeper import Sweeper, remove_orphans, sweep
from faceveil.service.jobs.worker import ComplianceKeys, WorkerPool
from faceveil.service.photos import PhotoEngine
from faceveil.service.security import AccessGuard
from faceveil.service.settings import ServiceSettings
from faceveil.service.streams.manager import StreamManager
from faceveil.service.uploads import JobFiles

log = logging.getLogger("faceveil.service")


@dataclass
class ServiceState:
    """The service's long-lived parts (reached from routes through :mod:`faceveil.service.deps`)."""

    settings: ServiceSettings
    store: JobStore
    files: JobFiles
    audit: AuditLog
    guard: AccessGuard
    pool: WorkerPool
    sweeper: Sweeper
    photos: PhotoEngine
    keys: ComplianceKeys = field(default_factory=ComplianceKeys)
    streams: StreamManager | None = None
    stopped: bool = False

    def start(self) -> None:
        """Recover from a previous run, then start the workers and the sweeper."""
        requeued, failed = self.store.recover(self.settings.result_ttl_s)
        for job_id in requeued:
            self.files.clean_partial(job_id)
        for job_id in failed:
            self.files.remove_input(job_id)
            self.store.set_fields(job_id, has_input=0)
        orphans = remove_orphans(self.store, self.files)
        sweep(self.store, self.files, self.audit)
        if requeued or failed or orphans:
            log.warning(
                "after a restart: %d job(s) queued again, %d failed, %d partial upload(s) removed",
                len(requeued),
                len(failed),
                len(orphans),
            )
        self.pool.start()
        self.sweeper.start()
        if self.streams is not None:
            self.streams.start()

    def stop(self) -> None:
        """Stop the workers (running jobs resume after the next start), the live streams (those
        running start again after the next start) and the sweeper."""
        if self.streams is not None:
            self.streams.stop()
            self.streams.store.close()
        self.pool.stop()
        self.sweeper.stop()
        self.store.close()
        self.stopped = True
