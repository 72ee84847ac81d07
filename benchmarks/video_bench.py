"""Video benchmark: frames per second of `faceveil video` per preset, at 1080p and 720p, against
deface 1.5.0 with its defaults on the same file, in the same run.

    make bench-video      # builds a throwaway deface environment under .bench/ first
    .venv/bin/python benchmarks/video_bench.py [--video PATH] [--deface PATH] [--presets ...]

Every command runs end to end as a user would run it (start-up and model loading included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "facenet_pytorch_crowd_walk.mp4"
DEFAULT_DEFACE = ROOT / ".bench" / "deface" / "bin" / "deface"
FACEVEIL = [sys.executable, "-m", "faceveil"]


def frame_count(path: Path) -> int:
    """Frames actually decoded from ``path``."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def scaled_copy(source: Path, height: int, target: Path) -> Path:
    """A copy of ``source`` resized to ``height`` lines (same frames and timestamps)."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        stream_in = src.streams.video[0]
        width = round(stream_in.codec_context.width * height / stream_in.codec_context.height / 2) * 2
        stream = out.add_stream("libx264", rate=stream_in.average_rate or Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = stream_in.time_base
        stream.options = {"crf": "18", "preset": "veryfast"}
        for frame in src.decode(stream_in):
            resized = frame.reformat(width=width, height=height, format="yuv420p")
            resized.pts, resized.time_base = frame.pts, frame.time_base
            for packet in stream.encode(resized):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return target


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak resident memory in MB) of ``command``; raises if it fails."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, command)
    return seconds, usage.ru_maxrss / 1024  # kilobytes on Linux


def main() -> int:
    """Run the benchmark; print a table and write JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--deface", type=Path, default=DEFAULT_DEFACE, help="deface executable ('' to skip)")
    parser.add_argument(
        "--presets", nargs="+", default=["default"], help="'default' (no --preset), or preset names"
    )
    parser.add_argument("--heights", nargs="+", type=int, default=[1080, 720])
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "video.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="faceveil-bench-") as tmp:
        work = Path(tmp)
        for height in args.heights:
            clip = scaled_copy(args.video, height, work / f"clip{height}.mp4")
            frames = frame_count(clip)
            runs: list[tuple[str, list[str]]] = []
            if args.deface and Path(args.deface).exists():
                runs.append(
                    ("deface 1.5.0 (defaults)", [str(args.deface), str(clip), "-o", str(work / "d.mp4")])
                )
            for preset in args.presets:
                out = work / f"f-{preset}.mp4"
                chosen = [] if preset == "default" else ["--preset", preset]
                name = "faceveil (defaults)" if preset == "default" else f"faceveil --preset {preset}"
                runs.append((name, [*FACEVEIL, "video", str(clip), "-o", str(out), "-q", *chosen]))
            for name, command in runs:
                seconds, peak = timed(command)
                rows.append(
                    {
                        "configuration": name,
                        "height": height,
                        "frames": frames,
                        "seconds": round(seconds, 2),
                        "fps": round(frames / seconds, 2),
                        "peak_mb": round(peak),
                    }
                )
                print(
                    f"{height}p  {name:<32} {frames / seconds:7.2f} fps  ({seconds:.1f} s, {peak:.0f} MB)",
                    flush=True,
                )
    reference = {r["height"]: r["fps"] for r in rows if r["configuration"].startswith("deface")}
    for row in rows:
        if row["height"] in reference:
            row["x_deface"] = round(row["fps"] / reference[row["height"]], 2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"video": str(args.video), "rows": rows}, indent=2))
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
