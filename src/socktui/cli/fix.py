"""``socktui fix CONTAINER DESTINATION [FIX_ID] [--dry-run] [--yes]``: list, preview, confirm, apply, record.

``socktui fix --engine-socket [FIX_ID]`` does the same for the engine's own socket, which needs no engine: it is
what to run when the engine cannot start (a directory where ``docker.sock`` belongs).
"""

from __future__ import annotations

import argparse
import posixpath
import sys
from collections.abc import Callable

from ..diagnose import diagnose
from ..engine import Engine, EngineError
from ..enginesock import engine_socket_command, explain_unreachable, judge_engine_socket
from ..fixes import DEFAULT_WAIT_SECONDS, FixResult, Plan, Status, apply_plan, fix_command, plan_fix, render_plan
from ..model import ContainerReport, MountReport
from ..text import printable

EXIT_DONE = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2


def add_fix_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    fix = commands.add_parser(
        "fix",
        parents=[common],
        help="list, preview and apply the fixes for one mount",
        description=(
            "Without FIX_ID, lists the fixes that apply. With it, prints the plan and asks y/N (or needs --yes "
            "when not on a terminal). Exit 0 applied or nothing to do, 1 refused or failed, 2 usage or engine error."
        ),
    )
    fix.add_argument("container", nargs="?", metavar="CONTAINER", help="container name or id")
    fix.add_argument(
        "destination", nargs="?", metavar="DESTINATION", help="the mount's path inside the container (or its source)"
    )
    fix.add_argument("fix_id", nargs="?", metavar="FIX_ID", help="which fix to apply")
    fix.add_argument(
        "--engine-socket",
        action="store_true",
        help="fix the engine's own socket instead of a mount (then the only argument is FIX_ID); works while the "
        "engine is down",
    )
    fix.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    fix.add_argument("-y", "--yes", action="store_true", help="apply without asking")
    fix.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help=f"how long remove-shadow-dir waits for the server to bind before starting containers "
        f"(default {DEFAULT_WAIT_SECONDS:.0f})",
    )


def find_mount(report: ContainerReport, where: str) -> MountReport | None:
    norm = posixpath.normpath(where)
    for m in report.socket_mounts:
        if norm in (posixpath.normpath(m.mount.destination), posixpath.normpath(m.mount.source)):
            return m
    for m in report.socket_mounts:  # a socket inside a socket-dir, named by either of its paths
        if any(norm in (s.container_path, s.host_path) for s in m.sockets):
            return m
    return None


