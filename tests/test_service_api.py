"""The REST API in process (TestClient), with fake detectors and a fake video runner."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from faceveil.pipeline.video import DEFAULT_VIDEO_PRESET
from faceveil.service.app import CONTENT_SECURITY_POLICY, create_app
from faceveil.service.jobs.store import JobRecord, JobStore
from faceveil.service.schemas import VideoOptions
from faceveil.service.settings import ServiceSettings
from service_support import (
    FACE,
    FakeRunner,
    create_job,
    decode,
    error_code,
    fake_detectors,
    make_video,
    no_faces,
    photo_bytes,
    settings,
    wait_status,
)

SECRET = "correct horse battery staple"


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def client(tmp_path: Path, runner: FakeRunner) -> Iterator[TestClient]:
    app = create_app(settings(tmp_path), runner=runner, detector_factory=fake_detectors)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def video(tmp_path: Path) -> bytes:
    return make_video(tmp_path / "clip.mp4").read_bytes()


# ------------------------------------------------------------------------------------------------
# photos


def test_health(client: TestClient) -> None:
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok" and body["auth_required"] is False and body["queued"] == 0


def test_anonymize_photo_hides_the_face_and_nothing_else(client: TestClient) -> None:
    original = photo_bytes("PNG")
    response = client.post(
        "/api/v1/photos/anonymize", content=original, params={"mode": "solid", "shape": "box"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-faceveil-faces"] == "1"
    before, after = decode(original), decode(response.content)
    x1, y1, x2, y2 = (int(v) for v in FACE)
    assert (after[y1 + 5 : y2 - 5, x1 + 5 : x2 - 5] == 0).all()  # solid black inside the face
    assert np.array_equal(before[:, 130:], after[:, 130:])  # far from the face: untouched


def test_anonymize_photo_output_format_and_no_metadata(client: TestClient) -> None:
    from PIL import Image

    jpeg = photo_bytes("JPEG")
    same = client.post("/api/v1/photos/anonymize", content=jpeg)
    assert same.headers["content-type"] == "image/jpeg"
    webp = client.post("/api/v1/photos/anonymize", content=jpeg, params={"format": "webp"})
    assert webp.headers["content-type"] == "image/webp"
    import io

    with Image.open(io.BytesIO(same.content)) as img:
        assert not img.getexif() and "icc_profile" not in img.info


def test_detect_photo(client: TestClient) -> None:
    response = client.post("/api/v1/photos/detect", content=photo_bytes(), params={"preset": "fast"})
    assert response.status_code == 200
    body = response.json()
    assert (body["width"], body["height"]) == (160, 120)
    assert body["faces"][0]["box"] == list(FACE)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"this is not an image", 415, "unsupported_input"),
        (b"", 422, "empty_input"),
        (photo_bytes("PNG")[:200], 422, "corrupt_input"),
    ],
)
def test_bad_photos_get_clear_errors(client: TestClient, body: bytes, status: int, code: str) -> None:
    response = client.post("/api/v1/photos/anonymize", content=body)
    assert response.status_code == status, response.text
    assert error_code(response) == code


def test_photo_over_the_byte_limit_is_refused(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, max_photo_bytes=1000), detector_factory=fake_detectors)
    with TestClient(app) as client:
        response = client.post("/api/v1/photos/anonymize", content=photo_bytes())
    assert response.status_code == 413 and error_code(response) == "too_large"


def test_photo_over_the_pixel_limit_is_refused(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, max_photo_pixels=1000), detector_factory=fake_detectors)
    with TestClient(app) as client:
        response = client.post("/api/v1/photos/anonymize", content=photo_bytes())
    assert response.status_code == 413 and error_code(response) == "too_large"


def test_bad_options_are_422_json(client: TestClient) -> None:
    response = client.post("/api/v1/photos/anonymize", content=photo_bytes(), params={"mode": "sparkle"})
    assert response.status_code == 422 and error_code(response) == "invalid_request"
    assert "mode" in response.json()["error"]["message"]


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    assert error_code(client.get("/api/v1/nothing")) == "not_found"
    assert error_code(client.put("/api/v1/health")) == "method_not_allowed"


# ------------------------------------------------------------------------------------------------
# video jobs


def test_job_lifecycle(client: TestClient, video: bytes, tmp_path: Path) -> None:
    job = create_job(client, video, format="webm", mode="pixelate")
    assert job["status"] == "queued" and job["input_bytes"] == len(video)
    done = wait_status(client, job["id"], "done")
    assert done["progress"]["frames_done"] == 5 and done["progress"]["tracks"] == 1
    assert done["result_url"] == f"/api/v1/jobs/{job['id']}/result"
    result = client.get(done["result_url"])
    assert result.status_code == 200 and result.content == video
    assert result.headers["content-type"] == "video/webm"
    assert 'attachment; filename="talk.anonymized.webm"' in result.headers["content-disposition"]
    ranged = client.get(done["result_url"], params={"inline": True}, headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100
    # the original is deleted as soon as the job ends; the result stays
    folder = tmp_path / "data" / "jobs" / job["id"]
    assert sorted(p.name for p in folder.iterdir()) == ["output.webm"]
    assert client.get("/api/v1/jobs").json()["jobs"][0]["id"] == job["id"]


def test_job_options_reach_the_pipeline() -> None:
    config = VideoOptions(mode="solid", shape="box", preset="balanced", audio="drop", box=True).job_config()
    assert config.anonymizer.mask.mode == "solid" and config.anonymizer.mask.outline
    assert config.anonymizer.detector.name == "balanced" and config.output.audio == "drop"
    assert VideoOptions().preset == DEFAULT_VIDEO_PRESET  # the API's default is the command line's


def test_events_stream_until_the_job_ends(client: TestClient, video: bytes) -> None:
    job = create_job(client, video)
    with client.stream("GET", f"/api/v1/jobs/{job['id']}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        states = [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]
    assert states[-1]["status"] == "done"


def test_not_a_video_is_refused_and_nothing_kept(client: TestClient, tmp_path: Path) -> None:
    response = client.post("/api/v1/jobs", content=photo_bytes())
    assert response.status_code == 415 and error_code(response) == "unsupported_input"
    assert list((tmp_path / "data" / "jobs").iterdir()) == []


def test_video_limits(tmp_path: Path, video: bytes) -> None:
    app = create_app(settings(tmp_path, max_video_side=64), runner=FakeRunner())
    with TestClient(app) as client:
        response = client.post("/api/v1/jobs", content=video)
        assert response.status_code == 413 and "96x64" in response.json()["error"]["message"]
    app = create_app(settings(tmp_path, max_video_seconds=0.5), runner=FakeRunner())
    with TestClient(app) as client:
        response = client.post("/api/v1/jobs", content=video)
        assert response.status_code == 413 and "lasts" in response.json()["error"]["message"]
    app = create_app(settings(tmp_path, max_upload_bytes=1000), runner=FakeRunner())
    with TestClient(app) as client:
        response = client.post("/api/v1/jobs", content=iter([video[:800], video[800:]]))  # no Content-Length
        assert response.status_code == 413 and error_code(response) == "too_large"
    assert list((tmp_path / "data" / "jobs").iterdir()) == []


def test_disk_quota_refuses_new_uploads(tmp_path: Path, video: bytes) -> None:
    app = create_app(settings(tmp_path, disk_quota_bytes=len(video) + 10), runner=FakeRunner())
    with TestClient(app) as client:
        first = create_job(client, video)
        wait_status(client, first["id"], "done")  # the result now holds the quota
        response = client.post("/api/v1/jobs", content=video)
        assert response.status_code == 507 and error_code(response) == "quota_exceeded"


def test_client_file_name_is_never_a_path(client: TestClient, video: bytes, tmp_path: Path) -> None:
    job = create_job(client, video, filename="../../evil/..\\name<script>.mp4")
    assert job["input_name"] == "name_script_.mp4"
    assert not (tmp_path / "evil").exists()
    assert [p.name for p in (tmp_path / "data" / "jobs").iterdir()] == [job["id"]]


def test_failed_job_reports_the_reason(tmp_path: Path, video: bytes) -> None:
    from faceveil.errors import CorruptInputError

    app = create_app(settings(tmp_path), runner=FakeRunner(error=CorruptInputError("frame 3 is damaged")))
    with TestClient(app) as client:
        job = wait_status(client, create_job(client, video)["id"], "failed")
        assert job["error"] == {"code": "corrupt_input", "message": "frame 3 is damaged"}
        assert job["retryable"] is False  # the original was deleted when the job ended
        response = client.post(f"/api/v1/jobs/{job['id']}/retry")
        assert response.status_code == 409 and "upload the video again" in response.json()["error"]["message"]
        assert client.get(f"/api/v1/jobs/{job['id']}/result").status_code == 409


def test_cancel_retry_delete(tmp_path: Path, video: bytes) -> None:
    runner = FakeRunner(frames=400, delay_s=0.01)
    app = create_app(settings(tmp_path, delete_originals="expiry"), runner=runner)
    with TestClient(app) as client:
        job = create_job(client, video)
        assert runner.started.wait(10)
        cancelled = client.post(f"/api/v1/jobs/{job['id']}/cancel").json()
        assert cancelled["status"] == "cancelled" and cancelled["retryable"] is True
        assert client.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 409
        retried = client.post(f"/api/v1/jobs/{job['id']}/retry").json()
        assert retried["status"] in ("queued", "running")
        assert client.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
        assert client.get(f"/api/v1/jobs/{job['id']}").status_code == 404
        assert not (tmp_path / "data" / "jobs" / job["id"]).exists()


def test_bad_job_id_is_a_clean_error(client: TestClient) -> None:
    assert client.get("/api/v1/jobs/" + "0" * 32).status_code == 404
    response = client.get("/api/v1/jobs/..%2F..%2Fetc")
    assert response.status_code in (404, 422) and response.json()["error"]


# ------------------------------------------------------------------------------------------------
# restarts and retention


def test_restart_requeues_a_running_job_once_then_fails_it(tmp_path: Path) -> None:
    config = settings(tmp_path)
    store = JobStore(config.data_dir / "jobs.sqlite3")
    store.add(JobRecord("a" * 32, "local", "queued", {}, "x.mp4", 1, "0", ".mp4", time.time()))
    assert store.claim() is not None  # attempt 1 ... and the server dies
    assert store.recover(60) == (["a" * 32], [])
    assert store.claim() is not None  # attempt 2 ... and it dies again
    assert store.recover(60) == ([], ["a" * 32])
    job = store.get("a" * 32)
    assert job is not None and job.status == "failed" and job.error_code == "interrupted"
    store.close()


def test_restart_runs_queued_jobs_and_removes_partial_uploads(tmp_path: Path, video: bytes) -> None:
    runner = FakeRunner()
    app = create_app(settings(tmp_path), runner=runner)
    with TestClient(app) as client:
        job = create_job(client, video)
        wait_status(client, job["id"], "done")
    partial = tmp_path / "data" / "jobs" / ("b" * 32)
    partial.mkdir()
    (partial / "input.part").write_bytes(b"half an upload")
    with TestClient(create_app(settings(tmp_path), runner=runner)) as client:
        assert client.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "done"
    assert not partial.exists()


def test_sweeper_deletes_expired_results(tmp_path: Path, video: bytes) -> None:
    app = create_app(settings(tmp_path, result_ttl_s=0.3, sweep_interval_s=0.1), runner=FakeRunner())
    with TestClient(app) as client:
        job = create_job(client, video)
        expired = wait_status(client, job["id"], "expired")
        assert expired["result_url"] is None
        assert not (tmp_path / "data" / "jobs" / job["id"]).exists()
        response = client.get(f"/api/v1/jobs/{job['id']}/result")
        assert response.status_code == 410 and error_code(response) == "expired"


def test_audit_log_records_actions_without_image_data(
    client: TestClient, video: bytes, tmp_path: Path
) -> None:
    client.post("/api/v1/photos/anonymize", content=photo_bytes())
    job = create_job(client, video)
    wait_status(client, job["id"], "done")
    client.get(f"/api/v1/jobs/{job['id']}/result")
    lines = [json.loads(line) for line in (tmp_path / "data" / "audit.jsonl").read_text().splitlines()]
    actions = [entry["action"] for entry in lines]
    assert (
        actions[:2] == ["photo_anonymize", "job_create"]
        and "job_done" in actions
        and "job_download" in actions
    )
    create = lines[1]
    assert create["job_id"] == job["id"] and create["input_bytes"] == len(video)
    assert re.fullmatch("[0-9a-f]{64}", create["input_sha256"]) and create["client"] == "testclient"
    assert all(len(json.dumps(entry)) < 600 for entry in lines)


# ------------------------------------------------------------------------------------------------
# access control and page safety


def test_non_loopback_host_needs_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="without an access secret"):
        ServiceSettings(host="0.0.0.0", data_dir=tmp_path)
    assert ServiceSettings(host="0.0.0.0", data_dir=tmp_path, access_secret=SECRET).auth_required


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[TestClient]:
    config = settings(tmp_path, access_secret=SECRET, login_max_failures=3)
    with TestClient(create_app(config, runner=FakeRunner(), detector_factory=no_faces)) as test_client:
        yield test_client


def test_secret_required_for_api_and_pages(secured: TestClient) -> None:
    assert secured.get("/api/v1/health").json()["auth_required"] is True
    response = secured.get("/api/v1/jobs")
    assert response.status_code == 401 and error_code(response) == "unauthorized"
    assert secured.post("/api/v1/photos/detect", content=photo_bytes()).status_code == 401
    page = secured.get("/photos", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/photos"
    bearer = {"Authorization": f"Bearer {SECRET}"}
    assert secured.get("/api/v1/jobs", headers=bearer).status_code == 200
    assert secured.post("/api/v1/photos/detect", content=photo_bytes(), headers=bearer).status_code == 200
    assert secured.get("/api/v1/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_login_cookie_and_csrf(secured: TestClient) -> None:
    response = secured.post("/api/v1/auth/login", json={"secret": SECRET})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "faceveil_session=" in cookie
    csrf = response.json()["csrf_token"]
    assert secured.get("/api/v1/jobs").status_code == 200  # the cookie is enough to read
    page = secured.get("/photos")
    assert page.status_code == 200 and f'content="{csrf}"' in page.text
    no_token = secured.post("/api/v1/photos/detect", content=photo_bytes())
    assert no_token.status_code == 403 and error_code(no_token) == "csrf_failed"
    wrong = secured.post("/api/v1/photos/detect", content=photo_bytes(), headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    ok = secured.post("/api/v1/photos/detect", content=photo_bytes(), headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200
    assert secured.post("/api/v1/auth/logout").status_code == 204
    assert secured.get("/api/v1/jobs").status_code == 401


def test_failed_logins_are_rate_limited_and_audited(secured: TestClient, tmp_path: Path) -> None:
    for _ in range(3):
        assert secured.post("/api/v1/auth/login", json={"secret": "guess"}).status_code == 401
    blocked = secured.post("/api/v1/auth/login", json={"secret": SECRET})
    assert blocked.status_code == 429 and error_code(blocked) == "too_many_attempts"
    assert int(blocked.headers["retry-after"]) > 0
    actions = [json.loads(x)["action"] for x in (tmp_path / "data" / "audit.jsonl").read_text().splitlines()]
    assert actions.count("login_failed") == 4
    assert SECRET not in (tmp_path / "data" / "audit.jsonl").read_text()


def test_other_web_sites_cannot_change_anything(client: TestClient, video: bytes) -> None:
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        response = client.post("/api/v1/photos/detect", content=photo_bytes(), headers=headers)
        assert response.status_code == 403 and error_code(response) == "cross_origin", headers
    same = client.post(
        "/api/v1/photos/detect", content=photo_bytes(), headers={"Origin": "http://testserver"}
    )
    assert same.status_code == 200


def test_loopback_server_refuses_foreign_host_headers(tmp_path: Path) -> None:
    app = create_app(ServiceSettings(data_dir=tmp_path / "data"), detector_factory=no_faces)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/api/v1/health").status_code == 200
        assert client.get("/api/v1/health", headers={"Host": "attacker.example"}).status_code == 400


def test_pages_load_nothing_from_elsewhere(client: TestClient) -> None:
    for path in ("/photos", "/videos", "/jobs", "/live", "/api/docs"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text), path
        assert "<script>" not in page.text  # no inline script (the policy forbids it)
        for asset in re.findall(r"""(?:src|href)="(/[^"]+)\"""", page.text):
            assert client.get(asset).status_code == 200, asset
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY and "script-src 'self'" in CONTENT_SECURITY_POLICY
    schema = client.get("/api/openapi.json").json()
    assert {"/api/v1/photos/anonymize", "/api/v1/jobs", "/api/v1/jobs/{job_id}/result"} <= set(
        schema["paths"]
    )


# ------------------------------------------------------------------------------------------------
# pose and whole-person targets (real models, real photos)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    config = settings(tmp_path_factory.mktemp("real"), default_preset="fast")
    with TestClient(create_app(config)) as test_client:
        yield test_client


def test_pose_json_has_everyone_with_33_landmarks(real: TestClient, shared_data: Path) -> None:
    photo = (shared_data / "images" / "fr_two_people.jpg").read_bytes()
    response = real.post("/api/v1/pose", content=photo)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["schema"] == 1 and (body["width"], body["height"]) == (1126, 661)
    assert len(body["people"]) == 2
    for person in body["people"]:
        assert len(person["landmarks"]) == 33 and person["landmarks"][0]["name"] == "nose"
        nose, (x1, y1, x2, y2) = person["landmarks"][0], person["face_box"]
        assert x1 <= nose["x"] <= x2 and y1 <= nose["y"] <= y2
        assert 0 <= nose["nx"] <= 1 and 0 <= nose["visibility"] <= 1


def test_pose_image_is_drawn_with_faces_hidden(real: TestClient, shared_data: Path) -> None:
    photo = (shared_data / "images" / "fr_two_people.jpg").read_bytes()
    response = real.post("/api/v1/pose/image", content=photo, params={"format": "png"})
    assert response.status_code == 200
    assert response.headers["x-faceveil-people"] == "2" and response.headers["x-faceveil-faces"] == "2"

    def red(rgb: np.ndarray[Any, np.dtype[np.uint8]]) -> int:
        return int(((rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)).sum())

    assert red(decode(response.content)) > red(decode(photo)) + 200  # the red joints


def test_person_target_hides_a_superset_of_face_mode(real: TestClient, shared_data: Path) -> None:
    photo = (shared_data / "images" / "fr_two_people.jpg").read_bytes()
    original = decode(photo).astype(int)

    def changed(target: str) -> np.ndarray[Any, np.dtype[np.bool_]]:
        response = real.post(
            "/api/v1/photos/anonymize",
            content=photo,
            params={"target": target, "mode": "solid", "format": "png"},
        )
        assert response.status_code == 200, response.text
        diff = np.abs(decode(response.content).astype(int) - original)
        result: np.ndarray[Any, np.dtype[np.bool_]] = (diff > 0).any(axis=2)
        return result

    face, person = changed("face"), changed("person")
    assert person.sum() > 3 * face.sum() > 0  # whole silhouettes are much larger than faces
    assert (face & person).sum() >= 0.99 * face.sum()  # every face pixel is still hidden


# ------------------------------------------------------------------------------------------------
# live camera WebSocket


def test_live_socket_answers_each_jpeg_with_an_anonymized_jpeg(client: TestClient) -> None:
    with client.websocket_connect("/api/v1/live?mode=solid") as socket:
        for _ in range(3):
            socket.send_bytes(photo_bytes("JPEG", size=(320, 240)))
            frame = decode(socket.receive_bytes())
            figures = json.loads(socket.receive_text())
            assert frame.shape == (240, 320, 3)
            assert set(figures) == {"faces", "fps", "latency_ms", "detected"}
        socket.send_bytes(b"not a jpeg")
        assert "error" in json.loads(socket.receive_text())


def test_live_socket_refuses_other_sites_and_strangers(tmp_path: Path) -> None:
    from starlette.websockets import WebSocketDisconnect

    with TestClient(create_app(settings(tmp_path), detector_factory=no_faces)) as client:
        evil = {"Origin": "https://evil.example"}
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("/api/v1/live", headers=evil) as ws,
        ):
            ws.receive_text()
        assert refused.value.code == 1008
    config = settings(tmp_path, access_secret=SECRET)
    with TestClient(create_app(config, detector_factory=no_faces)) as client:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/api/v1/live") as ws:
            ws.receive_text()
        assert refused.value.code == 1008
