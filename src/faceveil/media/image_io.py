"""Photo files in and out: content-sniffed reading and metadata-free, atomic writing.

Reading decides the type by content (never by the name), refuses images above the pixel limit
*before* decoding and animated or multi-page files (no frame is silently dropped), applies the EXIF
orientation and converts colours to 8-bit sRGB. Writing builds a brand-new image from the arrays,
so no metadata of the source (EXIF with GPS and thumbnails, XMP, ICC, comments) reaches the output,
and replaces the target atomically through a temporary file in the same folder.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import secrets
import stat
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError, features

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

PathLike = str | os.PathLike[str]

_EXTENSION_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP"}
_EXTENSION_FORMATS |= {".tif": "TIFF", ".tiff": "TIFF", ".heic": "HEIF", ".heif": "HEIF"}
#: Lowercase extensions (with the dot) of the photo files picked when scanning folders.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(_EXTENSION_FORMATS)
_FORMAT_ALIASES = {"JPG": "JPEG", "MPO": "JPEG", "TIF": "TIFF", "HEIC": "HEIF"}
_READ_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "HEIF", "GIF"})
_WRITE_FORMATS = frozenset(_EXTENSION_FORMATS.values())
_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF", "HEIF"})
_SUPPORTED_TEXT = "JPEG, PNG, WebP, BMP, TIFF, HEIC"
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
#: Magic bytes, to tell a damaged image (CorruptInputError) from a file of another kind.
_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"GIF8": "GIF", b"II*\0": "TIFF"}
_SIGNATURES |= {b"MM\0*": "TIFF", b"II+\0": "TIFF", b"MM\0+": "TIFF"}
_TEMP_PREFIX = ".faceveil-tmp-"
#: What Pillow raises for damaged or truncated data (OSError covers "image file is truncated").
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError)
_SNIFF_ERRORS = (InputError, *_DECODE_ERRORS)

U8 = npt.NDArray[np.uint8]
_DEFAULT_CONFIG = ImageIOConfig()


@dataclass(frozen=True, eq=False)
class Photo:
    """A decoded photo, upright and in 8-bit sRGB.

    Attributes:
        rgb: ``(H, W, 3)`` uint8 RGB pixels with the EXIF orientation already applied.
        alpha: ``(H, W)`` uint8 alpha channel when the source had transparency, else None.
        grayscale: True when the source was greyscale; ``rgb`` then has three equal channels.
        format: the format detected from the content, as Pillow names it (``JPEG``, ``PNG``,
            ``WEBP``, ``BMP``, ``TIFF``, ``HEIF``, ``GIF``); a multi-picture JPEG (MPO) is ``JPEG``.
    """

    rgb: U8
    alpha: U8 | None
    grayscale: bool
    format: str

    def __post_init__(self) -> None:
        _check_arrays(self.rgb, self.alpha)

    @property
    def width(self) -> int:
        """Width in pixels."""
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        """Height in pixels."""
        return int(self.rgb.shape[0])


def _check_arrays(rgb: Any, alpha: Any) -> None:
    """Raise `ValidationError` unless ``rgb`` is ``(H, W, 3)`` uint8 and ``alpha`` None or ``(H, W)``."""
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValidationError(f"rgb must be a (H, W, 3) uint8 array, got {getattr(rgb, 'shape', type(rgb))}")
    if rgb.size == 0:
        raise ValidationError(f"rgb must not be empty, got shape {rgb.shape}")
    if alpha is not None and not (
        isinstance(alpha, np.ndarray) and alpha.dtype == np.uint8 and alpha.shape == rgb.shape[:2]
    ):
        raise ValidationError(f"alpha must be None or a {rgb.shape[:2]} uint8 array")


@functools.cache
def _register_heif() -> bool:
    """Register pillow-heif's HEIF opener with Pillow once; False if it is not installed."""
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - pillow-heif is a dependency
        return False
    pillow_heif.register_heif_opener()
    return True


def _use_own_bomb_check() -> None:
    """Hand the decompression-bomb check over to faceveil's own, made before decoding.

    Pillow's check (a warning, then an error at twice its limit) runs at the same moment as
    ours, right after the header is read, but warns on images faceveil accepts or refuses
    anyway; silencing it with ``warnings.catch_warnings`` is not thread-safe. The limit is
    always enforced by ``_check_opened``.
    """
    Image.MAX_IMAGE_PIXELS = None


