"""Load benchmark of the web service: many clients posting photos, and one huge upload.

    .venv/bin/python benchmarks/service_load.py [--clients 20] [--seconds 60] [--upload-gb 2]

1. Starts ``faceveil serve`` on loopback (a real process, its own data folder).
2. Reference: the same photos posted one at a time (single-photo latency), in this run.
3. Load: ``--clients`` threads post photos back to back for ``--seconds``; reports throughput,
   p50/p95 latency (also as multiples of the single-photo time) and errors.
4. Memory: a ``--upload-gb`` GB video-job upload streamed to the server, whose peak resident
   memory (VmHWM) is read from /proc before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = ROOT.parent / "shared" / "data" / "images"
PHOTOS = ("fr_two_people.jpg", "ua_coco01_two_people.jpg", "deface_city_crosswalk.jpg", "fr_low_res_240p.jpg")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FACEVEIL_DATA_DIR": str(data)}
    command = [sys.executable, "-m", "faceveil", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/v1/health"
    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of ``pid`` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def post(client: httpx.Client, data: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    response = client.post("/api/v1/photos/anonymize", content=data)
    return time.perf_counter() - start, response.status_code


def single(url: str, photos: list[bytes], rounds: int) -> list[float]:
    with httpx.Client(base_url=url, timeout=120) as client:
        post(client, photos[0])  # loads the model
        return [post(client, photo)[0] for _ in range(rounds) for photo in photos]


def load(url: str, photos: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client_loop(n: int) -> None:
        with httpx.Client(base_url=url, timeout=300) as client:
            i = n
            while time.monotonic() < stop:
                try:
                    elapsed, status = post(client, photos[i % len(photos)])
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(type(exc).__name__)
                    continue
                with lock:
                    if status == 200:
                        latencies.append(elapsed)
                    else:
                        errors.append(str(status))
                i += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    return {"requests": len(latencies), "errors": errors, "wall_s": wall, "latencies": latencies}


def big_upload(url: str, pid: int, gigabytes: float) -> dict[str, Any]:
    total = int(gigabytes * 1_000_000_000)
    chunk = os.urandom(1024 * 1024)

    def body() -> Any:
        sent = 0
        while sent < total:
            piece = chunk[: min(len(chunk), total - sent)]
            sent += len(piece)
            yield piece

    before = peak_rss_mb(pid)
    start = time.perf_counter()
    with httpx.Client(base_url=url, timeout=600) as client:
        response = client.post("/api/v1/jobs", content=body(), headers={"Content-Length": str(total)})
    wall = time.perf_counter() - start
    after = peak_rss_mb(pid)
    return {
        "bytes": total,
        "status": response.status_code,
        "answer": response.json().get("error", {}).get("code"),
        "wall_s": round(wall, 1),
        "rss_before_mb": round(before[0], 1),
        "peak_rss_mb": round(after[1], 1),
    }


def fresh_upload(data: Path, gigabytes: float) -> dict[str, Any]:
    """The big upload on a server of its own (no photo model loaded): what the upload costs."""
    port = free_port()
    server = start_server(data / "upload", port)
    try:
        return big_upload(f"http://127.0.0.1:{port}", server.pid, gigabytes)
    finally:
        server.terminate()
        server.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--upload-gb", type=float, default=2.0)
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "service_load.json")
    args = parser.parse_args()
    photos = [(args.images / name).read_bytes() for name in PHOTOS]
    data = Path(tempfile.mkdtemp(prefix="faceveil-load-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(data, port)
    try:
        reference = single(url, photos, rounds=3)
        ref = statistics.mean(reference)  # same mix of photos as the load
        print(
            f"single photo (one client, {len(reference)} requests of the same mix): "
            f"mean {ref * 1000:.0f} ms, median {statistics.median(reference) * 1000:.0f} ms"
        )
        result = load(url, photos, args.clients, args.seconds)
        lat = result["latencies"]
        p50, p95 = percentile(lat, 0.5), percentile(lat, 0.95)
        throughput = result["requests"] / result["wall_s"]
        print(
            f"{args.clients} clients for {args.seconds:.0f} s: {result['requests']} photos, "
            f"{throughput:.2f} photos/s, p50 {p50 * 1000:.0f} ms ({p50 / ref:.1f}x single), "
            f"p95 {p95 * 1000:.0f} ms ({p95 / ref:.1f}x single), errors {len(result['errors'])}"
        )
        upload = fresh_upload(data, args.upload_gb) if args.upload_gb > 0 else None
        if upload is not None:
            print(
                f"{upload['bytes'] / 1e9:.1f} GB upload: answered {upload['status']} ({upload['answer']}) "
                f"after {upload['wall_s']} s; fresh server's memory {upload['rss_before_mb']} MB before, "
                f"peak {upload['peak_rss_mb']} MB"
            )
        summary = {
            "single_ms": round(ref * 1000, 1),
            "clients": args.clients,
            "seconds": args.seconds,
            "requests": result["requests"],
            "throughput_per_s": round(throughput, 3),
            "p50_ms": round(p50 * 1000, 1),
            "p95_ms": round(p95 * 1000, 1),
            "p50_over_single": round(p50 / ref, 2),
            "p95_over_single": round(p95 / ref, 2),
            "errors": len(result["errors"]),
            "error_kinds": sorted(set(result["errors"])),
            "upload": upload,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
