"""Source safety (schemes, pseudo-protocols, playlists, private addresses) and stream settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceveil.cli import exit_codes
from faceveil.cli.main import main
from faceveil.errors import ConfigError, UnsafeSourceError
from faceveil.stream.config import load_streams, parse_duration, stream_spec
from faceveil.stream.safety import check_url, parse_source, redact
from faceveil.stream.sinks import parse_output

PUBLIC = "203.0.113.7"  # TEST-NET-3 is documentation space: not global, so tests allowlist it


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "concat:a.mp4|b.mp4",
        "subfile:,start,0,end,0,:/etc/passwd",
        "pipe:0",
        "udp://8.8.8.8:1234",
        "ftp://8.8.8.8/x.mp4",
        "gopher://8.8.8.8/",
        "data:video/mp4;base64,AAAA",
        "https://8.8.8.8/live/index.m3u8",
        "https://8.8.8.8/live/manifest.mpd",
        "http://8.8.8.8/list.m3u",
        "rtsp://8.8.8.8/cam.sdp",
        "http://8.8.8.8/x.mp4?u=file:/etc/passwd",
        "https://8.8.8.8/hls.m3u8?token=1",
        "http://8.8.8.8/a|b",
        "http:///nohost",
        "rtsp://8.8.8.8/a b",
        "",
    ],
)
def test_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeSourceError):
        check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://127.0.0.1:8554/cam",
        "rtmp://localhost/live/key",
        "http://10.0.0.5:8080/video.mjpg",
        "https://192.168.1.20/stream.ts",
        "srt://172.16.0.1:9000",
        "rtsp://169.254.1.1/cam",
        "rtsp://[::1]:8554/cam",
        "rtsp://[::ffff:127.0.0.1]:8554/cam",
        "http://0.0.0.0:80/x",
        "rtmp://100.64.0.1/live/x",
    ],
)
def test_private_and_loopback_addresses_need_an_allowlist(url: str) -> None:
    with pytest.raises(UnsafeSourceError, match=r"private or local|refused host"):
        check_url(url)
    assert check_url(url, allow_private=True).kind == "url"


def test_allowlist_by_network_and_by_host() -> None:
    assert (
        check_url("rtsp://192.168.1.20/cam", allowlist=["192.168.1.0/24"]).target == "rtsp://192.168.1.20/cam"
    )
    assert check_url("rtmp://localhost/live/x", allowlist=["localhost"]).scheme == "rtmp"
    with pytest.raises(UnsafeSourceError):
        check_url("rtsp://192.168.2.20/cam", allowlist=["192.168.1.0/24"])
    assert check_url(f"rtsp://{PUBLIC}/cam", allowlist=["203.0.113.0/24"]).kind == "url"


def test_public_addresses_pass_and_get_ffmpeg_whitelists() -> None:
    spec = check_url("rtsp://user:secret@8.8.8.8:554/stream1")
    assert spec.kind == "url" and spec.scheme == "rtsp"
    options = spec.ffmpeg_options()
    assert "file" not in options["protocol_whitelist"].split(",")
    assert "hls" not in options["format_whitelist"].split(",")
    assert "concat" not in options["format_whitelist"].split(",")
    assert options["rtsp_transport"] == "tcp"
    assert "secret" not in spec.display
    assert check_url("https://8.8.8.8/live.ts").ffmpeg_options()["protocol_whitelist"] == "https,http,tcp,tls"


def test_redact_hides_passwords() -> None:
    assert redact("rtsp://admin:hunter2@cam.lan:554/s") == "rtsp://admin:***@cam.lan:554/s"
    assert redact("rtmp://host/live/key") == "rtmp://host/live/key"


def test_parse_source_cameras_files_and_pseudo_protocols(tmp_path: Path) -> None:
    assert parse_source("0").target == "/dev/video0"
    assert parse_source("/dev/video2").kind == "camera"
    with pytest.raises(UnsafeSourceError, match="realtime"):
        parse_source(str(tmp_path / "a.mp4"))
    assert parse_source(str(tmp_path / "a.mp4"), allow_files=True).kind == "file"
    for text in ("concat:a.mp4|b.mp4", "subfile:,start,0,end,9,:a.mp4", "file:a.mp4"):
        with pytest.raises(UnsafeSourceError):
            parse_source(text, allow_files=True)
    for name in ("list.m3u8", "x.ffconcat", "cam.sdp"):
        with pytest.raises(UnsafeSourceError, match="playlist"):
            parse_source(str(tmp_path / name), allow_files=True)


def test_outputs_are_checked() -> None:
    assert parse_output("rec.mp4").kind == "file"
    assert parse_output("rec.MKV").kind == "file"
    assert parse_output("rtmp://127.0.0.1/live/x").kind == "rtmp"
    assert parse_output("rtsp://127.0.0.1:8554/out").kind == "rtsp"
    assert parse_output("mjpeg://127.0.0.1:8090").kind == "mjpeg"
    for bad in ("rec.avi", "udp://1.2.3.4:5", "mjpeg://nohost", "srt://127.0.0.1:9000", "mjpeg://h:99999"):
        with pytest.raises(ConfigError):
            parse_output(bad)


# ---------------------------------------------------------------------------------------------
# settings


def test_durations() -> None:
    assert parse_duration("5m") == 300.0
    assert parse_duration("90s") == parse_duration(90) == 90.0
    assert parse_duration("1.5h") == 5400.0
    assert parse_duration(None) is None
    with pytest.raises(ConfigError, match="duration"):
        parse_duration("five minutes")


def test_stream_spec_from_values() -> None:
    spec = stream_spec(
        {
            "source": "rtsp://127.0.0.1/cam",
            "outputs": ["a.mkv", "mjpeg://127.0.0.1:8091"],
            "segment": "5m",
            "keep": 3,
            "preset": "balanced",
            "mode": "pixelate",
            "hold": 20,
            "max_detect_every": 8,
            "overlay": True,
            "retry_for": "1m",
        }
    )
    assert spec.segment_s == 300.0 and spec.keep_segments == 3
    assert spec.live.anonymizer.detector.name == "balanced" and spec.live.anonymizer.mask.mode == "pixelate"
    assert spec.live.tracker.hold == 20 and spec.live.max_detect_every == 8 and spec.live.overlay
    assert spec.source_config.give_up_after == 60.0
    assert [o.kind for o in spec.outputs] == ["file", "mjpeg"]
    with pytest.raises(ConfigError, match="unknown stream setting"):
        stream_spec({"source": "0", "outputs": ["a.mkv"], "sauce": 1})
    with pytest.raises(ConfigError, match="on-late"):
        stream_spec({"source": "0", "outputs": ["a.mkv"], "on_late": "pass"})
    with pytest.raises(ConfigError, match="output"):
        stream_spec({"source": "0", "outputs": []})
    with pytest.raises(UnsafeSourceError):
        stream_spec({"source": "rtsp://127.0.0.1/cam", "outputs": ["a.mkv"], "allow_private": False})


def test_streams_toml(tmp_path: Path) -> None:
    config = tmp_path / "streams.toml"
    config.write_text(
        """
