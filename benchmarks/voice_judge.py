"""The judges of the voice benchmark, run in the throwaway ``.bench/voice`` environment only.

    .bench/voice/bin/python benchmarks/voice_judge.py JOB.json RESULT.json

JOB.json: ``{"embed": [wav, ...], "asr": [wav, ...], "mcadams": {"alpha": 0.8, "pairs": [[in,
out], ...]}, "cache": folder}``. RESULT.json: ``{"embed": {wav: [256 floats]}, "asr": {wav:
text}, "mcadams_cpu_s": seconds}``.

- attacker: resemblyzer's GE2E speaker encoder (its weights ship in its wheel);
- recognizer: pocketsphinx with the US English model its wheel ships;
- baseline: the McAdams-coefficient anonymizer (LPC pole angles raised to ``alpha`` per frame),
  written here from its published description.

Results of the judges (and the baseline's outputs with their CPU time) are cached by the audio's
SHA-256 in ``.bench/voice-cache`` (original speech is judged once; remove it to measure anew).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Float = npt.NDArray[np.float64]
RATE = 16000


def read_audio(path: str) -> Float:
    """Mono float samples of a 16 kHz file."""
    import soundfile

    data, rate = soundfile.read(path, dtype="float64", always_2d=True)
    if rate != RATE:
        raise SystemExit(f"{path}: {rate} Hz; the judges take {RATE} Hz")
    return np.asarray(data.mean(axis=1))


def write_wav(path: str, samples: Float) -> None:
    """16-bit PCM WAV."""
    import soundfile

    soundfile.write(path, np.clip(samples, -1.0, 1.0), RATE, subtype="PCM_16")


def _lpc(frames: Float, order: int) -> Float:
    """LPC polynomials of every row of ``frames`` (autocorrelation method, Levinson-Durbin run
    on all frames at once); ``a[:, 0] = 1``."""
    n = frames.shape[1]
    spectrum = np.fft.rfft(frames, 2 * n, axis=1)
    r = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, : order + 1]
    a = np.zeros((len(frames), order + 1))
    a[:, 0] = 1.0
    err = r[:, 0] + 1e-9
    for i in range(1, order + 1):
        k = -(r[:, i] + np.einsum("fj,fj->f", a[:, 1:i], r[:, i - 1 : 0 : -1])) / err
        a[:, 1 : i + 1] = a[:, 1 : i + 1] + k[:, None] * np.concatenate(
            [a[:, i - 1 : 0 : -1], np.ones((len(frames), 1))], axis=1
        )
        err = err * (1.0 - k * k)
    return a


def _warp_poles(a: Float, alpha: float) -> Float:
    """The McAdams step: every complex pole's angle phi (0 < phi < pi) becomes phi ** alpha."""
    order = a.shape[1] - 1
    companion = np.zeros((len(a), order, order))
    companion[:, 0, :] = -a[:, 1:]
    companion[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    poles = np.linalg.eigvals(companion)
    angle = np.angle(poles)
    complex_pole = np.abs(poles.imag) > 1e-12
    warped = np.where(complex_pole, np.sign(angle) * np.abs(angle) ** alpha, angle)
    new_poles = np.abs(poles) * np.exp(1j * warped)
    out = np.zeros_like(a)
    for f in range(len(a)):
        out[f] = np.real(np.poly(new_poles[f]))
    return out


def mcadams(x: Float, alpha: float, order: int = 20, win_s: float = 0.02, hop_s: float = 0.01) -> Float:
    """McAdams-coefficient anonymization: every complex LPC pole's angle phi becomes phi ** alpha
    (20 ms Hann frames, 10 ms hop, order 20; LPC residual through the warped all-pole filter)."""
    from scipy.signal import lfilter

    n, hop = int(win_s * RATE), int(hop_s * RATE)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic Hann: sums to 1 at 50 %
    padded = np.concatenate([np.zeros(n), x, np.zeros(n)])
    starts = np.arange(0, len(padded) - n + 1, hop)
    frames = padded[starts[:, None] + np.arange(n)] * window
    live = np.any(frames != 0, axis=1)
    a = _lpc(frames[live], order)
    a_new = _warp_poles(a, alpha)
    out = np.zeros_like(padded)
    for start, frame, old, new in zip(starts[live], frames[live], a, a_new, strict=True):
        out[start : start + n] += lfilter([1.0], new, lfilter(old, [1.0], frame)) * window
    y = out[n : n + len(x)]
    rms_in, rms_out = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(y**2))
    return np.asarray(y * (rms_in / rms_out if rms_out > 0 else 1.0))


def baseline(source: str, target: str, alpha: float, cache: Path) -> float:
    """McAdams-anonymize ``source`` into ``target``; returns the CPU seconds it took (cached with
    the output: a rerun reports the time measured when it was made)."""
    import shutil

    import scipy.signal  # noqa: F401 - imported before the clock starts

    key = f"mcadams-{alpha:g}-{_digest(source)}"
    wav, cost = cache / f"{key}.wav", cache / f"{key}.cpu"
    if wav.exists() and cost.exists():
        shutil.copyfile(wav, target)
        return float(cost.read_text(encoding="utf-8"))
    x = read_audio(source)
    start = time.process_time()
    y = mcadams(x, alpha)
    spent = time.process_time() - start
    write_wav(str(wav), y)
    cost.write_text(repr(spent), encoding="utf-8")
    shutil.copyfile(wav, target)
    return spent


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def embed(paths: list[str], cache: Path) -> dict[str, list[float]]:
    """GE2E embeddings (unit vectors) of ``paths``."""
    encoder = None
    out: dict[str, list[float]] = {}
    for path in paths:
        hit = cache / f"ge2e-{_digest(path)}.npy"
        if hit.exists():
            out[path] = np.load(hit).tolist()
            continue
        from resemblyzer import VoiceEncoder, preprocess_wav

        if encoder is None:
            encoder = VoiceEncoder("cpu", verbose=False)
        vector = encoder.embed_utterance(preprocess_wav(read_audio(path).astype(np.float32), RATE))
        np.save(hit, vector)
        out[path] = vector.tolist()
    return out


def recognize(paths: list[str], cache: Path) -> dict[str, str]:
    """pocketsphinx transcripts of ``paths``."""
    decoder: Any = None
    out: dict[str, str] = {}
    for path in paths:
        hit = cache / f"sphinx-{_digest(path)}.txt"
        if hit.exists():
            out[path] = hit.read_text(encoding="utf-8")
            continue
        from pocketsphinx import Decoder

        if decoder is None:
            decoder = Decoder(samprate=RATE, loglevel="FATAL")
        pcm = (np.clip(read_audio(path), -1.0, 1.0) * 32767).astype("<i2").tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        text = decoder.hyp().hypstr if decoder.hyp() is not None else ""
        hit.write_text(text, encoding="utf-8")
        out[path] = text
    return out


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    cache = Path(job["cache"])
    cache.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    if "mcadams" in job:
        alpha = float(job["mcadams"]["alpha"])
        result["mcadams_cpu_s"] = sum(
            baseline(source, target, alpha, cache) for source, target in job["mcadams"]["pairs"]
        )
    result["embed"] = embed(job.get("embed", []), cache)
    result["asr"] = recognize(job.get("asr", []), cache)
    Path(sys.argv[2]).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
