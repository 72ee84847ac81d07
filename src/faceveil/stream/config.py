"""Stream settings from plain values: the command line and ``streams.toml`` share one reader.

A ``streams.toml`` lists streams under ``[[stream]]``; an optional ``[defaults]`` table gives
values every stream starts from::

    [defaults]
    preset = "fast"
    overlay = true

    [[stream]]
    name = "door"
    source = "rtsp://cam.lan/stream1"
    outputs = ["door.mkv", "mjpeg://127.0.0.1:8091"]
    segment = "5m"
    encrypt = "recordings.key"      # or "env:FACEVEIL_ENCRYPTION_KEY"; MP4 recordings only
    manifest = "manifests"          # or true: beside each recorded file
    signing_key = "signing.pem"
    audio = "keep"                  # or "drop": recordings and pushes carry the sound (AAC)
    voice = "disguise"              # or "keep" (default), "drop"; pitch, formant, wobble, tilt,
                                    # normalise (false: keep the speaker's average spectrum), seed

Every key is checked; an unknown key is an error naming the valid ones.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from faceveil.compliance.keys import ENV_PREFIX, load_encryption_key, load_signing_key
from faceveil.config import AnonymizerConfig, DetectorConfig, MaskConfig, WatermarkConfig, parse_color
from faceveil.errors import ConfigError
from faceveil.stream.audio import AudioFilterFactory, sound_settings
from faceveil.stream.engine import DEFAULT_LIVE_MAX_SIDE, DEFAULT_LIVE_PRESET, LiveConfig
from faceveil.stream.records import SegmentManifestConfig
from faceveil.stream.safety import parse_source
from faceveil.stream.sinks import EncoderConfig, parse_output
from faceveil.stream.sources import SourceConfig
from faceveil.stream.spec import StreamSpec
from faceveil.tracking.tracker import TrackerConfig

#: Every key a stream accepts, with its default.
STREAM_KEYS: dict[str, Any] = {
    "name": None,
    "source": None,
    "outputs": None,
    "realtime": False,
    "allow_private": True,
    "segment": None,
    "keep": None,
    "overwrite": False,
    "overlay": False,
    "on_late": "drop",
    "max_lag": 0.5,
    "queue_size": 2,
    "duration": None,
    "regions": None,
    "open_timeout": 10.0,
    "read_timeout": 5.0,
    "retry_for": None,
    "camera_size": None,
    "camera_fps": None,
    "preset": DEFAULT_LIVE_PRESET,
    "detector": None,
    "threshold": None,
    "device": "auto",
    "max_side": DEFAULT_LIVE_MAX_SIDE,
    "mode": "blur",
    "shape": "ellipse",
    "mask_scale": 1.3,
    "color": "000000",
    "strength": 0.2,
    "cells": 8,
    "box": False,
    "watermark": None,
    "watermark_position": "bottom-right",
    "watermark_size": 0.04,
    "watermark_opacity": 0.7,
    "hold": 12,
    "detect_budget": 1.0,
    "max_detect_every": 2,
    "quality": 23,
    "encoder_preset": "ultrafast",
    "encrypt": None,
    "manifest": None,
    "signing_key": None,
    "audio": "keep",
    "voice": None,
    "pitch": None,
    "formant": None,
    "wobble": None,
    "tilt": None,
    "normalise": None,
    "seed": None,
}
#: The voice disguise's settings a stream may give (None: `VoiceConfig`'s defaults).
_VOICE_KEYS = {
    "pitch": "pitch",
    "formant": "formant",
    "wobble": "wobble",
    "tilt": "tilt_db",
    "normalise": "normalise",
    "seed": "seed",
}
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(value: str | float | int | None) -> float | None:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1.5h"`` (None stays None)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*", str(value))
    if match is None:
        raise ConfigError(f"a duration is a number of seconds or like 90s, 5m, 1h; got {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or ""]


def stream_spec(values: Mapping[str, Any], *, default_name: str = "stream") -> StreamSpec:
    """A checked `StreamSpec` from plain values (keys of `STREAM_KEYS`)."""
    unknown = sorted(set(values) - set(STREAM_KEYS))
    if unknown:
        raise ConfigError(f"unknown stream setting(s) {', '.join(unknown)}; valid: {', '.join(STREAM_KEYS)}")
    v = {**STREAM_KEYS, **{k: x for k, x in values.items() if x is not None}}
    if not v["source"]:
        raise ConfigError("a stream needs a source")
    outputs = v["outputs"]
    if isinstance(outputs, str):
        outputs = [outputs]
    if not outputs:
        raise ConfigError("a stream needs at least one output")
    mask = MaskConfig(
        mode=v["mode"],
        shape=v["shape"],
        scale=float(v["mask_scale"]),
        color=parse_color(str(v["color"])),
        blur_strength=float(v["strength"]),
        cells=int(v["cells"]),
        outline=bool(v["box"]),
    )
    detector = DetectorConfig(
        name=v["detector"] or v["preset"],
        threshold=v["threshold"],
        device=v["device"],
        max_side=v["max_side"],
    )
    watermark = None
    if v["watermark"] is not None:
        watermark = WatermarkConfig(
            text=str(v["watermark"]),
            position=str(v["watermark_position"]),
            size=float(v["watermark_size"]),
            opacity=float(v["watermark_opacity"]),
        )
    live = LiveConfig(
        anonymizer=AnonymizerConfig(detector=detector, mask=mask, watermark=watermark),
        tracker=TrackerConfig(hold=int(v["hold"])),
        detect_budget=float(v["detect_budget"]),
        max_detect_every=int(v["max_detect_every"]),
        overlay=bool(v["overlay"]),
    )
    source = SourceConfig(
        open_timeout=float(v["open_timeout"]),
        read_timeout=float(v["read_timeout"]),
        realtime=bool(v["realtime"]),
        give_up_after=parse_duration(v["retry_for"]),
        camera_size=v["camera_size"],
        camera_fps=v["camera_fps"],
    )
    keep = v["keep"]
    audio, audio_filter = _sound(v)
    return StreamSpec(
        name=str(v["name"] or default_name),
        source=parse_source(
            str(v["source"]), allow_files=bool(v["realtime"]), allow_private=bool(v["allow_private"])
        ),
        outputs=tuple(parse_output(str(o)) for o in outputs),
        live=live,
        source_config=source,
        encoder=EncoderConfig(quality=int(v["quality"]), preset=str(v["encoder_preset"])),
        segment_s=parse_duration(v["segment"]),
        keep_segments=None if keep is None else int(keep),
        overwrite=bool(v["overwrite"]),
        on_late=str(v["on_late"]),
        max_lag=float(v["max_lag"]),
        queue_size=int(v["queue_size"]),
        duration=parse_duration(v["duration"]),
        regions=None if v["regions"] is None else Path(v["regions"]),
        encryption=None if v["encrypt"] is None else load_encryption_key(str(v["encrypt"])),
        manifest=_manifest(v["manifest"], v["signing_key"]),
        audio=audio,
        audio_filter=audio_filter,
    )


def _sound(v: Mapping[str, Any]) -> tuple[str, AudioFilterFactory | None]:
    """``audio`` and the filter factory from ``audio``, ``voice`` and the disguise's settings."""
    voice = None if v["voice"] is None else str(v["voice"])
    given = {name: v[key] for key, name in _VOICE_KEYS.items() if v[key] is not None}
    config = None
    if voice == "disguise" and given:
        from faceveil.voice.config import VoiceConfig

        for name in ("pitch", "formant"):
            if name in given:
                pair = given[name]
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    raise ConfigError(f"{name} is a pair [MIN, MAX], got {pair!r}")
                given[name] = (float(pair[0]), float(pair[1]))
        for name in ("tilt_db", "wobble"):
            if name in given:
                given[name] = float(given[name])
        if "normalise" in given and not isinstance(given["normalise"], bool):
            raise ConfigError(f"normalise is true or false, got {given['normalise']!r}")
        if "seed" in given and (isinstance(given["seed"], bool) or not isinstance(given["seed"], int)):
            raise ConfigError(f"seed is a non-negative integer, got {given['seed']!r}")
        config = VoiceConfig(**given)
    return sound_settings(str(v["audio"]), voice, config)