def _signature_format(prefix: bytes) -> str | None:
    """The image format whose magic bytes start ``prefix`` (to tell damaged from foreign files)."""
    for magic, fmt in _SIGNATURES.items():
        if prefix.startswith(magic):
            return fmt
    if prefix[:4] == b"RIFF" and prefix[8:12] == b"WEBP":
        return "WEBP"
    if prefix[:2] == b"BM" and prefix[14:18] in (b"\x0c\0\0\0", b"(\0\0\0", b"|\0\0\0", b"l\0\0\0"):
        return "BMP"
    return "HEIF" if prefix[4:8] == b"ftyp" and prefix[8:12] in _HEIF_BRANDS else None


def _describe(source: PathLike | bytes) -> str:
    return "the input data" if isinstance(source, bytes | bytearray) else os.fspath(source)


@contextlib.contextmanager
def _open_binary(source: PathLike | bytes, name: str) -> Iterator[IO[bytes]]:
    """Open ``source`` for reading; InputError subclasses for missing, odd or empty files."""
    if isinstance(source, bytes | bytearray):
        if not source:
            raise EmptyInputError(f"{name} is empty")
        yield io.BytesIO(source)
        return
    with contextlib.ExitStack() as stack:
        try:
            info = Path(name).stat()
            if not stat.S_ISREG(info.st_mode):
                kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
                raise InputError(f"{name} is {kind}, not an image file")
            if info.st_size == 0:
                raise EmptyInputError(f"{name} is empty (0 bytes)")
            handle = stack.enter_context(open(name, "rb"))
        except FileNotFoundError:
            raise InputError(f"input file not found: {name}") from None
        except OSError as exc:
            raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
        yield handle


def sniff_format(path: PathLike | bytes) -> str | None:
    """Cheap content check: the image format of ``path`` (see `Photo.format`), else None.

    Only the header is read. None when the file cannot be opened, is not an image, or is an
    image of a format faceveil does not read.
    """
    _register_heif()
    try:
        with _open_binary(path, _describe(path)) as fh:
            prefix = fh.read(32)
            with _pil_open(fh) as img:
                fmt = img.format or ""
    except Image.DecompressionBombError:
        return _signature_format(prefix)
    except _SNIFF_ERRORS:
        return None
    return _FORMAT_ALIASES.get(fmt, fmt) if fmt in _READ_FORMATS else None


def read_image(source: PathLike | bytes, config: ImageIOConfig = _DEFAULT_CONFIG) -> Photo:
    """Decode a photo from a path or from the file's bytes.

    Raises:
        EmptyInputError: the file or data is empty.
        UnsupportedInputError: not an image of a supported format, or animated / multi-page.
        CorruptInputError: truncated or damaged.
        TooLargeInputError: more pixels than ``config.max_pixels`` (checked before decoding).
        InputError: the file does not exist or cannot be read.
    """
    _register_heif()
    _use_own_bomb_check()
    name = _describe(source)
    with _open_binary(source, name) as fh, _open_image(fh, name, config) as img:
        _check_opened(img, name, config)  # size and frames, from the header: before decoding
        try:
            img.load()
        except Image.DecompressionBombError as exc:
            raise _too_large(name, exc, config) from None
        except _DECODE_ERRORS as exc:
            raise CorruptInputError(f"{name} is truncated or damaged: {exc}") from None
        fmt = img.format or ""
        try:
            rgb, alpha, grayscale = _normalize(img)
        except ValueError as exc:  # e.g. a colour mode Pillow cannot convert to RGB
            raise UnsupportedInputError(
                f"{name} has colours that cannot be read ({img.mode}): {exc}"
            ) from None
    return Photo(rgb=rgb, alpha=alpha, grayscale=grayscale, format=_FORMAT_ALIASES.get(fmt, fmt))


def _too_large(name: str, exc: Exception, config: ImageIOConfig) -> TooLargeInputError:
    found = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow's own bomb error names the size
    size = found.group(1) if found else "too many"
    return TooLargeInputError(
        f"{name} has {size} pixels, more than the limit of {config.max_pixels} (max_pixels)"
    )


def _pil_open(fh: IO[bytes]) -> ImageFile.ImageFile:
    """Image.open from the start of ``fh`` (header only), without DecompressionBombWarning."""
    fh.seek(0)
    return Image.open(fh)


