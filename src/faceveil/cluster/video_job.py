"""Segment-parallel video jobs on a Ray cluster (``faceveil video --cluster``).

The driver (this process) plans the segments, puts the input into the object store, and keeps
one actor per worker busy: first the scans (detection), in order; as soon as the tracking in the
driver has settled a segment's regions, its render. Rendered segments come back in chunks to a
hidden folder beside the output and are joined there; the output, its regions file and its
manifest are renamed into place together at the end, or not at all.

Faults: each actor is restarted by Ray when its process dies, and the call it was running is run
again (Ray's task retries, then the driver's own up to ``retries`` times); the result is the same
because every step is deterministic.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from faceveil.cluster.join import join_segments
from faceveil.cluster.plan import SegmentPlan, plan_segments
from faceveil.cluster.ray_backend import (
    ClusterConfig,
    DetectorFactory,
    WorkerBase,
    cluster_cpus,
    connect,
    file_chunks,
    put_file,
    system_errors,
    unwrap,
)
from faceveil.cluster.segments import (
    FrameRegions,
    SegmentScan,
    Tracking,
    audit_record,
    render_segment,
    scan_segment,
)
from faceveil.errors import ClusterError, JobCancelledError, OutputError
from faceveil.media.video_io import VideoInfo, check_encryptable, open_input, output_format, probe
from faceveil.pipeline.graph import Progress, temp_output_path
from faceveil.pipeline.video import VideoJobConfig, VideoReport, video_manifest

if TYPE_CHECKING:
    from faceveil.cluster.plan import Segment
    from faceveil.compliance.manifest import ManifestOptions


class SegmentWorker(WorkerBase):
    """A Ray actor that holds the models and scans or renders one segment at a time."""

    def __init__(self, config: VideoJobConfig, detector: DetectorFactory | None = None) -> None:
        from faceveil.anonymize.anonymizer import Anonymizer

        super().__init__()
        self.config = config
        self.anonymizer = Anonymizer(config.anonymizer, detector=None if detector is None else detector())

    def scan(self, job: str, chunks: list[Any], suffix: str, segment: Segment) -> SegmentScan:
        """Detect faces on the frames of ``segment`` that a single run detects on."""
        source = self.local_input(job, chunks, suffix)
        scan = scan_segment(source, segment, self.config, self.anonymizer)
        return SegmentScan(scan.number, scan.frames, self.where()[0])

    def render(
        self,
        job: str,
        chunks: list[Any],
        suffix: str,
        segment: Segment,
        regions: list[FrameRegions],
        output_suffix: str,
    ) -> int:
        """Render ``segment`` (encoded as ``output_suffix`` implies) into this node's folder;
        returns its size (fetch it with :meth:`part`)."""
        source = self.local_input(job, chunks, suffix)
        target = self.folder / f"segment-{segment.number}.part"
        render_segment(source, segment, regions, self.config, self.anonymizer, target, output_suffix)
        return target.stat().st_size

    def part(self, number: int, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of the rendered segment ``number``; the last read removes it."""
        path = self.folder / f"segment-{number}.part"
        if not path.is_file():  # this actor was restarted since it rendered the segment
            raise SegmentLostError(f"segment {number} is no longer on its worker")
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(size)
        if offset + len(data) >= path.stat().st_size:
            path.unlink()
        return data


class SegmentLostError(ClusterError):
    """A rendered segment vanished with its worker before it was fetched: it is rendered again."""


