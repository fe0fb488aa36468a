"""Nothing from outside reaches the terminal raw, and nothing from outside is ever read as markup.

Names, labels, images, states, versions, paths, socket names, listener command lines and server replies are set
by whoever controls a container, a shared directory or the engine. Each test here fills them with the bytes an
attacker would use: ``ESC ] 0 ; title BEL`` (window title), ``ESC ] 52`` (the clipboard), a C1 CSI, DEL, a bidi
override, a newline (a forged line), and Textual markup (``[@click=app.quit]``, ``[/]``, ``[link=…]``), then
checks two things on every screen:

- what the app shows holds those bytes *escaped* (``\\x1b]0;T\\x07``, ``[@click=app.quit]q[/]`` literally);
- the frame the driver would write to the terminal holds no raw control character and no OSC sequence.

The frame is the exact string Textual's driver writes for a full repaint of the current screen stack
(``render_update(...).render_segments(console)``), so it includes every line filter and every widget.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_support import (
    TRAP,
    FakeEngine,
    FakeWorld,
    api_container,
    api_inspect,
    listening_socket,
    log_text,
    socktui_cli,
    unique_name,
    until,
)
from textual.widgets import Input, OptionList, Static

from harness import ContainerFactory, Engine
from socktui.session import Options, make_session
from socktui.ui.app import SocktuiApp
from socktui.ui.screens import ConnectScreen, FixScreen, HelpScreen
from socktui.ui.widgets import ContainerList, MountInfo, MountTable

# ESC ] 0 (window title), ESC ] 52 (clipboard), markup that would run an action / close a tag that is not open /
# open a link, a bidi override, a C1 CSI, DEL, a newline.
TITLE = "\x1b]0;T\x07"
CLIP = "\x1b]52;c;eA==\x07"
MARKUP = "[@click=app.quit]q[/][b][link=x]"
EVIL = f"{TITLE}{CLIP}{MARKUP}\u202e\x9b\x7f\n."
# File names cannot hold "/": the "[/]" of a path comes from a directory ending in "[" and a name starting with "]".
DIR_A = f"{TITLE}["
DIR_B = "][b]"
SOCK_TAIL = f"{CLIP}[@click=app.quit]q\u202e\x9b\x7f\n.sock"
# /proc/net/unix prints a newline in a path raw, so a listener bound to such a name cannot be named from it
# (RELIABILITY.md): the live socket whose listener is shown keeps every hostile byte but that one.
LIVE_TAIL = SOCK_TAIL.replace("\n", "")

# Textual's own sequences: CSI (cursor moves, SGR). Anything else that is not printable must not be there.
CSI = re.compile(r"\x1b\[[0-9;:?<>=]*[ -/]*[@-~]")
SIZE = (220, 50)


def frame(app: SocktuiApp) -> str:
    """What the driver writes to the terminal for a full repaint of the screen stack as it is now."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    assert update is not None and hasattr(update, "render_segments")
    text: str = update.render_segments(app.console)
    return text


MOVE = re.compile(r"\x1b\[\d+;\d+H")


def visible_text(out: str) -> str:
    """The frame's text, one screen line per line (each line of a repaint starts with a cursor move)."""
    return CSI.sub("", MOVE.sub("\n", out))


def shown(app: SocktuiApp) -> str:
    return visible_text(frame(app))


async def assert_nothing_raw(pilot: Any, app: SocktuiApp, where: str) -> str:
    """No OSC, no raw control character in the frame; returns the visible text. Waits for the pending refresh, so
    the frame is the one the last change asked for."""
    await pilot.pause()
    out = frame(app)
    assert "\x1b]" not in out, f"{where}: an OSC sequence reaches the terminal"
    visible = visible_text(out)
    raw = sorted({repr(ch) for ch in visible if ch != "\n" and not ch.isprintable()})
    assert not raw, f"{where}: raw {raw} reach the terminal"
    return visible


def printable(text: str) -> str:
    """The escaping the user must see, written out here rather than borrowed from the code under test."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def escaped_in(fragment: str, text: str) -> bool:
    return printable(fragment) in text


def make_hostile_dir(d: Path) -> Path:
    shared = d / DIR_A / DIR_B
    shared.mkdir(parents=True)
    assert "[/][b]" in str(shared)
    return shared


def stale_socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()  # the file stays, nobody listens: ECONNREFUSED


# --------------------------------------------------------------------------- a server that answers with the bytes

REPLY_SERVER = r"""
import socket, sys
path, reply = sys.argv[1], sys.argv[2].encode("utf-8", "surrogateescape")
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
print("READY", flush=True)
while True:
    c, _ = s.accept()
    with c:
        c.settimeout(5)
        try:
            if c.recv(4096):
                c.sendall(reply + b"\n")
        except OSError:
            pass
