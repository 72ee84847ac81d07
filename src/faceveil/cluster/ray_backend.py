"""Ray underneath: connecting, moving files through the object store, the worker actors.

Ray is imported only here, when a cluster job starts (``pip install 'faceveil[ray]'``). No disk is
shared: an input reaches the workers as chunks in Ray's object store (each at most
:data:`CHUNK_BYTES`), and every result comes back the same way. A worker keeps what it needs in a
private temporary folder of its own node, removed when the job releases it (and, for a worker
that was killed, by the next worker started on that node).

Usage statistics are switched off before Ray is imported (``RAY_USAGE_STATS_ENABLED=0``): a
cluster job talks only to the cluster it was given.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceveil.errors import ClusterError, ConfigError, FaceveilError

if TYPE_CHECKING:
    from faceveil.detection.base import Detector

#: The largest piece of a file put into the object store at once.
CHUNK_BYTES = 8 * 1024 * 1024
#: Prefix of a worker's private folder (``<prefix><pid>-<random>``).
WORK_PREFIX = "faceveil-cluster-"

#: Builds the detector of a worker (tests pass a fake); None: the one the settings name.
DetectorFactory = Callable[[], "Detector"]


@dataclass(frozen=True)
class ClusterConfig:
    """Where and how a job runs on a Ray cluster.

    Attributes:
        address: ``auto`` (the cluster started on this machine with ``ray start``) or a head
            node's ``HOST:PORT``.
        workers: actors started for a job (each loads the models once); None: one per CPU the
            cluster has (never more than there are segments or files).
        cpus_per_worker: CPUs each actor reserves.
        segment_seconds: a video is cut on keyframes into segments of about this length.
        retries: a segment (or photo) whose worker died is run again this many times.
        chunk_bytes: files travel through the object store in pieces of at most this size.
    """

    address: str = "auto"
    workers: int | None = None
    cpus_per_worker: float = 1.0
    segment_seconds: float = 60.0
    retries: int = 3
    chunk_bytes: int = CHUNK_BYTES

    def __post_init__(self) -> None:
        if not self.address or any(c.isspace() for c in self.address):
            raise ConfigError(f"cluster address must be 'auto' or HOST:PORT, got {self.address!r}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        if not self.cpus_per_worker > 0:
            raise ConfigError(f"cpus_per_worker must be > 0, got {self.cpus_per_worker}")
        if not self.segment_seconds > 0:
            raise ConfigError(f"segment_seconds must be > 0, got {self.segment_seconds}")
        if self.retries < 0:
            raise ConfigError(f"retries must be >= 0, got {self.retries}")
        if self.chunk_bytes < 64 * 1024:
            raise ConfigError(f"chunk_bytes must be at least 65536, got {self.chunk_bytes}")


def ray_module() -> Any:
    """``import ray``, with usage statistics off; a clear error when the extra is missing."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ClusterError(
            "Ray is not installed here; install it with: pip install 'faceveil[ray]'"
        ) from None
    return ray


def connect(address: str) -> Any:
    """Connect this process to the cluster at ``address`` (once); returns the ``ray`` module."""
    ray = ray_module()
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
    return ray


def cluster_cpus(ray: Any) -> int:
    """The CPUs the connected cluster has."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def system_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's errors that mean "the worker or its node died": the work is run again."""
    names = (
        "RayActorError",
        "WorkerCrashedError",
        "ObjectLostError",
        "OwnerDiedError",
        "ActorUnavailableError",
    )
    found = (getattr(ray.exceptions, name, None) for name in names)
    return tuple(e for e in found if isinstance(e, type))


def unwrap(ray: Any, exc: BaseException) -> BaseException:
    """The faceveil error a worker raised (Ray wraps it), or ``exc`` itself."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, FaceveilError):
            return cause
    return exc


def put_file(ray: Any, path: Path, chunk_bytes: int = CHUNK_BYTES) -> list[Any]:
    """Put ``path`` into the object store in pieces; returns their references, in order."""
    refs = []
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            refs.append(ray.put(chunk))
    return refs


def file_chunks(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    """The pieces of ``path`` (at most ``chunk_bytes`` each)."""
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            yield chunk


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_folders(root: Path | None = None) -> None:
    """Remove the private folders of workers on this node that died without cleaning up."""
    root = root or Path(tempfile.gettempdir())
    for folder in root.glob(f"{WORK_PREFIX}*"):
        pid = folder.name[len(WORK_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


class WorkerBase:
    """What every faceveil actor has: a private folder and the inputs of its jobs in it."""

    def __init__(self) -> None:
        remove_stale_folders()
        self.folder = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-"))
        self._inputs: dict[str, Path] = {}

    def where(self) -> tuple[str, int]:
        """(the Ray node id this actor runs on, its process id)."""
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()

    def local_input(self, job: str, chunks: list[Any], suffix: str) -> Path:
        """The job's input as a file of this node (fetched from the object store once)."""
        import ray

        if job not in self._inputs:
            path = self.folder / f"{len(self._inputs)}-input{suffix}"
            with open(path, "wb") as handle:
                for ref in chunks:
                    handle.write(ray.get(ref))
            self._inputs[job] = path
        return self._inputs[job]

    def release(self, job: str) -> None:
        """Forget the job: its input and its results leave this node's disk."""
        self._inputs.pop(job, None)
        for path in self.folder.glob("*"):
            if path.is_file():
                path.unlink()

    def close(self) -> None:
        """Remove the private folder (the actor is about to be stopped)."""
        shutil.rmtree(self.folder, ignore_errors=True)