@dataclass
class ClusterReport(VideoReport):
    """A video report with where the segments ran."""

    segments: int = 0
    nodes: set[str] = field(default_factory=set)
    retries: int = 0  # work the driver ran again (Ray's own task retries are not counted)
    restarts: int = 0  # workers whose process died during the job and was started again
    work_s: float = 0.0  # time the workers spent on scans and renders, added up

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (with the segment and node counts)."""
        extra = {"segments": self.segments, "nodes": len(self.nodes), "restarts": self.restarts}
        return {**super().to_json(), **extra}


@dataclass
class _Work:
    kind: str  # "scan" or "render"
    segment: Segment
    attempts: int = 0
    submitted: float = 0.0


class ClusterVideoJob:
    """A video job split into segments and run on a Ray cluster; used like
    :class:`faceveil.pipeline.video.VideoJob` (same ``run``, ``progress`` and ``cancel``).

    Args:
        config: as for a single run (the result is the same).
        cluster: where and how to run.
        progress: ``progress(frames_done, frames_total)``, called as segments come back.
        cancel: set it to stop the job (nothing is written).
        detector: builds each worker's detector (tests pass a fake); None: the configured one.
    """

    def __init__(
        self,
        config: VideoJobConfig | None = None,
        cluster: ClusterConfig | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        detector: DetectorFactory | None = None,
    ) -> None:
        self.config = config or VideoJobConfig()
        self.cluster = cluster or ClusterConfig()
        self.progress = progress
        self.stop = cancel or threading.Event()
        self.detector = detector
        self.report: ClusterReport | None = None

    @property
    def faces_so_far(self) -> int:
        """Face detections counted so far (for progress displays)."""
        return self.report.faces if self.report is not None else 0

    def run(
        self,
        source: str | os.PathLike[str],
        target: str | os.PathLike[str],
        regions: str | os.PathLike[str] | None = None,
        manifest: ManifestOptions | None = None,
    ) -> ClusterReport:
        """Anonymize ``source`` into ``target`` on the cluster, all or nothing (see the module)."""
        source, target = Path(source), Path(target)
        _check_paths(source, target, regions, manifest, self.config)
        started = time.perf_counter()
        plan = plan_segments(source, self.cluster.segment_seconds)
        with open_input(source) as container:
            info = probe(container)
        report = self.report = ClusterReport(str(source), str(target), segments=len(plan), info=info)
        temps: dict[Path, Path] = {}
        parts = temp_output_path(target).with_suffix(".parts")
        try:
            parts.mkdir(parents=True, exist_ok=False)
            tmp = temps[target] = temp_output_path(target)
            side_tmp = None
            if regions is not None:
                side_tmp = temps[Path(regions)] = temp_output_path(Path(regions))
            with open(side_tmp, "w", encoding="utf-8") if side_tmp else contextlib.nullcontext() as side:
                files = _Driver(self, plan, info, source, target, parts, side, report).run()
            join_segments(files, source, info, tmp, self.config.output)
            report.frames = plan.frames - report.skipped
            report.wall_s = time.perf_counter() - started
            if side_tmp is not None:  # the frame lines become a regions document, as a single run's
                from faceveil.pipeline.regions import finish_regions_file
                from faceveil.review.document import file_identity

                identity = file_identity(source, info.width, info.height, plan.frames, info.rate)
                finish_regions_file(side_tmp, identity, plan.frames)
            if manifest is not None:
                text = video_manifest(self.config, source, target, tmp, side_tmp, report, manifest)
                temps[manifest.path] = temp_output_path(manifest.path)
                temps[manifest.path].write_text(text, encoding="utf-8")
            for final, temp in temps.items():
                temp.replace(final)
            return report
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc}") from exc
        finally:
            shutil.rmtree(parts, ignore_errors=True)
            for path in temps.values():
                path.unlink(missing_ok=True)


def _check_paths(
    source: Path,
    target: Path,
    regions: str | os.PathLike[str] | None,
    manifest: ManifestOptions | None,
    config: VideoJobConfig,
) -> None:
    output_format(target)
    if config.output.encryption is not None:
        check_encryptable(target)
    if target.resolve() == source.resolve():
        raise OutputError(f"refusing to overwrite the input {source}")
    others = [Path(p) for p in (regions, manifest.path if manifest else None) if p is not None]
    if len({p.resolve() for p in (source, target, *others)}) != 2 + len(others):
        raise OutputError("the output, the regions file and the manifest must be different files")


class _Driver:
    """The scheduling loop of one job: scans first, renders as soon as their regions are final."""

    def __init__(
        self,
        job: ClusterVideoJob,
        plan: SegmentPlan,
        info: VideoInfo,
        source: Path,
        target: Path,
        parts: Path,
        side: IO[str] | None,
        report: ClusterReport,
    ) -> None:
        self.job, self.plan, self.info = job, plan, info
        self.source, self.parts, self.side, self.report = source, parts, side, report
        self.target = target
        self.key = f"{os.getpid()}-{id(self)}"  # the job's name on the workers
        self.tracking = Tracking(job.config)
        self.final: dict[int, FrameRegions] = {}
        self.scans: dict[int, SegmentScan] = {}
        self.queue: deque[_Work] = deque(_Work("scan", s) for s in plan.segments)
        self.ready: deque[_Work] = deque()  # renders whose regions are final
        self.files: dict[int, Path] = {}
        self.rendering: set[int] = set()  # segments whose render was queued
        self.tracked = 0  # segments pushed to the tracking
        self.done_frames = 0

    def run(self) -> list[Path]:
        ray = connect(self.job.cluster.address)
        self.ray, self.errors = ray, system_errors(ray)
        cluster = self.job.cluster
        count = min(cluster.workers or cluster_cpus(ray), len(self.plan))
        gpus = 1 if self.job.config.anonymizer.detector.device == "cuda" else 0
        actor = ray.remote(SegmentWorker).options(
            num_cpus=cluster.cpus_per_worker,
            num_gpus=gpus,
            max_restarts=-1,
            max_task_retries=cluster.retries,
        )
        # the actors start (and load their models) while the input goes into the object store
        self.actors = [actor.remote(self.job.config, self.job.detector) for _ in range(count)]
        self.chunks: list[Any] = []
        finished = False
        try:
            self.chunks = put_file(ray, self.source, cluster.chunk_bytes)
            pids = self._pids()
            self._loop()
            self.report.restarts = sum(1 for a, b in zip(pids, self._pids(), strict=True) if a != b)
            finished = True
        finally:
            self._shutdown(wait_s=30 if finished else 2)
        return [self.files[s.number] for s in self.plan.segments]

    def _pids(self) -> list[int]:
        """Each actor's process id (a restarted actor has a new one)."""
        return [int(where[1]) for where in self.ray.get([a.where.remote() for a in self.actors])]

    def _shutdown(self, wait_s: float) -> None:
        """Each actor removes its folder, then it is stopped; the input leaves the object store.

        After a failure or a cancel, an actor still busy is stopped at once; its folder is then
        removed by the next faceveil worker that starts on its node."""
        closing = [actor.close.remote() for actor in self.actors]
        self.ray.wait(closing, num_returns=len(closing), timeout=wait_s)
        for actor in self.actors:
            self.ray.kill(actor)
        self.chunks = []  # the driver owns the chunks: dropping the references frees them

    def _submit(self, actor: Any, work: _Work) -> Any:
        suffix = self.source.suffix
        segment = work.segment
        if work.kind == "scan":
            return actor.scan.remote(self.key, self.chunks, suffix, segment)
        regions = [self.final[i] for i in range(segment.first, segment.end)]
        return actor.render.remote(self.key, self.chunks, suffix, segment, regions, self.target.suffix)

    def _loop(self) -> None:
        idle = list(range(len(self.actors)))
        running: dict[Any, tuple[int, _Work]] = {}
        while self.queue or self.ready or running:
            if self.job.stop.is_set():
                for ref in running:
                    self.ray.cancel(ref)
                raise JobCancelledError("the video job was cancelled; nothing was written")
            while idle and (self.ready or self.queue):
                work = self.ready.popleft() if self.ready else self.queue.popleft()
                index = idle.pop()
                running[self._submit(self.actors[index], work)] = (index, work)
                work.submitted = time.perf_counter()
            if not running:
                raise ClusterError("internal: no work can start")  # pragma: no cover
            finished, _ = self.ray.wait(list(running), num_returns=1, timeout=0.2)
            for ref in finished:
                index, work = running.pop(ref)
                idle.append(index)
                self.report.work_s += time.perf_counter() - work.submitted
                self._finish(index, work, ref)

    def _finish(self, index: int, work: _Work, ref: Any) -> None:
        try:
            if work.kind == "scan":
                self._scanned(self.ray.get(ref))
            else:
                self._fetch(index, work, self.ray.get(ref))
        except self.errors as exc:
            self.report.retries += 1
            work.attempts += 1
            if work.attempts > self.job.cluster.retries:
                raise ClusterError(
                    f"segment {work.segment.number} failed {work.attempts} times: {exc}"
                ) from None
            (self.ready if work.kind == "render" else self.queue).appendleft(work)
        except self.ray.exceptions.RayTaskError as exc:
            cause = unwrap(self.ray, exc)
            if not isinstance(cause, SegmentLostError):
                raise cause from None
            self.report.retries += 1
            self.ready.appendleft(work)

    def _scanned(self, scan: SegmentScan) -> None:
        self.scans[scan.number] = scan
        self.report.nodes.add(scan.node)
        while self.tracked in self.scans:
            self._track(self.tracking.push(self.scans.pop(self.tracked)))
            self.tracked += 1
        if self.tracked == len(self.plan):
            self._track(self.tracking.flush())
        counts = self.tracking.counts
        self.report.faces, self.report.tracks = counts.faces, len(counts.tracks)
        self.report.hidden_whole, self.report.skipped = counts.hidden_whole, counts.skipped
        self.report.frames_in = counts.frames_in
        for segment in self.plan.segments:
            waiting = segment.number not in self.rendering
            if waiting and segment.first in self.final and (segment.end - 1) in self.final:
                self.rendering.add(segment.number)
                self.ready.append(_Work("render", segment))

    def _track(self, released: list[tuple[int, FrameRegions]]) -> None:
        for index, final in released:
            self.final[index] = final
            if self.side is not None:
                record = audit_record(self._pts(index), self.info.time_base, index, final)
                if record is not None:
                    self.side.write(json.dumps(record) + "\n")

    def _pts(self, index: int) -> int:
        for segment in self.plan.segments:
            if segment.first <= index < segment.end:
                return segment.pts[index - segment.first]
        raise IndexError(index)  # pragma: no cover

    def _fetch(self, index: int, work: _Work, size: int) -> None:
        segment, actor = work.segment, self.actors[index]
        path = self.parts / f"{segment.number:06d}.nut"
        step = self.job.cluster.chunk_bytes
        with open(path, "wb") as handle:
            for offset in range(0, size, step):
                handle.write(self.ray.get(actor.part.remote(segment.number, offset, step)))
        self.files[segment.number] = path
        for i in range(segment.first, segment.end):
            del self.final[i]
        self.done_frames += segment.frames
        if self.job.progress is not None:
            self.job.progress(self.done_frames, self.plan.frames)


def anonymize_video_on_cluster(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    config: VideoJobConfig | None = None,
    cluster: ClusterConfig | None = None,
    progress: Progress | None = None,
    regions: str | os.PathLike[str] | None = None,
) -> ClusterReport:
    """One call: hide every face of ``source`` on a Ray cluster and write ``target``."""
    return ClusterVideoJob(config, cluster, progress).run(source, target, regions)


__all__ = ["ClusterConfig", "ClusterReport", "ClusterVideoJob", "anonymize_video_on_cluster", "file_chunks"]
