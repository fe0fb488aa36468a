"""``socktui demo``: it starts, shows every verdict it promises, its keys break things for real, a fix applies, and
afterwards nothing is left: no container, no directory, no daemon process, no mount, whether it ended with ``q``,
SIGTERM, or a SIGKILL of the TUI. A second run starts clean; the user's own daemon is never touched.

The in-process tests share one demo (module fixture) and each acts on a container of its own; the real-binary
tests run ``socktui demo`` under a pty, each in a root of its own. Every fixture removes its demo in ``finally``
(``teardown`` by the root's path), so a failing test leaves no daemon behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import OptionList, Static

from harness import engine_from_env, until
from socktui.demo.daemon import mountpoints_under, pids_mentioning
from socktui.demo.lab import Lab, missing_prerequisites
from socktui.demo.state import ENV_ROOT, DemoPaths, read_state, teardown
from socktui.model import ContainerReport, Verdict
from socktui.ui.demo import DemoApp
from socktui.ui.screens import FixScreen, HelpScreen
from socktui.ui.widgets import ContainerList, EventLog

# Generous: a demo makes a daemon and 13 containers, and this machine is shared (load averages of 100+ were seen).
pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]
STARTUP_SECONDS = 300.0
T = TypeVar("T")
ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|[@-Z\\-_])")
KNOWN_VERDICTS = {v.value for v in Verdict}


def needs_private_engine() -> None:
    choice = engine_from_env()
    if choice.kind != "private":
        # Under SOCKTUI_REQUIRE_ENGINE=1 (CI) a skip fails the run: the demo needs root and dockerd, as CI has.
        pytest.skip(f"the demo starts its own dockerd: {choice.reason}")


def fresh_root() -> DemoPaths:
    return DemoPaths(Path(f"/tmp/st-demo-{uuid.uuid4().hex[:8]}"))


def traces(paths: DemoPaths) -> dict[str, object]:
    """Whatever of a demo is still on the machine. Empty values everywhere means nothing is left."""
    root = str(paths.root)
    return {
        "directory": paths.root.exists(),
        "processes": pids_mentioning(root),
        "mounts": mountpoints_under(paths.root),
    }


def nothing_left(paths: DemoPaths) -> bool:
    return traces(paths) == {"directory": False, "processes": [], "mounts": []}


def wait_for(predicate: Callable[[], T], what: str, timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


# --------------------------------------------------------------------------- one demo for the in-process tests


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    needs_private_engine()
    paths = fresh_root()
    made = Lab(paths)
    try:
        made.open()
        yield made
    finally:
        made.close()
        teardown(paths)
        assert nothing_left(paths), traces(paths)


@pytest.fixture(autouse=True)
def audit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


def report_of(app: DemoApp, name: str) -> ContainerReport | None:
    shown = app.report.containers if app.report is not None else ()
    return next((c for c in shown if c.container.name == name), None)


def verdict_of(app: DemoApp, name: str) -> str | None:
    found = report_of(app, name)
    return found.worst.value if found is not None and found.worst is not None else None


def row_text(app: DemoApp, name: str) -> str:
    table = app.query_one(ContainerList)
    found = report_of(app, name)
    if found is None or found.container.id not in table.rows:
        return ""
    return " ".join(str(getattr(cell, "plain", cell)) for cell in table.get_row(found.container.id))


async def choose(pilot: Pilot[Any], app: DemoApp, name: str) -> None:
    found = await until(pilot, lambda: report_of(app, name), f"{name} in the report")
    table = app.query_one(ContainerList)
    await until(pilot, lambda: found.container.id in table.rows, f"{name} in the list")
    table.focus()
    table.move_cursor(row=table.get_row_index(found.container.id), animate=False)
    await until(pilot, lambda: app.selected_id == found.container.id, f"{name} selected")


def log_text(app: DemoApp) -> str:
    """The event log as one line of words: it wraps long lines at the pane's width."""
    return " ".join(" ".join(line.text.split()) for line in app.query_one(EventLog).lines)


