"""Hiding in the decoder's 4:2:0 planes (I420) instead of a full-frame RGB round trip.

Checked: pixels outside the hidden regions keep the decoder's bytes (in the planes and, through
a lossless encode, in the output file), every region is changed, its chroma covers every 2x2
block it touches, the blur is at least as strong as the RGB path's on a real crowd frame, and
the modes that need RGB fall back to it.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest

from faceveil.anonymize.anonymizer import Anonymizer
from faceveil.anonymize.planes import chroma_region
from faceveil.anonymize.regions import Region, build_regions, union_mask
from faceveil.config import AnonymizerConfig, MaskConfig, WatermarkConfig
from faceveil.core.detections import Detections
from faceveil.core.i420 import i420_planes
from faceveil.detection.fake import FakeDetector, boxes
from faceveil.errors import ValidationError
from faceveil.media.video_io import VideoOutputConfig
from faceveil.pipeline.video import VideoJob, VideoJobConfig

I420 = npt.NDArray[np.uint8]
CROWD = "facenet_pytorch_crowd_walk.mp4"


def noise_i420(width: int, height: int, seed: int = 0) -> I420:
    """A textured I420 picture: every pixel of every plane random (nothing is flat)."""
    rng = np.random.default_rng(seed)
    return rng.integers(16, 236, (height * 3 // 2, width), dtype=np.uint8)


def blur_anonymizer(faces: Detections | None = None, **mask: Any) -> Anonymizer:
    config = AnonymizerConfig(mask=MaskConfig(**mask))
    return Anonymizer(config, detector=FakeDetector(faces))


def planes_of(frame: av.VideoFrame) -> tuple[I420, I420, I420]:
    """The Y, U and V planes of a decoded 4:2:0 frame."""
    return i420_planes(np.asarray(frame.to_ndarray(), np.uint8))


def chroma_mask(regions: list[Region], width: int, height: int) -> npt.NDArray[np.bool_]:
    return union_mask([chroma_region(r) for r in regions], width // 2, height // 2)


# odd corners and sizes, a face cut by each border, overlapping faces
FACES = boxes(
    (11.3, 7.6, 40.2, 45.9),
    (31.0, 20.0, 58.5, 52.5),
    (-9.0, 60.0, 17.0, 95.0),
    (100.5, 81.2, 131.0, 121.0),
    (70.0, -12.0, 99.0, 13.0),
    (66.0, 44.0, 69.0, 47.0),
)


@pytest.mark.parametrize("shape", ["ellipse", "box"])
def test_only_the_regions_and_their_chroma_blocks_change(shape: str) -> None:
    width, height = 128, 120
    yuv = noise_i420(width, height)
    anonymizer = blur_anonymizer(shape=shape)
    out = anonymizer.hide_i420(yuv, FACES)
    assert out is not yuv and out.shape == yuv.shape
    assert np.array_equal(yuv, noise_i420(width, height))  # the input is left as it was
    regions = build_regions(FACES.xyxy, 1.3, shape, width, height)
    luma, chroma = union_mask(regions, width, height), chroma_mask(regions, width, height)
    (y0, u0, v0), (y1, u1, v1) = i420_planes(yuv), i420_planes(out)
    assert np.array_equal(y0[~luma], y1[~luma])
    assert np.array_equal(u0[~chroma], u1[~chroma]) and np.array_equal(v0[~chroma], v1[~chroma])
    for region in regions:  # no region keeps its pixels
        x1, y1_, x2, y2 = region.window
        before, after = y0[y1_:y2, x1:x2][region.mask], y1[y1_:y2, x1:x2][region.mask]
        assert np.mean(before != after) > 0.8, region
        c = chroma_region(region)
        cx1, cy1, cx2, cy2 = c.window
        assert np.mean(u0[cy1:cy2, cx1:cx2][c.mask] != u1[cy1:cy2, cx1:cx2][c.mask]) > 0.8
        assert np.mean(v0[cy1:cy2, cx1:cx2][c.mask] != v1[cy1:cy2, cx1:cx2][c.mask]) > 0.8


def test_chroma_covers_every_block_a_region_touches() -> None:
    width, height = 64, 48
    for box in [(3.0, 5.0, 10.0, 12.0), (0.5, 0.5, 1.5, 1.5), (40.2, 30.7, 63.9, 47.9)]:
        (region,) = build_regions(np.asarray([box], np.float32), 1.0, "ellipse", width, height, 0.0)
        luma = union_mask([region], width, height)
        touched = luma.reshape(height // 2, 2, width // 2, 2).any(axis=(1, 3))
        assert np.array_equal(chroma_mask([region], width, height), touched)
        c = chroma_region(region)
        assert c.size >= region.size / 2  # the chroma blur is the same blur, at half resolution


def test_the_planes_the_encoder_gets_outside_regions_are_the_decoders(tmp_path: Path) -> None:
    """Through a lossless encode: outside the regions the output decodes to the input's exact
    4:2:0 bytes (the RGB path changed them by its round trip); inside, every frame is hidden."""
    width, height, count = 96, 64, 6
    source = tmp_path / "noise.mp4"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"qp": "0", "preset": "ultrafast"}
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(noise_i420(width, height, i), format="yuv420p")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    face = boxes((20.3, 11.7, 47.0, 44.2))
    config = VideoJobConfig(output=VideoOutputConfig(quality=0), detect_every=1)
    target = tmp_path / "out.mp4"
    VideoJob(config, anonymizer=blur_anonymizer(face)).run(source, target)
    regions = build_regions(face.xyxy, 1.3, "ellipse", width, height)
    luma, chroma = union_mask(regions, width, height), chroma_mask(regions, width, height)
    with av.open(str(source)) as a, av.open(str(target)) as b:
        pairs = list(zip(a.decode(video=0), b.decode(video=0), strict=True))
    assert len(pairs) == count
    for original, hidden in pairs:
        (y0, u0, v0), (y1, u1, v1) = planes_of(original), planes_of(hidden)
        assert np.array_equal(y0[~luma], y1[~luma])
        assert np.array_equal(u0[~chroma], u1[~chroma]) and np.array_equal(v0[~chroma], v1[~chroma])
        assert np.mean(y0[luma] != y1[luma]) > 0.8


def _interior_energy(y: I420, region: Region) -> float:
    """Mean squared Laplacian of the Y plane inside ``region``, 2 px away from its edge."""
    x1, y1, x2, y2 = region.window
    laplacian = cv2.Laplacian(y.astype(np.float32), cv2.CV_32F)[y1:y2, x1:x2]
    inner = cv2.erode(region.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    return float(np.mean(laplacian[inner] ** 2)) if inner.any() else 0.0


def test_blur_in_the_planes_is_as_strong_as_in_rgb(shared_data: Path) -> None:
    """On a real 1080p crowd frame and its real detections: the high-frequency energy left in
    each region is no more than the RGB path leaves (up to rounding), and far below the original."""
    with av.open(str(shared_data / "videos" / CROWD)) as container:
        decoded = next(f for i, f in enumerate(container.decode(video=0)) if i == 40)
        yuv = np.asarray(decoded.to_ndarray(), np.uint8)
    rgb = np.asarray(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420), np.uint8)
    finder = Anonymizer(VideoJobConfig().anonymizer)
    faces = finder.detect(rgb)
    assert len(faces) >= 20
    anonymizer = Anonymizer(VideoJobConfig().anonymizer, detector=FakeDetector(faces))
    by_rgb = np.asarray(cv2.cvtColor(anonymizer.hide(rgb, faces).image, cv2.COLOR_RGB2YUV_I420), np.uint8)
    by_planes = anonymizer.hide_i420(yuv, faces)
    regions = build_regions(faces.xyxy, 1.3, "ellipse", 1920, 1080)
    original, rgb_y, planes_y = (i420_planes(p)[0] for p in (yuv, by_rgb, by_planes))
    left = [
        (_interior_energy(planes_y, r), _interior_energy(rgb_y, r), _interior_energy(original, r))
        for r in regions
    ]
    planes_e, rgb_e, original_e = (np.asarray(column) for column in zip(*left, strict=True))
    assert planes_e.mean() <= rgb_e.mean()
    bad = ~(planes_e <= rgb_e * 1.08 + 0.5)
    assert not bad.any(), (
        np.round(np.c_[planes_e, rgb_e][bad], 2),
        [regions[i].box for i in np.flatnonzero(bad)],
    )
    assert planes_e.mean() < 0.2 * original_e.mean()
    for region in regions:  # and no region's pixels are the original's
        x1, y1, x2, y2 = region.window
        same = original[y1:y2, x1:x2][region.mask] == planes_y[y1:y2, x1:x2][region.mask]
        assert same.mean() < 0.5, region


@pytest.mark.parametrize(
    ("mask", "planar"),
    [
        ({}, True),
        ({"mode": "none"}, True),
        ({"shape": "box"}, True),
        ({"mode": "pixelate"}, False),
        ({"mode": "solid"}, False),
        ({"outline": True}, False),
    ],
)
def test_modes_that_need_rgb_fall_back_to_it(mask: dict[str, Any], planar: bool) -> None:
    anonymizer = blur_anonymizer(**mask)
    assert anonymizer.hides_i420 is planar
    yuv = noise_i420(64, 48)
    if planar:
        anonymizer.hide_i420(yuv, FACES)
    else:
        with pytest.raises(ValidationError, match="RGB"):
            anonymizer.hide_i420(yuv, FACES)
    marked = Anonymizer(AnonymizerConfig(watermark=WatermarkConfig(text="x")), detector=FakeDetector())
    assert not marked.hides_i420


def test_a_pixelated_video_still_hides_through_rgb(tmp_path: Path) -> None:
    width, height = 64, 48
    source = tmp_path / "in.mp4"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"qp": "0", "preset": "ultrafast"}
        for i in range(3):
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(noise_i420(width, height, i), format="yuv420p")
            ):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    face = boxes((10.0, 8.0, 40.0, 40.0))
    config = VideoJobConfig(output=VideoOutputConfig(quality=0))
    target = tmp_path / "out.mp4"
    VideoJob(config, anonymizer=blur_anonymizer(face, mode="pixelate")).run(source, target)
    with av.open(str(source)) as a, av.open(str(target)) as b:
        for original, hidden in zip(a.decode(video=0), b.decode(video=0), strict=True):
            y0, y1 = planes_of(original)[0], planes_of(hidden)[0]
            assert np.mean(y0[16:32, 18:32] != y1[16:32, 18:32]) > 0.8
