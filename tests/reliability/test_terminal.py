"""Terminals: small and resized, NO_COLOR, themes, a locale that is not UTF-8, the mouse, ssh without COLORTERM.

Rendering is what is under test, so most tests give the app a fake session with one hand-built report (no daemon).
Where the bytes on the wire are the point (colours, encodings, mouse modes), the real ``socktui`` runs under a pty:
against the private daemon for the ssh case, against an endpoint where nothing listens for the others (the app
opens with its banner, which is all they need to see).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import stat
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from reliability_support import log_text, until
from textual.pilot import Pilot
from textual.widgets import Input, Static

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
        read_for(30, b" problem")  # the top bar once the first look is done: "N problems · N containers · ..."
        text = ANSI.sub(b"", raw)
        assert b"socktui" in text
        # At 80 columns the other totals give way before the engine's endpoint does.
        assert b" problem" in text and b"docker.sock" in text, text[-2000:]
        assert b"38;2;" not in raw  # no 24-bit colour where the terminal did not claim it
        os.write(master, b"q")
        proc.wait(timeout=15)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        os.close(master)


# --------------------------------------------------------------------------- the real binary under a pty, no engine

NOWHERE = "unix:///nonexistent/socktui-test/docker.sock"
MOUSE_ON = (b"\x1b[?1000h", b"\x1b[?1003h", b"\x1b[?1006h")


def run_under_pty(
    *args: str,
    env: dict[str, str] | None = None,
    until_text: bytes = b"Retrying in the background",
    timeout: float = 30,
) -> bytes:
    """Everything ``socktui -H NOWHERE ARGS`` writes to an 80x24 terminal until it draws ``until_text``, then ``q``
    and everything until it exits."""
    full = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COLORTERM", "NO_COLOR", "TERM_PROGRAM", "SOCKTUI_DEBUG", "LANG", "LC_ALL", "LC_CTYPE", "TEXTUAL")
    }
    full.update({"TERM": "xterm-256color", "LANG": "C.UTF-8"})
    full.update(env or {})
    full = {k: v for k, v in full.items() if v}  # an empty value in ``env`` removes the variable
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "socktui.cli", "-H", NOWHERE, *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=full,
        start_new_session=True,
    )
    os.close(slave)
    raw = b""

    def read(seconds: float) -> bool:
        nonlocal raw
        if not select.select([master], [], [], seconds)[0]:
            return False
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the app closed the terminal
            return False
        raw += chunk
        return bool(chunk)

    try:
        end = time.monotonic() + timeout
        while until_text not in ANSI.sub(b"", raw) and time.monotonic() < end:
            if not read(0.1) and proc.poll() is not None:
                break
        assert until_text in ANSI.sub(b"", raw), raw[-2000:]
        os.write(master, b"q")
        while read(15):
            pass
        proc.wait(timeout=15)
        assert proc.returncode == 0, raw[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        os.close(master)
    return raw


def sgr_colours(raw: bytes) -> set[str]:
    """Every colour an SGR sequence sets (``38;5;17``, ``41``, ``48;2;1;2;3``); 39 and 49 are the terminal's own."""
    found: set[str] = set()
    for params in re.findall(rb"\x1b\[([0-9;:]*)m", raw):
        parts = [p for p in params.decode().replace(":", ";").split(";") if p]
        i = 0
        while i < len(parts):
            n = int(parts[i])
            if n in (38, 48):
                width = 3 if i + 1 < len(parts) and parts[i + 1] == "5" else 5
                found.add(";".join(parts[i : i + width]))
                i += width
                continue
            if 30 <= n <= 37 or 40 <= n <= 47 or 90 <= n <= 97 or 100 <= n <= 107:
                found.add(str(n))
            i += 1
    return found


@pytest.fixture(scope="module")
def plain_run() -> bytes:
    """What the app writes with LANG=C.UTF-8, no NO_COLOR, no option: what the other runs are compared with."""
    return run_under_pty()


@pytest.mark.timeout(60)
def test_no_color_leaves_every_colour_to_the_terminal(plain_run: bytes) -> None:
    assert sgr_colours(plain_run), "without NO_COLOR the app has colours (else this test proves nothing)"
    raw = run_under_pty(env={"NO_COLOR": "1"})
    assert sgr_colours(raw) == set(), sorted(sgr_colours(raw))[:10]
    assert b"Retrying in the background" in ANSI.sub(b"", raw)


