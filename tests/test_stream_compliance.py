"""Compliance outputs of live recordings: CENC-encrypted segments and one signed manifest each.

Streams run on the synthetic `ListSource` with the fake detector (one face at `FACE`, hidden in
solid magenta), so every segment's frames and faces are known.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.cli.main import main
from faceveil.compliance.keys import EncryptionKey, new_encryption_key, new_signing_key_files, write_new_file
from faceveil.compliance.manifest import verify
from faceveil.detection.fake import FakeDetector, boxes
from faceveil.errors import ConfigError, VerificationError
from faceveil.stream.config import load_streams
from faceveil.stream.records import SegmentManifestConfig
from faceveil.stream.safety import SourceSpec
from faceveil.stream.sinks import OutputSpec
from faceveil.stream.stats import StreamStats
from faceveil.stream.worker import StreamWorker
from test_stream import FACE, MAGENTA, SOLID, ListSource, spec

RGBImage = npt.NDArray[np.uint8]
PASSWORD = "hunter2-secret"
SOURCE_URL = f"rtsp://admin:{PASSWORD}@203.0.113.1:554/cam?token=tok-{PASSWORD}"


def decode(path: Path, key: EncryptionKey | None = None) -> list[RGBImage]:
    options = key.demuxer_options() if key is not None else {}
    with av.open(str(path), options=options) as container:
        return [np.asarray(f.to_ndarray(format="rgb24"), np.uint8) for f in container.decode(video=0)]


def record(
    tmp_path: Path, key: EncryptionKey | None, manifest: SegmentManifestConfig, **kwargs: object
) -> StreamStats:
    stream = spec(
        "door",
        source=SourceSpec("url", SOURCE_URL, "rtsp"),
        outputs=(OutputSpec("file", str(tmp_path / "rec.mp4")),),
        segment_s=1.0,
        encryption=key,
        manifest=manifest,
        queue_size=4,
        **kwargs,
    )
    worker = StreamWorker(
        stream, Anonymizer(SOLID, detector=FakeDetector(boxes(FACE))), source=ListSource(50, 0.05)
    )
    return worker.run()


def test_segments_are_encrypted_and_each_has_a_signed_manifest_that_verifies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = new_encryption_key()
    signer = new_signing_key_files(tmp_path / "sign.pem")
    folder = tmp_path / "manifests"
    stats = record(tmp_path, key, SegmentManifestConfig(folder, signer))
    segments = sorted(tmp_path.glob("rec-*.mp4"))
    assert len(segments) >= 2
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s.name}.manifest.json" for s in segments)
    total = 0
    for segment in segments:
        manifest_path = folder / f"{segment.name}.manifest.json"
        text = manifest_path.read_text(encoding="utf-8")
        assert PASSWORD not in text and "token" not in text and key.key_hex not in text
        document = json.loads(text)
        assert document["input"] == {"kind": "live", "sha256": None}
        assert document["output"]["name"] == segment.name
        assert document["settings"]["stream"]["source"]["target"] == "rtsp://admin:***@203.0.113.1:554/cam"
        assert document["settings"]["stream"]["encryption"] == key.describe()
        assert document["models"] and all(m["sha256"] for m in document["models"])
        result = verify(manifest_path, segment, [signer.public_key])
        assert result.signed and result.trusted
        frames = decode(segment, key)
        counts = document["counts"]
        assert counts["frames"] == len(frames) > 0
        assert counts["faces"] == counts["frames"]  # one face on every frame
        assert counts["frames_hidden_whole"] == 0
        total += counts["frames"]
        x1, y1, x2, y2 = (int(v) for v in FACE)
        centre = frames[-1][y1 + 4 : y2 - 4, x1 + 4 : x2 - 4].astype(int)
        assert np.abs(centre - MAGENTA.astype(int)).max() < 40
        with pytest.raises(av.error.InvalidDataError):
            decode(segment)
        with pytest.raises(av.error.InvalidDataError):
            decode(segment, new_encryption_key())
    assert total == stats.frames_out - sum(stats.sink_dropped.values())
    assert key.key_hex not in caplog.text and PASSWORD not in caplog.text
    # a changed segment no longer matches its manifest
    last = segments[-1]
    data = bytearray(last.read_bytes())
    data[-10] ^= 0xFF
    last.write_bytes(bytes(data))
    with pytest.raises(VerificationError) as failed:
        verify(folder / f"{last.name}.manifest.json", last, [signer.public_key])
    assert "output_hash" in [check for check, _ in failed.value.problems]


def test_manifests_beside_the_segments_roll_out_with_them(tmp_path: Path) -> None:
    record(tmp_path, None, SegmentManifestConfig(), keep_segments=1)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2, names
    segment, manifest = names
    assert manifest == f"{segment}.manifest.json"
    document = json.loads((tmp_path / manifest).read_text(encoding="utf-8"))
    assert "signature" not in document and document["settings"]["stream"]["encryption"] is None
    assert verify(tmp_path / manifest, tmp_path / segment, allow_unsigned=True).signed is False
    assert len(decode(tmp_path / segment)) == document["counts"]["frames"]  # not encrypted


def test_encryption_and_manifests_need_an_mp4_recording() -> None:
    key = new_encryption_key()
    with pytest.raises(ConfigError, match=r"MP4 file, not rec\.mkv; choose one of: \.mp4") as refused:
        spec(outputs=(OutputSpec("file", "rec.mkv"),), encryption=key)
    assert key.key_hex not in str(refused.value)
    with pytest.raises(ConfigError, match="records no file"):
        spec(outputs=(OutputSpec("mjpeg", "mjpeg://127.0.0.1:0"),), encryption=key)
    with pytest.raises(ConfigError, match="records no file"):
        spec(outputs=(OutputSpec("rtmp", "rtmp://203.0.113.1/live/x"),), manifest=SegmentManifestConfig())


def test_streams_toml_reads_encrypt_manifest_and_signing_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_encryption_key()
    write_new_file(tmp_path / "rec.key", key.to_json().encode("ascii"))
    signer = new_signing_key_files(tmp_path / "sign.pem")
    monkeypatch.setenv("FV_TEST_KEY", f"{key.key_hex}:{key.kid.hex()}")
    config = tmp_path / "streams.toml"
    config.write_text(
        f"""
