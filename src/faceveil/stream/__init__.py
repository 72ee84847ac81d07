"""Live streams: cameras, RTSP/RTMP/SRT/HTTP streams and paced files anonymized in real time.

* :class:`LiveSession` (``engine``): the per-frame engine, also used by the web app's live page.
* :func:`check_url` (``safety``): refuses unsafe or private source URLs.
* :class:`StreamWorker` / :func:`run_streams` (``worker``): source -> engine -> sinks, in threads.
* :func:`load_streams` / :func:`stream_spec` (``config``): settings from ``streams.toml`` or the CLI.
* :class:`AudioFilter` / ``VOICE_FILTERS`` (``audio``): the per-stream audio filter hook (the
  sound of recordings and pushes goes through it; ``sound`` runs it).
"""

from __future__ import annotations

from faceveil.stream.audio import VOICE_FILTERS, AudioBlock, AudioFilter
from faceveil.stream.engine import LiveConfig, LiveFrame, LiveSession
from faceveil.stream.safety import ALLOWED_SCHEMES, SourceSpec, check_url, parse_source

__all__ = [
    "ALLOWED_SCHEMES",
    "VOICE_FILTERS",
    "AudioBlock",
    "AudioFilter",
    "LiveConfig",
    "LiveFrame",
    "LiveSession",
    "SourceSpec",
    "check_url",
    "parse_source",
]
