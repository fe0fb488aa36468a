"""Tests of the harness itself: if these fail, no other engine test can be trusted."""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path

import pytest

from harness import (
    ContainerFactory,
    Engine,
    PrivateDaemon,
    SocketServer,
    SocketServerError,
    SocketServers,
    engine_from_env,
    socket_dir,
    wait_for,
)


def _exec(engine: Engine, cid: str, cmd: list[str]) -> tuple[int, str]:
    exec_id = engine.client.exec_create(cid, cmd)["Id"]
    output = engine.client.exec_start(exec_id)
    code: int = engine.client.exec_inspect(exec_id)["ExitCode"]
    return code, output.decode()


@pytest.mark.engine
def test_container_runs_and_logs(engine: Engine, containers: ContainerFactory) -> None:
    cid = containers.run(command=["echo", "hello"])
    assert engine.client.wait(cid, timeout=30)["StatusCode"] == 0
    assert engine.client.logs(cid) == b"hello\n"
    info = engine.client.inspect_container(cid)
    assert info["HostConfig"]["NetworkMode"] == "none"
    assert info["Config"]["Labels"]["socktui.test"] == "1"


@pytest.mark.engine
def test_image_users_and_groups(engine: Engine, containers: ContainerFactory) -> None:
    cid = containers.run(command=["id"], user="app", group_add=["docker"])
    assert engine.client.wait(cid, timeout=30)["StatusCode"] == 0
    uid, gid, groups = engine.client.logs(cid).decode().split()
    assert (uid, gid) == ("uid=1000(app)", "gid=1000(app)")
    assert set(groups.removeprefix("groups=").split(",")) == {"1000(app)", "999(docker)"}


@pytest.mark.engine
def test_bind_of_missing_socket_becomes_root_directory(
    engine: Engine, containers: ContainerFactory, tmp_path: Path
) -> None:
    # The fact socktui exists for: -v with a host path that does not exist (yet) makes the
    # daemon create a *directory* there when the container starts, so the server can no
    # longer bind its socket.
    host_sock = tmp_path / "app.sock"
    cid = containers.create(binds=[f"{host_sock}:/run/app.sock"])
    assert not os.path.lexists(host_sock)

    engine.client.start(cid)
    st = host_sock.lstat()
    assert stat.S_ISDIR(st.st_mode)
    assert st.st_uid == 0
    assert _exec(engine, cid, ["test", "-d", "/run/app.sock"])[0] == 0


@pytest.mark.engine
def test_bind_pins_socket_inode(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, tmp_path: Path
) -> None:
    # busybox nc cannot speak AF_UNIX, so compare inodes instead of connecting from inside.
    # A file bind mount pins the inode: a server restarted on the host is invisible inside.
    with socket_dir(tmp_path) as d:
        server = sockserver.start(d / "app.sock")
        cid = containers.run(binds=[f"{server.path}:/run/app.sock"])
        inside = ["stat", "-c", "%F %i", "/run/app.sock"]
        assert _exec(engine, cid, inside) == (0, f"socket {server.path.lstat().st_ino}\n")

        server.stop()
        restarted = sockserver.start(server.path)
        assert restarted.ident is not None and server.ident is not None
        assert restarted.ident != server.ident
        assert _exec(engine, cid, inside) == (0, f"socket {server.ident[1]}\n")


def test_socket_server_serves_and_killed_leaves_stale_socket(sockserver: SocketServers, tmp_path: Path) -> None:
    with socket_dir(tmp_path) as d:
        server = sockserver.start(d / "app.sock", echo=True, mode=0o600)
        assert server.pid != os.getpid()
        assert "sockserver.py" in Path(f"/proc/{server.pid}/cmdline").read_text()
        st = server.path.lstat()
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        with server.connect() as conn:
            conn.sendall(b"hello\n")
            assert conn.recv(100) == b"hello\n"

        server.kill()
        assert stat.S_ISSOCK(server.path.lstat().st_mode)
        with pytest.raises(ConnectionRefusedError) as refused:
            server.connect()
        assert refused.value.errno == errno.ECONNREFUSED


def test_socket_server_stop_removes_only_its_own_socket(sockserver: SocketServers, tmp_path: Path) -> None:
    with socket_dir(tmp_path) as d:
        path = d / "app.sock"
        first = sockserver.start(path)
        # A second server replaces the path: the first keeps listening on an unreachable inode.
        second = sockserver.start(path)
        assert first.alive and first.ident != second.ident

        first.stop()
        assert stat.S_ISSOCK(path.lstat().st_mode)
        with second.connect():
            pass
        second.stop()
        assert not os.path.lexists(path)


def test_socket_server_restarts_over_stale_socket(sockserver: SocketServers, tmp_path: Path) -> None:
    with socket_dir(tmp_path) as d:
        sockserver.start(d / "app.sock").kill()
        with pytest.raises(SocketServerError, match="Address already in use"):
            sockserver.start(d / "app.sock", unlink_first=False)
        with sockserver.start(d / "app.sock").connect():
            pass


def test_socket_server_over_directory_fails_with_errno(tmp_path: Path) -> None:
    with socket_dir(tmp_path) as d:
        (d / "app.sock").mkdir()
        server = SocketServer(d / "app.sock")
        with pytest.raises(SocketServerError) as failed:
            server.start()
        assert failed.value.returncode == 3
        assert "EADDRINUSE" in failed.value.stderr
        assert "Address already in use" in str(failed.value)
        assert (d / "app.sock").is_dir()


def test_socket_dir_keeps_paths_short(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 100)
    with socket_dir(deep) as d:
        assert d != deep and d.is_dir()
        with SocketServer(d / "app.sock") as server, server.connect():
            pass
    assert not d.exists()
    with pytest.raises(ValueError, match="longer than"):
        SocketServer(deep / "app.sock")


def test_wait_for_returns_value_or_raises() -> None:
    calls = iter([0, 0, 7])
    assert wait_for(lambda: next(calls), timeout=1) == 7
    with pytest.raises(TimeoutError, match="never"):
        wait_for(lambda: False, timeout=0.05, message="never")


@pytest.mark.engine
def test_private_daemon_cleans_up_after_itself(engine: Engine) -> None:
    # Uses `engine` only to be skipped/failed like every other engine test.
    if engine_from_env().kind != "private":
        pytest.skip("only meaningful where the harness may start its own dockerd")
    with PrivateDaemon() as daemon:
        workdir = daemon.workdir
        assert len(str(daemon.socket_path)) < 108
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(daemon.socket_path))
    assert not workdir.exists()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(workdir) not in mounts
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline_mentions(p, str(workdir))]
    assert leftovers == []


def _cmdline_mentions(pid: str, needle: str) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
