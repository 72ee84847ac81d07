"""Compliance outputs: the watermark, CENC-encrypted MP4, key files, and signed manifests with `verify`."""

from __future__ import annotations

import json
import logging
import shutil
import stat
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.cli.main import main
from faceveil.compliance.keys import (
    EncryptionKey,
    load_encryption_key,
    load_public_key,
    load_signing_key,
    new_encryption_key,
    new_signing_key_files,
)
from faceveil.compliance.manifest import ManifestOptions, canonical, sign, verify
from faceveil.compliance.watermark import draw_watermark, label_box
from faceveil.config import AnonymizerConfig, MaskConfig, WatermarkConfig
from faceveil.detection.fake import FakeDetector, boxes
from faceveil.errors import ConfigError, KeyFileError, VerificationError
from faceveil.media.video_io import VideoOutputConfig
from faceveil.pipeline.photo import PhotoProcessor
from faceveil.pipeline.video import VideoJob, VideoJobConfig
from faceveil.stream.engine import LiveConfig, LiveSession

FACE = (40.0, 30.0, 100.0, 100.0)
MAGENTA = (255, 0, 255)
MARK = WatermarkConfig("anonymized 2026-12-01", position="bottom-right", size=0.08, opacity=0.9)

Array = np.ndarray[Any, np.dtype[np.uint8]]


def noise(height: int = 180, width: int = 320, seed: int = 0) -> Array:
    return np.random.default_rng(seed).integers(40, 216, (height, width, 3), dtype=np.uint8)


def solid_anonymizer(watermark: WatermarkConfig | None = MARK) -> Anonymizer:
    mask = MaskConfig(mode="solid", color=MAGENTA, scale=1.0, shape="box")
    config = AnonymizerConfig(mask=mask, watermark=watermark)
    return Anonymizer(config, detector=FakeDetector(boxes(FACE)))


def make_clip(path: Path, frames: int = 16, size: tuple[int, int] = (320, 180), audio: bool = True) -> Path:
    """A noisy H.264 MP4, with an AAC tone when ``audio``."""
    width, height = size
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=Fraction(12))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "18"}
        sound = out.add_stream("aac", rate=48000) if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(noise(height, width, seed=i), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, 12)
            out.mux(video.encode(frame))
            if sound is not None:
                t = (np.arange(4000) + i * 4000) / 48000
                pcm = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
                chunk = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
                chunk.sample_rate = 48000
                out.mux(sound.encode(chunk))
        out.mux(video.encode(None))
        if sound is not None:
            out.mux(sound.encode(None))
    return path


def decode(path: Path, key: EncryptionKey | None = None) -> list[Array]:
    options = key.demuxer_options() if key is not None else {}
    with av.open(str(path), options=options) as container:
        return [np.asarray(f.to_ndarray(format="rgb24"), np.uint8) for f in container.decode(video=0)]


def decode_audio(path: Path, key: EncryptionKey | None = None) -> int:
    options = key.demuxer_options() if key is not None else {}
    with av.open(str(path), options=options) as container:
        return sum(f.samples for f in container.decode(audio=0))


def inside(box: tuple[float, ...], shrink: int = 3) -> tuple[slice, slice]:
    x1, y1, x2, y2 = (int(v) for v in box)
    return slice(y1 + shrink, y2 - shrink), slice(x1 + shrink, x2 - shrink)


# ---------------------------------------------------------------------------------------------
# watermark


def test_watermark_is_drawn_after_hiding_and_faces_stay_hidden() -> None:
    rgb = noise()
    plain = solid_anonymizer(watermark=None).apply(rgb)
    marked = solid_anonymizer().apply(rgb)
    band = label_box(rgb.shape, MARK)
    ys, xs = inside(band, 0)
    assert (marked.image[ys, xs] != plain.image[ys, xs]).mean() > 0.5  # the label is there
    assert marked.image[ys, xs].max() >= 200 and marked.image[ys, xs].mean() < plain.image[ys, xs].mean()
    outside = np.ones(rgb.shape[:2], bool)
    outside[ys, xs] = False
    assert np.array_equal(marked.image[outside], plain.image[outside])  # nothing else changed
    fy, fx = inside(FACE)
    assert (marked.image[fy, fx] == MAGENTA).all()  # the face is still hidden
    assert len(marked.detections) == len(plain.detections) == 1 and len(marked.regions) == len(plain.regions)


