"""`faceveil keygen` (encryption and signing keys) and `faceveil verify` (manifest against output)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faceveil.cli import exit_codes
from faceveil.compliance.keys import (
    DEFAULT_KEY_ENV,
    load_public_key,
    new_encryption_key,
    new_signing_key_files,
    write_new_file,
)
from faceveil.compliance.manifest import verify
from faceveil.errors import VerificationError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Add the ``keygen`` and ``verify`` subcommands."""
    fmt = argparse.RawDescriptionHelpFormatter
    keygen = commands.add_parser(
        "keygen",
        help="make a new encryption key (for --encrypt) or signing key (for --signing-key)",
        description="Write a new random key file, readable only by you (mode 0600); an existing "
        "file is never overwritten. Without --signing: an AES-128 key and its key id for "
        "--encrypt (MP4 Common Encryption); play the result with ffmpeg -decryption_key KEYHEX. "
        "With --signing: an Ed25519 private key (PEM) for --signing-key, and its public key "
        "beside it in FILE.pub, for faceveil verify --public-key.",
        epilog=epilog,
        formatter_class=fmt,
    )
    keygen.add_argument("-o", "--output", required=True, metavar="FILE", help="the key file to create")
    keygen.add_argument("--signing", action="store_true", help="make an Ed25519 signing key pair")
    keygen.set_defaults(handler=run_keygen)

    check = commands.add_parser(
        "verify",
        help="check a manifest's signature and that OUTPUT is the file it describes",
        description="Check that OUTPUT is the file MANIFEST describes (size and SHA-256) and that "
        "the manifest is signed and unchanged since it was signed. --public-key (or --trusted-key) "
        "also checks who signed it. Every failed check is named; the exit code is then 1.",
        epilog=epilog,
        formatter_class=fmt,
    )
    check.add_argument("manifest", metavar="MANIFEST", help="the manifest (JSON)")
    check.add_argument("output", metavar="OUTPUT", help="the file it describes")
    check.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="FILE",
        help="only trust signatures by this key (a .pub file from keygen --signing; repeatable)",
    )
    check.add_argument(
        "--trusted-key",
        action="append",
        default=[],
        metavar="BASE64",
        help="only trust this public key, as base64 (as the manifest's signer.public_key; repeatable)",
    )
    check.add_argument(
        "--allow-unsigned", action="store_true", help="accept an unsigned manifest (hashes still checked)"
    )
    check.set_defaults(handler=run_verify)


def run_keygen(args: argparse.Namespace) -> int:
    """Run ``faceveil keygen``."""
    path = Path(args.output)
    if args.signing:
        key = new_signing_key_files(path)
        print(
            f"faceveil: wrote the signing key {path} (keep it private) and its public key {path}.pub "
            f"(fingerprint {key.fingerprint})",
            file=sys.stderr,
        )
        return exit_codes.OK
    encryption = new_encryption_key()
    write_new_file(path, (encryption.to_json() + "\n").encode("ascii"))
    print(
        f"faceveil: wrote the encryption key {path} (key id {encryption.kid.hex()}); use it with "
        f"--encrypt {path}, or put KEYHEX:KIDHEX in ${DEFAULT_KEY_ENV} and use "
        f"--encrypt env:{DEFAULT_KEY_ENV}",
        file=sys.stderr,
    )
    return exit_codes.OK


def run_verify(args: argparse.Namespace) -> int:
    """Run ``faceveil verify``."""
    trusted = [load_public_key(p) for p in args.public_key] + [load_public_key(k) for k in args.trusted_key]
    try:
        result = verify(args.manifest, args.output, trusted, allow_unsigned=args.allow_unsigned)
    except VerificationError as exc:
        for check, message in exc.problems:
            print(f"faceveil: verify failed: {check}: {message}", file=sys.stderr)
        return exit_codes.INPUT_FAILED
    output = result.manifest["output"]
    if not result.signed:
        who = "UNSIGNED manifest (accepted with --allow-unsigned)"
    elif result.trusted:
        who = f"signed by trusted key {result.signer}"
    else:
        who = f"signed by key {result.signer} (not pinned: pass --public-key to check who signed)"
    print(f"faceveil: OK: {args.output} matches the manifest (SHA-256 {output['sha256']}); {who}")
    return exit_codes.OK
