"""The per-user model cache: built once, checked on load, rebuilt when damaged, private."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import pytest

from faceveil.detection.model_cache import cache_dir, cache_key, cached


class _Builder:
    def __init__(self, data: bytes = b"model bytes " * 100) -> None:
        self.data = data
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.data


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("FACEVEIL_MODEL_CACHE", str(path))
    return path


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


def test_built_once_then_read_back(folder: Path) -> None:
    build = _Builder()
    assert cached("m", cache_key(["a"]), build, lambda data: True) == build.data
    assert cached("m", cache_key(["a"]), build, lambda data: True) == build.data
    assert build.calls == 1
    (entry,) = _entries(folder)  # no temporary file left beside it
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_another_key_builds_anew(folder: Path) -> None:
    build = _Builder()
    cached("m", cache_key(["weights 1"]), build, lambda data: True)
    cached("m", cache_key(["weights 2"]), build, lambda data: True)
    assert build.calls == 2
    assert len(_entries(folder)) == 2
    assert cache_key(["ab", "c"]) != cache_key(["a", "bc"])


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "foreign"])
def test_a_damaged_entry_is_rebuilt_and_replaced(folder: Path, damage: str) -> None:
    build = _Builder()
    key = cache_key(["k"])
    cached("m", key, build, lambda data: True)
    (entry,) = _entries(folder)
    raw = bytearray(entry.read_bytes())
    if damage == "flip":
        raw[-10] ^= 0xFF
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "empty":
        raw = bytearray()
    else:
        raw = bytearray(b"something else entirely")
    entry.write_bytes(bytes(raw))
    assert cached("m", key, build, lambda data: True) == build.data
    assert build.calls == 2
    assert cached("m", key, build, lambda data: True) == build.data  # the rebuilt entry is whole
    assert build.calls == 2


def test_bytes_the_check_refuses_are_rebuilt(folder: Path) -> None:
    build = _Builder()
    key = cache_key(["k"])
    cached("m", key, build, lambda data: True)
    cached("m", key, build, lambda data: False)
    assert build.calls == 2


def test_a_folder_others_can_write_to_is_never_used(folder: Path) -> None:
    folder.mkdir(mode=0o700)
    folder.chmod(0o777)
    build = _Builder()
    cached("m", cache_key(["k"]), build, lambda data: True)
    cached("m", cache_key(["k"]), build, lambda data: True)
    assert build.calls == 2
    assert _entries(folder) == []


def test_the_cache_can_be_turned_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FACEVEIL_MODEL_CACHE", "off")
    assert cache_dir() is None
    build = _Builder()
    cached("m", cache_key(["k"]), build, lambda data: True)
    cached("m", cache_key(["k"]), build, lambda data: True)
    assert build.calls == 2


def test_default_folder_is_the_users_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FACEVEIL_MODEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "faceveil" / "models"


def test_a_failed_write_still_returns_the_model(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError("disk full")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    build = _Builder()
    assert cached("m", cache_key(["k"]), build, lambda data: True) == build.data
    assert _entries(folder) == []


def test_the_int8_graph_comes_from_the_cache_unchanged(folder: Path) -> None:
    from faceveil.detection import quantize

    quantize.centerface_int8_graph.cache_clear()
    try:
        first = quantize.centerface_int8_graph()
        (entry,) = _entries(folder)
        built = entry.stat().st_mtime_ns
        quantize.centerface_int8_graph.cache_clear()
        assert quantize.centerface_int8_graph() == first
        assert entry.stat().st_mtime_ns == built  # read, not built again
    finally:
        quantize.centerface_int8_graph.cache_clear()


def test_leftovers_of_a_killed_build_are_swept(folder: Path) -> None:
    import os

    folder.mkdir(mode=0o700)
    old, fresh = folder / ".building-old.tmp", folder / ".building-new.tmp"
    old.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    cached("m", cache_key(["k"]), _Builder(), lambda data: True)
    assert not old.exists()
    assert fresh.exists()  # perhaps another process building right now
