"""Sockets that are not the plain case: other types, a full backlog, a server that never answers, a FIFO where a
socket should be, and a listener that lives in another network namespace.

Liveness comes from the kernel's socket table (tests/unit/test_socktable.py has the table-level facts); these run
the same situations through a real container mount and ``socktui check``, and check that nobody was connected to
unless ``--connect`` asked for it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from reliability_support import (
    TRAP,
    is_socket,
    listening_socket,
    socktui_cli,
    unique_name,
    validate_document,
)

from harness import SOCKSERVER, ContainerFactory, Engine, build_static, wait_for
from socktui.diagnose import diagnose
from socktui.engine import Engine as SocktuiEngine
from socktui.listeners import ListenerIndex
from socktui.model import ContainerReport, Kind, Liveness, MountReport, Verdict
from socktui.socktable import read_table

pytestmark = pytest.mark.engine


def look(engine: Engine, *names: str, connect: bool = False) -> dict[str, ContainerReport]:
    check = diagnose(SocktuiEngine.from_options(host=engine.host), names=list(names), connect=connect)
    return {c.container.name: c for c in check.containers}


def only_mount(report: ContainerReport) -> MountReport:
    [m] = report.socket_mounts
    return m


# --------------------------------------------------------------------------- datagram and seqpacket


@pytest.mark.parametrize(
    ("kind", "word"),
    [(socket.SOCK_DGRAM, "dgram"), (socket.SOCK_SEQPACKET, "seqpacket")],
    ids=["dgram", "seqpacket"],
)
def test_datagram_and_seqpacket_sockets_are_live_by_their_own_type(
    engine: Engine, containers: ContainerFactory, d: Path, kind: int, word: str
) -> None:
    with listening_socket(d / "app.sock", kind):
        name = unique_name()
        containers.run(name=name, command=TRAP, binds=[f"{d / 'app.sock'}:/run/app.sock"])
        m = only_mount(look(engine, name)[name])
        assert m.verdict is Verdict.LIVE, m.reason
        assert m.bound is not None and m.bound.sock_type == word
        assert m.host_probe is None and m.container is not None and m.container.probe is None  # nobody connected
        # The socket table names the holder of a datagram socket too: it needs no listen() to be a server.
        assert m.listener is not None and m.listener.pid == os.getpid()
        if kind == socket.SOCK_DGRAM:
            assert "datagram socket is bound" in m.reason
        else:
            assert word in m.reason
        # Asked for, the connect is made from both sides with the socket's own type.
        asked = only_mount(look(engine, name, connect=True)[name])
        assert asked.host_probe is not None and asked.host_probe.sock_type == word
        assert asked.container is not None and asked.container.probe is not None
        assert (asked.container.probe.ok, asked.container.probe.sock_type) == (True, word)
        proc = socktui_cli("check", "--json", "-H", engine.host, name)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["containers"][0]["mounts"][0]["verdict"] == "live"


def test_a_datagram_socket_whose_owner_is_gone_is_stale(engine: Engine, containers: ContainerFactory, d: Path) -> None:
    listening_socket(d / "log.sock", socket.SOCK_DGRAM).close()  # bound, then closed: the file stays
    assert is_socket(d / "log.sock")
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{d / 'log.sock'}:/dev/log.sock"])
    m = only_mount(look(engine, name)[name])
    assert m.verdict is Verdict.STALE, m.reason
    assert [f.id for f in m.fixes][:1] == ["remove-stale-socket"]


# --------------------------------------------------------------------------- full backlog


@pytest.mark.timeout(60)
def test_a_listener_with_a_full_backlog_is_unknown_with_the_reason_not_stale(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    path = d / "busy.sock"
    pending: list[socket.socket] = []
    with listening_socket(path, backlog=0):
        try:
            for _ in range(64):
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
                pending.append(client)
                if client.connect_ex(str(path)) != 0:
                    break
            else:
                pytest.fail("the backlog never filled")
            name = unique_name()
            containers.run(name=name, command=TRAP, binds=[f"{path}:/run/busy.sock"])
            queued = len(pending) - 1
            m = only_mount(look(engine, name)[name])
            assert m.verdict is Verdict.UNKNOWN, m.reason
            assert "accept queue is full" in m.reason and f"{queued} of 0 waiting" in m.reason
            assert m.bound is not None and m.bound.liveness is Liveness.NOT_ACCEPTING
            assert m.host_probe is None  # told from the table: no connect joined the queue
            listener = read_table().listener_at((path.stat().st_dev, path.stat().st_ino))
            assert listener is not None and listener.queued == queued
            assert m.fixes == ()  # never offer to remove a socket a server holds
            proc = socktui_cli("check", "--json", "-H", engine.host, name, timeout=30)
        finally:
            for client in pending:
                client.close()
    assert proc.returncode == 1, proc.stderr
    jm = json.loads(proc.stdout)["containers"][0]["mounts"][0]
    assert (jm["verdict"], jm["fixes"]) == ("unknown", [])
    assert is_socket(path) or not path.exists()


# --------------------------------------------------------------------------- accepts and never answers


class SilentServer:
    """Accepts every connection and never reads or writes a byte."""

    def __init__(self, path: Path) -> None:
        self.sock = listening_socket(path)
        self.sock.settimeout(0.1)
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.mark.timeout(60)
def test_a_docker_named_socket_that_accepts_and_never_answers(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    from socktui.connect import send_line  # what the test-connect dialog sends a typed line with
    from socktui.connect import test_connect as connect_test  # what the t key runs

    server = SilentServer(d / "docker.sock")
    try:
        name = unique_name()
        containers.run(name=name, command=TRAP, binds=[f"{d / 'docker.sock'}:/var/run/docker.sock"])
        report = look(engine, name)[name]
        m = only_mount(report)
        assert m.verdict is Verdict.LIVE, m.reason
        assert "API socket" not in m.reason  # its name says docker, its listener does not: not claimed an engine
        proc = socktui_cli("check", "--json", "-H", engine.host, name, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert server.held == []  # a look and a check: no connection, no /_ping for a name
        asked = only_mount(look(engine, name, connect=True)[name])
        assert asked.host_probe is not None and asked.host_probe.ok and asked.host_probe.api is None
        assert asked.host_probe.detail == "connected"  # connected when asked, and still no HTTP for a name
        tried = connect_test(report, m)  # the t key: a connect from both sides, and no HTTP for a name either
        assert tried.host.ok and tried.host.api is None and tried.host.detail == "connected", tried.lines
        echo = send_line(str(d / "docker.sock"), b"hello\n")
        assert echo.ok and echo.reply is None
        assert echo.detail == "no reply within 1000 ms"
        wait_for(lambda: len(server.held) >= 3, timeout=5, message="the asked-for connects to arrive")
    finally:
        server.close()


# --------------------------------------------------------------------------- a FIFO where a socket should be


@pytest.mark.timeout(60)
def test_a_fifo_where_a_socket_was_expected_is_not_socket_and_nothing_blocks(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    os.mkfifo(d / "app.sock")
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{d / 'app.sock'}:/run/app.sock"])
    m = only_mount(look(engine, name)[name])  # opening a FIFO to read would block for ever: it is never opened
    assert m.verdict is Verdict.NOT_SOCKET
    assert "FIFO" in m.reason
    assert m.host is not None and m.host.kind is Kind.FIFO
    assert m.container is not None and m.container.stat is not None and m.container.stat.kind is Kind.FIFO
    proc = socktui_cli("check", "--json", "-H", engine.host, name, timeout=30)
    assert proc.returncode == 1
    assert validate_document(json.loads(proc.stdout)) == []


# --------------------------------------------------------------------------- a listener in another network namespace


@pytest.fixture(scope="module")
def static_server() -> Path:
    """tests/static/usrv.c, built static to run inside a busybox container."""
    return build_static("usrv")


def test_a_server_inside_a_container_is_found_in_its_network_namespace(
    engine: Engine, containers: ContainerFactory, static_server: Path, d: Path
) -> None:
    shared = d / "shared"
    shared.mkdir()
    server_name = unique_name("st-srv")
    server_id = containers.run(
        name=server_name,
        command=["/usrv", "/shared/in.sock"],
        binds=[f"{shared}:/shared", f"{static_server}:/usrv:ro"],
    )
    wait_for(lambda: is_socket(shared / "in.sock"), timeout=10, message="the server inside to bind")
    server_pid = engine.client.inspect_container(server_id)["State"]["Pid"]
    # The host's own table has no such listener: it exists only in the container's network namespace.
    st = (shared / "in.sock").stat()
    assert read_table().listener_at((st.st_dev, st.st_ino)) is None
    assert read_table(server_pid).listener_at((st.st_dev, st.st_ino)) is not None

    m = only_mount(look(engine, server_name)[server_name])
    assert m.verdict is Verdict.OK, m.reason
    [s] = m.sockets
    assert s.verdict is Verdict.LIVE, s.reason
    assert s.listener is not None
    assert (s.listener.pid, s.listener.command, s.listener.container) == (
        server_pid,
        "/usrv /shared/in.sock",
        server_name,
    )
    assert f"pid {server_pid} /usrv /shared/in.sock in {server_name} listens" in s.reason


def test_a_consumer_container_is_told_which_container_listens(
    engine: Engine, containers: ContainerFactory, static_server: Path, d: Path
) -> None:
    shared = d / "shared"
    shared.mkdir()
    server_name, consumer = unique_name("st-srv"), unique_name("st-cli")
    containers.run(
        name=server_name,
        command=["/usrv", "/shared/in.sock"],
        binds=[f"{shared}:/shared", f"{static_server}:/usrv:ro"],
    )
    wait_for(lambda: is_socket(shared / "in.sock"), timeout=10, message="the server inside to bind")
    containers.run(name=consumer, command=TRAP, binds=[f"{shared}:/sock"])
    m = only_mount(look(engine, server_name, consumer)[consumer])
    [s] = m.sockets
    assert s.verdict is Verdict.LIVE, s.reason
    assert s.listener is not None and s.listener.container == server_name


def test_a_consumer_checked_alone_is_told_which_container_listens(
    engine: Engine, containers: ContainerFactory, static_server: Path, d: Path
) -> None:
    """``socktui check CONSUMER``: the server's container is not among those looked at, and neither mounts the
    socket at the host path's string. Its network namespace is still read: the socket is live, not stale."""
    shared = d / "shared"
    shared.mkdir()
    server_name, consumer = unique_name("st-srv"), unique_name("st-cli")
    containers.run(
        name=server_name,
        command=["/usrv", "/data/in.sock"],
        binds=[f"{shared}:/data", f"{static_server}:/usrv:ro"],
    )
    wait_for(lambda: is_socket(shared / "in.sock"), timeout=10, message="the server inside to bind")
    containers.run(name=consumer, command=TRAP, binds=[f"{shared / 'in.sock'}:/run/app.sock"])
    m = only_mount(look(engine, consumer)[consumer])
    assert m.verdict is Verdict.LIVE, m.reason
    assert m.host_probe is None  # found in the server's namespace: nobody connected
    assert m.listener is not None and m.listener.container == server_name
    assert [f.id for f in m.fixes] == []
    proc = socktui_cli("check", "--json", "-H", engine.host, consumer)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["containers"][0]["mounts"][0]["verdict"] == "live"


