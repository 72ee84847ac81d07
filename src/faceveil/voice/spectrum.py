"""The speaker's long-term spectrum, and the equaliser that replaces it with a generic one.

A voice's average spectrum (its long-term average spectrum: the vocal tract's mean shape, the
voice's tilt, the microphone) is much of what a speaker encoder recognises, and almost nothing
of what speech recognition needs: recognisers subtract each recording's mean cepstrum, which
is that same average. The disguise therefore measures it, over the louder half of the frames
(the speech, not the pauses), and divides it out, multiplying in a generic speech slope in its
place (flat to ``TARGET_KNEE_HZ``, then -6 dB per octave). Every speaker comes out of that step
with the same average spectrum, before the random colouring gives each recording its own.

`SpectrumMeter` gathers the statistics: over a whole recording before the disguise runs (files,
sound tracks: :func:`measure_spectrum`), or as the audio comes (live streams, where the gain
grows from none to full over the first ``LIVE_RAMP_S`` seconds of sound and then follows the
last minutes).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: The generic slope: flat up to this frequency, then -6 dB per octave.
TARGET_KNEE_HZ = 500.0
#: The equaliser acts up to this frequency and is held constant above it (a band a speaker
#: encoder or a recogniser at 16 kHz sees; higher bands are mostly noise to boost).
TOP_HZ = 8000.0
#: Width of the smoothing of the equaliser across frequency.
SMOOTH_HZ = 30.0
#: Largest boost or cut of any band relative to the others, in dB.
MAX_GAIN_DB = 30.0
#: Frame levels are binned by this many dB (the median split of the frames uses the bins).
_LEVEL_STEP_DB = 1.0
_LEVEL_RANGE_DB = (-110.0, 20.0)
#: Live: seconds of sound over which the gain grows from none to full, and the memory of the
#: statistics (older frames count less, with this time constant).
LIVE_RAMP_S = 4.0
LIVE_MEMORY_S = 120.0
#: Live: the gain is updated every this many seconds of sound.
LIVE_UPDATE_S = 0.1


class SpectrumMeter:
    """Power spectra of frames, kept per frame level so that the louder half can be averaged.

    Args:
        bins: spectrum bins of each frame.
        memory_frames: time constant, in frames, of the forgetting (None: remember all).
    """

    def __init__(self, bins: int, memory_frames: float | None = None) -> None:
        levels = round((_LEVEL_RANGE_DB[1] - _LEVEL_RANGE_DB[0]) / _LEVEL_STEP_DB)
        self._sums = np.zeros((levels, bins))
        self._counts = np.zeros(levels)
        self._decay = 1.0 if memory_frames is None else math.exp(-1.0 / memory_frames)
        self.frames = 0.0

    def add(self, power: npt.NDArray[Any]) -> None:
        """Count frames' power spectra ``(frames, bins)`` (already summed over channels)."""
        if power.shape[0] == 0:
            return
        total = power.sum(axis=-1)
        level = 10.0 * np.log10(np.maximum(total, 1e-30))
        index = np.floor((level - _LEVEL_RANGE_DB[0]) / _LEVEL_STEP_DB).astype(np.intp)
        keep = index >= 0  # digital silence says nothing about the voice
        index = np.minimum(index[keep], self._counts.shape[0] - 1)
        if self._decay != 1.0:
            fade = self._decay ** power.shape[0]
            self._sums *= fade
            self._counts *= fade
            self.frames *= fade
        np.add.at(self._sums, index, power[keep])
        np.add.at(self._counts, index, 1.0)
        self.frames += float(keep.sum())

    def louder_half(self) -> FloatArray | None:
        """Mean power spectrum of the frames at or above the median level (None: no frame yet)."""
        if self.frames <= 0.0:
            return None
        cumulative = np.cumsum(self._counts[::-1])[::-1]  # frames at or above each level
        median = int(np.nonzero(cumulative >= 0.5 * cumulative[0])[0][-1])
        count = self._counts[median:].sum()
        return np.asarray(self._sums[median:].sum(axis=0) / count) if count > 0 else None


def normalising_gain(spectrum: FloatArray, rate: int) -> FloatArray:
    """Natural-log amplitude gain per bin that turns ``spectrum`` (a mean power spectrum, bins
    from 0 Hz to ``rate / 2``) into the generic slope.

    The gain is smoothed over ``SMOOTH_HZ``, held constant above ``TOP_HZ``, limited to
    ``MAX_GAIN_DB`` around its loudness-weighted mean and centred on it (the disguise gives
    every frame its input's energy back, so the gain changes the spectrum's shape, never the
    loudness)."""
    bins = spectrum.shape[0]
    hz = np.arange(bins) * (rate / 2.0) / (bins - 1)
    target = 1.0 / (1.0 + hz / TARGET_KNEE_HZ)
    gain = target / np.sqrt(np.maximum(spectrum, 1e-20))
    width = max(1, round(SMOOTH_HZ / (hz[1] - hz[0]))) | 1
    padded = np.pad(gain, width // 2, mode="edge")
    gain = np.convolve(padded, np.ones(width) / width, mode="valid")
    top = int(np.searchsorted(hz, min(TOP_HZ, rate / 2.0), side="right"))
    gain[top:] = gain[top - 1]
    log_gain = np.log(np.maximum(gain, 1e-20))
    weight = spectrum / max(float(spectrum.sum()), 1e-30)
    log_gain -= float((log_gain * weight).sum())
    limit = MAX_GAIN_DB * math.log(10.0) / 20.0
    return np.asarray(np.clip(log_gain, -limit, limit))
