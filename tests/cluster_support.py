"""Synthetic input of the cluster tests: H.264 with B-frames, frequent keyframes and audio,
each frame carrying its index (so a fake detector can follow a moving face)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from faceveil.core.detections import Detections

RATE = 25
RGBImage = npt.NDArray[np.uint8]


def coded_picture(index: int, width: int = 96, height: int = 64) -> RGBImage:
    rgb = np.full((height, width, 3), 90, np.uint8)
    rgb[:, :, 2] = (np.arange(width) * 2 % 200)[None, :]
    rgb[:16, :16] = 2 * index % 250  # the frame index, readable after lossy coding
    return rgb


def index_of(rgb: RGBImage) -> int:
    return round(float(rgb[2:14, 2:14].mean()) / 2)


def moving_face(rgb: RGBImage) -> Detections:
    """A face that drifts right; the detector misses it on two frames of every seven."""
    index = index_of(rgb)
    if index % 7 in (3, 4):
        return Detections.empty()
    x = 20 + index % 40
    return Detections(np.array([[x, 20, x + 24, 50]], np.float32), np.array([0.9], np.float32))


def make_video(path: Path, frames: int = 120, keyint: int = 10, audio: bool = True) -> Path:
    """An H.264 video with B-frames and a keyframe every ``keyint`` frames (and AAC audio)."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=RATE)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "10", "g": str(keyint), "keyint_min": str(keyint)}
        sound = out.add_stream("aac", rate=48000) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for i in range(frames):
            for packet in video.encode(av.VideoFrame.from_ndarray(coded_picture(i), format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            samples = frames * 48000 // RATE
            wave = (0.2 * np.sin(np.arange(samples) / 9)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(wave[None, start : start + 1024].copy(), "fltp", "mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = 48000, start, Fraction(1, 48000)
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
    return path
