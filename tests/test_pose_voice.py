"""`faceveil pose VIDEO --voice keep|disguise|drop`: the sound handled as by `faceveil video`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceveil.cli import exit_codes
from test_cli import run_cli
from test_video import read_video
from test_video_voice import checked_disguise, decoded_sound, fake, make_clip  # noqa: F401 - fake: a fixture


@pytest.mark.usefixtures("fake")
def test_pose_disguise_keeps_frames_duration_and_sync_and_moves_the_pitch(tmp_path: Path) -> None:
    source = tmp_path / "in.mp4"
    make_clip(source)
    target = tmp_path / "out.mp4"
    argv = ["pose", str(source), "-o", str(target), "-q", "--voice", "disguise", "--pitch", "4", "6"]
    assert run_cli([*argv, "--seed", "3"]) == exit_codes.OK
    # in sync: the burst's onset within two of the 5 ms windows `onset` measures in
    moved = checked_disguise(source, target, sync=0.0101)
    assert abs(moved) >= 3.0, moved  # --pitch 4 6


@pytest.mark.usefixtures("fake")
def test_pose_keep_copies_the_sound_and_drop_removes_it(tmp_path: Path) -> None:
    source = tmp_path / "in.mp4"
    make_clip(source)
    kept, dropped = tmp_path / "kept.mp4", tmp_path / "dropped.mp4"
    assert run_cli(["pose", str(source), "-o", str(kept), "-q"]) == exit_codes.OK  # keep: the default
    assert run_cli(["pose", str(source), "-o", str(dropped), "-q", "--voice", "drop"]) == exit_codes.OK
    np.testing.assert_array_equal(decoded_sound(kept)[0], decoded_sound(source)[0])  # packet for packet
    assert read_video(dropped).stream_types == ["video"]
    assert (
        run_cli(["pose", str(source), "-o", str(tmp_path / "x.mp4"), "--voice", "whisper"])
        == exit_codes.USAGE
    )