[defaults]
signing_key = "sign.pem"

[[stream]]
name = "a"
source = "{SOURCE_URL}"
outputs = ["rec-a.mp4"]
encrypt = "rec.key"
manifest = "manifests"

[[stream]]
name = "b"
source = "rtsp://203.0.113.1/b"
outputs = ["rec-b.mp4"]
encrypt = "env:FV_TEST_KEY"
manifest = true
""",
        encoding="utf-8",
    )
    a, b = load_streams(config)
    assert a.encryption == key and b.encryption == key
    assert a.manifest is not None and a.manifest.folder == tmp_path / "manifests"
    assert b.manifest is not None and b.manifest.folder is None
    assert a.manifest.signing_key is not None and a.manifest.signing_key.fingerprint == signer.fingerprint
    assert key.key_hex not in repr(a)
    config.write_text(
        '[[stream]]\nsource = "rtsp://203.0.113.1/b"\noutputs = ["r.mp4"]\nsigning_key = "sign.pem"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="set manifest"):
        load_streams(config)


def test_cli_refuses_an_encrypted_mkv_recording_without_showing_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_encryption_key()
    write_new_file(tmp_path / "rec.key", key.to_json().encode("ascii"))
    code = main(
        ["stream", SOURCE_URL, "-o", str(tmp_path / "rec.mkv"), "--encrypt", str(tmp_path / "rec.key")]
    )
    err = capsys.readouterr().err
    assert code != 0
    assert "choose one of: .mp4" in err
    assert key.key_hex not in err and PASSWORD not in err
    assert not list(tmp_path.glob("rec*.mkv"))
