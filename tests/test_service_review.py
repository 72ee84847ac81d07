"""Review before release through the REST API (in process, the real video runner, a fake detector)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from faceveil.service.app import create_app
from service_support import (
    FACE,
    create_job,
    decode,
    error_code,
    fake_detectors,
    make_video,
    settings,
    wait_status,
)

SECRET = "review test secret 42"
BEARER = {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    config = settings(tmp_path, access_secret=SECRET)
    with TestClient(create_app(config, detector_factory=fake_detectors), headers=BEARER) as test_client:
        yield test_client


@pytest.fixture
def video(tmp_path: Path) -> bytes:
    return make_video(tmp_path / "clip.mp4", frames=12, size=(160, 120)).read_bytes()


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "data" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_review_edit_approve_render(client: TestClient, video: bytes, tmp_path: Path) -> None:
    job = create_job(client, video, review="true", mode="solid")
    job = wait_status(client, job["id"], "review", "failed")
    assert job["status"] == "review" and job["review_url"] == f"/jobs/{job['id']}/review"
    assert client.get(f"/api/v1/jobs/{job['id']}/result").status_code == 409  # nothing rendered yet

    response = client.get(f"/api/v1/jobs/{job['id']}/regions")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    doc = response.json()
    assert doc["header"]["source"]["frames"] == 12 and list(doc["header"]["tracks"]) == ["1"]
    frame = client.get(f"/api/v1/jobs/{job['id']}/frames/3")
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    assert frame.headers["cache-control"] == "no-store" and decode(frame.content).shape == (120, 160, 3)
    assert client.get(f"/api/v1/jobs/{job['id']}/frames/99").status_code == 404
    page = client.get(f"/jobs/{job['id']}/review")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"

    # unauthenticated: nothing of the original
    anonymous = TestClient(client.app)
    assert anonymous.get(f"/api/v1/jobs/{job['id']}/frames/3").status_code == 401
    assert anonymous.get(f"/api/v1/jobs/{job['id']}/regions").status_code == 401
    assert anonymous.get(f"/jobs/{job['id']}/review", follow_redirects=False).status_code == 303

    # malformed edits are refused whole
    broken = {"header": doc["header"], "frames": doc["frames"][:-1]}
    response = client.put(f"/api/v1/jobs/{job['id']}/regions", json=broken)
    assert response.status_code == 422 and error_code(response) == "invalid_regions"
    foreign = json.loads(json.dumps(doc))
    foreign["header"]["source"]["sha256"] = "0" * 64
    assert client.put(f"/api/v1/jobs/{job['id']}/regions", json=foreign).status_code == 422

    # keep the detected face, add a box on frame 5, remove nothing
    doc["header"]["tracks"]["1"]["keep"] = True
    doc["frames"][5]["regions"].append(
        {"box": [120, 80, 150, 110], "track": None, "score": 1.0, "source": "manual"}
    )
    assert client.put(f"/api/v1/jobs/{job['id']}/regions", json=doc).status_code == 200
    preview = client.post(f"/api/v1/jobs/{job['id']}/follow", json={"frame": 5, "box": [120, 80, 150, 110]})
    assert preview.status_code == 200 and preview.headers["cache-control"] == "no-store"
    assert {"4", "5", "6"} <= set(preview.json()["boxes"])
    answer = client.post(f"/api/v1/jobs/{job['id']}/approve")
    assert answer.status_code == 200, answer.text
    assert answer.json()["kept_tracks"] == [1] and answer.json()["added"] == 1
    done = wait_status(client, job["id"], "done", "failed")
    assert done["status"] == "done", done
    assert not (tmp_path / "data" / "jobs" / job["id"] / "input").exists()  # the original is gone
    assert client.post(f"/api/v1/jobs/{job['id']}/approve").status_code == 409

    import av

    result = tmp_path / "result.mp4"
    result.write_bytes(client.get(f"/api/v1/jobs/{job['id']}/result").content)
    with av.open(str(result)) as container:
        images = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(images) == 12
    x1, y1, x2, y2 = (int(v) for v in FACE)
    for index, rgb in enumerate(images[1:], start=1):  # frame i is grey (20 i); solid fill is black
        assert rgb[y1 + 4 : y2 - 4, x1 + 4 : x2 - 4].mean() > 20 * index - 8, index  # kept visible
    assert images[5][84:106, 124:146].max() < 15  # the box added by hand is hidden
    assert images[4][84:106, 124:146].max() < 15  # and followed to the frames around it

    approvals = [e for e in _audit(tmp_path) if e["action"] == "job_approve"]
    assert len(approvals) == 1
    assert approvals[0]["kept_tracks"] == "1" and approvals[0]["boxes_added"] == 1
    assert approvals[0]["boxes_removed"] == 0 and approvals[0]["principal"]


def test_regions_only_while_in_review(client: TestClient, video: bytes) -> None:
    job = create_job(client, video)
    wait_status(client, job["id"], "done", "failed")
    response = client.get(f"/api/v1/jobs/{job['id']}/regions")
    assert response.status_code == 409 and error_code(response) == "not_in_review"
    assert client.post(f"/api/v1/jobs/{job['id']}/approve").status_code == 409


def test_photo_review_keeps_and_adds(client: TestClient, tmp_path: Path) -> None:
    from service_support import photo_bytes

    data = photo_bytes(size=(160, 120))
    original = decode(data)
    keep = json.dumps([list(FACE)])
    add = json.dumps([[100, 10, 150, 50]])
    params = {"mode": "solid", "format": "png", "keep": keep, "add": add}
    response = client.post("/api/v1/photos/review", content=data, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["x-faceveil-kept"] == "1" and response.headers["cache-control"] == "no-store"
    out = decode(response.content)
    x1, y1, x2, y2 = (int(v) for v in FACE)
    assert np.array_equal(out[y1:y2, x1:x2], original[y1:y2, x1:x2])  # kept
    assert out[15:45, 105:145].max() == 0  # added by hand: hidden (solid black)
    # without keep the same face is hidden: a face the reviewer did not keep is never shown
    hidden = decode(
        client.post("/api/v1/photos/review", content=data, params={"mode": "solid", "format": "png"}).content
    )
    assert hidden[y1 + 8 : y2 - 8, x1 + 8 : x2 - 8].max() == 0
    bad = client.post("/api/v1/photos/review", content=data, params={"keep": "[[1, 2]]"})
    assert bad.status_code == 422 and error_code(bad) == "invalid_request"
    approvals = [e for e in _audit(tmp_path) if e["action"] == "photo_approve"]
    assert approvals[0]["kept_faces"] == 1 and approvals[0]["boxes_added"] == 1
