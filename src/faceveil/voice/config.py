"""Settings of the voice disguise, and the random draw of one recording's transform."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from faceveil.errors import ConfigError

#: Shortest and longest analysis frame; the block filter's latency is one frame.
FRAME_MS_RANGE = (16.0, 60.0)
#: Pitch and formant moves beyond these ranges leave speech unintelligible.
MAX_SEMITONES = 12.0
MAX_FORMANT_RATIO = 1.5


@dataclass(frozen=True)
class VoiceConfig:
    """How voices are disguised. Each recording gets its own transform, drawn from these ranges.

    Attributes:
        pitch: ``(min, max)`` size of the pitch move in semitones; each recording moves its pitch
            up or down (at random) by an amount drawn in this range.
        formant: ``(min, max)`` ratio by which the spectral envelope (the formants, set by the
            vocal tract) is stretched or compressed, direction at random, e.g. ``(1.04, 1.10)``.
        tilt_db: largest random tilt and colouring of the spectrum in dB (0: none); a random
            smooth equaliser that moves what a speaker encoder hears and speech recognition,
            which normalises the channel, hardly notices.
        frame_ms: analysis frame length; it is also the latency of the live block filter.
        seed: seed of the random draw (None: a fresh draw from the operating system's entropy).
            It is never written into any output.

    A setting whose draws could leave the voice as it is (no pitch move and no formant move)
    is refused with `ConfigError`.
    """

    pitch: tuple[float, float] = (3.0, 6.0)
    formant: tuple[float, float] = (1.04, 1.10)
    tilt_db: float = 9.0
    frame_ms: float = 40.0
    seed: int | None = field(default=None, repr=False, metadata={"secret": True})

    def __post_init__(self) -> None:
        lo, hi = self.pitch
        if not 0.0 <= lo <= hi <= MAX_SEMITONES:
            raise ConfigError(
                f"pitch range must satisfy 0 <= min <= max <= {MAX_SEMITONES}, got {self.pitch}"
            )
        flo, fhi = self.formant
        if not 1.0 <= flo <= fhi <= MAX_FORMANT_RATIO:
            raise ConfigError(
                f"formant range must satisfy 1 <= min <= max <= {MAX_FORMANT_RATIO}, got {self.formant}"
            )
        if lo == 0.0 and flo == 1.0:
            raise ConfigError(
                "this setting can leave the voice as it is: give a pitch move (pitch min > 0 "
                "semitones) or a formant move (formant min > 1), or both"
            )
        if not 0.0 <= self.tilt_db <= 12.0:
            raise ConfigError(f"tilt_db must lie in [0, 12], got {self.tilt_db}")
        if not FRAME_MS_RANGE[0] <= self.frame_ms <= FRAME_MS_RANGE[1]:
            raise ConfigError(f"frame_ms must lie in [{FRAME_MS_RANGE[0]:g}, {FRAME_MS_RANGE[1]:g}]")
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed}")


#: Number of random cosine components of the equaliser.
EQ_TERMS = 3


@dataclass(frozen=True)
class DisguiseParams:
    """One recording's transform (drawn by :func:`draw_params`; never written into an output).

    Attributes:
        pitch_ratio: factor on the fundamental frequency (2 ** (semitones / 12)).
        formant_ratio: factor on the formant frequencies.
        eq: ``EQ_TERMS`` (amplitude dB, phase) pairs of the random equaliser on a warped axis.
    """

    pitch_ratio: float
    formant_ratio: float
    eq: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if not (0.4 < self.pitch_ratio < 2.5 and 0.5 < self.formant_ratio < 2.0):
            raise ConfigError(
                f"pitch_ratio must lie in (0.4, 2.5) and formant_ratio in (0.5, 2), "
                f"got {self.pitch_ratio}, {self.formant_ratio}"
            )
        if math.isclose(self.pitch_ratio, 1.0) and math.isclose(self.formant_ratio, 1.0):
            raise ConfigError("pitch_ratio 1 with formant_ratio 1 leaves the voice as it is")


def draw_params(config: VoiceConfig, rng: np.random.Generator | None = None) -> DisguiseParams:
    """Draw one recording's transform from ``config``'s ranges (with ``config.seed`` unless
    ``rng`` is given)."""
    rng = rng if rng is not None else np.random.default_rng(config.seed)
    semitones = rng.uniform(*config.pitch) * rng.choice((-1.0, 1.0))
    log_formant = rng.uniform(math.log(config.formant[0]), math.log(config.formant[1]))
    formant = math.exp(log_formant * rng.choice((-1.0, 1.0)))
    eq = tuple(
        (float(rng.uniform(-1.0, 1.0) * config.tilt_db / EQ_TERMS), float(rng.uniform(0.0, 2 * math.pi)))
        for _ in range(EQ_TERMS)
    )
    return DisguiseParams(pitch_ratio=float(2.0 ** (semitones / 12.0)), formant_ratio=formant, eq=eq)
