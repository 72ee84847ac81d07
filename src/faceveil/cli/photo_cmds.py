"""`faceveil image` and `faceveil detect`: photo batches with a progress bar and JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.cli import exit_codes
from faceveil.cli.inputs import Job, beside, plan
from faceveil.cli.options import (
    add_cluster_options,
    add_compliance_options,
    add_detector_options,
    add_io_options,
    add_mask_options,
    add_review_options,
    add_target_options,
    add_watermark_options,
    anonymizer_config,
    cluster_config,
    io_config,
    keep_faces,
    manifest_options,
)
from faceveil.compliance.manifest import ManifestOptions
from faceveil.errors import ConfigError, InputError
from faceveil.media.image_io import IMAGE_EXTENSIONS
from faceveil.pipeline.photo import PhotoProcessor, PhotoReport

if TYPE_CHECKING:
    from tqdm import tqdm

    from faceveil.cluster.photos import ClusterPhotoBatch


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Add the ``image`` and ``detect`` subcommands."""
    fmt = argparse.RawDescriptionHelpFormatter
    image = commands.add_parser(
        "image",
        help="hide the faces in photos",
        description="Find every face in the photos and hide it. Output has no metadata (EXIF, GPS, "
        "thumbnails, XMP, IPTC, comments). Folders are searched recursively.",
        epilog=epilog,
        formatter_class=fmt,
    )
    image.add_argument("inputs", nargs="+", metavar="INPUT", help="photo files, folders or globs")
    image.add_argument("-o", "--output", help="output file (one input) or folder that mirrors the inputs")
    image.add_argument("--in-place", action="store_true", help="overwrite each input with its result")
    image.add_argument(
        "--format",
        dest="suffix",
        choices=("jpg", "png", "webp", "bmp", "tiff", "heic"),
        help="output format for outputs written to a folder (default: as the input)",
    )
    add_mask_options(image)
    add_target_options(image)
    add_watermark_options(image)
    add_compliance_options(image, encrypt=False)
    add_review_options(image, regions=True)
    _add_batch_options(image)
    add_cluster_options(image, segments=False)
    image.set_defaults(handler=run_image)

    detect = commands.add_parser(
        "detect",
        help="only find faces; write JSON lines",
        description="Find the faces in photos and write one JSON line per photo; nothing is hidden.",
        epilog=epilog,
        formatter_class=fmt,
    )
    detect.add_argument("inputs", nargs="+", metavar="INPUT", help="photo files, folders or globs")
    _add_batch_options(detect, json_default="-")
    detect.set_defaults(handler=run_detect)


def _add_batch_options(parser: argparse.ArgumentParser, json_default: str | None = None) -> None:
    add_detector_options(parser)
    add_io_options(parser)
    group = parser.add_argument_group("batch")
    group.add_argument(
        "--json",
        default=json_default,
        metavar="PATH",
        help="write one JSON line per photo: {image, width, height, faces: [{box, score, landmarks}]}"
        + (" ('-' for standard output, the default)" if json_default else "; '-' for standard output"),
    )
    group.add_argument("--workers", type=int, default=2, help="photos processed in parallel (default: 2)")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")


def run_image(args: argparse.Namespace) -> int:
    """Run ``faceveil image``."""
    if args.output is not None and args.in_place:
        raise ConfigError("--in-place overwrites the inputs; it cannot be combined with -o/--output")
    if args.output is None and not args.in_place:
        raise InputError("give an output with -o/--output, or --in-place to overwrite the inputs")
    suffix = f".{args.suffix}" if args.suffix else None
    jobs = plan(args.inputs, args.output, IMAGE_EXTENSIONS, in_place=args.in_place, suffix=suffix)
    return _run(args, jobs, in_place=args.in_place)


def run_detect(args: argparse.Namespace) -> int:
    """Run ``faceveil detect``."""
    return _run(args, plan(args.inputs, None, IMAGE_EXTENSIONS), in_place=False)


