"""`faceveil stream`: anonymize live sources in real time (one on the command line, or many in a file)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.cli import exit_codes
from faceveil.cli.options import (
    add_compliance_options,
    add_detector_options,
    add_mask_options,
    add_voice_options,
    add_watermark_options,
)
from faceveil.config import AnonymizerConfig
from faceveil.errors import ConfigError, FaceveilError
from faceveil.stream.audio import AUDIO_CHOICES
from faceveil.stream.config import load_streams, stream_spec
from faceveil.stream.engine import DEFAULT_LIVE_MAX_SIDE, DEFAULT_LIVE_PRESET
from faceveil.stream.spec import ON_LATE, StreamSpec
from faceveil.stream.stats import StreamStats
from faceveil.stream.worker import run_streams

_DESCRIPTION = """Anonymize a live source in real time: every frame is anonymized before it goes
to any output; when processing falls behind, frames are dropped (or the last anonymized frame
repeated), never passed on as they came.

SOURCE: a camera (0, /dev/video0), rtsp://, rtmp://, http(s):// (srt:// needs an FFmpeg built with
libsrt), or a video file played at its real pace with --realtime.
OUTPUT (repeatable): rec.mp4 / rec.mkv (with --segment, rolling files rec-00000.mp4...),
rtmp://host/app/key or rtsp://host/path (push), mjpeg://127.0.0.1:8090 (browser preview).

--voice disguise disguises the voices in the sound (one random transform per stream, in sync,
40 ms of added latency); --voice drop sends no sound.

--encrypt KEYFILE CENC-encrypts every .mp4 recording file; --manifest [DIR] writes a (signed,
with --signing-key) manifest of every finished file, which faceveil verify checks.

Ctrl-C stops cleanly (recordings are finished) and exits 0. See docs/streams.md."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Add the ``stream`` subcommand."""
    parser = commands.add_parser(
        "stream",
        help="hide the faces of live cameras and streams in real time",
        description=_DESCRIPTION,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "source", nargs="?", metavar="SOURCE", help="camera, stream URL, or file with --realtime"
    )
    parser.add_argument(
        "-o", "--output", action="append", dest="outputs", metavar="OUTPUT", help="where to send"
    )
    parser.add_argument("--config", metavar="TOML", help="run the streams of a streams.toml instead")
    group = parser.add_argument_group("stream")
    group.add_argument("--name", default=None, help="label of the stream in logs and reports")
    group.add_argument("--realtime", action="store_true", help="play a file source at its real pace")
    group.add_argument(
        "--segment", metavar="DURATION", help="rolling recording files of this length (e.g. 5m)"
    )
    group.add_argument("--keep", type=int, metavar="N", help="with --segment: keep only the newest N files")
    group.add_argument("--overwrite", action="store_true", help="replace existing recording files")
    group.add_argument(
        "--overlay", action="store_true", help="show fps, faces in view and latency on the frames"
    )
    group.add_argument(
        "--on-late", choices=ON_LATE, help="late frames: drop (default) or repeat the last one"
    )
    group.add_argument(
        "--max-lag", type=float, metavar="S", help="drop frames older than this (default: 0.5 s)"
    )
    group.add_argument(
        "--duration", metavar="DURATION", help="stop after this long (default: until the source ends)"
    )
    group.add_argument(
        "--retry-for", metavar="DURATION", help="give up after this long without frames (default: never)"
    )
    group.add_argument(
        "--open-timeout", type=float, metavar="S", help="seconds to open a source (default: 10)"
    )
    group.add_argument(
        "--read-timeout", type=float, metavar="S", help="seconds a read may block (default: 5)"
    )
    group.add_argument("--camera-size", metavar="WxH", help="resolution asked of a camera")
    group.add_argument("--camera-fps", type=float, metavar="FPS", help="frame rate asked of a camera")
    group.add_argument(
        "--regions", metavar="PATH", help="write each output frame's hidden regions as JSON lines"
    )
    group.add_argument(
        "--hold", type=int, help="frames a face stays hidden after its last detection (default: 12)"
    )
    group.add_argument("--detect-budget", type=float, help="share of frame time for detection (default: 1.0)")
    group.add_argument("--max-detect-every", type=int, help="detect at least every N frames (default: 2)")
    group.add_argument(
        "--audio", choices=AUDIO_CHOICES, help="sound in recordings and pushes: keep (default) or drop"
    )
    group.add_argument("--quality", type=int, help="H.264 CRF of recordings and pushes (default: 23)")
    group.add_argument("--encoder-preset", help="x264 preset (default: ultrafast)")
    group.add_argument(
        "--stats-every", type=float, default=0.0, metavar="S", help="print figures every S seconds"
    )
    group.add_argument("-q", "--quiet", action="store_true", help="no log lines and no report")
    add_detector_options(parser, preset=DEFAULT_LIVE_PRESET, max_side=DEFAULT_LIVE_MAX_SIDE)
    add_mask_options(parser)
    add_watermark_options(parser)
    add_compliance_options(parser, encrypt=True, live=True)
    add_voice_options(parser, choice=True)
    parser.set_defaults(handler=run_stream)


