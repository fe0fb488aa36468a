"""The app driven with Pilot against the real private daemon: press what a user presses, check what the app shows.

Each test builds its situation for real (containers, bind mounts, socket servers in their own processes), starts
``SocktuiApp(make_session(...))`` the way the CLI does, and waits for conditions by polling the running app, never
by sleeping a fixed time.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, TypeVar

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import OptionList, Static

from harness import TRAP, ContainerFactory, Engine, PrivateDaemon, SocketServers, engine_from_env, unique_name, until
from socktui.model import ContainerReport, MountReport, Verdict
from socktui.session import Options, make_session
from socktui.ui.app import SocktuiApp
from socktui.ui.commands import COMMANDS
from socktui.ui.messages import Updated
from socktui.ui.screens import ConnectScreen, FixScreen, HelpScreen
from socktui.ui.widgets import ContainerList, EventLog, MountInfo, MountTable

# Stops at once on SIGTERM (``sleep`` as PID 1 ignores it, and docker stop would wait its whole timeout).
SIZE = (80, 24)
T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def audit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Applied fixes append to the audit log under XDG_STATE_HOME: keep it out of the real home."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


def plain(widget: Static) -> str:
    return str(widget.content)


def log_text(app: SocktuiApp) -> str:
    """What the event log shows, with wrapped lines joined back (wrapping breaks only at spaces)."""
    return " ".join(" ".join(strip.text.split()) for strip in app.query_one(EventLog).lines)


def container_report(app: SocktuiApp, cid: str) -> ContainerReport | None:
    if app.report is None:
        return None
    return next((c for c in app.report.containers if c.container.id == cid), None)


def mount_verdict(app: SocktuiApp, cid: str, destination: str) -> Verdict | None:
    report = container_report(app, cid)
    if report is None:
        return None
    return next((m.verdict for m in report.mounts if m.mount.destination == destination), None)


def watching(app: SocktuiApp, directory: Path) -> bool:
    """The Monitor's file watcher watches this directory now."""
    sources = app.monitor.sources
    return sources is not None and str(directory) in sources.dirs.watched


def snapshot_mount(app: SocktuiApp, cid: str, destination: str) -> MountReport | None:
    for c in app.report.containers if app.report else ():
        if c.container.id == cid:
            return next((m for m in c.mounts if m.mount.destination == destination), None)
    return None


async def loaded(pilot: Pilot[Any], app: SocktuiApp, *cids: str) -> None:
    await until(
        pilot,
        lambda: all(container_report(app, cid) is not None for cid in cids),
        f"the first report with {len(cids)} test container(s)",
    )


async def select(pilot: Pilot[Any], app: SocktuiApp, cid: str) -> None:
    """Move the container list's cursor to ``cid`` with the keys a user would press."""
    table = app.query_one(ContainerList)
    assert cid in table.rows, f"{cid[:12]} is not listed"
    await until(pilot, lambda: app.focused is table, "the container list to have focus")
    target = table.get_row_index(cid)
    key = "down" if target > table.cursor_row else "up"
    for _ in range(abs(target - table.cursor_row)):
        await pilot.press(key)
    await until(pilot, lambda: app.selected_id == cid, f"{cid[:12]} to be selected")


def rendered(widget: Widget) -> str:
    """The lines the widget draws on the screen now."""
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


# --------------------------------------------------------------------------- a. the shadow story


