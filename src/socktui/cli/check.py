"""``socktui check``: diagnose every socket mount once, print text or one JSON document, exit 0/1/2."""

from __future__ import annotations

import argparse
import sys

from ..diagnose import diagnose, unmatched
from ..engine import Engine, EngineError
from ..enginesock import explain_unreachable
from ..report import to_json, to_text

EXIT_HEALTHY = 0
EXIT_PROBLEMS = 1
EXIT_CANNOT_CHECK = 2


def add_check_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    check = commands.add_parser(
        "check",
        parents=[common],
        help="diagnose every socket mount once and exit",
        description="Exit 0 when every socket mount is live/ok, 1 when any is not, 2 when it could not check.",
    )
    check.add_argument("containers", nargs="*", metavar="CONTAINER", help="names or ids (default: all)")
    output = check.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON document (schema 1) on stdout")
    output.add_argument(
        "--explain", action="store_true", help="draw each socket mount's plumbing, with the broken link marked"
    )
    check.add_argument("--all", action="store_true", help="also list mounts that are not socket-relevant")
    check.add_argument(
        "--connect",
        action="store_true",
        help="also connect to every socket, from the host and from each container's view (servers see these "
        "connections; without it liveness comes from the kernel's socket table and nobody is connected to)",
    )


def run_check(args: argparse.Namespace) -> int:
    engine = Engine.from_options(host=args.host, context=args.context)
    try:
        report = diagnose(engine, names=args.containers, expected=args.expect, connect=args.connect)
    except EngineError as exc:
        # Before "nothing is listening": what is at the engine's socket path (a directory, a stale file, ...).
        raise explain_unreachable(exc, engine.endpoint) from exc
    missing = unmatched([c.container for c in report.containers], args.containers)
    if missing:
        print(f"socktui: no such container: {', '.join(missing)} (see `docker ps -a`)", file=sys.stderr)
        return EXIT_CANNOT_CHECK
    if args.json:
        sys.stdout.write(to_json(report, include_all=args.all, pretty=sys.stdout.isatty()) + "\n")
    else:
        explain = None
        if args.explain:
            from ..explain import charset_for, text_explainer

            explain = text_explainer(charset_for(sys.stdout.encoding))
        sys.stdout.write(to_text(report, include_all=args.all, explain=explain))
    return EXIT_HEALTHY if report.healthy else EXIT_PROBLEMS
