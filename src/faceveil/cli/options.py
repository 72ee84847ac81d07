"""Command-line options shared by several subcommands, and their translation to config."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from faceveil.config import (
    MODES,
    SHAPES,
    TARGETS,
    WATERMARK_POSITIONS,
    AnonymizerConfig,
    DetectorConfig,
    ImageIOConfig,
    MaskConfig,
    WatermarkConfig,
    parse_color,
)
from faceveil.detection.base import available_detectors
from faceveil.errors import ConfigError

if TYPE_CHECKING:
    from faceveil.cluster.ray_backend import ClusterConfig
    from faceveil.compliance.keys import EncryptionKey
    from faceveil.compliance.manifest import ManifestOptions
    from faceveil.media.video_io import VideoOutputConfig
    from faceveil.review.identity import KeepFaces
    from faceveil.voice.config import VoiceConfig


def add_detector_options(
    parser: argparse.ArgumentParser, preset: str = "balanced", max_side: int | None = None
) -> None:
    """``--detector``, ``--preset``, ``--threshold``, ``--device``, ``--max-side``."""
    group = parser.add_argument_group("detection")
    group.add_argument(
        "--detector",
        default=None,
        choices=available_detectors(),
        metavar="NAME",
        help=f"detector or preset: {', '.join(available_detectors())} (default: {preset})",
    )
    group.add_argument(
        "--preset",
        default=preset,
        choices=("fast", "balanced", "thorough", "video"),
        help=f"speed/recall trade-off; same as --detector PRESET (default: {preset})",
    )
    group.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="score threshold in [0, 1] (default: per detector, recall first)",
    )
    group.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where models run")
    group.add_argument(
        "--max-side",
        type=int,
        default=max_side,
        metavar="PX",
        help="detect on a copy downscaled to this longer side (default: "
        + (f"{max_side})" if max_side else "full resolution)"),
    )


def add_mask_options(parser: argparse.ArgumentParser) -> None:
    """``--mode``, ``--shape``, ``--mask-scale``, ``--color``, ``--strength``, ``--cells``, ``--box``."""
    group = parser.add_argument_group("anonymization")
    group.add_argument("--mode", default="blur", choices=MODES, help="how faces are hidden (default: blur)")
    group.add_argument("--shape", default="ellipse", choices=SHAPES, help="region shape (default: ellipse)")
    group.add_argument(
        "--mask-scale",
        type=float,
        default=1.3,
        help="scale the face box by this before hiding (default: 1.3)",
    )
    group.add_argument("--color", default="000000", metavar="RRGGBB", help="fill colour for --mode solid")
    group.add_argument(
        "--strength", type=float, default=0.2, help="blur sigma as a share of the face size (default: 0.2)"
    )
    group.add_argument("--cells", type=int, default=8, help="mosaic cells across a face for --mode pixelate")
    group.add_argument("--box", action="store_true", help="draw a green outline around each hidden face")


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """``--target face|head|person`` and ``--skeleton-only`` (whole-person privacy, see docs/pose.md)."""
    group = parser.add_argument_group("whole-person privacy")
    group.add_argument(
        "--target",
        default="face",
        choices=TARGETS,
        help="what is hidden: face (default), head (face, hair and ears from pose landmarks; also "
        "people seen from the side or behind) or person (the whole silhouette); faces are always hidden",
    )
    group.add_argument(
        "--skeleton-only",
        action="store_true",
        help="hide every person whole and draw their skeletons over (movement without identity)",
    )


def add_watermark_options(parser: argparse.ArgumentParser) -> None:
    """``--watermark TEXT`` and its ``--watermark-position``, ``-size``, ``-opacity``."""
    group = parser.add_argument_group("watermark")
    group.add_argument(
        "--watermark",
        metavar="TEXT",
        help="draw this label on every result after hiding, e.g. 'anonymized 2026-12-01' (ASCII)",
    )
    group.add_argument(
        "--watermark-position",
        default="bottom-right",
        choices=WATERMARK_POSITIONS,
        help="where the label goes (default: bottom-right)",
    )
    group.add_argument(
        "--watermark-size",
        type=float,
        default=0.04,
        metavar="SHARE",
        help="text height as a share of the picture's height (default: 0.04)",
    )
    group.add_argument(
        "--watermark-opacity", type=float, default=0.7, help="0.05 (faint) to 1 (solid) (default: 0.7)"
    )


def add_review_options(parser: argparse.ArgumentParser, *, regions: bool) -> None:
    """``--keep-face REF`` (repeatable), ``--regions-in PATH`` and (for photos) ``--regions PATH``."""
    group = parser.add_argument_group("review")
    group.add_argument(
        "--keep-face",
        action="append",
        default=[],
        metavar="REF",
        help="keep the person in this photo visible (repeatable); decided per track, when in doubt hidden",
    )
    group.add_argument(
        "--regions-in",
        metavar="PATH",
        help="hide what this regions file lists (edited: kept tracks, added or removed boxes) "
        "instead of detecting; a folder of INPUT-STEM.regions.jsonl for several inputs",
    )
    if regions:
        group.add_argument(
            "--regions",
            metavar="PATH",
            help="write the regions document of each photo (a folder for several)",
        )


def keep_faces(args: argparse.Namespace, find_faces: Any) -> KeepFaces | None:
    """The reference people of ``--keep-face`` (None without); loads the descriptor model."""
    if not args.keep_face:
        return None
    if args.regions_in is not None:
        raise ConfigError(
            "--keep-face decides on detected tracks; with --regions-in, mark tracks kept in the file"
        )
    from faceveil.review.identity import KeepFaces

    return KeepFaces.from_photos(args.keep_face, find_faces)


def add_compliance_options(parser: argparse.ArgumentParser, *, encrypt: bool, live: bool = False) -> None:
    """``--manifest``, ``--signing-key`` and (for video and live recordings) ``--encrypt``.

    With ``live``, ``--manifest [DIR]`` takes an optional folder: one manifest per recorded file.
    """
    group = parser.add_argument_group("compliance")
    if live:
        group.add_argument(
            "--manifest",
            nargs="?",
            const="",
            metavar="DIR",
            help="write a manifest (settings, model, output SHA-256, counts) of every finished "
            "recording file, NAME.mp4.manifest.json in DIR (without DIR: beside each file; give "
            "SOURCE before a bare --manifest); check it with faceveil verify",
        )
    else:
        group.add_argument(
            "--manifest",
            metavar="PATH",
            help="write a manifest (settings, model, input and output SHA-256, counts) beside the "
            "output; a folder when there are several outputs; check it with faceveil verify",
        )
    group.add_argument(
        "--signing-key",
        metavar="FILE",
        help="sign the manifest with this Ed25519 key (made by faceveil keygen --signing)",
    )
    if encrypt:
        what = "every MP4 recording file" if live else "the MP4/MOV output"
        note = "; pushes and previews are not encrypted" if live else ""
        group.add_argument(
            "--encrypt",
            metavar="KEYFILE",
            help=f"encrypt {what} (CENC, AES-128 CTR) with the key in KEYFILE (made by "
            f"faceveil keygen) or in an environment variable with env:VAR; never the key itself{note}",
        )


def watermark_config(args: argparse.Namespace) -> WatermarkConfig | None:
    """`WatermarkConfig` from parsed options, None without ``--watermark``."""
    text = getattr(args, "watermark", None)
    if text is None:
        return None
    return WatermarkConfig(
        text=text, position=args.watermark_position, size=args.watermark_size, opacity=args.watermark_opacity
    )


def manifest_options(args: argparse.Namespace) -> ManifestOptions | None:
    """The manifest to write (its path as given; see `beside`), with its signing key loaded."""
    from pathlib import Path

    from faceveil.compliance.keys import load_signing_key
    from faceveil.compliance.manifest import ManifestOptions
    from faceveil.errors import ConfigError

    key = load_signing_key(args.signing_key) if args.signing_key else None
    if args.manifest is None:
        if key is not None:
            raise ConfigError("--signing-key signs a manifest: give --manifest PATH too")
        return None
    return ManifestOptions(Path(args.manifest), key)


def encryption_key(args: argparse.Namespace) -> EncryptionKey | None:
    """The key ``--encrypt`` names (a key file or ``env:VAR``), None without it."""
    if getattr(args, "encrypt", None) is None:
        return None
    from faceveil.compliance.keys import load_encryption_key

    return load_encryption_key(args.encrypt)


def add_io_options(parser: argparse.ArgumentParser) -> None:
    """``--max-pixels``, ``--jpeg-quality``."""
    group = parser.add_argument_group("files")
    group.add_argument(
        "--max-pixels",
        type=int,
        default=100_000_000,
        help="refuse larger images before decoding (default: 100e6)",
    )
    group.add_argument("--jpeg-quality", type=int, default=95, help="JPEG/WebP output quality (default: 95)")


def detector_config(args: argparse.Namespace) -> DetectorConfig:
    """`DetectorConfig` from parsed options."""
    name = args.detector or args.preset
    return DetectorConfig(name=name, threshold=args.threshold, device=args.device, max_side=args.max_side)


def mask_config(args: argparse.Namespace) -> MaskConfig:
    """`MaskConfig` from parsed options."""
    return MaskConfig(
        mode=args.mode,
        shape=args.shape,
        scale=args.mask_scale,
        color=parse_color(args.color),
        blur_strength=args.strength,
        cells=args.cells,
        outline=args.box,
    )


def anonymizer_config(args: argparse.Namespace) -> AnonymizerConfig:
    """`AnonymizerConfig` from parsed options (mask options default when a command has none)."""
    mask = mask_config(args) if hasattr(args, "mode") else MaskConfig()
    return AnonymizerConfig(
        detector=detector_config(args),
        mask=mask,
        target=getattr(args, "target", "face"),
        skeleton_only=getattr(args, "skeleton_only", False),
        watermark=watermark_config(args),
    )


def io_config(args: argparse.Namespace) -> ImageIOConfig:
    """`ImageIOConfig` from parsed options."""
    return ImageIOConfig(max_pixels=args.max_pixels, jpeg_quality=args.jpeg_quality)


def add_cluster_options(parser: argparse.ArgumentParser, *, segments: bool) -> None:
    """``--cluster``, ``--cluster-workers`` (and, for videos, ``--segment-seconds``)."""
    group = parser.add_argument_group("cluster (needs the faceveil[ray] extra)")
    group.add_argument(
        "--cluster",
        metavar="ADDRESS",
        default=None,
        help="run on a Ray cluster: 'auto' (the one started on this machine with `ray start`) "
        "or the head node's HOST:PORT",
    )
    group.add_argument(
        "--cluster-workers",
        type=int,
        default=None,
        metavar="N",
        help="workers started on the cluster, each loading the models once (default: one per CPU)",
    )
    if segments:
        group.add_argument(
            "--segment-seconds",
            type=float,
            default=60.0,
            metavar="S",
            help="videos are cut on keyframes into segments of about S seconds (default: 60)",
        )


def cluster_config(args: argparse.Namespace) -> ClusterConfig | None:
    """`ClusterConfig` from parsed options; None when ``--cluster`` was not given."""
    if getattr(args, "cluster", None) is None:
        return None
    from faceveil.cluster.ray_backend import ClusterConfig

    return ClusterConfig(
        address=args.cluster,
        workers=args.cluster_workers,
        segment_seconds=getattr(args, "segment_seconds", 60.0),
    )


def add_voice_options(parser: argparse.ArgumentParser, *, choice: bool = False) -> None:
    """``--seed``, ``--pitch MIN MAX``, ``--formant MIN MAX``, ``--wobble ST``, ``--tilt DB``,
    ``--keep-spectrum`` (and, with
    ``choice``, ``--voice keep|disguise|drop`` for media with a sound track)."""
    from faceveil.voice.config import VoiceConfig  # imported by the CLI anyway (numpy only)

    default = VoiceConfig()  # the defaults are the library's, not copies of them
    group = parser.add_argument_group("voice disguise")
    if choice:
        group.add_argument(
            "--voice",
            choices=("keep", "disguise", "drop"),
            default=None,
            help="the sound track: keep it as it is (default), disguise the voices in it, or drop it",
        )
    group.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="N",
        help="seed the random transform drawn for each recording (reproducible; never written "
        "into any output); default: a fresh draw every run",
    )
    group.add_argument(
        "--pitch",
        type=float,
        nargs=2,
        default=default.pitch,
        metavar=("MIN", "MAX"),
        help="size of the pitch move in semitones, up or down at random "
        f"(default: {default.pitch[0]:g} {default.pitch[1]:g})",
    )
    group.add_argument(
        "--formant",
        type=float,
        nargs=2,
        default=default.formant,
        metavar=("MIN", "MAX"),
        help="ratio the formants are stretched or squeezed by, in the pitch's direction "
        f"(default: {default.formant[0]:g} {default.formant[1]:g})",
    )
    group.add_argument(
        "--wobble",
        type=float,
        default=default.wobble,
        metavar="ST",
        help="depth in semitones of a slow random movement of the pitch (reshapes the "
        f"intonation; never below a 1-semitone move), 0 for none (default: {default.wobble:g})",
    )
    group.add_argument(
        "--tilt",
        type=float,
        default=default.tilt_db,
        metavar="DB",
        help=f"depth of a random colouring under 1.5 kHz in dB, 0 for none (default: {default.tilt_db:g})",
    )
    group.add_argument(
        "--keep-spectrum",
        action="store_true",
        help="keep the speaker's long-term average spectrum instead of replacing it with a generic "
        "one (a weaker disguise: that spectrum is much of what identifies a voice)",
    )


def voice_config(args: argparse.Namespace) -> VoiceConfig:
    """`VoiceConfig` from parsed options (without the seed: commands draw one transform per file)."""
    from faceveil.voice.config import VoiceConfig

    return VoiceConfig(
        pitch=tuple(args.pitch),
        formant=tuple(args.formant),
        wobble=args.wobble,
        tilt_db=args.tilt,
        normalise=not args.keep_spectrum,
    )


def voice_mode(args: argparse.Namespace) -> str:
    """``keep``, ``disguise`` or ``drop`` from ``--voice`` (and the older ``--audio keep|drop``)."""
    from faceveil.errors import ConfigError

    audio = getattr(args, "audio", "keep")
    voice = getattr(args, "voice", None)
    if voice is None:
        return str(audio)
    if audio == "drop" and voice != "drop":
        raise ConfigError(f"--audio drop and --voice {voice} contradict each other; give one of them")
    return str(voice)


def seeded_outputs(output: VideoOutputConfig, seed: int | None, count: int) -> list[VideoOutputConfig]:
    """``output`` once per video of a run, each with its own draw of the voice disguise (from
    ``--seed``, reproducible, or fresh entropy): `faceveil video` and `faceveil pose` share it."""
    from dataclasses import replace

    return [replace(output, voice=replace(output.voice, seed=one)) for one in voice_seeds(seed, count)]


def sound_output(args: argparse.Namespace, **values: Any) -> VideoOutputConfig:
    """`VideoOutputConfig` with the sound settings of ``--voice`` (and ``--audio``), the rest
    from ``values``."""
    from faceveil.media.video_io import VideoOutputConfig

    return VideoOutputConfig(audio=voice_mode(args), voice=voice_config(args), **values)


def voice_seeds(seed: int | None, count: int) -> list[int]:
    """One independent seed per recording: from ``--seed`` (reproducible) or fresh entropy."""
    import numpy as np

    from faceveil.errors import ConfigError

    if seed is not None and seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed}")
    return [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(count)]
