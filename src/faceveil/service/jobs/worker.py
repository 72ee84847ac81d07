"""The in-process worker pool: N threads take queued jobs from the store and run them."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from faceveil.errors import ConfigError, FaceveilError, JobCancelledError
from faceveil.pipeline.video import VideoJob, VideoJobConfig
from faceveil.service.audit import AuditLog
from faceveil.service.jobs.store import CANCELLED, DONE, FAILED, QUEUED, JobRecord, JobStore
from faceveil.service.schemas import VideoOptions
from faceveil.service.uploads import MANIFEST_NAME, REGIONS_NAME, JobFiles

if TYPE_CHECKING:
    from faceveil.cluster.ray_backend import ClusterConfig
    from faceveil.compliance.keys import EncryptionKey, SigningKey
    from faceveil.detection.base import Detector
    from faceveil.service.settings import ServiceSettings

log = logging.getLogger("faceveil.service.jobs")

#: Progress is written to the store at most this often.
PROGRESS_EVERY_S = 0.5

#: ``progress(frames_done, frames_total_or_None, face_detections_so_far)``
JobProgress = Callable[[int, int | None, int], None]
#: Runs one job's video work: (job, input, output, progress, cancel) -> (faces, tracks).
Runner = Callable[[JobRecord, str, str, JobProgress, threading.Event], tuple[int, int]]


@dataclass(frozen=True)
class ComplianceKeys:
    """The server's keys: the one results are encrypted with, and the one manifests are signed with.

    Both come from key files named in the settings (``FACEVEIL_ENCRYPTION_KEY_FILE``,
    ``FACEVEIL_SIGNING_KEY_FILE``), are read once at start, and are never sent to a client.
    """

    encryption: EncryptionKey | None = None
    signing: SigningKey | None = None

    @classmethod
    def load(cls, encryption_file: Path | None, signing_file: Path | None) -> ComplianceKeys:
        """Read the key files (None: that key is not configured)."""
        from faceveil.compliance.keys import load_encryption_key, load_signing_key

        return cls(
            load_encryption_key(encryption_file) if encryption_file is not None else None,
            load_signing_key(signing_file) if signing_file is not None else None,
        )


class VideoRunner:
    """The real runner: faceveil's video pipeline with the job's options, writing the job's
    manifest (signed when the server has a signing key) beside its result.

    Args:
        keys: the server's encryption and signing keys.
        detector_factory: builds the detector of a preset name (tests pass a fake); None builds
            the real one from the job's options.
        cluster: run every job split into segments on this Ray cluster (``FACEVEIL_RAY_ADDRESS``);
            progress, cancel and retry work as for a local job.
    """

    def __init__(
        self,
        keys: ComplianceKeys | None = None,
        detector_factory: Callable[[str], Detector] | None = None,
        cluster: ClusterConfig | None = None,
    ) -> None:
        self.keys = keys or ComplianceKeys()
        self.detector_factory = detector_factory
        self.cluster = cluster

    def __call__(
        self, job: JobRecord, source: str, target: str, progress: JobProgress, cancel: threading.Event
    ) -> tuple[int, int]:
        """Run one job; returns (face detections, tracks)."""
        from faceveil.anonymize.anonymizer import Anonymizer
        from faceveil.compliance.manifest import ManifestOptions

        options = VideoOptions.model_validate(job.options)
        if options.encrypt and self.keys.encryption is None:
            raise ConfigError("this server has no encryption key (FACEVEIL_ENCRYPTION_KEY_FILE)")
        config = options.job_config(self.keys.encryption)
        if self.cluster is not None and not options.review:  # review jobs run here (two passes)
            return self._on_cluster(self.cluster, config, options, source, target, progress, cancel)
        detector = None if self.detector_factory is None else self.detector_factory(options.preset)
        anonymizer = Anonymizer(config.anonymizer, detector=detector)
        regions = Path(target).with_name(REGIONS_NAME)
        if options.review and not options.approved:  # stop after detection: the review comes next
            from faceveil.pipeline.regions import detect_document

            document = detect_document(source, anonymizer, config, stop=cancel)
            document.save(regions)
            faces = sum(r.source == "detected" for f in document.frames for r in f.regions)
            return faces, len(document.tracks())
        video = VideoJob(config, anonymizer, cancel=cancel)
        video.progress = lambda done, total: progress(done, total, video.faces_so_far)
        manifest = ManifestOptions(Path(target).with_name(MANIFEST_NAME), self.keys.signing)
        if options.review:  # approved: render from the reviewed regions
            from faceveil.pipeline.regions import load_for

            report = video.render(source, target, load_for(source, regions), manifest=manifest)
        else:
            report = video.run(source, target, manifest=manifest)
        return report.faces, report.tracks

    def _on_cluster(
        self,
        cluster: ClusterConfig,
        config: VideoJobConfig,
        options: VideoOptions,
        source: str,
        target: str,
        progress: JobProgress,
        cancel: threading.Event,
    ) -> tuple[int, int]:
        """Run the job split into segments on the Ray cluster (same result, same manifest)."""
        from faceveil.cluster.video_job import ClusterVideoJob
        from faceveil.compliance.manifest import ManifestOptions

        factory = self.detector_factory
        build = None if factory is None else functools.partial(factory, options.preset)
        video = ClusterVideoJob(config, cluster, cancel=cancel, detector=build)
        video.progress = lambda done, total: progress(done, total, video.faces_so_far)
        manifest = ManifestOptions(Path(target).with_name(MANIFEST_NAME), self.keys.signing)
        report = video.run(source, target, manifest=manifest)
        return report.faces, report.tracks


def cluster_settings(settings: ServiceSettings) -> ClusterConfig | None:
    """The cluster the server's video jobs run on (``FACEVEIL_RAY_ADDRESS``), or None."""
    if settings.ray_address is None:
        return None
    from faceveil.cluster.ray_backend import ClusterConfig

    return ClusterConfig(
        address=settings.ray_address,
        workers=settings.ray_workers,
        segment_seconds=settings.ray_segment_seconds,
    )


