"""Terminals: small and resized, NO_COLOR, a light theme, and ssh without COLORTERM (the real binary under a pty).

Rendering is what is under test, so most tests give the app a fake session with one hand-built report (no daemon);
the pty test runs the real ``socktui`` against the private daemon.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from reliability_support import until
from textual.pilot import Pilot
from textual.widgets import Static

from harness import Engine
from socktui.fixes import offers
from socktui.model import (
    CheckReport,
    ContainerReport,
    ContainerSpec,
    EngineInfo,
    Kind,
    MountReport,
    MountSpec,
    PathStat,
    Role,
    Verdict,
)
from socktui.session import Options, make_session
from socktui.ui.app import SocktuiApp
from socktui.ui.screens import HelpScreen
from socktui.ui.widgets import ContainerList, MountInfo, MountTable

ENDPOINT = "unix:///var/run/docker.sock"
SHOWN = (Verdict.SHADOWED, Verdict.STALE, Verdict.DENIED, Verdict.UNKNOWN, Verdict.LIVE)


def _report(n: int, verdict: Verdict) -> ContainerReport:
    source = f"/srv/run/{verdict.value}.sock"
    mount = MountSpec("bind", source, f"/run/{verdict.value}.sock", from_binds=True)
    spec = ContainerSpec(
        id=f"{n:02d}" * 32, name=f"app{n}", state="running", image="busybox", mounts=(mount,), pid=100 + n
    )
    host = PathStat(path=source, kind=Kind.SOCKET, dev=1, ino=1000 + n, mode=0o660, nlink=1)
    m = MountReport(
        mount,
        Role.SOCKET,
        verdict,
        f"the reason for {verdict.value}",
        host=host,
        fixes=offers(verdict, mount, Role.SOCKET),
    )
    return ContainerReport(spec, (m,))


@dataclass
class FakeSession:
    """What the app reads from a Session when it is not live."""

    report: CheckReport = field(
        default_factory=lambda: CheckReport(
            EngineInfo(endpoint=ENDPOINT, local=True, version="27.0.0"),
            tuple(_report(i, v) for i, v in enumerate(SHOWN)),
        )
    )
    options: Options = field(default_factory=Options)
    engine: Any = field(
        default_factory=lambda: SimpleNamespace(endpoint=SimpleNamespace(url=ENDPOINT, source="default socket"))
    )

    def full_check(self, *args: object, **kwargs: object) -> CheckReport:
        return self.report

    def snapshot(self) -> CheckReport:
        return self.report

    def counts(self) -> tuple[int, int, int, Any]:
        cs = self.report.containers
        worst = max((c.worst for c in cs if c.worst), key=lambda v: v.severity, default=None)
        return len(cs), sum(len(c.socket_mounts) for c in cs), sum(c.problems for c in cs), worst

    def versions(self) -> dict[str, int]:
        return {}

    def watched_paths(self) -> set[str]:
        return set()

    def socket_dirs(self) -> set[str]:
        return set()

    def listener_pids(self) -> set[int]:
        return set()

    def live_socket_paths(self) -> set[str]:
        return set()


def make_app() -> SocktuiApp:
    return SocktuiApp(FakeSession(), live=False)  # type: ignore[arg-type]


def drawn(widget: Any) -> str:
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


async def loaded(pilot: Pilot[Any], app: SocktuiApp) -> None:
    table = app.query_one(ContainerList)
    await until(pilot, lambda: table.row_count == len(SHOWN) and app.selected_id is not None, "the rows")
    await pilot.pause()


async def exercise(pilot: Pilot[Any], app: SocktuiApp) -> None:
    """The keys a user presses on the main screen; none of them may raise."""
    await pilot.press("j", "j", "k", "tab", "j", "tab", "tab", "a", "a", "question_mark")
    await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
    await pilot.press("escape", "slash", "x", "escape")
    await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "help to close")


# --------------------------------------------------------------------------- sizes and resizes


@pytest.mark.parametrize("size", [(80, 24), (60, 16), (24, 8)], ids=["80x24", "60x16", "24x8"])
async def test_the_app_runs_at_80x24_and_smaller(size: tuple[int, int]) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await loaded(pilot, app)
        await exercise(pilot, app)
        if size[0] >= 60:
            words = drawn(app.query_one(ContainerList))
            for verdict in SHOWN:
                assert verdict.value in words, (verdict, words)
            selected = app.selected_report()
            assert selected is not None and selected.worst is not None
            assert selected.worst.value in drawn(app.query_one(MountTable))
        assert app.return_code is None  # still running: nothing crashed it


async def test_resizing_keeps_the_selection_and_the_words() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        await pilot.press("j", "j")
        chosen = app.selected_id
        assert chosen is not None
        for size in ((60, 16), (120, 40), (30, 10), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert app.size == size
            assert app.selected_id == chosen
        await pilot.pause()
        words = drawn(app.query_one(ContainerList))
        assert all(v.value in words for v in SHOWN), words
        assert "denied" in drawn(app.query_one(MountInfo))  # the selected third row, problems first


# --------------------------------------------------------------------------- colours


async def test_no_color_keeps_every_verdict_word(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    assert app.no_color
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        words = drawn(app.query_one(ContainerList))
        for verdict in SHOWN:
            assert verdict.value in words
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")


async def test_a_light_theme_renders_and_keeps_the_words() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        app.theme = "textual-light"
        await pilot.pause()
        assert not app.current_theme.dark
        svg = app.export_screenshot()
        assert "socktui" in svg
        words = drawn(app.query_one(ContainerList))
        for verdict in SHOWN:
            assert verdict.value in words
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")


# --------------------------------------------------------------------------- the engine banner at 80x24


async def test_the_engine_banner_fits_at_80x24() -> None:
    endpoint = "unix:///nonexistent/docker.sock"
    app = SocktuiApp(make_session(Options(host=endpoint)), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        banner = app.query_one("#banner", Static)
        await until(pilot, lambda: banner.display, "the banner")
        await pilot.pause()
        shown = " ".join(drawn(banner).split())
        assert endpoint in shown
        assert "Start the daemon" in shown
        assert "Retrying" in shown


# --------------------------------------------------------------------------- over ssh: xterm-256color, no COLORTERM

ANSI = re.compile(rb"\x1b(\[[0-9;?<>=$]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")


@pytest.mark.engine
@pytest.mark.timeout(60)
def test_the_real_binary_starts_under_a_pty_without_colorterm(engine: Engine) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR", "TERM_PROGRAM", "SOCKTUI_DEBUG")}
    env["TERM"] = "xterm-256color"
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "socktui.cli", "-H", engine.host],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    raw = b""

    def read_for(seconds: float, until_text: bytes | None = None) -> None:
        nonlocal raw
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if until_text is not None and until_text in ANSI.sub(b"", raw):
                return
            if select.select([master], [], [], 0.1)[0]:
                try:
                    raw += os.read(master, 65536)
                except OSError:
                    return

    try:
        read_for(30, b" sockets ")  # the top bar once the first look is done: "N problems · N containers · ..."
        text = ANSI.sub(b"", raw)
        assert b"socktui" in text
        assert b" problems " in text and b" containers " in text and b" sockets " in text, text[-2000:]
        assert b"38;2;" not in raw  # no 24-bit colour where the terminal did not claim it
        os.write(master, b"q")
        proc.wait(timeout=15)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        os.close(master)