@pytest.mark.parametrize("position", ["top-left", "top-right", "bottom-left", "bottom-right", "center"])
def test_watermark_positions_and_size(position: str) -> None:
    config = WatermarkConfig("faceveil", position=position, size=0.1)
    x1, y1, x2, y2 = label_box((400, 600, 3), config)
    assert 0 <= x1 < x2 <= 600 and 0 <= y1 < y2 <= 400
    drawn = draw_watermark(np.zeros((400, 600, 3), np.uint8), config)
    rows = np.flatnonzero((drawn > 128).any(axis=(1, 2)))
    assert 34 <= rows[-1] - rows[0] + 1 <= 48  # the text is 10 % of the picture's height
    assert y1 <= rows[0] and rows[-1] < y2 and y2 - y1 <= 2.5 * 40  # inside a band not much larger
    horizontal = {"left": x1 < 50, "right": x2 > 550}
    vertical = {"top": y1 < 50, "bottom": y2 > 350}
    if position == "center":
        assert abs((x1 + x2) / 2 - 300) <= 2 and abs((y1 + y2) / 2 - 200) <= 2
    else:
        v, h = position.split("-")
        assert vertical[v] and horizontal[h]
    small = label_box((400, 600, 3), WatermarkConfig("x" * 150, size=0.2))
    assert small[2] - small[0] <= 600  # a long text shrinks to fit


@pytest.mark.parametrize("size", [(1, 1), (2, 5), (7, 3), (1, 400)])
def test_watermark_on_tiny_pictures_stays_inside(size: tuple[int, int]) -> None:
    for position in ("top-left", "bottom-right", "center"):
        config = WatermarkConfig("0" * 200, position=position)
        x1, y1, x2, y2 = label_box((*size, 3), config)
        assert 0 <= x1 <= x2 <= size[1] and 0 <= y1 <= y2 <= size[0]
        image = draw_watermark(np.full((*size, 3), 100, np.uint8), config)
        assert image.shape == (*size, 3)


def test_watermark_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="printable ASCII"):
        WatermarkConfig("anonymisé")
    with pytest.raises(ConfigError, match="choose one of: bottom-right"):
        WatermarkConfig("x", position="middle")
    with pytest.raises(ConfigError, match="opacity"):
        WatermarkConfig("x", opacity=0)
    with pytest.raises(ConfigError, match="empty"):
        WatermarkConfig("  ")


def test_live_frames_and_frames_hidden_whole_carry_the_watermark() -> None:
    session = LiveSession(LiveConfig(anonymizer=solid_anonymizer().config), anonymizer=solid_anonymizer())
    frame = session.process(noise(), capture_time=session.clock())
    ys, xs = inside(label_box(frame.image.shape, MARK), 0)
    assert frame.image[ys, xs].max() >= 200 and (frame.image[inside(FACE)] == MAGENTA).all()
    blank = solid_anonymizer().mark(np.zeros((180, 320, 3), np.uint8))
    assert blank[ys, xs].max() >= 200 and blank[: ys.start].max() == 0


# ---------------------------------------------------------------------------------------------
# key files


