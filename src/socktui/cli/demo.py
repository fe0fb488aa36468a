"""``socktui demo``: a private Docker daemon with one broken socket of every kind, the TUI on it, then nothing left.

It never touches the user's own engine: the app is given the private daemon's socket as ``--host`` would give it,
so ``DOCKER_HOST``, ``--context`` and the docker config are never read.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from types import FrameType

EXIT_CANNOT_RUN = 2


def add_demo_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    commands.add_parser(
        "demo",
        help="try socktui safely: a private daemon with every kind of broken socket, removed on exit",
        description=(
            "Starts a private dockerd (its own data root and socket under /run/socktui-demo, no networking, an image "
            "imported from busybox-static), one container per way a shared socket breaks, and the TUI on it. Extra "
            "keys break things on purpose: x kills a server, s starts or restarts it, b starts a container before "
            "its server. Everything is removed when the demo ends, however it ends. Needs root, docker.io and "
            "busybox-static."
        ),
    )


def _say(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"socktui demo: {text}", file=sys.stderr, flush=True)


def _exit_on(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_demo(args: argparse.Namespace) -> int:
    from ..demo.lab import DemoError, Lab, missing_prerequisites
    from ..demo.state import DemoPaths, demo_root

    if args.theme is not None:
        from ..ui.demo import unknown_theme  # Textual, only to check a theme that was named

        theme_problem = unknown_theme(args.theme)
        if theme_problem:
            _say(theme_problem.removeprefix("socktui: "))
            return EXIT_CANNOT_RUN
    problems = missing_prerequisites()
    if problems:
        _say("cannot start:")
        for problem in problems:
            with contextlib.suppress(OSError):
                print(f"  - {problem}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on)
    lab = Lab(DemoPaths(demo_root()), _say)
    try:
        try:
            lab.open()
        except DemoError as exc:
            _say(str(exc))
            return EXIT_CANNOT_RUN
        except RuntimeError as exc:  # the daemon would not start, the image could not be made
            _say(f"cannot start: {exc}")
            return EXIT_CANNOT_RUN
        from ..ui.demo import run_demo_app  # Textual is imported only once the world is ready

        code = run_demo_app(lab, theme=args.theme, mouse=not args.no_mouse)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _exit_on)  # the app's loop put the default action back
        return code
    finally:
        # Cleaning up takes a few seconds; an impatient Ctrl+C must not cut it short (the supervisor would finish it).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _say("removing the demo…")
        removed = lab.close()
        _say(f"removed {', '.join(removed)}" if removed else "nothing was left to remove")
