"""The web app with ``FACEVEIL_RAY_ADDRESS``: its video jobs run split into segments on a real
two-node Ray cluster; progress, cancel and retry behave as for a local job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
from fastapi.testclient import TestClient

from cluster_support import make_video
from faceveil.detection.fake import FakeDetector, boxes
from faceveil.service.app import create_app
from service_support import FACE, create_job, settings, wait_for


def wait_status(client: TestClient, job_id: str, *statuses: str) -> dict[str, Any]:
    """As the service tests' helper, with time for the workers to start on a busy machine."""

    def reached() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
        return job if job["status"] in statuses else None

    found: dict[str, Any] = wait_for(reached, timeout=300, what=f"job status {statuses}")
    return found


def test_jobs_run_on_the_cluster_with_progress_cancel_and_retry(tmp_path: Path, ray_cluster: str) -> None:
    video = make_video(tmp_path / "talk.mp4", frames=240, keyint=10).read_bytes()
    config = settings(tmp_path, ray_address=ray_cluster, ray_segment_seconds=1.0, delete_originals="expiry")
    # a lambda travels to the workers by value (the tests folder is not installed there)
    app = create_app(config, detector_factory=lambda name: FakeDetector(boxes(FACE)))
    with TestClient(app) as client:
        job = create_job(client, video)
        done = wait_status(client, job["id"], "done", "failed")
        assert done["status"] == "done", done
        progress = done["progress"]
        assert progress["frames_done"] == progress["frames_total"] == 240 and progress["faces"] > 0
        result = tmp_path / "result.mp4"
        result.write_bytes(client.get(f"/api/v1/jobs/{job['id']}/result").content)
        with av.open(str(result)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 240

        second = create_job(client, video)
        wait_status(client, second["id"], "running")
        cancelled = client.post(f"/api/v1/jobs/{second['id']}/cancel").json()
        assert cancelled["status"] == "cancelled" and cancelled["retryable"] is True
        assert client.get(f"/api/v1/jobs/{second['id']}/result").status_code == 409
        jobs_dir = tmp_path / "data" / "jobs" / second["id"]
        wait_for(lambda: not [p for p in jobs_dir.rglob("*") if p.name.startswith(".")], what="no temp files")
        retried = client.post(f"/api/v1/jobs/{second['id']}/retry").json()
        assert retried["status"] in ("queued", "running")
        again = wait_status(client, second["id"], "done", "failed")
        assert again["status"] == "done" and again["progress"]["frames_done"] == 240
