"""Hostile containers and users against socktui's fixes, for real: each test is an attack that worked before.

The attacker is a root container that has a directory on the path mounted read-write (or a user who owns one); it
runs ``tests/static/swapper.c`` (``renameat2(RENAME_EXCHANGE)``, once or in a loop) and busybox. What must hold:
socktui removes nothing but the very inode Docker mounted, never a live socket or anything outside the mounts,
stops nobody for a fix that cannot succeed, writes its audit log only where root safely can, and no byte of a path
becomes a shell command or a forged line of output. See RELIABILITY.md, "Security".
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from reliability_support import NOBODY, TRAP, exec_in, log_text, socktui_cli, unique_name, until

from harness import ContainerFactory, Engine, SocketServers, build_static, wait_for
from socktui import audit
from socktui.diagnose import diagnose
from socktui.engine import Engine as SocktuiEngine
from socktui.fixes import FixResult, Plan, Status, advice_for, apply_plan, fix_command, plan_fix, render_plan
from socktui.fixes.advice import container_dir_for
from socktui.model import (
    ContainerReport,
    ContainerSpec,
    FixOffer,
    Kind,
    MountReport,
    MountSpec,
    PathStat,
    Role,
    Verdict,
)
from socktui.remount import DISABLE_ENV as NO_LIVE_REPAIR

CONTROL = {chr(c) for c in range(0x20)} - {"\n"} | {"\x7f"} | {chr(c) for c in range(0x80, 0xA0)}


@pytest.fixture(scope="module")
def swapper() -> Path:
    return build_static("swapper")


def identity(path: Path) -> tuple[int, int]:
    st = path.lstat()
    return st.st_dev, st.st_ino


def started_at(engine: Engine, cid: str) -> tuple[str, str]:
    st = engine.client.inspect_container(cid)["State"]
    return st["Status"], st["StartedAt"]


def fix_cli(engine: Engine, *args: str, live_repair: bool = True) -> subprocess.CompletedProcess[str]:
    """``socktui fix`` for real; ``live_repair=False`` makes it take the flow that stops the holders (as it does where
    live repair is not possible), which is where a fix that was going to fail would have stopped them for nothing."""
    env = None if live_repair else {**os.environ, NO_LIVE_REPAIR: "1"}
    return socktui_cli("fix", "-H", engine.host, *args, env=env)


# --------------------------------------------------------------------------- 1. an ancestor swapped for a symlink


@pytest.mark.engine
@pytest.mark.parametrize("case", ["holder-running", "holder-stopped", "attacker-gone"])
def test_an_ancestor_swapped_for_a_symlink_never_makes_remove_shadow_dir_remove_something_else(
    engine: Engine, containers: ContainerFactory, swapper: Path, d: Path, case: str
) -> None:
    """A root container with the grandparent mounted turns the parent into a symlink to a host directory outside
    every mount, whose empty ``app.sock`` the look then takes for the shadow directory. Before: socktui stopped the
    holder and removed that host directory. Now: the holder's own view (running) or the link's place inside a
    container's read-write mount (stopped) refuses it, before anything is stopped.

    "attacker-gone": the attacker is removed after the swap, so no mount holds the link's directory any more, and
    the fix takes the flow that stops the holder (no live repair): the running holder's own view is all that is
    left to tell the path leads somewhere else."""
    holder_running = case != "holder-stopped"
    share = d / "share"
    (share / "proj").mkdir(parents=True)
    sock = share / "proj" / "app.sock"
    victim = d / "victim" / "app.sock"  # an empty root-owned directory no container mounts
    victim.mkdir(parents=True)
    victim_before = identity(victim)

    web = unique_name()
    wid = containers.run(name=web, command=TRAP, binds=[f"{sock}:/run/app.sock"], tmpfs={"/run": ""})
    assert sock.is_dir()
    shadow_before = identity(sock)
    if not holder_running:
        engine.client.stop(wid, timeout=1)
    evil = containers.run(name=unique_name(), command=TRAP, binds=[f"{share}:/share", f"{swapper}:/swapper:ro"])
    code, out = exec_in(
        engine.client,
        evil,
        ["sh", "-c", f"ln -s {d / 'victim'} /share/proj.lnk && /swapper once /share/proj /share/proj.lnk"],
    )
    assert (code, out.strip()) == (0, "swapped"), out
    assert os.readlink(share / "proj") == str(d / "victim")
    if case == "attacker-gone":
        engine.client.remove_container(evil, force=True)
    before = started_at(engine, wid)

    proc = fix_cli(
        engine, web, "/run/app.sock", "remove-shadow-dir", "--yes", "--wait", "1", live_repair=case != "attacker-gone"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert victim.is_dir() and identity(victim) == victim_before, "a host directory outside every mount was removed"
    assert identity(share / "proj.lnk" / "app.sock") == shadow_before
    assert started_at(engine, wid) == before, "the holder was stopped for a fix that was refused"
    assert "symlink" in proc.stdout + proc.stderr or "mounted" in proc.stdout + proc.stderr


@pytest.mark.engine
def test_an_ancestor_swapped_for_a_symlink_never_makes_remove_stale_socket_remove_another_socket(
    engine: Engine, containers: ContainerFactory, swapper: Path, d: Path
) -> None:
    """The same attack on remove-stale-socket: the holder is stopped and its stale socket's parent becomes a symlink
    to a host directory outside every mount, where another service left a stale socket of the same name. The look
    takes that one for the container's (a root-owned link in a root-owned directory is followed, as ``/var/run`` is);
    the link lies inside a container's read-write mount, so the fix refuses and nothing is removed."""
    share = d / "share"
    (share / "proj").mkdir(parents=True)
    sock, victim = share / "proj" / "app.sock", d / "victim" / "app.sock"
    victim.parent.mkdir()
    for path in (sock, victim):
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))  # closed without unlink: a stale socket file
    sock_before, victim_before = identity(sock), identity(victim)

    web = unique_name()
    wid = containers.run(name=web, command=TRAP, binds=[f"{sock}:/run/app.sock"])
    engine.client.stop(wid, timeout=1)
    evil = containers.run(name=unique_name(), command=TRAP, binds=[f"{share}:/share", f"{swapper}:/swapper:ro"])
    code, out = exec_in(
        engine.client,
        evil,
        ["sh", "-c", f"ln -s {d / 'victim'} /share/proj.lnk && /swapper once /share/proj /share/proj.lnk"],
    )
    assert (code, out.strip()) == (0, "swapped"), out

    proc = fix_cli(engine, web, "/run/app.sock", "remove-stale-socket", "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert identity(victim) == victim_before, "a socket outside every mount was removed"
    assert identity(share / "proj.lnk" / "app.sock") == sock_before
    assert "symlink" in proc.stdout


# --------------------------------------------------------------------------- 2. RENAME_EXCHANGE in a loop


@pytest.mark.engine
def test_a_stale_socket_exchanged_with_a_live_one_in_a_loop_never_gets_the_live_one_removed(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, swapper: Path, d: Path
) -> None:
    """The container swaps the stale socket's name with a live server's socket as fast as it can while
    remove-stale-socket runs. Before: the name was unlinked after the check, so it sometimes removed the live one.
    Now: the entry is moved into a root-only directory and checked there; the live one is always put back."""
    shared = d / "shared"
    shared.mkdir()
    stale = sockserver.start(shared / "old.sock")
    live = sockserver.start(shared / "live.sock")
    stale.kill()
    stale_ident, live_ident = identity(shared / "old.sock"), identity(shared / "live.sock")

    name = unique_name()
    cid = containers.run(name=name, command=TRAP, binds=[f"{shared}:/shared", f"{swapper}:/swapper:ro"])
    report = diagnose(SocktuiEngine.from_options(host=engine.host))
    [mine] = [c for c in report.containers if c.container.name == name]
    [mount] = [m for m in mine.mounts if m.mount.destination == "/shared"]
    assert mount.verdict is Verdict.STALE, mount.reason
    plan = plan_fix("remove-stale-socket", mine, mount, report.containers)
    assert plan.refusal is None and [s.target for s in plan.steps] == [str(shared / "old.sock")]

    # Held open (before the names start moving), each inode can be asked whether it still has a name (nlink): a
    # look at the two names while they are being exchanged could see the same inode twice.
    live_fd = os.open(shared / "live.sock", os.O_PATH | os.O_NOFOLLOW)
    stale_fds = [os.open(shared / "old.sock", os.O_PATH | os.O_NOFOLLOW)]
    assert (os.fstat(live_fd).st_ino, os.fstat(stale_fds[0]).st_ino) == (live_ident[1], stale_ident[1])
    # 100 us between exchanges: as fast as a socktui check, so that some attempts find the stale one in place (at
    # full speed the two names flip within every look, every attempt is refused, and the test would only prove that).
    argv = ["/swapper", "loop", "/shared/old.sock", "/shared/live.sock", "100"]
    exec_id = engine.client.exec_create(cid, argv)["Id"]
    engine.client.exec_start(exec_id, detach=True)
    real = SocktuiEngine.from_options(host=engine.host)
    try:
        wait_for(lambda: identity(shared / "old.sock") == live_ident, timeout=10, message="the exchange loop to run")
        # Several rounds, each with a new stale socket under the old name, so that a fix that removes whatever the
        # name holds at the moment of the act cannot get lucky every time.
        for round_ in range(ROUNDS):
            if round_:
                plan = plan_for_new_stale_socket(plan, shared, stale_fds)
            results = []
            for _ in range(2000):
                result = apply_plan(plan, real)
                results.append(result.status.value)
                assert result.status.value in ("applied", "refused"), result.message
                assert os.fstat(live_fd).st_nlink == 1, f"round {round_}: the live socket was removed: {result.message}"
                if result.status.value == "applied":
                    break
            assert engine.client.exec_inspect(exec_id)["Running"], "the exchange loop stopped: the test proved nothing"
            assert "applied" in results, results
            assert os.fstat(stale_fds[-1]).st_nlink == 0, "applied, but the stale socket still has a name"
        assert live.alive
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(f"/proc/self/fd/{live_fd}")  # still the live server, still listening
    finally:
        for fd in (live_fd, *stale_fds):
            os.close(fd)
        pid = engine.client.exec_inspect(exec_id)["Pid"]
        if pid and engine.client.exec_inspect(exec_id)["Running"]:
            os.kill(pid, signal.SIGTERM)
    assert not [p for p in d.iterdir() if p.name.startswith(".socktui-")], "a private directory was left behind"


ROUNDS = 8


def plan_for_new_stale_socket(plan: Plan, shared: Path, stale_fds: list[int]) -> Plan:
    """Bind (and close) a socket under a spare name, pin it, move it to ``old.sock``; the same plan, for it."""
    spare = shared / "new.tmp"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(spare))
    stale_fds.append(os.open(spare, os.O_PATH | os.O_NOFOLLOW))
    os.rename(spare, shared / "old.sock")  # old.sock was gone, so the loop was idle until now
    st = os.fstat(stale_fds[-1])
    [step] = plan.steps
    assert step.expect is not None
    return replace(plan, steps=(replace(step, expect=replace(step.expect, dev=st.st_dev, ino=st.st_ino)),))