def _open_image(fh: IO[bytes], name: str, config: ImageIOConfig) -> Image.Image:
    """Open the header only, with Pillow's errors turned into faceveil's."""
    prefix = fh.read(32)
    try:
        img = _pil_open(fh)
    except Image.DecompressionBombError as exc:
        raise _too_large(name, exc, config) from None
    except UnidentifiedImageError:
        kind = _signature_format(prefix)
        if kind is not None:
            raise CorruptInputError(f"{name} looks like a {kind} file but is damaged") from None
        raise UnsupportedInputError(f"{name} is not an image ({_SUPPORTED_TEXT})") from None
    except _DECODE_ERRORS as exc:
        raise CorruptInputError(f"{name} is truncated or damaged: {exc}") from None
    return img


def _check_opened(img: Image.Image, name: str, config: ImageIOConfig) -> None:
    fmt = img.format or "unknown"
    if fmt not in _READ_FORMATS:
        raise UnsupportedInputError(f"{name} is a {fmt} image, which is not supported; use {_SUPPORTED_TEXT}")
    width, height = img.size
    if width * height > config.max_pixels:
        raise TooLargeInputError(
            f"{name} is {width}x{height} = {width * height} pixels, more than the limit of "
            f"{config.max_pixels} (max_pixels); refused before decoding"
        )
    if width == 0 or height == 0:
        raise CorruptInputError(f"{name} has no pixels ({width}x{height})")
    try:
        frames = int(getattr(img, "n_frames", 1))
    except _DECODE_ERRORS as exc:
        raise CorruptInputError(f"{name} is truncated or damaged: {exc}") from None
    if frames > 1 and fmt != "MPO":  # MPO: the first picture is the photo, the rest previews
        raise UnsupportedInputError(
            f"{name} is an animated or multi-page image ({frames} frames); animated and "
            "multi-page images are not supported as photos (treat them as video instead)"
        )


def _normalize(img: Image.Image) -> tuple[U8, U8 | None, bool]:
    """Upright, 8-bit sRGB ``(rgb, alpha, grayscale)`` arrays of a loaded image."""
    with contextlib.suppress(*_DECODE_ERRORS):  # unreadable EXIF: keep the pixels as stored
        ImageOps.exif_transpose(img, in_place=True)
    mode = img.mode
    transparency = img.info.get("transparency")
    if mode in _GREY_MODES:
        grey, alpha = _grey_arrays(img, transparency)
        return np.repeat(grey[:, :, np.newaxis], 3, axis=2), alpha, True
    icc = img.info.get("icc_profile")
    alpha = None
    work = img
    if mode in _ALPHA_MODES or (transparency is not None and mode in ("P", "RGB")):
        rgba = img.convert("RGBA")
        alpha = np.array(rgba.getchannel("A"), dtype=np.uint8)  # np.array: a writable copy
        work = rgba.convert("RGB")
    elif mode not in ("RGB", "CMYK"):
        work = img.convert("RGB")
    if isinstance(icc, bytes) and icc:
        work = _to_srgb(work, icc)
    if work.mode != "RGB":
        work = work.convert("RGB")
    return np.array(work, dtype=np.uint8), alpha, False


def _grey_arrays(img: Image.Image, transparency: Any) -> tuple[U8, U8 | None]:
    """8-bit grey pixels and alpha (from LA or a transparent grey value) of a grey image."""
    mode = img.mode
    if mode in ("LA", "La"):
        la = np.asarray(img.convert("LA"))
        return la[:, :, 0].copy(), la[:, :, 1].copy()
    if mode == "1":
        img = img.convert("L")
    values = np.asarray(img)
    alpha = None
    if isinstance(transparency, int) and not isinstance(transparency, bool):
        alpha = np.where(values == transparency, 0, 255).astype(np.uint8)
    return _to_uint8(values), alpha