@pytest.mark.engine
async def test_shadowed_socket_fixed_from_the_app_becomes_live(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path, audit_home: Path
) -> None:
    # /run is a tmpfs, so the mount point Docker makes inside the container is fresh at every start and the
    # stopped container can be started again on the socket (see the next test for when it cannot).
    sock = d / "app.sock"
    cid = containers.run(binds=[f"{sock}:/run/app.sock"], command=TRAP, name=unique_name(), tmpfs={"/run": ""})
    assert sock.is_dir(), "docker should have created a directory for the missing -v source"

    app = SocktuiApp(make_session(Options(host=engine.host)), wait_seconds=20)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app, cid)
        assert mount_verdict(app, cid, "/run/app.sock") is Verdict.SHADOWED
        assert app.query_one(ContainerList).get_row_index(cid) == 0, "problems sort first; shadowed is the worst"
        await select(pilot, app, cid)
        assert "shadowed" in plain(app.query_one(MountInfo))

        await pilot.press("f")
        screen = await until(pilot, lambda: isinstance(app.screen, FixScreen) and app.screen, "the fix screen")
        options = screen.query_one("#fix-options", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids[0] == "remove-shadow-dir", ids

        await pilot.press("enter")
        await until(pilot, lambda: screen.stage == "preview", "the plan preview")
        assert screen.plan is not None and screen.plan.fix.id == "remove-shadow-dir"
        preview = plain(screen.query_one("#fix-plan", Static))
        assert "rmdir" in preview
        assert "y applies" in plain(screen.query_one("#fix-hint", Static))
        assert sock.is_dir(), "previewing must change nothing"

        await pilot.press("y")
        await until(pilot, lambda: not sock.exists(), "the fix to remove the shadow directory")
        server = sockserver.start(sock)
        await until(pilot, lambda: screen.stage == "done", "the fix to finish", timeout=30)
        assert screen.result is not None and screen.result.status == "applied", screen.result
        assert "applied" in plain(screen.query_one("#fix-hint", Static))

        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, FixScreen), "the fix screen to close")
        await until(
            pilot,
            lambda: mount_verdict(app, cid, "/run/app.sock") is Verdict.LIVE,
            "the app's report to say live",
            timeout=15,
        )
        mount = snapshot_mount(app, cid, "/run/app.sock")
        assert mount is not None and mount.verdict is Verdict.LIVE
        assert mount.listener is not None and mount.listener.pid == server.pid
        table = app.query_one(MountTable)
        await until(pilot, lambda: "live" in rendered(table), "the mount table to draw live")
        assert str(sock) in rendered(table) and "shadowed" not in rendered(table)
        assert rendered(app.query_one(MountInfo)).startswith("live")
        assert "fix remove-shadow-dir applied" in log_text(app)
        assert engine.client.inspect_container(cid)["State"]["Running"], "the fix starts the container again"

    entries = [json.loads(line) for line in (audit_home / "socktui/actions.log").open()]
    assert [(e["fix"], e["result"]) for e in entries] == [("remove-shadow-dir", "applied")]


@pytest.mark.engine
async def test_shadow_fix_repairs_the_running_container_in_place(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    # No tmpfs: the first start made /run/app.sock a directory in the container's own writable layer, so stopping
    # and starting it would fail. The fix list marks remove-shadow-dir LIVE: the container keeps running while the
    # host directory goes, and gets the socket mounted where its directory was.
    sock = d / "app.sock"
    name = unique_name()
    cid = containers.run(binds=[f"{sock}:/run/app.sock"], command=TRAP, name=name)
    started = engine.client.inspect_container(cid)["State"]["StartedAt"]

    app = SocktuiApp(make_session(Options(host=engine.host)), wait_seconds=20)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app, cid)
        await select(pilot, app, cid)
        await pilot.press("f")
        screen = await until(pilot, lambda: isinstance(app.screen, FixScreen) and app.screen, "the fix screen")
        options = screen.query_one("#fix-options", OptionList)
        first = str(options.get_option_at_index(0).prompt)
        assert first.startswith("remove-shadow-dir") and " LIVE " in first, first
        assert "keep running" in plain(screen.query_one("#fix-hint", Static))
        await pilot.press("enter")
        await until(pilot, lambda: screen.stage == "preview", "the plan preview")
        assert "keeps running" in plain(screen.query_one("#fix-plan", Static))
        await pilot.press("y")
        await until(pilot, lambda: not sock.exists(), "the fix to remove the shadow directory")
        assert engine.client.inspect_container(cid)["State"]["Running"], "nobody is stopped"
        server = sockserver.start(sock)
        await until(pilot, lambda: screen.stage == "done", "the fix to finish", timeout=30)
        assert screen.result is not None and screen.result.status == "applied", screen.result
        progress = " ".join(plain(screen.query_one("#fix-progress", Static)).split())
        assert "kept running" in progress and "[STOP]" not in progress

        await pilot.press("escape")
        await until(pilot, lambda: "fix remove-shadow-dir applied" in log_text(app), "the result in the log")
        await until(
            pilot,
            lambda: mount_verdict(app, cid, "/run/app.sock") is Verdict.LIVE,
            "the app's report to say live",
            timeout=15,
        )
        mount = snapshot_mount(app, cid, "/run/app.sock")
        assert mount is not None and mount.listener is not None and mount.listener.pid == server.pid
        assert engine.client.inspect_container(cid)["State"]["StartedAt"] == started