# --------------------------------------------------------------------------- 3. a doomed fix stops nobody


@pytest.fixture
def tmpfs_at(d: Path) -> Iterator[list[Path]]:
    """Mount points made by a test, unmounted (lazily: a container may still hold one) at the end."""
    made: list[Path] = []
    try:
        yield made
    finally:
        for where in reversed(made):
            subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def mount_tmpfs(where: Path, made: list[Path]) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(where)], check=True)
    made.append(where)


@pytest.mark.engine
@pytest.mark.parametrize("live_repair", [True, False], ids=["live", "stopping"])
def test_a_shadow_directory_on_a_read_only_filesystem_is_refused_before_stopping(
    engine: Engine, containers: ContainerFactory, d: Path, tmpfs_at: list[Path], live_repair: bool
) -> None:
    ro = d / "ro"
    ro.mkdir()
    mount_tmpfs(ro, tmpfs_at)
    name = unique_name()
    cid = containers.run(name=name, command=TRAP, binds=[f"{ro / 'app.sock'}:/run/app.sock"], tmpfs={"/run": ""})
    assert (ro / "app.sock").is_dir()
    subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
    before = started_at(engine, cid)

    proc = fix_cli(engine, name, "/run/app.sock", "remove-shadow-dir", "--yes", "--wait", "1", live_repair=live_repair)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert started_at(engine, cid) == before, "the holder was stopped and started again for nothing"
    assert "read-only" in proc.stdout and "EROFS" in proc.stdout
    assert (ro / "app.sock").is_dir()
    containers.cleanup()


