"""`faceveil video`: anonymize video files, with tracking, audio and exact timing."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.cli import exit_codes
from faceveil.cli.inputs import Job, beside, plan
from faceveil.cli.options import (
    add_cluster_options,
    add_compliance_options,
    add_detector_options,
    add_mask_options,
    add_review_options,
    add_target_options,
    add_voice_options,
    add_watermark_options,
    anonymizer_config,
    cluster_config,
    encryption_key,
    keep_faces,
    manifest_options,
    seeded_outputs,
    sound_output,
)
from faceveil.compliance.manifest import ManifestOptions
from faceveil.errors import ConfigError, FaceveilError, InputError
from faceveil.media.video_io import OUTPUT_FORMATS, VIDEO_EXTENSIONS, check_encryptable
from faceveil.pipeline.video import (
    DEFAULT_DETECT_EVERY,
    DEFAULT_VIDEO_MAX_SIDE,
    DEFAULT_VIDEO_PRESET,
    ON_ERROR,
    VideoJob,
    VideoJobConfig,
    VideoReport,
)
from faceveil.tracking.tracker import TrackerConfig

if TYPE_CHECKING:
    from tqdm import tqdm

    from faceveil.review.identity import KeepFaces


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Add the ``video`` subcommand."""
    parser = commands.add_parser(
        "video",
        help="hide the faces in video files",
        description="Find every face in every frame and hide it; faces are tracked between "
        "detections (tracks only ever add hidden regions). Same resolution, frame count and "
        "timestamps as the input; audio kept (--voice disguise disguises the voices in it); "
        "subtitles, attachments, chapters and metadata dropped. "
        "A failed or cancelled run leaves no output file. --watermark labels every frame, "
        "--encrypt writes CENC-encrypted MP4, --manifest a (signed) record that faceveil verify checks.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, folders or globs")
    parser.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    parser.add_argument(
        "--format",
        dest="suffix",
        choices=[s.lstrip(".") for s in OUTPUT_FORMATS],
        help="container for outputs written to a folder (default: as the input, else mp4)",
    )
    group = parser.add_argument_group("video")
    group.add_argument(
        "--quality", type=int, default=20, help="CRF-style quality, lower is better (default: 20)"
    )
    group.add_argument(
        "--codec", default=None, help="video encoder to use instead of the container's default"
    )
    group.add_argument(
        "--audio",
        choices=("keep", "drop"),
        default="keep",
        help="carry the audio over (default) or drop it; see also --voice",
    )
    group.add_argument(
        "--hold", type=int, default=12, help="frames a face stays hidden after its last detection"
    )
    group.add_argument(
        "--detect-every",
        type=int,
        default=DEFAULT_DETECT_EVERY,
        help=f"run the detector every N frames, track and fill in between (default: {DEFAULT_DETECT_EVERY})",
    )
    group.add_argument(
        "--on-error",
        choices=ON_ERROR,
        default="hide-frame",
        help="a damaged frame or a failed detection: hide the whole frame (default), skip it, or abort",
    )
    group.add_argument(
        "--regions", metavar="PATH", help="write the hidden regions of every frame as JSON lines"
    )
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no report")
    add_detector_options(parser, preset=DEFAULT_VIDEO_PRESET, max_side=DEFAULT_VIDEO_MAX_SIDE)
    add_mask_options(parser)
    add_target_options(parser)
    add_watermark_options(parser)
    add_compliance_options(parser, encrypt=True)
    add_review_options(parser, regions=False)
    add_cluster_options(parser, segments=True)
    add_voice_options(parser, choice=True)
    parser.set_defaults(handler=run_video)


def _job_config(args: argparse.Namespace) -> VideoJobConfig:
    return VideoJobConfig(
        anonymizer=anonymizer_config(args),
        output=sound_output(args, quality=args.quality, codec=args.codec, encryption=encryption_key(args)),
        tracker=TrackerConfig(hold=args.hold),
        detect_every=args.detect_every,
        on_error=args.on_error,
    )


