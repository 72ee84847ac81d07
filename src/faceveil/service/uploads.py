"""Uploads streamed to disk with a byte counter, a size limit and a disk quota.

The body is never held in memory whole: each chunk is counted, hashed and written as it comes,
and the upload is refused (413, or 507 when the disk quota is reached) the moment a limit is
passed. The client's file name is never used as a path: files live under the job's random id.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from faceveil.service.errors import ApiError

INPUT_NAME = "input"
#: The job's manifest, beside its result.
MANIFEST_NAME = "manifest.json"
#: The regions document of a job in review (read and edited by the reviewer).
REGIONS_NAME = "regions.jsonl"
_CHECK_EVERY = 32 * 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """A finished upload: where it is, how big it is, and its SHA-256 (for the audit log)."""

    path: Path
    size: int
    sha256: str


class JobFiles:
    """The folder of each job under ``<data_dir>/jobs/<id>/`` and the quota over all of them."""

    def __init__(self, data_dir: Path, quota_bytes: int, min_free_bytes: int) -> None:
        self.root = data_dir / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.quota_bytes = quota_bytes
        self.min_free_bytes = min_free_bytes

    def folder(self, job_id: str) -> Path:
        """The job's folder (``job_id`` is always a server-made hex id)."""
        if not job_id.isalnum():
            raise ApiError(404, "not_found", "no such job")
        return self.root / job_id

    def input(self, job_id: str) -> Path:
        """The uploaded original."""
        return self.folder(job_id) / INPUT_NAME

    def output(self, job_id: str, ext: str) -> Path:
        """The anonymized result."""
        return self.folder(job_id) / f"output{ext}"

    def manifest(self, job_id: str) -> Path:
        """The result's manifest (hashes, settings, counts; signed when the server has a key)."""
        return self.folder(job_id) / MANIFEST_NAME

    def regions(self, job_id: str) -> Path:
        """The regions document of a review job."""
        return self.folder(job_id) / REGIONS_NAME

    def remove(self, job_id: str) -> None:
        """Delete the job's folder and everything in it."""
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def remove_input(self, job_id: str) -> None:
        """Delete the uploaded original only."""
        with suppress(FileNotFoundError):
            self.input(job_id).unlink()

    def clean_partial(self, job_id: str) -> None:
        """Delete what an interrupted run left (partial uploads, temporary outputs)."""
        folder = self.folder(job_id)
        for path in folder.glob("*") if folder.is_dir() else ():
            if path.name not in (INPUT_NAME, REGIONS_NAME):
                with suppress(FileNotFoundError):
                    path.unlink()

    def orphans(self, known: set[str]) -> list[str]:
        """Folders with no job row (an upload cut short by a crash)."""
        return [p.name for p in self.root.iterdir() if p.is_dir() and p.name not in known]

    def usage(self) -> int:
        """Bytes used by all job folders and the live streams' recordings (one quota for both)."""
        total = 0
        walks = [os.walk(self.root), os.walk(self.root.parent / "streams")]
        for dirpath, _, names in (entry for walk in walks for entry in walk):
            for name in names:
                with suppress(OSError):
                    total += (Path(dirpath) / name).lstat().st_size
        return total

    def check_room(self, incoming: int, used: int | None = None) -> None:
        """Refuse (507) when ``incoming`` more bytes would pass the quota or fill the disk.

        ``used`` is what the job folders hold already (measured when None).
        """
        if (self.usage() if used is None else used) + incoming > self.quota_bytes:
            raise ApiError(
                507, "quota_exceeded", "the server's storage quota is full; delete old jobs or try later"
            )
        if shutil.disk_usage(self.root).free - incoming < self.min_free_bytes:
            raise ApiError(507, "disk_full", "the server's disk is nearly full; try again later")

    async def receive(
        self, job_id: str, body: AsyncIterator[bytes], declared: int | None, limit: int
    ) -> Upload:
        """Stream ``body`` into the job's input file; refuse past ``limit`` or the quota.

        Raises:
            ApiError: 413 (too large), 507 (quota or disk), 422 (empty body).
        """
        if declared is not None and declared > limit:
            raise _too_large(limit)
        used = self.usage()
        self.check_room(declared or 0, used)
        folder = self.folder(job_id)
        folder.mkdir(parents=True, exist_ok=False)
        part = folder / f"{INPUT_NAME}.part"
        digest = hashlib.sha256()
        size = checked = 0
        try:
            with open(part, "wb") as fh:
                async for chunk in body:
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit)
                    if size - checked >= _CHECK_EVERY:  # still room on the disk and in the quota?
                        checked = size
                        self.check_room(0, used + size)
                    digest.update(chunk)
                    fh.write(chunk)
            if size == 0:
                raise ApiError(422, "empty_input", "the upload is empty")
            part.replace(folder / INPUT_NAME)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return Upload(folder / INPUT_NAME, size, digest.hexdigest())


async def read_limited(body: AsyncIterator[bytes], declared: int | None, limit: int) -> bytes:
    """Read a small body (a photo) into memory, refusing it (413) past ``limit`` bytes."""
    if declared is not None and declared > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in body:
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
    if size == 0:
        raise ApiError(422, "empty_input", "the upload is empty")
    return b"".join(parts)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the upload is larger than this server's limit of {_size(limit)}")


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} bytes"
