"""``socktui demo``'s app: the ordinary socktui app on the demo's private daemon, plus keys that break things.

The demo keys (kill a server, start or restart it, start a container before its server) exist only here: they are
shown in the footer and the help screen of the demo, and nowhere else. Each runs in a thread worker and only logs
what it did; the screen follows through socktui's live sources (a listener's exit, the watcher, engine events), the
way it would on a real machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterable

from rich.text import Text
from textual import work
from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from ..demo.lab import Lab
from ..model import ContainerReport, MountReport, Role
from ..session import Options, make_session
from ..settings import Settings
from .app import SocktuiApp
from .app import unknown_theme as unknown_theme  # for ``socktui --theme NAME demo``, checked before the demo starts
from .commands import Command
from .messages import LogLine
from .screens import HelpScreen
from .terminal import terminal_is_utf8

DEMO_COMMANDS: tuple[Command, ...] = (
    Command("x", "demo_kill", "Kill srv", "Demo: SIGKILL the selected mount's server; its socket stays behind (stale)"),
    Command(
        "s", "demo_start", "Start srv", "Demo: start the selected mount's server, or restart it (a new socket inode)"
    ),
    Command(
        "b",
        "demo_container_first",
        "Ctr first",
        "Demo: restart the selected container before its server: Docker makes a directory where the socket goes",
    ),
)
# Shown in the footer of the ordinary app; in the demo's they make room for the demo keys (they still work).
_QUIET_IN_DEMO = {"copy_command", "filter", "toggle_all", "recheck"}


def _demo_bindings() -> list[Binding | tuple[str, str] | tuple[str, str, str]]:
    from .commands import COMMANDS

    quiet = [
        Binding(c.key, c.action, c.label, show=False, key_display=c.key_display)
        for c in COMMANDS
        if c.action in _QUIET_IN_DEMO
    ]
    keys = [Binding(c.key, c.action, c.label, show=True) for c in DEMO_COMMANDS]
    return [*quiet, *keys, Binding("ctrl+c", "quit", "Quit", show=False, priority=True)]


class DemoHelpScreen(HelpScreen):
    def on_mount(self) -> None:
        text = Text()
        text.append("Demo keys\n", style="bold")
        for c in DEMO_COMMANDS:
            text.append(f"  {c.key:<10}", style="bold")
            text.append(f"{c.help.removeprefix('Demo: ')}\n")
        text.append("  Everything the demo made is removed when it ends (q, Ctrl+C, or if it is killed).\n")
        body = self.query_one("#help-body")
        body.mount(Static(text), before=body.children[0] if body.children else None)  # first: what only the demo has


class DemoApp(SocktuiApp):
    BINDINGS = _demo_bindings()
    TITLE = "socktui demo"
    BADGE = "DEMO"

    def __init__(self, lab: Lab, **kwargs: object) -> None:
        super().__init__(make_session(Options(host=lab.host)), **kwargs)  # type: ignore[arg-type]
        self.lab = lab

    def on_mount(self) -> None:
        # Textual runs SocktuiApp.on_mount too (handlers are called along the class hierarchy): no super() here.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.exit)
        self.log_line(
            f"demo: {len(self.lab.stories)} containers on a private dockerd, one per way a shared socket breaks. "
            "x kills a server, s (re)starts it, b starts a container first; f fixes for real; q removes it all",
            style="bold",
        )

    def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for c in DEMO_COMMANDS:
            yield SystemCommand(c.label, c.help, self._runner(c.action))

    def action_help(self) -> None:
        self.push_screen(DemoHelpScreen())

    # ------------------------------------------------------------------ the demo keys
    def _target(self) -> tuple[ContainerReport, MountReport, str | None] | None:
        picked = self.selected_mount()
        if picked is None:
            self.notify("Select a socket mount first.")
            return None
        report, mount = picked
        if mount.role is Role.SOCKET_DIR:
            path = mount.sockets[0].host_path if mount.sockets else None
        else:
            path = mount.mount.source
        return report, mount, path

    def action_demo_kill(self) -> None:
        picked = self._target()
        if picked is not None:
            _, mount, path = picked
            self._act(lambda: self.lab.kill_server(path) if path else f"no socket in {mount.mount.source} to kill")

    def action_demo_start(self) -> None:
        picked = self._target()
        if picked is not None:
            _, mount, path = picked
            self._act(lambda: self.lab.start_server(path or f"{mount.mount.source.rstrip('/')}/demo.sock"))

    def action_demo_container_first(self) -> None:
        picked = self._target()
        if picked is None:
            return
        report, mount, path = picked
        if mount.role is not Role.SOCKET or path is None:
            self.notify("Container first is for a mount of one socket file (a -v of the socket itself).")
            return
        self.log_line(f"demo: starting {report.container.name} before its server…")
        self._act(lambda: self.lab.container_first(report.container.name, path))

    @work(thread=True, group="demo", exit_on_error=False)
    def _act(self, deed: Callable[[], str]) -> None:
        self.post_message(LogLine(f"demo: {deed()}", "bold"))


def run_demo_app(lab: Lab, *, theme: str | None = None, mouse: bool = True) -> int:
    """The demo as ``socktui`` runs its app: ASCII for a terminal that is not UTF-8, the theme, the mouse."""
    app = DemoApp(lab, ascii_only=not terminal_is_utf8(), theme=theme, settings=Settings.for_user())
    app.run(mouse=mouse)
    return app.return_code or 0
