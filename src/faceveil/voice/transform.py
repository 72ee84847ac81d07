"""The voice disguise: a source-filter split in a short-time Fourier transform.

Every frame's log spectrum is first divided by the speaker's long-term average spectrum and
multiplied by a generic one (see :mod:`faceveil.voice.spectrum`), then split into its smooth
envelope (cepstral liftering: the formants, set by the vocal tract) and its fine structure (the
harmonics of the pitch). The fine structure is moved by the pitch ratio (each spectral peak's
region moved rigidly with its phases: a peak-shifting phase vocoder, without the phasiness of
bin-by-bin shifting), the envelope by the formant ratio, and a smooth random equaliser colours
the result; each frame keeps its input's energy, so loudness stays. Frames overlap by 75 % with
Hann windows on both sides, so joins do not click, and everything that sounds goes through the
same transform (there is no speech detector to leave a voice clear).

`VoiceBlockFilter` runs block by block (for live audio, with one frame of latency);
:func:`disguise_voice` measures the recording's spectrum (:func:`measure_spectrum`), runs the
filter over it and drops that latency, so a filter given the same spectrum gives the same
samples; a live filter without one measures it as the sound comes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from faceveil.errors import ConfigError, InputError
from faceveil.voice.config import (
    EQ_TOP_HZ,
    MIN_MOVE_SEMITONES,
    DisguiseParams,
    VoiceConfig,
    draw_params,
)
from faceveil.voice.spectrum import (
    LIVE_MEMORY_S,
    LIVE_RAMP_S,
    LIVE_UPDATE_S,
    SpectrumMeter,
    normalising_gain,
)

FloatArray = npt.NDArray[np.float64]

#: Cepstral lifter cut-off: quefrencies below it are the envelope (1.8 ms: pitch up to ~550 Hz).
LIFTER_MS = 1.8
#: Sum of the squared Hann window over four hops: the overlap-add gain.
_OLA_GAIN = 1.5
_TINY = 1e-12
_TWO_PI32 = np.float32(2.0 * np.pi)
_INV_TWO_PI32 = np.float32(0.5 / np.pi)
#: Loudness follows the input over this many hops (80 ms at the default 40 ms frames).
_GAIN_HOPS = 8
#: Frames measured at a time by `measure_spectrum`.
_MEASURE_FRAMES = 2048
#: Largest loudness correction (x4: +-12 dB).
_MAX_GAIN = 4.0


def _frame_length(rate: int, frame_ms: float) -> int:
    """Frame length in samples: a multiple of 4 (hop = frame / 4) near ``frame_ms``."""
    return max(64, round(rate * frame_ms / 1000.0 / 4.0) * 4)


def _hann(n: int) -> FloatArray:
    """The analysis (and synthesis) window: periodic Hann, ``n`` samples."""
    return np.asarray(0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n))


class VoiceBlockFilter:
    """Disguises audio block by block, with the same transform on every channel.

    Args:
        rate: sample rate in Hz (8 kHz or more).
        channels: number of channels of every block.
        params: the transform (see :func:`faceveil.voice.draw_params`).
        frame_ms: analysis frame length in ms; the latency is one frame.

    Attributes:
        latency_samples: samples the output lags the input (one frame: 40 ms by default).
    """

    def __init__(
        self,
        rate: int,
        channels: int,
        params: DisguiseParams,
        frame_ms: float = 40.0,
        *,
        spectrum: FloatArray | None = None,
        normalise: bool = True,
    ) -> None:
        if rate < 8000:
            raise ConfigError(f"sample rate must be at least 8000 Hz, got {rate}")
        if not 1 <= channels <= 64:
            raise ConfigError(f"channels must lie in [1, 64], got {channels}")
        self.rate, self.channels, self.params = rate, channels, params
        n = self._n = _frame_length(rate, frame_ms)
        if n > 0.06 * rate:
            raise ConfigError(f"frame_ms {frame_ms} gives more than 60 ms of latency")
        hop = self._hop = n // 4
        self.latency_samples = n
        bins = n // 2 + 1
        self._window = _hann(n)
        self._synthesis = self._window / _OLA_GAIN
        self._to_cepstrum, self._from_cepstrum = self._cepstrum_maps(n, rate, params.formant_ratio)
        self._eq = self._make_eq(params, bins, rate).astype(np.float32)
        # state: input not yet framed (starts with the padding that makes the first frame end
        # at the first sample's hop), overlap-add tail, phases, output waiting to be returned
        self._pending = np.zeros((channels, n - hop))
        self._tail = np.zeros((channels, n - hop))
        self._rotation = np.zeros((channels, bins), dtype=np.float32)
        self._ready = np.zeros((channels, hop))
        self._energy_in = np.zeros(_GAIN_HOPS - 1)
        self._energy_out = np.zeros(_GAIN_HOPS - 1)
        self._gain = 1.0
        self._frames_done = 0
        # the speaker's long-term spectrum, divided out: measured beforehand (``spectrum``) or,
        # live, as the sound comes
        self._meter: SpectrumMeter | None = None
        self._norm = np.zeros(bins, dtype=np.float32)
        if normalise and spectrum is not None:
            if spectrum.shape != (bins,):
                raise ConfigError(
                    f"spectrum must have {bins} bins for frame_ms {frame_ms}, got {spectrum.shape}"
                )
            self._norm = normalising_gain(spectrum, rate).astype(np.float32)
        elif normalise:
            self._meter = SpectrumMeter(bins, LIVE_MEMORY_S * rate / hop)
        self._waiting: list[npt.NDArray[np.float32]] = []  # live: frames not yet counted

    @staticmethod
    def _cepstrum_maps(n: int, rate: int, formant: float) -> tuple[FloatArray, FloatArray]:
        """Matrices from a log spectrum to its low cepstrum, and from that to the smooth envelope
        at every bin and at every bin / ``formant`` (the warped envelope), side by side.

        The same as an inverse FFT, a tapered lifter (quefrencies under ``LIFTER_MS``) and an FFT
        back, but evaluated exactly at fractional bins and in two small matrix products."""
        bins = n // 2 + 1
        cut = max(8, round(rate * LIFTER_MS / 1000.0))
        q = np.arange(cut)
        k = np.arange(bins)
        weight = np.full(bins, 2.0)
        weight[0] = weight[-1] = 1.0
        to_cep = weight[:, None] * np.cos(2.0 * np.pi * np.outer(k, q) / n) / n
        taper = (0.5 + 0.5 * np.cos(np.pi * q / cut)) * np.where(q == 0, 1.0, 2.0)
        source = np.clip(k / formant, 0.0, bins - 1.0)
        plain = taper[:, None] * np.cos(2.0 * np.pi * np.outer(q, k) / n)
        warped = taper[:, None] * np.cos(2.0 * np.pi * np.outer(q, source) / n)
        return to_cep.astype(np.float32), np.concatenate([plain, warped], axis=1).astype(np.float32)

    @staticmethod
    def _make_eq(params: DisguiseParams, bins: int, rate: int) -> FloatArray:
        """The random colouring: cosines on a log-frequency axis from 50 Hz to ``EQ_TOP_HZ``
        (the first harmonics and the first formant, which a speaker encoder weighs most), faded
        out by 1.5 times that; above, the spectrum is left as the envelope and pitch moves make
        it."""
        hz = np.arange(bins) * (rate / 2.0) / (bins - 1)
        axis = np.clip(np.log(np.maximum(hz, 50.0) / 50.0) / math.log(EQ_TOP_HZ / 50.0), 0.0, 1.0)
        curve = np.zeros(bins)
        for term, (db, phase) in enumerate(params.eq, start=1):
            curve += db * np.cos(np.pi * term * axis + phase)
        fade = np.clip((1.5 * EQ_TOP_HZ - hz) / (0.5 * EQ_TOP_HZ), 0.0, 1.0)
        return np.asarray(curve * fade * (math.log(10.0) / 20.0))  # dB -> natural log of amplitude

    def _ratios(self, frames: int) -> npt.NDArray[np.float64]:
        """Pitch ratio of each of the next ``frames`` frames: the move plus the slow movement,
        a function of the frame's time since the first sample (so blocks do not change it)."""
        base = 12.0 * math.log2(self.params.pitch_ratio)
        if not self.params.wobble or base == 0.0:
            return np.full(frames, self.params.pitch_ratio)
        t = (self._frames_done + np.arange(frames)) * (self._hop / self.rate)
        move = np.full(frames, abs(base))
        sign = 1.0 if base > 0 else -1.0
        for amplitude, hz, phase in self.params.wobble:
            move += amplitude * np.sin(2.0 * np.pi * hz * t + phase)
        move = np.maximum(move, min(abs(base), MIN_MOVE_SEMITONES))
        return np.asarray(2.0 ** (sign * move / 12.0))

    def process(self, block: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
        """Disguise ``block`` (float samples ``(n, channels)`` in [-1, 1]); returns ``n`` samples,
        ``latency_samples`` behind the input."""
        data = np.asarray(block)
        if data.ndim != 2 or data.shape[1] != self.channels:
            raise InputError(f"a block must have shape (n, {self.channels}), got {data.shape}")
        count = data.shape[0]
        buffer = np.concatenate([self._pending, data.T.astype(np.float64)], axis=1)
        n, hop = self._n, self._hop
        frames = (buffer.shape[1] - n) // hop + 1 if buffer.shape[1] >= n else 0
        if frames > 0:
            view = np.lib.stride_tricks.sliding_window_view(buffer, n, axis=1)[:, ::hop][:, :frames]
            out = self._overlap_add(self._transform(view))
            out = self._level(out, buffer[:, : frames * hop])
            self._ready = np.concatenate([self._ready, out], axis=1)
            self._pending = buffer[:, frames * hop :]
        else:
            self._pending = buffer
        result = self._ready[:, :count]
        self._ready = self._ready[:, count:]
        return np.ascontiguousarray(np.clip(result.T, -1.0, 1.0), dtype=np.float32)

    def flush(self) -> npt.NDArray[np.float32]:
        """The last ``latency_samples`` of output (the filter is spent afterwards)."""
        return self.process(np.zeros((self.latency_samples, self.channels), dtype=np.float32))

    def _overlap_add(self, out: FloatArray) -> FloatArray:
        channels, frames, _ = out.shape
        hop = self._hop
        acc = np.zeros((channels, frames + 3, hop))
        acc[:, :3] += self._tail.reshape(channels, 3, hop)
        parts = out.reshape(channels, frames, 4, hop)
        for r in range(4):
            acc[:, r : r + frames] += parts[:, :, r]
        flat = acc.reshape(channels, -1)
        self._tail = flat[:, frames * hop :].copy()
        return flat[:, : frames * hop]

    def _level(self, out: FloatArray, source: FloatArray) -> FloatArray:
        """Give ``out`` the loudness of the input it comes from (``source``, the same samples'
        positions) over a sliding window of hops, with the gain ramped inside each hop."""
        hop = self._hop
        hops = out.shape[1] // hop
        e_in = np.concatenate([self._energy_in, (source**2).reshape(-1, hops, hop).sum(axis=(0, 2))])
        e_out = np.concatenate([self._energy_out, (out**2).reshape(-1, hops, hop).sum(axis=(0, 2))])
        floor = 1e-9 * hop
        window = np.ones(_GAIN_HOPS)
        s_in = np.convolve(e_in, window, mode="valid")
        s_out = np.convolve(e_out, window, mode="valid")
        gain = np.clip(np.sqrt((s_in + floor) / (s_out + floor)), 1.0 / _MAX_GAIN, _MAX_GAIN)
        start = np.concatenate([[self._gain], gain[:-1]])
        ramp = np.arange(1, hop + 1) / hop
        curve = (start[:, None] + (gain - start)[:, None] * ramp).reshape(-1)
        self._energy_in = e_in[-(_GAIN_HOPS - 1) :]
        self._energy_out = e_out[-(_GAIN_HOPS - 1) :]
        self._gain = float(gain[-1])
        return np.asarray(out * curve)

    def _transform(self, frames: FloatArray) -> FloatArray:
        """Disguise windowed frames ``(channels, frames, n)``; returns windowed output frames.

        Float32 for the element-wise work (its vectorised log, exp and trigonometry are many
        times faster), float64 for the transforms and the running phases."""
        spectrum = np.fft.rfft(frames * self._window, axis=-1)
        re, im = spectrum.real.astype(np.float32), spectrum.imag.astype(np.float32)
        power = re * re + im * im
        log_mag = 0.5 * np.log(power + np.float32(_TINY))
        if self._meter is not None:
            self._follow(power)
        log_mag += self._norm
        both = (log_mag @ self._to_cepstrum) @ self._from_cepstrum  # envelope, warped envelope
        bins = log_mag.shape[-1]
        fine = log_mag - both[..., :bins]
        moved, phases = self._shift_peaks(fine, np.arctan2(im, re))
        magnitude = np.exp(moved + both[..., bins:] + self._eq)
        # each frame keeps its energy: no pumping from the equaliser or the envelope warp
        ratio = power.sum(axis=-1, keepdims=True) / (
            (magnitude * magnitude).sum(axis=-1, keepdims=True) + 1e-20
        )
        magnitude *= np.sqrt(ratio)
        out = np.fft.irfft(magnitude * (np.cos(phases) + 1j * np.sin(phases)), n=self._n, axis=-1)
        return np.asarray(out * self._synthesis)

    def _follow(self, power: npt.NDArray[np.float32]) -> None:
        """Live: count these frames in the running spectrum and, every ``LIVE_UPDATE_S`` of
        sound, update the gain, which grows from none to full over the first ``LIVE_RAMP_S``
        seconds of sound (the spectrum moves slowly: updating it per block costs CPU for
        nothing)."""
        assert self._meter is not None
        self._waiting.append(power.sum(axis=0))
        if sum(len(p) for p in self._waiting) * self._hop < LIVE_UPDATE_S * self.rate:
            return
        self._meter.add(np.concatenate(self._waiting).astype(np.float64))
        self._waiting = []
        seconds = self._meter.frames * self._hop / self.rate
        spectrum = self._meter.louder_half()
        if spectrum is not None:
            gain = normalising_gain(spectrum, self.rate)
            self._norm = (min(1.0, seconds / LIVE_RAMP_S) * gain).astype(np.float32)

    def _shift_peaks(
        self, fine: npt.NDArray[np.float32], phase: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Move the pitch: every spectral peak's region (the bins nearer to it than to another
        peak) is moved rigidly, magnitudes and phases together, by a whole number of bins to
        where the pitch ratio takes the peak (the peak-shifting phase vocoder). Phases inside a
        region keep their relations, so there is no phasiness; each region's phase rotates by
        the shift's frequency over each hop, carried from frame to frame through the peak
        nearest to it. Returns the moved fine structure and the output phases."""
        _, frames, bins = fine.shape
        k = np.arange(bins)
        peak = np.zeros(fine.shape, dtype=bool)
        peak[..., 1:-1] = (fine[..., 1:-1] > fine[..., :-2]) & (fine[..., 1:-1] >= fine[..., 2:])
        left = np.maximum.accumulate(np.where(peak, k, -bins), axis=-1)
        right = np.minimum.accumulate(np.where(peak, k, 2 * bins)[..., ::-1], axis=-1)[..., ::-1]
        region = np.where(right - k < k - left, right, left)
        region = np.where((region >= 0) & (region < bins), region, k)  # no peak: the bin itself
        ratio = self._ratios(frames)
        self._frames_done += frames
        shift = np.rint(region * (ratio[None, :, None] - 1.0)).astype(np.intp)
        # rotation of every region: the previous frame's (through its nearest peak) + shift x hop
        step = shift.astype(np.float32) * np.float32(2.0 * np.pi * self._hop / self._n)
        rotation = np.empty(fine.shape, dtype=np.float32)
        state = self._rotation
        offsets = np.arange(state.shape[0])[:, None] * bins
        lookup = region + offsets[:, None]
        for f in range(frames):
            state = state.reshape(-1)[lookup[:, f]] + step[:, f]
            state -= _TWO_PI32 * np.floor(state * _INV_TWO_PI32)
            rotation[:, f] = state
        self._rotation = state
        # scatter every bin to its destination in one flat assignment; bins moved out of range
        # go to a spare column that is dropped (nothing is invented where no source is)
        target = k + shift
        target = np.where((target >= 0) & (target < bins), target, bins)
        rows = target.shape[0] * target.shape[1]
        flat = (np.arange(rows)[:, None] * (bins + 1) + target.reshape(rows, bins)).ravel()
        moved_flat = np.full(rows * (bins + 1), np.float32(math.log(_TINY) / 2), dtype=np.float32)
        phase_flat = np.zeros(rows * (bins + 1), dtype=np.float32)
        moved_flat[flat] = fine.reshape(-1)
        phase_flat[flat] = (phase + rotation).reshape(-1)
        moved = moved_flat.reshape(*fine.shape[:2], bins + 1)[..., :bins]
        phases = phase_flat.reshape(*fine.shape[:2], bins + 1)[..., :bins]
        return moved, phases


def measure_spectrum(
    blocks: Iterable[npt.NDArray[np.floating[Any]]], rate: int, frame_ms: float = 40.0
) -> FloatArray | None:
    """The long-term spectrum of a recording given as blocks ``(n, channels)``, as the disguise
    divides it out (see :mod:`faceveil.voice.spectrum`); None when it holds no sound.

    Framed as `VoiceBlockFilter` frames it (same length and window), a few thousand frames at a
    time, so that memory stays bounded on hour-long recordings."""
    n = _frame_length(rate, frame_ms)
    hop = n // 4
    window = _hann(n)
    meter = SpectrumMeter(n // 2 + 1)
    pending: FloatArray | None = None
    for block in blocks:
        data = np.asarray(block, dtype=np.float64).T
        buffer = data if pending is None else np.concatenate([pending, data], axis=1)
        frames = (buffer.shape[1] - n) // hop + 1 if buffer.shape[1] >= n else 0
        for start in range(0, frames, _MEASURE_FRAMES):
            count = min(_MEASURE_FRAMES, frames - start)
            part = buffer[:, start * hop : (start + count - 1) * hop + n]
            view = np.lib.stride_tricks.sliding_window_view(part, n, axis=1)[:, ::hop]
            spectrum = np.fft.rfft(view * window, axis=-1)
            meter.add((spectrum.real**2 + spectrum.imag**2).sum(axis=0))
        pending = buffer[:, frames * hop :]
    return meter.louder_half()


def _as_channels(samples: npt.NDArray[np.generic]) -> tuple[npt.NDArray[np.float32], bool]:
    data = np.asarray(samples)
    if data.ndim not in (1, 2) or data.size == 0:
        raise InputError(f"samples must be a non-empty (n,) or (n, channels) array, got shape {data.shape}")
    if data.dtype == np.int16:
        data = data.astype(np.float32) / 32768.0
    elif not np.issubdtype(data.dtype, np.floating):
        raise InputError(f"samples must be float in [-1, 1] or int16, got {data.dtype}")
    if not np.all(np.isfinite(data)):
        raise InputError("samples contain NaN or infinite values")
    mono = data.ndim == 1
    return (data[:, None] if mono else data).astype(np.float32), mono


def disguise_voice(
    samples: npt.NDArray[np.generic],
    rate: int,
    config: VoiceConfig | None = None,
    *,
    params: DisguiseParams | None = None,
) -> npt.NDArray[np.float32]:
    """Disguise the voices in a recording.

    Args:
        samples: ``(n,)`` mono or ``(n, channels)`` float samples in [-1, 1] (or int16).
        rate: sample rate in Hz.
        config: the ranges of the random transform (default `VoiceConfig()`); a transform is
            drawn for this call (from ``config.seed`` when given).
        params: a transform to use instead of a draw (e.g. the same on several recordings).

    Returns:
        float32 samples of the same shape: same duration to the sample, same channels.
    """
    config = config or VoiceConfig()
    data, mono = _as_channels(samples)
    params = params if params is not None else draw_params(config)
    spectrum = measure_spectrum([data], rate, config.frame_ms) if config.normalise else None
    filt = VoiceBlockFilter(
        rate, data.shape[1], params, config.frame_ms, spectrum=spectrum, normalise=config.normalise
    )
    out = np.concatenate([filt.process(data), filt.flush()])[filt.latency_samples :]
    return out[:, 0] if mono else out


def voice_filter(
    rate: int,
    channels: int,
    config: VoiceConfig | None = None,
    *,
    params: DisguiseParams | None = None,
    spectrum: FloatArray | None = None,
) -> VoiceBlockFilter:
    """A `VoiceBlockFilter` with a transform drawn from ``config`` (or the given ``params``),
    normalising against ``spectrum`` (see :func:`measure_spectrum`) or, without it, against
    the spectrum of the sound as it comes (live)."""
    config = config or VoiceConfig()
    params = params if params is not None else draw_params(config)
    return VoiceBlockFilter(
        rate, channels, params, config.frame_ms, spectrum=spectrum, normalise=config.normalise
    )
