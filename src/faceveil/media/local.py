"""Opening a user's media file: a local file only, read through an allowed demuxer only.

FFmpeg would otherwise follow a playlist or a reference inside the file to other files or to
the network; ``protocol_whitelist`` keeps it to the file itself and ``format_whitelist`` to the
demuxers faceveil reads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from faceveil.errors import EmptyInputError, InputError, UnsupportedInputError


def av_module() -> Any:
    """PyAV, imported where it is first needed (a heavy import)."""
    import av

    return av


def input_options(demuxers: str) -> dict[str, str]:
    """FFmpeg options that keep an opening to local files and to ``demuxers`` (comma-separated)."""
    return {"protocol_whitelist": "file", "format_whitelist": demuxers}


def open_local(path: str | os.PathLike[str], demuxers: str, kind: str) -> Any:
    """Open ``path`` for reading with `input_options`; a missing, empty or unreadable file is an
    `InputError` naming it (``kind``: what it should be, "an audio file", "a video")."""
    av = av_module()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file not found: {path}")
    if path.stat().st_size == 0:
        raise EmptyInputError(f"{path} is empty")
    try:
        return av.open(str(path), mode="r", options=input_options(demuxers))
    except av.error.InvalidDataError as exc:
        raise UnsupportedInputError(f"{path} is not {kind} faceveil can read: {exc}") from None
    except av.error.FFmpegError as exc:
        raise UnsupportedInputError(f"{path} cannot be opened as {kind}: {exc}") from None
