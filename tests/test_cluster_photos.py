"""Photo batches on a real two-node Ray cluster: the same outputs as a local run, results in
order of completion, and resume (a rerun skips the outputs that exist)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faceveil.cli.main import main

PHOTOS = ["deface_city_crosswalk.jpg", "dlib_bald_guys_collage.jpg", "egoblur_gen1_person_portrait.jpg"]


@pytest.fixture
def batch(shared_data: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in PHOTOS:
        shutil.copy(shared_data / "images" / name, folder / name)
    (folder / "broken.jpg").write_bytes(b"not a photo")
    return folder


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cluster_photos_equal_local_and_resume(batch: Path, tmp_path: Path, ray_cluster: str) -> None:
    local = tmp_path / "local"
    assert main(["image", str(batch), "-o", str(local), "-q"]) == 1  # the broken photo fails
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    argv = ["image", str(batch), "-o", str(out), "-q", "--json", str(report), "--cluster", ray_cluster]
    assert main([*argv, "--cluster-workers", "2"]) == 1
    for name in PHOTOS:
        assert (out / name).read_bytes() == (local / name).read_bytes()
    records = _records(report)
    assert len(records) == len(PHOTOS) + 1
    assert sum(1 for r in records if "error" in r) == 1
    assert all(r["faces"] for r in records if "error" not in r)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    # resume: only the missing output is made again, the others are left as they are
    (out / PHOTOS[1]).unlink()
    kept = {name: (out / name).stat().st_mtime_ns for name in (PHOTOS[0], PHOTOS[2])}
    assert main([*argv]) == 1
    redone = [r for r in _records(report) if "error" not in r]
    assert [Path(str(r["image"])).name for r in redone] == [PHOTOS[1]]
    assert (out / PHOTOS[1]).read_bytes() == (local / PHOTOS[1]).read_bytes()
    assert {name: (out / name).stat().st_mtime_ns for name in kept} == kept


def test_cluster_photos_refuse_in_place(batch: Path) -> None:
    assert main(["image", str(batch), "--in-place", "--cluster", "auto", "-q"]) == 2
