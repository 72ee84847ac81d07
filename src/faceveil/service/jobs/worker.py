"""The in-process worker pool: N threads take queued jobs from the store and run them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress

from faceveil.errors import FaceveilError, JobCancelledError
from faceveil.pipeline.video import VideoJob
from faceveil.service.audit import AuditLog
from faceveil.service.jobs.store import CANCELLED, DONE, FAILED, QUEUED, JobRecord, JobStore
from faceveil.service.schemas import VideoOptions
from faceveil.service.uploads import JobFiles

log = logging.getLogger("faceveil.service.jobs")

#: Progress is written to the store at most this often.
PROGRESS_EVERY_S = 0.5

#: ``progress(frames_done, frames_total_or_None, face_detections_so_far)``
JobProgress = Callable[[int, int | None, int], None]
#: Runs one job's video work: (job, input, output, progress, cancel) -> (faces, tracks).
Runner = Callable[[JobRecord, str, str, JobProgress, threading.Event], tuple[int, int]]


def run_video(
    job: JobRecord,
    source: str,
    target: str,
    progress: JobProgress,
    cancel: threading.Event,
) -> tuple[int, int]:
    """The real runner: faceveil's video pipeline with the job's options."""
    config = VideoOptions.model_validate(job.options).job_config()
    video = VideoJob(config, cancel=cancel)
    video.progress = lambda done, total: progress(done, total, video.faces_so_far)
    report = video.run(source, target)
    return report.faces, report.tracks


class WorkerPool:
    """Runs queued jobs on ``size`` threads; ``wake()`` when a job was queued.

    Args:
        store: the job table.
        files: the jobs' folders.
        audit: where job outcomes are recorded.
        size: jobs run at once.
        ttl_s: how long results are kept after a job ends.
        delete_originals: ``job_end`` deletes the upload as soon as its job ends.
        runner: does the work (tests pass a fake).
    """

    def __init__(
        self,
        store: JobStore,
        files: JobFiles,
        audit: AuditLog,
        size: int,
        ttl_s: float,
        delete_originals: str,
        runner: Runner = run_video,
    ) -> None:
        self.store = store
        self.files = files
        self.audit = audit
        self.size = size
        self.ttl_s = ttl_s
        self.delete_originals = delete_originals
        self.runner = runner
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._cancels: dict[str, threading.Event] = {}
        self._finished: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the worker threads."""
        for n in range(self.size):
            thread = threading.Thread(target=self._loop, name=f"faceveil-job-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel running jobs (they go back to the queue) and join the threads."""
        self._stopping.set()
        for event in list(self._cancels.values()):
            event.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)

    def wake(self) -> None:
        """Tell idle workers that a job is waiting."""
        with self._wake:
            self._wake.notify_all()

    def cancel(self, job_id: str, wait_s: float = 0.0) -> bool:
        """Ask a running job to stop (and wait up to ``wait_s`` for it); False if it is not running here."""
        event, finished = self._cancels.get(job_id), self._finished.get(job_id)
        if event is None:
            return False
        event.set()
        if finished is not None and wait_s > 0:
            finished.wait(wait_s)
        return True

    # ------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            job = self.store.claim()
            if job is None:
                with self._wake:
                    self._wake.wait(timeout=1.0)
                continue
            self._run(job)

    def _run(self, job: JobRecord) -> None:
        cancel = threading.Event()
        self._cancels[job.id] = cancel
        self._finished[job.id] = threading.Event()
        self.files.clean_partial(job.id)
        started = time.monotonic()
        last = [0.0]

        def progress(done: int, total: int | None, faces: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S or (total is not None and done >= total):
                last[0] = now
                fps = done / max(now - started, 1e-6)
                self.store.progress(job.id, done, total, round(fps, 2), faces)

        target = self.files.output(job.id, job.output_ext)
        try:
            faces, tracks = self.runner(job, str(self.files.input(job.id)), str(target), progress, cancel)
        except JobCancelledError:
            if self._stopping.is_set():  # server shutting down: queued again, runs after the restart
                self.files.clean_partial(job.id)
                self.store.set_fields(job.id, status=QUEUED, attempts=job.attempts - 1, frames_done=0)
                return
            self._end(job, CANCELLED)
        except FaceveilError as exc:
            self._end(job, FAILED, error_code=exc.code, error_message=str(exc))
        except Exception as exc:
            log.exception("job %s failed", job.id)
            self._end(job, FAILED, error_code="internal_error", error_message=f"unexpected error: {exc}")
        else:
            size = target.stat().st_size if target.exists() else None
            self._end(job, DONE, faces=faces, tracks=tracks, output_bytes=size)
        finally:
            self._cancels.pop(job.id, None)
            self._finished.pop(job.id, threading.Event()).set()

    def _end(self, job: JobRecord, status: str, **values: object) -> None:
        values = {k: v for k, v in values.items() if v is not None}
        if self.delete_originals == "job_end":
            # deleted before the final status is written, and marked in the same update: nobody
            # sees an ended job that still offers a retry of an original about to vanish
            self.files.remove_input(job.id)
            values["has_input"] = 0
        ended = self.store.finish(job.id, status, self.ttl_s, **values)
        if status != DONE or not ended:  # failed, cancelled, or cancelled/deleted meanwhile
            with suppress(FileNotFoundError):
                self.files.output(job.id, job.output_ext).unlink()
        if self.delete_originals == "job_end" and not ended:
            self.store.set_fields(job.id, has_input=0)
        if ended:
            self.audit.record(
                f"job_{status}",
                client=None,
                principal="worker",
                job_id=job.id,
                input_bytes=job.input_bytes,
                input_sha256=job.input_sha256,
                error_code=str(values.get("error_code", "")) or None,
            )
