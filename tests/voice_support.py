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


def f0_track(x: Samples, rate: int, lo: float = 60.0, hi: float = 500.0) -> npt.NDArray[np.float64]:
    """Fundamental frequency of every 40 ms frame (10 ms hop) from the normalised
    autocorrelation peak; NaN where a frame is quiet or not clearly periodic."""
    n, hop = int(0.04 * rate), int(0.01 * rate)
    lags = np.arange(int(rate / hi), int(rate / lo))
    track = []
    for start in range(0, len(x) - n, hop):
        frame = x[start : start + n] - np.mean(x[start : start + n])
        ac = np.correlate(frame, frame, "full")[n - 1 :]
        best = lags[np.argmax(ac[lags])]
        voiced = np.sqrt(np.mean(frame**2)) >= 0.01 and ac[best] > 0.4 * ac[0]
        track.append(rate / best if voiced else np.nan)
    return np.asarray(track, dtype=np.float64)


def f0_autocorrelation(x: Samples, rate: int, lo: float = 60.0, hi: float = 500.0) -> float:
    """Median fundamental frequency over the voiced frames of `f0_track`."""
    track = f0_track(x, rate, lo, hi)
    assert np.any(np.isfinite(track)), "no voiced frame found"
    return float(np.nanmedian(track))


def pitch_move(x: Samples, y: Samples, rate: int) -> float:
    """Median pitch change in semitones from ``x`` to ``y`` over the frames voiced in both."""
    a, b = f0_track(x, rate), f0_track(y, rate)
    both = np.isfinite(a) & np.isfinite(b)
    assert both.sum() >= 10, "too few frames voiced in both"
    return float(np.median(12 * np.log2(b[both] / a[both])))


def rms_db(x: npt.NDArray[np.floating[Any]]) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2))))
