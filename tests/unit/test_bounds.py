"""Bounded work whatever a container does: a socket directory's sockets beyond a bound are counted and said, and a
look past its deadline lists the rest of the containers as not looked at instead of running on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import harness
from socktui import diagnose as diagnose_module
from socktui import observe
from socktui.diagnose import Look
from socktui.model import ContainerSpec, EngineInfo, MountSpec, Role, Verdict

LOCAL = EngineInfo(endpoint="unix:///var/run/docker.sock", local=True, version="27.0.0")


@pytest.fixture
def sockdir() -> Iterator[Path]:
    with harness.short_dir("stb-") as path:
        yield path


def stopped(name: str, *mounts: MountSpec) -> ContainerSpec:
    return ContainerSpec(id=name * 8, name=name, state="exited", image="busybox", mounts=mounts, inspected=True)


def test_sockets_beyond_the_per_mount_bound_are_counted_and_keep_the_socket_role(
    sockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observe, "MAX_SOCKETS_PER_MOUNT", 3)
    servers = []
    for i in range(5):
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(sockdir / f"s{i}.sock"))
        s.listen(1)
        servers.append(s)
    try:
        look = Look(LOCAL, {})
        look.add(stopped("many", MountSpec(type="bind", source=str(sockdir), destination="/run/s")))
        [report] = look.finish()
        [m] = report.mounts
        assert m.role is Role.SOCKET_DIR
        assert len(m.sockets) == 3
        assert m.verdict is Verdict.UNKNOWN
        assert "2 more were not looked at" in m.reason
    finally:
        for s in servers:
            s.close()


def test_a_look_past_its_deadline_lists_the_rest_as_not_looked_at(sockdir: Path) -> None:
    look = Look(LOCAL, {}, deadline=time.monotonic() - 1)
    look.add(stopped("late", MountSpec(type="bind", source=str(sockdir / "app.sock"), destination="/run/app.sock")))
    [report] = look.finish()
    [m] = report.mounts
    assert m.role is Role.SOCKET and m.verdict is Verdict.UNKNOWN
    assert f"deadline ({diagnose_module.LOOK_DEADLINE_SECONDS:.0f} s)" in m.reason
    assert m.fixes == ()


SILENT_DAEMON = """
import socket, sys, time
held = []
for name in ("a.sock", "b.sock", "c.sock"):
    s = socket.socket(socket.AF_UNIX)
    s.bind(sys.argv[1] + "/" + name)
    s.listen(8)
    held.append(s)
print("ready", flush=True)
time.sleep(60)
"""


def test_past_its_deadline_a_connect_look_waits_for_no_reply_from_a_listener_that_calls_itself_dockerd(
    sockdir: Path, tmp_path: Path
) -> None:
    """A listener's program name is whatever its process says it is: a container serving many silent sockets from a
    process named ``dockerd`` would hold ``check --connect`` for a reply's deadline per socket, one after another.
    Past the look's deadline the asked-for connects still happen (they never wait), but no hello waits for a reply."""
    impostor = tmp_path / "dockerd"
    impostor.symlink_to(os.path.realpath(sys.executable))  # python, under the name of Docker's daemon
    daemon = subprocess.Popen([str(impostor), "-c", SILENT_DAEMON, str(sockdir)], stdout=subprocess.PIPE, text=True)
    try:
        assert daemon.stdout is not None and daemon.stdout.readline().strip() == "ready"
        look = Look(LOCAL, {}, connect=True)
        look.add(stopped("api", MountSpec(type="bind", source=str(sockdir), destination="/run/api")))
        look.deadline = time.monotonic() - 1  # observing the containers took the whole budget
        [report] = look.finish()
        [m] = report.mounts
        assert [s.name for s in m.sockets] == ["a.sock", "b.sock", "c.sock"]
        for s in m.sockets:
            assert s.listener is not None and s.listener.pid == daemon.pid
            assert s.host_probe is not None and s.host_probe.ok
            assert s.host_probe.detail == "connected", s.host_probe  # no /_ping, so no wait for its answer
    finally:
        daemon.kill()
        daemon.wait()
