"""The jobs API and the web app's video form: the ``voice`` choice (keep, disguise, drop)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from faceveil.service.app import create_app
from faceveil.service.schemas import VideoOptions
from faceveil.voice import VoiceBlockFilter
from service_support import create_job, fake_detectors, settings, wait_status
from test_video_voice import RATE, decoded_sound, make_clip
from voice_support import f0_autocorrelation


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The app with the real video pipeline and a fake face detector."""
    app = create_app(settings(tmp_path), detector_factory=fake_detectors)
    with TestClient(app) as test_client:
        yield test_client


def test_voice_choice_reaches_the_pipeline() -> None:
    assert VideoOptions(voice="disguise").job_config().output.audio == "disguise"
    assert VideoOptions(voice="drop").job_config().output.audio == "drop"
    assert VideoOptions(audio="drop").job_config().output.audio == "drop"  # the older field
    assert VideoOptions().job_config().output.audio == "keep"
    assert VideoOptions(voice="disguise").job_config().output.voice.seed is None  # fresh draw per job
    with pytest.raises(ValidationError, match="contradict"):
        VideoOptions(audio="drop", voice="disguise")
    with pytest.raises(ValidationError):
        VideoOptions.model_validate({"voice": "whisper"})


def test_job_with_disguised_voice(client: TestClient, tmp_path: Path) -> None:
    source = tmp_path / "talk.mp4"
    make_clip(source)
    job = create_job(client, source.read_bytes(), voice="disguise")
    done = wait_status(client, job["id"], "done", "failed")
    assert done["status"] == "done", done
    result = tmp_path / "result.mp4"
    result.write_bytes(client.get(done["result_url"]).content)
    x, _ = decoded_sound(source)
    y, _ = decoded_sound(result)
    assert abs(len(y) - len(x)) <= 1024
    ratio = f0_autocorrelation(y[:RATE, 0], RATE) / f0_autocorrelation(x[:RATE, 0], RATE)
    assert abs(12 * np.log2(ratio)) > 1.0  # the default never moves it by less than 1 semitone


def test_contradicting_sound_options_refused(client: TestClient, tmp_path: Path) -> None:
    response = client.post(
        "/api/v1/jobs", content=b"x" * 100, params={"filename": "a.mp4", "audio": "drop", "voice": "disguise"}
    )
    assert response.status_code == 422


def test_video_form_offers_the_three_choices(client: TestClient) -> None:
    page = client.get("/videos").text
    assert '<select name="voice">' in page
    for value in ("keep", "disguise", "drop"):
        assert f'value="{value}"' in page


# -- streams ------------------------------------------------------------------------------------


def test_streams_api_stores_the_voice_choice_and_names_the_valid_ones(tmp_path: Path) -> None:
    values = {"stream_allowlist": ("127.0.0.1",), "sweep_interval_s": 3600.0}
    app = create_app(settings(tmp_path, **values), detector_factory=fake_detectors)
    body = {"name": "door", "source": "rtsp://127.0.0.1:9/cam"}
    with TestClient(app) as client:
        response = client.post("/api/v1/streams", json={**body, "voice": "whisper"})
        assert response.status_code == 422
        message = response.json()["error"]["message"]
        assert "voice" in message and all(f"'{v}'" in message for v in ("keep", "disguise", "drop"))
        response = client.post("/api/v1/streams", json={**body, "audio": "drop", "voice": "disguise"})
        assert response.status_code == 422 and "contradict" in response.json()["error"]["message"]

        response = client.post("/api/v1/streams", json={**body, "voice": "disguise"})
        assert response.status_code == 201, response.text
        sid = response.json()["id"]
        assert client.get(f"/api/v1/streams/{sid}").json()["options"]["voice"] == "disguise"
        manager = app.state.faceveil.streams
        spec = manager.spec_of(manager.store.get(sid))  # what the stream runs with
        assert spec.audio == "keep" and spec.audio_filter is not None
        assert isinstance(spec.audio_filter(48000, 2), VoiceBlockFilter)

        response = client.put(f"/api/v1/streams/{sid}", json={**body, "voice": "drop"})
        assert response.status_code == 200, response.text
        assert response.json()["options"]["voice"] == "drop"
        spec = manager.spec_of(manager.store.get(sid))
        assert spec.audio == "drop" and spec.audio_filter is None
        response = client.put(f"/api/v1/streams/{sid}", json={**body, "audio": "drop"})  # the older field
        assert response.json()["options"]["voice"] == "drop"
        response = client.put(f"/api/v1/streams/{sid}", json=body)
        assert response.json()["options"]["voice"] == "keep"
        assert manager.spec_of(manager.store.get(sid)).audio_filter is None

        page = client.get("/streams").text
        assert '<select name="voice">' in page and 'name="audio"' not in page
        for value in ("keep", "disguise", "drop"):
            assert f'<option value="{value}"' in page
