"""Review before release in a real headless Chromium against a real server (the real detector).

A video of three labelled YouTube Faces people side by side goes in with "review before
release". The third person's regions are taken out of the job's regions through the API (a face
the detection left out, on purpose); in the review page the reviewer keeps the first person's
track visible and draws one box on the third person's face. After approval the result must show
exactly that: the first person visible in every frame, the second hidden in every frame, the third
hidden wherever the drawn box was followed (>= 95% of the frames).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from service_support import Server, running
from test_service_browser import Console, browser, playwright, poll  # noqa: F401 - fixtures

PEOPLE = ("Albert_Brooks0", "Agbani_Darego0", "Aaron_Guiel5")  # kept, hidden, left out then drawn
FRAMES = 60
DRAW_ON = 20
RGB = np.ndarray[Any, np.dtype[np.uint8]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(Server(tmp_path_factory.mktemp("review") / "data")) as started:
        yield started


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:  # noqa: F811 - the imported browser fixture
    context = browser.new_context(accept_downloads=True)
    opened = context.new_page()
    yield opened
    context.close()


def _three_people(shared_data: Path, target: Path) -> tuple[list[RGB], list[dict[int, list[float]]]]:
    root = shared_data / "ytf_tracks"
    sequences = {s["sequence"]: s for s in json.loads((root / "tracks.json").read_text())}
    truths: list[dict[int, list[float]]] = [{}, {}, {}]
    frames: list[RGB] = []
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 960, 240, "yuv444p"
        stream.options = {"crf": "8", "preset": "veryfast"}
        for i in range(FRAMES):
            panels = []
            for k, name in enumerate(PEOPLE):
                sequence = sequences[name]
                record = sequence["frames"][len(sequence["frames"]) // 3 + i]
                panels.append(
                    np.asarray(
                        Image.open(root / sequence["frames_dir"] / record["frame_file"]).convert("RGB")
                    )
                )
                x1, y1, x2, y2 = record["boxes"][0]
                truths[k][i] = [x1 + 320 * k, y1, x2 + 320 * k, y2]
            rgb = np.concatenate(panels, axis=1)
            frames.append(rgb)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return frames, truths


def _inner(rgb: RGB, box: list[float], shrink: float = 0.2) -> np.ndarray[Any, np.dtype[np.int32]]:
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * shrink, (y2 - y1) * shrink
    return rgb[round(y1 + dy) : round(y2 - dy), round(x1 + dx) : round(x2 - dx)].astype(np.int32)


def _overlaps(box: list[float], truth: list[float]) -> bool:
    return min(box[2], truth[2]) > max(box[0], truth[0]) and min(box[3], truth[3]) > max(box[1], truth[1])


def test_review_keep_one_track_and_add_a_missed_face(
    page: Page, server: Server, shared_data: Path, tmp_path: Path
) -> None:
    console = Console(page)
    video = tmp_path / "three_people.mp4"
    original, truths = _three_people(shared_data, video)
    page.goto(server.url + "/videos")
    page.select_option("select[name=mode]", "solid")
    page.check("input[name=review]")
    page.set_input_files("#file", str(video))
    expect(page.locator("#review-link")).to_be_visible(timeout=300_000)
    job_id = (page.get_attribute("#review-link", "href") or "").split("/")[2]

    with server.client() as client:
        doc = client.get(f"/api/v1/jobs/{job_id}/regions").json()
        kept = {
            r["track"]
            for f in doc["frames"]
            for r in f["regions"]
            if _overlaps(r["box"], truths[0][f["frame"]])
        }
        assert len(kept) == 1, kept  # the first person is one track
        for frame in doc["frames"]:  # the third person is "missed": their regions are taken out
            frame["regions"] = [
                r for r in frame["regions"] if not _overlaps(r["box"], truths[2][frame["frame"]])
            ]
        assert client.put(f"/api/v1/jobs/{job_id}/regions", json=doc).status_code == 200

    page.click("#review-link")
    poll(page, "document.querySelector('#review').dataset.ready === 'true'")
    track = kept.pop()
    page.check(f"li.track[data-track='{track}'] input.keep")
    page.locator("#frame").focus()
    for _ in range(DRAW_ON):
        page.keyboard.press("ArrowRight")
    poll(page, f"document.querySelector('#review').dataset.frame === '{DRAW_ON}'")
    canvas = page.locator("#frame").bounding_box()
    assert canvas is not None
    scale = canvas["width"] / 960
    x1, y1, x2, y2 = truths[2][DRAW_ON]
    page.mouse.move(canvas["x"] + x1 * scale, canvas["y"] + y1 * scale)
    page.mouse.down()
    page.mouse.move(canvas["x"] + x2 * scale, canvas["y"] + y2 * scale, steps=6)
    page.mouse.up()
    expect(page.locator("#edits")).to_contain_text(f"kept tracks: {track} · boxes added: 1 · removed: 0")
    # the player previews where the drawn box will be followed
    poll(
        page, f"Number(document.querySelector('#review').dataset.followed || 0) >= {int(0.95 * FRAMES)}", 120
    )
    page.click("#approve")
    poll(page, "document.querySelector('#review').dataset.done === 'true'", timeout_s=300)

    with server.client() as client:
        result = tmp_path / "result.mp4"
        result.write_bytes(client.get(f"/api/v1/jobs/{job_id}/result").content)
        job = client.get(f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "done" and not (server.data_dir / "jobs" / job_id / "input").exists()
    with av.open(str(result)) as container:
        rendered = [np.asarray(f.to_ndarray(format="rgb24"), np.uint8) for f in container.decode(video=0)]
    assert len(rendered) == FRAMES
    drawn_hidden = 0
    for i, rgb in enumerate(rendered):
        shown = np.abs(_inner(rgb, truths[0][i]) - _inner(original[i], truths[0][i])).mean()
        assert shown < 12, (i, shown)  # kept: as in the original (within coding loss)
        assert _inner(rgb, truths[1][i]).mean() < 20, i  # hidden (solid black)
        drawn_hidden += _inner(rgb, truths[2][i]).mean() < 20
    assert drawn_hidden >= 0.95 * FRAMES, drawn_hidden
    audit = [json.loads(x) for x in (server.data_dir / "audit.jsonl").read_text().splitlines()]
    approvals = [e for e in audit if e["action"] == "job_approve" and e["job_id"] == job_id]
    assert len(approvals) == 1 and approvals[0]["kept_tracks"] == str(track)
    assert approvals[0]["boxes_added"] == 1 and approvals[0]["boxes_removed"] == 0
    assert console.errors == []


def test_photo_review_click_to_keep_drag_to_add(page: Page, server: Server, shared_data: Path) -> None:
    """Photos: click one face to keep it, drag a box over another spot, approve: the kept face is
    as in the original, the other face and the drawn box are hidden."""
    import io

    console = Console(page)
    source = shared_data / "images" / "fr_two_people.jpg"
    original = np.asarray(Image.open(source).convert("RGB")).astype(np.int32)
    with server.client() as client:
        faces = client.post("/api/v1/photos/detect", content=source.read_bytes()).json()["faces"]
    assert len(faces) == 2
    left, right = sorted((f["box"] for f in faces), key=lambda b: b[0])
    page.goto(server.url + "/photos")
    page.select_option("select[name=mode]", "solid")
    page.select_option("select[name=format]", "png")
    page.check("#review")
    page.set_input_files("#files", str(source))
    item = page.locator("#results li").first
    expect(item).to_have_attribute("data-review", "ready", timeout=120_000)
    item.locator(".review-canvas").scroll_into_view_if_needed()
    canvas = item.locator(".review-canvas").bounding_box()
    assert canvas is not None
    scale = canvas["width"] / original.shape[1]
    page.mouse.click(
        canvas["x"] + (left[0] + left[2]) / 2 * scale, canvas["y"] + (left[1] + left[3]) / 2 * scale
    )
    drawn = [500.0, 400.0, 600.0, 480.0]  # between the two men (no face: shows the box is honoured)
    page.mouse.move(canvas["x"] + drawn[0] * scale, canvas["y"] + drawn[1] * scale)
    page.mouse.down()
    page.mouse.move(canvas["x"] + drawn[2] * scale, canvas["y"] + drawn[3] * scale, steps=5)
    page.mouse.up()
    expect(item).to_have_attribute("data-kept", "1")
    expect(item).to_have_attribute("data-added", "1")
    with page.expect_download() as download:
        item.locator(".approve").click()
        expect(item.locator(".download")).to_be_visible(timeout=120_000)
        item.locator(".download").click()
    out = np.asarray(Image.open(io.BytesIO(Path(download.value.path()).read_bytes())).convert("RGB")).astype(
        np.int32
    )

    def inner(
        rgb: np.ndarray[Any, np.dtype[np.int32]], box: list[float]
    ) -> np.ndarray[Any, np.dtype[np.int32]]:
        x1, y1, x2, y2 = (round(v) for v in box)
        dx, dy = (x2 - x1) // 5, (y2 - y1) // 5
        return rgb[y1 + dy : y2 - dy, x1 + dx : x2 - dx]

    assert np.array_equal(inner(out, left), inner(original, left))  # kept: untouched
    assert inner(out, right).max() == 0 and inner(out, drawn).max() == 0  # hidden
    assert console.errors == []
