"""Start-up benchmark: `faceveil image` on one 1080p photo, whole process, against deface 1.5.0.

    make bench-start      # builds the throwaway deface environment under .bench/ first
    .venv/bin/python benchmarks/start_bench.py [--photo PATH] [--runs N] [--deface PATH]

A user who anonymizes one file per command pays the start every time: imports, model loading
(the int8 network comes from the per-user model cache after the first run) and the photo itself.
Both tools run as a user would run them, interleaved, after one untimed run each (the "first run
on this machine"); medians of wall time and of peak memory (RSS) are reported, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceveil.detection.base import create_detector, describe_detector
from faceveil.detection.runtime import format_runtime
from faceveil.media.image_io import read_image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTO = ROOT.parent / "shared" / "data" / "images" / "egoblur_gen1_person_portrait.jpg"
DEFAULT_DEFACE = ROOT / ".bench" / "deface" / "bin" / "deface"
FACEVEIL = ROOT / ".venv" / "bin" / "faceveil"


def photo_1080p(source: Path, target: Path) -> Path:
    """``source`` scaled to cover 1920x1080 and cropped to it, saved as JPEG (quality 95)."""
    rgb = read_image(source).rgb
    height, width = rgb.shape[:2]
    factor = max(1920 / width, 1080 / height)
    size = (max(1920, round(width * factor)), max(1080, round(height * factor)))
    big = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
    top, left = (size[1] - 1080) // 2, (size[0] - 1920) // 2
    crop = np.ascontiguousarray(big[top : top + 1080, left : left + 1920, ::-1])
    cv2.imwrite(str(target), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return target


def run_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``command``; raises if it fails."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if child.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({child.returncode}): {stderr[-800:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    """Run the benchmark; print a table and write JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO, help="scaled and cropped to 1920x1080")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each tool")
    parser.add_argument("--deface", type=Path, default=DEFAULT_DEFACE)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "start.json")
    args = parser.parse_args()
    if not args.deface.exists():
        parser.error(f"deface not found at {args.deface} (make bench-start builds it)")
    print(format_runtime(describe_detector(create_detector())).splitlines()[0])
    with tempfile.TemporaryDirectory(prefix="faceveil-bench-") as tmp:
        work = Path(tmp)
        photo = photo_1080p(args.photo, work / "photo.jpg")
        commands = {
            "faceveil": [str(FACEVEIL), "image", str(photo), "-o", str(work / "fv.jpg"), "--quiet"],
            "deface": [str(args.deface), str(photo), "-o", str(work / "deface.jpg")],
        }
        # an empty model cache of its own: the untimed first run builds the int8 network
        env = {**os.environ, "FACEVEIL_MODEL_CACHE": str(work / "model-cache")}
        first = {name: run_once(command, env) for name, command in commands.items()}
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                samples[name].append(run_once(command, env))
    rows: dict[str, dict[str, Any]] = {}
    for name, runs in samples.items():
        rows[name] = {
            "first_s": round(first[name][0], 3),
            "median_s": round(statistics.median(wall for wall, _ in runs), 3),
            "median_peak_mb": round(statistics.median(rss for _, rss in runs), 1),
        }
    ratio = rows["faceveil"]["median_s"] / rows["deface"]["median_s"]
    print(f"one 1920x1080 photo, whole process, {args.runs} interleaved runs after one untimed run")
    print(f"{'tool':<10} {'first s':>8} {'median s':>9} {'peak MB':>8}")
    for name, row in rows.items():
        print(f"{name:<10} {row['first_s']:>8.2f} {row['median_s']:>9.2f} {row['median_peak_mb']:>8.0f}")
    print(f"faceveil / deface: {ratio:.2f}x (target <= 1.2x)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"rows": rows, "ratio": round(ratio, 3)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
