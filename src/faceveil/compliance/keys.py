"""Key files: the CENC encryption key and the Ed25519 signing key, made, written and read safely.

- Key files are created with mode 0600 in one step (never readable by others, not even
  briefly), written to a temporary name and linked into place, so an existing file is never
  overwritten and a reader never sees half a key.
- Reading refuses a key file that others may read (as ssh does), and no key ever appears in an
  error message, a ``repr``, a log line or a process's argument list: keys are handed to FFmpeg
  through PyAV's option dictionaries, never a command line.

The encryption key file is JSON: ``{"format": "faceveil-cenc-key/1", "scheme": "cenc-aes-ctr",
"key": "<32 hex>", "kid": "<32 hex>"}``. The signing key is a PKCS#8 PEM Ed25519 private key
(what OpenSSL reads too), with its public half beside it in ``<file>.pub``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import stat
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceveil.errors import ConfigError, KeyFileError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_FORMAT = "faceveil-cenc-key/1"
SCHEME = "cenc-aes-ctr"
ENV_PREFIX = "env:"
#: The environment variable the documentation suggests for ``--encrypt env:VAR``.
DEFAULT_KEY_ENV = "FACEVEIL_ENCRYPTION_KEY"
_HEX = set("0123456789abcdefABCDEF")


def _hex16(value: object, what: str, where: str) -> bytes:
    if not isinstance(value, str) or len(value) != 32 or not set(value) <= _HEX:
        raise KeyFileError(f"{where}: the {what} must be 32 hex digits (16 bytes)")
    return bytes.fromhex(value)


class EncryptionKey:
    """An AES-128 content key and its key id (KID) for MP4 Common Encryption (``cenc-aes-ctr``).

    The key is never shown: ``repr`` and `describe` give the KID only.
    """

    __slots__ = ("_key", "kid")

    def __init__(self, key: bytes, kid: bytes) -> None:
        if len(key) != 16 or len(kid) != 16:
            raise ConfigError("a CENC key and its KID are 16 bytes each")
        self._key = key
        self.kid = kid

    @property
    def key_hex(self) -> str:
        """The key as hex, as FFmpeg's ``-decryption_key`` wants it (handle with care)."""
        return self._key.hex()

    def muxer_options(self) -> dict[str, str]:
        """The MP4/MOV muxer options that encrypt every sample."""
        return {
            "encryption_scheme": SCHEME,
            "encryption_key": self._key.hex(),
            "encryption_kid": self.kid.hex(),
        }

    def demuxer_options(self) -> dict[str, str]:
        """The MP4 demuxer option that decrypts (for reading an encrypted file back)."""
        return {"decryption_key": self._key.hex()}

    def describe(self) -> dict[str, str]:
        """What may be published about the key: the scheme and the KID (for manifests)."""
        return {"scheme": SCHEME, "kid": self.kid.hex()}

    def to_json(self) -> str:
        """The key file's text."""
        return json.dumps(
            {"format": KEY_FORMAT, "scheme": SCHEME, "key": self._key.hex(), "kid": self.kid.hex()}
        )

    def __repr__(self) -> str:
        return f"EncryptionKey(kid={self.kid.hex()}, key=<hidden>)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EncryptionKey):
            return NotImplemented
        return secrets.compare_digest(self._key, other._key) and self.kid == other.kid

    def __hash__(self) -> int:
        return hash(self.kid)


def new_encryption_key() -> EncryptionKey:
    """A new random key and KID (from the operating system's secure generator)."""
    return EncryptionKey(secrets.token_bytes(16), secrets.token_bytes(16))


