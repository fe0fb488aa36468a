"""Live repair on the private daemon: sockets put back into running containers, mount points fixed in place.

The truth comes from inside the container: a static client (``tests/static/uclient.c``) run with ``docker exec``
connects to the destination and says ``connected`` or ``error ECONNREFUSED``. "Not restarted" is ``State.StartedAt``
unchanged; "not recreated" is the same container ID with a file it wrote before still there.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import ContainerFactory, Engine, SocketServer, SocketServers, build_static
from socktui import remount

pytestmark = pytest.mark.engine

TRAP = ["sh", "-c", "trap 'exit 0' TERM; echo kept > /kept; while :; do sleep 1; done"]
DEST = "/run/app.sock"


@pytest.fixture
def d() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="st-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def uclient() -> Path:
    return build_static("uclient")


def unique_name() -> str:
    return f"st-{uuid.uuid4().hex[:10]}"


def inside(engine: Engine, cid: str, *argv: str) -> str:
    """Run a command in the container and return what it printed: the container's own view."""
    exec_id = engine.client.exec_create(cid, list(argv))
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
