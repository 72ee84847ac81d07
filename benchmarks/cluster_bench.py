"""Cluster benchmark: the segment path on a local Ray cluster against a plain run, in the same run.

    make bench-cluster
    .venv/bin/python benchmarks/cluster_bench.py [--video PATH] [--loops N] [--segment-seconds S]

1. Throughput: a real recording (looped by stream copy to a longer input) anonymized by a plain
   single-process run (the reference), then on a local Ray cluster with 1 and with 2 workers.
   Reported as ratios against the plain run: ``overhead`` is the 1-worker cluster time over the
   plain time (the target is <= 1.15), ``speedup_2`` the plain time over the 2-worker time. The
   serial share (planning, start-up, tracking, transfers, joining: the 1-worker run's time
   less the time its worker spent on segments) predicts 8 and 32 workers by Amdahl's law, for
   an input with at least that many segments (this machine's cores bound what it can show).
2. One hour of 1080p (synthetic: FFmpeg's ``testsrc`` at a tiny bitrate, one minute encoded and
   looped by stream copy): the planner's segment count and time (demux only), and the time to
   join the hour's segments (remux; the segments are cut from the file by stream copy, so no
   frame is decoded or encoded).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "face_recognition_short_hamilton_clip.mp4"


def loop_copy(source: Path, loops: int, target: Path) -> Path:
    """``source`` played ``loops`` times, by stream copy (no re-encoding)."""
    command = ["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops - 1), "-i", str(source)]
    subprocess.run([*command, "-c", "copy", "-fflags", "+bitexact", str(target)], check=True)
    return target


def synthetic_hour(folder: Path) -> Path:
    """One hour of 1080p at 25 fps, keyframes every 2 s, a tiny bitrate."""
    minute = folder / "minute.mp4"
    source = "testsrc=size=1920x1080:rate=25:duration=60"
    encode = ["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "60k", "-g", "50", "-pix_fmt", "yuv420p"]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, *encode, str(minute)], check=True
    )
    return loop_copy(minute, 60, folder / "hour.mp4")


def cut_segments(source: Path, plan: Any, folder: Path) -> list[Path]:
    """The plan's segments as NUT files, by stream copy (what the workers would send back)."""
    import av

    parts: list[Path] = []
    starts = {s.pts[0]: s.number for s in plan.segments}
    out: Any = None
    stream: Any = None
    with av.open(str(source)) as container:
        video = container.streams.video[0]
        for packet in container.demux(video):
            if not packet.size:
                continue
            if packet.is_keyframe and packet.pts in starts:
                if out is not None:
                    out.close()
                parts.append(folder / f"{starts[packet.pts]:06d}.nut")
                out = av.open(str(parts[-1]), "w", format="nut")
                stream = out.add_stream_from_template(video)
            packet.stream = stream
            out.mux(packet)
    if out is not None:
        out.close()
    return parts


def bench_hour(folder: Path, segment_seconds: float) -> dict[str, Any]:
    from faceveil.cluster.join import join_segments
    from faceveil.cluster.plan import plan_segments
    from faceveil.media.video_io import VideoOutputConfig, open_input, probe

    hour = synthetic_hour(folder)
    start = time.perf_counter()
    plan = plan_segments(hour, segment_seconds)
    plan_s = time.perf_counter() - start
    parts = cut_segments(hour, plan, folder)
    with open_input(hour) as container:
        info = probe(container)
    start = time.perf_counter()
    join_segments(parts, hour, info, folder / "joined.mp4", VideoOutputConfig(audio="drop"))
    join_s = time.perf_counter() - start
    return {
        "input": "synthetic 1080p, 25 fps, 1 h",
        "frames": plan.frames,
        "keyframes": plan.keyframes,
        "segment_seconds": segment_seconds,
        "segments": len(plan),
        "plan_s": round(plan_s, 2),
        "join_s": round(join_s, 2),
        "bytes": hour.stat().st_size,
    }


def bench_throughput(video: Path, folder: Path, segment_seconds: float) -> dict[str, Any]:
    import ray

    from faceveil.cluster.ray_backend import ClusterConfig
    from faceveil.cluster.video_job import ClusterVideoJob
    from faceveil.pipeline.video import VideoJob, VideoJobConfig

    config = VideoJobConfig()
    start = time.perf_counter()
    plain = VideoJob(config).run(video, folder / "plain.mp4")  # model loading included, as below
    plain_s = time.perf_counter() - start
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        runs = {}
        for workers in (1, 2):
            cluster = ClusterConfig(workers=workers, segment_seconds=segment_seconds)
            start = time.perf_counter()
            report = ClusterVideoJob(config, cluster).run(video, folder / f"cluster{workers}.mp4")
            runs[workers] = (time.perf_counter() - start, report.segments, report.work_s)
    finally:
        ray.shutdown()
    one, two = runs[1][0], runs[2][0]
    # Amdahl's law from the 1-worker run: t(n) = serial + work / n, where work is the time the
    # worker spent on segments and serial the rest (planning, start-up, tracking, transfers, join)
    work = min(runs[1][2], one)
    serial = one - work
    share = serial / one

    def predicted(n: int) -> float:
        return round(plain_s / (serial + work / n), 2)

    return {
        "input": f"{video.name} ({plain.frames} frames)",
        "segments": runs[1][1],
        "plain_s": round(plain_s, 2),
        "plain_fps": round(plain.frames / plain_s, 2),
        "cluster_1_s": round(one, 2),
        "cluster_2_s": round(two, 2),
        "fps_1": round(plain.frames / one, 2),
        "fps_2": round(plain.frames / two, 2),
        "overhead": round(one / plain_s, 3),
        "speedup_2": round(plain_s / two, 2),
        "serial_share": round(share, 3),
        "predicted_speedup_8": predicted(8),
        "predicted_speedup_32": predicted(32),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--loops", type=int, default=4, help="the recording is played this often (default 4)")
    parser.add_argument("--segment-seconds", type=float, default=9.0)
    parser.add_argument("--skip-hour", action="store_true", help="only the throughput part")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        print("cluster_bench: needs the ffmpeg command (make sysdeps)", file=sys.stderr)
        return 1
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # the bench's own cluster: token authentication with a token made for this run, in the
    # environment only (no token file is left behind, nothing on a command line)
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="faceveil-cluster-bench-") as tmp:
        folder = Path(tmp)
        video = loop_copy(args.video, args.loops, folder / f"looped{args.video.suffix}")
        results = {"throughput": bench_throughput(video, folder, args.segment_seconds)}
        print(json.dumps(results["throughput"]), flush=True)
        if not args.skip_hour:
            hour = folder / "hour"
            hour.mkdir()
            results["hour"] = bench_hour(hour, 60.0)
            print(json.dumps(results["hour"]), flush=True)
    print(f"cpus here: {os.cpu_count()} (timings are contended when other work runs)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