async def test_the_demo_shows_every_verdict_it_promises(lab: Lab) -> None:
    promised = {story.expect for story in lab.stories}
    assert promised >= KNOWN_VERDICTS - {"unknown"}, promised  # unknown is the one it cannot stage as root
    app = DemoApp(lab)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.report is not None and app.monitor.armed, "the first look", timeout=120)
        assert app.session.engine.endpoint.url == lab.host
        for story in lab.stories:
            if story.expect in KNOWN_VERDICTS:
                await until(pilot, lambda s=story: verdict_of(app, s.container) == s.expect, f"{story} on screen")  # type: ignore[misc]
                assert row_text(app, story.container).startswith(story.expect), row_text(app, story.container)
        # What "unstartable" means, from the engine itself: Docker refused to start it again.
        legacy = lab.client.inspect_container("legacy")["State"]  # type: ignore[union-attr]
        assert not legacy["Running"] and "not a directory" in legacy["Error"], legacy
        assert "DEMO" in str(app.query_one("#topbar").content)  # type: ignore[attr-defined]
        assert "x kills a server" in log_text(app)
        assert log_text(app).count("looking at") == 1, "one first look, not one per class that handles on_mount"

        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        help_text = " ".join(str(getattr(w, "content", "")) for w in app.screen.query("Static"))
        assert "Demo keys" in help_text and "SIGKILL the selected mount's server" in help_text
        await pilot.press("escape")


@pytest.mark.parametrize("cols", [80, 100])
async def test_the_top_bar_fits_with_the_demo_badge_and_names_the_engine(lab: Lab, cols: int) -> None:
    """DEMO comes first and counts in the room the engine's label is given: nothing wraps out of the one-line bar."""
    app = DemoApp(lab)
    async with app.run_test(size=(cols, 24)) as pilot:
        await until(pilot, lambda: app.report is not None and app.monitor.armed, "the first look", timeout=120)
        bar = app.query_one("#topbar", Static)
        shown = bar.content
        assert isinstance(shown, Text)
        assert shown.plain.startswith("DEMO socktui ") and "Docker " in shown.plain, shown.plain
        assert shown.cell_len <= bar.size.width, f"{shown.plain!r} is wider than the bar ({bar.size.width})"
        if cols >= 100:
            assert shown.plain.endswith("/docker.sock"), shown.plain  # with room, the endpoint shows too


async def test_the_kill_key_turns_a_live_socket_stale_on_screen_and_s_brings_it_back(lab: Lab) -> None:
    app = DemoApp(lab)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.monitor.armed and verdict_of(app, "shop-api-1") == "live", "api live")
        await choose(pilot, app, "shop-api-1")
        server = lab.pool.running(lab.paths.srv / "api.sock")  # type: ignore[union-attr]
        assert server is not None
        await pilot.press("x")
        await until(pilot, lambda: row_text(app, "shop-api-1").startswith("stale"), "api stale on screen")
        assert not server.alive
        assert (lab.paths.srv / "api.sock").is_socket(), "a killed server leaves its socket file behind"
        assert f"killed the server of {lab.paths.srv / 'api.sock'} (pid {server.pid})" in log_text(app)

        await pilot.press("s")
        # The new server unlinks the stale file and binds a new inode: the running container keeps the old one.
        await until(pilot, lambda: row_text(app, "shop-api-1").startswith("detached"), "api detached on screen")


