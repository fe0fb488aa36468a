"""Hostile containers: symlinks that point out of the container, a socket swapped for a symlink between diagnosis and
fix, and containers socktui is not allowed to look into.

Symlinks planted *inside a shared directory* (absolute and ``..``) are proved by tests/engine/test_check_engine.py::
test_symlink_planted_by_container_is_never_followed, and a shadow directory swapped for a symlink by
tests/engine/test_fix_engine.py::test_shadow_dir_swapped_for_symlink_is_refused.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
from reliability_support import (
    TRAP,
    NonRoot,
    UnixProxy,
    exec_in,
    listening_socket,
    unique_name,
    validate_document,
)

from harness import ContainerFactory, Engine, SocketServers
from socktui.diagnose import diagnose
from socktui.engine import Engine as SocktuiEngine
from socktui.fixes import apply_plan, plan_fix
from socktui.model import ContainerReport, MountReport, Verdict

pytestmark = pytest.mark.engine


def look(engine: Engine, name: str) -> ContainerReport:
    [found] = diagnose(SocktuiEngine.from_options(host=engine.host), names=[name]).containers
    return found


def only_mount(report: ContainerReport) -> MountReport:
    [m] = report.socket_mounts
    return m


def symlinks_tar(links: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
            tar.addfile(info)
    return buf.getvalue()


# --------------------------------------------------------------------------- symlinks on the way to a destination


@pytest.mark.parametrize("how", ["absolute", "dot-dot"])
def test_a_destination_reached_through_an_escaping_symlink_is_judged_inside_the_container(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path, how: str
) -> None:
    """The image has /lnk -> a host-only directory. Docker resolves it inside the container's root when it mounts;
    socktui must too. Resolved against the host root it would reach a host-only socket instead."""
    hostonly = d / "hostonly"
    hostonly.mkdir()
    trap = listening_socket(hostonly / "app.sock")  # never accepts: any connect() to it stays queued
    trap.setblocking(False)
    try:
        server = sockserver.start(d / "real.sock")
        target = str(hostonly) if how == "absolute" else "../../../../../../../.." + str(hostonly)
        # An image whose /lnk is that symlink: put it in a bare container, commit it.
        base = containers.create(command=TRAP)
        assert engine.client.put_archive(base, "/", symlinks_tar({"lnk": target}))
        image = engine.client.commit(base, repository=f"socktui-test-lnk-{how}", tag=unique_name())["Id"]
        name = unique_name()
        host_config = engine.client.create_host_config(network_mode="none", binds=[f"{server.path}:/lnk/app.sock"])
        cid = engine.client.create_container(image, command=TRAP, name=name, host_config=host_config)["Id"]
        containers.created.append(cid)
        engine.client.start(cid)
        code, out = exec_in(engine.client, cid, ["readlink", "/lnk"])
        assert (code, out.strip()) == (0, target)

        m = only_mount(look(engine, name))
        assert m.mount.destination == "/lnk/app.sock"
        assert m.verdict is Verdict.LIVE, m.reason
        assert m.container is not None and m.container.stat is not None
        assert m.container.stat.ino == server.ident[1]  # type: ignore[index]
        assert m.container.stat.ino != os.stat(hostonly / "app.sock").st_ino
        with pytest.raises(BlockingIOError):
            trap.accept()  # nobody connected to the host-only socket
    finally:
        trap.close()
        containers.cleanup()
        for leftover in engine.client.images(name=f"socktui-test-lnk-{how}", quiet=True):
            engine.client.remove_image(leftover, force=True)


# --------------------------------------------------------------------------- swapped between diagnosis and fix


def test_a_stale_socket_swapped_for_a_symlink_after_the_plan_is_refused_and_nothing_is_removed(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    shared = d / "shared"
    shared.mkdir()
    stale = sockserver.start(shared / "old.sock")
    live = sockserver.start(shared / "new.sock")
    # A host-only stale socket the container wants us to delete for it.
    victim = d / "hostonly" / "victim.sock"
    victim.parent.mkdir()
    listening_socket(victim).close()
    victim_before = victim.lstat()

    name = unique_name()
    cid = containers.run(name=name, command=TRAP, binds=[f"{shared}:/shared"])
    stale.kill()
    report = look(engine, name)
    m = only_mount(report)
    assert m.verdict is Verdict.STALE, m.reason
    plan = plan_fix("remove-stale-socket", report, m)
    assert plan.refusal is None and [s.target for s in plan.steps] == [str(shared / "old.sock")]

    code, out = exec_in(engine.client, cid, ["sh", "-c", f"rm /shared/old.sock && ln -s {victim} /shared/old.sock"])
    assert code == 0, out
    result = apply_plan(plan, SocktuiEngine.from_options(host=engine.host))

    assert result.status == "refused", result.message
    assert "symlink" in result.message and "left alone" in result.message
    assert os.readlink(shared / "old.sock") == str(victim)  # the link is still there
    after = victim.lstat()
    assert stat.S_ISSOCK(after.st_mode) and (after.st_dev, after.st_ino) == (victim_before.st_dev, victim_before.st_ino)
    assert live.alive and stat.S_ISSOCK((shared / "new.sock").lstat().st_mode)
    entry = only_mount(look(engine, name))
    assert [(s.name, s.verdict) for s in entry.sockets] == [
        ("new.sock", Verdict.LIVE),
        ("old.sock", Verdict.NOT_SOCKET),
    ]


# --------------------------------------------------------------------------- cannot look into the container


def test_check_as_non_root_says_unknown_for_running_containers_and_why(
    engine: Engine, containers: ContainerFactory, nonroot: NonRoot, d: Path
) -> None:
    sock = d / "app.sock"
    with listening_socket(sock), UnixProxy(d / "engine.sock", engine.host, mode=0o666) as proxy:
        os.chmod(sock, 0o666)  # the host side is open to anyone: only the container's view is out of reach
        running, stopped = unique_name(), unique_name()
        cid = containers.run(name=running, command=TRAP, binds=[f"{sock}:/run/app.sock"])
        containers.create(name=stopped, command=TRAP, binds=[f"{sock}:/run/app.sock"])
        pid = engine.client.inspect_container(cid)["State"]["Pid"]
        proc = nonroot.socktui("check", "--json", "-H", proxy.url, running, stopped)

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert validate_document(doc) == []
    by_name = {c["name"]: c["mounts"][0] for c in doc["containers"]}
    assert by_name[running]["verdict"] == "unknown"
    assert f"no permission to look into /proc/{pid}/root" in by_name[running]["reason"]
    assert "run socktui as root" in by_name[running]["reason"]
    assert by_name[running]["fixes"] == []
    assert by_name[stopped]["verdict"] == "live"  # a stopped container needs only the host side
    assert "will see it when started" in by_name[stopped]["reason"]


def test_check_as_non_root_does_not_blame_the_container_for_its_own_eacces(
    engine: Engine, containers: ContainerFactory, nonroot: NonRoot, d: Path
) -> None:
    sock = d / "app.sock"
    with listening_socket(sock), UnixProxy(d / "engine.sock", engine.host, mode=0o666) as proxy:
        os.chmod(sock, 0o660)  # root:root 0660, as most daemons leave their socket; the container runs as root
        name = unique_name()
        containers.run(name=name, command=TRAP, binds=[f"{sock}:/run/app.sock"])
        proc = nonroot.socktui("check", "--json", "-H", proxy.url, name)
    [m] = json.loads(proc.stdout)["containers"][0]["mounts"]
    assert m["verdict"] == "unknown", m["reason"]
    assert [f["id"] for f in m["fixes"]] == []