def test_a_host_server_in_a_network_namespace_of_its_own_is_live_not_stale(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    """A host service with a private network namespace (systemd's PrivateNetwork=, ``unshare -n``) binds the socket
    a container mounts: in no namespace of a container, not in the host's, and still the one serving it."""
    path = d / "ns.sock"
    server = subprocess.Popen(
        ["unshare", "--net", sys.executable, str(SOCKSERVER), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith("READY "), server.stderr.read() if server.stderr else ""
        name = unique_name()
        containers.run(name=name, command=TRAP, binds=[f"{path}:/run/app.sock"])
        m = only_mount(look(engine, name)[name])
        assert m.verdict is Verdict.LIVE, m.reason
        assert m.host_probe is None and m.container is not None and m.container.probe is None  # nobody connected
        assert m.listener is not None and m.listener.pid == server.pid
        assert "remove-stale-socket" not in [f.id for f in m.fixes]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_listener_in_an_unshared_network_namespace_is_found_through_its_pid(d: Path) -> None:
    """No container at all: `unshare -n` puts a host server in a namespace of its own (works for any runtime)."""
    path = d / "ns.sock"
    server = subprocess.Popen(
        ["unshare", "--net", sys.executable, str(SOCKSERVER), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("READY "), server.stderr.read() if server.stderr else ""
        assert os.readlink(f"/proc/{server.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        st = path.stat()
        index = ListenerIndex({})
        alone = index.state((st.st_dev, st.st_ino), str(path))  # our own namespace: nothing listens there
        there = index.state((st.st_dev, st.st_ino), str(path), [(server.pid, str(path))])
        index.resolve()
        assert alone.liveness is Liveness.UNBOUND and index.listener(alone) is None
        found = index.listener(there)
        assert found is not None and found.pid == server.pid
        assert str(SOCKSERVER) in found.command and found.container is None
        # Connecting needs no shared namespace: the file is enough.
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
    finally:
        server.terminate()
        server.wait(timeout=10)
