"""`faceveil audio`: disguise the voices in audio files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceveil.cli import exit_codes
from faceveil.cli.inputs import plan
from faceveil.cli.options import add_voice_options, voice_config, voice_seeds
from faceveil.errors import ConfigError, FaceveilError, InputError
from faceveil.media.audio_io import AUDIO_EXTENSIONS

if TYPE_CHECKING:
    from faceveil.pipeline.audio import AudioReport
    from faceveil.voice.config import VoiceConfig


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Add the ``audio`` subcommand."""
    parser = commands.add_parser(
        "audio",
        help="disguise the voices in audio files",
        description="Disguise every voice in the audio files: pitch, formants and timbre are moved "
        "by a transform drawn at random for each recording, so recordings of one speaker do not "
        "map to one new voice. Same duration to the sample, same channels and loudness; words, "
        "accent and speaking style remain. WAV, FLAC, MP3, M4A/AAC and Ogg/Opus, recognised by "
        "content; each output keeps its input's name and format (a single output named with another "
        "audio extension is written in that format), without tags or cover art. "
        "Folders are searched recursively and mirrored under OUTPUT. A failed file leaves no output.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files, folders or globs")
    parser.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary")
    parser.add_argument("--json", action="store_true", help="one JSON line per file on standard output")
    add_voice_options(parser)
    parser.set_defaults(handler=run_audio)


def run_audio(args: argparse.Namespace) -> int:
    """Run ``faceveil audio``."""
    import numpy as np

    config = voice_config(args)
    jobs = plan(args.inputs, args.output, AUDIO_EXTENSIONS)
    if not jobs:
        raise InputError(
            f"no audio files found in the inputs (looked for {', '.join(sorted(AUDIO_EXTENSIONS))})"
        )
    seeds = voice_seeds(args.seed, len(jobs))  # one independent draw per file
    failed = 0
    for job, seed in zip(jobs, seeds, strict=True):
        try:
            if job.problem is not None or job.target is None:
                raise InputError(job.problem or "no output path")
            # a mirrored file keeps its name and its format (by content); a renamed one may change it
            rng = np.random.default_rng(seed)
            same = job.target.name == job.source.name
            report = _one(job.source, job.target, config, rng, same, args.quiet)
        except ConfigError:
            raise
        except FaceveilError as exc:
            failed += 1
            print(f"faceveil: error: {job.source}: {exc}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps(report.to_json()), flush=True)
        if not args.quiet:
            print(f"faceveil: {job.source} -> {job.target} ({report.seconds:.1f} s)", file=sys.stderr)
    if not args.quiet and len(jobs) > 1:
        print(
            f"faceveil: {len(jobs) - failed} of {len(jobs)} audio files done, {failed} failed",
            file=sys.stderr,
        )
    return exit_codes.INPUT_FAILED if failed else exit_codes.OK


def _one(source: Path, target: Path, config: VoiceConfig, rng: Any, same: bool, quiet: bool) -> AudioReport:
    """One file, with a progress bar (seconds of sound done) on a terminal."""
    from faceveil.pipeline.audio import disguise_audio_file

    if quiet or not sys.stderr.isatty():
        return disguise_audio_file(source, target, config, rng, keep_format=same)
    from tqdm import tqdm

    with tqdm(unit="s", desc=source.name, file=sys.stderr, dynamic_ncols=True) as bar:

        def progress(seconds: float) -> None:
            bar.update(seconds - bar.n)

        return disguise_audio_file(source, target, config, rng, progress, keep_format=same)
