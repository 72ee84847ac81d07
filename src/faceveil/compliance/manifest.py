"""Signed manifests: which file was anonymized, when, how, and that the output is unchanged.

A manifest is a JSON object with the faceveil version, the model files (SHA-256), every
setting, the input's and output's SHA-256 and size, the counts, the time and, when one was
written, the regions file's SHA-256. Nothing of the input's content (no pixels, no faces, no
names) is in it. When signed, ``signer`` holds the Ed25519 public key and ``signature`` the
signature of the *canonical* JSON of everything but ``signature`` (keys sorted, no
whitespace, UTF-8), so the signer's key is covered by the signature too.

:func:`verify` checks a manifest against an output: the signature, optionally who signed (a
trusted public key), and the output's size and hash. Every failure is named.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceveil import __version__
from faceveil.compliance.keys import EncryptionKey, SigningKey, fingerprint
from faceveil.errors import OutputError, VerificationError

MANIFEST_FORMAT = "faceveil-manifest/1"
ALGORITHM = "ed25519"
_MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """(SHA-256 hex, size in bytes) of a file, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def canonical(document: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: JSON with sorted keys and no whitespace, in UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def describe(value: Any) -> Any:
    """A settings object as plain JSON values (dataclasses field by field; keys by their KID only)."""
    if isinstance(value, EncryptionKey):
        return value.describe()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # a field marked secret (a voice disguise's seed) is never written into a manifest
        fields = (f for f in dataclasses.fields(value) if not f.metadata.get("secret"))
        return {f.name: describe(getattr(value, f.name)) for f in fields}
    if isinstance(value, Mapping):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [describe(v) for v in value]
    if isinstance(value, Path):
        return value.name
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@dataclass(frozen=True)
class ManifestOptions:
    """Where a job's manifest goes and what signs it.

    Attributes:
        path: the manifest file (written beside the output, atomically, with it).
        signing_key: the Ed25519 key that signs it; None writes an unsigned manifest.
    """

    path: Path
    signing_key: SigningKey | None = None


def build_manifest(
    *,
    kind: str,
    input_digest: tuple[str, int] | None,
    output: Path,
    output_name: str | None = None,
    settings: Mapping[str, Any],
    models: Sequence[Mapping[str, str]],
    counts: Mapping[str, int],
    regions: Path | None = None,
    created_at: float | None = None,
) -> dict[str, Any]:
    """An unsigned manifest of one job.

    ``input_digest`` is the input's (SHA-256, size), taken before the job ran (an input may be
    overwritten in place), or None for a live source, which has no file to hash (the manifest
    then says ``"input": {"kind": "live", "sha256": null}``); ``output`` may be a temporary
    name, ``output_name`` is its final name.
    """
    out_hash, out_size = sha256_file(output)
    moment = time.time() if created_at is None else created_at
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "faceveil_version": __version__,
        "kind": kind,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment)),
        "input": _input(input_digest),
        "output": {"name": output_name or output.name, "sha256": out_hash, "bytes": out_size},
        "models": [dict(m) for m in models],
        "settings": describe(settings),
        "counts": dict(counts),
        "regions": None,
    }
    if regions is not None:
        reg_hash, reg_size = sha256_file(regions)
        manifest["regions"] = {"sha256": reg_hash, "bytes": reg_size}
    return manifest


def _input(digest: tuple[str, int] | None) -> dict[str, Any]:
    if digest is None:
        return {"kind": "live", "sha256": None}
    return {"sha256": digest[0], "bytes": digest[1]}


def sign(manifest: Mapping[str, Any], key: SigningKey | None) -> dict[str, Any]:
    """``manifest`` with ``signer`` and ``signature`` added (unchanged, unsigned, when ``key`` is None)."""
    body = {k: v for k, v in manifest.items() if k not in ("signer", "signature")}
    if key is None:
        return body
    body["signer"] = {"algorithm": ALGORITHM, "public_key": key.public_key, "fingerprint": key.fingerprint}
    return {**body, "signature": key.sign(canonical(body))}


