"""Live repair on the private daemon: sockets put back into running containers, mount points fixed in place.

The truth comes from inside the container: a static client (``tests/static/uclient.c``) run with ``docker exec``
connects to the destination and says ``connected`` or ``error ECONNREFUSED``. "Not restarted" is ``State.StartedAt``
unchanged; "not recreated" is the same container ID with a file it wrote before still there.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from harness import ContainerFactory, Engine, SocketServer, SocketServers, build_static, unique_name, wait_for
from socktui import remount

pytestmark = pytest.mark.engine

TRAP = ["sh", "-c", "trap 'exit 0' TERM; echo kept > /kept; while :; do sleep 1; done"]
DEST = "/run/app.sock"


@pytest.fixture(scope="module")
def uclient() -> Path:
    return build_static("uclient")


def inside(engine: Engine, cid: str, *argv: str) -> str:
    """Run a command in the container and return what it printed: the container's own view."""
    exec_id = engine.client.exec_create(cid, list(argv))["Id"]
    return bytes(engine.client.exec_start(exec_id)).decode().strip()


def connects(engine: Engine, cid: str, path: str = DEST) -> str:
    return inside(engine, cid, "/uclient", path)


def inspect_state(engine: Engine, cid: str) -> dict[str, object]:
    state: dict[str, object] = engine.client.inspect_container(cid)["State"]
    return state


def container_view(engine: Engine, cid: str, path: str = DEST) -> tuple[int, int]:
    pid = int(str(inspect_state(engine, cid)["Pid"]))
    st = os.stat(f"/proc/{pid}/root{path}", follow_symlinks=False)
    return st.st_dev, st.st_ino


def mountinfo(engine: Engine, cid: str) -> str:
    return inside(engine, cid, "cat", "/proc/self/mountinfo")


def run_with_socket(containers: ContainerFactory, uclient: Path, sock: Path, **create: object) -> str:
    return containers.run(
        name=unique_name(), command=TRAP, binds=[f"{sock}:{DEST}", f"{uclient}:/uclient:ro"], **create
    )


def restart_server(sockserver: SocketServers, server: SocketServer) -> SocketServer:
    """The server re-creates its socket (unlink + bind): a new inode at the same path."""
    server.stop()
    return sockserver.start(server.path)


def layers(engine: Engine, cid: str) -> tuple[str, list[str]]:
    data = engine.client.inspect_container(cid)["GraphDriver"]["Data"]
    return data["UpperDir"], data["LowerDir"].split(":")


# --------------------------------------------------------------------------- mechanics: the kernel and reattach


def test_the_kernel_here_allows_live_repair() -> None:
    assert remount.kernel_support() is None


