"""The recordings of server-side streams (``<data_dir>/streams/<id>/``) and the server's cameras.

Recordings follow the job results' rules: deleted ``result_ttl_s`` after they were last
written (by the retention sweep), and counted in the disk quota with the jobs' files.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

#: A recorded segment's name: ``<UTC start>-<segment>.mp4`` (server-made, never from a client).
RECORDING_NAME = re.compile(r"^\d{8}-\d{9}-\d{5}\.mp4$")
_CAMERA = re.compile(r"^video\d{1,2}$")


@dataclass(frozen=True)
class Recording:
    """A recorded file."""

    path: Path
    size: int
    modified_at: float


class Recordings:
    """The recordings folders of every stream."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, stream_id: str) -> Path:
        """The stream's folder (``stream_id`` is a server-made hex id)."""
        if not stream_id.isalnum():
            raise ValueError("not a stream id")
        return self.root / stream_id

    def new_base(self, stream_id: str) -> Path:
        """The base name of a new recording run (segments add ``-00000`` and so on)."""
        now = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}"
        return self.folder(stream_id) / f"{stamp}.mp4"

    def of(self, stream_id: str) -> list[Recording]:
        """The stream's recordings, oldest first."""
        folder = self.folder(stream_id)
        found = []
        for path in sorted(folder.iterdir()) if folder.is_dir() else ():
            if not RECORDING_NAME.match(path.name):
                continue
            with suppress(OSError):
                info = path.stat()
                found.append(Recording(path, info.st_size, info.st_mtime))
        return found

    def path(self, stream_id: str, name: str) -> Path | None:
        """The recording ``name`` of the stream, if it exists (names are checked, never joined raw)."""
        if not RECORDING_NAME.match(name):
            return None
        path = self.folder(stream_id) / name
        return path if path.is_file() else None

    def remove_stream(self, stream_id: str) -> None:
        """Delete the stream's folder and its recordings."""
        shutil.rmtree(self.folder(stream_id), ignore_errors=True)

    def expired(self, ttl_s: float, busy: Iterable[Path], now: float | None = None) -> list[tuple[str, Path]]:
        """``(stream id, path)`` of the finished recordings older than ``ttl_s`` (``busy``: files
        being written, never expired)."""
        now = time.time() if now is None else now
        skip = {p.resolve() for p in busy}
        out = []
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for recording in self.of(folder.name):
                if recording.modified_at + ttl_s <= now and recording.path.resolve() not in skip:
                    out.append((folder.name, recording.path))
        return out


def list_cameras(dev: Path = Path("/dev")) -> list[str]:
    """The V4L2 devices (``/dev/videoN``) this process can open for reading and writing."""
    found = []
    for path in sorted(dev.glob("video*")) if dev.is_dir() else ():
        if not _CAMERA.match(path.name):
            continue
        try:
            if not stat.S_ISCHR(path.stat().st_mode):
                continue
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        except OSError:
            continue
        os.close(fd)
        found.append(str(path))
    return found


def camera_name(device: str) -> str:
    """The driver's name of a camera (sysfs), or its device path."""
    name_file = Path("/sys/class/video4linux") / Path(device).name / "name"
    with suppress(OSError):
        return name_file.read_text(encoding="utf-8").strip() or device
    return device
