"""The Streams page end to end: a real ``faceveil serve``, headless Chromium, FFmpeg RTMP servers.

FFmpeg publishes a YouTube Faces clip (one labelled face per frame) with beeps in time with a
flashing corner square; the page adds the stream (loopback allowed by the allow-list setting),
shows the anonymized preview (pixels checked), records, stops; the downloaded recording has the
labelled face hidden on >= 99% of its frames, sound for its whole length, and A/V in sync. A
second test runs two good streams and one dead URL with a password at once: the good ones record
in full, the dead one (its voice set to be disguised in the form) shows its error and that
choice, and retries with growing waits, the page stays responsive, and the password is in no
answer, page, log line or audit line.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from av_support import publish, sync
from service_support import Server, free_port, running
from test_service_browser import Console, browser, playwright, poll  # noqa: F401 - fixtures

pytestmark = pytest.mark.quality
RGBImage = npt.NDArray[np.uint8]
MAGENTA = np.array([255, 0, 255])
PASSWORD = "Cam-Pa55word"
ALLOW = {"FACEVEIL_STREAM_ALLOWLIST": json.dumps(["127.0.0.1"])}


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:  # noqa: F811 - the fixture imported above
    context = browser.new_context(accept_downloads=True)
    opened = context.new_page()
    yield opened
    context.close()


class Labelled:
    """The clip's frames and labelled face boxes; finds which source frame a picture shows."""

    def __init__(self, shared_data: Path) -> None:
        sequences = json.loads((shared_data / "ytf_tracks" / "tracks.json").read_text())
        sequence = next(s for s in sequences if s.get("video"))
        self.video = shared_data / "ytf_tracks" / sequence["video"]
        self.boxes = {r["video_frame"]: r["boxes"][0][:4] for r in sequence["video_frames"]}
        with av.open(str(self.video)) as container:
            self.frames = [
                np.asarray(f.to_ndarray(format="rgb24"), np.uint8) for f in container.decode(video=0)
            ]
        mask = np.ones(self.frames[0].shape[:2], bool)
        for x1, y1, x2, y2 in self.boxes.values():  # compare everything but the faces and the flash
            mask[max(0, int(y1) - 12) : int(y2) + 12, max(0, int(x1) - 12) : int(x2) + 12] = False
        mask[:40, :40] = False
        self.mask = mask
        self.keys = np.stack([f[mask].astype(np.float32) for f in self.frames])

    def match(self, rgb: RGBImage) -> int | None:
        """The source frame ``rgb`` shows (None for a black lead frame)."""
        if rgb.shape != self.frames[0].shape or rgb[self.mask].mean() < 15:
            return None
        errors = ((self.keys - rgb[self.mask].astype(np.float32)) ** 2).mean(axis=(1, 2))
        return int(np.argmin(errors))

    def hidden(self, rgb: RGBImage, index: int) -> bool:
        """Is the labelled face of frame ``index`` covered in magenta in ``rgb``?"""
        x1, y1, x2, y2 = (round(v) for v in self.boxes[index])
        crop = rgb[max(0, y1) : y2, max(0, x1) : x2].astype(int)
        return bool((np.abs(crop - MAGENTA).max(axis=2) < 60).mean() >= 0.5)


def fill(page: Page, name: str, url: str, voice: str = "keep", **extra: str) -> None:
    page.fill("input[name=name]", name)
    page.select_option("select[name=camera]", "")
    page.fill("input[name=url]", url)
    page.select_option("select[name=mode]", "solid")
    page.fill("input[name=color]", "ff00ff")
    page.select_option("select[name=voice]", voice)
    for field, value in extra.items():
        page.fill(f"input[name={field}]", value)
    page.click("#save")
    expect(card(page, name)).to_have_count(1, timeout=10_000)
    expect(page.locator("input[name=url]")).to_have_value("")  # the form is ready for the next one


def card(page: Page, name: str) -> Any:
    return page.locator(".stream", has=page.locator("h2", has_text=name))


