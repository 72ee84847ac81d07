"""The web service as a real process on loopback: uploads, jobs, downloads, crashes, access control."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from service_support import Server, free_port, photo_bytes, running, wait_for

SECRET = "a long enough secret for tests"


def job_state(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_final(client: httpx.Client, job_id: str, timeout: float = 240.0) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        job = job_state(client, job_id)
        return job if job["status"] in ("done", "failed", "cancelled") else None

    result: dict[str, Any] = wait_for(final, timeout=timeout, what="the job to end")
    return result


def frame_count(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, stream.codec_context.width, stream.codec_context.height


def test_video_job_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "videos" / "face_recognition_short_hamilton_clip.mp4"
    with running(Server(tmp_path / "data")) as server, server.client() as client:
        with source.open("rb") as fh:
            response = client.post(
                "/api/v1/jobs", params={"filename": source.name, "format": "mp4"}, content=fh
            )
        assert response.status_code == 201, response.text
        job = wait_final(client, response.json()["id"])
        assert job["status"] == "done", job
        assert job["progress"]["frames_done"] == job["progress"]["frames_total"] > 0
        assert job["progress"]["faces"] > 0
        result = client.get(job["result_url"])
        assert result.status_code == 200
        out = tmp_path / "result.mp4"
        out.write_bytes(result.content)
    assert frame_count(out) == frame_count(source)
    with av.open(str(out)) as container:
        assert not {
            k: v
            for k, v in container.metadata.items()
            if k not in ("major_brand", "minor_version", "compatible_brands")
        }
        assert len(container.streams.audio) == 1
    audit = [json.loads(line) for line in (tmp_path / "data" / "audit.jsonl").read_text().splitlines()]
    assert [e["action"] for e in audit] == ["job_create", "job_done", "job_download"]
    assert not (tmp_path / "data" / "jobs" / job["id"] / "input").exists()  # original gone with the job


def test_killed_mid_job_the_job_completes_after_restart(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "videos" / "facenet_pytorch_crowd_walk.mp4"
    server = Server(tmp_path / "data")
    with running(server), server.client() as client:
        response = client.post("/api/v1/jobs", params={"filename": source.name}, content=source.read_bytes())
        job_id = response.json()["id"]
        wait_for(
            lambda: job_state(client, job_id)["progress"]["frames_done"] > 0, timeout=120, what="progress"
        )
        server.kill()  # a crash: no clean-up at all
    folder = tmp_path / "data" / "jobs" / job_id
    assert any("faceveil-tmp" in p.name for p in folder.iterdir())  # the crash left a partial output
    restarted = Server(tmp_path / "data")
    with running(restarted), restarted.client() as client:
        job = wait_final(client, job_id)
        assert job["status"] == "done" and job["attempts"] == 2, job
        assert client.get(job["result_url"]).status_code == 200
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "output.mp4"]  # no partial left


def test_refuses_to_listen_on_the_network_without_a_secret(tmp_path: Path) -> None:
    env = {**os.environ, "FACEVEIL_DATA_DIR": str(tmp_path)}
    env.pop("FACEVEIL_ACCESS_SECRET", None)
    host = "0.0.0.0"
    command = [sys.executable, "-m", "faceveil", "serve", "--host", host, "--port", str(free_port())]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "without an access secret" in done.stderr


def test_generated_secret_is_printed_once_and_works(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", args=("--host", "0.0.0.0", "--generate-secret"))
    server.env.pop("FACEVEIL_ACCESS_SECRET", None)
    with running(server):
        assert server.process is not None and server.process.stdout is not None
        line = server.process.stdout.readline().decode()
        assert "access secret" in line
        secret = line.rsplit(": ", 1)[1].strip()
        with server.client() as client:
            assert client.get("/api/v1/jobs").status_code == 401
            assert (
                client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
            )


def test_access_control_on_a_real_server(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", env={"FACEVEIL_ACCESS_SECRET": SECRET})
    with running(server), server.client() as client:
        assert client.get("/api/v1/health").json()["auth_required"] is True
        assert client.post("/api/v1/photos/detect", content=photo_bytes()).status_code == 401
        login = client.post("/api/v1/auth/login", json={"secret": SECRET})
        assert login.status_code == 200
        csrf = login.json()["csrf_token"]
        assert client.get("/photos").status_code == 200
        headers = {"X-CSRF-Token": csrf}
        assert client.post("/api/v1/photos/detect", content=photo_bytes(), headers=headers).status_code == 200
        assert client.post("/api/v1/photos/detect", content=photo_bytes()).status_code == 403
        with httpx.Client(base_url=server.url) as stranger:
            assert stranger.get("/api/v1/jobs").status_code == 401


def _raw_request(port: int, head: bytes, body_chunks: int, chunked: bool) -> tuple[int, int]:
    """Send a large upload slowly; returns (status, bytes sent before the answer came)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        sock.settimeout(0.05)
        answer = b""
        for _ in range(body_chunks):
            chunk = b"\0" * 65536
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer = sock.recv(4096)
                if answer:
                    break
            except TimeoutError:
                continue
        sock.settimeout(30)
        while b"\r\n" not in answer:
            more = sock.recv(4096)
            if not more:
                break
            answer += more
    return int(answer.split(b" ")[1]), sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_too_large_upload_is_refused_before_it_is_read(tmp_path: Path, chunked: bool) -> None:
    server = Server(tmp_path / "data", env={"FACEVEIL_MAX_UPLOAD_BYTES": str(1024 * 1024)})
    with running(server):
        length = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % (64 * 1024 * 1024)
        head = b"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n\r\n" % length
        status, sent = _raw_request(server.port, head, body_chunks=1024, chunked=chunked)
        assert status == 413
        assert sent < 8 * 1024 * 1024  # answered long before the 64 MiB body was sent
        time.sleep(0.2)
        assert list((tmp_path / "data" / "jobs").iterdir()) == []