@pytest.mark.engine
@pytest.mark.parametrize("live_repair", [True, False], ids=["live", "stopping"])
def test_a_shadow_directory_that_is_a_mount_point_is_refused_before_stopping(
    engine: Engine, containers: ContainerFactory, d: Path, tmpfs_at: list[Path], live_repair: bool
) -> None:
    sock = d / "app.sock"
    name = unique_name()
    cid = containers.run(name=name, command=TRAP, binds=[f"{sock}:/run/app.sock"], tmpfs={"/run": ""})
    mount_tmpfs(sock, tmpfs_at)  # something is mounted on the directory Docker made: rmdir gets EBUSY
    before = started_at(engine, cid)

    proc = fix_cli(engine, name, "/run/app.sock", "remove-shadow-dir", "--yes", "--wait", "1", live_repair=live_repair)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert started_at(engine, cid) == before, "the holder was stopped and started again for nothing"
    assert "mount point" in proc.stdout and "EBUSY" in proc.stdout
    assert sock.is_dir() and os.path.ismount(sock)
    containers.cleanup()


@pytest.mark.engine
@pytest.mark.parametrize("live_repair", [True, False], ids=["live", "stopping"])
def test_a_running_container_that_can_write_the_parent_makes_remove_shadow_dir_refuse_before_stopping(
    engine: Engine, containers: ContainerFactory, d: Path, live_repair: bool
) -> None:
    """It is not a holder (so the fix would not stop it) and could fill the directory between the check and the
    rmdir, after the holders were stopped."""
    parent = d / "p"
    parent.mkdir()
    sock = parent / "app.sock"
    name = unique_name()
    cid = containers.run(name=name, command=TRAP, binds=[f"{sock}:/run/app.sock"], tmpfs={"/run": ""})
    other = unique_name()
    containers.run(name=other, command=TRAP, binds=[f"{parent}:/p"])
    before = started_at(engine, cid)

    proc = fix_cli(engine, name, "/run/app.sock", "remove-shadow-dir", "--yes", "--wait", "1", live_repair=live_repair)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert started_at(engine, cid) == before, "the holder was stopped for a fix that could be made to fail"
    assert f"{other} mounts {parent} read-write" in proc.stdout
    assert sock.is_dir()


