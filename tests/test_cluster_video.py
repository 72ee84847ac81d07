"""Segment-parallel video: the planner, the segment pieces and the join on synthetic input; then
the Ray path on a real two-node cluster (real videos, the real detector): the same frames,
timestamps, audio and hidden regions as a single run, the YouTube Faces targets across joins,
and a worker killed mid-job."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from cluster_support import make_video, moving_face
from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.cli.main import main
from faceveil.cluster.join import join_segments
from faceveil.cluster.plan import plan_segments
from faceveil.cluster.ray_backend import ClusterConfig
from faceveil.cluster.segments import FrameRegions, Tracking, audit_record, render_segment, scan_segment
from faceveil.cluster.video_job import ClusterVideoJob
from faceveil.config import AnonymizerConfig
from faceveil.detection.fake import FakeDetector
from faceveil.errors import ConfigError
from faceveil.evaluation.video import load_regions, score_track
from faceveil.media.video_io import open_input, probe
from faceveil.pipeline.regions import finish_regions_file
from faceveil.pipeline.video import VideoJob, VideoJobConfig
from faceveil.review.document import file_identity

RATE = 25
HAMILTON = "face_recognition_short_hamilton_clip.mp4"  # 640x360, 275 frames, AAC, 6 keyframes


# ---------------------------------------------------------------------------------------------
# synthetic input


def describe(path: Path) -> dict[str, Any]:
    """Frame count, exact timestamps, size, audio seconds and the decoded frames' digest."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        size = (stream.codec_context.width, stream.codec_context.height)
    with av.open(str(path)) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        seconds = None
        if audio is not None and audio.duration and audio.time_base:
            seconds = float(audio.duration * audio.time_base)
    digest = hashlib.sha256(b"".join(f.to_ndarray(format="rgb24").tobytes() for f in frames)).hexdigest()
    times = [Fraction(f.pts or 0) * Fraction(f.time_base or 0) for f in frames]
    return {"frames": len(frames), "times": times, "size": size, "audio": seconds, "pixels": digest}


def fake_anonymizer() -> Anonymizer:
    return Anonymizer(AnonymizerConfig(), detector=FakeDetector(moving_face))


def run_segments_here(
    source: Path, target: Path, regions: Path, config: VideoJobConfig, seconds: float
) -> int:
    """The segment path without Ray: scan each segment, track in order, render, join."""
    anonymizer = fake_anonymizer()
    plan = plan_segments(source, seconds)
    with open_input(source) as container:
        info = probe(container)
    tracking, final = Tracking(config), dict[int, FrameRegions]()
    for segment in plan.segments:
        final.update(tracking.push(scan_segment(source, segment, config, anonymizer)))
    final.update(tracking.flush())
    parts = []
    with open(regions, "w", encoding="utf-8") as side:
        for segment in plan.segments:
            own = [final[i] for i in range(segment.first, segment.end)]
            for offset, (pts, frame) in enumerate(zip(segment.pts, own, strict=True)):
                record = audit_record(pts, info.time_base, segment.first + offset, frame)
                if record is not None:
                    side.write(json.dumps(record) + "\n")
            part = target.with_name(f"part{segment.number}.nut")
            render_segment(source, segment, own, config, anonymizer, part, target.suffix)
            parts.append(part)
    join_segments(parts, source, info, target, config.output)
    identity = file_identity(source, info.width, info.height, plan.frames, info.rate)
    finish_regions_file(regions, identity, plan.frames)
    return len(plan)


# ---------------------------------------------------------------------------------------------
# planner, pieces and join (no cluster)


