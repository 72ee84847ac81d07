"""The voice disguise on real speech (LibriSpeech utterances in ../shared/data/speech)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceveil.media.audio_io import read_audio
from faceveil.voice import VoiceConfig, disguise_voice, draw_params, voice_filter
from faceveil.voice.transform import measure_spectrum
from voice_support import pitch_move, rms_db

pytestmark = pytest.mark.quality


@pytest.fixture(scope="module")
def utterances(shared_data: Path) -> list[Path]:
    """One utterance of each test_other speaker (the speech set's README describes them)."""
    folder = shared_data / "speech"
    if not (folder / "manifest.json").is_file():
        pytest.fail(f"the speech test data is missing: expected it at {folder}", pytrace=False)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    first: dict[str, Path] = {}
    for item in manifest:
        if item["file"].startswith("test_other/"):
            first.setdefault(item["speaker"], folder / item["file"])
    return list(first.values())


def test_real_speech_pitch_moved_loudness_and_duration_kept(utterances: list[Path]) -> None:
    assert len(utterances) == 5
    for index, path in enumerate(utterances):
        clip = read_audio(path)
        x = clip.samples[:, 0]
        # the pitch move alone (the colouring under 1 kHz and the spectrum's normalisation,
        # which cut or lift the first harmonics, throw the autocorrelation tracker off by up to
        # 0.7 semitones)
        alone = VoiceConfig(seed=index, wobble=0.0, tilt_db=0.0, normalise=False)
        params = draw_params(alone)
        moved = pitch_move(x, disguise_voice(x, clip.rate, alone, params=params), clip.rate)
        expected = 12 * np.log2(params.pitch_ratio)
        assert abs(moved - expected) < 0.5, (path.name, moved, expected)
        # the default: moved in the drawn direction, at least 1 st; length, loudness kept
        default = draw_params(VoiceConfig(seed=index))
        y = disguise_voice(x, clip.rate, params=default)
        assert y.shape == x.shape, path.name
        assert abs(rms_db(y) - rms_db(x)) < 1.0, path.name
        assert np.mean(np.abs(y) >= 0.999) < 1e-4, path.name  # no clipping
        swayed = pitch_move(x, y, clip.rate)
        assert np.sign(swayed) == np.sign(np.log2(default.pitch_ratio)), path.name
        assert abs(swayed) >= 1.0, (path.name, swayed)


def test_real_speech_live_equals_offline(utterances: list[Path]) -> None:
    clip = read_audio(utterances[0])
    params = draw_params(VoiceConfig(seed=3))
    offline = disguise_voice(clip.samples, clip.rate, params=params)
    live = voice_filter(clip.rate, 1, params=params, spectrum=measure_spectrum([clip.samples], clip.rate))
    block = clip.rate // 50  # 20 ms blocks, as a live stream delivers them
    parts = [live.process(clip.samples[i : i + block]) for i in range(0, len(clip.samples), block)]
    out = np.concatenate([*parts, live.flush()])[live.latency_samples :]
    np.testing.assert_allclose(out, offline, atol=1e-5, rtol=0)
