"""Sockets that are not the plain case: other types, a full backlog, a server that never answers, a FIFO where a
socket should be, and a listener that lives in another network namespace.

The probe-level facts are in tests/unit/test_fsview_probe.py (datagram, seqpacket, EAGAIN, silent /_ping); these run
the same situations through a real container mount and ``socktui check``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
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

from harness import SOCKSERVER, ContainerFactory, Engine, wait_for
from socktui.diagnose import diagnose
from socktui.engine import Engine as SocktuiEngine
from socktui.listeners import ListenerIndex, listening_inode, read_net_unix
from socktui.model import ContainerReport, Kind, MountReport, Verdict

pytestmark = pytest.mark.engine


def look(engine: Engine, *names: str) -> dict[str, ContainerReport]:
    check = diagnose(SocktuiEngine.from_options(host=engine.host), names=list(names))
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
def test_datagram_and_seqpacket_sockets_are_probed_with_their_own_type(
    engine: Engine, containers: ContainerFactory, d: Path, kind: int, word: str
) -> None:
    with listening_socket(d / "app.sock", kind):
        name = unique_name()
        containers.run(name=name, command=TRAP, binds=[f"{d / 'app.sock'}:/run/app.sock"])
        m = only_mount(look(engine, name)[name])
        assert m.verdict is Verdict.LIVE, m.reason
        assert m.host_probe is not None and m.host_probe.sock_type == word
        assert m.container is not None and m.container.probe is not None
        assert (m.container.probe.ok, m.container.probe.sock_type) == (True, word)
        assert word in m.reason
        if kind == socket.SOCK_DGRAM:
            # A datagram socket never listens (no SO_ACCEPTCON in /proc/net/unix): its owner cannot be named.
            assert m.listener is None
        else:
            assert m.listener is not None and m.listener.pid == os.getpid()
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
            m = only_mount(look(engine, name)[name])
            assert m.verdict is Verdict.UNKNOWN, m.reason
            assert "backlog is full" in m.reason and "EAGAIN" in m.reason
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
    from socktui.ui.app import send_line  # what the test-connect dialog sends a typed line with

    server = SilentServer(d / "docker.sock")
    try:
        name = unique_name()
        containers.run(name=name, command=TRAP, binds=[f"{d / 'docker.sock'}:/var/run/docker.sock"])
        m = only_mount(look(engine, name)[name])
        assert m.verdict is Verdict.LIVE, m.reason
        assert m.host_probe is not None and m.host_probe.api is None
        assert m.host_probe.detail == "connected; no Docker API reply"
        assert "Docker API socket" not in m.reason  # it is not claimed to be an engine
        proc = socktui_cli("check", "--json", "-H", engine.host, name, timeout=30)
        assert proc.returncode == 0, proc.stderr
        echo = send_line(str(d / "docker.sock"), b"hello\n")
        assert echo.ok and echo.reply is None
        assert echo.detail == "no reply within 1000 ms"
        assert len(server.held) >= 3  # host ping, container-view ping, check's pings, the typed line
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

SERVER_C = textwrap.dedent(
    r"""
    #include <signal.h>
    #include <stdio.h>
    #include <string.h>
    #include <sys/socket.h>
    #include <sys/stat.h>
    #include <sys/un.h>
    #include <unistd.h>

    static void leave(int sig) { (void)sig; _exit(0); }

    int main(int argc, char **argv) {
        struct sockaddr_un addr;
        int server = socket(AF_UNIX, SOCK_STREAM, 0);
        signal(SIGTERM, leave);  /* PID 1 in a container ignores SIGTERM unless it handles it */
        memset(&addr, 0, sizeof addr);
        addr.sun_family = AF_UNIX;
        strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
        unlink(argv[1]);
        if (bind(server, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); return 3; }
        chmod(argv[1], 0666);
        if (listen(server, 16) < 0) { perror("listen"); return 4; }
        for (;;) { int c = accept(server, 0, 0); if (c >= 0) close(c); }
    }
    """
)


@pytest.fixture(scope="module")
def static_server() -> Iterator[Path]:
    """A static unix-socket server to run inside a busybox container (busybox cannot listen on a Unix socket)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler to build a static server for inside the container")
    where = Path(tempfile.mkdtemp(prefix="st-usrv-"))
    os.chmod(where, 0o755)
    try:
        (where / "usrv.c").write_text(SERVER_C)
        built = subprocess.run(
            [gcc, "-static", "-O1", "-o", str(where / "usrv"), str(where / "usrv.c")],
            capture_output=True,
            text=True,
            check=False,
        )
        if built.returncode != 0:
            pytest.skip(f"cannot build a static binary here: {built.stderr.strip()[-300:]}")
        yield where / "usrv"
    finally:
        shutil.rmtree(where, ignore_errors=True)


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
    assert listening_inode(read_net_unix(), str(shared / "in.sock")) is None
    assert listening_inode(read_net_unix(server_pid), "/shared/in.sock") is not None

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


def test_a_listener_in_an_unshared_network_namespace_is_found_through_its_pid(d: Path) -> None:
    """No container at all: `unshare -n` puts a host server in a namespace of its own (works for any runtime)."""
    path = d / "ns.sock"
    try:
        server = subprocess.Popen(
            ["unshare", "--net", sys.executable, str(SOCKSERVER), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("READY "):
            pytest.skip(f"cannot make a network namespace here: {server.stderr.read() if server.stderr else ''}")
        assert os.readlink(f"/proc/{server.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        index = ListenerIndex({})
        index.want(str(path))  # our own namespace: nothing listens there
        index.want(str(path), server.pid)
        index.resolve()
        assert index.get(str(path)) is None
        found = index.get(str(path), server.pid)
        assert found is not None and found.pid == server.pid
        assert str(SOCKSERVER) in found.command and found.container is None
        # Connecting needs no shared namespace: the file is enough.
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
    finally:
        server.terminate()
        server.wait(timeout=10)
