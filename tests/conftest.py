"""Shared fixtures. Tests that need the labelled data in ../shared/data fail loudly without it."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_MODEL_CACHE: list[str] = []
_RAY_STOPS: list[Callable[[], None]] = []  # stops the running Ray cluster
_LAST_RAY_TEST: list[pytest.Item] = []


def pytest_configure(config: pytest.Config) -> None:
    """One private model cache for the run (servers started by tests share it), removed after."""
    folder = tempfile.mkdtemp(prefix="faceveil-model-cache-")
    _MODEL_CACHE.append(folder)
    os.environ["FACEVEIL_MODEL_CACHE"] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the run's model cache."""
    for folder in _MODEL_CACHE:
        shutil.rmtree(folder, ignore_errors=True)


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository (or ``$FACEVEIL_SHARED_DATA``)."""
    return Path(os.environ.get("FACEVEIL_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real test data; a missing folder is a failure, never a skip."""
    root = shared_data_dir()
    if not (root / "wider_dev" / "annotations.json").is_file():
        pytest.fail(f"the shared test data is missing: expected it at {root}", pytrace=False)
    return root


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts (FFmpeg servers, faceveil runs); whatever still runs at the end is killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A real two-node Ray cluster on this machine (a head and a second node, one CPU each, the
    second with the resource ``faceveil_node2``); yields the head's address, stopped after the
    last test that uses it (`pytest_runtest_teardown`): idle, its processes would still load the
    rest of the run, whose live tests are timed.

    Each node is a ``ray start --block`` process: terminating it stops exactly the processes it
    started (nothing else of Ray on this machine is touched)."""
    address, stop = _start_ray_cluster()
    _RAY_STOPS.append(stop)
    try:
        yield address
    finally:
        stop()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Note the last test that uses the Ray cluster."""
    users = [item for item in session.items if "ray_cluster" in getattr(item, "fixturenames", ())]
    _LAST_RAY_TEST[:] = users[-1:]


@pytest.hookimpl(trylast=True)  # after the fixtures of the test's module that use the cluster
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last test that uses the Ray cluster, stop it."""
    if item in _LAST_RAY_TEST:
        while _RAY_STOPS:
            _RAY_STOPS.pop()()


def _start_ray_cluster() -> tuple[str, Callable[[], None]]:
    """Start the cluster; its address and the (idempotent) function that stops it."""
    import sys

    ray = Path(sys.executable).with_name("ray")
    if not ray.is_file():
        pytest.fail("Ray is not installed in the test environment (make env-ray)", pytrace=False)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="fvray-")  # a short path: Ray's socket paths are limited
    # token authentication with a token made for this run, passed in the environment only (never
    # on a command line); this process (a driver of the tests) uses it too
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {key: os.environ.get(key) for key in auth}
    os.environ.update(auth)
    env = dict(os.environ)
    common = ["--block", "--num-cpus", "1", "--object-store-memory", str(200 * 1024 * 1024)]
    common += ["--disable-usage-stats", "--temp-dir", temp]
    head_args = ["--head", "--port", str(port), "--node-ip-address", "127.0.0.1", "--include-dashboard=false"]
    nodes = [subprocess.Popen([str(ray), "start", *head_args, *common], env=env)]
    stopped: list[bool] = []

    def stop() -> None:
        if stopped:
            return
        stopped.append(True)
        _stop_ray_cluster(nodes, temp, saved)

    try:
        _wait_for_nodes(ray, address, 1, env)
        node2 = [
            "--address",
            address,
            "--node-ip-address",
            "127.0.0.1",
            "--resources",
            '{"faceveil_node2": 1}',
        ]
        nodes.append(subprocess.Popen([str(ray), "start", *node2, *common], env=env))
        _wait_for_nodes(ray, address, 2, env)
    except BaseException:
        stop()
        raise
    return address, stop


def _stop_ray_cluster(nodes: list[subprocess.Popen[bytes]], temp: str, saved: dict[str, str | None]) -> None:
    import sys
    import time

    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()  # this process joined the cluster as a driver
    for node in reversed(nodes):
        node.terminate()
    for node in reversed(nodes):
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            node.kill()
    time.sleep(0.5)
    shutil.rmtree(temp, ignore_errors=True)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _wait_for_nodes(ray: Path, address: str, count: int, env: dict[str, str], timeout: float = 120) -> None:
    import subprocess
    import sys
    import time

    probe = (
        "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
        "print(sum(1 for n in ray.nodes() if n['Alive']))"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(
            [sys.executable, "-c", probe, address], env=env, capture_output=True, text=True, timeout=60
        )
        if done.returncode == 0 and done.stdout.strip() == str(count):
            return
        time.sleep(1)
    pytest.fail(f"the Ray cluster at {address} did not get {count} nodes in {timeout:.0f} s", pytrace=False)
