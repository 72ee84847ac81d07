"""Signals and measurements shared by the voice tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]


def vowel(rate: int = 16000, seconds: float = 1.5, f0: float = 130.0, seed: int = 0) -> Samples:
    """A voiced, vowel-like signal: a glottal pulse train with a little jitter through three
    formant resonances, with an amplitude envelope."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    phase = np.cumsum(np.full(n, f0 / rate) * (1 + 0.002 * rng.standard_normal(n)))
    source = np.diff(np.floor(phase), prepend=0.0) - f0 / rate  # one pulse per period
    spectrum = np.fft.rfft(source)
    hz = np.fft.rfftfreq(n, 1 / rate)
    shape = sum(1.0 / (1 + ((hz - f) / bw) ** 2) for f, bw in ((700, 90), (1200, 110), (2600, 160)))
    x = np.fft.irfft(spectrum * shape, n=n)
    x *= np.hanning(n) ** 0.3
    return np.asarray(0.3 * x / np.abs(x).max(), dtype=np.float32)


def f0_autocorrelation(x: Samples, rate: int, lo: float = 60.0, hi: float = 500.0) -> float:
    """Median fundamental frequency over voiced 40 ms frames (normalised autocorrelation peak)."""
    n, hop = int(0.04 * rate), int(0.01 * rate)
    found = []
    for start in range(0, len(x) - n, hop):
        frame = x[start : start + n] - np.mean(x[start : start + n])
        if np.sqrt(np.mean(frame**2)) < 0.01:
            continue
        ac = np.correlate(frame, frame, "full")[n - 1 :]
        lags = np.arange(int(rate / hi), int(rate / lo))
        best = lags[np.argmax(ac[lags])]
        if ac[best] > 0.4 * ac[0]:
            found.append(rate / best)
    assert found, "no voiced frame found"
    return float(np.median(found))


def rms_db(x: npt.NDArray[np.floating[Any]]) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2))))
