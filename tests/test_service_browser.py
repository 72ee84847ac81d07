"""End to end in a real headless Chromium (the distribution's package, driven by Playwright)."""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright

from service_support import Server, running

SECRET = "browser test secret 123"
#: Chromium as the test set-up installs it (scripts/system-deps.sh); never a downloaded browser.
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


def chromium_path() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("Chromium is not installed: run scripts/system-deps.sh (make test does)", pytrace=False)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    instance = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(Server(tmp_path_factory.mktemp("web") / "data")) as started:
        yield started


def poll(page: Page, expression: str, timeout_s: float = 60.0) -> None:
    """Wait until ``expression`` is true in the page (evaluated from outside: the page's policy
    forbids the string evaluation that ``wait_for_function`` would need)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(100)


class Console:
    """Collects the page's console errors (a Content-Security-Policy violation shows up here)."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._add)

    def _add(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True)
    opened = context.new_page()
    yield opened
    context.close()


def test_photo_upload_result_face_count_and_download(
    page: Page, server: Server, shared_data: Path, tmp_path: Path
) -> None:
    console = Console(page)
    source = shared_data / "images" / "fr_two_people.jpg"
    page.goto(server.url + "/photos")
    page.set_input_files("#files", str(source))
    result = page.locator(".result").first
    expect(result.locator(".state")).to_have_text("done", timeout=60_000)
    expect(result.locator(".faces")).to_have_text("2 faces found")
    expect(page.locator("#status")).to_have_text("done")
    assert page.evaluate("document.querySelector('.result .after').naturalWidth") > 0
    with page.expect_download() as download:
        result.locator(".download").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "fr_two_people.anonymized.jpg"
    with Image.open(saved) as out, Image.open(source) as original:
        assert out.size == original.size and out.format == "JPEG"
        assert not out.getexif()
    with page.expect_download() as archive:
        page.click("#download-all")
    with zipfile.ZipFile(io.BytesIO(Path(archive.value.path()).read_bytes())) as zf:
        assert zf.namelist() == ["fr_two_people.anonymized.jpg"]
        assert zf.read("fr_two_people.anonymized.jpg") == saved.read_bytes()
    assert console.errors == []


def test_bad_photo_shows_a_plain_error(page: Page, server: Server, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("this is not a picture")
    page.goto(server.url + "/photos")
    page.set_input_files("#files", str(bogus))
    expect(page.locator(".result .state").first).to_contain_text("failed: the input data is not an image")


def test_video_upload_progress_preview_and_download(
    page: Page, server: Server, shared_data: Path, tmp_path: Path
) -> None:
    console = Console(page)
    source = shared_data / "videos" / "face_recognition_short_hamilton_clip.mp4"
    page.goto(server.url + "/videos")
    page.select_option("select[name=format]", "webm")
    page.set_input_files("#file", str(source))
    expect(page.locator("#upload-text")).to_contain_text("uploaded", timeout=60_000)
    expect(page.locator("#download")).to_be_visible(timeout=300_000)
    expect(page.locator("#status")).to_have_text("done: every face found is hidden")
    figures = page.locator("#job-figures").inner_text()
    assert "frame 275 of 275" in figures and "fps" in figures and "face detection" in figures
    poll(page, "document.querySelector('#preview').readyState >= 1")
    assert page.evaluate("document.querySelector('#preview').videoWidth") == 640
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "face_recognition_short_hamilton_clip.anonymized.webm"
    with av.open(str(saved)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 275
    # the jobs page lists it; delete removes it
    page.goto(server.url + "/jobs")
    row = page.locator("#jobs-body tr", has_text="face_recognition_short_hamilton_clip.mp4").first
    expect(row).to_contain_text("done")
    row.locator("button", has_text="Delete").click()
    expect(page.locator("#jobs-body tr", has_text="face_recognition_short_hamilton_clip.mp4")).to_have_count(
        0
    )
    assert console.errors == []


def test_live_camera_round_trip_and_recording(page: Page, server: Server) -> None:
    console = Console(page)
    page.goto(server.url + "/live")
    page.click("#start")
    poll(page, "Number(document.querySelector('#output').dataset.frames || 0) >= 5")
    expect(page.locator("#figures")).to_contain_text("fps")
    page.click("#record")
    page.wait_for_timeout(1500)
    page.click("#record")
    expect(page.locator("#recording")).to_be_visible(timeout=10_000)
    page.click("#stop")
    assert console.errors == []
    audit = [json.loads(x) for x in (server.data_dir / "audit.jsonl").read_text().splitlines()]
    assert "live_start" in [entry["action"] for entry in audit]


def test_login_then_upload_with_csrf(browser: Browser, tmp_path: Path) -> None:
    secured = Server(tmp_path / "data", env={"FACEVEIL_ACCESS_SECRET": SECRET})
    with running(secured):
        context = browser.new_context()
        page = context.new_page()
        page.goto(secured.url + "/videos")
        assert page.url.endswith("/login?next=/videos")
        page.fill("input[name=secret]", "wrong secret value")
        page.click("button[type=submit]")
        expect(page.locator("#status")).to_have_text("that access secret is not right")
        page.fill("input[name=secret]", SECRET)
        page.click("button[type=submit]")
        page.wait_for_url(secured.url + "/videos")
        cookies: list[Any] = context.cookies()
        session = next(c for c in cookies if c["name"] == "faceveil_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        page.goto(secured.url + "/photos")
        page.set_input_files("#files", _tiny_png(tmp_path))
        expect(page.locator(".result .state").first).to_have_text("done", timeout=60_000)
        context.close()


def _tiny_png(tmp_path: Path) -> str:
    path = tmp_path / "plain.png"
    Image.new("RGB", (64, 48), (120, 130, 140)).save(path)
    return str(path)


def test_pose_page_draws_skeletons_and_gives_the_landmarks(
    page: Page, server: Server, shared_data: Path, tmp_path: Path
) -> None:
    console = Console(page)
    page.goto(server.url + "/pose")
    page.set_input_files("#files", str(shared_data / "images" / "fr_two_people.jpg"))
    result = page.locator(".result").first
    expect(result.locator(".state")).to_have_text("done", timeout=120_000)
    expect(result.locator(".people")).to_have_text("2 people found")
    assert page.evaluate("document.querySelector('.result .drawn').naturalWidth") == 1126
    with page.expect_download() as download:
        result.locator(".landmarks").click()
    landmarks = json.loads(Path(download.value.path()).read_text())
    assert download.value.suggested_filename == "fr_two_people.pose.json"
    assert [len(p["landmarks"]) for p in landmarks["people"]] == [33, 33]
    assert console.errors == []


def test_api_docs_render_offline(page: Page, server: Server) -> None:
    console = Console(page)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(server.url + "/api/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
    assert page.locator(".opblock").count() >= 14
    expect(page.locator(".version-stamp, .version").first).to_be_visible()
    assert all(url.startswith(server.url) for url in requests), requests
    assert console.errors == []