async def test_a_fix_applies_for_real_in_the_demo(lab: Lab, audit_home: Path) -> None:
    app = DemoApp(lab, wait_seconds=20)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.monitor.armed and verdict_of(app, "exporter") == "detached", "exporter detached")
        await choose(pilot, app, "exporter")
        before = lab.client.inspect_container("exporter")["State"]["StartedAt"]  # type: ignore[union-attr]
        await pilot.press("f")
        screen = await until(pilot, lambda: isinstance(app.screen, FixScreen) and app.screen, "the fix screen")
        options = screen.query_one("#fix-options", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        fix = next(i for i in ids if i in ("reattach-socket", "restart-container"))
        options.highlighted = ids.index(fix)
        await pilot.press("enter")
        await until(pilot, lambda: screen.stage == "preview", "the plan preview")
        await pilot.press("y")
        await until(pilot, lambda: screen.stage == "done", "the fix to finish", timeout=30)
        assert screen.result is not None and screen.result.status == "applied", screen.result
        await pilot.press("escape")
        await until(pilot, lambda: row_text(app, "exporter").startswith("live"), "exporter live on screen")
        if fix == "restart-container":
            assert lab.client.inspect_container("exporter")["State"]["StartedAt"] != before  # type: ignore[union-attr]


async def test_container_first_makes_docker_create_the_directory(lab: Lab) -> None:
    app = DemoApp(lab)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.monitor.armed and verdict_of(app, "batch") == "missing", "batch missing")
        await choose(pilot, app, "batch")
        await pilot.press("b")
        await until(pilot, lambda: row_text(app, "batch").startswith("shadowed"), "batch shadowed on screen")
        assert (lab.paths.srv / "batch.sock").is_dir()
        await until(pilot, lambda: "cannot bind and keeps trying" in log_text(app), "the demo's account of it")


