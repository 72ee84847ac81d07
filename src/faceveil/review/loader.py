"""Reading a regions document back: every line validated, the first problem named.

See :mod:`faceveil.review.document` for the schema. A document that fails any check is refused
whole (:class:`~faceveil.review.document.RegionsError`); nothing of it is applied.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from faceveil.review.document import (
    KINDS,
    SCHEMA,
    SOURCES,
    VERSION,
    FrameRegions,
    Region,
    RegionsDocument,
    RegionsError,
    SourceIdentity,
    build_document,
)

_REGION_KEYS = frozenset({"box", "track", "score", "source", "kept", "removed"})
_FRAME_KEYS = frozenset({"frame", "pts", "regions", "hidden_whole", "skipped"})
_SOURCE_KEYS = frozenset({"name", "sha256", "bytes", "width", "height", "frames", "fps"})
_TRACK_KEYS = frozenset({"keep", "first", "last", "frames", "best"})


def load_document(path: str | os.PathLike[str]) -> RegionsDocument:
    """Read and validate a regions document; raises `RegionsError` naming the first problem."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_document(handle, str(path))
    except OSError as exc:
        raise RegionsError(f"cannot read the regions file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RegionsError(f"{path} is not a text file") from None


def parse_document(lines: Iterable[str], name: str = "regions") -> RegionsDocument:
    """Validate the JSON lines of a document (see the module's description of the schema)."""
    iterator = iter(lines)
    header = _json_line(next(iterator, ""), name, 1)
    kind, source, keep = _parse_header(header, name)
    frames = []
    for number, line in enumerate(iterator, start=2):
        if not line.strip():
            continue
        frames.append(parse_frame(_json_line(line, name, number), source, f"{name}:{number}"))
    for frame in frames:  # a region may repeat its track's keep, never contradict it
        for region in frame.regions:
            if region.kept and (region.track is None or region.track not in keep):
                raise RegionsError(
                    f"{name}: frame {frame.frame}: a region's kept flag disagrees with its track's keep "
                    f"(track {region.track}); mark tracks kept in the header's tracks"
                )
    try:
        return build_document(
            kind,
            source,
            [replace(f, regions=tuple(replace(r, kept=False) for r in f.regions)) for f in frames],
            keep,
        )
    except RegionsError as exc:
        raise RegionsError(f"{name}: {exc}") from None


def _json_line(line: str, name: str, number: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RegionsError(f"{name}:{number}: not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise RegionsError(f"{name}:{number}: expected a JSON object")
    return value


def _parse_header(header: Mapping[str, Any], name: str) -> tuple[str, SourceIdentity, set[int]]:
    if header.get("schema") != SCHEMA:
        if "frame" in header and "regions" in header:
            raise RegionsError(
                f"{name} has no header: it was written by an older faceveil and names no source; "
                "run the job again with --regions"
            )
        raise RegionsError(f"{name}: the first line must be a {SCHEMA} header")
    if header.get("version") != VERSION:
        raise RegionsError(
            f"{name}: schema version {header.get('version')!r} is not supported (only {VERSION})"
        )
    _no_unknown(header, {"schema", "version", "kind", "source", "tracks"}, f"{name}: header")
    kind = header.get("kind")
    if kind not in KINDS:
        raise RegionsError(f"{name}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    raw = header.get("source")
    if not isinstance(raw, dict):
        raise RegionsError(f"{name}: the header has no source object")
    _no_unknown(raw, _SOURCE_KEYS, f"{name}: source")
    digest = raw.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise RegionsError(f"{name}: source.sha256 must be 64 lower-case hex digits")
    fps = raw.get("fps")
    if fps is not None and not isinstance(fps, str):
        raise RegionsError(f'{name}: source.fps must be a fraction as text, like "30000/1001"')
    source = SourceIdentity(
        name=str(raw.get("name", "")),
        sha256=digest,
        size=_int(raw.get("bytes"), "source.bytes", name, 0),
        width=_int(raw.get("width"), "source.width", name, 1),
        height=_int(raw.get("height"), "source.height", name, 1),
        frames=_int(raw.get("frames"), "source.frames", name, 1),
        fps=fps,
    )
    tracks = header.get("tracks", {})
    if not isinstance(tracks, dict):
        raise RegionsError(f"{name}: tracks must be an object of track id -> {{keep}}")
    keep = set()
    for key, entry in tracks.items():
        if not isinstance(entry, dict):
            raise RegionsError(f"{name}: tracks[{key!r}] must be an object")
        _no_unknown(entry, _TRACK_KEYS, f"{name}: tracks[{key!r}]")
        flag = entry.get("keep", False)
        if not isinstance(flag, bool):
            raise RegionsError(f"{name}: tracks[{key!r}].keep must be true or false")
        if flag:
            try:
                keep.add(int(key))
            except ValueError:
                raise RegionsError(f"{name}: track id {key!r} is not an integer") from None
    return str(kind), source, keep


def parse_frame(record: Mapping[str, Any], source: SourceIdentity, where: str) -> FrameRegions:
    """Validate one frame line (``where`` names it in errors)."""
    _no_unknown(record, _FRAME_KEYS, where)
    index = _int(record.get("frame"), "frame", where, 0)
    pts = record.get("pts")
    if pts is not None and (not isinstance(pts, int) or isinstance(pts, bool)):
        raise RegionsError(f"{where}: pts must be an integer or null")
    whole, skipped = record.get("hidden_whole", False), record.get("skipped", False)
    if not isinstance(whole, bool) or not isinstance(skipped, bool):
        raise RegionsError(f"{where}: hidden_whole and skipped must be true or false")
    rows = record.get("regions")
    if not isinstance(rows, list):
        raise RegionsError(f"{where}: regions must be a list")
    regions = tuple(_parse_region(row, source, f"{where} (frame {index})") for row in rows)
    return FrameRegions(index, pts, regions, whole, skipped)


def _parse_region(row: Any, source: SourceIdentity, where: str) -> Region:
    if not isinstance(row, dict):
        raise RegionsError(f"{where}: each region must be an object")
    _no_unknown(row, _REGION_KEYS, where)
    box = row.get("box")
    if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
        raise RegionsError(f"{where}: box must be four numbers [x1, y1, x2, y2]")
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (x1 <= x2 and y1 <= y2):
        raise RegionsError(f"{where}: box {box} must have x1 <= x2 and y1 <= y2")
    margin = 0.5 * max(source.width, source.height)  # detections may reach a little past the border
    if x2 < -margin or y2 < -margin or x1 > source.width + margin or y1 > source.height + margin:
        raise RegionsError(f"{where}: box {box} lies outside the {source.width}x{source.height} picture")
    track = row.get("track")
    if track is not None and (not isinstance(track, int) or isinstance(track, bool)):
        raise RegionsError(f"{where}: track must be an integer or null")
    score = row.get("score", 1.0)
    if not _is_number(score) or not 0.0 <= float(score) <= 1.0:
        raise RegionsError(f"{where}: score must be a number in [0, 1]")
    kind = row.get("source", "detected")
    if kind not in SOURCES:
        raise RegionsError(f"{where}: source must be one of {', '.join(SOURCES)}, got {kind!r}")
    if kind == "manual" and track is not None:
        raise RegionsError(f"{where}: a manual box has no track (track must be null)")
    flags = {key: row.get(key, False) for key in ("kept", "removed")}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise RegionsError(f"{where}: {key} must be true or false")
    return Region((x1, y1, x2, y2), track, float(score), str(kind), flags["kept"], flags["removed"])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))


def _int(value: Any, key: str, where: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise RegionsError(f"{where}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def _no_unknown(record: Mapping[str, Any], allowed: frozenset[str] | set[str], where: str) -> None:
    unknown = sorted(set(record) - set(allowed))
    if unknown:
        raise RegionsError(
            f"{where}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
