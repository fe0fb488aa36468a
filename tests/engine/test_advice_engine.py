"""Advice that works, checked against the real result (issue 11, item 6).

Each test builds the situation with real servers (Redis, ssh-agent, a Python server written like the seed article's,
dockerd's own API), asks socktui, and then does what the advice says, or what it refuses to say, and looks at the
outcome from inside the container (``tests/static/uclient.c`` through ``docker exec``):

- ``--group-add`` works for a 0770 Redis socket and is not offered for a 0700 one (where it would not work);
  ``--user`` the owner's uid works for Redis 0700 and ssh-agent's 0600;
- a running container with a stale file mount is not told to ``docker start`` (which does nothing) but to restart
  (which works) or re-attach;
- ``remove-stale-socket`` on a ``-v`` mount warns that a restart before the server binds makes Docker create a
  directory: it does;
- a shadow directory kills an unlink-first server with ``IsADirectoryError``, as the reason says;
- a docker.sock mounted ``:ro`` still lets the container rename itself through the API;
- a container of a daemon with a user namespace (``dockerd --userns-remap``, standing in for rootless Docker, whose
  uid mapping is the same mechanism) is judged with its mapped ids: its root is refused a host root's 0660 socket
  (socktui used to say ``live``), ``--group-add`` takes the container-side number, and Docker's shadow directories
  are owned by the remapped root and still attributed to Docker.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from harness import (
    TRAP,
    ContainerFactory,
    Engine,
    PrivateDaemon,
    SocketServer,
    SocketServers,
    build_static,
    build_test_image,
    unique_name,
    wait_for,
)
from real_servers import Redis, private_dir

pytestmark = pytest.mark.engine

DEST = "/run/app.sock"

# The user namespace of the remapped daemon: a system user with subordinate ids (dockerd reads /etc/subuid).
REMAP_USER = "socktui-remap"
REMAP_BASE = 700000
REMAP_COUNT = 65536


@pytest.fixture(scope="module")
def uclient() -> Path:
    return build_static("uclient")


@pytest.fixture
def d() -> Iterator[Path]:
    path = private_dir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def socktui(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "socktui.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def check(engine: Engine, name: str, rc: int) -> dict[str, Any]:
    """The one socket mount of NAME in ``socktui check --json``, the exit code checked."""
    proc = socktui("check", "--json", "-H", engine.host, name)
    assert proc.returncode == rc, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    [container] = json.loads(proc.stdout)["containers"]
    [mount] = [m for m in container["mounts"] if m["destination"] != "/uclient"]
    found: dict[str, Any] = mount
    return found


def fix_ids(mount: dict[str, Any]) -> list[str]:
    return [f["id"] for f in mount["fixes"]]


def inside(engine: Engine, cid: str, *argv: str) -> str:
    exec_id = engine.client.exec_create(cid, list(argv))["Id"]
    return bytes(engine.client.exec_start(exec_id)).decode().strip()


def run(containers: ContainerFactory, uclient: Path, source: Path, **create: Any) -> tuple[str, str]:
    name = unique_name()
    cid = containers.run(name=name, command=TRAP, binds=[f"{source}:{DEST}", f"{uclient}:/uclient:ro"], **create)
    return name, cid


# --------------------------------------------------------------------------- who a socket's mode lets in


def test_redis_unixsocketperm_700_is_for_its_owner_only_and_group_add_is_not_offered(
    engine: Engine, containers: ContainerFactory, uclient: Path, d: Path
) -> None:
    with Redis(d / "redis.sock", perm="700") as redis:
        name, _ = run(containers, uclient, redis.socket, user="1000")
        m = check(engine, name, rc=1)
        assert m["verdict"] == "denied"
        assert f"only its owner's uid ({redis.uid}) can connect, so --group-add would not help" in m["reason"]
        assert "Redis: unixsocketperm 770" in m["reason"]  # the listener is redis-server
        assert f"--user {redis.uid}" in m["reason"]
        assert fix_ids(m) == ["socket-mode", "run-as-owner"]

        # The advice not given would not have worked: the socket's group does not let uid 1000 in.
        _, with_group = run(containers, uclient, redis.socket, user="1000", group_add=[str(redis.gid)])
        assert inside(engine, with_group, "/uclient", DEST).startswith("error EACCES")
        # The advice given does: run as the owner's uid.
        owner, as_owner = run(containers, uclient, redis.socket, user=str(redis.uid))
        assert inside(engine, as_owner, "/uclient", DEST) == "connected"
        assert check(engine, owner, rc=0)["verdict"] == "live"


def test_redis_unixsocketperm_770_offers_group_add_and_it_works(
    engine: Engine, containers: ContainerFactory, uclient: Path, d: Path
) -> None:
    with Redis(d / "redis.sock", perm="770") as redis:
        name, cid = run(containers, uclient, redis.socket, user="1000")
        assert inside(engine, cid, "/uclient", DEST).startswith("error EACCES")
        m = check(engine, name, rc=1)
        assert m["verdict"] == "denied"
        assert f"its group has it: add --group-add {redis.gid} to {name}" in m["reason"]
        assert fix_ids(m) == ["group-add"]
        shown = socktui("fix", "-H", engine.host, name, DEST, "group-add")
        assert f"docker run --group-add {redis.gid} ..." in shown.stdout

        fixed, fixed_id = run(containers, uclient, redis.socket, user="1000", group_add=[str(redis.gid)])
        assert inside(engine, fixed_id, "/uclient", DEST) == "connected"
        assert check(engine, fixed, rc=0)["verdict"] == "live"


def test_ssh_agents_0600_socket_is_for_its_owner_and_run_as_owner_works(
    engine: Engine, containers: ContainerFactory, uclient: Path, d: Path
) -> None:
    nobody = pwd.getpwnam("nobody")
    os.chown(d, nobody.pw_uid, nobody.pw_gid)
    agent_sock = d / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(agent_sock)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user="nobody",
        start_new_session=True,
    )
    try:
        wait_for(agent_sock.exists, timeout=30, message="ssh-agent's socket")
        assert agent_sock.stat().st_mode & 0o777 == 0o600
        name, _ = run(containers, uclient, agent_sock, user="1000")
        m = check(engine, name, rc=1)
        assert m["verdict"] == "denied"
        assert "ssh-agent always makes its socket 0600: no setting widens it" in m["reason"]
        assert fix_ids(m) == ["socket-mode", "run-as-owner"]
        _, with_group = run(containers, uclient, agent_sock, user="1000", group_add=[str(nobody.pw_gid)])
        assert inside(engine, with_group, "/uclient", DEST).startswith("error EACCES")
        owner, as_owner = run(containers, uclient, agent_sock, user=str(nobody.pw_uid))
        assert inside(engine, as_owner, "/uclient", DEST) == "connected"
        assert check(engine, owner, rc=0)["verdict"] == "live"
    finally:
        agent.kill()
        agent.wait(timeout=10)


# --------------------------------------------------------------------------- running containers and file mounts


def test_a_running_container_with_a_stale_file_mount_is_told_to_restart_not_to_start(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    sock = d / "app.sock"
    server = sockserver.start(sock)
    name, cid = run(containers, uclient, sock)
    server.kill()  # dies without unlinking: stale
    m = check(engine, name, rc=1)
    assert m["verdict"] == "stale"
    assert fix_ids(m) == ["remove-stale-socket", "mount-parent-dir", "start-server-first"]
    advice = socktui("fix", "-H", engine.host, name, DEST, "start-server-first").stdout
    assert "docker start" not in advice
    assert "reattach-socket" in advice and f"docker restart {name}" in advice and "mount-parent-dir" in advice

    sockserver.start(sock)  # the server comes back: a new inode, which the file mount does not follow
    assert inside(engine, cid, "/uclient", DEST).startswith("error ECONNREFUSED")
    engine.client.start(cid)  # what the old advice said: a running container does not even notice
    assert inside(engine, cid, "/uclient", DEST).startswith("error ECONNREFUSED")
    engine.client.restart(cid, timeout=5)  # what the advice says now
    assert inside(engine, cid, "/uclient", DEST) == "connected"
    assert check(engine, name, rc=0)["verdict"] == "live"


def test_remove_stale_socket_warns_that_a_restart_first_makes_docker_create_a_directory_and_it_does(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    sock = d / "app.sock"
    server = sockserver.start(sock)
    name, cid = run(containers, uclient, sock)
    server.kill()
    applied = socktui("fix", "-H", engine.host, name, DEST, "remove-stale-socket", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    warning = f"if {name} starts or restarts before the server has bound {sock} again, Docker creates a directory"
    assert warning in " ".join(applied.stdout.split())
    assert "fails to start (a directory cannot be mounted onto the file mount point" in " ".join(applied.stdout.split())
    assert not sock.exists()
    with pytest.raises(docker.errors.APIError) as refused:
        engine.client.restart(cid, timeout=5)  # before the server binds again
    assert sock.is_dir()  # as warned: Docker made a directory there
    assert "Are you trying to mount a directory onto a file" in str(refused.value)  # and cannot start the container
    assert check(engine, name, rc=1)["verdict"] == "shadowed"


SEED_SERVER = """
import os, socket, sys
path = sys.argv[1]
if os.path.exists(path):
    os.remove(path)  # clear a leftover socket, the way the seed article's server does