def test_keygen_writes_private_files_and_never_overwrites(tmp_path: Path, capsys: Any) -> None:
    key_path, signing_path = tmp_path / "video.key", tmp_path / "sign.key"
    assert main(["keygen", "-o", str(key_path)]) == 0
    assert main(["keygen", "--signing", "-o", str(signing_path)]) == 0
    for path in (key_path, signing_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "sign.key.pub").stat().st_mode) == 0o644
    key = load_encryption_key(key_path)
    assert key.key_hex not in capsys.readouterr().err  # the key is never printed
    before = key_path.read_bytes()
    assert main(["keygen", "-o", str(key_path)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err and key_path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if "faceveil-tmp" in p.name]
    public = load_public_key(tmp_path / "sign.key.pub")
    assert public == load_signing_key(signing_path).public_key


def test_key_files_others_can_read_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_text(new_encryption_key().to_json())
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_encryption_key(path)
    path.chmod(0o600)
    assert isinstance(load_encryption_key(path), EncryptionKey)
    with pytest.raises(KeyFileError, match="does not exist"):
        load_encryption_key(tmp_path / "missing.key")


def test_key_from_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_encryption_key()
    monkeypatch.setenv("FV_TEST_KEY", f"{key.key_hex}:{key.kid.hex()}")
    assert load_encryption_key("env:FV_TEST_KEY") == key
    monkeypatch.setenv("FV_TEST_KEY", key.to_json())
    assert load_encryption_key("env:FV_TEST_KEY") == key
    monkeypatch.setenv("FV_TEST_KEY", "nothex:00")
    with pytest.raises(KeyFileError, match="32 hex digits") as caught:
        load_encryption_key("env:FV_TEST_KEY")
    assert "nothex" not in str(caught.value)  # never echoed
    with pytest.raises(KeyFileError, match="not set"):
        load_encryption_key("env:FV_TEST_UNSET")
    assert key.key_hex not in repr(key) and key.kid.hex() in repr(key)


# ---------------------------------------------------------------------------------------------
# encrypted video


@dataclass(frozen=True)
class Produced:
    source: Path
    plain: Path
    encrypted: Path
    manifest: Path
    key: EncryptionKey
    public_key: Path


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> Produced:
    """One clip anonymized twice, plain and encrypted (with a signed manifest); shared read-only."""
    root = tmp_path_factory.mktemp("compliance")
    source = make_clip(root / "talk.mp4")
    key = new_encryption_key()
    signing = new_signing_key_files(root / "sign.key")
    base = VideoJobConfig(anonymizer=solid_anonymizer().config, detect_every=1)
    VideoJob(base, solid_anonymizer()).run(source, root / "plain.mp4")
    encrypted = VideoJobConfig(
        anonymizer=base.anonymizer, output=VideoOutputConfig(encryption=key), detect_every=1
    )
    manifest = ManifestOptions(root / "out.manifest.json", signing)
    VideoJob(encrypted, solid_anonymizer()).run(
        source, root / "out.mp4", root / "out.regions.jsonl", manifest
    )
    return Produced(source, root / "plain.mp4", root / "out.mp4", manifest.path, key, root / "sign.key.pub")


def test_encrypted_output_decodes_to_the_same_frames_with_the_key(produced: Produced) -> None:
    plain, decrypted = decode(produced.plain), decode(produced.encrypted, produced.key)
    assert len(decrypted) == len(plain) == 16
    for a, b in zip(plain, decrypted, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.0
    face = decrypted[5][inside(FACE)].astype(int)
    assert np.abs(face - MAGENTA).mean() < 12  # faces hidden
    ys, xs = inside(label_box(decrypted[5].shape, MARK), 0)
    assert decrypted[5][ys, xs].max() >= 180  # watermark on every frame
    assert decode_audio(produced.encrypted, produced.key) > 0


def test_encrypted_output_is_noise_without_the_key(produced: Produced) -> None:
    with pytest.raises(av.error.InvalidDataError):
        decode(produced.encrypted)
    with pytest.raises(av.error.InvalidDataError):
        decode(produced.encrypted, new_encryption_key())
    with pytest.raises(av.error.InvalidDataError):
        decode_audio(produced.encrypted)
    plain_bytes = produced.plain.read_bytes()
    # the H.264 slices are encrypted: no long run of the plain file's sample data survives
    mdat = plain_bytes[plain_bytes.index(b"mdat") + 4 :][:4096]
    assert mdat[1000:1064] not in produced.encrypted.read_bytes()


def test_ffmpeg_plays_the_encrypted_output_with_the_key(produced: Produced, tmp_path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "FFmpeg is installed by scripts/system-deps.sh (make test)"
    command = [
        ffmpeg,
        "-v",
        "error",
        "-i",
        str(produced.encrypted),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    keyed = [*command[:3], "-decryption_key", produced.key.key_hex, *command[3:]]
    done = subprocess.run(keyed, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert len(done.stdout) == 16 * 320 * 180 * 3
    without = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert without.returncode != 0 or len(without.stdout) < len(done.stdout)


def test_the_key_never_reaches_logs_arguments_or_the_manifest(
    produced: Produced,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_process(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)  # the key goes through PyAV, never argv
    secret = produced.key.key_hex
    text = produced.manifest.read_text()
    assert secret not in text.lower() and produced.key.kid.hex() in text
    assert secret.encode() not in Path("/proc/self/cmdline").read_bytes()
    key_file = tmp_path / "k.key"
    key_file.write_text(produced.key.to_json())
    key_file.chmod(0o600)
    out = tmp_path / "o.mp4"
    with caplog.at_level(logging.DEBUG):
        code = main(["video", str(produced.source), "-o", str(out), "--encrypt", str(key_file)])
    captured = capfd.readouterr()  # what this process and FFmpeg inside it wrote to stdout/stderr
    assert code == 0 and '"frames": 16' in captured.err
    for seen in (caplog.text, captured.out, captured.err):
        assert secret not in seen.lower()
    assert len(decode(out, produced.key)) == 16
    assert not [p for p in tmp_path.iterdir() if "faceveil-tmp" in p.name]


def test_encrypt_refuses_containers_without_cenc(tmp_path: Path, produced: Produced, capsys: Any) -> None:
    key_file = tmp_path / "k.key"
    key_file.write_text(produced.key.to_json())
    key_file.chmod(0o600)
    code = main(["video", str(produced.source), "-o", str(tmp_path / "o.mkv"), "--encrypt", str(key_file)])
    message = capsys.readouterr().err
    assert code == 2 and "MP4 or MOV" in message and ".mp4, .m4v, .mov" in message
    assert not list(tmp_path.glob("o*"))


# ---------------------------------------------------------------------------------------------
# manifests and verify


def copy_pair(produced: Produced, tmp_path: Path) -> tuple[Path, Path]:
    manifest, output = tmp_path / "m.json", tmp_path / "out.mp4"
    shutil.copyfile(produced.manifest, manifest)
    shutil.copyfile(produced.encrypted, output)
    return manifest, output


def verify_cli(capsys: Any, *args: str) -> tuple[int, str]:
    code = main(["verify", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_manifest_records_what_was_done_and_nothing_of_the_input(produced: Produced) -> None:
    manifest = json.loads(produced.manifest.read_text())
    assert manifest["format"] == "faceveil-manifest/1" and manifest["kind"] == "video"
    assert manifest["counts"] == {
        "frames": 16,
        "frames_in": 16,
        "faces": 16,
        "tracks": 1,
        "frames_hidden_whole": 0,
        "frames_skipped": 0,
    }
    settings = manifest["settings"]["video"]
    assert settings["anonymizer"]["watermark"]["text"] == MARK.text
    assert settings["output"]["encryption"] == {"scheme": "cenc-aes-ctr", "kid": produced.key.kid.hex()}
    assert manifest["models"][0]["file"] == "centerface.onnx"
    assert all(len(m["sha256"]) == 64 for m in manifest["models"])
    assert manifest["output"]["name"] == "out.mp4" and manifest["regions"]["sha256"]
    assert "talk" not in json.dumps(manifest)  # not even the input's name
    body = {k: v for k, v in manifest.items() if k != "signature"}
    assert canonical(body) == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def test_verify_passes_on_an_untouched_pair(produced: Produced, tmp_path: Path, capsys: Any) -> None:
    manifest, output = copy_pair(produced, tmp_path)
    code, text = verify_cli(capsys, str(manifest), str(output), "--public-key", str(produced.public_key))
    assert code == 0 and "OK" in text and "trusted key" in text
    result = verify(manifest, output)
    assert result.signed and not result.trusted


def test_verify_fails_on_one_changed_byte(produced: Produced, tmp_path: Path, capsys: Any) -> None:
    manifest, output = copy_pair(produced, tmp_path)
    data = bytearray(output.read_bytes())
    data[len(data) // 2] ^= 0x01
    output.write_bytes(bytes(data))
    code, text = verify_cli(capsys, str(manifest), str(output))
    assert code == 1 and "output_hash" in text and "not the file that was produced" in text
    assert "signature" not in text  # the manifest itself is fine


def test_verify_fails_on_a_changed_setting(produced: Produced, tmp_path: Path, capsys: Any) -> None:
    manifest, output = copy_pair(produced, tmp_path)
    document = json.loads(manifest.read_text())
    document["settings"]["video"]["anonymizer"]["mask"]["mode"] = "none"
    manifest.write_text(json.dumps(document))
    code, text = verify_cli(capsys, str(manifest), str(output))
    assert code == 1 and "signature:" in text and "changed after" in text


def test_verify_fails_on_another_keys_signature(produced: Produced, tmp_path: Path, capsys: Any) -> None:
    manifest, output = copy_pair(produced, tmp_path)
    document = json.loads(manifest.read_text())
    other = new_signing_key_files(tmp_path / "other.key")
    manifest.write_text(json.dumps(sign(document, other)))  # re-signed by someone else
    assert verify_cli(capsys, str(manifest), str(output))[0] == 0  # valid, but by whom?
    code, text = verify_cli(capsys, str(manifest), str(output), "--public-key", str(produced.public_key))
    assert code == 1 and "untrusted_key" in text and other.fingerprint in text
    forged = {**json.loads(produced.manifest.read_text()), "signature": sign(document, other)["signature"]}
    manifest.write_text(json.dumps(forged))  # the original signer named, another key's signature
    code, text = verify_cli(capsys, str(manifest), str(output))
    assert code == 1 and "signature:" in text


def test_verify_fails_on_a_truncated_manifest(produced: Produced, tmp_path: Path, capsys: Any) -> None:
    manifest, output = copy_pair(produced, tmp_path)
    manifest.write_bytes(manifest.read_bytes()[:-40])
    code, text = verify_cli(capsys, str(manifest), str(output))
    assert code == 1 and "malformed" in text and "truncated" in text
    with pytest.raises(VerificationError) as caught:
        verify(manifest, output)
    assert caught.value.checks == ["malformed"]


def test_unsigned_manifest_needs_allow_unsigned(tmp_path: Path, capsys: Any) -> None:
    source = make_clip(tmp_path / "in.mp4", frames=4, audio=False)
    out, manifest = tmp_path / "out.mp4", tmp_path / "out.json"
    config = VideoJobConfig(anonymizer=solid_anonymizer().config)
    VideoJob(config, solid_anonymizer()).run(source, out, manifest=ManifestOptions(manifest))
    assert "signature" not in json.loads(manifest.read_text())
    code, text = verify_cli(capsys, str(manifest), str(out))
    assert code == 1 and "unsigned" in text and "--allow-unsigned" in text
    code, text = verify_cli(capsys, str(manifest), str(out), "--allow-unsigned")
    assert code == 0 and "UNSIGNED" in text
    out.write_bytes(out.read_bytes() + b"x")
    code, text = verify_cli(capsys, str(manifest), str(out), "--allow-unsigned")
    assert code == 1 and "output_size" in text and "output_hash" in text


def test_photo_cli_writes_a_manifest_per_output(tmp_path: Path, capsys: Any) -> None:
    from PIL import Image

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/a.png"):
        Image.fromarray(noise(seed=len(name))).save(folder / name)
    signing = tmp_path / "s.key"
    assert main(["keygen", "--signing", "-o", str(signing)]) == 0
    args = ["image", str(folder), "-o", str(tmp_path / "out"), "--preset", "fast", "-q"]
    args += ["--watermark", "anonymized", "--manifest", str(tmp_path / "m"), "--signing-key", str(signing)]
    assert main(args) == 0
    for rel in ("a.png", "sub/a.png"):
        manifest, output = tmp_path / "m" / f"{rel}.manifest.json", tmp_path / "out" / rel
        assert verify(manifest, output, [load_signing_key(signing).public_key]).trusted
        assert json.loads(manifest.read_text())["settings"]["photo"]["anonymizer"]["watermark"]["text"]
    capsys.readouterr()


def test_photo_processor_manifest_hashes_the_input_before_an_in_place_write(tmp_path: Path) -> None:
    from PIL import Image

    from faceveil.compliance.manifest import sha256_file

    photo = tmp_path / "p.png"
    Image.fromarray(noise()).save(photo)
    before = sha256_file(photo)
    options = ManifestOptions(tmp_path / "p.json")
    report = PhotoProcessor(solid_anonymizer()).process(photo, photo, in_place=True, manifest=options)
    assert report.ok
    manifest = json.loads(options.path.read_text())
    assert manifest["input"] == {"sha256": before[0], "bytes": before[1]}
    assert manifest["output"]["sha256"] == sha256_file(photo)[0] != before[0]
    assert manifest["counts"] == {"faces": 1}


def test_signing_key_without_manifest_is_a_usage_error(tmp_path: Path, capsys: Any) -> None:
    signing = tmp_path / "s.key"
    new_signing_key_files(signing)
    photo = tmp_path / "p.png"
    from PIL import Image

    Image.fromarray(noise()).save(photo)
    code = main(["image", str(photo), "-o", str(tmp_path / "o.png"), "--signing-key", str(signing)])
    assert code == 2 and "--manifest" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()