def manifest_text(manifest: Mapping[str, Any]) -> str:
    """The manifest file's text (indented for people; signatures cover the canonical form)."""
    return json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest`` to ``path`` through a temporary file and a rename."""
    temp = path.with_name(f".{path.name}.faceveil-tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(manifest_text(manifest), encoding="utf-8")
        temp.replace(path)
    except OSError as exc:
        raise OutputError(f"cannot write the manifest {path}: {exc.strerror or exc}") from None
    finally:
        with suppress(FileNotFoundError):
            temp.unlink()


# -- verification ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verified:
    """What :func:`verify` established.

    Attributes:
        manifest: the manifest.
        signed: whether it carries a valid signature.
        signer: the signer's key fingerprint (None when unsigned).
        trusted: the signer is one of the trusted keys given (False when none were given).
    """

    manifest: dict[str, Any]
    signed: bool
    signer: str | None
    trusted: bool


def load_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check the shape of a manifest; a damaged or truncated one raises ``malformed``."""
    path = Path(path)
    try:
        if path.stat().st_size > _MAX_MANIFEST_BYTES:
            raise _fail("malformed", f"{path} is too large to be a faceveil manifest")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail("malformed", f"the manifest {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(
            "malformed", f"the manifest {path} is not valid JSON (truncated or damaged?): {exc}"
        ) from None
    except OSError as exc:
        raise _fail("malformed", f"cannot read the manifest {path}: {exc.strerror or exc}") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise _fail("malformed", f"{path} is not a faceveil manifest (format {MANIFEST_FORMAT} expected)")
    output = data.get("output")
    if not (
        isinstance(output, dict)
        and isinstance(output.get("sha256"), str)
        and isinstance(output.get("bytes"), int)
    ):
        raise _fail("malformed", f"the manifest {path} has no output hash and size")
    return data


def verify(
    manifest_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    trusted_keys: Sequence[str] = (),
    allow_unsigned: bool = False,
) -> Verified:
    """Check that ``output_path`` is the output ``manifest_path`` describes, and who signed it.

    Args:
        manifest_path: the manifest.
        output_path: the file to check.
        trusted_keys: base64 Ed25519 public keys; when given, the signer must be one of them.
        allow_unsigned: accept a manifest without a signature (its hashes are still checked).

    Raises:
        VerificationError: naming every check that failed.
    """
    manifest = load_manifest(manifest_path)
    problems: list[tuple[str, str]] = []
    signed, signer = _check_signature(manifest, problems)
    trusted = False
    if signer is not None and trusted_keys:
        trusted = signer in trusted_keys
        if not trusted:
            names = ", ".join(fingerprint(k) for k in trusted_keys)
            problems.append(
                (
                    "untrusted_key",
                    f"signed by key {fingerprint(signer)}, which is not a trusted key ({names})",
                )
            )
    if signer is None and not allow_unsigned:
        problems.append(
            ("unsigned", "the manifest is unsigned (pass --allow-unsigned to check its hashes only)")
        )
    elif signer is None and trusted_keys:
        problems.append(("unsigned", "a trusted key was given, but the manifest is unsigned"))
    _check_output(manifest["output"], Path(output_path), problems)
    if problems:
        raise VerificationError(problems)
    return Verified(manifest, signed, fingerprint(signer) if signer else None, trusted)


def _check_signature(manifest: dict[str, Any], problems: list[tuple[str, str]]) -> tuple[bool, str | None]:
    """(signature valid, signer's public key); the signer is None for an unsigned manifest."""
    import base64

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    signature, signer = manifest.get("signature"), manifest.get("signer")
    if signature is None and signer is None:
        return False, None
    if not isinstance(signer, dict) or signer.get("algorithm") != ALGORITHM or not isinstance(signature, str):
        problems.append(("signature", "the manifest's signer or signature is missing or damaged"))
        return False, None
    public = signer.get("public_key")
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(str(public), validate=True))
        value = base64.b64decode(signature, validate=True)
    except ValueError:
        problems.append(("signature", "the manifest's public key or signature is not valid base64 Ed25519"))
        return False, None
    body = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        key.verify(value, canonical(body))
    except InvalidSignature:
        problems.append(
            (
                "signature",
                f"the signature does not match the manifest's contents: the manifest was changed after "
                f"key {fingerprint(str(public))} signed it, or the signature is another key's",
            )
        )
        return False, str(public)
    return True, str(public)


def _check_output(expected: dict[str, Any], path: Path, problems: list[tuple[str, str]]) -> None:
    try:
        actual_hash, actual_size = sha256_file(path)
    except FileNotFoundError:
        problems.append(("output_missing", f"the output {path} does not exist"))
        return
    except OSError as exc:
        problems.append(("output_missing", f"cannot read the output {path}: {exc.strerror or exc}"))
        return
    if actual_size != expected["bytes"]:
        problems.append(
            ("output_size", f"{path} has {actual_size} bytes, the manifest says {expected['bytes']}")
        )
    if actual_hash != expected["sha256"]:
        problems.append(
            (
                "output_hash",
                f"{path} has SHA-256 {actual_hash}, the manifest says {expected['sha256']}: "
                "it is not the file that was produced",
            )
        )


def _fail(check: str, message: str) -> VerificationError:
    return VerificationError([(check, message)])
