"""Helpers of the live tests with sound: an FFmpeg publisher that flashes and beeps together, and
the A/V offset measured in a recording.

The publisher draws a white square in the top-left corner for the first 0.1 s of every second
and beeps (1 kHz) over exactly that time. In a recording, each beep's start minus its flash's
start is the audio/video offset at that second; their spread over the run is the drift.
"""

from __future__ import annotations

import shutil
import subprocess
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

RATE = 48_000
_BEEP = "if(lt(mod(t\\,1)\\,0.1)\\,0.5*sin(2*PI*1000*t)\\,0)"
#: A vowel-like harmonic tone (140 Hz and five overtones) over the first 0.4 s of every second,
#: for the voice disguise: its pitch can be measured (see voice_support.f0_track), and its start
#: marks the A/V offset as the beep's does.
VOWEL_F0 = 140.0
_OVERTONES = (1, 0.7, 0.5, 0.35, 0.25, 0.15)
_HARMONICS = "+".join(f"{a}*sin(2*PI*{k * VOWEL_F0:g}*t)" for k, a in enumerate(_OVERTONES, 1))
VOWEL = f"if(lt(mod(t\\,1)\\,0.4)\\,0.16*({_HARMONICS})\\,0)"
_FLASH_S = 0.1  # how long each flash lasts, the drawbox's enable below
_FLASH = "drawbox=x=0:y=0:w=32:h=32:color=white:t=fill:enable='lt(mod(t\\,1)\\,0.1)'"


def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.fail("these tests need FFmpeg's command-line program (Debian package ffmpeg)", pytrace=False)
    return path


def publish(
    procs: list[subprocess.Popen[bytes]],
    url: str,
    *,
    video: Path | None = None,
    seconds: float = 10.0,
    loops: int = 0,
    lead: float = 1.0,
    fmt: str = "flv",
    sound: str = _BEEP,
) -> subprocess.Popen[bytes]:
    """FFmpeg serving ``url`` (listen mode) at the real pace: ``video`` (looped ``loops`` more
    times) or a 320x240 25 fps test picture for ``seconds``, after ``lead`` s of black, with the
    flash and the beeps (or ``sound``, an aevalsrc expression such as `VOWEL`) on the same clock."""
    command = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-re"]
    if video is None:
        command += ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}"]
    else:
        command += ["-stream_loop", str(loops), "-i", str(video)]
    command += ["-re", "-f", "lavfi", "-i", f"aevalsrc='{sound}|{sound}':s={RATE}"]
    chain = f"[0:v]tpad=start_duration={lead}:color=black,{_FLASH}[v]"
    command += ["-filter_complex", chain, "-map", "[v]", "-map", "1:a", "-shortest"]
    command += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15", "-crf", "12"]
    command += ["-pix_fmt", "yuv420p", "-c:a", "aac", "-f", fmt, "-listen", "1", url]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    procs.append(proc)
    return proc


def receive(procs: list[subprocess.Popen[bytes]], url: str, target: Path) -> subprocess.Popen[bytes]:
    """FFmpeg as an RTMP server taking a push on ``url`` and keeping it in ``target`` as it came."""
    command = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-listen", "1", "-i", url, "-c", "copy"]
    proc = subprocess.Popen([*command, "-y", str(target)], stdin=subprocess.DEVNULL)
    procs.append(proc)
    return proc


def _time(frame: av.VideoFrame | av.AudioFrame) -> float:
    assert frame.pts is not None and frame.time_base is not None
    return float(frame.pts * frame.time_base)


def read(path: Path) -> tuple[list[float], list[bool], npt.NDArray[np.float32], float]:
    """Frame times, whether each frame flashes, the sound (mono) and when the sound starts."""
    times: list[float] = []
    lit: list[bool] = []
    chunks: list[npt.NDArray[np.float32]] = []
    start = None
    with av.open(str(path)) as container:
        assert container.streams.audio, f"{path.name} has no sound"
        assert container.streams.audio[0].codec_context.name == "aac"
        for packet in container.demux():
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    rgb = frame.to_ndarray(format="rgb24")
                    times.append(_time(frame))
                    lit.append(bool(rgb[4:20, 4:20].mean() > 160))
                elif isinstance(frame, av.AudioFrame):
                    if start is None:
                        start = _time(frame)
                    resampled = frame.to_ndarray().astype(np.float32)
                    chunks.append(resampled.mean(axis=0) if resampled.shape[0] > 1 else resampled[0])
    assert start is not None and times
    return times, lit, np.concatenate(chunks), start


def sync(path: Path, rate: float) -> tuple[list[tuple[float, float]], float, float]:
    """``(time, offset)`` at every flash whose first frame is in the recording (the frame before
    it is one period earlier), the sound's length and the pictures' length (seconds)."""
    times, lit, sound, start = read(path)
    sample_rate = RATE
    with av.open(str(path)) as container:
        sample_rate = container.streams.audio[0].codec_context.sample_rate or RATE
    flashes = _flash_starts(times, lit, 1.0 / rate)
    loud = np.flatnonzero(np.abs(sound) > 0.1)
    assert len(loud), f"{path.name}: no beep in the sound"
    firsts = [loud[0]] + [b for a, b in pairwise(loud) if b - a > sample_rate // 2]
    beeps = [start + i / sample_rate for i in firsts]
    pairs = [(f, min(beeps, key=lambda b, f=f: abs(b - f)) - f) for f in flashes]  # type: ignore[misc]
    return pairs, len(sound) / sample_rate, times[-1] - times[0] + 1.0 / rate


def _flash_starts(times: list[float], lit: list[bool], period: float) -> list[float]:
    """The times of the frames that certainly start a flash: a lit frame whose predecessor is dark
    and one period earlier, or (after frames a busy live engine dropped) the first of a run of lit
    frames, one period apart, too long to have had a lit frame before it (the flash lasts 0.1 s)."""

    def next_to(i: int) -> bool:
        return abs(times[i] - times[i - 1] - period) < 0.25 * period

    starts = []
    for i in range(1, len(times)):
        if not lit[i] or lit[i - 1]:
            continue
        run = 1
        while i + run < len(times) and lit[i + run] and next_to(i + run):
            run += 1
        if next_to(i) or run * period >= _FLASH_S - 1e-6:
            starts.append(times[i])
    return starts
