"""Tests of faceveil.media.image_io: content sniffing, decoding checks, metadata-free writing."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pillow_heif
import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile

from faceveil.config import ImageIOConfig
from faceveil.errors import (
    CorruptInputError,
    EmptyInputError,
    InputError,
    OutputError,
    TooLargeInputError,
    UnsupportedInputError,
    ValidationError,
)
from faceveil.media.image_io import (
    IMAGE_EXTENSIONS,
    Photo,
    encode_image,
    format_for_path,
    read_image,
    sniff_format,
    write_image,
)

pillow_heif.register_heif_opener()

FORMATS = ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "HEIF"]
LOSSLESS = {"PNG", "BMP", "TIFF"}
#: A misleading name for each format: the type must come from the content.
WRONG_NAME = {"JPEG": "x.png", "PNG": "x.jpg", "WEBP": "x.bmp", "BMP": "x.webp", "TIFF": "x.heic"}
WRONG_NAME["HEIF"] = "x.tif"


def pattern(height: int = 48, width: int = 64) -> npt.NDArray[np.uint8]:
    """A smooth, deterministic RGB test picture (smooth so lossy codecs stay close)."""
    y, x = np.mgrid[0:height, 0:width]
    channels = [x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256]
    rgb: npt.NDArray[np.uint8] = np.stack(channels, axis=2).astype(np.uint8)
    return rgb


def encoded(img: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def temp_leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if "faceveil-tmp" in p.name]


# --- reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_reads_each_format_by_content_not_name(tmp_path: Path, fmt: str) -> None:
    rgb = pattern()
    path = tmp_path / WRONG_NAME[fmt]
    path.write_bytes(encoded(Image.fromarray(rgb), fmt, quality=95))
    assert sniff_format(path) == fmt
    photo = read_image(path)
    assert photo.format == fmt
    assert (photo.height, photo.width) == (48, 64)
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == (48, 64, 3)
    assert photo.alpha is None and photo.grayscale is False
    error = np.abs(photo.rgb.astype(int) - rgb.astype(int)).mean()
    assert error == 0 if fmt in LOSSLESS else error < 6
    assert read_image(path.read_bytes()).format == fmt  # bytes work the same way


def test_sniff_format_rejects_non_images(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("hello, this is not a picture\n")
    assert sniff_format(text) is None
    assert sniff_format(tmp_path / "missing.png") is None
    assert sniff_format(tmp_path) is None
    assert sniff_format(b"") is None


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    rgb = pattern(20, 40)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.png"
    Image.fromarray(rgb).save(path, exif=exif)
    assert Image.open(path).getexif()[ExifTags.Base.Orientation] == 6
    photo = read_image(path)
    assert photo.rgb.shape == (40, 20, 3)
    assert np.array_equal(photo.rgb, np.rot90(rgb, k=-1))


def test_exif_orientation_is_applied_to_jpeg(tmp_path: Path) -> None:
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = (255, 0, 0)  # left half red
    rgb[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(rgb).save(path, exif=exif, quality=95)
    photo = read_image(path)
    assert photo.rgb.shape == (40, 20, 3)
    top, bottom = photo.rgb[5:15].reshape(-1, 3).mean(0), photo.rgb[25:35].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 50  # the left (red) side is now on top
    assert bottom[2] > 200 and bottom[0] < 50


def test_rgba_png_round_trip_is_exact(tmp_path: Path) -> None:
    rgb = pattern()
    alpha = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
    source = tmp_path / "in.png"
    Image.fromarray(np.dstack([rgb, alpha])).save(source)
    photo = read_image(source)
    assert photo.alpha is not None
    assert np.array_equal(photo.rgb, rgb) and np.array_equal(photo.alpha, alpha)
    out = tmp_path / "out.png"
    write_image(out, photo.rgb, photo.alpha, photo.grayscale)
    with Image.open(out) as img:
        assert img.mode == "RGBA"
        assert np.array_equal(np.asarray(img), np.dstack([rgb, alpha]))


def test_palette_with_transparency_gives_alpha(tmp_path: Path) -> None:
    img = Image.fromarray(pattern()).quantize(16)
    img.info["transparency"] = 0
    path = tmp_path / "pal.png"
    img.save(path, transparency=0)
    photo = read_image(path)
    assert photo.alpha is not None
    index = np.asarray(Image.open(path))
    assert np.array_equal(photo.alpha == 0, index == 0)


@pytest.mark.parametrize(
    ("ext", "keeps"),
    [(".png", True), (".webp", True), (".tiff", True), (".heic", True), (".jpg", False), (".bmp", False)],
)
def test_write_each_format_round_trips(tmp_path: Path, ext: str, keeps: bool) -> None:
    rgb = pattern()
    alpha = np.full((48, 64), 255, np.uint8)
    alpha[:, :32] = 0
    out = tmp_path / f"out{ext}"
    write_image(out, rgb, alpha)
    photo = read_image(out)
    assert photo.format == format_for_path(out)
    visible = alpha > 0 if keeps else alpha >= 0  # encoders may change the colour of invisible pixels
    assert np.abs(photo.rgb.astype(int) - rgb.astype(int))[visible].mean() < 6
    assert (photo.alpha is not None) == keeps
    if photo.alpha is not None:
        assert np.abs(photo.alpha.astype(int) - alpha.astype(int)).mean() < 3
    assert temp_leftovers(tmp_path) == []


def test_greyscale_is_kept(tmp_path: Path) -> None:
    grey = pattern()[:, :, 0]
    source = tmp_path / "grey.png"
    Image.fromarray(grey).save(source)
    photo = read_image(source)
    assert photo.grayscale is True and photo.alpha is None
    for channel in range(3):
        assert np.array_equal(photo.rgb[:, :, channel], grey)
    for ext in (".png", ".jpg", ".tiff"):
        out = tmp_path / f"out{ext}"
        write_image(out, photo.rgb, photo.alpha, photo.grayscale)
        with Image.open(out) as img:
            assert img.mode == "L"
            if ext != ".jpg":
                assert np.array_equal(np.asarray(img), grey)


def test_sixteen_bit_greyscale_becomes_eight_bit(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32896], [65535, 1000, 50000]], np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    photo = read_image(path)
    assert photo.grayscale is True
    expected = np.rint(values / 257.0).astype(np.uint8)
    assert np.array_equal(photo.rgb[:, :, 0], expected)


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 8), (0, 0, 0, 0)).save(path, quality=95)
    photo = read_image(path)
    assert photo.rgb.shape == (8, 16, 3) and photo.rgb.min() > 240  # no ink: white


# --- colour --------------------------------------------------------------------------------------


def swapped_primaries_profile() -> bytes:
    """A minimal ICC v2 RGB profile whose red primary is sRGB's green (and green is sRGB's red)."""

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(struct.pack(">i", round(v * 65536)) for v in (x, y, z))

    text = b"swapped test RGB\0"
    tags = {
        b"desc": b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 12 + b"\0" * 67,
        b"wtpt": xyz(0.9642, 1.0, 0.8249),
        b"rXYZ": xyz(0.3851, 0.7169, 0.0971),
        b"gXYZ": xyz(0.4361, 0.2225, 0.0139),
        b"bXYZ": xyz(0.1431, 0.0606, 0.7141),
        b"rTRC": b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0233) + b"\0\0",
    }
    tags[b"gTRC"] = tags[b"bTRC"] = tags[b"rTRC"]
    offset = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for signature, body in tags.items():
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    size = offset + len(data)
    header = struct.pack(
        ">I4sI4s4s4s12s4s", size, b"lcms", 0x02100000, b"mntr", b"RGB ", b"XYZ ", b"", b"acsp"
    )
    header += b"\0" * 24 + struct.pack(">I", 0) + xyz(0.9642, 1.0, 0.8249)[8:] + b"\0" * 48
    assert len(header) == 128
    return header + table + data


def test_wide_gamut_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    profile = swapped_primaries_profile()
    ImageCms.ImageCmsProfile(io.BytesIO(profile))  # the test profile itself is valid
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:, :, 0] = 220  # "red" in the swapped profile is sRGB green
    path = tmp_path / "wide.png"
    Image.fromarray(rgb).save(path, icc_profile=profile)
    photo = read_image(path)
    red, green, _ = photo.rgb.reshape(-1, 3).mean(0)
    assert green > 150 and red < 60


@pytest.mark.parametrize("profile", ["srgb", "garbage"])
def test_srgb_or_broken_profile_keeps_pixels(tmp_path: Path, profile: str) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes() if profile == "srgb" else b"junk"
    rgb = pattern()
    path = tmp_path / "in.png"
    Image.fromarray(rgb).save(path, icc_profile=icc)
    assert np.array_equal(read_image(path).rgb, rgb)


# --- metadata ------------------------------------------------------------------------------------


def tiff_ifd(entries: list[tuple[int, int, int, bytes]], offset: int, next_ifd: int = 0) -> bytes:
    """One little-endian TIFF IFD at ``offset`` followed by its out-of-line values."""
    data_at = offset + 2 + 12 * len(entries) + 4
    head, extra = struct.pack("<H", len(entries)), b""
    for tag, kind, count, value in entries:
        if len(value) <= 4:
            field = value.ljust(4, b"\0")
        else:
            field = struct.pack("<I", data_at + len(extra))
            extra += value + b"\0" * (len(value) % 2)
        head += struct.pack("<HHI", tag, kind, count) + field
    return head + struct.pack("<I", next_ifd) + extra


def exif_with_gps_and_thumbnail() -> bytes:
    """EXIF with a GPS position (IFD 0x8825) and an embedded JPEG thumbnail (IFD1)."""
    thumbnail = encoded(Image.new("RGB", (16, 16), (10, 200, 30)), "JPEG")

    def rationals(*values: int) -> bytes:
        return b"".join(struct.pack("<II", v, 1) for v in values)

    gps = [
        (0, 1, 4, bytes([2, 3, 0, 0])),
        (1, 2, 2, b"N\0"),
        (2, 5, 3, rationals(52, 31, 12)),
        (3, 2, 2, b"E\0"),
        (4, 5, 3, rationals(13, 24, 36)),
    ]

    def ifd0(gps_at: int) -> list[tuple[int, int, int, bytes]]:
        return [(0x010F, 2, 8, b"FaceCam\0"), (0x8825, 4, 1, struct.pack("<I", gps_at))]

    def ifd1(thumb_at: int) -> list[tuple[int, int, int, bytes]]:
        return [
            (0x0103, 3, 1, struct.pack("<H", 6)),
            (0x0201, 4, 1, struct.pack("<I", thumb_at)),
            (0x0202, 4, 1, struct.pack("<I", len(thumbnail))),
        ]

    gps_at = 8 + len(tiff_ifd(ifd0(0), 0))
    ifd1_at = gps_at + len(tiff_ifd(gps, 0))
    thumb_at = ifd1_at + len(tiff_ifd(ifd1(0), 0))
    tiff = b"II*\0" + struct.pack("<I", 8) + tiff_ifd(ifd0(gps_at), 8, ifd1_at)
    tiff += tiff_ifd(gps, gps_at) + tiff_ifd(ifd1(thumb_at), ifd1_at) + thumbnail
    return b"Exif\0\0" + tiff


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>'
    b"<secret>where-i-live</secret></x:xmpmeta>"
)


#: ImageWidth ... PlanarConfiguration, ExtraSamples: the tags a plain TIFF needs to describe its pixels.
TIFF_STRUCTURE = {256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 338, 339}


@pytest.fixture
def tagged_jpeg(tmp_path: Path) -> Path:
    """A JPEG carrying GPS EXIF with a thumbnail, XMP, a comment and an ICC profile."""
    path = tmp_path / "tagged.jpg"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(pattern()).save(
        path,
        quality=90,
        exif=exif_with_gps_and_thumbnail(),
        icc_profile=icc,
        comment=b"secret comment",
        xmp=XMP,
    )
    data = path.read_bytes()
    with Image.open(path) as img:  # the input really carries everything the output must not
        exif = img.getexif()
        assert exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] == (52, 31, 12)
        assert ExifTags.Base.JpegIFOffset in exif.get_ifd(ExifTags.IFD.IFD1)
        assert {"exif", "icc_profile", "comment", "xmp"} <= set(img.info)
    assert data.count(b"\xff\xd8") == 2 and b"Exif\0\0" in data  # the thumbnail is embedded
    return path


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".tiff", ".heic", ".bmp"])
def test_all_metadata_is_removed(tmp_path: Path, tagged_jpeg: Path, ext: str) -> None:
    photo = read_image(tagged_jpeg)
    out = tmp_path / f"clean{ext}"
    write_image(out, photo.rgb, photo.alpha, photo.grayscale, forbid=[tagged_jpeg])
    data = out.read_bytes()
    with Image.open(out) as img:
        tags = set(img.getexif())  # a TIFF's own structure tags are its "EXIF": allow only those
        assert tags <= (TIFF_STRUCTURE if ext == ".tiff" else set())
        for key in ("exif", "icc_profile", "comment", "xmp", "XML:com.adobe.xmp"):
            assert not img.info.get(key), key
    for needle in (b"Exif\0\0", b"FaceCam", b"where-i-live", b"secret comment", b"adobe:ns:meta", b"acsp"):
        assert needle not in data, needle
    if ext == ".jpg":
        assert data.count(b"\xff\xd8") == 1  # no thumbnail either
    if ext == ".png":
        assert not any(chunk in data for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP", b"pHYs"))


# --- bad input -----------------------------------------------------------------------------------


def test_empty_input(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(EmptyInputError):
        read_image(path)
    with pytest.raises(EmptyInputError):
        read_image(b"")


def test_truncated_jpeg_is_corrupt(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(noise), "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptInputError, match="truncated"):
        read_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_damaged_header_is_corrupt_not_unsupported() -> None:
    with pytest.raises(CorruptInputError):
        read_image(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 4)


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_text("just some text, named like a photo\n" * 10)
    with pytest.raises(UnsupportedInputError, match=r"is not an image \(JPEG, PNG, WebP, BMP, TIFF, HEIC\)"):
        read_image(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="folder"):
        read_image(tmp_path)


def test_unsupported_pillow_format(tmp_path: Path) -> None:
    path = tmp_path / "icon.png"
    Image.fromarray(pattern(16, 16)).save(path, format="ICO")
    with pytest.raises(UnsupportedInputError):
        read_image(path)
    assert sniff_format(path) is None


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "WEBP", "PNG"])
def test_multi_frame_files_are_refused(tmp_path: Path, fmt: str) -> None:
    frames = [Image.fromarray(pattern()), Image.fromarray(np.invert(pattern()))]
    path = tmp_path / f"many.{fmt.lower()}"
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:])
    with Image.open(path) as img:
        assert getattr(img, "n_frames", 1) == 2
    with pytest.raises(UnsupportedInputError, match="animated or multi-page"):
        read_image(path)


def test_single_frame_gif_is_read(tmp_path: Path) -> None:
    path = tmp_path / "one.gif"
    Image.fromarray(pattern()).save(path)
    assert read_image(path).format == "GIF"


def test_pixel_limit(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    Image.fromarray(pattern(20, 20)).save(path)
    with pytest.raises(TooLargeInputError, match=r"400.*100"):
        read_image(path, ImageIOConfig(max_pixels=100))
    assert read_image(path, ImageIOConfig(max_pixels=400)).width == 20


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "small.png"
    Image.fromarray(pattern(20, 20)).save(path)

    def no_decoding(self: Image.Image) -> None:
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(Image.Image, "load", no_decoding)
    with pytest.raises(TooLargeInputError):
        read_image(path, ImageIOConfig(max_pixels=100))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header announces ``width`` x ``height`` RGB but holds almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_header_is_refused() -> None:
    with warnings.catch_warnings(record=True) as caught:
        with pytest.raises(TooLargeInputError, match="400000000"):
            read_image(png_header_only(20000, 20000))  # above Pillow's own limit too
        with pytest.raises(TooLargeInputError, match=r"150000000.*100000000"):
            read_image(png_header_only(15000, 10000))
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_pillow_limit_never_fires_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = tmp_path / "big.png"
    Image.fromarray(pattern(60, 60)).save(path)  # 3600 pixels: above 2 x Pillow's (patched) limit
    with warnings.catch_warnings(record=True) as caught:
        assert read_image(path, ImageIOConfig(max_pixels=10_000)).width == 60
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


# --- writing -------------------------------------------------------------------------------------


def test_output_under_a_regular_file_fails_cleanly(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        write_image(blocker / "out.png", pattern())
    with pytest.raises(OutputError):
        write_image(blocker / "deeper" / "out.png", pattern())
    assert temp_leftovers(tmp_path) == []


def test_failed_replace_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(self: Path, target: Any) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", broken_replace)
    with pytest.raises(OutputError, match="No space left"):
        write_image(tmp_path / "out.jpg", pattern())
    assert list(tmp_path.iterdir()) == []


def test_creates_missing_folders_and_overwrites_atomically(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out.png"
    write_image(out, pattern())
    write_image(out, np.invert(pattern()))  # in place: no forbid
    assert np.array_equal(read_image(out).rgb, np.invert(pattern()))
    assert temp_leftovers(tmp_path) == []


def test_refuses_to_overwrite_the_input(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    Image.fromarray(pattern()).save(source)
    before = source.read_bytes()
    (tmp_path / "sub").mkdir()
    for spelling in (source, tmp_path / "sub" / ".." / "in.png", str(source)):
        with pytest.raises(OutputError, match="refusing to overwrite the input"):
            write_image(spelling, np.invert(pattern()), forbid=[source])
    assert source.read_bytes() == before
    write_image(tmp_path / "other.png", pattern(), forbid=[source])


def test_format_for_path() -> None:
    assert format_for_path("a/b.JPG") == "JPEG"
    assert format_for_path(Path("x.jpeg")) == "JPEG"
    assert format_for_path("x.tif") == format_for_path("x.tiff") == "TIFF"
    assert format_for_path("x.heic") == "HEIF"
    assert {format_for_path(f"x{ext}") for ext in IMAGE_EXTENSIONS} == set(FORMATS)
    for bad in ("x.gif", "noextension"):
        with pytest.raises(OutputError, match=r"\.jpg.*\.png"):
            format_for_path(bad)


def test_jpeg_quality_defaults_to_95(tmp_path: Path) -> None:
    rgb = pattern()
    out = tmp_path / "out.jpg"
    write_image(out, rgb)
    assert out.read_bytes() == encode_image(rgb, None, False, "JPEG", ImageIOConfig(jpeg_quality=95))
    reference = encoded(Image.fromarray(rgb), "JPEG", quality=95)
    low = encode_image(rgb, None, False, "JPEG", ImageIOConfig(jpeg_quality=50))
    with (
        Image.open(out) as written,
        Image.open(io.BytesIO(reference)) as ref,
        Image.open(io.BytesIO(low)) as worse,
    ):
        assert written.quantization == ref.quantization
        assert worse.quantization != ref.quantization


def test_encode_and_photo_validate_their_input() -> None:
    with pytest.raises(OutputError, match="PNG"):
        encode_image(pattern(), None, False, "GIF")
    with pytest.raises(ValidationError):
        encode_image(pattern().astype(np.float32), None, False, "PNG")
    with pytest.raises(ValidationError):
        Photo(rgb=pattern(), alpha=np.zeros((2, 2), np.uint8), grayscale=False, format="PNG")
    with pytest.raises(ValidationError):
        Photo(rgb=pattern()[:, :, :2], alpha=None, grayscale=False, format="PNG")


def test_heic_orientation_is_applied() -> None:
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # pillow-heif stores this as the HEIF rotation property
    photo = read_image(encoded(Image.fromarray(rgb), "HEIF", exif=exif.tobytes(), quality=95))
    assert photo.format == "HEIF" and photo.rgb.shape == (40, 20, 3)
    assert photo.rgb[:18, :, 0].mean() > 200 and photo.rgb[22:, :, 0].mean() < 50
