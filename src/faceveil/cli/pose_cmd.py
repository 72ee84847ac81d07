"""`faceveil pose`: body landmarks of everyone in photos and videos, drawn as skeletons."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from dataclasses import replace
from typing import IO, TYPE_CHECKING

from faceveil.cli import exit_codes
from faceveil.cli.inputs import Job, plan
from faceveil.cli.options import (
    add_detector_options,
    add_io_options,
    add_mask_options,
    add_target_options,
    add_voice_options,
    anonymizer_config,
    io_config,
    seeded_outputs,
    sound_output,
)
from faceveil.config import AnonymizerConfig, PoseConfig, parse_color
from faceveil.errors import ConfigError, FaceveilError, InputError
from faceveil.media.image_io import IMAGE_EXTENSIONS
from faceveil.media.video_io import OUTPUT_FORMATS, VIDEO_EXTENSIONS, VideoOutputConfig

if TYPE_CHECKING:
    from faceveil.pose.photo import PoseProcessor


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Add the ``pose`` subcommand."""
    parser = commands.add_parser(
        "pose",
        help="find body landmarks (33 per person) and draw skeletons",
        description="Find everyone's 33 BlazePose landmarks in photos and videos (bundled model, "
        "offline) and draw the skeletons; faces are hidden as in `faceveil image` (--mode none keeps "
        "them). --json writes one line per photo or per video frame (schema in docs/pose.md). A video's "
        "sound track is kept (--voice disguise disguises the voices in it, --voice drop drops it).",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="photos or videos, folders or globs")
    parser.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    parser.add_argument("--json", metavar="PATH", help="landmarks as JSON lines ('-' for standard output)")
    group = parser.add_argument_group("pose")
    group.add_argument("--joint-color", default="ff0000", metavar="RRGGBB", help="joints (default: red)")
    group.add_argument("--bone-color", default="ffffff", metavar="RRGGBB", help="bones (default: white)")
    group.add_argument("--thickness", type=int, default=0, help="bone width in px (default: from size)")
    group.add_argument(
        "--min-visibility", type=float, default=0.5, help="draw landmarks at least this visible (0.5)"
    )
    group.add_argument("--max-people", type=int, default=32, help="most people per picture (32)")
    group.add_argument(
        "--detect-every", type=int, default=4, help="video: look for faces and new people every N frames"
    )
    group.add_argument("-q", "--quiet", action="store_true", help="no summary")
    add_detector_options(parser)
    add_mask_options(parser)
    add_target_options(parser)
    add_io_options(parser)
    add_voice_options(parser, choice=True)
    parser.set_defaults(handler=run_pose)


def pose_config(args: argparse.Namespace) -> PoseConfig:
    """`PoseConfig` from parsed options."""
    return PoseConfig(
        min_visibility=args.min_visibility,
        max_people=args.max_people,
        joint_color=parse_color(args.joint_color),
        bone_color=parse_color(args.bone_color),
        thickness=args.thickness,
    )


def run_pose(args: argparse.Namespace) -> int:
    """Run ``faceveil pose``."""
    config = replace(anonymizer_config(args), pose=pose_config(args))
    jobs = plan(args.inputs, args.output, IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)
    if not jobs:
        raise InputError("no photos or videos found in the inputs")
    failed = people = 0
    # each video's sound track gets its own draw of the voice disguise (reproducible with --seed)
    outputs = seeded_outputs(sound_output(args), args.seed, len(jobs))
    with ExitStack() as stack:
        sink = _open_json(stack, args.json)
        photos = _Photos(config, args)
        for job, output in zip(jobs, outputs, strict=True):
            try:
                if job.problem is not None or job.target is None:
                    raise InputError(job.problem or "no output path")
                if job.source.suffix.lower() in VIDEO_EXTENSIONS:
                    people += _video(args, config, job, sink, output)
                else:
                    people += photos.run(job, sink)
            except ConfigError:
                raise
            except FaceveilError as exc:
                failed += 1
                print(f"faceveil: error: {job.source}: {exc}", file=sys.stderr)
    if not args.quiet:
        print(f"faceveil: {len(jobs) - failed} of {len(jobs)} inputs done, {people} people", file=sys.stderr)
    return exit_codes.INPUT_FAILED if failed else exit_codes.OK


class _Photos:
    """Builds the photo processor (models) only when a photo comes."""

    def __init__(self, config: AnonymizerConfig, args: argparse.Namespace) -> None:
        self.config, self.args = config, args
        self._processor: PoseProcessor | None = None

    def run(self, job: Job, sink: IO[str] | None) -> int:
        from faceveil.pose.photo import PoseProcessor

        if self._processor is None:
            self._processor = PoseProcessor(self.config, io_config(self.args))
        report = self._processor.process(job.source, job.target)
        if sink is not None:
            sink.write(json.dumps(report.to_json()) + "\n")
            sink.flush()
        if report.error is not None:
            raise report.error
        return 0 if report.result is None else len(report.result.pose.people)


def _video(
    args: argparse.Namespace,
    config: AnonymizerConfig,
    job: Job,
    sink: IO[str] | None,
    output: VideoOutputConfig,
) -> int:
    from faceveil.pose.video import PoseVideoConfig, PoseVideoJob

    assert job.target is not None
    target = job.target
    if target.suffix.lower() not in OUTPUT_FORMATS:
        target = target.with_suffix(".mp4")
    video = PoseVideoConfig(anonymizer=config, output=output, detect_every=args.detect_every)
    report = PoseVideoJob(video).run(job.source, target, sink)
    if not args.quiet:
        print("faceveil: " + json.dumps(report.to_json()), file=sys.stderr)
    return report.people


def _open_json(stack: ExitStack, path: str | None) -> IO[str] | None:
    if path is None:
        return None
    if path == "-":
        return sys.stdout
    try:
        return stack.enter_context(open(path, "w", encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot write the JSON report {path}: {exc.strerror}") from exc
