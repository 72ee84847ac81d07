"""Compliance outputs through the REST API: watermark, the server's encryption key, stored manifests."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from faceveil.cli.main import main
from faceveil.compliance.keys import EncryptionKey, load_encryption_key, load_public_key
from faceveil.compliance.manifest import verify
from faceveil.compliance.watermark import label_box
from faceveil.config import WatermarkConfig
from faceveil.errors import KeyFileError
from faceveil.service.app import create_app
from service_support import (
    FACE,
    FakeRunner,
    create_job,
    decode,
    error_code,
    fake_detectors,
    make_video,
    photo_bytes,
    settings,
    wait_status,
)

WATERMARK = "anonymized 2026-12-01"


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    """A server's encryption key file and signing key file, made by ``faceveil keygen``."""
    encryption, signing = tmp_path / "keys" / "video.key", tmp_path / "keys" / "sign.key"
    assert main(["keygen", "-o", str(encryption)]) == 0
    assert main(["keygen", "--signing", "-o", str(signing)]) == 0
    return encryption, signing


@pytest.fixture
def server(tmp_path: Path, keys: tuple[Path, Path]) -> Iterator[TestClient]:
    """The app with both keys and the real video pipeline (on fake face detectors)."""
    config = settings(tmp_path, encryption_key_file=keys[0], signing_key_file=keys[1])
    with TestClient(create_app(config, detector_factory=fake_detectors)) as client:
        yield client


def frames(data: bytes, key: EncryptionKey | None = None) -> list[np.ndarray[Any, np.dtype[np.uint8]]]:
    options = key.demuxer_options() if key is not None else {}
    with av.open(io.BytesIO(data), mode="r", options=options) as container:
        return [np.asarray(f.to_ndarray(format="rgb24"), np.uint8) for f in container.decode(video=0)]


def test_encrypted_watermarked_job_with_a_signed_manifest(
    server: TestClient, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    video = make_video(tmp_path / "clip.mp4", frames=12, size=(160, 120)).read_bytes()
    params = {"mode": "solid", "shape": "box", "watermark": WATERMARK, "encrypt": "true", "format": "mp4"}
    job = create_job(server, video, **params)
    done = wait_status(server, job["id"], "done", "failed")
    assert done["status"] == "done", done["error"]
    assert done["encrypted"] is True and "-decryption_key" in done["playback"]
    key = load_encryption_key(keys[0])
    assert key.key_hex not in json.dumps(done)

    result = server.get(done["result_url"])
    assert result.status_code == 200 and key.key_hex.encode() not in result.content
    with pytest.raises(av.error.InvalidDataError):
        frames(result.content)  # noise without the key
    decrypted = frames(result.content, key)
    assert len(decrypted) == 12
    x1, y1, x2, y2 = (int(v) for v in FACE)
    last = decrypted[-1].astype(int)  # a light grey frame: the black face fill stands out
    assert last[y1 + 4 : min(y2, 120) - 4, x1 + 4 : x2 - 4].mean() < 20 and last[5:25, 100:150].mean() > 180
    bx1, by1, bx2, by2 = label_box(last.shape, WatermarkConfig(WATERMARK))
    assert last[by1:by2, bx1:bx2].min() < 100 < last[by1:by2, bx1:bx2].max()  # dark band, light text

    manifest_response = server.get(done["manifest_url"])
    assert manifest_response.status_code == 200
    assert manifest_response.headers["content-type"].startswith("application/json")
    assert "talk.anonymized.mp4.manifest.json" in manifest_response.headers["content-disposition"]
    manifest_path, output_path = tmp_path / "m.json", tmp_path / "out.mp4"
    manifest_path.write_bytes(manifest_response.content)
    output_path.write_bytes(result.content)
    trusted = load_public_key(keys[1].with_name("sign.key.pub"))
    assert verify(manifest_path, output_path, [trusted]).trusted
    manifest = json.loads(manifest_response.content)
    assert manifest["counts"]["frames"] == 12 and manifest["counts"]["faces"] > 0
    assert manifest["input"] == {"sha256": hashlib.sha256(video).hexdigest(), "bytes": len(video)}
    assert manifest["settings"]["video"]["output"]["encryption"]["kid"] == key.kid.hex()
    assert key.key_hex not in manifest_response.text
    # stored with the job, and deleted with it
    folder = tmp_path / "data" / "jobs" / job["id"]
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "output.mp4"]
    assert server.delete(f"/api/v1/jobs/{job['id']}").status_code == 204 and not folder.exists()