def _in_review(job: JobRecord) -> bool:
    """A review job's first run (detection only)."""
    return bool(job.options.get("review")) and not job.options.get("approved")


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
        runner: Runner | None = None,
    ) -> None:
        self.store = store
        self.files = files
        self.audit = audit
        self.size = size
        self.ttl_s = ttl_s
        self.delete_originals = delete_originals
        self.runner = runner or VideoRunner()
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
            if _in_review(job):
                self._review(job, faces, tracks)
                return
            if job.options.get("review"):  # rendered after approval: the original goes now
                self.files.remove_input(job.id)
                self.store.set_fields(job.id, has_input=0)
            size = target.stat().st_size if target.exists() else None
            self._end(job, DONE, faces=faces, tracks=tracks, output_bytes=size)
        finally:
            self._cancels.pop(job.id, None)
            self._finished.pop(job.id, threading.Event()).set()

    def _review(self, job: JobRecord, faces: int, tracks: int) -> None:
        """Detection is done: the job waits for a person (its original is kept for the render)."""
        if self.store.to_review(job.id, faces, tracks):
            self.audit.record(
                "job_review", client=None, principal="worker", job_id=job.id, faces=faces, tracks=tracks
            )
        else:
            self.files.regions(job.id).unlink(missing_ok=True)

    def _end(self, job: JobRecord, status: str, **values: object) -> None:
        values = {k: v for k, v in values.items() if v is not None}
        if self.delete_originals == "job_end":
            # deleted before the final status is written, and marked in the same update: nobody
            # sees an ended job that still offers a retry of an original about to vanish
            self.files.remove_input(job.id)
            values["has_input"] = 0
        ended = self.store.finish(job.id, status, self.ttl_s, **values)
        if status != DONE or not ended:  # failed, cancelled, or cancelled/deleted meanwhile
            for path in (self.files.output(job.id, job.output_ext), self.files.manifest(job.id)):
                with suppress(FileNotFoundError):
                    path.unlink()
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