def _confirm(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _print_result(result: FixResult) -> None:
    for step in result.steps:
        mark = "done" if step.ok else "STOP"
        print(f"  [{mark}] {printable(step.message)}")
    print(f"{result.status}: {printable(result.message)}")
    if result.plan.advice and result.status is Status.APPLIED:
        print("\n".join(printable(line) for line in result.plan.advice.split("\n")))


def run_fix(args: argparse.Namespace) -> int:
    if args.engine_socket:
        return run_engine_socket_fix(args)
    if args.container is None or args.destination is None:
        print(
            "socktui fix: CONTAINER and DESTINATION are needed (or --engine-socket [FIX_ID] for the engine's socket)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    engine = Engine.from_options(host=args.host, context=args.context)
    try:
        check = diagnose(engine, expected=args.expect)
    except EngineError as exc:
        raise explain_unreachable(exc, engine.endpoint) from exc
    chosen = [c for c in check.containers if args.container in (c.container.name, c.container.id)] or [
        c for c in check.containers if len(args.container) >= 3 and c.container.id.startswith(args.container)
    ]
    if not chosen:
        print(f"socktui: no such container: {printable(args.container)} (see `docker ps -a`)", file=sys.stderr)
        return EXIT_USAGE
    report = chosen[0]
    mount = find_mount(report, args.destination)
    if mount is None:
        known = ", ".join(printable(m.mount.destination) for m in report.socket_mounts) or "none"
        print(
            f"socktui: {printable(report.container.name)} has no socket mount at {printable(args.destination)} "
            f"(socket mounts: {known})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    verdict = mount.verdict.value if mount.verdict else "-"
    name = printable(report.container.name)
    print(f"{name}: {printable(mount.mount.source)} -> {printable(mount.mount.destination)}: {verdict}")
    print(f"  {printable(mount.reason)}")
    if not args.fix_id:
        if not mount.fixes:
            print("nothing to do: no fix applies")
            return EXIT_DONE
        print("fixes:")
        for f in mount.fixes:
            kind = "changes things" if f.destructive else "advice"
            print(f"  {f.id:<22} {f.title} ({kind})")
        print(f"apply one with: {printable(fix_command(report.container.name, mount.mount.destination))}")
        return EXIT_DONE

    plan = plan_fix(args.fix_id, report, mount, check.containers, wait_seconds=args.wait)
    return _confirm_and_apply(args, plan, lambda p, **kw: apply_plan(p, engine, wait_seconds=args.wait, **kw))


def _confirm_and_apply(args: argparse.Namespace, plan: Plan, apply: Callable[..., FixResult]) -> int:
    """Print the plan, then refuse, stop at a dry run, ask, or apply it; every outcome but a dry run is recorded."""
    from .. import audit  # imported here: `socktui check` loads this module for its parser only

    print(render_plan(plan))
    if plan.refusal:
        _warn(audit.record(FixResult(plan, Status.REFUSED, plan.refusal)))
        print(f"refused: {printable(plan.refusal)}", file=sys.stderr)
        return EXIT_REFUSED
    if not plan.changes:
        return EXIT_DONE
    if args.dry_run:
        print("dry run: nothing was changed")
        return EXIT_DONE
    if args.read_only:
        result = apply(plan, read_only=True)
        _warn(audit.record(result))
        print(f"refused: {printable(result.message)}", file=sys.stderr)
        return EXIT_REFUSED
    if not args.yes:
        if not sys.stdin.isatty():
            result = FixResult(plan, Status.REFUSED, "not confirmed: stdin is not a terminal; pass --yes to apply")
            _warn(audit.record(result))
            print(f"refused: {printable(result.message)}", file=sys.stderr)
            return EXIT_REFUSED
        if not _confirm("Apply this fix?"):
            result = FixResult(plan, Status.REFUSED, "not confirmed by the user")
            _warn(audit.record(result))
            print("nothing was changed")
            return EXIT_REFUSED
    result = apply(plan, progress=lambda r: None)
    _warn(audit.record(result))
    _print_result(result)
    return EXIT_DONE if result.ok else EXIT_REFUSED


def run_engine_socket_fix(args: argparse.Namespace) -> int:
    """The engine's socket: judged without the engine (which may be down because of it), its fix listed or applied."""
    from ..fixes.enginesock import ENGINE_SOCKET_FIXES, NO_CONTAINERS

    fix_id = args.container  # with --engine-socket the first word is the fix
    if args.destination is not None:
        print("socktui fix --engine-socket takes at most one argument, FIX_ID", file=sys.stderr)
        return EXIT_USAGE
    engine = Engine.from_options(host=args.host, context=args.context)
    judged = judge_engine_socket(engine.endpoint)
    if judged is None:
        print(
            f"socktui: the engine at {printable(engine.endpoint.url)} is not a local socket: its socket is not "
            "ours to look at",
            file=sys.stderr,
        )
        return EXIT_USAGE
    print(f"engine socket {printable(judged.path)}: {judged.verdict.value}")
    print(f"  {printable(judged.reason)}")
    if not fix_id:
        if judged.fix is None:
            print(f"no fix socktui can apply{': ' + printable(judged.advice) if judged.advice else ''}")
            return EXIT_DONE
        fix = ENGINE_SOCKET_FIXES[judged.fix]
        print("fixes:")
        print(f"  {fix.id:<22} {fix.title} (changes things)")
        print(f"apply it with: sudo {printable(engine_socket_command(engine.endpoint))} {fix.id}")
        return EXIT_DONE
    chosen = ENGINE_SOCKET_FIXES.get(fix_id)
    if chosen is None:
        known = ", ".join(ENGINE_SOCKET_FIXES)
        print(f"socktui: no engine-socket fix {printable(fix_id)!r} ({known})", file=sys.stderr)
        return EXIT_USAGE
    plan = chosen.plan_for(judged, judged.start)
    return _confirm_and_apply(args, plan, lambda p, **kw: chosen.apply(p, NO_CONTAINERS, **kw))


def _warn(message: str | None) -> None:
    if message:
        print(f"socktui: warning: {printable(message)}", file=sys.stderr)
