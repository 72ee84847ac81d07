"""One stage graph for every video file job: decode -> per-frame step -> encode.

Face video, pose video, renders from a regions file and cluster segments all run this graph;
only the per-frame step differs (a :class:`FrameStep`). Three stages run at once, joined by
bounded queues, so memory stays bounded on hour-long inputs: the reader decodes (FFmpeg's own
threads), the caller's thread runs the step, the writer encodes. Audio packets travel through
the queues in file order. An exception in any stage stops the others and is raised in the
caller; the ``stop`` event (Ctrl-C, a cancelled job) stops them cleanly.

:func:`render_file` adds the file handling every job shares: the output and its side files
(the regions or landmarks JSON lines, a manifest) are written under hidden temporary names and
renamed together only when everything succeeded, so a failed or cancelled job leaves nothing.
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import numpy.typing as npt

from faceveil.core.frame import Frame, FrameTime
from faceveil.errors import JobCancelledError, OutputError
from faceveil.media.video_io import (
    AudioPacket,
    DecodedFrame,
    VideoInfo,
    VideoOutputConfig,
    VideoSink,
    check_encryptable,
    open_input,
    output_format,
    probe,
    read_media,
)

#: ``progress(frames_done, frames_total_or_None)``, called from the writer thread.
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, eq=False)
class Rendered:
    """One frame ready to encode.

    Attributes:
        frame: the decoded frame, or only its place in time (its timestamp is the output's).
        image: the pixels to encode: ``(H, W, 3)`` RGB, or an I420 array ``(3H/2, W)`` (a frame
            hidden in its decoder's planes, see :meth:`Anonymizer.hide_i420`).
        record: one JSON line for the job's side file (regions, landmarks), or None.
    """

    frame: Frame | FrameTime
    image: npt.NDArray[np.uint8]
    record: dict[str, Any] | None = None


class FrameStep(Protocol):
    """The pluggable per-frame work of a video job.

    ``push`` takes decoded frames in order and returns the frames that are ready, in order (a
    step may hold frames back, for example to fill a track backwards); ``flush`` returns the
    rest at the end. A frame the step leaves out is simply never returned.
    """

    def push(self, item: DecodedFrame) -> Iterable[Rendered]:
        """Take the next decoded frame; return the frames that are now ready."""
        ...

    def flush(self) -> Iterable[Rendered]:
        """Return every frame still held, at the end of the input."""
        ...


@dataclass
class GraphCounts:
    """What a run of the graph counted."""

    frames_in: int = 0
    frames: int = 0
    wall_s: float = 0.0
    info: VideoInfo | None = None


_DONE = object()


class _StopError(Exception):
    """Raised inside a stage when another stage failed or the job was cancelled."""


class _Stage(threading.Thread):
    """A worker thread that records its exception instead of printing it."""

    def __init__(self, name: str, target: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self._stop_all = stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except _StopError:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, re-raised there
            self.error = exc
            self._stop_all.set()


def _put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _StopError
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    while True:
        if stop.is_set():
            raise _StopError
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue


def run_graph(
    container: Any,
    info: VideoInfo,
    sink: VideoSink,
    step: FrameStep,
    *,
    audio: bool,
    side: IO[str] | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    queue_size: int = 4,
    counts: GraphCounts | None = None,
    items: Iterable[DecodedFrame | AudioPacket] | None = None,
) -> GraphCounts:
    """Decode ``container``, run ``step`` on every frame, encode into ``sink``.

    ``items`` replaces the decoding of the whole container (a cluster segment decodes only its
    own frames). Raises the first stage's error, or :class:`JobCancelledError` when ``stop`` was set.
    """
    stop = stop or threading.Event()
    counts = counts or GraphCounts(info=info)
    decoded: queue.Queue[Any] = queue.Queue(queue_size)
    encoded: queue.Queue[Any] = queue.Queue(queue_size)

    def read() -> None:
        for item in read_media(container, info, audio) if items is None else items:
            _put(decoded, item, stop)
        _put(decoded, _DONE, stop)

    def write() -> None:
        while (item := _get(encoded, stop)) is not _DONE:
            if isinstance(item, AudioPacket):
                sink.write_audio(item.packet)
                continue
            sink.write(item.frame, item.image)
            counts.frames += 1
            if progress is not None:
                progress(counts.frames, info.frames)

    def forward(ready: Iterable[Rendered]) -> None:
        for rendered in ready:
            if side is not None and rendered.record is not None:
                side.write(json.dumps(rendered.record) + "\n")
            _put(encoded, rendered, stop)

    def process() -> None:
        while (item := _get(decoded, stop)) is not _DONE:
            if isinstance(item, AudioPacket):
                _put(encoded, item, stop)
                continue
            counts.frames_in += 1
            forward(step.push(item))
        forward(step.flush())
        _put(encoded, _DONE, stop)

    reader = _Stage("faceveil-decode", read, stop)
    writer = _Stage("faceveil-encode", write, stop)
    reader.start()
    writer.start()
    try:
        process()
    except _StopError:
        pass  # a worker failed or the job was cancelled: its reason is raised below
    except BaseException:
        stop.set()
        raise
    finally:
        writer.join()
        if writer.error is not None or stop.is_set():
            stop.set()
        reader.join()
    for stage in (reader, writer):
        if stage.error is not None:
            raise stage.error
    if stop.is_set():
        raise JobCancelledError("the video job was cancelled; nothing was written")
    return counts


#: ``finish(written, side)``: called after encoding with the output's and the side file's
#: temporary names; returns further files to write with the output, ``{final path: text}``.
Finish = Callable[[Path, Path | None], dict[Path, str]]


def render_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    output: VideoOutputConfig,
    step: FrameStep,
    *,
    side_path: str | os.PathLike[str] | None = None,
    side: IO[str] | None = None,
    extra: Iterable[str | os.PathLike[str]] = (),
    finish: Finish | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    queue_size: int = 4,
    counts: GraphCounts | None = None,
) -> GraphCounts:
    """Run ``step`` over the video ``source`` into ``target``, all or nothing.

    Args:
        source, target: the input and the output file (its extension picks the container).
        output: encoder and audio settings.
        step: the per-frame work.
        side_path: a JSON-lines file that receives each frame's ``record`` (written with the
            output, atomically); or ``side``, an open stream the caller owns.
        extra: further files ``finish`` will produce (checked to differ from the others).
        finish: see :data:`Finish` (a manifest is written this way).
        stop, progress, queue_size, counts: as for :func:`run_graph`.
    """
    frames_from_mmap()
    source, target = Path(source), Path(target)
    fmt = output_format(target)
    if output.encryption is not None:
        check_encryptable(target)
    if target.resolve() == source.resolve():  # also when target does not exist yet
        raise OutputError(f"refusing to overwrite the input {source}")
    others = [Path(p) for p in (side_path, *extra) if p is not None]
    if len({p.resolve() for p in (source, target, *others)}) != 2 + len(others):
        raise OutputError("the output, the regions file and the manifest must be different files")
    container = open_input(source)
    temps: dict[Path, Path] = {}  # final path -> temporary path
    try:
        info = probe(container)
        counts = counts or GraphCounts()
        counts.info = info
        audio_in = container.streams.audio[0] if container.streams.audio else None
        if output.audio == "drop":
            audio_in = None
        tmp = temps[target] = temp_output_path(target)
        sink = VideoSink(tmp, fmt, info, audio_in, output)
        side_tmp = None
        if side_path is not None:
            side_tmp = temps[Path(side_path)] = temp_output_path(Path(side_path))
            side = open(side_tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        start = time.perf_counter()
        try:
            run_graph(
                container,
                info,
                sink,
                step,
                audio=audio_in is not None,
                side=side,
                stop=stop,
                progress=progress,
                queue_size=queue_size,
                counts=counts,
            )
        except BaseException:
            sink.abort()
            raise
        finally:
            if side_path is not None and side is not None:
                side.close()
        sink.close()
        counts.wall_s = time.perf_counter() - start
        if finish is not None:
            for final, text in finish(tmp, side_tmp).items():
                temps[final] = temp_output_path(final)
                temps[final].write_text(text, encoding="utf-8")
        for final, temp in temps.items():
            temp.replace(final)
        return counts
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc}") from exc
    finally:
        container.close()
        for path in temps.values():
            with suppress(FileNotFoundError):
                path.unlink()


_M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameter
_frames_from_mmap = False


def frames_from_mmap() -> None:
    """Have glibc serve allocations of 1 MB and more (frames) from ``mmap``, once per process.

    By default glibc raises that threshold as big buffers are freed and then keeps freed frames
    in its heap; a video job's peak memory was about 25 MB higher for it. Elsewhere a no-op.
    """
    global _frames_from_mmap
    if _frames_from_mmap or not sys.platform.startswith("linux"):
        return
    _frames_from_mmap = True
    with suppress(OSError, AttributeError):  # not glibc (musl): keep its own policy
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 1 << 20)


def temp_output_path(target: Path) -> Path:
    """A hidden temporary name beside ``target`` (its folder is made); renamed to it at the end."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(
        f".{target.stem}.faceveil-tmp-{os.getpid()}-{threading.get_ident()}{target.suffix}"
    )
