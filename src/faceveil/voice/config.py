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
#: Largest depth of the slow pitch movement, in semitones.
MAX_WOBBLE = 6.0
#: The slow pitch movement never brings the move under this many semitones (nor reverses it).
MIN_MOVE_SEMITONES = 1.0
#: Frequencies (Hz) of the slow pitch movement's components: the pace of intonation.
WOBBLE_HZ = (0.3, 2.0)
#: Largest depth of the random colouring, in dB.
MAX_TILT_DB = 40.0


@dataclass(frozen=True)
class VoiceConfig:
    """How voices are disguised. Each recording gets its own transform, drawn from these ranges.

    Attributes:
        pitch: ``(min, max)`` size of the pitch move in semitones; each recording moves its pitch
            up or down (at random) by an amount drawn in this range.
        formant: ``(min, max)`` ratio by which the spectral envelope (the formants, set by the
            vocal tract) is stretched or compressed, in the pitch's direction (as between a
            lower and a higher voice), e.g. ``(1.02, 1.05)``.
        wobble: depth in semitones of a slow random movement of the pitch around its move (a
            sum of three slow sinusoids, 0.3-2 Hz, drawn per recording; 0: none): it reshapes
            the speaker's intonation. It never brings the move under
            ``MIN_MOVE_SEMITONES`` nor reverses it.
        tilt_db: depth in dB of a random colouring of the spectrum under 1.5 kHz, where the
            pitch's first harmonics and the first formant lie (0: none): what a speaker encoder
            weighs most, and what speech recognition, which normalises the channel, needs least.
        normalise: divide out the speaker's long-term average spectrum and put a generic
            speech slope in its place, before the rest of the disguise (see
            :mod:`faceveil.voice.spectrum`): measured over the whole recording for files and
            sound tracks, as the sound comes for live streams.
        frame_ms: analysis frame length; it is also the latency of the live block filter.
        seed: seed of the random draw (None: a fresh draw from the operating system's entropy).
            It is never written into any output.

    A setting whose draws could leave the voice as it is (no pitch move and no formant move)
    is refused with `ConfigError`.
    """

    pitch: tuple[float, float] = (1.0, 2.0)
    formant: tuple[float, float] = (1.02, 1.05)
    wobble: float = 1.0
    tilt_db: float = 35.0
    normalise: bool = True
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
        if not 0.0 <= self.wobble <= MAX_WOBBLE:
            raise ConfigError(f"wobble must lie in [0, {MAX_WOBBLE:g}] semitones, got {self.wobble}")
        if not 0.0 <= self.tilt_db <= MAX_TILT_DB:
            raise ConfigError(f"tilt_db must lie in [0, {MAX_TILT_DB:g}], got {self.tilt_db}")
        if not FRAME_MS_RANGE[0] <= self.frame_ms <= FRAME_MS_RANGE[1]:
            raise ConfigError(f"frame_ms must lie in [{FRAME_MS_RANGE[0]:g}, {FRAME_MS_RANGE[1]:g}]")
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed}")


#: Number of random cosine components of the equaliser.
EQ_TERMS = 4
#: The equaliser's log-frequency axis runs from 50 Hz to this; it fades out by 1.5 times it.
EQ_TOP_HZ = 1000.0
#: Number of sinusoids of the slow pitch movement.
WOBBLE_TERMS = 3


@dataclass(frozen=True)
class DisguiseParams:
    """One recording's transform (drawn by :func:`draw_params`; never written into an output).

    Attributes:
        pitch_ratio: factor on the fundamental frequency (2 ** (semitones / 12)).
        formant_ratio: factor on the formant frequencies.
        eq: ``EQ_TERMS`` (amplitude dB, phase) pairs of the random equaliser (a log-frequency
            axis from 50 Hz to ``EQ_TOP_HZ``, faded out by 1.5 times that).
        wobble: (amplitude semitones, frequency Hz, phase) of each sinusoid of the slow pitch
            movement; the move at time t is ``12 log2(pitch_ratio) + sum a sin(2 pi f t + p)``,
            kept at least ``MIN_MOVE_SEMITONES`` in the move's direction.
    """

    pitch_ratio: float
    formant_ratio: float
    eq: tuple[tuple[float, float], ...] = ()
    wobble: tuple[tuple[float, float, float], ...] = ()

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
    direction = float(rng.choice((-1.0, 1.0)))
    semitones = rng.uniform(*config.pitch) * direction
    log_formant = rng.uniform(math.log(config.formant[0]), math.log(config.formant[1]))
    formant = math.exp(log_formant * direction)
    eq = tuple(
        (
            float(rng.uniform(-1.0, 1.0) * config.tilt_db / math.sqrt(EQ_TERMS)),
            float(rng.uniform(0.0, 2 * math.pi)),
        )
        for _ in range(EQ_TERMS)
    )
    wobble: tuple[tuple[float, float, float], ...] = ()
    if config.wobble > 0.0:
        log_hz = (math.log(WOBBLE_HZ[0]), math.log(WOBBLE_HZ[1]))
        wobble = tuple(
            (
                float(rng.uniform(0.5, 1.0) * config.wobble / math.sqrt(WOBBLE_TERMS)),
                float(math.exp(rng.uniform(*log_hz))),
                float(rng.uniform(0.0, 2 * math.pi)),
            )
            for _ in range(WOBBLE_TERMS)
        )
    return DisguiseParams(
        pitch_ratio=float(2.0 ** (semitones / 12.0)), formant_ratio=formant, eq=eq, wobble=wobble
    )
