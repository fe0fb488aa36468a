"""Observe, don't touch: a look, a check, a TUI session and a recheck make no connection to a listening server.

Servers see every connect. A counting server counts its ``accept()``s; a fragile one (it ``sendall``s whatever
``recv`` returned, and dies of a connect-and-close) must outlive socktui. Liveness comes from the kernel's socket
table instead, and a hostile container binding the same path string in a namespace it shares is never named.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import threading
from pathlib import Path

import pytest
from reliability_support import TRAP, log_text, socktui_cli, unique_name, until

from harness import TEST_LABEL, ContainerFactory, Engine, build_static, wait_for
from socktui.diagnose import diagnose
from socktui.engine import Engine as SocktuiEngine
from socktui.model import ContainerReport, Liveness, MountReport, Verdict

pytestmark = pytest.mark.engine


class CountingServer:
    """Listens on a path and counts the connections it accepts (each one is a connect somebody made)."""

    def __init__(self, path: Path, *, fragile: bool = False) -> None:
        self.path = path
        self.fragile = fragile
        self.accepts = 0
        self.died = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            while True:
                conn, _ = self.sock.accept()
                self.accepts += 1
                if not self.fragile:
                    conn.close()
                    continue
                with conn:
                    data = conn.recv(4096)
                    if not data:
                        raise ConnectionError("peer closed at once")  # the fragile server's bug: it dies here
                    conn.sendall(data)
        except OSError:
            pass  # closed by the test
        finally:
            self.died.set()
            self.sock.close()

    @property
    def alive(self) -> bool:
        return not self.died.is_set()

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a fragile server that died has closed it already
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def mount_at(report: ContainerReport, destination: str) -> MountReport:
    [m] = [m for m in report.mounts if m.mount.destination == destination]
    return m


def servers_in(d: Path) -> tuple[CountingServer, CountingServer, CountingServer]:
    (d / "dir").mkdir()
    return (
        CountingServer(d / "count.sock"),
        CountingServer(d / "fragile.sock", fragile=True),
        CountingServer(d / "dir" / "inner.sock"),
    )


def run_consumers(containers: ContainerFactory, d: Path) -> str:
    name = unique_name("nt")
    containers.run(
        name=name,
        command=TRAP,
        binds=[f"{d / 'count.sock'}:/run/count.sock", f"{d / 'fragile.sock'}:/run/fragile.sock", f"{d / 'dir'}:/s"],
    )
    # A stopped one too: its mounts are judged from the host side alone.
    containers.create(name=unique_name("nt-off"), command=TRAP, binds=[f"{d / 'count.sock'}:/run/count.sock"])
    return name


def test_a_check_connects_to_no_listening_server(engine: Engine, containers: ContainerFactory, d: Path) -> None:
    counting, fragile, inner = servers_in(d)
    try:
        name = run_consumers(containers, d)
        proc = socktui_cli("check", "--json", "-H", engine.host, name, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        [c] = json.loads(proc.stdout)["containers"]
        verdicts = {m["destination"]: m["verdict"] for m in c["mounts"]}
        assert verdicts == {"/run/count.sock": "live", "/run/fragile.sock": "live", "/s": "ok"}
        listeners = {m["destination"]: (m["listener"] or {}).get("pid") for m in c["mounts"]}
        assert listeners["/run/count.sock"] == os.getpid()
        assert (counting.accepts, fragile.accepts, inner.accepts) == (0, 0, 0)
        assert fragile.alive
        # The same look in-process says where the answer came from.
        [report] = diagnose(SocktuiEngine.from_options(host=engine.host), names=[name]).containers
        m = mount_at(report, "/run/fragile.sock")
        assert m.bound is not None and m.bound.liveness is Liveness.LISTENING and m.host_probe is None
        # --connect is the explicit way to make servers see socktui: then they do.
        asked = socktui_cli("check", "--connect", "-H", engine.host, name, timeout=60)
        assert asked.returncode in (0, 1), asked.stderr
        wait_for(lambda: counting.accepts >= 2, timeout=10, message="the asked-for connects")
    finally:
        for server in (counting, fragile, inner):
            server.close()


@pytest.mark.timeout(240)
async def test_a_tui_session_and_a_recheck_connect_to_no_listening_server(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    from socktui.session import Options, make_session
    from socktui.ui.app import SocktuiApp

    counting, fragile, inner = servers_in(d)
    try:
        name = run_consumers(containers, d)
        app = SocktuiApp(make_session(Options(host=engine.host)))
        async with app.run_test(size=(120, 40)) as pilot:

            def ours() -> ContainerReport | None:
                if app.report is None:
                    return None
                return next((c for c in app.report.containers if c.container.name == name), None)

            report = await until(pilot, ours, "the first look", timeout=60)
            assert mount_at(report, "/run/fragile.sock").verdict is Verdict.LIVE
            # About a minute of the TUI at rest: 30 rounds of the socket-table re-read, every 2 s.
            await until(
                pilot,
                lambda: app.monitor.sources is not None and app.monitor.sources.tables.rounds >= 30,
                "30 socket-table re-reads",
                timeout=150,
            )
            before = app.report
            await pilot.press("r")
            await until(pilot, lambda: app.report is not before, "the recheck", timeout=60)
            report = await until(pilot, ours, "our container after the recheck")
            assert mount_at(report, "/run/count.sock").verdict is Verdict.LIVE
            assert (counting.accepts, fragile.accepts, inner.accepts) == (0, 0, 0)
            assert fragile.alive
    finally:
        for server in (counting, fragile, inner):
            server.close()


@pytest.mark.timeout(90)
def test_a_fifo_at_a_containers_etc_passwd_does_not_hang_check(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    """socktui reads /etc/passwd and /etc/group inside a container to learn its user's groups. A FIFO there used to
    make the open wait for a writer forever, hanging every check and the TUI's first look."""
    counting = CountingServer(d / "app.sock")
    try:
        name = unique_name("nt-fifo")
        cid = containers.run(
            name=name,
            command=["sh", "-c", "rm -f /etc/passwd /etc/group; mkfifo /etc/passwd /etc/group; " + TRAP[2]],
            binds=[f"{d / 'app.sock'}:/run/app.sock"],
            group_add=["1234"],  # a supplementary group: the user's groups have to be read from the container
        )
        pid = engine.client.inspect_container(cid)["State"]["Pid"]
        wait_for(
            lambda: stat.S_ISFIFO(os.lstat(f"/proc/{pid}/root/etc/group").st_mode),
            timeout=10,
            message="the container to plant its FIFOs",
        )
        proc = socktui_cli("check", "--json", "-H", engine.host, name, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads(proc.stdout)["containers"][0]["mounts"][0]["verdict"] == "live"
    finally:
        counting.close()


def test_a_namesake_sharing_the_network_namespace_is_never_named(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    """A hostile container joins the victim's network namespace and binds the victim's socket path *string* in its
    own filesystem. By name it looks like the victim's listener; by file identity it is nobody's."""
    with socket.socket(socket.AF_UNIX) as gone:
        gone.bind(str(d / "app.sock"))  # the real server died: the file is stale
    victim = unique_name("nt-victim")
    victim_id = containers.run(name=victim, command=TRAP, binds=[f"{d / 'app.sock'}:/app.sock"])
    usrv = build_static("usrv")
    client = engine.client
    hostile = client.create_container(
        image=engine.image,
        command=["/usrv", "/app.sock"],
        name=unique_name("nt-hostile"),
        labels={TEST_LABEL: "1"},
        host_config=client.create_host_config(network_mode=f"container:{victim_id}", binds=[f"{usrv}:/usrv:ro"]),
    )["Id"]
    containers.created.append(hostile)
    client.start(hostile)
    hostile_pid = client.inspect_container(hostile)["State"]["Pid"]
    namesake = f"/proc/{hostile_pid}/root/app.sock"
    wait_for(
        lambda: os.path.lexists(namesake) and stat.S_ISSOCK(os.lstat(namesake).st_mode),  # not bound yet: wait
        timeout=10,
        message="the hostile container to bind its namesake",
    )
    [report] = diagnose(SocktuiEngine.from_options(host=engine.host), names=[victim]).containers
    m = mount_at(report, "/app.sock")
    assert m.verdict is Verdict.STALE, m.reason
    assert m.listener is None
    assert m.bound is not None and m.bound.liveness is Liveness.UNBOUND
    assert [f.id for f in m.fixes][:1] == ["remove-stale-socket"]


@pytest.mark.timeout(120)
async def test_check_says_once_when_the_kernel_has_no_unix_diag(
    engine: Engine, containers: ContainerFactory, d: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forced: the kernel "has no unix_diag". Liveness falls back to /proc/net/unix, matched by name, said once."""
    counting = CountingServer(d / "app.sock")
    try:
        name = unique_name("nt-fb")
        containers.run(name=name, command=TRAP, binds=[f"{d / 'app.sock'}:/run/app.sock"])
        env = {**os.environ, "SOCKTUI_NO_SOCK_DIAG": "1"}
        proc = socktui_cli("check", "-H", engine.host, name, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count("no unix_diag") == 2  # the note once, and the reason of the one live mount
        notes = [line for line in proc.stdout.splitlines() if line.startswith("note: ")]
        assert len(notes) == 1 and notes[0].startswith("note: this kernel cannot list unix sockets by file")
        normal = socktui_cli("check", "-H", engine.host, name)
        assert "unix_diag" not in normal.stdout
        assert counting.accepts == 0

        from socktui.session import Options, make_session
        from socktui.ui.app import SocktuiApp

        monkeypatch.setenv("SOCKTUI_NO_SOCK_DIAG", "1")
        app = SocktuiApp(make_session(Options(host=engine.host)), live=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.report is not None, "the first look", timeout=60)
            first = app.report
            await pilot.press("r")
            await until(pilot, lambda: app.report is not first, "the recheck's report", timeout=60)
            assert log_text(app).count("cannot list unix sockets by file") == 1  # said once, not at every look
    finally:
        counting.close()
