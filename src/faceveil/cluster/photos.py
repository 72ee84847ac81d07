"""Photo batches on a Ray cluster (``faceveil image DIR -o OUT --cluster ...``).

A pool of actors, each with the models loaded once, anonymizes the photos; each photo travels to
a worker and back through the object store (a photo is one bounded piece), and the results come
back in the order they complete. At most two photos per worker are in flight, so the driver's
memory does not grow with the batch.

Resume: a photo whose output already exists is skipped. Outputs are written atomically (a
hidden temporary name, renamed when complete), so an output that exists is a complete one; a
rerun after an interruption does only what is left.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceveil.cluster.ray_backend import ClusterConfig, DetectorFactory, WorkerBase, cluster_cpus, connect
from faceveil.cluster.ray_backend import system_errors as _system_errors
from faceveil.config import AnonymizerConfig, ImageIOConfig
from faceveil.core.detections import Detections
from faceveil.errors import ClusterError, FaceveilError, InputError, OutputError
from faceveil.pipeline.graph import temp_output_path
from faceveil.pipeline.photo import PhotoReport

#: Photos in flight per worker.
IN_FLIGHT_PER_WORKER = 2


@dataclass(frozen=True)
class PhotoResult:
    """What a worker sends back for one photo: the encoded output, or the error."""

    width: int = 0
    height: int = 0
    data: bytes | None = None
    detections: Detections | None = None
    error: FaceveilError | None = None


class PhotoWorker(WorkerBase):
    """A Ray actor that holds the models and anonymizes one photo at a time."""

    def __init__(
        self, config: AnonymizerConfig, io: ImageIOConfig, detector: DetectorFactory | None = None
    ) -> None:
        from faceveil.anonymize.anonymizer import Anonymizer

        super().__init__()
        self.anonymizer = Anonymizer(config, detector=None if detector is None else detector())
        self.io = io

    def anonymize(self, data: bytes, output_name: str) -> PhotoResult:
        """Hide the faces of the photo ``data``; encode it as ``output_name``'s extension says."""
        from faceveil.media.image_io import encode_image, format_for_path, read_image

        try:
            photo = read_image(data, self.io)
            result = self.anonymizer.apply(photo.rgb)
            fmt = format_for_path(output_name)
            encoded = encode_image(result.image, photo.alpha, photo.grayscale, fmt, self.io)
            return PhotoResult(photo.width, photo.height, encoded, result.detections)
        except FaceveilError as exc:
            return PhotoResult(error=exc)


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` under a hidden temporary name beside ``target``, then rename it."""
    temp = temp_output_path(target)
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(target)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        temp.unlink(missing_ok=True)


class ClusterPhotoBatch:
    """Anonymizes many photos on a Ray cluster.

    Args:
        config, io: as for :class:`faceveil.pipeline.photo.PhotoProcessor`.
        cluster: where and how to run.
        detector: builds each worker's detector (tests pass a fake); None: the configured one.
    """

    def __init__(
        self,
        config: AnonymizerConfig,
        io: ImageIOConfig | None = None,
        cluster: ClusterConfig | None = None,
        detector: DetectorFactory | None = None,
    ) -> None:
        self.config = config
        self.io = io or ImageIOConfig()
        self.cluster = cluster or ClusterConfig()
        self.detector = detector
        self.skipped = 0  # photos skipped because their output exists
        self.skipped_shown = 0  # of those, the ones a progress display has counted already

    def run(
        self, jobs: Sequence[tuple[Path, Path]], done: Callable[[PhotoReport], None] | None = None
    ) -> Iterator[PhotoReport]:
        """Anonymize each ``(source, target)``; yields a report per photo as it completes.
        Photos whose target exists already are skipped (counted in :attr:`skipped`)."""
        todo = []
        for source, target in jobs:
            if Path(source).resolve() == Path(target).resolve():
                yield PhotoReport(str(source), error=OutputError(f"refusing to overwrite the input {source}"))
            elif Path(target).is_file():
                self.skipped += 1
            else:
                todo.append((Path(source), Path(target)))
        if not todo:
            return
        ray = connect(self.cluster.address)
        errors = _system_errors(ray)
        count = min(self.cluster.workers or cluster_cpus(ray), len(todo))
        actor = ray.remote(PhotoWorker).options(
            num_cpus=self.cluster.cpus_per_worker,
            num_gpus=1 if self.config.detector.device == "cuda" else 0,
            max_restarts=-1,
            max_task_retries=self.cluster.retries,
        )
        actors = [actor.remote(self.config, self.io, self.detector) for _ in range(count)]
        try:
            yield from self._loop(ray, errors, actors, todo)
        finally:
            for handle in actors:
                ray.kill(handle)

    def _loop(
        self,
        ray: Any,
        errors: tuple[type[BaseException], ...],
        actors: list[Any],
        todo: list[tuple[Path, Path]],
    ) -> Iterator[PhotoReport]:
        waiting = list(reversed(todo))
        attempts: dict[Path, int] = {}
        running: dict[Any, tuple[Path, Path]] = {}
        turn = 0
        while waiting or running:
            while waiting and len(running) < IN_FLIGHT_PER_WORKER * len(actors):
                source, target = waiting.pop()
                try:
                    data = source.read_bytes()
                except OSError as exc:
                    yield PhotoReport(str(source), error=InputError(f"cannot read {source}: {exc.strerror}"))
                    continue
                handle = actors[turn % len(actors)]
                turn += 1
                running[handle.anonymize.remote(data, target.name)] = (source, target)
            finished, _ = ray.wait(list(running), num_returns=1)
            for ref in finished:
                source, target = running.pop(ref)
                try:
                    result: PhotoResult = ray.get(ref)
                except errors as exc:
                    attempts[source] = attempts.get(source, 0) + 1
                    if attempts[source] > self.cluster.retries:
                        raise ClusterError(f"{source} failed {attempts[source]} times: {exc}") from None
                    waiting.append((source, target))
                    continue
                yield self._write(source, target, result)

    @staticmethod
    def _write(source: Path, target: Path, result: PhotoResult) -> PhotoReport:
        if result.error is not None or result.data is None:
            return PhotoReport(str(source), error=result.error or InputError("no result"))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, result.data)
        except (OutputError, OSError) as exc:
            error = exc if isinstance(exc, OutputError) else OutputError(f"cannot write {target}: {exc}")
            return PhotoReport(str(source), error=error)
        return PhotoReport(str(source), str(target), result.width, result.height, result.detections)
