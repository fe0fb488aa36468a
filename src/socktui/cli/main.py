"""The ``socktui`` command: the TUI by default, ``check`` for scripts, ``fix`` to repair one mount."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..engine import EngineError
from .check import EXIT_CANNOT_CHECK, add_check_parser, run_check
from .demo import add_demo_parser, run_demo
from .fix import add_fix_parser, run_fix


def _engine_options(defaults: bool) -> argparse.ArgumentParser:
    """The options accepted both before and after a command.

    Subcommands get them with ``SUPPRESS`` defaults: otherwise argparse lets a subcommand's default overwrite what
    was given before the command, and ``socktui --read-only fix ... --yes`` would silently apply the fix.
    """
    common = argparse.ArgumentParser(add_help=False)
    unset: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    common.add_argument("-H", "--host", help="engine endpoint, e.g. unix:///run/docker.sock (as docker -H)", **unset)
    common.add_argument("--context", help="docker context to use (as docker --context)", **unset)
    common.add_argument(
        "--read-only", action="store_true", help="refuse every change; fixes are shown, never run", **unset
    )
    common.add_argument(
        "--expect", action="append", metavar="PATH", help="treat PATH as a socket", **(unset or {"default": []})
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _engine_options(defaults=False)
    parser = argparse.ArgumentParser(
        prog="socktui",
        description="See and fix Unix sockets shared with Docker containers. With no command, opens the TUI.",
        parents=[_engine_options(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"socktui {__version__}")
    parser.add_argument("--watch", action="append", default=[], metavar="DIR", help="also watch this host directory")
    parser.add_argument(
        "--theme", metavar="NAME", help="TUI colour theme (default: the last one picked in the palette, ctrl+p)"
    )
    parser.add_argument(
        "--no-mouse", action="store_true", help="leave the mouse to the terminal, so text can be selected as usual"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    add_check_parser(commands, common)
    add_fix_parser(commands, common)
    add_demo_parser(commands, common)
    return parser


def run_tui(args: argparse.Namespace) -> int:
    from ..session import Options, make_session

    # The engine is asked for its list while Textual is imported: the first frame has it at once.
    session = make_session(Options.from_args(args))
    session.engine.list_early()
    from ..ui.app import run_app  # Textual is imported only when the TUI is wanted

    return run_app(args, session)


def main(argv: Sequence[str] | None = None) -> int:
    # A path the terminal's encoding cannot show is escaped, never a crash (latin-1 locales, PYTHONIOENCODING=ascii).
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            return run_check(args)
        if args.command == "fix":
            return run_fix(args)
        if args.command == "demo":
            return run_demo(args)
        return run_tui(args)
    except EngineError as exc:
        print(f"socktui: {exc}", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`socktui check | head -1`): not an error worth a sentence. Point stdout at devnull
        # so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # the last line of defence: a sentence, never a traceback
        if os.environ.get("SOCKTUI_DEBUG"):
            raise
        print(
            f"socktui: unexpected {type(exc).__name__}: {exc}\n"
            "This is a bug in socktui; run again with SOCKTUI_DEBUG=1 for the details and report it.",
            file=sys.stderr,
        )
        return EXIT_CANNOT_CHECK
