"""Photo benchmark: speed and faces hidden, for every detector and preset, in one run.

    .venv/bin/python benchmarks/photo_bench.py [--annotations PATH] [--limit N] [--only NAME ...]

Every configuration runs on the same photo before the next photo is loaded (interleaved), so
machine noise hits all of them alike. Times are reported as ratios to single-pass CenterFace
measured in this same run; absolute milliseconds on a shared 2-core machine are only indicative.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceveil.config import DetectorConfig, MaskConfig
from faceveil.core.detections import Detections
from faceveil.detection import create_detector
from faceveil.detection.base import describe_detector
from faceveil.detection.centerface import CenterFace, centerface_graph
from faceveil.detection.runtime import create_session, format_runtime
from faceveil.evaluation.dataset import load_annotations
from faceveil.evaluation.runner import EvalReport, Scorer
from faceveil.media.image_io import read_image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ANNOTATIONS = ROOT.parent / "shared" / "data" / "wider_dev" / "annotations.json"
REFERENCE = "centerface"
NAMES = (
    "deface-stock",
    "centerface",
    "yunet",
    "blazeface",
    "blazeface-short",
    "fast",
    "balanced",
    "thorough",
)

Detect = Callable[[npt.NDArray[np.uint8]], Detections]


def deface_stock() -> CenterFace:
    """CenterFace exactly as deface 1.5 runs it: the shipped graph with free input size only.

    The shipped graph lists its weights as inputs, which keeps onnxruntime from folding them;
    faceveil's `centerface` removes that, so this line shows what the cleanup is worth.
    """
    detector = CenterFace(threshold=0.2, device="cpu")
    detector._session = create_session(centerface_graph(fold_weights=False), "cpu")
    return detector


def build(name: str) -> tuple[Detect, dict[str, Any]]:
    """The detect function of configuration ``name``, and what it runs (passes, machine)."""
    if name == "deface-stock":
        stock = deface_stock()
        return stock.detect, describe_detector(stock)
    detector = create_detector(DetectorConfig(name=name, device="cpu"))
    return detector.detect, describe_detector(detector)


def run(annotations: Path, names: list[str], limit: int | None) -> dict[str, EvalReport]:
    """Score every configuration on every photo, interleaved."""
    images = load_annotations(annotations)[:limit]
    built = {name: build(name) for name in names}
    detectors = {name: detect for name, (detect, _) in built.items()}
    scorers = {
        name: Scorer({"detector": name, "runtime": described}, MaskConfig())
        for name, (_, described) in built.items()
    }
    warm = read_image(images[0].path).rgb
    for detect in detectors.values():
        detect(warm)
    for index, labelled in enumerate(images, 1):
        rgb = read_image(labelled.path).rgb
        for name, detect in detectors.items():
            start = time.perf_counter()
            found = detect(rgb)
            scorers[name].add(labelled, rgb.shape[1], rgb.shape[0], found, time.perf_counter() - start)
        print(f"\r{index}/{len(images)} photos", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return {name: scorer.report() for name, scorer in scorers.items()}


def table(reports: dict[str, EvalReport]) -> tuple[str, list[dict[str, Any]]]:
    """A printable table and its rows as JSON-ready dicts."""
    reference = reports[REFERENCE].median_ms if REFERENCE in reports else float("nan")
    rows = []
    lines = [
        f"{'configuration':<16} {'ms/photo':>9} {'x ' + REFERENCE:>13} {'protected':>10} {'>=32px':>8} "
        f"{'10-32px':>8} {'overblur':>9} {'AP50':>7}"
    ]
    for name, report in reports.items():
        figures = report.as_dict()
        bins = report.by_height
        big = bins["32-96"].protected + bins[">=96"].protected
        big_total = bins["32-96"].total + bins[">=96"].total
        row = {
            "configuration": name,
            "median_ms": round(report.median_ms, 1),
            "ratio_to_reference": round(report.median_ms / reference, 3),
            "protected": figures["protected"],
            "protected_ge32": big / big_total if big_total else None,
            "protected_by_height": figures["protected_by_height"],
            "overblur": report.overblur,
            "AP50": report.ap50,
        }
        rows.append(row)
        lines.append(
            f"{name:<16} {row['median_ms']:>9.1f} {row['ratio_to_reference']:>13.2f} "
            f"{100 * (row['protected'] or 0):>9.2f}% {100 * (row['protected_ge32'] or 0):>7.2f}% "
            f"{100 * (figures['protected_by_height']['10-32'] or 0):>7.2f}% "
            f"{100 * report.overblur:>8.2f}% {100 * report.ap50:>6.2f}%"
        )
    return "\n".join(lines), rows


def main() -> int:
    """Run the benchmark and print (and optionally save) the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--annotations", type=Path, default=DEFAULT_ANNOTATIONS)
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos")
    parser.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES), help="configurations to run")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "photo.json")
    args = parser.parse_args()
    names = list(dict.fromkeys([REFERENCE, *args.only]))
    reports = run(args.annotations, names, args.limit)
    text, rows = table(reports)
    runtimes = {name: report.config["runtime"] for name, report in reports.items()}
    print(f"photos: {args.annotations} ({reports[REFERENCE].images}), faces: {reports[REFERENCE].faces}")
    print(format_runtime(runtimes[REFERENCE]).splitlines()[0])
    for name, described in runtimes.items():
        print(f"  {name:<16} {format_runtime(described).splitlines()[1].removeprefix('passes').strip()}")
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    summary = {"annotations": str(args.annotations), "runtime": runtimes, "rows": rows}
    args.output.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