def preview_pixels(page: Page, name: str) -> RGBImage:
    """The preview as the page shows it, read back from the page (a PNG of the image element)."""
    script = """(name) => {
      const cards = [...document.querySelectorAll('.stream')];
      const img = cards.find(c => c.querySelector('h2').textContent === name).querySelector('img.preview');
      if (!img.complete || !img.naturalWidth) return null;
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
      canvas.getContext('2d').drawImage(img, 0, 0);
      return canvas.toDataURL('image/png');
    }"""
    data = None
    for _ in range(50):  # between two frames the element may be loading the next one
        data = page.evaluate(script, name)
        if data:
            break
        page.wait_for_timeout(20)
    assert data, "the preview shows no picture"
    png = base64.b64decode(data.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def download_recordings(page: Page, name: str, tmp_path: Path) -> list[Path]:
    links = card(page, name).locator(".recordings a")
    saved = []
    for number in range(links.count()):
        with page.expect_download() as download:
            links.nth(number).click()
        path = tmp_path / f"{name}-{number}-{download.value.suggested_filename}"
        download.value.save_as(path)
        saved.append(path)
    return saved


def test_streams_page_shows_the_face_hidden_and_records_it_with_sound(
    page: Page, shared_data: Path, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    clip = Labelled(shared_data)
    url = f"rtmp://127.0.0.1:{free_port()}/live/ytf"
    publisher = publish(procs, url, video=clip.video, loops=2, lead=1.5)
    with running(Server(tmp_path / "data", env=ALLOW, log=tmp_path / "server.log")) as server:
        console = Console(page)
        page.goto(server.url + "/streams")
        fill(page, "ytf", url, segment_s="120")
        expect(card(page, "ytf").locator(".state")).to_have_text("running", timeout=60_000)
        poll(page, "Number(document.querySelector('.stream img.preview').dataset.frames || 0) >= 5", 30)
        expect(card(page, "ytf").locator(".figures")).to_contain_text("fps", timeout=10_000)
        expect(card(page, "ytf").locator(".figures")).to_contain_text("face")
        shown = []
        for _ in range(10):  # the preview shows anonymized frames only: the labelled face is hidden
            rgb = preview_pixels(page, "ytf")
            index = clip.match(rgb)
            if index is not None:
                shown.append((index, clip.hidden(rgb, index)))
            page.wait_for_timeout(300)
        # live detection misses about one labelled frame in a hundred (see the recording below)
        assert len(shown) >= 5 and sum(h for _, h in shown) >= len(shown) - 1, shown
        publisher.wait(60)  # the clip ends; the stream keeps retrying until stopped
        card(page, "ytf").locator("button[data-action=stop]").click()
        expect(card(page, "ytf").locator(".state")).to_have_text("stopped", timeout=30_000)
        expect(card(page, "ytf").locator(".recordings li")).to_have_count(1, timeout=10_000)
        (recording,) = download_recordings(page, "ytf", tmp_path)
        card(page, "ytf").locator(".recordings button").click()  # plays in the page
        poll(page, "document.getElementById('player').readyState >= 1", 20)
        assert page.evaluate("document.getElementById('player').duration") > 10
        assert console.errors == []

    labelled = hidden = 0
    with av.open(str(recording)) as container:
        for frame in container.decode(video=0):
            rgb = np.asarray(frame.to_ndarray(format="rgb24"), np.uint8)
            index = clip.match(rgb)
            if index is None or index not in clip.boxes:
                continue
            labelled += 1
            hidden += clip.hidden(rgb, index)
    # the three plays recorded: a 2-core machine running the browser, FFmpeg and the server
    # drops frames (never passes them on raw): 305 of 396 were kept in one clean-clone run
    assert labelled >= 0.6 * 3 * len(clip.frames), labelled
    assert hidden >= 0.99 * labelled, (hidden, labelled)
    pairs, sound_s, video_s = sync(recording, rate=30.0)
    assert len(pairs) >= 10
    assert max(abs(offset) for _, offset in pairs) <= 0.040, pairs
    assert sound_s >= video_s - 0.1, (sound_s, video_s)


def test_two_streams_and_a_dead_one_at_once_and_no_password_shown(
    page: Page, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    seconds = 15.0
    urls = [f"rtmp://127.0.0.1:{free_port()}/live/room{n}" for n in (1, 2)]
    dead = f"rtsp://operator:{PASSWORD}@127.0.0.1:{free_port()}/cam"
    log = tmp_path / "server.log"
    bodies: list[str] = []
    with running(Server(tmp_path / "data", env=ALLOW, log=log)) as server:
        page.on("response", lambda r: bodies.append(r.text()) if "/api/" in r.url and r.ok else None)
        page.goto(server.url + "/streams")
        publishers = [publish(procs, u, seconds=seconds, lead=0.5) for u in urls]
        fill(page, "room1", urls[0])
        fill(page, "room2", urls[1])
        fill(page, "door", dead, voice="disguise")
        for name in ("room1", "room2"):
            expect(card(page, name).locator(".state")).to_have_text("running", timeout=60_000)
        door = card(page, "door")
        expect(door.locator(".state")).to_contain_text("retrying", timeout=30_000)
        expect(door.locator(".error")).to_contain_text("cannot open", timeout=30_000)
        expect(door.locator(".source")).to_have_text(dead.replace(PASSWORD, "***"))
        expect(door.locator(".settings")).to_have_text("voices disguised")  # the form sent it
        expect(card(page, "room1").locator(".settings")).to_have_text("sound kept")
        waits: set[float] = set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(waits) < 3:
            text = door.locator(".state").text_content() or ""
            if "next try in" in text:
                waits.add(float(text.split("next try in ")[1].split(" s")[0]))
            # responsive while three streams run: a click is answered at once
            started = time.monotonic()
            door.locator("button[data-action=edit]").click()
            expect(page.locator("#save")).to_have_text("Save stream", timeout=2_000)
            expect(page.locator("select[name=voice]")).to_have_value("disguise")  # stored, shown
            page.click("#cancel-edit")
            assert time.monotonic() - started < 2.0
            page.wait_for_timeout(300)
        assert len(waits) >= 3 and max(waits) >= 2 * min(waits), waits  # backoff
        html = page.content()
        for publisher in publishers:
            publisher.wait(60)
        for name in ("room1", "room2", "door"):
            card(page, name).locator("button[data-action=stop]").click()
            expect(card(page, name).locator(".state")).to_have_text("stopped", timeout=30_000)
        recordings = {name: download_recordings(page, name, tmp_path) for name in ("room1", "room2")}
    for name, (path,) in recordings.items():  # one segment each, recorded in full
        pairs, sound_s, video_s = sync(path, rate=25.0)
        assert video_s >= seconds - 1.0, (name, video_s)
        with av.open(str(path)) as container:
            frames = sum(1 for _ in container.decode(video=0))
        # in full: from start to end; a busy machine may drop a few frames (never passed on raw)
        assert frames >= 0.6 * 25 * seconds, (name, frames)  # 2 cores: frames drop, see above
        assert sound_s >= video_s - 0.1 and all(abs(o) <= 0.040 for _, o in pairs), (name, pairs)
    assert any('"voice":"disguise"' in body for body in bodies)  # the API has it too
    audit = (tmp_path / "data" / "audit.jsonl").read_text()
    assert "operator:***@" in audit
    for text in [html, *bodies, log.read_text(errors="replace"), audit]:
        assert PASSWORD not in text
