"""Turn command-line inputs (files, folders, globs) into (source, target) pairs."""

from __future__ import annotations

import glob
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

_MAGIC = set("*?[")


@dataclass(frozen=True)
class Job:
    """One file to process: ``target`` is None for detect-only; ``problem`` set if it cannot run."""

    source: Path
    target: Path | None
    problem: str | None = None


@dataclass(frozen=True)
class _Found:
    path: Path
    base: Path | None  # folder the output tree mirrors; None for a plainly named file


def _glob_base(pattern: str) -> Path:
    parts = Path(pattern).parts
    fixed = [p for p in parts[: next((i for i, p in enumerate(parts) if _MAGIC & set(p)), len(parts))]]
    return Path(*fixed) if fixed else Path()


def _scan(folder: Path, extensions: Iterable[str]) -> list[Path]:
    wanted = set(extensions)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in wanted)


def expand(inputs: Sequence[str], extensions: Iterable[str]) -> tuple[list[_Found], list[Job]]:
    """Files found (in order, without duplicates) and jobs for inputs that do not exist."""
    extensions = tuple(extensions)
    found: list[_Found] = []
    missing: list[Job] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            # several inputs: keep each folder's own name in the mirrored tree
            base = path.resolve().parent if len(inputs) > 1 else path.resolve()
            found += [_Found(p, base) for p in _scan(path.resolve(), extensions)]
        elif path.exists():
            found.append(_Found(path, None))
        elif _MAGIC & set(text):
            base = _glob_base(text)
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))  # noqa: PTH207
            files = [m for m in matches if m.is_file()]
            for m in (m for m in matches if m.is_dir()):
                files += _scan(m, extensions)
            if not files:
                missing.append(Job(path, None, f"no file matches {text!r}"))
            found += [_Found(m.resolve(), base.resolve()) for m in files]
        else:
            missing.append(Job(path, None, "no such file or folder"))
    seen: set[Path] = set()
    unique = []
    for item in found:
        key = item.path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique, missing


def plan(
    inputs: Sequence[str],
    output: str | None,
    extensions: Iterable[str],
    *,
    in_place: bool = False,
    suffix: str | None = None,
) -> list[Job]:
    """Pair every input with its output path.

    - One plainly named file and an ``output`` that is not an existing folder: output is a file.
    - Otherwise ``output`` is a folder: a folder input's tree is mirrored under it, a glob's
      tree from its first wildcard, a plainly named file goes to its top.
    - ``in_place`` writes each result over its input; ``output`` None means detect only.
    - ``suffix`` (e.g. ``.png``) changes the format of outputs written to a folder.
    """
    found, jobs = expand(inputs, extensions)
    # every file of the input trees, even those left out below, is never overwritten
    sources = {f.path.resolve(): f.path for f in found}
    if output is not None:
        # an output folder inside an input folder: its files (earlier results) are not inputs
        inside = Path(output).resolve()
        found = [f for f in found if f.base is None or not f.path.resolve().is_relative_to(inside)]
    if output is None:
        return jobs + [Job(f.path, f.path if in_place else None) for f in found]
    out = Path(output)
    single = len(found) == 1 and found[0].base is None and not jobs
    if single and not out.is_dir() and out.suffix:
        return [Job(found[0].path, out)]
    claimed: dict[Path, Path] = {}
    for item in found:
        rel = item.path.relative_to(item.base) if item.base is not None else Path(item.path.name)
        target = out / (rel.with_suffix(suffix) if suffix else rel)
        other = claimed.get(target.resolve())
        if other is not None:
            jobs.append(Job(item.path, None, f"its output {target} is also the output of {other}"))
            continue
        victim = sources.get(target.resolve())
        if victim is not None and target.resolve() != item.path.resolve():
            # e.g. an output folder inside an input folder: never overwrite another input
            jobs.append(Job(item.path, None, f"its output {target} would overwrite the input {victim}"))
            continue
        claimed[target.resolve()] = item.path
        jobs.append(Job(item.path, target))
    return jobs


def beside(option: str | None, job: Job, output: str | None, several: bool, suffix: str) -> Path | None:
    """Where a file that goes with ``job``'s output (regions, manifest) is written.

    One job: ``option`` is the file. Several: ``option`` is a folder that mirrors the output
    folder, and each file is named after its output plus ``suffix``.
    """
    if option is None or job.target is None:
        return None
    if not several:
        return Path(option)
    target = job.target
    base = Path(output) if output is not None else None
    rel = target.relative_to(base) if base is not None and target.is_relative_to(base) else Path(target.name)
    return Path(option) / rel.with_name(rel.name + suffix)
