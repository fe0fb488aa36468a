"""Every verdict from its real situation on the private daemon, through the core API and through ``socktui check``.

Each test builds the situation for real (a container, a server process, a bind mount), then asks
``diagnose(Engine.from_options(host=...))`` and ``socktui check --json`` (a subprocess) the same question. Each runs
on both engines, the private dockerd and a private rootful Podman service; where Podman's rules differ (it makes a
missing bind source when the container is *created* through its Docker-compatible API, and never at start) the test
says so.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from harness import TRAP, ContainerFactory, Engine, SocketServerError, SocketServers, listening_pids, unique_name
from socktui.connect import test_connect as connect_test
from socktui.diagnose import diagnose
from socktui.engine import Engine as SocktuiEngine
from socktui.model import ContainerReport, Kind, Liveness, MountReport, Role, Verdict
from socktui.unixhttp import Response, UnixHTTPClient

pytestmark = pytest.mark.engine

# Stops at once on SIGTERM (``sleep`` as PID 1 ignores it, and docker stop would wait its whole timeout).
MOUNT_KEYS = {"type", "source", "destination", "rw", "role", "verdict", "reason", "listener", "sockets", "fixes"}
CONTAINER_KEYS = {"id", "name", "state", "image", "mounts"}


# --------------------------------------------------------------------------- local helpers


@pytest.fixture(params=["docker", "podman"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Every situation on both engines (overrides the Docker-only ``engine`` of conftest for this module)."""
    chosen: Engine = request.getfixturevalue("docker_engine" if request.param == "docker" else "podman_engine")
    return chosen


def look(engine: Engine, name: str, expected: Sequence[str] = ()) -> ContainerReport:
    """The core API's report for one container."""
    check = diagnose(SocktuiEngine.from_options(host=engine.host), names=[name], expected=expected)
    found = [c for c in check.containers if c.container.name == name]
    assert len(found) == 1, f"{name} not in the report: {[c.container.name for c in check.containers]}"
    return found[0]


def mount_at(report: ContainerReport, destination: str) -> MountReport:
    for m in report.mounts:
        if m.mount.destination == destination:
            return m
    raise AssertionError(f"no mount at {destination}: {[m.mount.destination for m in report.mounts]}")


