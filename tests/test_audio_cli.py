"""`faceveil audio` and the audio file layer: formats by content, folders, errors, no metadata."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from faceveil.cli import exit_codes
from faceveil.errors import CorruptInputError, OutputError, UnsupportedInputError
from faceveil.media.audio_io import EXTENSION_FORMATS, AudioWriter, read_audio
from faceveil.pipeline.audio import disguise_audio_file
from faceveil.voice import VoiceConfig
from test_cli import run_cli
from voice_support import f0_autocorrelation, rms_db, vowel

Samples = npt.NDArray[np.float32]


def make_audio(
    path: Path, rate: int = 44100, channels: int = 2, seconds: float = 1.2, tags: bool = True
) -> Samples:
    """Write a vowel-like test signal at ``path`` (format from the extension, with tags); returns
    the samples written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = EXTENSION_FORMATS[path.suffix.lower()]
    rate = fmt.rate or rate
    mono = vowel(rate, seconds)
    x = np.stack([mono * np.float32(1.0 - 0.3 * c) for c in range(channels)], axis=1).astype(np.float32)
    writer = AudioWriter(path, fmt, rate, "stereo" if channels == 2 else "mono")
    if tags:
        writer.container.metadata["title"] = "patient interview"
        writer.container.metadata["artist"] = "Dr. Secret"
    writer.write(x)
    writer.close()
    return np.asarray(x, dtype=np.float32)


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if "faceveil-tmp" in p.name]


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus"])
def test_every_format_kept_with_duration_and_channels(tmp_path: Path, suffix: str) -> None:
    source = tmp_path / f"in{suffix}"
    make_audio(source)
    before = read_audio(source)
    target = tmp_path / "out" / f"in{suffix}"
    assert run_cli(["audio", str(source), "-o", str(target), "--seed", "1", "-q"]) == exit_codes.OK
    after = read_audio(target)
    assert after.info.demuxer == before.info.demuxer  # same format, by content
    assert after.info.codec == before.info.codec
    assert after.rate == before.rate and after.samples.shape[1] == before.samples.shape[1] == 2
    # exact for PCM and FLAC; lossy codecs: the decoder's own gapless trimming, within one frame
    slack = 0 if suffix in (".wav", ".flac") else 1152
    assert abs(after.samples.shape[0] - before.samples.shape[0]) <= slack
    assert abs(rms_db(after.samples) - rms_db(before.samples)) < 1.0
    with av.open(str(target)) as container:
        assert not {k.lower() for k in container.metadata} & {"title", "artist"}
        assert not {k.lower() for k in container.streams.audio[0].metadata} & {"title", "artist"}
    assert no_temp_files(tmp_path)


def test_voice_is_moved_in_the_file(tmp_path: Path) -> None:
    source = tmp_path / "v.wav"
    make_audio(source, rate=16000, channels=1, tags=False)
    target = tmp_path / "o.wav"
    report = disguise_audio_file(source, target, VoiceConfig(seed=2))
    assert report.channels == 1 and report.rate == 16000
    x, y = read_audio(source).samples[:, 0], read_audio(target).samples[:, 0]
    assert x.shape == y.shape
    ratio = f0_autocorrelation(y, 16000) / f0_autocorrelation(x, 16000)
    assert abs(12 * np.log2(ratio)) > 1.0  # the default never moves it by less than 1 semitone


def test_folder_mirrored_with_names_and_formats(tmp_path: Path) -> None:
    src = tmp_path / "in"
    make_audio(src / "a.wav", channels=1)
    make_audio(src / "sub" / "b.mp3")
    make_audio(src / "sub" / "c.flac")
    (src / "notes.txt").write_text("not audio", encoding="utf-8")
    out = tmp_path / "out"
    assert run_cli(["audio", str(src), "-o", str(out), "-q"]) == exit_codes.OK
    found = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert found == ["a.wav", "sub/b.mp3", "sub/c.flac"]
    assert read_audio(out / "sub" / "b.mp3").info.demuxer == "mp3"


def test_format_by_content_not_name(tmp_path: Path) -> None:
    flac = tmp_path / "real.flac"
    make_audio(flac, channels=1)
    disguised = tmp_path / "named.wav"  # FLAC inside, named .wav
    disguised.write_bytes(flac.read_bytes())
    out = tmp_path / "out"
    assert run_cli(["audio", str(disguised), "-o", str(out), "-q"]) == exit_codes.OK
    assert read_audio(out / "named.wav").info.demuxer == "flac"
    renamed = tmp_path / "renamed.mp3"  # one output named for another format: that format
    assert run_cli(["audio", str(disguised), "-o", str(renamed), "-q"]) == exit_codes.OK
    assert read_audio(renamed).info.demuxer == "mp3"


def test_bad_input_clear_error_and_no_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00this is not audio at all" * 20)
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    code = run_cli(["audio", str(bad), str(empty), "-o", str(out), "-q"])
    assert code == exit_codes.INPUT_FAILED
    err = capsys.readouterr().err
    assert "bad.wav" in err and "empty.mp3" in err and "empty" in err
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))
    with pytest.raises(UnsupportedInputError):
        disguise_audio_file(bad, tmp_path / "x.wav")
    assert not (tmp_path / "x.wav").exists() and no_temp_files(tmp_path)


def test_truncated_input_gives_no_output(tmp_path: Path) -> None:
    source = tmp_path / "cut.m4a"
    make_audio(source)
    data = source.read_bytes()
    source.write_bytes(data[: len(data) // 2])  # the index is at the end: nothing decodable
    target = tmp_path / "o.m4a"
    with pytest.raises((CorruptInputError, UnsupportedInputError)):
        disguise_audio_file(source, target)
    assert not target.exists() and no_temp_files(tmp_path)


def test_video_file_refused(tmp_path: Path) -> None:
    from test_video import make_video

    video = make_video(tmp_path / "v.mp4", frames=5)
    with pytest.raises(UnsupportedInputError, match="faceveil video"):
        disguise_audio_file(video, tmp_path / "o.m4a")


def test_output_never_overwrites_input(tmp_path: Path) -> None:
    source = tmp_path / "a.wav"
    make_audio(source)
    with pytest.raises(OutputError):
        disguise_audio_file(source, source)


def test_identity_settings_refused_on_the_command_line(tmp_path: Path) -> None:
    source = tmp_path / "a.wav"
    make_audio(source)
    argv = ["audio", str(source), "-o", str(tmp_path / "o.wav"), "--pitch", "0", "0", "--formant", "1", "1"]
    assert run_cli(argv) == exit_codes.USAGE
    assert not (tmp_path / "o.wav").exists()


def test_seeded_runs_reproducible_and_files_drawn_independently(tmp_path: Path) -> None:
    src = tmp_path / "in"
    make_audio(src / "a.wav", channels=1, tags=False)
    make_audio(src / "b.wav", channels=1, tags=False)
    for name in ("o1", "o2"):
        assert run_cli(["audio", str(src), "-o", str(tmp_path / name), "--seed", "5", "-q"]) == 0
    assert (tmp_path / "o1" / "a.wav").read_bytes() == (tmp_path / "o2" / "a.wav").read_bytes()
    a = read_audio(tmp_path / "o1" / "a.wav").samples
    b = read_audio(tmp_path / "o1" / "b.wav").samples
    assert not np.allclose(a, b, atol=1e-3)  # same input, its own draw per file
    assert b"5" not in (tmp_path / "o1" / "a.wav").read_bytes()[:44]  # nothing in the header
