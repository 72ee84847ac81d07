"""``/api/v1/streams`` against real RTMP servers (FFmpeg on loopback), with a fake face detector.

The web app runs in-process (its real lifespan: streams start again after a restart); FFmpeg
publishes a test picture with sound. Checked: the allow-list, the anonymized preview, sound in
the recordings in sync, restart, retention and quota, retries of a dead source, and that no
answer, audit line or log line carries a source's password.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from av_support import publish, sync
from faceveil.service.app import create_app
from faceveil.service.streams.recordings import list_cameras
from service_support import FACE, error_code, fake_detectors, free_port, settings, wait_for

pytestmark = pytest.mark.quality
PASSWORD = "s3cret-Pa55"
MAGENTA = {"mode": "solid", "color": "ff00ff", "shape": "box"}


def client_for(tmp_path: Path, **values: Any) -> TestClient:
    base = {"stream_allowlist": ("127.0.0.1",), "sweep_interval_s": 3600.0}
    return TestClient(create_app(settings(tmp_path, **{**base, **values}), detector_factory=fake_detectors))


def add(client: TestClient, source: str, start: bool = True, **options: Any) -> dict[str, Any]:
    body = {"name": "door", "source": source, "segment_s": 10, **MAGENTA, **options}
    response = client.post("/api/v1/streams", json=body, params={"start": start})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def stream(client: TestClient, stream_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/streams/{stream_id}").json()
    return body


def test_sources_are_checked_private_ones_only_through_the_allow_list(tmp_path: Path) -> None:
    with client_for(tmp_path, stream_allowlist=()) as client:
        for source, code in (
            ("rtsp://127.0.0.1:8554/cam", "unsafe_source"),  # loopback: not allow-listed
            ("rtsp://192.168.1.20/cam", "unsafe_source"),
            ("file:///etc/passwd", "unsafe_source"),
            ("/dev/video7", "invalid_config"),  # not a camera this server lists
            ("srt://93.184.216.34:9000", "invalid_config"),
        ):
            response = client.post("/api/v1/streams", json={"name": "x", "source": source})
            assert response.status_code == 422, (source, response.text)
            assert error_code(response) == code, source
        response = client.post(
            "/api/v1/streams",
            json={"name": "x", "source": "rtsp://93.184.216.34/cam", "push": "rtmp://10.0.0.1/a/b"},
        )
        assert error_code(response) == "unsafe_source"
        response = client.post(
            "/api/v1/streams",
            json={"name": "x", "source": "rtsp://93.184.216.34/cam", "record": False, "preview": False},
        )
        assert response.status_code == 422 and "at least one of" in response.json()["error"]["message"]
        assert client.get("/streams").status_code == 200
    fake_dev = tmp_path / "dev"
    fake_dev.mkdir()
    (fake_dev / "video0").write_bytes(b"")  # a plain file named like a camera is not one
    assert list_cameras(fake_dev) == []


def test_stream_previews_records_with_sound_and_starts_again_after_a_restart(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    url = f"rtmp://127.0.0.1:{free_port()}/live/door"
    publish(procs, url, seconds=30.0, lead=0.5)
    with client_for(tmp_path) as client:
        created = add(client, url)
        sid = created["id"]
        assert created["desired"] == "running"
        running = wait_for(lambda: (s := stream(client, sid))["state"] == "running" and s, 30, "running")
        assert running["preview_url"] == f"/api/v1/streams/{sid}/preview.jpg"
        wait_for(lambda: stream(client, sid)["figures"]["frames_out"] > 50, 30, "frames")
        preview = client.get(running["preview_url"])
        assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
        rgb = np.asarray(Image.open(io.BytesIO(preview.content)).convert("RGB"))
        x1, y1, x2, y2 = (int(v) for v in FACE)
        face = rgb[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].astype(int)
        assert (np.abs(face - [255, 0, 255]).max(axis=2) < 60).mean() > 0.95  # only anonymized frames
        figures = wait_for(lambda: (f := stream(client, sid)["figures"])["fps"] and f, 10, "fps")
        assert figures["faces"] == 1 and figures["audio_s"] > 1 and figures["latency_p95_ms"] is not None
        listing = client.get("/api/v1/streams").json()
        assert listing["server"]["running"] == 1 and listing["server"]["cpus"] >= 1
        time.sleep(3)
    # the server stopped: the recording was finished; the stream was running, so it starts again
    publisher = publish(procs, url, seconds=30.0, lead=0.5)
    with client_for(tmp_path) as client:
        again = wait_for(lambda: (s := stream(client, sid))["state"] == "running" and s, 30, "restarted")
        assert again["desired"] == "running"
        wait_for(lambda: stream(client, sid)["figures"]["frames_out"] > 75, 30, "frames")
        stopped = client.post(f"/api/v1/streams/{sid}/stop").json()
        assert stopped["state"] == "stopped" and stopped["desired"] == "stopped"
        recordings = client.get(f"/api/v1/streams/{sid}/recordings").json()["recordings"]
        assert len(recordings) >= 2 and not any(r["recording"] for r in recordings)
        for number, recording in enumerate(recordings):
            response = client.get(recording["url"])
            assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
            assert "attachment" in response.headers["content-disposition"]
            saved = tmp_path / f"rec{number}.mp4"
            saved.write_bytes(response.content)
            pairs, sound_s, video_s = sync(saved, rate=25.0)
            assert sound_s >= video_s - 0.1, (recording["name"], sound_s, video_s)
            assert all(abs(offset) <= 0.040 for _, offset in pairs), pairs
        assert client.get(recordings[0]["play_url"]).headers["content-disposition"].startswith("inline")
        assert client.get(f"/api/v1/streams/{sid}/preview.jpg").status_code == 204
    publisher.kill()
    with client_for(tmp_path) as client:  # stopped streams stay stopped
        assert stream(client, sid)["state"] == "stopped"
        assert client.delete(f"/api/v1/streams/{sid}").status_code == 204
        assert client.get(f"/api/v1/streams/{sid}").status_code == 404
        assert not (tmp_path / "data" / "streams" / sid).exists()


def test_a_dead_source_retries_and_no_password_ever_leaves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = f"rtsp://admin:{PASSWORD}@127.0.0.1:{free_port()}/cam1"
    bodies: list[str] = []
    with client_for(tmp_path) as client:
        created = client.post(
            "/api/v1/streams", params={"start": True}, json={"name": "gone", "source": dead}
        )
        bodies.append(created.text)
        sid = created.json()["id"]
        assert created.json()["source"] == f"rtsp://admin:***@127.0.0.1:{dead.rsplit(':', 1)[1]}"
        seen: list[float] = []

        def retrying() -> bool:
            body = client.get(f"/api/v1/streams/{sid}")
            bodies.append(body.text)
            current = body.json()
            if current["retry_in_s"] is not None and current["retry_in_s"] not in seen:
                seen.append(current["retry_in_s"])
            return current["state"] == "retrying" and len(seen) >= 3

        wait_for(retrying, 30, "retries")
        assert seen == sorted(seen) and seen[-1] >= 2 * seen[0]  # backoff: each wait longer
        current = client.get(f"/api/v1/streams/{sid}").json()
        assert "cannot open" in current["error"] and "***" in current["error"]
        # edit with the shown (redacted) URL: the stored password is kept, and still never shown
        edited = client.put(f"/api/v1/streams/{sid}", json={"name": "renamed", "source": current["source"]})
        bodies.append(edited.text)
        assert edited.status_code == 200 and edited.json()["name"] == "renamed"
        record = client.app.state.faceveil.streams.store.get(sid)  # type: ignore[attr-defined]
        assert PASSWORD in record.source
        other = current["source"].replace("127.0.0.1", "127.0.0.2")
        refused = client.put(f"/api/v1/streams/{sid}", json={"name": "x", "source": other})
        assert refused.status_code == 422 and "password again" in refused.text
        bodies += [client.get("/api/v1/streams").text, refused.text, client.get("/api/openapi.json").text]
        bodies.append(client.post(f"/api/v1/streams/{sid}/stop").text)
    audit = (tmp_path / "data" / "audit.jsonl").read_text()
    assert "stream_create" in audit and "admin:***@" in audit
    for text in [*bodies, audit, caplog.text]:
        assert PASSWORD not in text


def test_recordings_follow_retention_and_quota(tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    url = f"rtmp://127.0.0.1:{free_port()}/live/q"
    publish(procs, url, seconds=40.0, lead=0.5)
    with client_for(tmp_path, disk_quota_bytes=400_000, result_ttl_s=60.0) as client:
        sid = add(client, url)["id"]
        folder = tmp_path / "data" / "streams" / sid
        folder.mkdir(parents=True, exist_ok=True)
        old = folder / "20200101-000000000-00000.mp4"
        old.write_bytes(b"\0" * 1000)
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        manager = client.app.state.faceveil.streams  # type: ignore[attr-defined]
        assert manager.sweep() == [old.name] and not old.exists()
        # the recording grows until the quota (shared with the jobs) is reached, then stops
        failed = wait_for(lambda: (s := stream(client, sid))["state"] == "failed" and s, 60, "quota stop")
        assert "quota" in failed["error"]
        recordings = client.get(f"/api/v1/streams/{sid}/recordings").json()["recordings"]
        assert recordings and not any(r["recording"] for r in recordings)
        assert recordings[0]["expires_at"] == pytest.approx(recordings[0]["modified_at"] + 60.0)
        assert manager.sweep(now=time.time() + 61) == [r["name"] for r in recordings]
        assert client.get(f"/api/v1/streams/{sid}/recordings").json()["recordings"] == []
        upload = client.post("/api/v1/jobs", content=b"\0" * 10, params={"filename": "a.mp4"})
        assert upload.status_code in (201, 415, 422, 507)


def test_a_push_carries_the_sound_and_its_stream_key_is_not_shown(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    from av_support import receive

    source = f"rtmp://127.0.0.1:{free_port()}/live/cam"
    key = "k3y-0f-the-relay"
    target = f"rtmp://127.0.0.1:{free_port()}/live/{key}"
    pushed = tmp_path / "pushed.flv"
    receiver = receive(procs, target, pushed)
    publish(procs, source, seconds=8.0, lead=0.5)
    with client_for(tmp_path) as client:
        created = add(client, source, record=False, preview=False, push=target)
        assert created["options"]["push"] == target.rsplit("/", 1)[0] + "/***"
        sid = created["id"]
        wait_for(lambda: stream(client, sid)["figures"]["frames_out"] > 100, 30, "frames pushed")
        listing = client.get("/api/v1/streams").text
        assert key not in listing
        edited = client.put(
            f"/api/v1/streams/{sid}",
            json={
                "name": "relay",
                "source": source,
                "record": False,
                "preview": False,
                "push": created["options"]["push"],
            },
        )
        assert edited.status_code == 200 and key not in edited.text
        assert key in client.app.state.faceveil.streams.store.get(sid).options["push"]  # type: ignore[attr-defined]
        client.post(f"/api/v1/streams/{sid}/stop")
    receiver.wait(30)
    pairs, sound_s, video_s = sync(pushed, rate=25.0)
    assert pairs and all(abs(offset) <= 0.040 for _, offset in pairs), pairs
    assert sound_s >= video_s - 0.1


def test_gpu_load_comes_from_nvidia_smi_where_there_is_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceveil.service.streams.manager import gpu_percent

    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu_percent() is None  # no GPU tool: no figure
    tool = tmp_path / "nvidia-smi"
    tool.write_text("#!/bin/sh\nprintf '12\\n57\\n'\n")
    tool.chmod(0o755)
    assert gpu_percent() == 57.0