@pytest.mark.engine
async def test_the_fix_list_marks_which_fixes_keep_the_container_running(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Detached: reattach-socket keeps the container running (LIVE), restart-container restarts it (STOPS),
    mount-parent-dir is a snippet (advice). Where live repair is not possible, reattach-socket restarts: STOPS."""
    sock = d / "app.sock"
    first = sockserver.start(sock)
    cid = containers.run(binds=[f"{sock}:/run/app.sock"], command=TRAP, name=unique_name())
    first.stop()
    sockserver.start(sock)  # a new inode: the running container still holds the old one

    async def marks() -> dict[str, str]:
        app = SocktuiApp(make_session(Options(host=engine.host)), live=False)
        async with app.run_test(size=SIZE) as pilot:
            await loaded(pilot, app, cid)
            assert mount_verdict(app, cid, "/run/app.sock") is Verdict.DETACHED
            await select(pilot, app, cid)
            await pilot.press("f")
            screen = await until(pilot, lambda: isinstance(app.screen, FixScreen) and app.screen, "the fix screen")
            options = screen.query_one("#fix-options", OptionList)
            assert "STOPS stops or restarts them" in plain(screen.query_one("#fix-hint", Static))
            found: dict[str, str] = {}
            for i in range(options.option_count):
                fix, effect, *_ = str(options.get_option_at_index(i).prompt).split()
                found[fix] = effect
            return found

    live = await marks()
    assert (live["reattach-socket"], live["restart-container"], live["mount-parent-dir"]) == ("LIVE", "STOPS", "advice")
    monkeypatch.setenv("SOCKTUI_NO_LIVE_REPAIR", "1")
    assert (await marks())["reattach-socket"] == "STOPS"


# --------------------------------------------------------------------------- b. test connect on a stale socket


@pytest.mark.engine
@pytest.mark.parametrize("layout", ["file", "socket-dir"])
async def test_test_connect_on_a_stale_socket_shows_econnrefused(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path, layout: str
) -> None:
    sock = d / "app.sock"
    server = sockserver.start(sock)
    if layout == "file":
        binds, destination = [f"{sock}:/run/app.sock"], "/run/app.sock"
    else:
        binds, destination = [f"{d}:/shared"], "/shared"
    cid = containers.run(binds=binds, command=TRAP, name=unique_name())
    server.kill()
    assert sock.is_socket(), "SIGKILL leaves the socket file behind"

    app = SocktuiApp(make_session(Options(host=engine.host)))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app, cid)
        report = container_report(app, cid)
        assert report is not None and report.worst is Verdict.STALE, report
        await select(pilot, app, cid)

        await pilot.press("t")
        screen = await until(pilot, lambda: isinstance(app.screen, ConnectScreen) and app.screen, "the test screen")
        summary = plain(screen.query_one("#connect-summary", Static))
        assert "ECONNREFUSED" in summary
        assert f"host {sock}: ECONNREFUSED" in summary
        await until(pilot, lambda: f"test connect {sock}: ECONNREFUSED" in log_text(app), "the test in the log")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ConnectScreen), "the test screen to close")
        assert "last test connect" in plain(app.query_one(MountInfo))
        assert mount_verdict(app, cid, destination) is Verdict.STALE


# --------------------------------------------------------------------------- c. a bind shows in the log at once


@pytest.mark.engine
async def test_a_new_socket_in_a_shared_directory_is_logged_with_its_listener(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    sockserver.start(d / "first.sock")
    cid = containers.run(binds=[f"{d}:/shared"], command=TRAP, name=unique_name())

    app = SocktuiApp(make_session(Options(host=engine.host)))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app, cid)
        assert mount_verdict(app, cid, "/shared") is Verdict.OK
        await until(pilot, lambda: watching(app, d), "the watcher to watch the directory")
        assert "new.sock" not in log_text(app)

        server = sockserver.start(d / "new.sock")
        # How fast is bench/'s business (a timed assertion on a shared machine is noise): here, that it shows.
        await until(pilot, lambda: "new.sock" in log_text(app), "new.sock in the event log")
        await until(
            pilot,
            lambda: f"{d / 'new.sock'} bound by pid {server.pid}" in log_text(app),
            "the log to name the binding process",
            timeout=5,
        )


@pytest.mark.engine
async def test_a_socket_leaving_a_shared_directory_is_logged_by_name(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    sockserver.start(d / "first.sock")
    leaving = sockserver.start(d / "leaving.sock")
    cid = containers.run(binds=[f"{d}:/shared"], command=TRAP, name=unique_name())
    app = SocktuiApp(make_session(Options(host=engine.host)))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app, cid)
        await until(pilot, lambda: watching(app, d), "the watcher")
        leaving.stop()  # SIGTERM: the server removes its own socket
        assert not (d / "leaving.sock").exists()
        await until(
            pilot,
            lambda: (m := snapshot_mount(app, cid, "/shared")) is not None and len(m.sockets) == 1,
            "the app to see one socket left",
            timeout=5,
        )
        # The log lines of a change arrive in the same Update as the row, and are written first: no wait needed.
        text = log_text(app)
        assert "ok → ok" not in text, text
        assert "leaving.sock" in text, text


@pytest.mark.engine
async def test_long_log_lines_wrap_inside_the_log_at_80_columns(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    sockserver.start(d / "first.sock")
    cid = containers.run(binds=[f"{d}:/shared"], command=TRAP, name=unique_name())
    app = SocktuiApp(make_session(Options(host=engine.host)))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app, cid)
        await until(pilot, lambda: watching(app, d), "the watcher")
        server = sockserver.start(d / "new.sock")
        # "HH:MM:SS <dir>/new.sock bound by pid N <python> <sockserver.py> <path>": longer than the log is wide.
        await until(pilot, lambda: f"bound by pid {server.pid}" in log_text(app), "the bind in the log")
        await pilot.pause(0.1)
        log = app.query_one(EventLog)
        assert log.virtual_size.width <= log.scrollable_content_region.width
        assert not log.show_horizontal_scrollbar


# --------------------------------------------------------------------------- d. read-only refuses f


@pytest.mark.engine
async def test_read_only_refuses_to_open_the_fix_screen(engine: Engine, containers: ContainerFactory, d: Path) -> None:
    sock = d / "app.sock"
    cid = containers.run(binds=[f"{sock}:/run/app.sock"], command=TRAP, name=unique_name())
    before = sock.lstat()

    app = SocktuiApp(make_session(Options(host=engine.host, read_only=True)))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await loaded(pilot, app, cid)
        assert "read-only" in plain(app.query_one("#topbar", Static))
        assert mount_verdict(app, cid, "/run/app.sock") is Verdict.SHADOWED
        await select(pilot, app, cid)

        await pilot.press("f")
        # The refusal is logged by the very handler that would have opened the fix screen: no wait needed after it.
        await until(pilot, lambda: "fix refused: read-only mode" in log_text(app), "the refusal in the log")
        assert not isinstance(app.screen, FixScreen)
        assert not app.screen_stack[1:], app.screen_stack
        assert any("Read-only" in str(n.message) for n in app._notifications), list(app._notifications)

    after = sock.lstat()
    assert sock.is_dir() and (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    assert engine.client.inspect_container(cid)["State"]["Running"]


# --------------------------------------------------------------------------- e. the filter


@pytest.mark.engine
async def test_filter_narrows_the_list_and_escape_clears_it(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    alpha = containers.run(binds=[f"{d}/a.sock:/run/a.sock"], command=TRAP, name=f"st-alpha-{tag}")
    beta = containers.run(command=TRAP, name=f"st-beta-{tag}")

    app = SocktuiApp(make_session(Options(host=engine.host)))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app, alpha, beta)
        table = app.query_one(ContainerList)
        everyone = table.row_count
        assert everyone >= 2

        await pilot.press("slash")
        field = app.query_one("#filter")
        await until(pilot, lambda: field.display and app.focused is field, "the filter field")
        await pilot.press(*f"beta-{tag}")
        await until(pilot, lambda: table.row_count == 1, "the list to narrow to one row")
        assert table.get_row_index(beta) == 0
        await until(pilot, lambda: app.selected_id == beta, "the remaining row to be selected")

        await pilot.press("escape")
        await until(pilot, lambda: table.row_count == everyone, "the whole list back")
        assert not field.display
        assert app.focused is table
        assert app.needle == ""


# --------------------------------------------------------------------------- f. the engine away and back


@pytest.mark.engine
async def test_engine_banner_shows_while_the_engine_is_away_and_clears_when_it_is_back() -> None:
    choice = engine_from_env()
    if choice.kind != "private":
        pytest.skip(f"needs to start its own private dockerd: {choice.reason}")
    where = Path(tempfile.mkdtemp(prefix="st-"))
    endpoint = f"unix://{where / 'docker.sock'}"
    # dockerd listens on every --host given: its own socket (which the harness waits on) and this fixed one.
    daemon = PrivateDaemon(extra_args=["--host", endpoint])
    app = SocktuiApp(make_session(Options(host=endpoint)))
    try:
        async with app.run_test(size=SIZE) as pilot:
            banner = app.query_one("#banner", Static)
            await until(pilot, lambda: banner.display, "the banner while nothing listens")
            assert endpoint in plain(banner)
            assert "Retrying" in plain(banner)
            assert "engine unreachable" in log_text(app)

            await asyncio.to_thread(daemon.start)
            await until(pilot, lambda: not banner.display, "the banner to clear once the engine answers", timeout=15)
            await until(pilot, lambda: app.report is not None, "a report from the engine")
            await until(pilot, lambda: "engine reachable again" in log_text(app), "the recovery in the log")
            await until(pilot, lambda: app.monitor.armed, "the live sources to start")

            await asyncio.to_thread(daemon.stop)
            await until(pilot, lambda: banner.display, "the banner once the engine goes away", timeout=15)
            await until(pilot, lambda: endpoint in plain(banner), "the banner to name the engine", timeout=5)
            assert "Retrying" in plain(banner)
    finally:
        await asyncio.to_thread(daemon.stop)
        shutil.rmtree(where, ignore_errors=True)


@pytest.mark.engine
async def test_the_banner_names_the_engine_as_soon_as_it_goes_away() -> None:
    choice = engine_from_env()
    if choice.kind != "private":
        pytest.skip(f"needs to start its own private dockerd: {choice.reason}")
    problems: list[str] = []

    def hook(message: object) -> None:
        if isinstance(message, Updated) and message.update.engine_problem:
            problems.append(message.update.engine_problem)

    daemon = PrivateDaemon()
    await asyncio.to_thread(daemon.start)
    try:
        endpoint = daemon.host
        app = SocktuiApp(make_session(Options(host=endpoint)))
        async with app.run_test(size=SIZE, message_hook=hook) as pilot:
            await until(pilot, lambda: app.monitor.armed, "the live sources to start")
            assert problems == []
            await asyncio.to_thread(daemon.stop)
            await until(pilot, lambda: problems, "the app to hear that the engine went away", timeout=15)
            assert endpoint in problems[0], problems[0]
    finally:
        await asyncio.to_thread(daemon.stop)


# --------------------------------------------------------------------------- g. help


@pytest.mark.engine
async def test_help_lists_every_command(engine: Engine) -> None:
    app = SocktuiApp(make_session(Options(host=engine.host)), live=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.report is not None, "the first report")
        await pilot.press("question_mark")
        screen = await until(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen, "the help screen")
        text = "\n".join(plain(s) for s in screen.query(Static))
        shown = [c for c in COMMANDS if c.show]
        assert shown
        for c in shown:
            assert c.help in text, c
            assert f"  {c.key_display or c.key} " in text, c
        for verdict in Verdict:
            assert f"  {verdict.value} " in text, verdict
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "the help screen to close")


# --------------------------------------------------------------------------- h. the core stays free of Textual

PROGRAM = """
import importlib, json, pkgutil, sys
import socktui
found = pkgutil.walk_packages(socktui.__path__, "socktui.")
core = sorted(m.name for m in found if not m.name.startswith("socktui.ui") and not m.name.endswith("__main__"))
for name in core:
    importlib.import_module(name)
ui = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
print(json.dumps({"core": core, "ui": ui}))
"""


def test_every_core_module_imports_without_textual() -> None:
    # tests/unit/test_core_imports_no_textual.py names its modules; this walks the package, so a new core module
    # (session and watch are not in that list) cannot slip past.
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"socktui.live", "socktui.session", "socktui.sources.dirs", "socktui.cli.main", "socktui.model"} <= set(
        result["core"]
    )
    assert result["ui"] == []