# --------------------------------------------------------------------------- 4. the audit log


def a_result(source: str = "/srv/app.sock", message: str = "every step done") -> FixResult:
    container = ContainerSpec(id="f" * 64, name="web", state="running", image="busybox")
    mount = MountSpec(type="bind", source=source, destination="/run/app.sock")
    plan = Plan(FixOffer("remove-stale-socket", "Remove the socket file nobody listens on", True), container, mount)
    return FixResult(plan, Status.REFUSED, message)


@pytest.fixture
def state_home(state: Path) -> Path:
    """XDG_STATE_HOME, already pointed at a fresh directory for every reliability test (conftest.py)."""
    return state


def test_audit_log_is_created_0700_and_0600_and_holds_no_control_character(state_home: Path) -> None:
    hostile = "/srv/x\x1b]52;c;ZWNobyBwd25lZA==\x07\x7f\n\x9b.sock"
    assert audit.record(a_result(hostile, message="done\r\n[done] forged\x1b[2J")) is None
    log = state_home / "socktui" / "actions.log"
    assert stat.S_IMODE((state_home / "socktui").stat().st_mode) == 0o700
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    raw = log.read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    assert not [b for b in raw[:-1] if b < 0x20 or b >= 0x7F], raw
    entry = json.loads(raw)
    assert entry["target"]["source"] == hostile  # exact, once decoded


def test_a_symlink_at_the_audit_log_path_is_refused_and_its_target_untouched(state_home: Path, d: Path) -> None:
    (state_home / "socktui").mkdir(mode=0o700)
    target = d / "precious"
    target.write_text("keep\n")
    (state_home / "socktui" / "actions.log").symlink_to(target)
    warning = audit.record(a_result())
    assert warning is not None and "refused" in warning and "symlink" in warning
    assert target.read_text() == "keep\n"


def test_a_symlinked_audit_directory_is_refused(state_home: Path, d: Path) -> None:
    elsewhere = d / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (state_home / "socktui").symlink_to(elsewhere)
    warning = audit.record(a_result())
    assert warning is not None and "refused" in warning
    assert list(elsewhere.iterdir()) == []