[defaults]
preset = "fast"
overlay = true

[[stream]]
name = "door"
source = "rtsp://127.0.0.1:8554/door"
outputs = ["rec/door.mkv", "mjpeg://127.0.0.1:8091"]
segment = "10m"

[[stream]]
source = "clip.mp4"
realtime = true
outputs = "clip.safe.mp4"
overlay = false
""",
        encoding="utf-8",
    )
    door, clip = load_streams(config)
    assert door.name == "door" and door.live.overlay and door.segment_s == 600.0
    assert door.outputs[0].target == str(tmp_path / "rec" / "door.mkv")
    assert clip.name == "stream2" and not clip.live.overlay
    assert clip.source.kind == "file" and clip.source.target == str(tmp_path / "clip.mp4")
    assert clip.outputs[0].target == str(tmp_path / "clip.safe.mp4")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[stream]]\nsource = '0'\n", "output"),
        ("[defaults]\npreset='fast'\n", "at least one"),
        (
            "[[stream]]\nname='a'\nsource='0'\noutputs=['a.mkv']\n[[stream]]\nname='a'\nsource='1'\noutputs=['b.mkv']\n",
            "unique",
        ),
        ("[[stream]]\nsource='0'\noutputs=['a.mkv']\nbogus=1\n", "bogus"),
        ("[streams]\nx=1\n", "unknown table"),
        ("[[stream]\n", "not valid TOML"),
    ],
)
def test_bad_streams_toml(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "streams.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_streams(config)


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stream", "rtsp://127.0.0.1/cam"]) == exit_codes.USAGE
    assert main(["stream", "concat:a|b", "-o", str(tmp_path / "a.mkv")]) == exit_codes.INPUT_FAILED
    assert main(["stream", "rtsp://127.0.0.1/cam", "-o", str(tmp_path / "a.avi")]) == exit_codes.USAGE
    assert main(["stream", str(tmp_path / "x.mp4"), "-o", str(tmp_path / "a.mkv")]) == exit_codes.INPUT_FAILED
    err = capsys.readouterr().err
    assert "realtime" in err and "pseudo-protocols" in err and ".mp4, .mkv" in err


def test_redact_in_hides_the_url_and_its_password_in_any_message() -> None:
    from faceveil.stream.safety import redact_in

    url = "rtsp://admin:p%40ss@cam.lan:554/stream1"
    message = f"[Errno 111] Connection refused: '{url}' (user admin, password p@ss, quoted p%40ss)"
    cleaned = redact_in(message, url)
    assert "p@ss" not in cleaned and "p%40ss" not in cleaned
    assert "rtsp://admin:***@cam.lan:554/stream1" in cleaned
    assert redact_in("no secret here", "rtsp://cam.lan/s") == "no secret here"
