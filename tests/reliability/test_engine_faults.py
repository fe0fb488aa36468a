"""The engine misbehaves: it goes away mid-session, answers slowly or never, refuses us, or speaks an odd API version.

What must hold every time: ``socktui check`` ends (exit 2 with the endpoint, what went wrong and what to do, never a
traceback and never a hang), and the TUI keeps answering keys, says what is going on, and loses nothing it showed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import docker
import pytest
from reliability_support import (
    TRAP,
    FakeEngine,
    FakeWorld,
    NonRoot,
    UnixProxy,
    api_container,
    api_inspect,
    log_lines,
    log_text,
    socktui_cli,
    unique_name,
    until,
    validate_document,
)
from textual.widgets import Static
from textual.worker import WorkerState

from harness import ContainerFactory, Engine, PrivateDaemon, build_test_image, engine_from_env
from socktui import cli
from socktui.engine import Engine as SocktuiEngine
from socktui.session import Options, make_session
from socktui.ui.app import SocktuiApp
from socktui.ui.screens import HelpScreen
from socktui.ui.widgets import ContainerList

SIZE = (80, 24)


# --------------------------------------------------------------------------- stops mid-session and comes back


class BouncingDaemon(PrivateDaemon):
    """A private dockerd that can be stopped and started again on the same data root (its containers survive)."""

    def down(self) -> None:
        assert self._proc is not None
        self._argv = Path(f"/proc/{self._proc.pid}/cmdline").read_bytes().split(b"\0")[:-1]
        self._proc.terminate()
        self._proc.wait(timeout=30)

    def up(self) -> None:
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_up()


@pytest.mark.engine
@pytest.mark.timeout(120)
async def test_engine_stops_mid_session_and_comes_back_with_nothing_lost(d: Path) -> None:
    choice = engine_from_env()
    if choice.kind != "private":
        pytest.skip(f"needs to start and stop its own dockerd: {choice.reason}")
    endpoint = f"unix://{d / 'docker.sock'}"
    daemon = BouncingDaemon(extra_args=["--host", endpoint])
    await asyncio.to_thread(daemon.start)
    try:
        client = docker.APIClient(base_url=endpoint, version="auto", timeout=30)
        image = await asyncio.to_thread(build_test_image, client)
        name = unique_name()
        host_config = client.create_host_config(network_mode="none", binds=[f"{d / 'app.sock'}:/run/app.sock"])
        cid = client.create_container(image=image, command=TRAP, name=name, host_config=host_config)["Id"]
        client.start(cid)
        client.close()

        app = SocktuiApp(make_session(Options(host=endpoint)))
        async with app.run_test(size=SIZE) as pilot:
            banner = app.query_one("#banner", Static)
            table = app.query_one(ContainerList)
            await until(pilot, lambda: app.monitor.armed and cid in table.rows, "the first report and live sources")
            await until(pilot, lambda: "checked" in log_text(app), "the first check in the log")
            before = log_lines(app)

            await asyncio.to_thread(daemon.down)
            await until(pilot, lambda: banner.display, "the banner once the engine is gone", timeout=20)
            assert endpoint in str(banner.content)
            assert "Retrying" in str(banner.content)
            await until(pilot, lambda: "engine unreachable" in log_text(app), "the outage in the log")
            # The list keeps what it knew: the container is still shown while the engine is away.
            assert cid in table.rows
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help to open while the engine is away")
            await pilot.press("escape")

            await asyncio.to_thread(daemon.up)
            await until(pilot, lambda: not banner.display, "the banner to clear", timeout=30)
            await until(pilot, lambda: "engine reachable again" in log_text(app), "the recovery in the log")
            # The list recovered: dockerd stopped the container when it shut down, and the new look says so.
            await until(
                pilot,
                lambda: (
                    app.report is not None
                    and any(c.container.id == cid and c.container.state == "exited" for c in app.report.containers)
                ),
                "the list to show the container as the engine sees it now",
                timeout=20,
            )
            # The event stream recovered too: a start made now reaches the log.
            client = docker.APIClient(base_url=endpoint, version="auto", timeout=30)
            try:
                await asyncio.to_thread(client.start, cid)
            finally:
                client.close()
            await until(pilot, lambda: f"{name} started" in log_text(app), "the start event after the outage", 20)
            await until(
                pilot,
                lambda: (
                    app.report is not None
                    and any(c.container.id == cid and c.container.running for c in app.report.containers)
                ),
                "the row to show the container running again",
            )
            # Nothing shown before the outage was lost from the log.
            assert log_lines(app)[: len(before)] == before
    finally:
        await asyncio.to_thread(daemon.stop)


# --------------------------------------------------------------------------- answers slowly, or never


def _container_with_a_file_mount(containers: ContainerFactory, d: Path) -> str:
    (d / "notes.sock").write_text("not a socket\n")
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{d / 'notes.sock'}:/run/notes.sock"])
    return name


@pytest.mark.engine
@pytest.mark.timeout(60)
def test_check_through_a_slow_engine_waits_and_answers(engine: Engine, containers: ContainerFactory, d: Path) -> None:
    name = _container_with_a_file_mount(containers, d)
    with UnixProxy(d / "slow.sock", engine.host, delay=0.3) as proxy:
        proc = socktui_cli("check", "--json", "-H", proxy.url, name, timeout=50)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert validate_document(doc) == []
    [c] = doc["containers"]
    assert (c["name"], c["mounts"][0]["verdict"]) == (name, "not-socket")
    assert proxy.accepted >= 1  # it really went through the slow path


@pytest.mark.timeout(60)
def test_check_against_an_engine_that_never_answers_ends_with_exit_2(
    d: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docker-py's timeout (10 s for the CLI; 2 s here, to keep the suite quick) bounds every request: check says so
    and exits, it never hangs."""
    real = SocktuiEngine.from_options.__func__  # type: ignore[attr-defined]

    def quick(cls: type[SocktuiEngine], host: str | None = None, context: str | None = None, timeout: int = 10) -> Any:
        assert timeout == 10  # the CLI relies on the default: this is the bound being shortened
        return real(cls, host, context, timeout=2)

    monkeypatch.setattr(SocktuiEngine, "from_options", classmethod(quick))
    with UnixProxy(d / "stuck.sock", "unix:///nonexistent", hang=True) as proxy:
        code = cli.main(["check", "--json", "-H", proxy.url])
        assert proxy.accepted >= 1  # it did reach the stuck engine
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert proxy.url in err
    assert "did not answer in time" in err
    assert "overloaded or stuck" in err
    assert "Traceback" not in err