def test_a_fifo_at_the_audit_log_path_is_never_opened_or_written(state_home: Path) -> None:
    (state_home / "socktui").mkdir(mode=0o700)
    fifo = state_home / "socktui" / "actions.log"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        warning = audit.record(a_result())
        assert warning is not None and "FIFO" in warning
        # A writer that opened it and went away, even without writing, would leave POLLHUP: nobody ever opened it.
        poller = select.poll()
        poller.register(reader, select.POLLIN)
        assert poller.poll(0) == [], "the FIFO was opened for writing"
        assert os.read(reader, 100) == b""  # end of file: nothing was written
    finally:
        os.close(reader)


def test_a_fifo_at_the_audit_log_path_with_no_reader_does_not_hang(state_home: Path) -> None:
    """Before, opening it for append waited for a reader forever: the fix then hung after it was applied."""
    (state_home / "socktui").mkdir(mode=0o700)
    os.mkfifo(state_home / "socktui" / "actions.log")
    code = (
        "from socktui import audit\n"
        "from socktui.fixes import FixResult, Plan, Status\n"
        "from socktui.model import ContainerSpec, FixOffer, MountSpec\n"
        "plan = Plan(FixOffer('x', 'x', True), ContainerSpec('f' * 64, 'web', 'running', 'busybox'), "
        "MountSpec('bind', '/srv/a.sock', '/run/a.sock'))\n"
        "print(audit.record(FixResult(plan, Status.REFUSED, 'no')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env=dict(os.environ)
    )
    assert proc.returncode == 0, proc.stderr
    assert "FIFO" in proc.stdout


def test_an_audit_directory_owned_by_another_user_is_refused(state_home: Path) -> None:
    theirs = state_home / "socktui"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, NOBODY, NOBODY)
    warning = audit.record(a_result())
    assert warning is not None and f"belongs to uid {NOBODY}" in warning
    assert list(theirs.iterdir()) == []


def test_under_sudo_the_log_goes_to_roots_state_directory_unless_named(
    state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUDO_USER", "someone")
    import pwd

    root_home = pwd.getpwuid(0).pw_dir
    assert audit.log_path() == Path(root_home) / ".local" / "state" / "socktui" / "actions.log"
    named = tmp_path / "mine" / "audit.log"
    monkeypatch.setenv("SOCKTUI_AUDIT_LOG", str(named))
    assert audit.log_path() == named
    assert audit.record(a_result()) is None
    assert json.loads(named.read_text())["fix"] == "remove-stale-socket"


# --------------------------------------------------------------------------- 5. snippets and output


HOSTILE = '/srv/it\'s $(touch {pwned}1)\ntouch {pwned}2\n`touch {pwned}3`\x1b]0;x\x07, "q".sock'


def hostile_report(pwned: Path) -> tuple[ContainerReport, MountReport, str]:
    source = HOSTILE.format(pwned=pwned)
    container = ContainerSpec(id="f" * 64, name="web", state="running", image="busybox", pid=1)
    mount = MountSpec(type="bind", source=source, destination="/run/app.sock", from_binds=True)
    host = PathStat(path=source, kind=Kind.SOCKET, dev=1, ino=2, gid=999)
    report = MountReport(mount=mount, role=Role.SOCKET, verdict=Verdict.DETACHED, reason="x", host=host)
    return ContainerReport(container=container, mounts=(report,)), report, source


def run_in_bash(snippet: str, tmp_path: Path) -> list[list[str]]:
    """Run a copied snippet the way a user pasting it would, with docker and socktui replaced by recorders."""
    calls = tmp_path / "calls"
    prelude = (
        f"docker() {{ printf '%s\\0' docker \"$@\" >> {calls}; printf '\\n' >> {calls}; }}\n"
        f"socktui() {{ printf '%s\\0' socktui \"$@\" >> {calls}; printf '\\n' >> {calls}; }}\n"
        "command_not_found_handle() { return 0; }\n"  # the compose lines are not commands; ignore them
    )
    subprocess.run(["bash", "-c", prelude + snippet], capture_output=True, timeout=10, check=False)
    if not calls.exists():
        return []
    return [line.split("\0") for line in calls.read_text().split("\0\n") if line]


def compose_part(snippet: str) -> object:
    lines = snippet.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("# compose"))
    body = [line for line in lines[start + 1 :] if not line.lstrip().startswith("#")]
    return yaml.safe_load("\n".join(body))