async def test_no_color_shows_the_cursor_and_the_focus_by_style(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        table = app.query_one(ContainerList)
        cursor = table.render_line(table.cursor_row + 1)  # +1: the header line
        assert any(seg.style is not None and seg.style.reverse for seg in cursor if seg.text.strip())
        others = table.render_line(table.cursor_row + 2)
        assert not any(seg.style is not None and seg.style.reverse for seg in others if seg.text.strip())
        assert table.styles.border_top[0] == "double"  # the focused pane; the others keep their round border
        assert app.query_one(MountTable).styles.border_top[0] == "round"


# --------------------------------------------------------------------------- a terminal that is not UTF-8


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "env",
    [{"LC_ALL": "C"}, {"LANG": "C"}, {"LANG": "en_US.ISO-8859-1"}, {"PYTHONIOENCODING": "ascii"}],
    ids=["LC_ALL=C", "LANG=C", "latin-1", "ascii-stream"],
)
def test_a_locale_that_is_not_utf8_gets_ascii_borders_and_a_sentence(env: dict[str, str]) -> None:
    raw = run_under_pty(env=env)
    text = ANSI.sub(b"", raw)
    assert raw.isascii(), bytes(sorted({b for b in raw if b > 127}))[:10]
    assert b"\\u25" not in text and b"\\x" not in text, "box drawing escaped into text"
    assert b"+- events -" in text


async def test_a_locale_that_is_not_utf8_is_named_in_the_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from socktui.cli.main import build_parser
    from socktui.ui.app import build_app

    for name in ("LC_ALL", "LC_CTYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    app = build_app(build_parser().parse_args(["-H", NOWHERE]))
    assert app.ascii_only
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "is not UTF-8" in log_text(app), "the sentence in the log")
        assert "(LANG=C): drawing with ASCII; for the full picture use a UTF-8 locale" in log_text(app)


def test_a_utf8_locale_keeps_the_box_drawing(plain_run: bytes) -> None:
    assert "╭".encode() in plain_run
    assert b"not UTF-8" not in ANSI.sub(b"", plain_run)


# --------------------------------------------------------------------------- the mouse


@pytest.mark.timeout(60)
def test_no_mouse_leaves_the_mouse_to_the_terminal(plain_run: bytes) -> None:
    assert all(seq in plain_run for seq in MOUSE_ON), "by default the app captures the mouse"
    raw = run_under_pty("--no-mouse")
    assert not any(seq in raw for seq in MOUSE_ON), [seq for seq in MOUSE_ON if seq in raw]


# --------------------------------------------------------------------------- themes


def test_an_unknown_theme_is_refused_with_the_names_there_are() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "socktui.cli", "-H", NOWHERE, "--theme", "no-such-theme"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 2
    assert "no theme 'no-such-theme'" in proc.stderr and "nord" in proc.stderr and "textual-light" in proc.stderr


async def test_the_theme_option_and_the_palette_choice_is_remembered(tmp_path: Any) -> None:
    from socktui.cli.main import build_parser
    from socktui.settings import Settings
    from socktui.ui.app import build_app

    settings = Settings.for_user(env={"XDG_CONFIG_HOME": str(tmp_path)})
    args = build_parser().parse_args(["-H", NOWHERE, "--theme", "nord"])
    assert build_app(args).theme == "nord"

    app = SocktuiApp(FakeSession(), live=False, settings=settings)  # type: ignore[arg-type]
    assert app.theme != "dracula"
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        await pilot.press("ctrl+p", *"theme")
        await until(pilot, lambda: "theme" in str(app.screen.query_one(Input).value), "the palette")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.query(Input) and app.screen.query_one(Input).value == "", "themes")
        await pilot.press(*"dracula", "enter")
        await until(pilot, lambda: app.theme == "dracula", "the theme picked in the palette")
        saved = tmp_path / "socktui" / "settings.json"
        await until(pilot, lambda: saved.exists() and "dracula" in saved.read_text(), "the choice saved")
    assert json.loads(saved.read_text()) == {"theme": "dracula"}
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700

    again = SocktuiApp(FakeSession(), live=False, settings=settings)  # type: ignore[arg-type]
    assert again.theme == "dracula"
    chosen = SocktuiApp(FakeSession(), live=False, theme="nord", settings=settings)  # type: ignore[arg-type]
    assert chosen.theme == "nord", "--theme wins over the remembered one"
