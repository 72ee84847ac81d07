"""Voice disguise: the speaker's average spectrum replaced, then a random, per-recording pitch,
formant and timbre transform.

``disguise_voice(samples, rate)`` for whole recordings; `VoiceBlockFilter` (from
:func:`voice_filter`) for audio in blocks, with the spectrum :func:`measure_spectrum` took in a
first pass (files) or measuring it as the sound comes (live). Pure numpy; nothing is downloaded.
"""

from faceveil.voice.config import DisguiseParams, VoiceConfig, draw_params
from faceveil.voice.transform import VoiceBlockFilter, disguise_voice, measure_spectrum, voice_filter

__all__ = [
    "DisguiseParams",
    "VoiceBlockFilter",
    "VoiceConfig",
    "disguise_voice",
    "draw_params",
    "measure_spectrum",
    "voice_filter",
]
