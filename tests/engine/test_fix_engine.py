"""Real fixes on the private daemon: the whole shadowed-socket story, restarts, stale sockets, and every refusal.

Refusals are checked to have changed nothing: the path is still there with the same inode, and the container is in
the same state with the same ``State.StartedAt`` (so it was not stopped and started again behind our back).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness import (
    TRAP,
    ContainerFactory,
    Engine,
    SocketServer,
    SocketServerError,
    SocketServers,
    unique_name,
    wait_for,
)
from socktui.diagnose import diagnose
from socktui.engine import Engine as SocktuiEngine
from socktui.fixes import advice_for, apply_plan, plan_fix
from socktui.model import CheckReport, ContainerReport, Liveness, MountReport, Verdict
from socktui.remount import DISABLE_ENV

pytestmark = pytest.mark.engine


# --------------------------------------------------------------------------- local helpers


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """XDG_STATE_HOME for the socktui subprocesses: the audit log goes here, never to the real home."""
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def stopping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Live repair turned off, as on a kernel without open_tree/move_mount: the fixes stop containers instead.
    (The live flows are in test_live_repair.py.)"""
    monkeypatch.setenv(DISABLE_ENV, "1")


def check(engine: Engine, name: str) -> CheckReport:
    return diagnose(SocktuiEngine.from_options(host=engine.host), names=[name])


def look(engine: Engine, name: str, destination: str) -> tuple[CheckReport, ContainerReport, MountReport]:
    report = check(engine, name)
    [container] = [c for c in report.containers if c.container.name == name]
    [mount] = [m for m in container.mounts if m.mount.destination == destination]
    return report, container, mount