@pytest.mark.engine
@pytest.mark.timeout(60)
async def test_tui_answers_keys_while_the_engine_never_answers(d: Path) -> None:
    proxy = UnixProxy(d / "stuck.sock", "unix:///nonexistent", hang=True).start()
    try:
        app = SocktuiApp(make_session(Options(host=proxy.url), timeout=3))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: proxy.accepted >= 1, "the first look to reach the stuck engine")
            loading = [w for w in app.workers if w.group == "monitor" and w.state is WorkerState.RUNNING]
            assert loading and app.monitor.looks == 0, "the first look should be waiting on the engine"
            # The screen answers while the look waits.
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help to open")
            assert app.report is None and loading[0].state is WorkerState.RUNNING
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "help to close")
            await pilot.press("slash")
            await until(pilot, lambda: app.query_one("#filter").display, "the filter field to open")
            await pilot.press("escape")
            # Once the client's timeout passes, the banner says what is going on.
            banner = app.query_one("#banner", Static)
            await until(pilot, lambda: banner.display, "the banner after the timeout", timeout=15)
            assert "did not answer in time" in str(banner.content)
            assert proxy.url in str(banner.content)
            proxy.stop()  # so the background retries end at once when the app closes
    finally:
        proxy.stop()


# --------------------------------------------------------------------------- refuses: permission denied