def _manifest(where: object, signing_key: object) -> SegmentManifestConfig | None:
    """``manifest``: a folder, or True / ``""`` (the command line's bare ``--manifest``) for
    beside each recorded file; False or None for none."""
    if where is None or where is False:
        if signing_key is not None:
            raise ConfigError("signing_key (--signing-key) signs manifests: set manifest (--manifest) too")
        return None
    if not isinstance(where, str | bool):
        raise ConfigError(f"manifest is a folder or true (beside each recording), got {where!r}")
    key = None if signing_key is None else load_signing_key(str(signing_key))
    folder = None if isinstance(where, bool) or where == "" else Path(where)
    return SegmentManifestConfig(folder, key)


def load_streams(path: str | Path) -> list[StreamSpec]:
    """The streams of a ``streams.toml`` (relative paths are taken from the file's folder)."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    extra = sorted(set(document) - {"defaults", "stream"})
    if extra:
        raise ConfigError(f"{path}: unknown table(s) {', '.join(extra)}; expected [defaults] and [[stream]]")
    defaults = document.get("defaults", {})
    streams = document.get("stream", [])
    if not isinstance(defaults, dict) or not isinstance(streams, list) or not streams:
        raise ConfigError(f"{path}: expected at least one [[stream]] table")
    specs = []
    for number, table in enumerate(streams, 1):
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: stream {number} is not a table")
        values = {**defaults, **table}
        values = _relative_paths(values, path.parent)
        try:
            specs.append(stream_spec(values, default_name=f"stream{number}"))
        except ConfigError as exc:
            raise ConfigError(f"{path}: stream {number}: {exc}") from None
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: stream names must be unique, got {names}")
    return specs


def _relative_paths(values: dict[str, Any], base: Path) -> dict[str, Any]:
    def resolve(text: str) -> str:
        if "://" in text or Path(text).is_absolute():
            return text
        return str(base / text)

    out = dict(values)
    outputs = out.get("outputs")
    if isinstance(outputs, str):
        outputs = [outputs]
    if isinstance(outputs, list):
        out["outputs"] = [resolve(str(o)) for o in outputs]
    for key in ("regions", "signing_key", "manifest"):
        if isinstance(out.get(key), str) and out[key]:
            out[key] = resolve(out[key])
    if isinstance(out.get("encrypt"), str) and not out["encrypt"].startswith(ENV_PREFIX):
        out["encrypt"] = resolve(out["encrypt"])
    source = out.get("source")
    if out.get("realtime") and isinstance(source, str) and "://" not in source and not source.isdigit():
        out["source"] = resolve(source)
    return out
