"""x264 settings by cost and size: CPU milliseconds per frame, output size and quality (Y PSNR
against the frames given to the encoder) of each setting on one clip, as ratios to faceveil's
default measured in the same run.

    .venv/bin/python benchmarks/x264_settings.py [--video PATH] [--repeat 2]

Every setting encodes the same decoded 4:2:0 frames at the default quality (CRF); the CPU time
counts every thread of the process. Settings run interleaved ``--repeat`` times and the median
is kept (CPU seconds are steadier than wall time on a shared machine); the default runs twice
per round, the second copy showing how far the figures move by chance. ``--only NAME...`` runs
a subset.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from faceveil.media.video_io import VideoOutputConfig, codec_threads

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "facenet_pytorch_crowd_walk.mp4"

#: (name, x264 options besides crf, encoder threads or None for faceveil's codec_threads())
SETTINGS: list[tuple[str, dict[str, str], int | None]] = [
    ("default (superfast)", {"preset": "superfast"}, None),
    ("ultrafast", {"preset": "ultrafast"}, None),
    ("veryfast", {"preset": "veryfast"}, None),
    ("faster", {"preset": "faster"}, None),
    ("superfast threads=1", {"preset": "superfast"}, 1),
    ("superfast threads=4", {"preset": "superfast"}, 4),
    ("superfast tune=fastdecode", {"preset": "superfast", "tune": "fastdecode"}, None),
    ("superfast tune=zerolatency", {"preset": "superfast", "tune": "zerolatency"}, None),
    ("superfast tune=film", {"preset": "superfast", "tune": "film"}, None),
    ("ultrafast tune=zerolatency", {"preset": "ultrafast", "tune": "zerolatency"}, None),
    ("default again (noise)", {"preset": "superfast"}, None),
]


def decode(path: Path) -> tuple[list[npt.NDArray[np.uint8]], Fraction]:
    """Every frame's I420 pixels and the stream's rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate or 25)
        return [np.asarray(f.to_ndarray(), np.uint8) for f in container.decode(stream)], rate


def encode(
    frames: list[npt.NDArray[np.uint8]],
    rate: Fraction,
    options: dict[str, str],
    threads: int | None,
    target: Path,
) -> tuple[float, float]:
    """(CPU seconds, wall seconds) to encode ``frames`` into ``target``."""
    height, width = frames[0].shape[0] * 2 // 3, frames[0].shape[1]
    cpu, wall = time.process_time(), time.perf_counter()
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(VideoOutputConfig().quality), **options}
        stream.codec_context.thread_count = threads or codec_threads()
        for pixels in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return time.process_time() - cpu, time.perf_counter() - wall


def psnr_y(frames: list[npt.NDArray[np.uint8]], path: Path) -> float:
    """Mean Y-plane PSNR (dB) of ``path``'s frames against ``frames``."""
    height = frames[0].shape[0] * 2 // 3
    values = []
    with av.open(str(path)) as container:
        for original, decoded in zip(frames, container.decode(video=0), strict=True):
            a = original[:height].astype(np.float64)
            b = np.asarray(decoded.to_ndarray(), np.uint8)[:height].astype(np.float64)
            mse = float(np.mean((a - b) ** 2))
            values.append(99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse))
    return float(np.mean(values))


def measure(video: Path, repeat: int, work: Path) -> list[dict[str, Any]]:
    """One row per setting: medians over ``repeat`` interleaved runs."""
    frames, rate = decode(video)
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in SETTINGS}
    wall: dict[str, list[float]] = {name: [] for name, _, _ in SETTINGS}
    sizes: dict[str, int] = {}
    quality: dict[str, float] = {}
    for _ in range(repeat):
        for index, (name, options, threads) in enumerate(SETTINGS):
            target = work / f"{index}.mp4"
            seconds, elapsed = encode(frames, rate, options, threads, target)
            cpu[name].append(seconds)
            wall[name].append(elapsed)
            sizes[name] = target.stat().st_size
            if name not in quality:
                quality[name] = psnr_y(frames, target)
    reference = SETTINGS[0][0]
    ref_cpu = statistics.median(cpu[reference])
    rows = []
    for name, _, _ in SETTINGS:
        median = statistics.median(cpu[name])
        rows.append(
            {
                "setting": name,
                "cpu_ms_per_frame": round(1000 * median / len(frames), 1),
                "wall_ms_per_frame": round(1000 * statistics.median(wall[name]) / len(frames), 1),
                "cpu_vs_default": round(median / ref_cpu, 2),
                "size_mb": round(sizes[name] / 1e6, 2),
                "size_vs_default": round(sizes[name] / sizes[reference], 2),
                "psnr_y_db": round(quality[name], 2),
            }
        )
    return rows


def main() -> int:
    """Print the table and its JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--only", nargs="*", default=None, help="setting names to run (the default always runs)"
    )
    args = parser.parse_args()
    if args.only is not None:
        SETTINGS[1:] = [s for s in SETTINGS[1:] if s[0] in args.only]
    with tempfile.TemporaryDirectory(prefix="faceveil-x264-") as tmp:
        rows = measure(args.video, max(1, args.repeat), Path(tmp))
    print(
        f"{args.video.name}, crf {VideoOutputConfig().quality}, {codec_threads()} encoder threads by default"
    )
    print("| setting | CPU ms/frame | x default | wall ms/frame | size MB | x default | Y PSNR dB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['setting']} | {r['cpu_ms_per_frame']} | {r['cpu_vs_default']} | {r['wall_ms_per_frame']} "
            f"| {r['size_mb']} | {r['size_vs_default']} | {r['psnr_y_db']} |"
        )
    print(json.dumps({"video": str(args.video), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