def parse_encryption_key(text: str, where: str) -> EncryptionKey:
    """A key from a key file's JSON, or from ``KEYHEX:KIDHEX`` (what an environment variable may hold)."""
    text = text.strip()
    if not text.startswith("{"):
        key, sep, kid = text.partition(":")
        if not sep:
            raise KeyFileError(f"{where}: expected a faceveil key file (JSON) or KEYHEX:KIDHEX")
        return EncryptionKey(_hex16(key, "key", where), _hex16(kid, "KID", where))
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise KeyFileError(f"{where} is not a faceveil key file (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != KEY_FORMAT:
        raise KeyFileError(f"{where} is not a faceveil encryption key file (format {KEY_FORMAT} expected)")
    if data.get("scheme", SCHEME) != SCHEME:
        raise KeyFileError(f"{where}: unknown scheme {data.get('scheme')!r}; choose one of: {SCHEME}")
    return EncryptionKey(_hex16(data.get("key"), "key", where), _hex16(data.get("kid"), "KID", where))


def load_encryption_key(spec: str | os.PathLike[str]) -> EncryptionKey:
    """The key ``spec`` names: a key file's path, or ``env:VAR`` for an environment variable."""
    text = os.fspath(spec)
    if text.startswith(ENV_PREFIX):
        name = text[len(ENV_PREFIX) :]
        if not name:
            raise ConfigError(f"env: needs a variable name, e.g. env:{DEFAULT_KEY_ENV}")
        value = os.environ.get(name)
        if not value:
            raise KeyFileError(f"the environment variable {name} is not set or empty")
        return parse_encryption_key(value, f"the environment variable {name}")
    return parse_encryption_key(read_secret_file(Path(text)), str(text))


def read_secret_file(path: Path) -> str:
    """The text of a key file; refused when it is missing, not a file, or readable by others."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"the key file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise KeyFileError(
                f"the key file {path} may be read by others (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"make it private: chmod 600 {path}"
            )
        if info.st_size > 64 * 1024:
            raise KeyFileError(f"the key file {path} is too large to be a key")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFileError(f"the key file {path} does not exist (make one with faceveil keygen)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc}") from None


def write_new_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create ``path`` with ``data`` and ``mode`` in one step; never replaces an existing file.

    The data goes to a temporary file made with ``mode`` from the start, which is then
    hard-linked to ``path`` (the link fails if ``path`` exists) and removed.
    """
    if path.exists() or path.is_symlink():
        raise KeyFileError(f"{path} exists already; refusing to overwrite it (choose another name)")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.faceveil-tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
        try:
            os.fchmod(fd, mode)  # exactly this mode, whatever the umask
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(temp, path)
    except FileExistsError:
        raise KeyFileError(f"{path} exists already; refusing to overwrite it (choose another name)") from None
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with suppress(FileNotFoundError):
            temp.unlink()


# -- signing keys ---------------------------------------------------------------------------------
def public_key_text(key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key in base64 (as manifests embed it)."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def fingerprint(public_key_b64: str) -> str:
    """A short name of a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_key_b64.encode("ascii")).hexdigest()[:16]


class SigningKey:
    """An Ed25519 private key that signs manifests (``repr`` shows only its fingerprint)."""

    __slots__ = ("_key", "public_key")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        #: base64 of the raw public key
        self.public_key = public_key_text(key.public_key())

    @property
    def fingerprint(self) -> str:
        """The public key's fingerprint."""
        return fingerprint(self.public_key)

    def sign(self, data: bytes) -> str:
        """The Ed25519 signature of ``data``, in base64."""
        return base64.b64encode(self._key.sign(data)).decode("ascii")

    def __repr__(self) -> str:
        return f"SigningKey(fingerprint={self.fingerprint})"


def new_signing_key_files(path: Path) -> SigningKey:
    """Make a new Ed25519 key: ``path`` (private, PKCS#8 PEM, 0600) and ``path.pub`` (public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public_path = path.with_name(path.name + ".pub")
    if public_path.exists():
        raise KeyFileError(f"{public_path} exists already; refusing to overwrite it (choose another name)")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_new_file(path, private)
    try:
        write_new_file(public_path, public, mode=0o644)
    except KeyFileError:
        path.unlink()
        raise
    return SigningKey(key)


def load_signing_key(path: str | os.PathLike[str]) -> SigningKey:
    """The Ed25519 private key in a PEM file (as ``faceveil keygen --signing`` writes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    text = read_secret_file(Path(path))
    try:
        key: Any = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key (faceveil signs with Ed25519 only)")
    return SigningKey(key)


def load_public_key(spec: str | os.PathLike[str]) -> str:
    """A trusted public key as base64 raw bytes, from a PEM file or the base64 text itself."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = os.fspath(spec)
    path = Path(text)
    if path.is_file():
        try:
            key: Any = serialization.load_pem_public_key(path.read_bytes())
        except (ValueError, TypeError, OSError):
            raise KeyFileError(f"{path} is not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{path} is not an Ed25519 public key")
        return public_key_text(key)
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise KeyFileError(f"{text!r} is neither a public key file nor a base64 Ed25519 public key")
    return text
