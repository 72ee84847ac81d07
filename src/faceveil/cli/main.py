"""Entry point of the `faceveil` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from faceveil import __version__
from faceveil.cli import (
    compliance_cmds,
    eval_cmd,
    exit_codes,
    photo_cmds,
    pose_cmd,
    serve_cmd,
    stream_cmd,
    video_cmd,
)
from faceveil.errors import ConfigError, FaceveilError, ModelError


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="faceveil",
        description="Offline privacy guard: finds every face in photos and videos and hides it. "
        "Nothing leaves this machine.",
        epilog=exit_codes.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"faceveil {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    photo_cmds.register(commands, exit_codes.EPILOG)
    video_cmd.register(commands, exit_codes.EPILOG)
    stream_cmd.register(commands, exit_codes.EPILOG)
    eval_cmd.register(commands, exit_codes.EPILOG)
    pose_cmd.register(commands, exit_codes.EPILOG)
    serve_cmd.register(commands, exit_codes.EPILOG)
    compliance_cmds.register(commands, exit_codes.EPILOG)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return exit_codes.USAGE
    try:
        code: int = args.handler(args)
        return code
    except ConfigError as exc:
        print(f"faceveil: error: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    except ModelError as exc:
        print(f"faceveil: error: {exc}", file=sys.stderr)
        return exit_codes.MODEL
    except FaceveilError as exc:
        print(f"faceveil: error: {exc}", file=sys.stderr)
        return exit_codes.INPUT_FAILED
    except KeyboardInterrupt:
        print("faceveil: interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