@pytest.mark.engine
def test_check_as_a_user_outside_the_docker_group_says_permission_denied_and_how_to_fix(
    engine: Engine, nonroot: NonRoot, d: Path
) -> None:
    with UnixProxy(d / "docker.sock", engine.host, mode=0o660) as proxy:  # root:root 0660, as dockerd makes it
        proc = nonroot.socktui("check", "-H", proxy.url)
        assert proxy.accepted == 0  # the kernel refused the connect: it never reached the engine
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert proxy.url in proc.stderr
    assert "permission denied" in proc.stderr
    assert "docker" in proc.stderr and "sudo" in proc.stderr  # join the docker group, or run with sudo
    assert str(d / "docker.sock") in proc.stderr  # names the socket whose group to join
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- very old or very new API versions


def _fake_world(d: Path, api: str) -> tuple[FakeWorld, str]:
    (d / "notes.sock").write_text("")
    mounts = [{"Type": "bind", "Source": str(d / "notes.sock"), "Destination": "/run/notes.sock", "RW": True}]
    cid = "c" * 64
    world = FakeWorld(
        version={"Version": f"fake-{api}", "ApiVersion": api, "MinAPIVersion": "1.12"},
        containers=[api_container(cid, "fake", mounts)],
        inspect={cid: api_inspect(cid, "fake", mounts)},
    )
    return world, cid


@pytest.mark.parametrize("api", ["1.24", "1.99"])
def test_check_negotiates_a_very_old_or_very_new_api_version(d: Path, api: str) -> None:
    world, _ = _fake_world(d, api)
    with FakeEngine(d / "fake.sock", world) as fake:
        proc = socktui_cli("check", "--json", "-H", fake.url, timeout=30)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert validate_document(doc) == []
    assert doc["engine"]["version"] == f"fake-{api}"
    [c] = doc["containers"]
    assert c["name"] == "fake" and c["mounts"][0]["verdict"] == "not-socket"
    # socktui asked the engine what it is once (its ping, then its version: it is not Podman), unversioned, then
    # spoke exactly that version.
    assert world.requests[:2] == ["/_ping", "/version"]
    assert world.requests[2:] and all(p.startswith(f"/v{api}/") for p in world.requests[2:]), world.requests


def test_check_against_an_engine_older_than_api_1_24_says_so(d: Path) -> None:
    world, _ = _fake_world(d, "1.23")
    with FakeEngine(d / "fake.sock", world) as fake:
        proc = socktui_cli("check", "--json", "-H", fake.url, timeout=30)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert fake.url in proc.stderr
    assert "API versions below 1.24 are no longer supported" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_too_old_engine_gets_advice_about_versions_not_reachability(d: Path) -> None:
    world, _ = _fake_world(d, "1.23")
    with FakeEngine(d / "fake.sock", world) as fake:
        proc = socktui_cli("check", "-H", fake.url, timeout=30)
    assert proc.returncode == 2
    assert "running and reachable" not in proc.stderr
    assert "upgrade" in proc.stderr.lower()


def test_check_against_an_engine_that_hides_its_api_version(d: Path) -> None:
    world, _ = _fake_world(d, "1.41")
    assert world.version is not None
    del world.version["ApiVersion"]
    with FakeEngine(d / "fake.sock", world) as fake:
        proc = socktui_cli("check", "-H", fake.url, timeout=30)
    assert proc.returncode == 2
    assert 'key "ApiVersion" is missing' in proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_against_an_engine_that_fails_its_version_request(d: Path) -> None:
    world, _ = _fake_world(d, "1.41")
    world.version = None  # HTTP 500
    with FakeEngine(d / "fake.sock", world) as fake:
        proc = socktui_cli("check", "-H", fake.url, timeout=30)
    assert proc.returncode == 2
    assert fake.url in proc.stderr
    assert "500" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert os.path.exists(d / "notes.sock")  # nothing was touched
