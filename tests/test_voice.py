"""The voice disguise: duration, channels, loudness, pitch, identity refusal, live blocks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from faceveil.errors import ConfigError, InputError
from faceveil.voice import DisguiseParams, VoiceConfig, disguise_voice, draw_params, voice_filter
from faceveil.voice.transform import measure_spectrum
from voice_support import f0_autocorrelation, f0_track, rms_db, vowel


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_duration_kept_to_the_sample_mono(rate: int) -> None:
    x = vowel(rate, seconds=0.77)[: int(rate * 0.77) - 3]  # an odd length
    y = disguise_voice(x, rate, VoiceConfig(seed=3))
    assert y.shape == x.shape and y.dtype == np.float32


def test_stereo_kept_and_same_transform_on_every_channel() -> None:
    left = vowel(seed=1)
    x = np.stack([left, left, 0.5 * left], axis=1)
    y = disguise_voice(x, 16000, VoiceConfig(seed=5))
    assert y.shape == x.shape
    np.testing.assert_array_equal(y[:, 0], y[:, 1])  # same draw, same samples
    ratio = rms_db(y[:, 2]) - rms_db(y[:, 0])
    assert abs(ratio - 20 * np.log10(0.5)) < 0.5  # balance between channels kept


def test_loudness_within_one_db() -> None:
    x = vowel(seed=2)
    for seed in range(6):
        y = disguise_voice(x, 16000, VoiceConfig(seed=seed))
        assert abs(rms_db(y) - rms_db(x)) < 1.0, seed


def test_pitch_moved_by_the_drawn_ratio() -> None:
    x = vowel(f0=130.0)
    before = f0_autocorrelation(x, 16000)
    assert abs(before - 130.0) < 3.0
    for seed in range(4):
        # the pitch alone: with the spectrum's normalisation, this steady synthetic vowel's
        # flattened harmonic comb sends the autocorrelation tracker an octave off now and then
        config = VoiceConfig(seed=seed, wobble=0.0, normalise=False)
        params = draw_params(config)
        after = f0_autocorrelation(disguise_voice(x, 16000, config, params=params), 16000)
        assert after / before == pytest.approx(params.pitch_ratio, rel=0.04), seed
        assert abs(12 * np.log2(after / before)) >= 0.9  # the 1-semitone minimum, less the tracker's slack


def test_wobble_moves_the_pitch_slowly_and_never_under_a_semitone() -> None:
    """With the default slow pitch movement, the measured move per frame follows the drawn curve
    and never comes near zero (nor reverses)."""
    rate, x = 16000, vowel(seconds=4.0, f0=130.0, seed=3)
    # the pitch alone: dividing out this steady synthetic vowel's average spectrum also flattens
    # its harmonic comb, and the autocorrelation tracker then gives up on a tenth of the frames
    plain = VoiceConfig(normalise=False)
    for seed in range(3):
        params = draw_params(VoiceConfig(seed=seed))
        assert len(params.wobble) == 3
        disguised = disguise_voice(x, rate, plain, params=params)
        moved = 12 * np.log2(f0_track(disguised, rate) / f0_track(x, rate))
        t = np.arange(len(moved)) * 0.01 + 0.02  # frame centres (40 ms frames, 10 ms hop)
        base = 12 * np.log2(params.pitch_ratio)
        curve = abs(base) + sum(a * np.sin(2 * np.pi * f * t + p) for a, f, p in params.wobble)
        expected = np.sign(base) * np.maximum(curve, 1.0)
        ok = np.isfinite(moved)
        assert ok.sum() > 300, seed
        close = ok & (np.abs(moved - expected) < 1.0)  # the rest: the tracker's octave slips
        assert close.sum() > 0.9 * ok.sum(), seed
        assert np.corrcoef(moved[close], expected[close])[0, 1] > 0.9, seed
        assert np.mean(np.sign(base) * moved[ok] > 0.5) > 0.95, seed  # 1 semitone, less slack
        assert np.std(moved[close]) > 0.3, seed  # it does move


def test_draws_are_random_per_recording_and_seeded() -> None:
    a, b = draw_params(VoiceConfig(seed=11)), draw_params(VoiceConfig(seed=11))
    assert a == b
    draws = {draw_params(VoiceConfig()) for _ in range(8)}
    assert len(draws) == 8
    ratios = [draw_params(VoiceConfig(seed=s)).pitch_ratio for s in range(40)]
    assert min(ratios) < 1 < max(ratios)  # up and down both drawn
    x = vowel()
    np.testing.assert_array_equal(
        disguise_voice(x, 16000, VoiceConfig(seed=4)), disguise_voice(x, 16000, VoiceConfig(seed=4))
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pitch": (0.0, 0.0), "formant": (1.0, 1.0)},
        {"pitch": (0.0, 4.0), "formant": (1.0, 1.2)},  # a draw could be the identity
        {"pitch": (5.0, 3.0)},
        {"pitch": (3.0, 20.0)},
        {"formant": (0.9, 1.1)},
        {"frame_ms": 80.0},
        {"tilt_db": -1.0},
        {"tilt_db": 41.0},
        {"wobble": -0.5},
        {"wobble": 6.5},
        {"seed": -1},
    ],
)
def test_bad_or_identity_settings_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        VoiceConfig(**kwargs)  # type: ignore[arg-type]


def test_identity_params_refused() -> None:
    with pytest.raises(ConfigError, match="as it is"):
        DisguiseParams(pitch_ratio=1.0, formant_ratio=1.0)
    DisguiseParams(pitch_ratio=1.0, formant_ratio=1.1)  # formants alone: a disguise


def test_non_speech_goes_through_the_same_transform() -> None:
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    for x in (noise, tone):
        y = disguise_voice(x, 16000, VoiceConfig(seed=2))
        assert abs(np.corrcoef(x, y)[0, 1]) < 0.5  # changed, not passed through
        assert abs(rms_db(y) - rms_db(x)) < 1.0


def test_no_clicks_at_frame_joins() -> None:
    rate = 16000
    t = np.arange(3 * rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    for seed in range(4):
        params = draw_params(VoiceConfig(seed=seed, tilt_db=0.0))
        y = disguise_voice(x, rate, params=params)
        steady = y[rate // 4 : -rate // 4]
        # a sine of at most 200 Hz times the largest pitch ratio (the move plus the slow
        # movement's peak) moves at most 2 pi f A / rate per sample
        top = abs(12 * np.log2(params.pitch_ratio)) + sum(a for a, _, _ in params.wobble)
        limit = 2 * np.pi * 200 * 2 ** (top / 12) * 0.5 * 1.12 / rate * 1.6
        assert np.abs(np.diff(steady)).max() < limit, seed


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_live_latency_bounded(rate: int) -> None:
    filt = voice_filter(rate, 2, VoiceConfig(seed=1))
    assert 0 < filt.latency_samples <= 0.06 * rate


def test_live_blocks_equal_offline() -> None:
    """Block processing, given the spectrum a file's first pass measures, gives the offline
    samples, delayed by ``latency_samples``, within 1e-5."""
    rate = 16000
    x = np.stack([vowel(seed=7), vowel(f0=190, seed=8)], axis=1)
    params = draw_params(VoiceConfig(seed=9))
    offline = disguise_voice(x, rate, params=params)
    filt = voice_filter(rate, 2, params=params, spectrum=measure_spectrum([x], rate))
    rng = np.random.default_rng(1)
    out, start = [], 0
    while start < len(x):
        size = int(rng.choice([1, 7, 160, 333, 1024, 4000]))
        block = x[start : start + size]
        got = filt.process(block)
        assert got.shape == block.shape and got.dtype == np.float32
        out.append(got)
        start += size
    tail = filt.flush()
    assert tail.shape == (filt.latency_samples, 2)
    live = np.concatenate([*out, tail])[filt.latency_samples :]
    assert live.shape == offline.shape
    np.testing.assert_allclose(live, offline, atol=1e-5, rtol=0)


def test_live_normalisation_grows_into_the_offline_one() -> None:
    """Live, the long-term spectrum is measured as the sound comes: over the first second the
    output's spectrum is not yet the file's two-pass result, and once the ramp is over it is
    (within a fraction of a dB; the samples themselves differ, since the phase vocoder's
    running phases follow the spectrum)."""
    rate = 16000
    x = vowel(seconds=12.0, f0=140.0, seed=4)
    x = x + np.float32(0.02) * np.random.default_rng(4).standard_normal(len(x)).astype(np.float32)
    params = draw_params(VoiceConfig(seed=2))
    offline = disguise_voice(x, rate, params=params)
    filt = voice_filter(rate, 1, params=params)
    block = rate // 50
    parts = [filt.process(x[i : i + block, None]) for i in range(0, len(x), block)]
    live = np.concatenate([*parts, filt.flush()])[filt.latency_samples :, 0]

    def apart(part: slice) -> float:  # dB difference of the two outputs' average spectra there
        a, b = (measure_spectrum([y[part, None]], rate) for y in (live, offline))
        assert a is not None and b is not None
        band = slice(4, len(a) * 4 // 8)  # 100 Hz - 4 kHz
        return float(np.sqrt(np.mean((10 * np.log10(a[band] / b[band])) ** 2)))

    assert apart(slice(0, rate)) > 3 * apart(slice(8 * rate, 12 * rate))
    assert apart(slice(8 * rate, 12 * rate)) < 1.0
    assert abs(rms_db(live) - rms_db(x)) < 1.0


def test_long_term_spectrum_divided_out() -> None:
    """Two voices that differ only by a fixed filter (a darker and a brighter one) come out with
    nearly the same average spectrum: the disguise replaces the speaker's own."""
    rate = 16000
    x = vowel(seconds=3.0, f0=130.0, seed=5)
    dark = np.convolve(x, [0.5, 0.5], mode="same").astype(np.float32)  # a low-pass
    bright = np.concatenate([[0.0], np.diff(x)]).astype(np.float32)  # a high-pass
    config = VoiceConfig(seed=1, tilt_db=0.0)
    params = draw_params(config)
    spectra = []
    for voice in (dark, bright):
        before = measure_spectrum([voice[:, None]], rate)
        after = measure_spectrum([disguise_voice(voice, rate, config, params=params)[:, None]], rate)
        assert before is not None and after is not None
        spectra.append((before, after))
    bins = np.arange(len(spectra[0][0])) * (rate / 2) / (len(spectra[0][0]) - 1)
    band = (bins > 300) & (bins < 3000)

    def spread(
        a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]
    ) -> float:  # dB difference of shapes, band-averaged
        d = 10 * np.log10(a[band] / a[band].sum()) - 10 * np.log10(b[band] / b[band].sum())
        return float(np.std(np.convolve(d, np.ones(9) / 9, mode="valid")))

    assert spread(spectra[0][0], spectra[1][0]) > 4.0  # the two voices' spectra differ
    assert spread(spectra[0][1], spectra[1][1]) < 0.35 * spread(spectra[0][0], spectra[1][0])
    off = replace(config, normalise=False)  # without the step, the difference stays
    kept = [
        measure_spectrum([disguise_voice(v, rate, off, params=params)[:, None]], rate) for v in (dark, bright)
    ]
    assert kept[0] is not None and kept[1] is not None
    assert spread(kept[0], kept[1]) > 0.7 * spread(spectra[0][0], spectra[1][0])


def test_bad_samples_refused() -> None:
    with pytest.raises(InputError):
        disguise_voice(np.zeros((0,), dtype=np.float32), 16000)
    with pytest.raises(InputError):
        disguise_voice(np.full(1000, np.nan, dtype=np.float32), 16000)
    with pytest.raises(InputError):
        disguise_voice(np.zeros((10, 2, 2), dtype=np.float32), 16000)
    with pytest.raises(ConfigError):
        disguise_voice(np.zeros(1000, dtype=np.float32), 4000)
    filt = voice_filter(16000, 1)
    with pytest.raises(InputError):
        filt.process(np.zeros((10, 2), dtype=np.float32))


def test_int16_input_accepted() -> None:
    x = (vowel() * 32767).astype(np.int16)
    y = disguise_voice(x, 16000, VoiceConfig(seed=1))
    assert y.dtype == np.float32 and y.shape == x.shape and np.abs(y).max() <= 1.0


def test_library_export() -> None:
    import faceveil

    assert faceveil.disguise_voice is disguise_voice
    assert faceveil.VoiceConfig is VoiceConfig