s = socket.socket(socket.AF_UNIX)
s.bind(path)
"""


def test_a_shadow_directory_kills_an_unlink_first_server_with_is_a_directory_error_as_the_reason_says(
    engine: Engine, containers: ContainerFactory, uclient: Path, d: Path
) -> None:
    sock = d / "app.sock"
    name, _ = run(containers, uclient, sock)  # -v of a missing path: Docker creates a directory
    assert sock.is_dir()
    m = check(engine, name, rc=1)
    assert m["verdict"] == "shadowed"
    assert "EADDRINUSE" in m["reason"] and "fails with EISDIR (Python: IsADirectoryError)" in m["reason"]
    died = subprocess.run([sys.executable, "-c", SEED_SERVER, str(sock)], capture_output=True, text=True, timeout=30)
    assert died.returncode != 0 and "IsADirectoryError" in died.stderr


# --------------------------------------------------------------------------- docker.sock :ro


def test_a_read_only_docker_socket_still_lets_the_container_use_the_whole_api(
    engine: Engine, containers: ContainerFactory, uclient: Path
) -> None:
    if engine.daemon is None:
        pytest.fail("this test mounts the private daemon's own socket")
    name = unique_name()
    cid = containers.run(
        name=name,
        command=TRAP,
        binds=[f"{engine.daemon.socket_path}:/var/run/docker.sock:ro", f"{uclient}:/uclient:ro"],
    )
    proc = socktui("check", "--json", "-H", engine.host, name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [container] = json.loads(proc.stdout)["containers"]
    [m] = [m for m in container["mounts"] if m["destination"] == "/var/run/docker.sock"]
    assert m["verdict"] == "live" and m["rw"] is False
    assert "mounted read-only (:ro), which does not limit what the Docker API allows" in m["reason"]
    # The truth: through the read-only mount the container changes the engine's state (it renames itself).
    request = f"POST /containers/{name}/rename?name={name}-renamed HTTP/1.0\n"
    assert inside(engine, cid, "/uclient", "/var/run/docker.sock", request) == "connected reply=HTTP/1.0 204 No Content"
    assert engine.client.inspect_container(cid)["Name"] == f"/{name}-renamed"


# --------------------------------------------------------------------------- a daemon with a user namespace


def _ensure_remap_user() -> None:
    """The user and subordinate ids ``--userns-remap`` needs; added once, left for later runs (idempotent)."""
    try:
        pwd.getpwnam(REMAP_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", REMAP_USER], check=True
        )
    for table in ("/etc/subuid", "/etc/subgid"):
        try:
            text = Path(table).read_text()
        except FileNotFoundError:
            text = ""
        if not any(line.split(":", 1)[0] == REMAP_USER for line in text.splitlines()):
            with open(table, "a") as f:
                f.write(f"{REMAP_USER}:{REMAP_BASE}:{REMAP_COUNT}\n")


@pytest.fixture(scope="module")
def remapped() -> Iterator[Engine]:
    """A private dockerd whose containers run in a user namespace: container uid 0 is host uid 700000."""
    _ensure_remap_user()
    workdir = Path(tempfile.mkdtemp(prefix="st-remap-"))
    os.chmod(workdir, 0o711)  # the remapped root must be able to reach its data root
    with (
        PrivateDaemon(extra_args=[f"--userns-remap={REMAP_USER}"], workdir=workdir, start_timeout=90) as daemon,
        docker.APIClient(base_url=daemon.host, version="auto") as client,
    ):
        yield Engine(host=daemon.host, client=client, image=build_test_image(client), daemon=daemon)


@pytest.fixture
def remapped_containers(remapped: Engine) -> Iterator[ContainerFactory]:
    factory = ContainerFactory(remapped)
    try:
        yield factory
    finally:
        factory.cleanup()


def test_a_remapped_containers_root_is_refused_a_host_roots_socket(
    remapped: Engine, remapped_containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    sock = d / "app.sock"
    sockserver.start(sock, mode=0o660)  # root:root 0660
    name, cid = run(remapped_containers, uclient, sock)
    pid = remapped.client.inspect_container(cid)["State"]["Pid"]
    assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", str(REMAP_BASE), str(REMAP_COUNT)]
    assert inside(remapped, cid, "/uclient", DEST).startswith("error EACCES")  # root inside is not root here
    m = check(remapped, name, rc=1)
    assert m["verdict"] == "denied"  # before: "live", root passes
    assert f"host uid {REMAP_BASE} in its user namespace" in m["reason"]
    assert "not mapped into" in m["reason"] and "neither --group-add nor --user" in m["reason"]
    assert fix_ids(m) == []


def test_a_remapped_container_gets_group_add_with_the_container_side_gid_and_it_works(
    remapped: Engine, remapped_containers: ContainerFactory, uclient: Path, d: Path
) -> None:
    sock = d / "app.sock"
    server = SocketServer(sock, mode=0o660, gid=REMAP_BASE + 999).start()  # host gid 700999 is 999 inside
    try:
        name, cid = run(remapped_containers, uclient, sock, user="1000")
        assert inside(remapped, cid, "/uclient", DEST).startswith("error EACCES")
        m = check(remapped, name, rc=1)
        assert m["verdict"] == "denied"
        assert f"add --group-add 999 to {name}" in m["reason"]
        assert fix_ids(m) == ["group-add"]
        fixed, fixed_id = run(remapped_containers, uclient, sock, user="1000", group_add=["999"])
        assert inside(remapped, fixed_id, "/uclient", DEST) == "connected"
        assert check(remapped, fixed, rc=0)["verdict"] == "live"
    finally:
        server.stop()


def test_a_remapped_daemons_shadow_directory_is_attributed_to_docker(
    remapped: Engine, remapped_containers: ContainerFactory, uclient: Path, d: Path
) -> None:
    sock = d / "app.sock"
    name, _ = run(remapped_containers, uclient, sock)
    st = sock.stat()
    assert sock.is_dir() and (st.st_uid, st.st_gid) == (REMAP_BASE, REMAP_BASE)  # not root's: the remapped root's
    m = check(remapped, name, rc=1)
    assert m["verdict"] == "shadowed"
    assert f"Docker created it (empty, owned by uid {REMAP_BASE}, root of the engine's user namespace)" in m["reason"]
    assert "remove-shadow-dir" in fix_ids(m)