def socktui(*argv: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "socktui.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def check_json(
    engine: Engine, name: str, *, expect_rc: int, extra: Sequence[str] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``socktui check --json NAME``; check the exit code and the contract; return (document, container)."""
    proc = socktui("check", "--json", "-H", engine.host, *extra, name)
    assert proc.returncode == expect_rc, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    doc = json.loads(proc.stdout)
    assert doc["schema"] == 1
    assert set(doc["engine"]) >= {"endpoint", "local", "version"}
    assert doc["engine"]["endpoint"] == engine.host
    assert doc["engine"]["product"] == engine.product
    assert doc["engine"]["local"] is True
    assert isinstance(doc["engine"]["version"], str) and doc["engine"]["version"]
    assert len(doc["containers"]) == 1
    container = doc["containers"][0]
    assert set(container) >= CONTAINER_KEYS
    assert container["name"] == name and not container["name"].startswith("/")
    # As the engine lists it: Podman spells the imported image docker.io/library/socktui-test:latest.
    listed = [c for c in engine.client.containers(all=True) if f"/{name}" in c["Names"]]
    assert container["image"] == listed[0]["Image"] and container["image"].endswith(engine.image)
    assert len(container["id"]) == 64
    for m in container["mounts"]:
        assert set(m) >= MOUNT_KEYS, m
        assert isinstance(m["rw"], bool)
        for f in m["fixes"]:
            assert set(f) >= {"id", "title", "destructive"}
            assert isinstance(f["destructive"], bool)
        if m["listener"] is not None:
            assert set(m["listener"]) >= {"pid", "command", "container"}
    return doc, container


def json_mount(container: dict[str, Any], destination: str) -> dict[str, Any]:
    for m in container["mounts"]:
        if m["destination"] == destination:
            found: dict[str, Any] = m
            return found
    raise AssertionError(f"no mount at {destination} in {container['mounts']}")


def fix_ids(m: MountReport) -> list[str]:
    return [f.id for f in m.fixes]


def exec_in(engine: Engine, cid: str, cmd: list[str]) -> tuple[int, str]:
    exec_id = engine.client.exec_create(cid, cmd)["Id"]
    output = engine.client.exec_start(exec_id)
    code: int = engine.client.exec_inspect(exec_id)["ExitCode"]
    return code, output.decode(errors="replace")


# --------------------------------------------------------------------------- a. shadowed


def test_shadowed_directory_made_by_docker(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    sock = d / "app.sock"
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{sock}:/run/app.sock"])
    st = sock.lstat()
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not os.listdir(sock)

    m = mount_at(look(engine, name), "/run/app.sock")
    assert m.role is Role.SOCKET
    assert m.verdict is Verdict.SHADOWED
    if engine.product == "podman":
        # Podman's Docker-compatible API makes the directory at create, and --mount would not have helped.
        assert "Podman created it" in m.reason and "was created through its Docker-compatible API" in m.reason
        assert "use-mount-flag" not in fix_ids(m)
    else:
        assert "Docker created it" in m.reason and "started with a -v mount" in m.reason
        assert "use-mount-flag" in fix_ids(m)
    assert "EADDRINUSE" in m.reason
    assert m.shadow_created_by_docker_at is not None
    assert m.host is not None and m.host.kind is Kind.DIRECTORY and m.host.identity == (st.st_dev, st.st_ino)
    assert "remove-shadow-dir" in fix_ids(m)

    # The server really cannot bind there now.
    with pytest.raises(SocketServerError) as failed:
        sockserver.start(sock)
    assert "EADDRINUSE" in failed.value.stderr

    _, c = check_json(engine, name, expect_rc=1)
    jm = json_mount(c, "/run/app.sock")
    assert (jm["verdict"], jm["role"], jm["type"]) == ("shadowed", "socket", "bind")
    assert jm["source"] == str(sock)
    assert ("Podman created it" if engine.product == "podman" else "Docker created it") in jm["reason"]
    remove = [f for f in jm["fixes"] if f["id"] == "remove-shadow-dir"]
    assert remove and remove[0]["destructive"] is True
    assert c["state"] == "running"


# --------------------------------------------------------------------------- b. socket-dir


def test_socket_dir_ok_then_stale(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    shared = d / "s"
    shared.mkdir()
    server = sockserver.start(shared / "app.sock")
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{shared}:/shared"])

    m = mount_at(look(engine, name), "/shared")
    assert m.role is Role.SOCKET_DIR
    assert m.verdict is Verdict.OK, m.reason
    assert [s.name for s in m.sockets] == ["app.sock"]
    s = m.sockets[0]
    assert s.verdict is Verdict.LIVE, s.reason
    assert s.host_path == str(shared / "app.sock") and s.container_path == "/shared/app.sock"
    assert s.listener is not None and s.listener.pid == server.pid
    assert s.container is not None and s.container.stat is not None and s.container.stat.identity == server.ident
    assert s.bound is not None and s.bound.liveness is Liveness.LISTENING and s.host_probe is None
    assert s.host is not None and s.host.identity == server.ident

    _, c = check_json(engine, name, expect_rc=0)
    jm = json_mount(c, "/shared")
    assert (jm["role"], jm["verdict"]) == ("socket-dir", "ok")
    assert [(x["name"], x["verdict"]) for x in jm["sockets"]] == [("app.sock", "live")]
    assert jm["sockets"][0]["container_path"] == "/shared/app.sock"
    assert jm["fixes"] == []

    server.kill()  # no unlink: the file stays, nobody listens
    assert stat.S_ISSOCK((shared / "app.sock").lstat().st_mode)

    m = mount_at(look(engine, name), "/shared")
    assert m.verdict is Verdict.STALE, m.reason
    assert m.sockets[0].verdict is Verdict.STALE
    assert "no socket is bound to" in m.sockets[0].reason  # told by the socket table, not by a refused connect
    assert m.sockets[0].listener is None
    assert "remove-stale-socket" in fix_ids(m)

    _, c = check_json(engine, name, expect_rc=1)
    jm = json_mount(c, "/shared")
    assert jm["verdict"] == "stale"
    assert [(x["name"], x["verdict"]) for x in jm["sockets"]] == [("app.sock", "stale")]


# --------------------------------------------------------------------------- c. live


def test_live_file_mount(engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path) -> None:
    server = sockserver.start(d / "app.sock")
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{server.path}:/run/app.sock"])

    m = mount_at(look(engine, name), "/run/app.sock")
    assert m.role is Role.SOCKET
    assert m.verdict is Verdict.LIVE, m.reason
    assert m.container is not None and m.container.stat is not None
    assert m.container.stat.identity == server.ident
    assert m.bound is not None and m.bound.liveness is Liveness.LISTENING
    assert m.host_probe is None and m.container.probe is None  # found in the socket table: nobody connected
    assert f"listening (0 of {m.bound.backlog} waiting)" in m.reason
    assert m.listener is not None and m.listener.pid == server.pid
    assert "sockserver.py" in m.listener.command
    assert m.listener.container is None  # the server runs on the host
    assert f"pid {server.pid}" in m.reason
    assert m.fixes == ()

    _, c = check_json(engine, name, expect_rc=0)
    jm = json_mount(c, "/run/app.sock")
    assert (jm["verdict"], jm["role"], jm["rw"]) == ("live", "socket", True)
    assert jm["listener"]["pid"] == server.pid
    assert "sockserver.py" in jm["listener"]["command"]
    assert jm["sockets"] == [] and jm["fixes"] == []


# --------------------------------------------------------------------------- d. detached


def test_detached_after_server_restart(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    path = d / "app.sock"
    first = sockserver.start(path)
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{path}:/run/app.sock"])
    assert mount_at(look(engine, name), "/run/app.sock").verdict is Verdict.LIVE

    first.stop()
    second = sockserver.start(path)
    assert first.ident is not None and second.ident is not None
    old_ino, new_ino = first.ident[1], second.ident[1]
    assert old_ino != new_ino

    m = mount_at(look(engine, name), "/run/app.sock")
    assert m.verdict is Verdict.DETACHED, m.reason
    assert str(new_ino) in m.reason and str(old_ino) in m.reason
    assert m.container is not None and m.container.stat is not None and m.container.stat.ino == old_ino
    assert fix_ids(m)[:2] == ["reattach-socket", "restart-container"]

    _, c = check_json(engine, name, expect_rc=1)
    jm = json_mount(c, "/run/app.sock")
    assert jm["verdict"] == "detached"
    assert str(new_ino) in jm["reason"] and str(old_ino) in jm["reason"]


# --------------------------------------------------------------------------- e. missing


# Docker only: Podman makes the directory at create (test_podman_engine.py has its own missing source).
@pytest.mark.parametrize("engine", ["docker"], indirect=True)
def test_missing_for_created_container_touches_nothing(engine: Engine, containers: ContainerFactory, d: Path) -> None:
    path = d / "app.sock"
    name = unique_name()
    containers.create(name=name, command=TRAP, binds=[f"{path}:/run/app.sock"])

    m = mount_at(look(engine, name), "/run/app.sock")
    assert m.verdict is Verdict.MISSING, m.reason
    assert m.mount.from_binds is True
    assert "will make Docker create a directory" in m.reason
    assert fix_ids(m) == ["start-server-first", "use-mount-flag"]

    _, c = check_json(engine, name, expect_rc=1)
    assert c["state"] == "created"
    jm = json_mount(c, "/run/app.sock")
    assert jm["verdict"] == "missing"
    assert "will make Docker create a directory" in jm["reason"]

    # socktui looked; it created nothing.
    assert not os.path.lexists(path)
    assert os.listdir(d) == []


# --------------------------------------------------------------------------- f. not-socket


def test_regular_file_is_not_socket(engine: Engine, containers: ContainerFactory, d: Path) -> None:
    path = d / "x.sock"
    path.write_text("not a socket\n")
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{path}:/run/x.sock"])

    m = mount_at(look(engine, name), "/run/x.sock")
    assert m.role is Role.SOCKET
    assert m.verdict is Verdict.NOT_SOCKET, m.reason
    assert "regular file" in m.reason
    assert m.host_probe is None  # a file is never connected to

    _, c = check_json(engine, name, expect_rc=1)
    assert json_mount(c, "/run/x.sock")["verdict"] == "not-socket"
    assert path.read_text() == "not a socket\n"


# --------------------------------------------------------------------------- g. denied, then allowed


def test_denied_for_non_root_user_then_live_with_group_add(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    server = sockserver.start(d / "a.sock", mode=0o600)
    st = server.path.lstat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    name = unique_name()
    containers.run(name=name, command=TRAP, user="1000:1000", binds=[f"{server.path}:/run/app.sock"])

    m = mount_at(look(engine, name), "/run/app.sock")
    assert m.verdict is Verdict.DENIED, m.reason
    assert "uid 1000" in m.reason
    # 0600: the group has no write bit, so --group-add would not help (issue 11); only the owner's uid can.
    assert "only its owner's uid (0) can connect, so --group-add would not help" in m.reason
    assert fix_ids(m) == ["socket-mode", "run-as-owner"]

    _, c = check_json(engine, name, expect_rc=1)
    jm = json_mount(c, "/run/app.sock")
    assert jm["verdict"] == "denied" and "--group-add would not help" in jm["reason"]
    assert [f["id"] for f in jm["fixes"]] == ["socket-mode", "run-as-owner"]

    # A 0660 socket of a group the image does not know: group-add with that gid, and with it: live.
    gid = 4242
    other = sockserver.start(d / "b.sock", mode=0o660)
    os.chown(other.path, 0, gid)
    name1 = unique_name()
    containers.run(name=name1, command=TRAP, user="1000:1000", binds=[f"{other.path}:/run/app.sock"])
    m1 = mount_at(look(engine, name1), "/run/app.sock")
    assert m1.verdict is Verdict.DENIED and f"add --group-add {gid}" in m1.reason, m1.reason
    assert fix_ids(m1) == ["group-add"]
    name2 = unique_name()
    containers.run(
        name=name2, command=TRAP, user="1000:1000", group_add=[str(gid)], binds=[f"{other.path}:/run/app.sock"]
    )
    m2 = mount_at(look(engine, name2), "/run/app.sock")
    assert m2.verdict is Verdict.LIVE, m2.reason
    assert m2.host is not None and m2.host.gid == gid
    _, c2 = check_json(engine, name2, expect_rc=0)
    assert json_mount(c2, "/run/app.sock")["verdict"] == "live"


# --------------------------------------------------------------------------- h. the daemon's own socket


def test_docker_api_socket_is_live(engine: Engine, containers: ContainerFactory) -> None:
    assert engine.host.startswith("unix://")
    api_sock = engine.host.removeprefix("unix://")
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{api_sock}:/var/run/docker.sock"])

    words = "Podman API socket" if engine.product == "podman" else "Docker API socket"
    report = look(engine, name)
    m = mount_at(report, "/var/run/docker.sock")
    assert m.verdict is Verdict.LIVE, m.reason
    assert words in m.reason  # known by its listener (dockerd, podman), not by the socket's name
    assert m.host_probe is None  # and not pinged: nobody asked
    asked = diagnose(SocktuiEngine.from_options(host=engine.host), names=[name], connect=True)
    pinged = mount_at(asked.containers[0], "/var/run/docker.sock")
    assert pinged.host_probe is not None and pinged.host_probe.api == engine.product
    assert f"answers /_ping ({'Podman' if engine.product == 'podman' else 'Docker'} API)" in pinged.reason
    # The t key asks too, and pings because the listener is the engine's daemon.
    tried = connect_test(report, m)
    assert tried.host.ok and tried.host.api == engine.product, tried.lines
    if engine.daemon is not None:
        assert m.listener is not None and m.listener.pid == engine.daemon.pid
    if engine.podman is not None:
        assert m.listener is not None and [m.listener.pid] == listening_pids(engine.podman.socket_path)

    _, c = check_json(engine, name, expect_rc=0)
    jm = json_mount(c, "/var/run/docker.sock")
    assert jm["verdict"] == "live" and words in jm["reason"]


# --------------------------------------------------------------------------- i. hostile symlink


def test_symlink_planted_by_container_is_never_followed(engine: Engine, containers: ContainerFactory, d: Path) -> None:
    shared = d / "shared"
    shared.mkdir()
    onlyhost = d / "onlyhost"
    onlyhost.mkdir()
    real = onlyhost / "real.sock"
    # A listener that never accepts: any connect() anyone makes stays queued, so it can be counted afterwards.
    trap_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        trap_listener.bind(str(real))
        trap_listener.listen(16)
        trap_listener.setblocking(False)

        name = unique_name()
        cid = containers.run(name=name, command=TRAP, binds=[f"{shared}:/shared"])
        code, out = exec_in(engine, cid, ["ln", "-s", str(real), "/shared/evil.sock"])
        assert code == 0, out
        # A relative one too: from the host side, ../onlyhost resolves next to the shared directory.
        code, out = exec_in(engine, cid, ["ln", "-s", "../onlyhost/real.sock", "/shared/rel.sock"])
        assert code == 0, out
        evil = shared / "evil.sock"
        assert os.readlink(evil) == str(real)  # on the host, following it would reach the host's socket
        assert os.path.samefile(shared / "rel.sock", real)

        for expected in ([str(evil)], []):
            m = mount_at(look(engine, name, expected=expected), "/shared")
            assert m.role is Role.SOCKET_DIR
            assert m.verdict is not None and not m.verdict.healthy
            assert sorted(s.name for s in m.sockets) == ["evil.sock", "rel.sock"]
            for s in m.sockets:
                assert s.verdict is Verdict.NOT_SOCKET, s.reason
                assert "symlink" in s.reason and "not followed" in s.reason
                assert s.host is not None and s.host.kind is Kind.SYMLINK
                assert s.host_probe is None or not s.host_probe.ok
                assert s.container is not None
                assert s.container.probe is None or not s.container.probe.ok
                assert s.container.stat is not None and s.container.stat.kind is not Kind.SOCKET
                assert s.listener is None

        _, c = check_json(engine, name, expect_rc=1, extra=["--expect", str(evil)])
        jm = json_mount(c, "/shared")
        assert [(x["name"], x["verdict"]) for x in jm["sockets"]] == [
            ("evil.sock", "not-socket"),
            ("rel.sock", "not-socket"),
        ]

        # Nobody connected to the host's socket: neither through the host path nor the container's view.
        with pytest.raises(BlockingIOError):
            trap_listener.accept()
        assert os.readlink(evil) == str(real) and stat.S_ISSOCK(real.lstat().st_mode)
    finally:
        trap_listener.close()


# --------------------------------------------------------------------------- j. vanishing container


def test_container_removed_between_list_and_inspect(
    engine: Engine, containers: ContainerFactory, monkeypatch: pytest.MonkeyPatch, d: Path
) -> None:
    (d / "a.sock").write_text("")
    (d / "b.sock").write_text("")
    doomed, kept = unique_name(), unique_name()
    doomed_id = containers.run(name=doomed, command=TRAP, binds=[f"{d / 'a.sock'}:/run/a.sock"])
    containers.run(name=kept, command=TRAP, binds=[f"{d / 'b.sock'}:/run/b.sock"])

    eng = SocktuiEngine.from_options(host=engine.host)
    real_inspect = eng.inspect_one
    removed: list[str] = []

    def inspect_after_removal(container_id: str) -> Any:
        if container_id == doomed_id:
            engine.client.remove_container(container_id, force=True)
            removed.append(container_id)
        return real_inspect(container_id)

    monkeypatch.setattr(eng, "inspect_one", inspect_after_removal)
    check = diagnose(eng, names=[doomed, kept])
    assert removed == [doomed_id]
    assert [c.container.name for c in check.containers] == [kept]
    assert mount_at(check.containers[0], "/run/b.sock").verdict is Verdict.NOT_SOCKET


# --------------------------------------------------------------------------- k. unreachable engine


def test_unreachable_engine_exits_2_with_advice() -> None:
    endpoint = "unix:///nonexistent/docker.sock"
    proc = socktui("check", "-H", endpoint)
    assert proc.returncode == 2, proc
    assert "/nonexistent/docker.sock" in proc.stderr
    assert "Start the daemon" in proc.stderr or "DOCKER_HOST" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    proc = socktui("check", "--json", "-H", endpoint)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == ""


# --------------------------------------------------------------------------- l. --all


def test_all_lists_other_mounts(engine: Engine, containers: ContainerFactory, d: Path) -> None:
    plain = d / "data"
    plain.mkdir()
    (plain / "notes.txt").write_text("hello\n")
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{plain}:/data"])

    report = look(engine, name)
    assert mount_at(report, "/data").role is Role.OTHER
    assert report.socket_mounts == ()

    _, c = check_json(engine, name, expect_rc=0)
    assert c["mounts"] == []
    _, c = check_json(engine, name, expect_rc=0, extra=["--all"])
    jm = json_mount(c, "/data")
    assert (jm["role"], jm["verdict"], jm["source"], jm["sockets"], jm["fixes"]) == (
        "other",
        None,
        str(plain),
        [],
        [],
    )


# --------------------------------------------------------------------------- global options


def test_host_option_before_command_is_honoured(engine: Engine, containers: ContainerFactory, d: Path) -> None:
    (d / "x.sock").write_text("")
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{d / 'x.sock'}:/run/x.sock"])
    # If -H were dropped, this DOCKER_HOST (which leads nowhere) is what would be used, never a real engine.
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT", "DOCKER_CONFIG")}
    env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    proc = socktui("-H", engine.host, "check", "--json", name, env=env)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["engine"]["endpoint"] == engine.host


def test_eaddrinuse_is_what_a_directory_gives(d: Path) -> None:
    """The premise of 'shadowed', checked without any engine: bind() over a directory is EADDRINUSE."""
    (d / "app.sock").mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s, pytest.raises(OSError) as err:
        s.bind(str(d / "app.sock"))
    assert err.value.errno == errno.EADDRINUSE


def test_the_engine_is_asked_what_it_is_once(engine: Engine) -> None:
    """Docker: ``/_ping`` then its quick ``/version`` (rootless, Desktop); Podman: ``/_ping`` alone. Never ``/info``."""
    eng = SocktuiEngine.from_options(host=engine.host)
    asked: list[str] = []
    real_request = UnixHTTPClient.request

    def counting(client: UnixHTTPClient, method: str, path: str, *args: Any, **kw: Any) -> Response:
        asked.append(path)
        return real_request(client, method, path, *args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(UnixHTTPClient, "request", counting)
        info = eng.info()
        eng.list_containers()
    assert info.product.value == engine.product
    expected = ["/_ping"] if engine.product == "podman" else ["/_ping", "/version"]
    assert [p for p in asked if p.endswith(("/_ping", "/version", "/info"))] == expected