def test_every_job_gets_a_manifest_and_plain_results_play_inline(server: TestClient, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", frames=6).read_bytes()
    done = wait_status(server, create_job(server, video, format="webm")["id"], "done", "failed")
    assert done["status"] == "done" and done["encrypted"] is False and done["playback"] is None
    manifest = tmp_path / "m.json"
    manifest.write_bytes(server.get(done["manifest_url"]).content)
    output = tmp_path / "o.webm"
    output.write_bytes(server.get(done["result_url"]).content)
    assert verify(manifest, output).signed
    assert len(frames(output.read_bytes())) == 6


def test_encryption_needs_an_mp4_or_mov_and_a_server_key(
    server: TestClient, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    video = make_video(tmp_path / "clip.mp4").read_bytes()
    refused = server.post("/api/v1/jobs", content=video, params={"encrypt": "true", "format": "webm"})
    assert refused.status_code == 422 and error_code(refused) == "invalid_config"
    assert ".mp4" in refused.json()["error"]["message"] and ".mov" in refused.json()["error"]["message"]
    bad = server.post("/api/v1/jobs", content=video, params={"watermark": "caf\u00e9"})
    assert bad.status_code == 422 and "ASCII" in bad.json()["error"]["message"]
    assert server.get("/api/v1/jobs").json()["jobs"] == []  # nothing was queued or kept
    plain = settings(tmp_path / "other")
    with TestClient(create_app(plain, runner=FakeRunner(), detector_factory=fake_detectors)) as client:
        response = client.post("/api/v1/jobs", content=video, params={"encrypt": "true"})
        assert response.status_code == 422 and error_code(response) == "encryption_unavailable"
        assert "encrypt" not in client.get("/videos").text.split("</form>")[0]
    assert 'name="encrypt"' in server.get("/videos").text


def test_photo_api_draws_the_watermark_over_the_hidden_face(server: TestClient) -> None:
    original = photo_bytes("PNG", size=(320, 240))
    params = {"mode": "solid", "shape": "box", "watermark": WATERMARK, "watermark_position": "top-right"}
    response = server.post("/api/v1/photos/anonymize", content=original, params=params)
    assert response.status_code == 200, response.text
    before, after = decode(original), decode(response.content)
    x1, y1, x2, y2 = (int(v) for v in FACE)
    assert (after[y1 + 5 : y2 - 5, x1 + 5 : x2 - 5] == 0).all()  # the face is hidden
    bx1, by1, bx2, by2 = label_box(after.shape, WatermarkConfig(WATERMARK, position="top-right"))
    assert by1 < 20 and bx2 > 300
    band_before, band_after = before[by1:by2, bx1:bx2].astype(int), after[by1:by2, bx1:bx2].astype(int)
    assert (band_after != band_before).mean() > 0.9 and band_after.max() >= 200
    assert np.array_equal(before[150:, 150:], after[150:, 150:])  # elsewhere untouched


def test_a_bad_key_file_stops_the_server_from_starting(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    keys[0].chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        create_app(settings(tmp_path, encryption_key_file=keys[0]))


def gray_jpeg(size: tuple[int, int] = (320, 240)) -> bytes:
    """A flat mid-grey JPEG: every pixel the label changes stands out."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (128, 128, 128)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def live_frame(server: TestClient, query: str) -> np.ndarray[Any, np.dtype[np.uint8]]:
    with server.websocket_connect(f"/api/v1/live?{query}") as socket:
        socket.send_bytes(gray_jpeg())
        frame = decode(socket.receive_bytes())
        assert "error" not in json.loads(socket.receive_text())
    return frame


def test_live_socket_draws_the_watermark_on_the_returned_frames(server: TestClient) -> None:
    from urllib.parse import urlencode

    plain = live_frame(server, "mode=solid").astype(int)
    query = urlencode({"mode": "solid", "watermark": WATERMARK, "watermark_position": "top-left"})
    marked = live_frame(server, query).astype(int)
    assert marked.shape == plain.shape == (240, 320, 3)
    x1, y1, x2, y2 = label_box(marked.shape, WatermarkConfig(WATERMARK, position="top-left"))
    assert x1 < 20 and y1 < 20 and x2 > 100
    band, before = marked[y1:y2, x1:x2], plain[y1:y2, x1:x2]
    assert np.abs(before - 128).max() < 10  # without a watermark the band is the grey picture
    assert (band.max(axis=2) < 90).mean() > 0.3  # the darkened band...
    assert (band.min(axis=2) > 190).mean() > 0.02  # ...with light text on it
    assert np.abs(marked[y2 + 16 :, :] - plain[y2 + 16 :, :]).max() < 6  # nothing else changes


def test_live_socket_refuses_a_bad_watermark(server: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with (
        pytest.raises(WebSocketDisconnect) as refused,
        server.websocket_connect("/api/v1/live?watermark=caf%C3%A9") as socket,
    ):
        socket.receive_text()
    assert refused.value.code == 1008
    assert "printable ASCII" in (refused.value.reason or "")
