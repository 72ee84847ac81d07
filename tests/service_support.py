"""Helpers of the web service tests: synthetic media, fake runners, and a real server process."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
from PIL import Image

from faceveil.core.detections import Detections
from faceveil.detection.fake import FakeDetector, boxes
from faceveil.service.jobs.store import JobRecord
from faceveil.service.jobs.worker import JobProgress
from faceveil.service.settings import ServiceSettings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

#: The face box the fake detectors report on every synthetic photo.
FACE = (40.0, 30.0, 88.0, 94.0)


def photo_bytes(fmt: str = "PNG", size: tuple[int, int] = (160, 120), seed: int = 0) -> bytes:
    """A noisy synthetic photo (noise shows whether a region was blurred)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Pixels of an encoded image."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def fake_detectors(name: str) -> FakeDetector:
    """Every preset finds one face at `FACE`."""
    return FakeDetector(boxes(FACE))


def no_faces(name: str) -> FakeDetector:
    """Every preset finds nothing."""
    return FakeDetector(Detections.empty())


def make_video(path: Path, frames: int = 12, size: tuple[int, int] = (96, 64), rate: int = 12) -> Path:
    """A small H.264 MP4 with changing frames."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(rate))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(frames):
            rgb = np.full((size[1], size[0], 3), (i * 20) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


class FakeRunner:
    """Stands in for the video pipeline: reports progress, copies the input, honours cancel.

    Args:
        frames: frames it pretends to process.
        delay_s: time per frame (so that tests can cancel a running job).
        error: raised instead of finishing.
    """

    def __init__(self, frames: int = 5, delay_s: float = 0.0, error: Exception | None = None) -> None:
        self.frames = frames
        self.delay_s = delay_s
        self.error = error
        self.started = threading.Event()
        self.calls: list[str] = []

    def __call__(
        self, job: JobRecord, source: str, target: str, progress: JobProgress, cancel: threading.Event
    ) -> tuple[int, int]:
        from faceveil.errors import JobCancelledError

        self.calls.append(job.id)
        self.started.set()
        for i in range(self.frames):
            if cancel.is_set():
                raise JobCancelledError("cancelled")
            time.sleep(self.delay_s)
            progress(i + 1, self.frames, i)
        if self.error is not None:
            raise self.error
        Path(target).write_bytes(Path(source).read_bytes())
        return self.frames, 1


def settings(tmp_path: Path, **values: Any) -> ServiceSettings:
    base: dict[str, Any] = {"data_dir": tmp_path / "data", "allowed_hosts": ("testserver",)}
    return ServiceSettings(**{**base, **values})


def error_code(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    return str(body["error"]["code"])


def create_job(client: TestClient, video: bytes, **params: Any) -> dict[str, Any]:
    response = client.post("/api/v1/jobs", content=video, params={"filename": "talk.mp4", **params})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_status(client: TestClient, job_id: str, *statuses: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
        return job if job["status"] in statuses else None

    result: dict[str, Any] = wait_for(done, what=f"job status {statuses}")
    return result


def wait_for(predicate: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A real ``faceveil serve`` process on loopback."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        log: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.log = log
        self.port = free_port()
        self.env = {**os.environ, "FACEVEIL_DATA_DIR": str(data_dir), **(env or {})}
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        """Start and wait until ``/api/v1/health`` answers."""
        command = [sys.executable, "-m", "faceveil", "serve", "--port", str(self.port), *self.args]
        output = subprocess.PIPE if self.log is None else open(self.log, "ab")  # noqa: SIM115
        try:
            self.process = subprocess.Popen(command, env=self.env, stdout=output, stderr=subprocess.STDOUT)
        finally:
            if self.log is not None:
                output.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                printed = self.process.stdout.read().decode() if self.process.stdout else ""
                raise AssertionError(f"the server exited with {self.process.returncode}: {printed}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("the server did not start in time")

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (a crash)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client for this server."""
        return httpx.Client(base_url=self.url, timeout=60.0, **kwargs)


@contextmanager
def running(server: Server) -> Iterator[Server]:
    """Start ``server`` and stop it afterwards, whatever happens."""
    try:
        yield server.start()
    finally:
        server.stop()
