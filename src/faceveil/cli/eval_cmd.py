"""`faceveil eval`: score a detector configuration on labelled photos."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.cli import exit_codes
from faceveil.cli.options import add_detector_options, add_mask_options, anonymizer_config
from faceveil.detection.base import describe_detector
from faceveil.detection.runtime import format_runtime
from faceveil.errors import InputError
from faceveil.evaluation.dataset import load_annotations
from faceveil.evaluation.runner import EvalReport, evaluate


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Add the ``eval`` subcommand."""
    parser = commands.add_parser(
        "eval",
        help="score a detector configuration on labelled photos",
        description="Measure how many labelled faces faceveil would hide. 'protected' is the share of "
        "faces whose box is at least 70%% covered by the hidden region (after mask scale and shape). "
        "WIDER FACE faces flagged invalid or in no evaluation set are ignored.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "annotations",
        metavar="ANNOTATIONS.json",
        help='[{"image": relative path, "boxes": [[x1, y1, x2, y2, ...]]}]',
    )
    parser.add_argument("--output", "-o", metavar="PATH", help="also write the figures as JSON here")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_detector_options(parser)
    add_mask_options(parser)
    parser.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    """Run ``faceveil eval``."""
    images = load_annotations(args.annotations)
    if args.limit is not None:
        images = images[: args.limit]
    if not images:
        raise InputError(f"{args.annotations} lists no photos")
    config = anonymizer_config(args)
    anonymizer = Anonymizer(config)
    described: dict[str, Any] = {
        "detector": asdict(config.detector),
        "mask": asdict(config.mask),
        "runtime": describe_detector(anonymizer.detector),
    }
    if args.quiet or not sys.stderr.isatty():
        report = evaluate(images, anonymizer, described)
    else:
        from tqdm import tqdm

        with tqdm(total=len(images), unit="photo", file=sys.stderr) as bar:

            def advance(n: int) -> None:
                bar.update(n)

            report = evaluate(images, anonymizer, described, progress=advance)
    print(format_table(report))
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                json.dump(report.as_dict(), handle, indent=2)
        except OSError as exc:
            raise InputError(f"cannot write {args.output}: {exc.strerror}") from exc
    return exit_codes.OK


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:6.2f}"


def format_table(report: EvalReport) -> str:
    """The human-readable summary printed by ``faceveil eval``."""
    figures = report.as_dict()
    lines = [
        f"photos {report.images}   faces {report.faces} (+{report.ignored} ignored)   "
        f"detector {report.config['detector']['name']}",
        *([format_runtime(report.config["runtime"])] if "runtime" in report.config else []),
        "",
        "  faces by GT height      count   protected %",
    ]
    for name, share in figures["protected_by_height"].items():
        lines.append(f"  {name:>20}  {figures['faces_by_height'][name]:8d}   {_pct(share)}")
    lines += [
        f"  {'all':>20}  {report.faces:8d}   {_pct(report.overall.share())}",
        "",
        f"  AP50 {_pct(report.ap50)} %   recall50 {_pct(report.recall50)} %   "
        f"overblur {_pct(report.overblur)} %   median {report.median_ms:.1f} ms/photo",
    ]
    return "\n".join(lines)
