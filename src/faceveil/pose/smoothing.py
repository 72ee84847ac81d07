"""Smoothing landmarks across video frames: people keep an id, each point a One-Euro filter.

The filter (Casiez et al. 2012) follows MediaPipe's own landmark smoothing: the speed that opens
the filter is measured in units of the person's size, so a near and a far person are smoothed
alike; slow movements are steadied, fast ones followed with little lag.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from faceveil.errors import ConfigError
from faceveil.pose.landmarks import PersonPose
from faceveil.pose.people import same_person

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SmoothingConfig:
    """One-Euro filter settings and how long a lost person is kept.

    MediaPipe's pose smoothing uses ``beta`` 80; 10 steadies a still person's joints about
    twice as much (a 2-px jitter halved) while a limb moving two body sizes a second still
    opens the filter to ~20 Hz.

    Attributes:
        min_cutoff: cutoff frequency (Hz) at rest: lower is steadier.
        beta: how fast the cutoff rises with speed (speed in person sizes per second).
        derivative_cutoff: cutoff frequency (Hz) of the speed estimate.
        visibility_alpha: weight of the new visibility in its exponential average.
        max_missed: frames a person may be unseen and still keep their id and filter.
    """

    min_cutoff: float = 0.05
    beta: float = 10.0
    derivative_cutoff: float = 1.0
    visibility_alpha: float = 0.5
    max_missed: int = 5

    def __post_init__(self) -> None:
        if self.min_cutoff <= 0 or self.derivative_cutoff <= 0 or self.beta < 0:
            raise ConfigError("min_cutoff and derivative_cutoff must be > 0, beta >= 0")
        if not 0.0 < self.visibility_alpha <= 1.0:
            raise ConfigError(f"visibility_alpha must lie in (0, 1], got {self.visibility_alpha}")
        if not 0 <= self.max_missed <= 1000:
            raise ConfigError(f"max_missed must lie in [0, 1000], got {self.max_missed}")


def _alpha(cutoff: FloatArray | float, dt: float) -> FloatArray:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float32))
    return np.asarray(1.0 / (1.0 + tau / dt), np.float32)


class _Track:
    def __init__(self, track_id: int, person: PersonPose, t: float) -> None:
        self.id = track_id
        self.points = person.points.copy()
        self.speed = np.zeros_like(self.points)
        self.visibility = person.visibility.copy()
        self.t = t
        self.missed = 0
        self.last = person

    def update(self, person: PersonPose, t: float, config: SmoothingConfig) -> PersonPose:
        dt = max(t - self.t, 1e-3)
        x1, y1, x2, y2 = person.box()
        scale = max(x2 - x1, y2 - y1, 1.0)
        raw_speed = (person.points - self.points) / np.float32(scale * dt)
        a_d = _alpha(config.derivative_cutoff, dt)
        self.speed = a_d * raw_speed + (1 - a_d) * self.speed
        a = _alpha(config.min_cutoff + config.beta * np.abs(self.speed), dt)
        self.points = (a * person.points + (1 - a) * self.points).astype(np.float32)
        v = np.float32(config.visibility_alpha)
        self.visibility = (v * person.visibility + (1 - v) * self.visibility).astype(np.float32)
        self.t, self.missed = t, 0
        self.last = PersonPose(self.points.copy(), self.visibility.copy(), person.face, self.id)
        return self.last


class PoseSmoother:
    """Gives each person an id across frames and smooths their landmarks (one per video)."""

    def __init__(self, config: SmoothingConfig | None = None) -> None:
        self.config = config or SmoothingConfig()
        self._tracks: list[_Track] = []
        self._next = 0

    def update(self, people: Sequence[PersonPose], t: float) -> list[PersonPose]:
        """The people of the frame at time ``t`` (seconds), smoothed and with ``track`` set."""
        free = list(self._tracks)
        out: list[PersonPose] = []
        for person in people:
            match = next((tr for tr in free if same_person(person, tr.last)), None)
            if match is None:
                track = _Track(self._next, person, t)
                self._next += 1
                self._tracks.append(track)
                out.append(person.with_track(track.id))
                continue
            free.remove(match)
            out.append(match.update(person, t, self.config))
        for track in free:
            track.missed += 1
        self._tracks = [tr for tr in self._tracks if tr.missed <= self.config.max_missed]
        return out

    def recent(self) -> list[PersonPose]:
        """The last pose of every person still followed (the crops to look at next frame)."""
        return [tr.last for tr in self._tracks]
