"""The ``socktui`` command: the TUI by default, ``check`` for scripts, ``fix`` to repair one mount."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .diagnose import diagnose, unmatched
from .engine import Engine, EngineError
from .fixcli import add_fix_parser, run_fix
from .report import to_json, to_text

EXIT_HEALTHY = 0
EXIT_PROBLEMS = 1
EXIT_CANNOT_CHECK = 2


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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser(
        "check",
        parents=[common],
        help="diagnose every socket mount once and exit",
        description="Exit 0 when every socket mount is live/ok, 1 when any is not, 2 when it could not check.",
    )
    check.add_argument("containers", nargs="*", metavar="CONTAINER", help="names or ids (default: all)")
    check.add_argument("--json", action="store_true", help="print one JSON document (schema 1) on stdout")
    check.add_argument("--all", action="store_true", help="also list mounts that are not socket-relevant")
    add_fix_parser(commands, common)
    return parser


def run_check(args: argparse.Namespace) -> int:
    engine = Engine.from_options(host=args.host, context=args.context)
    report = diagnose(engine, names=args.containers, expected=args.expect)
    missing = unmatched([c.container for c in report.containers], args.containers)
    if missing:
        print(f"socktui: no such container: {', '.join(missing)} (see `docker ps -a`)", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    if args.json:
        sys.stdout.write(to_json(report, include_all=args.all) + "\n")
    else:
        sys.stdout.write(to_text(report, include_all=args.all))
    return EXIT_HEALTHY if report.healthy else EXIT_PROBLEMS


def run_tui(args: argparse.Namespace) -> int:
    from .ui.app import run_app  # Textual is imported only when the TUI is wanted

    return run_app(args)


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


if __name__ == "__main__":
    sys.exit(main())