_FROM_ARGS = [
    "name",
    "realtime",
    "segment",
    "keep",
    "overwrite",
    "overlay",
    "on_late",
    "max_lag",
    "duration",
    "retry_for",
    "open_timeout",
    "read_timeout",
    "camera_size",
    "camera_fps",
    "regions",
    "hold",
    "detect_budget",
    "max_detect_every",
    "quality",
    "encoder_preset",
    "detector",
    "preset",
    "threshold",
    "device",
    "max_side",
    "mode",
    "shape",
    "mask_scale",
    "color",
    "strength",
    "cells",
    "box",
    "watermark",
    "watermark_position",
    "watermark_size",
    "watermark_opacity",
    "encrypt",
    "manifest",
    "signing_key",
    "audio",
    "voice",
    "pitch",
    "formant",
    "wobble",
    "tilt",
    "seed",
]


def _spec_from_args(args: argparse.Namespace) -> StreamSpec:
    values: dict[str, Any] = {key: getattr(args, key) for key in _FROM_ARGS}
    values = {k: v for k, v in values.items() if v is not None and v is not False}
    if args.keep_spectrum:
        values["normalise"] = False
    values |= {"source": args.source, "outputs": args.outputs}
    return stream_spec(values, default_name="stream")


def _specs(args: argparse.Namespace) -> list[StreamSpec]:
    if args.config:
        if args.source or args.outputs:
            raise ConfigError("--config takes no SOURCE or --output: the file names them")
        return load_streams(args.config)
    if not args.source or not args.outputs:
        raise ConfigError("give a SOURCE and at least one --output (or --config streams.toml)")
    return [_spec_from_args(args)]


@contextmanager
def _stopping(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop`` instead of killing the process mid-write."""

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_stream(args: argparse.Namespace) -> int:
    """Run ``faceveil stream``."""
    specs = _specs(args)
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="faceveil: %(message)s", stream=sys.stderr)
    models: dict[AnonymizerConfig, Anonymizer] = {}

    def anonymizer_for(spec: StreamSpec) -> Anonymizer:
        config = spec.live.anonymizer
        if config not in models:
            models[config] = Anonymizer(config)
        return models[config]

    for spec in specs:  # load every model before the first frame (and fail early on a bad one)
        anonymizer_for(spec)
    stop = threading.Event()

    def report(name: str, stats: StreamStats) -> None:
        print("faceveil: " + json.dumps({"stream": name, **stats.to_json()}), file=sys.stderr, flush=True)

    with _stopping(stop):
        results = run_streams(specs, stop, anonymizer_for, None if args.quiet else report, args.stats_every)
    failed = 0
    for name, result in results.items():
        if isinstance(result, StreamStats):
            if not args.quiet:
                report(name, result)
            continue
        if not isinstance(result, FaceveilError):
            raise result  # a bug, not a stream failure: show it whole
        failed += 1
        print(f"faceveil: error: stream {name}: {result}", file=sys.stderr)
    return exit_codes.INPUT_FAILED if failed else exit_codes.OK