def _regions_path(args: argparse.Namespace, job: Job, several: bool, name: str = "regions") -> Path | None:
    given = getattr(args, name)
    if given is None:
        return None
    if not several:
        return Path(given)
    return Path(given) / f"{job.source.stem}.regions.jsonl"


def _suffix_for(job: Job, forced: str | None) -> Job:
    if job.target is None or forced or job.target.suffix.lower() in OUTPUT_FORMATS:
        return job
    return Job(job.source, job.target.with_suffix(".mp4"), job.problem)


def run_video(args: argparse.Namespace) -> int:
    """Run ``faceveil video``."""
    config = _job_config(args)
    manifest = manifest_options(args)
    suffix = f".{args.suffix}" if args.suffix else None
    jobs = [_suffix_for(j, suffix) for j in plan(args.inputs, args.output, VIDEO_EXTENSIONS, suffix=suffix)]
    if not jobs:
        raise InputError(f"no videos found in the inputs (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
    if config.output.encryption is not None:
        for job in jobs:  # before any model is loaded or any job runs
            if job.target is not None:
                check_encryptable(job.target)
    cluster = cluster_config(args)
    if cluster is not None and (args.keep_face or args.regions_in is not None):
        raise ConfigError("--cluster does not take --keep-face or --regions-in; run those without it")
    anonymizer = Anonymizer(config.anonymizer) if cluster is None else None  # workers load their own
    keep = keep_faces(args, anonymizer.detect) if anonymizer is not None else None
    failed = 0
    # each video's sound track gets its own draw (reproducible with --seed)
    for job, output in zip(jobs, seeded_outputs(config.output, args.seed, len(jobs)), strict=True):
        try:
            if job.problem is not None or job.target is None:
                raise InputError(job.problem or "no output path")
            one = replace(config, output=output)
            report = _run_one(args, one, anonymizer, job, manifest, several=len(jobs) > 1, keep=keep)
        except ConfigError:
            raise
        except FaceveilError as exc:
            failed += 1
            print(f"faceveil: error: {job.source}: {exc}", file=sys.stderr)
            continue
        if not args.quiet:
            print(_summary(report), file=sys.stderr)
    return exit_codes.INPUT_FAILED if failed else exit_codes.OK


def _run_one(
    args: argparse.Namespace,
    config: VideoJobConfig,
    anonymizer: Anonymizer | None,
    job: Job,
    manifest: ManifestOptions | None,
    several: bool,
    keep: KeepFaces | None = None,
) -> VideoReport:
    assert job.target is not None
    bar = None if args.quiet or not sys.stderr.isatty() else _bar(job)

    def progress(done: int, total: int | None) -> None:
        if bar is not None:
            if total and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

    try:
        if manifest is not None:
            path = beside(args.manifest, job, args.output, several, ".manifest.json")
            manifest = ManifestOptions(path or manifest.path, manifest.signing_key)
        regions_out = _regions_path(args, job, several)
        if anonymizer is None:
            from faceveil.cluster.video_job import ClusterVideoJob

            return ClusterVideoJob(config, cluster_config(args), progress).run(
                job.source, job.target, regions_out, manifest
            )
        video = VideoJob(config, anonymizer, progress, keep=keep)
        regions_in = _regions_path(args, job, several, "regions_in")
        if regions_in is not None:
            from faceveil.pipeline.regions import load_for

            document = load_for(job.source, regions_in)  # refused before anything is written
            return video.render(job.source, job.target, document, regions_out, manifest)
        return video.run(job.source, job.target, regions_out, manifest)
    finally:
        if bar is not None:
            bar.close()


def _bar(job: Job) -> tqdm[Any]:
    from tqdm import tqdm

    return tqdm(total=None, unit="frame", desc=job.source.name, file=sys.stderr, dynamic_ncols=True)


def _summary(report: VideoReport) -> str:
    figures = report.to_json()
    return "faceveil: " + json.dumps(figures)
