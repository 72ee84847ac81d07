"""The one exception tree of faceveil.

Every error faceveil raises on purpose derives from :class:`FaceveilError`, so callers can catch
all of them at once, or one family (bad input, bad configuration, a model that cannot run).
"""

from __future__ import annotations


class FaceveilError(Exception):
    """Base class of every error faceveil raises on purpose."""

    #: A short, stable, machine-readable code (used in JSON reports and the API).
    code = "error"


class ConfigError(FaceveilError, ValueError):
    """An option or configuration value is invalid; the message names the valid choices."""

    code = "invalid_config"


class InputError(FaceveilError):
    """A user-supplied input cannot be processed."""

    code = "invalid_input"


class EmptyInputError(InputError):
    """The input file is empty."""

    code = "empty_input"


class UnsupportedInputError(InputError):
    """The input is not a supported media file (decided by its content, not its name)."""

    code = "unsupported_input"


class CorruptInputError(InputError):
    """The input is truncated or damaged and cannot be decoded completely."""

    code = "corrupt_input"


class TooLargeInputError(InputError):
    """The input is above a configured limit (pixels, bytes, duration); refused before decoding."""

    code = "too_large"


class OutputError(FaceveilError):
    """The output cannot be written (unwritable path, would overwrite the input, unknown format)."""

    code = "output_error"


class ModelError(FaceveilError):
    """A detection model cannot be loaded or run."""

    code = "model_error"


class ValidationError(FaceveilError, ValueError):
    """A core object was built with inconsistent data (wrong shapes, dtypes or ranges)."""

    code = "validation_error"


class JobCancelledError(FaceveilError):
    """The job was cancelled (Ctrl-C or a cancel request); no output was written."""

    code = "cancelled"


class UnsafeSourceError(InputError):
    """A stream source was refused: a scheme, protocol or address faceveil does not open."""

    code = "unsafe_source"


class StreamError(FaceveilError):
    """A live stream failed: its source stayed unreachable, or a worker stopped on an error."""

    code = "stream_error"


class KeyFileError(FaceveilError):
    """An encryption or signing key cannot be read: missing, malformed, or readable by others."""

    code = "key_error"


class VerificationError(FaceveilError):
    """``faceveil verify`` found problems; the message names each one.

    Attributes:
        problems: ``(check, message)`` pairs; ``check`` is a stable name: ``malformed``,
            ``unsigned``, ``signature``, ``untrusted_key``, ``output_missing``, ``output_size``
            or ``output_hash``.
    """

    code = "verification_failed"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = list(problems)

    @property
    def checks(self) -> list[str]:
        """The names of the failed checks, in the order they were made."""
        return [check for check, _ in self.problems]


class ClusterError(FaceveilError):
    """A cluster job failed: Ray is not installed, the cluster cannot be reached, or a segment
    kept failing after its retries."""

    code = "cluster_error"