"""


@pytest.fixture
def reply_server(d: Path) -> Iterator[Any]:
    """Start a listener whose command line *and* reply hold EVIL: ``start(path) -> Popen``."""
    procs: list[subprocess.Popen[str]] = []

    def start(path: Path) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", REPLY_SERVER, str(path), EVIL],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready and proc.stdout.readline().startswith("READY"), "the reply server did not start"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=5)


# --------------------------------------------------------------------------- the real engine: every screen


@pytest.mark.engine
@pytest.mark.timeout(120)
async def test_hostile_names_paths_labels_and_replies_are_shown_escaped_on_every_screen(
    engine: Engine, containers: ContainerFactory, d: Path, reply_server: Any
) -> None:
    shared = make_hostile_dir(d)
    live, stale = shared / f"L{LIVE_TAIL}", shared / f"S{SOCK_TAIL}"
    server = reply_server(live)
    stale_socket(stale)
    cid = containers.run(
        binds=[f"{shared}:/shared", f"{live}:/run/live.sock"],
        command=TRAP,
        name=unique_name(),
        labels={"com.docker.compose.project": EVIL},
    )

    app = SocktuiApp(make_session(Options(host=engine.host)))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.report is not None and cid in app.query_one(ContainerList).rows, "the list")
        table = app.query_one(ContainerList)
        await until(pilot, lambda: app.focused is table, "the container list to have focus")
        target = table.get_row_index(cid)
        for _ in range(abs(target - table.cursor_row)):
            await pilot.press("down" if target > table.cursor_row else "up")
        await until(pilot, lambda: app.selected_id == cid, "the hostile container to be selected")
        await pilot.pause()

        # list and detail: the label, the mount sources, the socket names, the listener's command line
        visible = await assert_nothing_raw(pilot, app, "main screen")
        # the container list cuts the label at its column's width; the markup is already in what fits
        assert printable(f" {EVIL}")[:60] in visible, "the compose label, escaped, in the container list"
        assert escaped_in(str(shared), visible), "the mount source, escaped, in the mount table"
        info = app.query_one(MountInfo)
        await until(pilot, lambda: "stale" in str(info.content), "the socket-dir mount in the detail pane")
        visible = await assert_nothing_raw(pilot, app, "detail of the socket directory")
        assert escaped_in(stale.name, visible) and escaped_in(live.name, visible)

        # copy: the toast about what was copied
        await pilot.press("c")
        await until(pilot, lambda: "Copied" in shown(app), "the copy toast")
        visible = await assert_nothing_raw(pilot, app, "copy toast")
        assert all(not any(not ch.isprintable() for ch in str(n.message)) for n in app._notifications)

        # fix plan and progress: remove the stale socket, whose name holds a newline
        await pilot.press("f")
        screen = await until(pilot, lambda: isinstance(app.screen, FixScreen) and app.screen, "the fix screen")
        options = screen.query_one("#fix-options", OptionList)
        assert options.get_option_at_index(0).id == "remove-stale-socket"
        await pilot.press("enter")
        await until(pilot, lambda: screen.stage == "preview", "the plan preview")
        plan = str(screen.query_one("#fix-plan", Static).content)
        assert any(printable(str(stale)) in line for line in plan.splitlines()), "the path whole, on one line"
        assert not any(line.startswith(".sock") for line in plan.splitlines()), "no line forged by the newline"
        visible = await assert_nothing_raw(pilot, app, "fix plan")
        assert escaped_in(str(stale), visible) or escaped_in(stale.name, visible)
        await pilot.press("y")
        await until(pilot, lambda: screen.stage == "done", "the fix to finish", timeout=30)
        assert screen.result is not None and screen.result.status == "applied", screen.result
        progress = str(screen.query_one("#fix-progress", Static).content).splitlines()[1:]
        assert len(progress) == len(screen.result.steps), progress  # one line per step, none forged
        assert all(line.startswith("  [done] ") for line in progress), progress
        assert any(printable(str(stale)) in line for line in progress), progress
        await assert_nothing_raw(pilot, app, "fix progress")
        assert not stale.exists()
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, FixScreen), "the fix screen to close")
        await until(pilot, lambda: "fix remove-stale-socket applied" in log_text(app), "the fix in the log")

        # test connect on the live file mount: a real server whose reply holds the bytes
        await pilot.press("tab")
        mounts = app.query_one(MountTable)
        await until(pilot, lambda: app.focused is mounts, "the mount table to have focus")
        report = app.selected_report()
        assert report is not None
        row = [m.mount.destination for m in app.visible_mounts(report)].index("/run/live.sock")
        while mounts.cursor_row != row:
            await pilot.press("down" if row > mounts.cursor_row else "up")
        await until(pilot, lambda: "/run/live.sock" in str(info.content), "the live mount in the detail pane")
        await until(pilot, lambda: f"pid {server.pid}" in str(info.content), "the listener named")
        visible = await assert_nothing_raw(pilot, app, "detail of the live mount")
        assert escaped_in(EVIL, visible), "the listener's command line, escaped"
        await pilot.press("t")
        connect = await until(pilot, lambda: isinstance(app.screen, ConnectScreen) and app.screen, "the test screen")
        summary = str(connect.query_one("#connect-summary", Static).content)
        assert f"host {printable(str(live))}: connected" in summary
        await assert_nothing_raw(pilot, app, "test connect")
        await until(pilot, lambda: isinstance(app.focused, Input), "the line to send")
        await pilot.press(*"hi", "enter")
        reply = connect.query_one("#connect-reply", Static)
        await until(pilot, lambda: str(reply.content).startswith("reply:"), "the server's reply")
        assert str(reply.content) == f"reply: {printable(EVIL)}"
        visible = await assert_nothing_raw(pilot, app, "the reply")
        assert escaped_in(EVIL, visible)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ConnectScreen), "the test screen to close")

        # the log: the test connect and the fix, with their paths escaped
        visible = await assert_nothing_raw(pilot, app, "the log")
        squeezed = "".join(log_text(app).split())  # the log wraps long lines anywhere at 80 columns
        assert "".join(printable(f"test connect {live}: connected").split()) in squeezed
        assert (
            "".join(printable(f"removed the stale socket {stale}").split()) in squeezed
            or printable(str(stale)) in squeezed
        )

        # nothing ran: no [@click=app.quit] was ever an action, the window title was never touched
        assert app.return_code is None and app.is_running
        assert (app.title, app.sub_title) == ("socktui", "")


# --------------------------------------------------------------------------- what only an engine can make hostile


def hostile_world(d: Path) -> tuple[FakeWorld, Path, Path]:
    """A fake engine whose every string is hostile, with mounts of real hostile paths (one stale, one live)."""
    shared = make_hostile_dir(d)
    stale, live = shared / f"S{SOCK_TAIL}", shared / f"L{LIVE_TAIL}"
    stale_socket(stale)
    mounts = [
        {"Type": "bind", "Source": str(shared), "Destination": "/shared", "RW": True},
        {"Type": "bind", "Source": str(live), "Destination": "/run/live.sock", "RW": True},
    ]
    cid = "e" * 64
    listed = api_container(cid, EVIL, mounts, state=f"exited{TITLE}[/]")
    listed["Image"] = f"img{CLIP}[/]"
    listed["Labels"] = {"com.docker.compose.project": EVIL, "com.docker.compose.service": EVIL}
    inspected = api_inspect(cid, EVIL, mounts, state=f"exited{TITLE}[/]")
    inspected["Config"]["Image"] = listed["Image"]
    inspected["Config"]["Labels"] = listed["Labels"]
    world = FakeWorld(
        version={"Version": f"27.0{TITLE}[/]", "ApiVersion": "1.41", "MinAPIVersion": "1.24"},
        containers=[listed],
        inspect={cid: inspected},
    )
    return world, stale, live


async def test_what_a_hostile_engine_says_is_shown_escaped_and_never_as_markup(d: Path) -> None:
    world, stale, live = hostile_world(d)
    holder = listening_socket(live)
    try:
        with FakeEngine(d / "e.sock", world) as fake:
            app = SocktuiApp(make_session(Options(host=fake.url)), live=False)
            async with app.run_test(size=SIZE, notifications=True) as pilot:
                await until(pilot, lambda: app.report is not None and app.selected_id is not None, "the first look")
                await pilot.pause()
                visible = await assert_nothing_raw(pilot, app, "main screen")
                for fragment in (EVIL, f"27.0{TITLE}[/]"):
                    assert escaped_in(fragment, visible), fragment  # the name in the list, the version in the top bar
                assert f"─ {printable(EVIL)[:40]}" in visible, "the name, escaped, in the mount table's border title"

                # the copy toast names what was copied: here the selected mount's source, whose "[/]" would end the
                # toast's markup (MarkupError) if it were parsed
                await pilot.press("c")
                toasts = await until(pilot, lambda: app.screen.query("Toast").nodes, "the copy toast")
                [toast] = [str(t.render()) for t in toasts]
                assert toast.startswith("Copied: ") and f"{printable(DIR_A)}/{DIR_B}" in toast, toast
                await assert_nothing_raw(pilot, app, "copy toast")

                await pilot.press("question_mark")
                await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
                await assert_nothing_raw(pilot, app, "help")
                await pilot.press("escape")
                await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "help to close")

                await pilot.press("f")
                screen = await until(pilot, lambda: isinstance(app.screen, FixScreen) and app.screen, "fixes")
                await pilot.press("enter")
                await until(pilot, lambda: screen.stage == "preview", "the plan preview")
                plan = str(screen.query_one("#fix-plan", Static).content)
                assert f"  for {printable(EVIL)}: " in plan.splitlines()[1], plan
                await assert_nothing_raw(pilot, app, "fix plan")
                await pilot.press("escape", "escape")
                await until(pilot, lambda: not isinstance(app.screen, FixScreen), "the fix screen to close")

                assert app.return_code is None and app.is_running
    finally:
        holder.close()


async def test_an_engine_error_message_is_shown_escaped_in_the_banner(d: Path) -> None:
    world = FakeWorld(version=None, version_error=EVIL)
    # socktui keeps the first line of what the engine said (and adds its own advice on the next)
    said = EVIL.split("\n")[0]
    with FakeEngine(d / "e.sock", world) as fake:
        app = SocktuiApp(make_session(Options(host=fake.url)), live=False)
        async with app.run_test(size=SIZE) as pilot:
            banner = app.query_one("#banner", Static)
            await until(pilot, lambda: banner.display and printable(said) in str(banner.content), "the message")
            visible = await assert_nothing_raw(pilot, app, "banner")
            assert escaped_in(said, visible)
            await until(pilot, lambda: "engine unreachable" in log_text(app), "the log line")
            assert printable(said) in "".join(log_text(app).split())
            assert app.return_code is None and app.is_running


def test_check_text_output_escapes_everything_a_hostile_engine_and_paths_say(d: Path) -> None:
    world, stale, live = hostile_world(d)
    holder = listening_socket(live)
    try:
        with FakeEngine(d / "e.sock", world) as fake:
            proc = socktui_cli("check", "-H", fake.url, timeout=60)
    finally:
        holder.close()
    assert proc.returncode == 1, proc.stderr
    raw = sorted({repr(ch) for ch in proc.stdout if ch != "\n" and not ch.isprintable()})
    assert not raw, f"raw {raw} in the text output"
    for fragment in (EVIL, f"exited{TITLE}[/]", f"27.0{TITLE}[/]", stale.name):
        assert printable(fragment) in proc.stdout.replace("\n" + " " * 13, " "), fragment


# --------------------------------------------------------------------------- the real binary, the real bytes


@pytest.mark.timeout(90)
def test_the_real_binary_writes_no_hostile_byte_to_the_terminal(d: Path) -> None:
    import fcntl
    import struct
    import termios

    world, stale, live = hostile_world(d)
    holder = listening_socket(live)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "SOCKTUI_DEBUG", "TEXTUAL")}
    env.update(TERM="xterm-256color", LANG="C.UTF-8", XDG_CONFIG_HOME=str(d / "config"))
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    with FakeEngine(d / "e.sock", world) as fake:
        proc = subprocess.Popen(
            [sys.executable, "-m", "socktui.cli", "-H", fake.url],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        raw = b""
        try:
            end = time.monotonic() + 40
            # The log's "checked 1 container" comes after the first look: the frame with every hostile string.
            while time.monotonic() < end and b"checked 1 container" not in CSI_BYTES.sub(b"", raw):
                if select.select([master], [], [], 0.1)[0]:
                    raw += os.read(master, 1 << 16)
            assert b"checked 1 container" in CSI_BYTES.sub(b"", raw), raw[-3000:]
            os.write(master, b"q")
            while True:  # everything it writes until it exits and closes the terminal
                if not select.select([master], [], [], 15)[0]:
                    break
                try:
                    chunk = os.read(master, 1 << 16)
                except OSError:  # EIO: the last writer closed the pty
                    break
                if not chunk:
                    break
                raw += chunk
            proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            os.close(master)
            holder.close()
    assert proc.returncode == 0
    # Textual's own OSC 22 sets the mouse pointer's shape; it is the only OSC the app may write.
    raw = POINTER_SHAPE.sub(b"", raw)
    for bad in (b"\x1b]0;", b"\x1b]52;", b"\x07", b"\xc2\x9b", b"\x7f", "\u202e".encode(), b"\x1b]8;"):
        at = raw.find(bad)
        assert at < 0, f"{bad!r} reached the terminal: {raw[max(0, at - 200) : at + 50]!r}"
    assert printable(EVIL).encode() in CSI_BYTES.sub(b"", raw)


CSI_BYTES = re.compile(rb"\x1b\[[0-9;:?<>=]*[ -/]*[@-~]")
POINTER_SHAPE = re.compile(rb"\x1b\]22;[a-z-]*\x07")