def test_the_demo_never_touches_the_users_daemon(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A decoy "user daemon" that counts every connection made to it.
    decoy = tmp_path / "user-docker.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(decoy))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = listener.accept()
                accepted.append(conn)
                conn.close()

    counter = threading.Thread(target=count, daemon=True)
    counter.start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{decoy}")
    monkeypatch.setenv("DOCKER_CONTEXT", "nonexistent")
    try:
        app = DemoApp(lab)
        assert app.session.engine.endpoint.url == lab.host == f"unix://{lab.paths.socket}"
        assert app.session.engine.endpoint.source == "--host"
        report = app.session.full_check()
        assert report.engine.endpoint == lab.host
        assert {c.container.name for c in report.containers} >= {s.container for s in lab.stories}
    finally:
        stop.set()
        counter.join(timeout=5)
        listener.close()
    assert accepted == []


def test_missing_prerequisites_say_what_is_missing_and_how_to_get_it(tmp_path: Path) -> None:
    assert missing_prerequisites(euid=0, which=lambda _: "/usr/sbin/dockerd") == []
    dynamic = tmp_path / "busybox"
    shutil.copy("/bin/sh", dynamic)  # a dynamically linked binary stands in for a non-static busybox
    problems = missing_prerequisites(euid=1000, which=lambda _: None, busybox=dynamic)
    assert len(problems) == 3
    assert "needs root: run `sudo socktui demo` (or `sudo make demo`)" in problems[0]
    assert "`sudo apt-get install docker.io`" in problems[1]
    assert "dynamically linked" in problems[2] and "`sudo apt-get install busybox-static`" in problems[2]
    gone = missing_prerequisites(euid=0, which=lambda _: "/x", busybox=tmp_path / "none")
    assert len(gone) == 1 and "missing" in gone[0] and "busybox-static" in gone[0]


def test_the_real_command_without_root_says_so_and_changes_nothing(tmp_path: Path) -> None:
    paths = DemoPaths(tmp_path / "never")
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv comes with util-linux (.ci/run installs it)"
    env = {**os.environ, ENV_ROOT: str(paths.root), "PATH": "/nonexistent"}
    done = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "socktui.cli", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert "needs root: run `sudo socktui demo`" in done.stderr
    assert "`sudo apt-get install docker.io`" in done.stderr
    assert "Traceback" not in done.stderr
    assert not paths.root.exists()


# --------------------------------------------------------------------------- the real binary under a pty


class Tty:
    """``socktui demo`` in a pseudo-terminal of its own. A thread reads its output all the time: a TUI whose
    terminal is not read blocks on its next write, and would never get to exit."""

    def __init__(
        self,
        paths: DemoPaths,
        cols: int = 100,
        rows: int = 30,
        options: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full = {k: v for k, v in os.environ.items() if k not in ("TEXTUAL", "NO_COLOR")}
        private = str(paths.root) + "-st"
        full.update({ENV_ROOT: str(paths.root), "TERM": "xterm-256color", "XDG_STATE_HOME": private})
        full.update({"XDG_CONFIG_HOME": private, **(env or {})})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "socktui.cli", *options, "demo"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=full,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self._raw = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                if not select.select([self.master], [], [], 0.2)[0]:
                    continue
                chunk = os.read(self.master, 65536)
            except (OSError, ValueError):
                return
            if not chunk:
                return
            with self._lock:
                self._raw += chunk

    @property
    def raw(self) -> bytes:
        with self._lock:
            return bytes(self._raw)

    @property
    def text(self) -> bytes:
        return ANSI.sub(b"", self.raw)

    def read_until(self, text: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"socktui demo exited {self.proc.returncode} before {text!r}: {self.text[-1500:]!r}"
                )
            if time.monotonic() >= deadline:
                raise AssertionError(f"{text!r} not shown within {timeout:.0f} s; output tail: {self.text[-1500:]!r}")
            time.sleep(0.1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        with contextlib.suppress(OSError):
            os.close(self.master)
        self._reader.join(timeout=5)


@pytest.fixture
def demo_tty() -> Iterator[tuple[Tty, DemoPaths]]:
    needs_private_engine()
    paths = fresh_root()
    tty = Tty(paths)
    try:
        tty.read_until(b"DEMO", timeout=STARTUP_SECONDS)  # the top bar, once the first look is in
        tty.read_until(b" problem", timeout=STARTUP_SECONDS)  # (its other totals give way at 80 columns)
        assert read_state(paths) is not None
        yield tty, paths
    finally:
        tty.close()
        teardown(paths)
        shutil.rmtree(str(paths.root) + "-st", ignore_errors=True)


def test_after_q_nothing_is_left(demo_tty: tuple[Tty, DemoPaths]) -> None:
    tty, paths = demo_tty
    state = read_state(paths)
    assert state is not None and state.daemon is not None and state.daemon.alive
    containers = list(state.containers)
    assert len(containers) >= 12
    assert traces(paths)["processes"], "while it runs, the demo's daemon and servers are there"
    os.write(tty.master, b"q")
    assert tty.proc.wait(timeout=STARTUP_SECONDS) == 0
    tty.read_until(b"removed", timeout=10)
    assert nothing_left(paths), traces(paths)
    assert not state.daemon.alive
    assert not any(p.alive for p in state.servers.values())


def test_after_ctrl_c_nothing_is_left(demo_tty: tuple[Tty, DemoPaths]) -> None:
    """Ctrl+C in the terminal is a key for the TUI (raw mode, no SIGINT): the demo ends as on ``q``."""
    tty, paths = demo_tty
    os.write(tty.master, b"\x03")
    assert tty.proc.wait(timeout=STARTUP_SECONDS) == 0
    tty.read_until(b"removed", timeout=10)
    assert nothing_left(paths), traces(paths)


def test_after_sigterm_nothing_is_left(demo_tty: tuple[Tty, DemoPaths]) -> None:
    tty, paths = demo_tty
    tty.proc.send_signal(signal.SIGTERM)
    tty.proc.wait(timeout=STARTUP_SECONDS)
    time.sleep(0.3)  # the last bytes in the pty, for the reader thread
    assert b"removing the demo" in tty.text, tty.text[-800:]
    assert nothing_left(paths), traces(paths)


def test_after_the_tui_is_killed_the_supervisor_removes_everything(demo_tty: tuple[Tty, DemoPaths]) -> None:
    tty, paths = demo_tty
    state = read_state(paths)
    assert state is not None and state.supervisor is not None and state.supervisor.alive
    tty.proc.kill()  # SIGKILL: no finally, no atexit, nothing of the TUI runs again
    tty.proc.wait(timeout=10)
    wait_for(lambda: nothing_left(paths), "the supervisor to remove the demo", timeout=STARTUP_SECONDS)
    assert state.daemon is not None and not state.daemon.alive
    wait_for(lambda: not state.supervisor.alive, "the supervisor to exit", timeout=10)  # type: ignore[union-attr]


MOUSE_ON = (b"\x1b[?1000h", b"\x1b[?1003h", b"\x1b[?1006h")


def test_the_demo_takes_the_terminal_options_no_mouse_and_ascii() -> None:
    """``socktui --no-mouse demo`` leaves the mouse to the terminal, and a locale that is not UTF-8 gets ASCII, as
    the ordinary TUI does (tests/reliability/test_terminal.py)."""
    needs_private_engine()
    paths = fresh_root()
    tty = Tty(paths, cols=80, rows=24, options=("--no-mouse",), env={"LC_ALL": "C"})
    try:
        tty.read_until(b"DEMO", timeout=STARTUP_SECONDS)
        tty.read_until(b" problem", timeout=STARTUP_SECONDS)
        tty.read_until(b"is not UTF-8", timeout=30)  # the app's sentence in the log
        assert not [seq for seq in MOUSE_ON if seq in tty.raw]
        assert b"+- events -" in tty.text and "╭".encode() not in tty.raw
        os.write(tty.master, b"q")
        assert tty.proc.wait(timeout=STARTUP_SECONDS) == 0
    finally:
        tty.close()
        teardown(paths)
        shutil.rmtree(str(paths.root) + "-st", ignore_errors=True)
    assert nothing_left(paths), traces(paths)


def test_an_unknown_theme_is_refused_before_the_demo_makes_anything(tmp_path: Path) -> None:
    paths = DemoPaths(tmp_path / "never")
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv comes with util-linux (.ci/run installs it)"
    done = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "socktui.cli"]
        + ["--theme", "no-such-theme", "demo"],
        capture_output=True,
        text=True,
        env={**os.environ, ENV_ROOT: str(paths.root)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert "no theme 'no-such-theme'" in done.stderr and "nord" in done.stderr, done.stderr
    assert not paths.root.exists()


def test_a_second_run_starts_clean_after_everything_was_killed(tmp_path: Path) -> None:
    needs_private_engine()
    paths = fresh_root()
    # A first demo, then the worst crash there is: its owner *and* its supervisor are SIGKILLed.
    first = subprocess.Popen(
        [sys.executable, "-c", OPEN_AND_WAIT, str(paths.root)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "open", "the first demo did not open"
        state = read_state(paths)
        assert state is not None and state.supervisor is not None and state.daemon is not None
        os.kill(state.supervisor.pid, signal.SIGKILL)
        first.kill()
        first.wait(timeout=10)
        wait_for(lambda: not state.supervisor.alive, "the supervisor to die", timeout=10)  # type: ignore[union-attr]
        assert state.daemon.alive, "with both dead, the daemon is left running: the next start must clean it"
        said: list[str] = []
        second = Lab(paths, said.append)
        try:
            second.open()
            assert any("removing what an earlier demo left" in s for s in said), said
            assert not state.daemon.alive
            assert not any(p.alive for p in state.servers.values())
            again = read_state(paths)
            assert again is not None and again.owner.pid == os.getpid()
            assert {s.container for s in second.stories} <= {
                c["Names"][0].lstrip("/") for c in second.client.containers(all=True)
            }
        finally:
            second.close()
        assert nothing_left(paths), traces(paths)
    finally:
        if first.poll() is None:
            first.kill()
        teardown(paths)


def test_a_second_demo_is_refused_while_one_runs(lab: Lab) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "socktui.cli", "demo"],
        env={**os.environ, ENV_ROOT: str(lab.paths.root)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert f"another socktui demo is running (pid {os.getpid()})" in done.stderr
    state = read_state(lab.paths)
    assert state is not None and state.owner.pid == os.getpid()
    assert state.daemon is not None and state.daemon.alive, "the running demo is left alone"


OPEN_AND_WAIT = """
import sys, time
from pathlib import Path
from socktui.demo.lab import Lab
from socktui.demo.state import DemoPaths
Lab(DemoPaths(Path(sys.argv[1]))).open()
print("open", flush=True)
time.sleep(600)
"""
