"""The voice disguise on the live sound path: CPU per second of stereo 48 kHz audio and the
latency it adds, each against a reference measured in the same run.

    make bench-voice-live
    .venv/bin/python benchmarks/voice_live_bench.py [--seconds 60] [--paced 10]

Speech: LibriSpeech utterances from ``../shared/data/speech`` (16 kHz mono), joined, resampled
to 48 kHz and made stereo (the right channel at 0.8 of the left), the form a live source's
sound takes in ``faceveil stream``.

- CPU: the live filter (`FilteredAudio` around the stream's disguiser, the source's 1024-sample
  AAC blocks) against the offline disguise of the same samples in one call
  (`faceveil.disguise_voice`): ms of CPU per second of audio, x real time, and the ratio.
- Latency: the sound played at its real pace through a stream's audio thread (`SoundPath`, as
  in a live stream), with and without the disguise; per block, arrival to hand-over to the
  outputs (p50, p95, max). The disguise adds its analysis frame (``latency_samples``) and its
  compute; the reference run without a filter gives the thread's own wait.

Single-threaded numpy (``OMP_NUM_THREADS=1``); on a shared machine the figures move with the
load others put on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import av  # numpy and its kernels after the thread settings above
import numpy as np
import numpy.typing as npt

from faceveil.stream.audio import AUDIO_RATE, AudioBlock, FilteredAudio, disguiser
from faceveil.stream.sound import SoundPath
from faceveil.stream.stats import StreamStats, percentile
from faceveil.voice import VoiceConfig, disguise_voice

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
BLOCK = 1024
Samples = npt.NDArray[np.float32]


def speech(seconds: float) -> Samples:
    """``seconds`` of joined utterances at 48 kHz, stereo."""
    files = sorted((DATA / "test_other").rglob("*.flac"))
    if not files:
        raise SystemExit(f"the speech data is missing: expected FLAC files under {DATA}")
    parts: list[Samples] = []
    total = 0
    for path in files:
        with av.open(str(path)) as container:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    parts.append(np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1))
                    total += parts[-1].size
        if total >= seconds * AUDIO_RATE:
            break
    mono = np.concatenate(parts)[: round(seconds * AUDIO_RATE)].astype(np.float32)
    return np.ascontiguousarray(np.stack([mono, 0.8 * mono], axis=1))


def cpu_live(x: Samples, seed: int) -> float:
    audio = FilteredAudio(disguiser(VoiceConfig(seed=seed))(AUDIO_RATE, 2), 2)
    start = time.process_time()
    for i in range(0, len(x), BLOCK):
        audio.push(AudioBlock(x[i : i + BLOCK], i / AUDIO_RATE))
    audio.flush()
    return time.process_time() - start


def cpu_offline(x: Samples, seed: int) -> float:
    start = time.process_time()
    disguise_voice(x, AUDIO_RATE, VoiceConfig(seed=seed))
    return time.process_time() - start


def paced(x: Samples, disguise: bool) -> dict[str, float | None]:
    """Blocks at their real pace through a stream's audio thread; its latency figures (ms)."""
    stats = StreamStats()
    factory = disguiser(VoiceConfig(seed=1)) if disguise else None
    path = SoundPath("bench", factory, lambda block: None, stats)
    path.start()
    begin = time.monotonic()
    for i in range(0, len(x), BLOCK):
        due = begin + (i + BLOCK) / AUDIO_RATE  # a block arrives once its last sample was heard
        time.sleep(max(0.0, due - time.monotonic()))
        path.put(AudioBlock(x[i : i + BLOCK], i / AUDIO_RATE))
    path.finish()
    values = list(stats.audio_latency_ms)
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values, default=None),
        "filter_latency_ms": None if path.audio is None else 1000.0 * path.audio.latency / AUDIO_RATE,
    }


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="audio for the CPU figures")
    parser.add_argument("--paced", type=float, default=10.0, help="audio played at its pace, per run")
    args = parser.parse_args()
    x = speech(max(args.seconds, args.paced))
    cpu = x[: round(args.seconds * AUDIO_RATE)]
    live = min(cpu_live(cpu, seed) for seed in range(3))
    offline = min(cpu_offline(cpu, seed) for seed in range(3))
    play = x[: round(args.paced * AUDIO_RATE)]
    reference = paced(play, disguise=False)
    disguised = paced(play, disguise=True)
    seconds = len(cpu) / AUDIO_RATE

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f} (the figures move with the load others put on it)"
    )
    print(f"\nCPU, {seconds:.0f} s of stereo 48 kHz speech (best of 3, one thread)")
    print(f"{'path':<34}{'CPU ms / audio s':>18}{'x real time':>13}{'ratio':>8}")
    rows = (("offline disguise_voice (reference)", offline), ("live filter, 1024-sample blocks", live))
    for name, value in rows:
        print(f"{name:<34}{1000 * value / seconds:>18.1f}{seconds / value:>13.1f}{value / offline:>8.2f}")
    print(f"\nlatency on a stream's audio thread, {args.paced:.0f} s at the real pace (ms, per block)")
    print(f"{'run':<34}{'p50':>8}{'p95':>8}{'max':>8}{'frame':>8}")
    for name, row in (("no filter (reference)", reference), ("voice disguise", disguised)):
        frame = row["filter_latency_ms"]
        print(f"{name:<34}{ms(row['p50']):>8}{ms(row['p95']):>8}{ms(row['max']):>8}{ms(frame):>8}")
    added = None
    if disguised["p50"] is not None and reference["p50"] is not None:
        added = disguised["p50"] - reference["p50"]
    summary = {
        "cpu_ms_per_audio_s": {"live": 1000 * live / seconds, "offline": 1000 * offline / seconds},
        "live_over_offline": live / offline,
        "latency_ms": {"reference": reference, "disguise": disguised, "added_p50": added},
    }
    print("\n" + json.dumps(_rounded(summary)))
    print(f"added latency (p50, disguise minus reference): {ms(added)} ms; target: at most 60 ms")


if __name__ == "__main__":
    main()
