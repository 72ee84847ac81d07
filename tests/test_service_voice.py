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
    assert abs(12 * np.log2(ratio)) > 2.5


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