def test_planner_cuts_on_keyframes_without_gaps(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4", frames=120, keyint=10)
    plan = plan_segments(video, 1.0)  # 25 frames wanted, keyframes every 10: cuts at 0, 30, 60, 90
    assert [s.first for s in plan.segments] == [0, 30, 60, 90]
    assert plan.frames == 120 and plan.keyframes == 12
    assert sum(s.frames for s in plan.segments) == 120
    for before, after in zip(plan.segments, plan.segments[1:], strict=False):
        assert before.end == after.first and before.pts[-1] < after.pts[0]
    assert plan.segments[0].seek_pts is None and plan.segments[1].seek_pts == plan.segments[1].pts[0]
    assert len(plan_segments(video, 60.0)) == 1
    with pytest.raises(ConfigError, match="segment_seconds"):
        plan_segments(video, 0)


def test_cluster_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        ClusterConfig(address="")
    with pytest.raises(ConfigError, match="workers"):
        ClusterConfig(workers=0)
    with pytest.raises(ConfigError, match="segment_seconds"):
        ClusterConfig(segment_seconds=-1)


def test_segments_join_into_what_one_run_writes(tmp_path: Path) -> None:
    """A face tracked (with misses the tracker and the fill cover) across four joins: the same
    regions file, frames, timestamps and audio as one run; every joined frame decodes."""
    video = make_video(tmp_path / "in.mp4", frames=120, keyint=10)
    config = VideoJobConfig(anonymizer=AnonymizerConfig())
    one, one_regions = tmp_path / "one.mp4", tmp_path / "one.jsonl"
    VideoJob(config, fake_anonymizer()).run(video, one, one_regions)
    joined, joined_regions = tmp_path / "joined.mp4", tmp_path / "joined.jsonl"
    assert run_segments_here(video, joined, joined_regions, config, 1.0) == 4
    assert joined_regions.read_text() == one_regions.read_text()
    lines = [json.loads(line) for line in one_regions.read_text().splitlines()[1:]]  # after the header
    assert any(r["source"] != "detected" for line in lines for r in line["regions"])  # fill at work
    a, b = describe(one), describe(joined)
    assert (b["frames"], b["times"], b["size"]) == (a["frames"], a["times"], a["size"])
    assert (b["frames"], b["size"]) == (120, (96, 64))
    assert a["audio"] is not None and b["audio"] == a["audio"]


# ---------------------------------------------------------------------------------------------
# on a real two-node cluster


def _single_and_cluster(
    source: Path, tmp_path: Path, cluster: str, seconds: str, extra: list[str]
) -> tuple[Path, Path, Path, Path]:
    one, one_regions = tmp_path / "one.mp4", tmp_path / "one.jsonl"
    assert main(["video", str(source), "-o", str(one), "--regions", str(one_regions), "-q", *extra]) == 0
    out, regions = tmp_path / "cluster.mp4", tmp_path / "cluster.jsonl"
    argv = ["video", str(source), "-o", str(out), "--regions", str(regions), "-q", *extra]
    assert main([*argv, "--cluster", cluster, "--segment-seconds", seconds]) == 0
    return one, one_regions, out, regions


def test_cluster_video_equals_one_run(shared_data: Path, tmp_path: Path, ray_cluster: str) -> None:
    source = shared_data / "videos" / HAMILTON
    assert len(plan_segments(source, 1.5)) >= 4
    one, one_regions, out, regions = _single_and_cluster(source, tmp_path, ray_cluster, "1.5", [])
    assert regions.read_text() == one_regions.read_text()  # identical hidden regions, frame by frame
    a, b, original = describe(one), describe(out), describe(source)
    assert b["frames"] == a["frames"] == original["frames"] == 275
    assert b["times"] == a["times"] == original["times"]
    assert b["size"] == original["size"]
    assert b["audio"] is not None and abs(b["audio"] - original["audio"]) < 0.05 and b["audio"] == a["audio"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def _ytf_joined(shared_data: Path, target: Path) -> dict[int, list[float]]:
    """The four YouTube Faces sequences one after another (320x240), keyframes every 25 frames."""
    root = shared_data / "ytf_tracks"
    truth: dict[int, list[float]] = {}
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv444p"
        stream.options = {"crf": "8", "preset": "veryfast", "g": "25", "keyint_min": "25"}
        index = 0
        for sequence in json.loads((root / "tracks.json").read_text()):
            for record in sequence["frames"]:
                image = Image.open(root / sequence["frames_dir"] / record["frame_file"]).convert("RGB")
                scale = 320 / image.size[0]
                truth[index] = [v * scale for v in record["boxes"][0]]
                rgb = np.asarray(image.resize((320, 240)) if scale != 1 else image)
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    out.mux(packet)
                index += 1
        for packet in stream.encode(None):
            out.mux(packet)
    return truth


def test_cluster_youtube_faces_with_joins_inside_tracks(
    shared_data: Path, tmp_path: Path, ray_cluster: str
) -> None:
    video = tmp_path / "ytf.mp4"
    truth = _ytf_joined(shared_data, video)
    plan = plan_segments(video, 1.0)
    assert len(plan) >= 20  # joins every 25 frames: many fall inside a face track
    _, one_regions, out, regions = _single_and_cluster(video, tmp_path, ray_cluster, "1.0", [])
    score = score_track(truth, load_regions(regions), 320, 240)
    assert score.share >= 0.99 and score.longest_miss_run <= 1
    assert regions.read_text() == one_regions.read_text()
    assert describe(out)["frames"] == len(truth)


def _segment_worker_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if command.startswith(b"ray::SegmentWorker"):
                pids.append(int(entry.name))
    return pids


def test_cluster_worker_killed_mid_job(shared_data: Path, tmp_path: Path, ray_cluster: str) -> None:
    source = shared_data / "videos" / HAMILTON
    config = VideoJobConfig()
    cluster = ClusterConfig(address=ray_cluster, segment_seconds=1.5)
    calm, calm_regions = tmp_path / "calm.mp4", tmp_path / "calm.jsonl"
    ClusterVideoJob(config, cluster).run(source, calm, calm_regions)

    first_segment_back = threading.Event()
    job = ClusterVideoJob(config, cluster, progress=lambda done, total: first_segment_back.set())
    out, regions = tmp_path / "killed.mp4", tmp_path / "killed.jsonl"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            job.run(source, out, regions)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert first_segment_back.wait(300)
    victims = _segment_worker_pids()
    assert victims and thread.is_alive()
    os.kill(victims[0], signal.SIGKILL)
    killed_at = time.monotonic()
    thread.join(600)
    assert not thread.is_alive() and not errors, errors
    assert time.monotonic() > killed_at
    assert job.report is not None and job.report.restarts + job.report.retries >= 1
    assert regions.read_bytes() == calm_regions.read_bytes()  # the same hidden regions, exactly
    assert describe(out) == describe(calm)  # frames, times, size, audio and every pixel


def _decoded(path: Path, options: dict[str, str]) -> list[bytes]:
    with av.open(str(path), options=options) as container:
        return [f.to_ndarray(format="rgb24").tobytes() for f in container.decode(video=0)]


def test_joined_output_is_encrypted_at_the_join(tmp_path: Path) -> None:
    """With --encrypt the join writes CENC: the key decodes the same frames as a plain join."""
    from faceveil.compliance.keys import new_encryption_key
    from faceveil.media.video_io import VideoOutputConfig

    key = new_encryption_key()
    video = make_video(tmp_path / "in.mp4", frames=60, keyint=10)
    plain = VideoJobConfig(anonymizer=AnonymizerConfig())
    locked = VideoJobConfig(anonymizer=AnonymizerConfig(), output=VideoOutputConfig(encryption=key))
    run_segments_here(video, tmp_path / "plain.mp4", tmp_path / "plain.jsonl", plain, 1.0)
    run_segments_here(video, tmp_path / "locked.mp4", tmp_path / "locked.jsonl", locked, 1.0)
    frames = _decoded(tmp_path / "plain.mp4", {})
    assert _decoded(tmp_path / "locked.mp4", key.demuxer_options()) == frames and len(frames) == 60
    try:
        without = _decoded(tmp_path / "locked.mp4", {})
    except av.error.InvalidDataError:
        without = []
    assert without != frames
