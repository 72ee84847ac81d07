"""Entry point of the `faceveil` command."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from faceveil import __version__
from faceveil.cli import exit_codes
from faceveil.errors import ConfigError, FaceveilError, ModelError

# command -> the module that registers it; a command's module (and what it imports) is loaded
# only when that command runs, or when the whole list is needed (`faceveil --help`)
COMMANDS = {
    "image": "photo_cmds",
    "detect": "photo_cmds",
    "video": "video_cmd",
    "audio": "audio_cmd",
    "stream": "stream_cmd",
    "eval": "eval_cmd",
    "pose": "pose_cmd",
    "serve": "serve_cmd",
    "keygen": "compliance_cmds",
    "verify": "compliance_cmds",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: with every subcommand, or only ``command``'s (a faster start)."""
    parser = argparse.ArgumentParser(
        prog="faceveil",
        description="Offline privacy guard: finds every face in photos and videos and hides it. "
        "Nothing leaves this machine.",
        epilog=exit_codes.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"faceveil {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    wanted = [COMMANDS[command]] if command in COMMANDS else COMMANDS.values()
    for name in dict.fromkeys(wanted):
        importlib.import_module(f"faceveil.cli.{name}").register(commands, exit_codes.EPILOG)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
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