def env_for(state: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_STATE_HOME"] = str(state)
    for inherited in ("SOCKTUI_DEBUG", "SOCKTUI_AUDIT_LOG", "SUDO_USER"):  # under sudo the log would go to root's home
        env.pop(inherited, None)
    return env


def socktui(*argv: str, state: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "socktui.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,  # not a terminal
        env=env_for(state),
    )


def fix(engine: Engine, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return socktui("fix", "-H", engine.host, *args, state=state)


def audit_lines(state: Path) -> list[dict[str, Any]]:
    log = state / "socktui" / "actions.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def container_state(engine: Engine, cid: str) -> tuple[str, str]:
    st = engine.client.inspect_container(cid)["State"]
    return st["Status"], st["StartedAt"]


def identity(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return stat.S_IFMT(st.st_mode), st.st_dev, st.st_ino


def shadowed_container(containers: ContainerFactory, sock: Path, name: str) -> str:
    cid = containers.run(name=name, command=TRAP, binds=[f"{sock}:/run/app.sock"])
    assert sock.is_dir() and not sock.is_symlink()
    return cid


# --------------------------------------------------------------------------- a. the whole story


def _fix_shadow_while_a_server_binds(
    engine: Engine, sockserver: SocketServers, state: Path, name: str, cid: str, sock: Path
) -> tuple[subprocess.Popen[str], str, str, SocketServer]:
    """Run `socktui fix … remove-shadow-dir --yes`; once it has freed the path, bind a real server there."""
    argv = ["fix", "-H", engine.host, name, "/run/app.sock", "remove-shadow-dir", "--yes", "--wait", "20"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "socktui.cli", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(state),
    )
    try:
        wait_for(lambda: not os.path.lexists(sock), timeout=20, message="socktui to remove the directory")
        # The container must be stopped while the path is free, or Docker would create the directory again.
        assert container_state(engine, cid)[0] == "exited"
        server = sockserver.start(sock)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc, out, err, server


def _shadow_story(
    engine: Engine,
    containers: ContainerFactory,
    sockserver: SocketServers,
    d: Path,
    state: Path,
    **create: Any,
) -> None:
    sock = d / "app.sock"
    name = unique_name()
    cid = containers.run(name=name, command=TRAP, binds=[f"{sock}:/run/app.sock"], **create)
    assert sock.is_dir() and not sock.is_symlink()
    with pytest.raises(SocketServerError) as failed:
        sockserver.start(sock)
    assert "EADDRINUSE" in failed.value.stderr
    _, _, m = look(engine, name, "/run/app.sock")
    assert m.verdict is Verdict.SHADOWED

    proc, out, err, server = _fix_shadow_while_a_server_binds(engine, sockserver, state, name, cid, sock)
    assert proc.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert "applied" in out

    assert container_state(engine, cid)[0] == "running"
    assert identity(sock)[0] == stat.S_IFSOCK
    _, _, m = look(engine, name, "/run/app.sock")
    assert m.verdict is Verdict.LIVE, m.reason
    assert m.container is not None and m.container.stat is not None and m.host is not None
    assert m.container.stat.identity == m.host.identity
    assert m.bound is not None and m.bound.liveness is Liveness.LISTENING  # by identity, with no connect
    assert m.listener is not None and m.listener.pid == server.pid

    cp = socktui("check", "--json", "-H", engine.host, name, state=state)
    assert cp.returncode == 0, cp.stderr
    [jc] = json.loads(cp.stdout)["containers"]
    [jm] = [x for x in jc["mounts"] if x["destination"] == "/run/app.sock"]
    assert jm["verdict"] == "live"

    [entry] = audit_lines(state)
    assert entry["result"] == "applied"
    assert entry["fix"] == "remove-shadow-dir"
    assert entry["target"]["container"] == name and entry["target"]["source"] == str(sock)
    assert [s["op"] for s in entry["steps"]] == ["stop-container", "rmdir", "wait-for-socket", "start-container"]
    assert all(s["ok"] for s in entry["steps"])


def test_shadowed_socket_story_without_live_repair(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path, state: Path, stopping: None
) -> None:
    """Without live repair the container is stopped; once the server binds, the directory mount point Docker left in
    its own layer is made a file, so Docker can start it again: same ID, nothing recreated."""
    sock = d / "app.sock"
    name = unique_name()
    cid = containers.run(name=name, command=TRAP, binds=[f"{sock}:/run/app.sock"])
    with pytest.raises(SocketServerError) as failed:
        sockserver.start(sock)
    assert "EADDRINUSE" in failed.value.stderr
    proc, out, err, server = _fix_shadow_while_a_server_binds(engine, sockserver, state, name, cid, sock)
    assert proc.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert "not possible live here" in out and "docker rm" not in out
    assert identity(sock)[0] == stat.S_IFSOCK
    [entry] = audit_lines(state)
    assert [(s["op"], s["ok"]) for s in entry["steps"]] == [
        ("stop-container", True),
        ("rmdir", True),
        ("wait-for-socket", True),
        ("repair-mount-point", True),
        ("start-container", True),
    ]
    assert engine.client.inspect_container(cid)["State"]["Status"] == "running"
    _, _, m = look(engine, name, "/run/app.sock")
    assert m.verdict is Verdict.LIVE, m.reason
    assert m.container is not None and m.container.stat is not None and m.host is not None
    assert m.container.stat.identity == m.host.identity
    assert m.bound is not None and m.bound.liveness is Liveness.LISTENING  # by identity, with no connect
    assert m.listener is not None and m.listener.pid == server.pid


def test_shadowed_socket_story_with_run_on_tmpfs(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path, state: Path, stopping: None
) -> None:
    """The same story where the mount point lives on a tmpfs (fresh at every start), so a plain start works."""
    _shadow_story(engine, containers, sockserver, d, state, tmpfs={"/run": ""})


def test_shadow_fix_stops_and_starts_every_holder(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path, stopping: None
) -> None:
    """Two running containers hold the same shadow directory: both are stopped first and both started after.

    /run is a tmpfs in both, so the start itself works (see the story test for why it otherwise does not).
    """
    sock = d / "app.sock"
    first, second = unique_name(), unique_name()
    ids = [
        containers.run(name=n, command=TRAP, binds=[f"{sock}:/run/app.sock"], tmpfs={"/run": ""})
        for n in (first, second)
    ]
    everyone = diagnose(SocktuiEngine.from_options(host=engine.host), names=[first, second]).containers
    [container] = [c for c in everyone if c.container.name == first]
    [m] = [x for x in container.mounts if x.mount.destination == "/run/app.sock"]
    assert m.verdict is Verdict.SHADOWED
    plan = plan_fix("remove-shadow-dir", container, m, everyone, wait_seconds=10)
    ops = [(s.op, s.container_id) for s in plan.steps]
    assert sorted(ops[:2]) == sorted(("stop-container", cid) for cid in ids)
    assert sorted(ops[-2:]) == sorted(("start-container", cid) for cid in ids)
    problems: list[BaseException] = []

    def bind_when_free() -> None:
        try:
            wait_for(lambda: not os.path.lexists(sock), timeout=10)
            states = [container_state(engine, cid)[0] for cid in ids]
            assert states == ["exited", "exited"], states
            sockserver.start(sock)
        except BaseException as exc:
            problems.append(exc)

    binder = threading.Thread(target=bind_when_free)
    binder.start()
    try:
        result = apply_plan(plan, SocktuiEngine.from_options(host=engine.host), wait_seconds=10)
    finally:
        binder.join(timeout=20)
    assert not problems, problems
    assert result.status == "applied", result.message
    for name in (first, second):
        assert look(engine, name, "/run/app.sock")[2].verdict is Verdict.LIVE


def test_shadow_fix_gives_up_when_no_server_binds(
    engine: Engine, containers: ContainerFactory, d: Path, state: Path, stopping: None
) -> None:
    """No server in time: the directory is gone but the container is left stopped, so Docker cannot recreate it."""
    sock = d / "app.sock"
    name = unique_name()
    cid = shadowed_container(containers, sock, name)
    proc = fix(engine, state, name, "/run/app.sock", "remove-shadow-dir", "--yes", "--wait", "0.5")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not os.path.lexists(sock)
    assert container_state(engine, cid)[0] == "exited"  # left stopped: starting it would recreate the directory
    [entry] = audit_lines(state)
    assert entry["result"] == "failed"


# --------------------------------------------------------------------------- b. detached -> restart


def test_restart_container_makes_detached_live(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path, state: Path
) -> None:
    path = d / "app.sock"
    first = sockserver.start(path)
    name = unique_name()
    cid = containers.run(name=name, command=TRAP, binds=[f"{path}:/run/app.sock"])
    started = container_state(engine, cid)[1]
    first.stop()
    second = sockserver.start(path)
    assert look(engine, name, "/run/app.sock")[2].verdict is Verdict.DETACHED

    proc = fix(engine, state, name, "/run/app.sock", "restart-container", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status, started_again = container_state(engine, cid)
    assert status == "running" and started_again != started

    _, _, m = look(engine, name, "/run/app.sock")
    assert m.verdict is Verdict.LIVE, m.reason
    assert m.container is not None and m.container.stat is not None
    assert m.container.stat.identity == second.ident
    assert m.bound is not None and m.bound.liveness is Liveness.LISTENING  # by identity, with no connect
    [entry] = audit_lines(state)
    assert (entry["result"], [s["op"] for s in entry["steps"]]) == ("applied", ["restart-container"])


def test_restart_container_fixes_detached_socket_dir(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path, state: Path
) -> None:
    shared = d / "s"
    shared.mkdir()
    sockserver.start(shared / "app.sock").stop()
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{shared}:/shared"])
    # The directory is re-created on the host (as a tmpfiles rule or a cleanup script would): a new inode.
    shared.rename(d / "old")
    shared.mkdir()
    sockserver.start(shared / "app.sock")
    _, _, m = look(engine, name, "/shared")
    assert m.verdict is Verdict.DETACHED, m.reason
    assert [f.id for f in m.fixes] == ["reattach-socket", "restart-container"]

    proc = fix(engine, state, name, "/shared", "restart-container", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert look(engine, name, "/shared")[2].verdict is Verdict.OK


# --------------------------------------------------------------------------- c. stale sockets


def test_remove_stale_socket(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path, state: Path
) -> None:
    server = sockserver.start(d / "app.sock")
    name = unique_name()
    cid = containers.run(name=name, command=TRAP, binds=[f"{server.path}:/run/app.sock"])
    server.kill()
    assert look(engine, name, "/run/app.sock")[2].verdict is Verdict.STALE
    started = container_state(engine, cid)

    proc = fix(engine, state, name, "/run/app.sock", "remove-stale-socket", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not os.path.lexists(server.path)
    assert container_state(engine, cid) == started  # removing a file does not touch the container
    [entry] = audit_lines(state)
    assert (entry["result"], [s["op"] for s in entry["steps"]]) == ("applied", ["unlink-socket"])


def test_remove_stale_socket_inside_socket_dir(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    shared = d / "s"
    shared.mkdir()
    stale = sockserver.start(shared / "old.sock")
    live = sockserver.start(shared / "new.sock")
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{shared}:/shared"])
    stale.kill()
    _, report, m = look(engine, name, "/shared")
    assert m.verdict is Verdict.STALE, m.reason
    plan = plan_fix("remove-stale-socket", report, m)
    assert plan.refusal is None and [s.target for s in plan.steps] == [str(stale.path)]
    result = apply_plan(plan, SocktuiEngine.from_options(host=engine.host))
    assert result.status == "applied", result.message
    assert not os.path.lexists(stale.path)
    assert live.alive and identity(live.path)[0] == stat.S_IFSOCK
    assert look(engine, name, "/shared")[2].verdict is Verdict.OK


def test_remove_stale_refused_when_a_new_server_took_the_path(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    path = d / "app.sock"
    old = sockserver.start(path)
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{path}:/run/app.sock"])
    old.kill()
    _, report, m = look(engine, name, "/run/app.sock")
    assert m.verdict is Verdict.STALE
    plan = plan_fix("remove-stale-socket", report, m)

    new = sockserver.start(path)  # unlinks the stale socket and binds a new one: a new inode
    before = identity(path)
    result = apply_plan(plan, SocktuiEngine.from_options(host=engine.host))
    assert result.status == "refused", result.message
    assert "changed since it was diagnosed" in result.message
    assert identity(path) == before
    new.connect().close()


def test_remove_stale_refused_when_the_same_socket_starts_listening(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    """A server between bind() and listen() looks stale (ECONNREFUSED); once it listens, unlink must refuse."""
    path = d / "app.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        name = unique_name()
        containers.run(name=name, command=TRAP, binds=[f"{path}:/run/app.sock"])
        _, report, m = look(engine, name, "/run/app.sock")
        assert m.verdict is Verdict.STALE, m.reason
        plan = plan_fix("remove-stale-socket", report, m)

        server.listen(4)  # the very same inode now accepts connections
        before = identity(path)
        result = apply_plan(plan, SocktuiEngine.from_options(host=engine.host))
        assert result.status == "refused", result.message
        assert "accepts connections again" in result.message
        assert identity(path) == before
    finally:
        server.close()


# --------------------------------------------------------------------------- d. refusals change nothing


def test_shadow_dir_not_empty_is_refused_before_stopping(
    engine: Engine, containers: ContainerFactory, d: Path, stopping: None
) -> None:
    sock = d / "app.sock"
    name = unique_name()
    cid = shadowed_container(containers, sock, name)
    report, container, m = look(engine, name, "/run/app.sock")
    assert m.verdict is Verdict.SHADOWED
    plan = plan_fix("remove-shadow-dir", container, m, report.containers, wait_seconds=1)
    assert [s.op for s in plan.steps][:2] == ["stop-container", "rmdir"]

    (sock / "precious").write_text("keep me\n")
    before, started = identity(sock), container_state(engine, cid)
    result = apply_plan(plan, SocktuiEngine.from_options(host=engine.host), wait_seconds=1)
    assert result.status == "refused", result.message
    assert "not empty" in result.message
    assert not any(r.ok for r in result.steps)
    assert identity(sock) == before
    assert (sock / "precious").read_text() == "keep me\n"
    assert container_state(engine, cid) == started


def test_shadow_dir_filled_after_stop_restarts_the_container(
    engine: Engine, containers: ContainerFactory, d: Path, stopping: None
) -> None:
    """The directory gains a file between the stop and the rmdir: rmdir refuses, and the container is started again."""
    sock = d / "app.sock"
    name = unique_name()
    cid = shadowed_container(containers, sock, name)
    report, container, m = look(engine, name, "/run/app.sock")
    plan = plan_fix("remove-shadow-dir", container, m, report.containers, wait_seconds=1)
    real = SocktuiEngine.from_options(host=engine.host)

    class FillAfterStop:
        def stop(self, container_id: str, timeout: int = 10) -> None:
            real.stop(container_id, timeout=timeout)
            (sock / "late").write_text("arrived after the stop\n")

        def start(self, container_id: str) -> None:
            real.start(container_id)

        def restart(self, container_id: str, timeout: int = 10) -> None:
            real.restart(container_id, timeout=timeout)

    before = identity(sock)
    result = apply_plan(plan, FillAfterStop(), wait_seconds=1)
    assert result.status == "failed", result.message
    assert "not empty" in result.message
    assert identity(sock) == before and (sock / "late").exists()
    assert container_state(engine, cid)[0] == "running"
    assert result.steps[-1].ok and "started" in result.steps[-1].message


def test_shadow_dir_swapped_for_symlink_is_refused(engine: Engine, containers: ContainerFactory, d: Path) -> None:
    sock = d / "app.sock"
    name = unique_name()
    cid = shadowed_container(containers, sock, name)
    report, container, m = look(engine, name, "/run/app.sock")
    plan = plan_fix("remove-shadow-dir", container, m, report.containers, wait_seconds=1)

    elsewhere = d / "elsewhere"
    elsewhere.mkdir()
    sock.rmdir()
    sock.symlink_to(elsewhere)
    started = container_state(engine, cid)
    link_before, target_before = identity(sock), identity(elsewhere)

    result = apply_plan(plan, SocktuiEngine.from_options(host=engine.host), wait_seconds=1)
    assert result.status == "refused", result.message
    assert "symlink" in result.message
    assert identity(sock) == link_before and os.readlink(sock) == str(elsewhere)
    assert identity(elsewhere) == target_before and elsewhere.is_dir()
    assert container_state(engine, cid) == started


@pytest.fixture
def stale(engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path) -> tuple[str, str, Path]:
    """A running container whose file-mounted socket is stale: (name, container id, host path)."""
    server = sockserver.start(d / "app.sock")
    name = unique_name()
    cid = containers.run(name=name, command=TRAP, binds=[f"{server.path}:/run/app.sock"])
    server.kill()
    return name, cid, server.path


def test_read_only_refuses(engine: Engine, stale: tuple[str, str, Path], state: Path) -> None:
    name, cid, path = stale
    before, started = identity(path), container_state(engine, cid)
    proc = fix(engine, state, "--read-only", name, "/run/app.sock", "remove-stale-socket", "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "read-only" in proc.stderr
    assert identity(path) == before and container_state(engine, cid) == started
    [entry] = audit_lines(state)
    assert entry["result"] == "refused" and "read-only" in entry["message"]


def test_read_only_refuses_remove_shadow_dir_and_stops_nothing(
    engine: Engine, containers: ContainerFactory, d: Path, state: Path
) -> None:
    sock = d / "app.sock"
    name = unique_name()
    cid = shadowed_container(containers, sock, name)
    before, started = identity(sock), container_state(engine, cid)
    proc = fix(engine, state, "--read-only", name, "/run/app.sock", "remove-shadow-dir", "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "read-only" in proc.stderr
    assert identity(sock) == before and container_state(engine, cid) == started
    [entry] = audit_lines(state)
    assert entry["result"] == "refused" and "read-only" in entry["message"]


def test_read_only_refuses_restart_container_and_restarts_nothing(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path, state: Path
) -> None:
    path = d / "app.sock"
    first = sockserver.start(path)
    name = unique_name()
    cid = containers.run(name=name, command=TRAP, binds=[f"{path}:/run/app.sock"])
    first.stop()
    sockserver.start(path)
    assert look(engine, name, "/run/app.sock")[2].verdict is Verdict.DETACHED
    started = container_state(engine, cid)
    proc = fix(engine, state, "--read-only", name, "/run/app.sock", "restart-container", "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "read-only" in proc.stderr
    assert container_state(engine, cid) == started  # the same StartedAt: never restarted
    [entry] = audit_lines(state)
    assert entry["result"] == "refused" and "read-only" in entry["message"]


def test_global_read_only_before_command_refuses(engine: Engine, stale: tuple[str, str, Path], state: Path) -> None:
    name, _, path = stale
    before = identity(path)
    proc = socktui(
        "--read-only", "fix", "-H", engine.host, name, "/run/app.sock", "remove-stale-socket", "--yes", state=state
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert identity(path) == before


def test_no_yes_without_terminal_refuses(engine: Engine, stale: tuple[str, str, Path], state: Path) -> None:
    name, cid, path = stale
    before, started = identity(path), container_state(engine, cid)
    proc = fix(engine, state, name, "/run/app.sock", "remove-stale-socket")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "--yes" in proc.stderr
    assert identity(path) == before and container_state(engine, cid) == started
    [entry] = audit_lines(state)
    assert entry["result"] == "refused" and entry["steps"] == []


def test_dry_run_changes_nothing(engine: Engine, stale: tuple[str, str, Path], state: Path) -> None:
    name, cid, path = stale
    before, started = identity(path), container_state(engine, cid)
    proc = fix(engine, state, name, "/run/app.sock", "remove-stale-socket", "--dry-run", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dry run" in proc.stdout and "unlink" in proc.stdout
    assert identity(path) == before and container_state(engine, cid) == started
    assert audit_lines(state) == []


def test_listing_fixes_changes_nothing(engine: Engine, stale: tuple[str, str, Path], state: Path) -> None:
    name, _, path = stale
    before = identity(path)
    proc = fix(engine, state, name, "/run/app.sock")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "remove-stale-socket" in proc.stdout and "stale" in proc.stdout
    assert identity(path) == before and audit_lines(state) == []


# --------------------------------------------------------------------------- e. advice snippets


def test_advice_snippets_use_the_real_values(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    gid = 4343
    server = sockserver.start(d / "g.sock", mode=0o660)
    os.chown(server.path, 0, gid)
    denied = unique_name()
    containers.run(name=denied, command=TRAP, user="1000:1000", binds=[f"{server.path}:/run/app.sock"])
    _, report, m = look(engine, denied, "/run/app.sock")
    assert m.verdict is Verdict.DENIED, m.reason
    text = advice_for("group-add", report, m)
    assert f"--group-add {gid}" in text and f'"{gid}"' in text

    missing = d / "m.sock"
    waiting = unique_name()
    containers.create(name=waiting, command=TRAP, binds=[f"{missing}:/run/app.sock"])
    _, report, m = look(engine, waiting, "/run/app.sock")
    assert "use-mount-flag" in [f.id for f in m.fixes]
    text = advice_for("use-mount-flag", report, m)
    assert f"src={missing},dst=/run/app.sock" in text
    assert f'source: "{missing}"' in text and 'target: "/run/app.sock"' in text
    assert "create_host_path: false" in text

    path = d / "det.sock"
    first = sockserver.start(path)
    detached = unique_name()
    containers.run(name=detached, command=TRAP, binds=[f"{path}:/run/app.sock"])
    first.stop()
    sockserver.start(path)
    _, report, m = look(engine, detached, "/run/app.sock")
    assert m.verdict is Verdict.DETACHED
    text = advice_for("mount-parent-dir", report, m)
    assert f"-v {d}:" in text and f'- "{d}:' in text
    assert f"instead of -v {path}:/run/app.sock" in text
    assert os.path.lexists(path) and not os.path.lexists(missing)  # advice changes nothing

    # Advice fixes have no steps: applying one is "nothing-to-do", even in read-only mode.
    plan = plan_fix("mount-parent-dir", report, m)
    assert not plan.changes and plan.advice == text
    assert apply_plan(plan, SocktuiEngine.from_options(host=engine.host)).status == "nothing-to-do"


# --------------------------------------------------------------------------- f. audit log


def test_audit_log_has_one_line_per_attempt(engine: Engine, stale: tuple[str, str, Path], state: Path) -> None:
    name, _, path = stale
    args = (name, "/run/app.sock")
    assert fix(engine, state, *args, "remove-stale-socket", "--dry-run").returncode == 0
    assert audit_lines(state) == []
    assert fix(engine, state, "--read-only", *args, "remove-stale-socket", "--yes").returncode == 1
    assert fix(engine, state, *args, "remove-stale-socket").returncode == 1
    assert fix(engine, state, *args, "restart-container", "--yes").returncode == 1  # not offered for stale
    assert os.path.lexists(path)
    assert fix(engine, state, *args, "remove-stale-socket", "--yes").returncode == 0
    assert not os.path.lexists(path)
    # Now there is nothing to remove: the fix is not offered any more and is refused.
    assert fix(engine, state, *args, "remove-stale-socket", "--yes").returncode == 1

    lines = audit_lines(state)
    assert len(lines) == 5
    assert [e["result"] for e in lines] == ["refused", "refused", "refused", "applied", "refused"]
    assert "read-only" in lines[0]["message"]
    assert "--yes" in lines[1]["message"]
    assert "restart-container" in lines[2]["message"]
    assert lines[3]["steps"] and lines[3]["steps"][0]["op"] == "unlink-socket"
    for e in lines:
        assert e["target"]["container"] == name and e["target"]["source"] == str(path)
        assert e["target"]["destination"] == "/run/app.sock"
        assert e["user"] and e["time"]
    times = [time.strptime(e["time"], "%Y-%m-%dT%H:%M:%S%z") for e in lines]
    assert times == sorted(times)


def test_unwritable_audit_log_is_a_warning_not_a_crash(
    engine: Engine, stale: tuple[str, str, Path], tmp_path: Path
) -> None:
    name, _, path = stale
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")  # XDG_STATE_HOME is a file: the log's directory cannot be made
    proc = fix(engine, blocked, "--read-only", name, "/run/app.sock", "remove-stale-socket", "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "could not write the audit log" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert os.path.lexists(path)


def test_unwritable_audit_log_warns_for_a_refused_plan(
    engine: Engine, stale: tuple[str, str, Path], tmp_path: Path
) -> None:
    name, _, _ = stale
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    proc = fix(engine, blocked, name, "/run/app.sock", "restart-container", "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "could not write the audit log" in proc.stderr
