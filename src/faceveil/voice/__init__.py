"""Voice disguise: a random, per-recording pitch, formant and timbre transform.

``disguise_voice(samples, rate)`` for whole recordings; `VoiceBlockFilter` (from
:func:`voice_filter`) for live audio in blocks. Pure numpy; nothing is downloaded.
"""

from faceveil.voice.config import DisguiseParams, VoiceConfig, draw_params
from faceveil.voice.transform import VoiceBlockFilter, disguise_voice, voice_filter

__all__ = [
    "DisguiseParams",
    "VoiceBlockFilter",
    "VoiceConfig",
    "disguise_voice",
    "draw_params",
    "voice_filter",
]