def _to_uint8(values: npt.NDArray[Any]) -> U8:
    """Scale 16-bit, 32-bit integer or float grey values to 8 bits."""
    if values.dtype == np.uint8:
        return values.astype(np.uint8)  # a writable copy (Pillow's arrays are read-only)
    if np.issubdtype(values.dtype, np.floating):
        floats = np.nan_to_num(values.astype(np.float32))
        scale = 255.0 if floats.size and float(floats.max()) <= 1.0 else 1.0
        scaled: U8 = np.clip(np.rint(floats * scale), 0, 255).astype(np.uint8)
        return scaled
    wide = np.clip(values, 0, 65535).astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _to_srgb(img: Image.Image, icc: bytes) -> Image.Image:
    """Convert ``img`` from its embedded profile to sRGB; unchanged if that is impossible."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(source).lower():
            return img
        converted = ImageCms.profileToProfile(img, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, KeyError):
        return img
    return converted if converted is not None else img


def format_for_path(path: PathLike) -> str:
    """The output format for ``path`` from its extension (``.jpg`` -> ``JPEG`` ...).

    Raises:
        OutputError: the extension is not one of `IMAGE_EXTENSIONS`; the message lists them.
    """
    ext = Path(path).suffix.lower()
    try:
        return _EXTENSION_FORMATS[ext]
    except KeyError:
        raise OutputError(
            f"cannot tell the output format of {os.fspath(path)!r} from its extension "
            f"{ext or '(none)'!r}; use one of: {', '.join(sorted(IMAGE_EXTENSIONS))}"
        ) from None


def encode_image(
    rgb: U8, alpha: U8 | None, grayscale: bool, fmt: str, config: ImageIOConfig = _DEFAULT_CONFIG
) -> bytes:
    """Encode pixels as a ``fmt`` file (``JPEG``, ``PNG``, ``WEBP``, ``BMP``, ``TIFF``, ``HEIF``).

    The image is built fresh from the arrays and saved without any metadata. ``alpha`` is kept
    by PNG, WebP, TIFF and HEIF and dropped by JPEG and BMP; ``grayscale`` writes one grey
    channel (``rgb[..., 0]``). JPEG, WebP and HEIF use ``config.jpeg_quality``.

    Raises:
        ValidationError: the arrays have the wrong shape or dtype.
        OutputError: unknown format, or the encoder failed.
    """
    name = _FORMAT_ALIASES.get(fmt.upper(), fmt.upper())
    if name not in _WRITE_FORMATS:
        raise OutputError(f"cannot write format {fmt!r}; choose one of: {', '.join(sorted(_WRITE_FORMATS))}")
    _check_arrays(rgb, alpha)
    if name == "HEIF":
        _register_heif()
    channels = [rgb[:, :, 0]] if grayscale else [rgb]
    if alpha is not None and name in _ALPHA_FORMATS:
        channels.append(alpha)
    pixels = np.ascontiguousarray(channels[0] if len(channels) == 1 else np.dstack(channels))
    img = Image.fromarray(pixels)
    options: dict[str, Any] = {"quality": config.jpeg_quality} if name in ("JPEG", "WEBP", "HEIF") else {}
    if name == "JPEG":
        options["optimize"] = True
    if name == "TIFF" and features.check("libtiff"):
        options["compression"] = "tiff_lzw"
    buffer = io.BytesIO()
    try:
        img.save(buffer, format=name, **options)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OutputError(f"cannot encode the image as {name}: {exc}") from exc
    return buffer.getvalue()


def write_image(
    path: PathLike,
    rgb: U8,
    alpha: U8 | None = None,
    grayscale: bool = False,
    config: ImageIOConfig = _DEFAULT_CONFIG,
    *,
    forbid: Sequence[PathLike] = (),
) -> None:
    """Encode and write a photo atomically; the format follows the extension of ``path``.

    The bytes go to a hidden temp file in the target's folder (created if missing), are fsynced,
    and replace the target in one step, so a reader never sees half a file.

    Args:
        forbid: paths that must not be overwritten (the inputs); pass nothing for in-place.

    Raises:
        OutputError: unknown extension, the target is one of ``forbid``, or it cannot be written.
    """
    target = Path(path).absolute()
    fmt = format_for_path(target)
    for other in forbid:
        if _same_file(target, Path(other)):
            raise OutputError(
                f"refusing to overwrite the input {os.fspath(other)}; choose another output path"
            )
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a folder")
    data = encode_image(rgb, alpha, grayscale, fmt, config)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {target.parent}: {exc.strerror or exc}") from None
    _atomic_write(target, data)


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.samefile(second)
    except OSError:
        return os.path.normcase(first.resolve()) == os.path.normcase(second.resolve())


def _atomic_write(target: Path, data: bytes) -> None:
    """Write ``data`` to a temp file next to ``target``, fsync it, then replace ``target``."""
    temp: Path | None = None
    try:
        while temp is None:
            candidate = target.parent / f"{_TEMP_PREFIX}{secrets.token_hex(8)}{target.suffix}"
            try:
                with open(candidate, "xb") as handle:
                    temp = candidate
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            except FileExistsError:
                continue
        with contextlib.suppress(OSError):  # keep the permissions of a file replaced in place
            temp.chmod(stat.S_IMODE(target.stat().st_mode))
        temp.replace(target)
        temp = None
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                temp.unlink()
    with contextlib.suppress(OSError):  # make the rename durable where the platform allows it
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