def _run(args: argparse.Namespace, jobs: list[Job], *, in_place: bool) -> int:
    if args.workers < 1:
        raise InputError("--workers must be at least 1")
    if not jobs:
        extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise InputError(f"no photos found in the inputs (looked for {extensions})")
    manifest = manifest_options(args) if hasattr(args, "manifest") else None
    cluster = cluster_config(args)
    review_asked = any(getattr(args, name, None) for name in ("regions", "regions_in", "keep_face"))
    if cluster is not None and (in_place or manifest is not None or review_asked):
        raise ConfigError(
            "--cluster writes to -o/--output; it does not take --in-place, --manifest, --regions, "
            "--regions-in or --keep-face"
        )
    batch = None
    if cluster is None:
        anonymizer = Anonymizer(anonymizer_config(args))
        keep = keep_faces(args, anonymizer.detect) if hasattr(args, "keep_face") else None
        processor = PhotoProcessor(anonymizer, io_config(args), keep)
    failed = faces = 0
    with ExitStack() as stack:
        sink = _open_json(stack, args.json)
        bar = _progress(stack, len(jobs), args.quiet)
        output = getattr(args, "output", None)
        review = _ReviewPaths(getattr(args, "regions", None), getattr(args, "regions_in", None), output)
        if cluster is None:
            reports = _reports(processor, jobs, args.workers, in_place, manifest, output, review)
        else:
            from faceveil.cluster.photos import ClusterPhotoBatch

            batch = ClusterPhotoBatch(anonymizer_config(args), io_config(args), cluster)
            reports = _cluster_reports(batch, jobs)
        for report in reports:
            if sink is not None:
                sink.write(json.dumps(report.to_json()) + "\n")
                sink.flush()
            if report.error is not None:
                failed += 1
                _say(bar, f"faceveil: error: {report.image}: {report.error}")
            elif report.detections is not None:
                faces += len(report.detections)
            if bar is not None:
                bar.update(1)
                if batch is not None and batch.skipped:  # outputs that exist count as done
                    bar.update(batch.skipped)
                    batch.skipped_shown, batch.skipped = batch.skipped_shown + batch.skipped, 0
    if not args.quiet:
        done = len(jobs) - failed
        skipped = ""
        if batch is not None:
            skipped = f", {batch.skipped + batch.skipped_shown} already done (skipped)"
        print(
            f"faceveil: {done} of {len(jobs)} photos done, {faces} faces, {failed} failed{skipped}",
            file=sys.stderr,
        )
    return exit_codes.INPUT_FAILED if failed else exit_codes.OK


def _reports(
    processor: PhotoProcessor,
    jobs: list[Job],
    workers: int,
    in_place: bool,
    manifest: ManifestOptions | None = None,
    output: str | None = None,
    review: _ReviewPaths | None = None,
) -> Iterator[PhotoReport]:
    several = len(jobs) > 1
    review = review or _ReviewPaths(None, None, output)

    def one(job: Job) -> PhotoReport:
        if job.problem is not None:
            return PhotoReport(str(job.source), error=InputError(job.problem))
        options = None
        if manifest is not None:
            path = beside(str(manifest.path), job, output, several, ".manifest.json")
            options = ManifestOptions(path or manifest.path, manifest.signing_key)
        regions, regions_in = review.paths(job, several)
        return processor.process(
            job.source,
            job.target,
            in_place=in_place,
            manifest=options,
            regions=regions,
            regions_in=regions_in,
        )

    if workers == 1 or len(jobs) < 2:
        yield from map(one, jobs)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="faceveil-photo") as pool:
        yield from pool.map(one, jobs)


def _cluster_reports(batch: ClusterPhotoBatch, jobs: list[Job]) -> Iterator[PhotoReport]:
    """Reports in the order photos complete on the cluster (jobs with a problem first)."""
    ready = []
    for job in jobs:
        if job.problem is not None or job.target is None:
            yield PhotoReport(str(job.source), error=InputError(job.problem or "no output path"))
        else:
            ready.append((job.source, job.target))
    yield from batch.run(ready)


@dataclass(frozen=True)
class _ReviewPaths:
    """``--regions`` and ``--regions-in`` of ``faceveil image``: a file for one photo, a folder of
    ``STEM.regions.jsonl`` (mirroring the inputs) for several."""

    regions: str | None
    regions_in: str | None
    output: str | None

    def paths(self, job: Job, several: bool) -> tuple[Path | None, Path | None]:
        return (
            beside(self.regions, job, self.output, several, ".regions.jsonl") if self.regions else None,
            beside(self.regions_in, job, self.output, several, ".regions.jsonl") if self.regions_in else None,
        )


def _open_json(stack: ExitStack, path: str | None) -> IO[str] | None:
    if path is None:
        return None
    if path == "-":
        return sys.stdout
    try:
        return stack.enter_context(open(path, "w", encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot write the JSON report {path}: {exc.strerror}") from exc


def _progress(stack: ExitStack, total: int, quiet: bool) -> tqdm[Any] | None:
    if quiet or total < 2 or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return stack.enter_context(tqdm(total=total, unit="photo", file=sys.stderr, dynamic_ncols=True))


def _say(bar: tqdm[Any] | None, message: str) -> None:
    if bar is not None:
        bar.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr)