@pytest.mark.parametrize("fix_id", ["mount-parent-dir", "use-mount-flag", "start-server-first"])
def test_no_byte_of_a_path_in_a_copied_snippet_becomes_a_shell_command(fix_id: str, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    report, mount, source = hostile_report(pwned)
    snippet = advice_for(fix_id, report, mount)
    assert snippet
    calls = run_in_bash(snippet, tmp_path)
    assert not list(tmp_path.glob("pwned*")), f"the snippet ran a command from the path:\n{snippet}"
    for line in snippet.split("\n"):
        assert not (set(line) & CONTROL), line
    if fix_id == "mount-parent-dir":
        pair = f"{os.path.dirname(source)}:{container_dir_for(mount.mount)}"
        assert ["docker", "run", "-v", pair, "..."] == calls[0][:5], calls
        assert compose_part(snippet) == {"volumes": [pair]}
    if fix_id == "use-mount-flag":
        [call] = calls
        assert call[:3] == ["docker", "run", "--mount"]
        import csv

        fields = next(csv.reader([call[3]]))
        assert fields == ["type=bind", f"src={source}", "dst=/run/app.sock"]
        volumes = compose_part(snippet)
        assert isinstance(volumes, dict) and volumes["volumes"][0]["source"] == source


def test_the_copied_fix_command_and_the_plan_keep_a_hostile_path_in_its_place(tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    report, mount, source = hostile_report(pwned)
    command = fix_command("web", source, "restart-container")
    assert run_in_bash(command, tmp_path) == [["socktui", "fix", "web", source, "restart-container"]]
    from socktui.ui.app import suggested_command

    copied = suggested_command(report, mount, [report])
    run_in_bash(copied, tmp_path)
    assert not list(tmp_path.glob("pwned*"))

    forged = "/srv/x\n  [done] removed everything\x1b[2J.sock"
    container = report.container
    hostile_mount = MountSpec(type="bind", source=forged, destination="/run/app.sock", from_binds=True)
    stale = MountReport(
        mount=hostile_mount,
        role=Role.SOCKET,
        verdict=Verdict.STALE,
        reason="x",
        host=PathStat(path=forged, kind=Kind.SOCKET, dev=1, ino=2),
        fixes=(FixOffer("remove-stale-socket", "Remove the socket file nobody listens on", True),),
    )
    text = render_plan(plan_fix("remove-stale-socket", ContainerReport(container, (stale,)), stale))
    lines = text.split("\n")
    assert not [line for line in lines if line.lstrip().startswith("[done]")], text
    assert not [line for line in lines if set(line) & CONTROL], text


@pytest.mark.engine
def test_socktui_fix_output_shows_a_hostile_source_escaped_on_its_own_line(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    source = d / "x\n  [done] removed /etc\x1b]2;owned\x07.sock"
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{source}:/run/app.sock"], tmpfs={"/run": ""})
    for args in ((), ("remove-shadow-dir", "--dry-run"), ("use-mount-flag",), ("remove-shadow-dir", "--yes")):
        applying = "--yes" in args
        if applying:
            (source / "keep").write_text("")  # not empty: the fix stops at a step whose message names the path
        proc = fix_cli(engine, name, "/run/app.sock", *args)
        assert proc.returncode == (1 if applying else 0), proc.stdout + proc.stderr
        for line in (proc.stdout + proc.stderr).split("\n"):
            assert not (set(line) & CONTROL), repr(line)
            assert not line.lstrip().startswith("[done]"), repr(line)
        assert "\\n  [done] removed /etc\\x1b]2;owned\\x07.sock" in proc.stdout


@pytest.mark.engine
async def test_the_tui_writes_the_audit_log_off_its_screen_thread(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However long the log's filesystem takes, the screen does not wait for it (the write runs in a worker)."""
    from socktui.session import Options, make_session
    from socktui.ui.app import SocktuiApp

    entered, release, returned = threading.Event(), threading.Event(), threading.Event()

    def slow_record(result: FixResult, *, dry_run: bool = False) -> str | None:
        entered.set()
        release.wait(10)
        returned.set()
        return "could not write the audit log: slow disk"

    monkeypatch.setattr(audit, "record", slow_record)
    app = SocktuiApp(make_session(Options(host=engine.host)), live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.fix_done(a_result())
        await until(pilot, entered.is_set, "the audit write to start")
        assert not returned.is_set(), "the screen waited for the audit log"
        assert "fix remove-stale-socket refused" in log_text(app)
        release.set()
        await until(pilot, lambda: "slow disk" in log_text(app), "the warning in the log")