def test_reattach_makes_a_detached_socket_live_without_a_restart(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    sock = d / "app.sock"
    first = sockserver.start(sock)
    cid = run_with_socket(containers, uclient, sock)
    assert connects(engine, cid) == "connected"
    second = restart_server(sockserver, first)
    assert connects(engine, cid).startswith("error ECONNREFUSED")
    stale = container_view(engine, cid)
    started = inspect_state(engine, cid)["StartedAt"]

    fd = remount.open_socket(str(sock))
    try:
        done = remount.reattach(int(str(inspect_state(engine, cid)["Pid"])), DEST, fd, stale)
    finally:
        os.close(fd)

    assert done.seen == second.ident
    assert connects(engine, cid) == "connected"
    assert inspect_state(engine, cid)["StartedAt"] == started
    assert inside(engine, cid, "cat", "/kept") == "kept"
    engine.client.restart(cid, timeout=1)
    assert connects(engine, cid) == "connected"


def test_reattach_refuses_when_the_container_sees_another_inode(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    sock = d / "app.sock"
    first = sockserver.start(sock)
    cid = run_with_socket(containers, uclient, sock)
    restart_server(sockserver, first)
    dev, ino = container_view(engine, cid)
    before = mountinfo(engine, cid)
    fd = remount.open_socket(str(sock))
    try:
        with pytest.raises(remount.RepairRefused, match="not the socket diagnosed"):
            remount.reattach(int(str(inspect_state(engine, cid)["Pid"])), DEST, fd, (dev, ino + 1))
    finally:
        os.close(fd)
    assert mountinfo(engine, cid) == before
    assert connects(engine, cid).startswith("error ECONNREFUSED")


# A mount point cannot be unlinked (EBUSY) and overlayfs will not rename a directory from the image, so a container
# can move a socket mount away only on a filesystem of its own, such as a tmpfs: there it can rename the directory
# that holds the mount and plant a symlink where the socket was.
MOVABLE = "/run/app/app.sock"
PLANT = "mv /run/app /run/moved && mkdir /run/app && ln -s {target} /run/app/app.sock"


def test_reattach_refuses_a_symlink_planted_at_the_destination(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    """A hostile container moves the mount away and plants a symlink where it was (even to the very mount)."""
    sock = d / "app.sock"
    first = sockserver.start(sock)
    cid = containers.run(
        name=unique_name(),
        command=TRAP,
        binds=[f"{sock}:{MOVABLE}", f"{uclient}:/uclient:ro"],
        tmpfs={"/run": ""},
    )
    restart_server(sockserver, first)
    stale = container_view(engine, cid, MOVABLE)
    inside(engine, cid, "sh", "-c", PLANT.format(target="/run/moved/app.sock"))
    assert inside(engine, cid, "readlink", MOVABLE) == "/run/moved/app.sock"
    before = mountinfo(engine, cid)
    fd = remount.open_socket(str(sock))
    try:
        with pytest.raises(remount.RepairRefused, match="symlink"):
            remount.reattach(int(str(inspect_state(engine, cid)["Pid"])), MOVABLE, fd, stale)
    finally:
        os.close(fd)
    assert mountinfo(engine, cid) == before
    assert connects(engine, cid, "/run/moved/app.sock").startswith("error ECONNREFUSED")


def test_reattach_puts_a_recreated_socket_dir_back(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    """A directory mount whose directory was deleted and re-created (systemd RuntimeDirectory=) is re-attached."""
    shared = d / "s"
    shared.mkdir()
    cid = containers.run(name=unique_name(), command=TRAP, binds=[f"{shared}:/shared", f"{uclient}:/uclient:ro"])
    stale = container_view(engine, cid, "/shared")
    shared.rmdir()
    shared.mkdir()
    sockserver.start(shared / "app.sock")
    assert connects(engine, cid, "/shared/app.sock").startswith("error ENOENT")
    fd = remount.open_socket(str(shared), directory=True)
    try:
        remount.reattach(int(str(inspect_state(engine, cid)["Pid"])), "/shared", fd, stale)
    finally:
        os.close(fd)
    assert connects(engine, cid, "/shared/app.sock") == "connected"


# --------------------------------------------------------------------------- mechanics: a shadow directory, live


def shadowed(containers: ContainerFactory, uclient: Path, sock: Path) -> tuple[str, tuple[int, int]]:
    cid = run_with_socket(containers, uclient, sock)
    st = sock.lstat()
    assert stat.S_ISDIR(st.st_mode)
    return cid, (st.st_dev, st.st_ino)


def test_replace_shadow_mountpoint_while_the_container_runs(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    sock = d / "app.sock"
    cid, shadow = shadowed(containers, uclient, sock)
    started = inspect_state(engine, cid)["StartedAt"]
    sock.rmdir()  # the host directory can go while the container still has it mounted
    server = sockserver.start(sock)
    assert connects(engine, cid).startswith("error ECONNREFUSED")  # it still sees the (deleted) directory

    fd = remount.open_socket(str(sock))
    try:
        done = remount.replace_shadow_mountpoint(int(str(inspect_state(engine, cid)["Pid"])), DEST, fd, shadow)
    finally:
        os.close(fd)

    assert done.seen == server.ident
    assert connects(engine, cid) == "connected"
    assert inspect_state(engine, cid)["StartedAt"] == started
    assert inside(engine, cid, "cat", "/kept") == "kept"
    upper, _ = layers(engine, cid)
    assert stat.S_ISREG(os.lstat(upper + DEST).st_mode)  # the mount point in its own layer is a file now
    engine.client.restart(cid, timeout=1)
    assert inspect_state(engine, cid)["Status"] == "running"
    assert connects(engine, cid) == "connected"
    assert inside(engine, cid, "cat", "/kept") == "kept"


def test_replace_shadow_mountpoint_refuses_a_symlink_planted_at_the_destination(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    """The symlink points at a masked path (/proc/keys is a /dev/null mount): that mount must stay."""
    sock = d / "app.sock"
    cid = containers.run(
        name=unique_name(), command=TRAP, binds=[f"{sock}:{MOVABLE}", f"{uclient}:/uclient:ro"], tmpfs={"/run": ""}
    )
    st = sock.lstat()
    inside(engine, cid, "sh", "-c", PLANT.format(target="/proc/keys"))
    sock.rmdir()
    sockserver.start(sock)
    before = mountinfo(engine, cid)
    assert " /proc/keys " in before
    fd = remount.open_socket(str(sock))
    try:
        with pytest.raises(remount.RepairRefused, match="symlink"):
            remount.replace_shadow_mountpoint(
                int(str(inspect_state(engine, cid)["Pid"])), MOVABLE, fd, (st.st_dev, st.st_ino)
            )
    finally:
        os.close(fd)
    assert mountinfo(engine, cid) == before


def test_replace_shadow_mountpoint_refuses_another_directory(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    sock = d / "app.sock"
    cid, (dev, ino) = shadowed(containers, uclient, sock)
    sock.rmdir()
    sockserver.start(sock)
    before = mountinfo(engine, cid)
    fd = remount.open_socket(str(sock))
    try:
        with pytest.raises(remount.RepairRefused, match="not the directory diagnosed"):
            remount.replace_shadow_mountpoint(int(str(inspect_state(engine, cid)["Pid"])), DEST, fd, (dev, ino + 1))
    finally:
        os.close(fd)
    assert mountinfo(engine, cid) == before


# --------------------------------------------------------------------------- mechanics: a stopped container's layer


def unstartable(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, sock: Path
) -> str:
    """The story of issue 11: a shadow directory was mounted, the server then bound; Docker cannot start it."""
    cid, _ = shadowed(containers, uclient, sock)
    engine.client.stop(cid, timeout=1)
    sock.rmdir()
    sockserver.start(sock)
    with pytest.raises(Exception, match="directory onto a file"):
        engine.client.start(cid)
    state = inspect_state(engine, cid)
    assert state["ExitCode"] == 127 and "directory onto a file" in str(state["Error"])
    return cid


def test_repair_upper_dir_lets_docker_start_an_unstartable_container(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    sock = d / "app.sock"
    cid = unstartable(engine, containers, sockserver, uclient, sock)
    upper, lowers = layers(engine, cid)
    entry = remount.layer_mount_point(upper, lowers, DEST)
    assert (entry.layer, stat.S_ISDIR(entry.mode), entry.empty, entry.in_lower) == (0, True, True, False)

    remount.repair_upper_dir(upper, lowers, DEST)

    engine.client.start(cid)
    assert engine.client.inspect_container(cid)["Id"] == cid
    assert connects(engine, cid) == "connected"
    assert inside(engine, cid, "cat", "/kept") == "kept"


def test_repair_upper_dir_refuses_a_running_container(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    sock = d / "app.sock"
    cid, _ = shadowed(containers, uclient, sock)
    upper, lowers = layers(engine, cid)
    with pytest.raises(remount.RepairRefused, match="running"):
        remount.repair_upper_dir(upper, lowers, DEST)
    assert stat.S_ISDIR(os.lstat(upper + DEST).st_mode)


def test_repair_upper_dir_refuses_a_non_empty_mount_point(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    sock = d / "app.sock"
    cid = unstartable(engine, containers, sockserver, uclient, sock)
    upper, lowers = layers(engine, cid)
    (Path(upper + DEST) / "note").write_text("someone's file")
    with pytest.raises(remount.RepairRefused, match="not empty"):
        remount.repair_upper_dir(upper, lowers, DEST)
    assert (Path(upper + DEST) / "note").read_text() == "someone's file"


def test_repair_upper_dir_refuses_a_directory_from_the_image(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    maker = containers.run(name=unique_name(), command=["sh", "-c", f"mkdir {DEST} && sleep 3600"])
    tag = f"socktui-test-dir:{uuid.uuid4().hex[:8]}"
    repository, version = tag.split(":")
    engine.client.commit(maker, repository=repository, tag=version)
    try:
        sock = d / "app.sock"
        hc = engine.client.create_host_config(network_mode="none", binds=[f"{sock}:{DEST}"])
        cid = engine.client.create_container(image=tag, command=TRAP, host_config=hc)["Id"]
        containers.created.append(cid)
        engine.client.start(cid)
        engine.client.stop(cid, timeout=1)
        sock.rmdir()
        sockserver.start(sock)
        upper, lowers = layers(engine, cid)
        assert remount.layer_mount_point(upper, lowers, DEST).in_lower
        with pytest.raises(remount.RepairRefused, match="comes from the image"):
            remount.repair_upper_dir(upper, lowers, DEST)
    finally:
        containers.cleanup()
        engine.client.remove_image(tag, force=True)


def test_repair_upper_dir_follows_image_symlinks_like_runc(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path
) -> None:
    """/var/run -> /run in the image (Debian's layout): the mount point is at /run/app.sock in the upper layer."""
    maker = containers.run(
        name=unique_name(), command=["sh", "-c", "rm -rf /var/run && ln -s /run /var/run && sleep 3600"]
    )
    tag = f"socktui-test-link:{uuid.uuid4().hex[:8]}"
    repository, version = tag.split(":")
    engine.client.commit(maker, repository=repository, tag=version)
    try:
        sock = d / "app.sock"
        hc = engine.client.create_host_config(network_mode="none", binds=[f"{sock}:/var/run/app.sock"])
        cid = engine.client.create_container(image=tag, command=TRAP, host_config=hc)["Id"]
        containers.created.append(cid)
        engine.client.start(cid)
        engine.client.stop(cid, timeout=1)
        sock.rmdir()
        sockserver.start(sock)
        with pytest.raises(Exception, match="directory onto a file"):
            engine.client.start(cid)
        upper, lowers = layers(engine, cid)
        entry = remount.layer_mount_point(upper, lowers, "/var/run/app.sock")
        assert entry.path == DEST and entry.layer == 0
        remount.repair_upper_dir(upper, lowers, "/var/run/app.sock")
        engine.client.start(cid)
        assert inspect_state(engine, cid)["Status"] == "running"
    finally:
        containers.cleanup()
        engine.client.remove_image(tag, force=True)


# --------------------------------------------------------------------------- the fixes, through `socktui fix`


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """XDG_STATE_HOME for the socktui subprocesses: the audit log goes here, never to the real home."""
    path = tmp_path / "state"
    path.mkdir()
    return path


def socktui_env(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SOCKTUI_DEBUG", remount.DISABLE_ENV)}
    return {**env, "XDG_STATE_HOME": str(state), **extra}


def socktui(engine: Engine, state: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    command, rest = argv[0], argv[1:]
    return subprocess.run(
        [sys.executable, "-m", "socktui.cli", command, "-H", engine.host, *rest],
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
        env=socktui_env(state, **env),
    )


def name_of(engine: Engine, cid: str) -> str:
    return str(engine.client.inspect_container(cid)["Name"]).lstrip("/")


def checked(engine: Engine, state: Path, cid: str, destination: str = DEST) -> dict[str, Any]:
    done = socktui(engine, state, "check", "--json", name_of(engine, cid))
    [container] = json.loads(done.stdout)["containers"]
    [mount] = [m for m in container["mounts"] if m["destination"] == destination]
    mount["exit"] = done.returncode
    return dict(mount)


def audit(state: Path) -> list[dict[str, Any]]:
    log = state / "socktui" / "actions.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_reattach_socket_story(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path, state: Path
) -> None:
    """detached -> reattach-socket -> live, the same StartedAt, and a later docker restart is still live."""
    sock = d / "app.sock"
    first = sockserver.start(sock)
    cid = run_with_socket(containers, uclient, sock)
    restart_server(sockserver, first)
    before = checked(engine, state, cid)
    assert (before["verdict"], before["exit"]) == ("detached", 1)
    assert [f["id"] for f in before["fixes"]][0] == "reattach-socket"
    started = inspect_state(engine, cid)["StartedAt"]

    done = socktui(engine, state, "fix", name_of(engine, cid), DEST, "reattach-socket", "--yes")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "live: no container is stopped" in done.stdout and "keeps running" in done.stdout
    assert "a listener is bound to it" in done.stdout
    assert connects(engine, cid) == "connected"
    assert inspect_state(engine, cid)["StartedAt"] == started
    after = checked(engine, state, cid)
    assert (after["verdict"], after["exit"]) == ("live", 0)
    [entry] = audit(state)
    assert (entry["result"], [s["op"] for s in entry["steps"]]) == ("applied", ["reattach-socket"])
    engine.client.restart(cid, timeout=1)
    assert connects(engine, cid) == "connected"
    assert checked(engine, state, cid)["verdict"] == "live"


def test_one_command_reattaches_every_container_holding_the_old_docker_sock(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path, state: Path
) -> None:
    """The docker.sock case: a daemon restart detaches portainer, traefik and watchtower at once."""
    sock = d / "docker.sock"
    first = sockserver.start(sock)
    ids = [
        containers.run(
            name=unique_name(),
            command=TRAP,
            binds=[f"{sock}:/var/run/docker.sock", f"{uclient}:/uclient:ro"],
        )
        for _ in range(3)
    ]
    restart_server(sockserver, first)
    started = [inspect_state(engine, cid)["StartedAt"] for cid in ids]
    assert all(connects(engine, cid, "/var/run/docker.sock").startswith("error ECONNREFUSED") for cid in ids)

    done = socktui(engine, state, "fix", name_of(engine, ids[0]), "/var/run/docker.sock", "reattach-socket", "--yes")

    assert done.returncode == 0, done.stdout + done.stderr
    assert [connects(engine, cid, "/var/run/docker.sock") for cid in ids] == ["connected"] * 3
    assert [inspect_state(engine, cid)["StartedAt"] for cid in ids] == started
    [entry] = audit(state)
    assert sorted(s["target"] for s in entry["steps"]) == sorted(name_of(engine, cid) for cid in ids)
    assert {s["op"] for s in entry["steps"]} == {"reattach-socket"}


def test_reattach_socket_without_live_repair_restarts_and_says_why(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path, state: Path
) -> None:
    sock = d / "app.sock"
    first = sockserver.start(sock)
    cid = run_with_socket(containers, uclient, sock)
    restart_server(sockserver, first)
    started = inspect_state(engine, cid)["StartedAt"]
    done = socktui(
        engine, state, "fix", name_of(engine, cid), DEST, "reattach-socket", "--yes", **{remount.DISABLE_ENV: "1"}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not possible live here" in done.stdout and "restarting instead" in done.stdout
    assert inspect_state(engine, cid)["StartedAt"] != started
    assert connects(engine, cid) == "connected"


def test_remove_shadow_dir_story_with_the_container_running(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path, state: Path
) -> None:
    """shadowed -> remove-shadow-dir -> the server binds -> live inside, never stopped, its files kept; a later
    docker restart works too (its mount point is a file now)."""
    sock = d / "app.sock"
    cid, _ = shadowed(containers, uclient, sock)
    name = name_of(engine, cid)
    started = inspect_state(engine, cid)["StartedAt"]
    assert checked(engine, state, cid)["verdict"] == "shadowed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "socktui.cli", "fix", "-H", engine.host, name, DEST, "remove-shadow-dir", "--yes"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=socktui_env(state),
    )
    try:
        wait_for(lambda: not os.path.lexists(sock), timeout=30, message="socktui to remove the directory")
        assert inspect_state(engine, cid)["Status"] == "running"  # nobody was stopped to free the path
        server = sockserver.start(sock)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert "keeps running" in out
    assert connects(engine, cid) == "connected"
    assert inspect_state(engine, cid)["StartedAt"] == started
    assert inside(engine, cid, "cat", "/kept") == "kept"
    assert container_view(engine, cid) == server.ident
    [entry] = audit(state)
    assert [s["op"] for s in entry["steps"]] == ["rmdir", "wait-for-listener", "replace-mount-point"]
    engine.client.restart(cid, timeout=1)
    assert inspect_state(engine, cid)["Status"] == "running"
    assert connects(engine, cid) == "connected"
    assert checked(engine, state, cid)["verdict"] == "live"


def test_remove_shadow_dir_with_a_read_only_root_filesystem_says_so_and_stops_it_instead(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path, state: Path
) -> None:
    """``--read-only``: the mount point in the container's own layer cannot be made a file while it runs (EROFS),
    and once the host directory is gone the shadow mount cannot be put back. The plan says so before y and takes
    the stopping flow: stop, remove, repair the layer from the host, start. Same ID, and it connects inside."""
    sock = d / "app.sock"
    cid = containers.run(
        name=unique_name(),
        command=["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
        binds=[f"{sock}:{DEST}", f"{uclient}:/uclient:ro"],
        read_only=True,
    )
    assert sock.is_dir()
    name = name_of(engine, cid)
    dry = socktui(engine, state, "fix", name, DEST, "remove-shadow-dir", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "not possible live here" in dry.stdout and "read-only inside" in dry.stdout, dry.stdout
    assert f"stop container {name}" in dry.stdout
    proc = subprocess.Popen(
        [sys.executable, "-m", "socktui.cli", "fix", "-H", engine.host, name, DEST, "remove-shadow-dir", "--yes"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=socktui_env(state),
    )
    try:
        wait_for(lambda: not os.path.lexists(sock), timeout=30, message="socktui to remove the directory")
        sockserver.start(sock)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert inspect_state(engine, cid)["Status"] == "running"
    assert engine.client.inspect_container(cid)["Id"] == cid
    assert connects(engine, cid) == "connected"
    [entry] = audit(state)
    assert [s["op"] for s in entry["steps"]][:2] == ["stop-container", "rmdir"]


def test_unstartable_is_seen_before_and_after_a_start_and_repair_mount_point_fixes_it(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path, state: Path
) -> None:
    sock = d / "app.sock"
    cid, _ = shadowed(containers, uclient, sock)
    engine.client.stop(cid, timeout=1)
    sock.rmdir()
    sockserver.start(sock)
    before_start = checked(engine, state, cid)  # no start tried yet: seen in its layer
    assert (before_start["verdict"], before_start["exit"]) == ("unstartable", 1)
    assert "Are you trying to mount a directory onto a file" in before_start["reason"]
    with pytest.raises(Exception, match="directory onto a file"):
        engine.client.start(cid)
    after_start = checked(engine, state, cid)
    assert after_start["verdict"] == "unstartable"
    assert "exit code 127" in after_start["reason"] and 'rootfs at "/run/app.sock"' in after_start["reason"]
    assert [f["id"] for f in after_start["fixes"]] == ["repair-mount-point"]

    done = socktui(engine, state, "fix", name_of(engine, cid), DEST, "repair-mount-point", "--yes")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "docker rm" not in done.stdout
    engine.client.start(cid)
    assert engine.client.inspect_container(cid)["Id"] == cid
    assert connects(engine, cid) == "connected"
    assert inside(engine, cid, "cat", "/kept") == "kept"
    assert checked(engine, state, cid)["verdict"] == "live"


def test_repair_mount_point_refuses_a_running_container(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path, state: Path
) -> None:
    sock = d / "app.sock"
    sockserver.start(sock)
    cid = run_with_socket(containers, uclient, sock)
    done = socktui(engine, state, "fix", name_of(engine, cid), DEST, "repair-mount-point", "--yes")
    assert done.returncode == 1
    assert "refused" in done.stderr and "does not apply" in done.stderr
    [entry] = audit(state)
    assert entry["result"] == "refused"


def test_repair_mount_point_refuses_a_non_empty_mount_point_through_the_cli(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path, state: Path
) -> None:
    sock = d / "app.sock"
    cid = unstartable(engine, containers, sockserver, uclient, sock)
    upper, _ = layers(engine, cid)
    (Path(upper + DEST) / "note").write_text("someone's file")
    done = socktui(engine, state, "fix", name_of(engine, cid), DEST, "repair-mount-point", "--yes")
    assert done.returncode == 1
    assert "not empty" in done.stdout + done.stderr
    assert (Path(upper + DEST) / "note").read_text() == "someone's file"
    with pytest.raises(Exception, match="directory onto a file"):
        engine.client.start(cid)


def test_read_only_and_dry_run_change_nothing(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path, state: Path
) -> None:
    sock = d / "app.sock"
    first = sockserver.start(sock)
    cid = run_with_socket(containers, uclient, sock)
    restart_server(sockserver, first)
    before = mountinfo(engine, cid)
    name = name_of(engine, cid)
    read_only = subprocess.run(
        [sys.executable, "-m", "socktui.cli", "--read-only", "fix", "-H", engine.host, name, DEST, "reattach-socket"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=socktui_env(state),
    )
    assert read_only.returncode == 1 and "read-only" in read_only.stderr
    dry = socktui(engine, state, "fix", name, DEST, "reattach-socket", "--dry-run")
    assert dry.returncode == 0 and "dry run" in dry.stdout and "reattach-socket" in dry.stdout
    assert mountinfo(engine, cid) == before
    assert connects(engine, cid).startswith("error ECONNREFUSED")
    assert [e["result"] for e in audit(state)] == ["refused"]


def test_reattach_socket_refuses_a_planted_symlink_before_changing_anything(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, uclient: Path, d: Path, state: Path
) -> None:
    sock = d / "app.sock"
    first = sockserver.start(sock)
    cid = containers.run(
        name=unique_name(), command=TRAP, binds=[f"{sock}:{MOVABLE}", f"{uclient}:/uclient:ro"], tmpfs={"/run": ""}
    )
    restart_server(sockserver, first)
    inside(engine, cid, "sh", "-c", PLANT.format(target="/run/moved/app.sock"))
    before = mountinfo(engine, cid)
    done = socktui(engine, state, "fix", name_of(engine, cid), MOVABLE, "reattach-socket", "--yes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "symlink" in done.stdout + done.stderr
    assert mountinfo(engine, cid) == before
    [entry] = audit(state)
    assert entry["result"] == "refused"
