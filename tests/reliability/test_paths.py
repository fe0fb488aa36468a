"""Paths that break naive code: spaces, newlines, unicode, bytes that are not UTF-8, great length, symlinks, pseudo
filesystems, unreadable parents, and a file watcher that runs out of inotify watches.

A watched directory deleted and recreated is proved by tests/unit/test_watch.py::
test_a_watched_directory_deleted_and_recreated_is_watched_again.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from reliability_support import TRAP, NonRoot, listening_socket, socktui_cli, unique_name, validate_document

from harness import SOCKSERVER, ContainerFactory, Engine, SocketServers
from socktui.diagnose import diagnose, diagnose_containers
from socktui.engine import Engine as SocktuiEngine
from socktui.model import (
    CheckReport,
    ContainerReport,
    ContainerSpec,
    EngineInfo,
    Kind,
    Liveness,
    MountReport,
    MountSpec,
    Verdict,
)
from socktui.report import to_json

LOCAL = EngineInfo(endpoint="unix:///var/run/docker.sock", local=True, version="27.0.0")


def look(engine: Engine, name: str) -> ContainerReport:
    [found] = [c for c in diagnose(SocktuiEngine.from_options(host=engine.host), names=[name]).containers]
    return found


def only_mount(report: ContainerReport) -> MountReport:
    [m] = report.socket_mounts
    return m


def to_json_of(report: ContainerReport) -> str:
    return to_json(CheckReport(LOCAL, (report,)))


# --------------------------------------------------------------------------- spaces, newlines, unicode


@pytest.mark.engine
@pytest.mark.parametrize("filename", ["with space.sock", "new\nline.sock", "snow☃ café.sock", "tab\tand\x1besc.sock"])
def test_odd_characters_in_a_socket_path(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path, filename: str
) -> None:
    server = sockserver.start(d / filename)
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{server.path}:/run/app.sock"])
    m = only_mount(look(engine, name))
    assert m.mount.source == str(server.path)  # the engine hands the path back exactly
    assert m.verdict is Verdict.LIVE, m.reason
    assert m.container is not None and m.container.stat is not None
    assert m.container.stat.ino == server.ident[1]  # type: ignore[index]
    # Found by the file's identity in the socket table, whatever bytes its name holds (a newline included, which
    # split /proc/net/unix's line and hid the listener before).
    assert m.listener is not None and m.listener.pid == server.pid

    proc = socktui_cli("check", "--json", "-H", engine.host, name)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert validate_document(doc) == []
    assert doc["containers"][0]["mounts"][0]["source"] == str(server.path)
    proc = socktui_cli("check", "-H", engine.host, name)
    assert proc.returncode == 0
    assert "\x1b" not in proc.stdout and "\t" not in proc.stdout
    listed = [line for line in proc.stdout.splitlines() if line.startswith("  live ")]
    assert len(listed) == 1  # a newline in the path is shown as \n, never as a second line


@pytest.mark.engine
def test_a_non_utf8_source_reaches_docker_as_u_fffd_and_socktui_reports_that_path(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    """The Engine API is JSON: a path byte that is not UTF-8 cannot be sent, docker-py's escape decodes as U+FFFD.

    Docker then mounts (and, for -v, creates a directory at) the U+FFFD spelling, a different path; socktui reports
    the path the engine used, and what is really there.
    """
    raw = os.fsencode(str(d)) + b"/bad\xff.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(raw)
        server.listen(4)
        name = unique_name()
        containers.run(name=name, command=TRAP, binds=[os.fsdecode(raw) + ":/run/app.sock"])
        replaced = str(d / "bad\ufffd.sock")
        assert os.path.isdir(replaced)  # Docker's own doing: its -v of a missing path
        m = only_mount(look(engine, name))
        assert m.mount.source == replaced
        assert m.verdict is Verdict.SHADOWED, m.reason
        assert "Docker created it" in m.reason
        proc = socktui_cli("check", "--json", "-H", engine.host, name)
        assert proc.returncode == 1
        doc = json.loads(proc.stdout)
        assert validate_document(doc) == []
        assert doc["containers"][0]["mounts"][0]["source"] == replaced
        assert os.path.exists(raw)  # the real socket is untouched


@pytest.mark.engine
def test_a_non_utf8_socket_name_inside_a_shared_directory_is_live(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    """Inside a socket-dir the name comes from the host (surrogateescape): the bytes round-trip, nothing is lost."""
    shared = d / "shared"
    shared.mkdir()
    raw = os.fsencode(str(shared)) + b"/latin\xe9.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(raw)
        server.listen(4)
        name = unique_name()
        containers.run(name=name, command=TRAP, binds=[f"{shared}:/shared"])
        m = only_mount(look(engine, name))
        assert m.verdict is Verdict.OK, m.reason
        [s] = m.sockets
        assert os.fsencode(s.host_path) == raw
        assert os.fsencode(s.container_path) == b"/shared/latin\xe9.sock"
        assert s.verdict is Verdict.LIVE, s.reason
        assert s.bound is not None and s.bound.liveness is Liveness.LISTENING
        assert s.listener is not None and s.listener.pid == os.getpid()

        proc = socktui_cli("check", "--json", "-H", engine.host, name)
        assert proc.returncode == 0, proc.stderr
        proc.stdout.encode("ascii")  # \udce9 travels as an escape: the document stays valid
        [js] = json.loads(proc.stdout)["containers"][0]["mounts"][0]["sockets"]
        assert js["name"] == "latin\udce9.sock"
        assert os.fsencode(js["host_path"]) == raw  # a reader decodes with surrogateescape to get the bytes
        text = socktui_cli("check", "-H", engine.host, name).stdout
        assert "latin\\udce9.sock" in text


# --------------------------------------------------------------------------- very long paths


def test_a_source_longer_than_path_max_is_unknown_not_a_crash() -> None:
    long_source = "/" + "/".join(["d" * 200] * 25) + "/app.sock"
    assert len(long_source) > 4096
    spec = ContainerSpec(
        id="a" * 64,
        name="long",
        state="exited",
        image="x",
        mounts=(MountSpec("bind", long_source, "/run/app.sock", from_binds=True),),
        inspected=True,
    )
    [report] = diagnose_containers(LOCAL, [spec])
    m = only_mount(report)
    assert m.host is not None and (m.host.kind, m.host.error) == (Kind.ERROR, "ENAMETOOLONG")
    assert m.verdict is Verdict.UNKNOWN
    assert "ENAMETOOLONG" in m.reason
    assert validate_document(json.loads(to_json_of(report))) == []


def test_a_path_too_long_is_not_blamed_on_permissions() -> None:
    long_source = "/" + "/".join(["d" * 200] * 25) + "/app.sock"
    spec = ContainerSpec(
        id="a" * 64,
        name="long",
        state="exited",
        image="x",
        mounts=(MountSpec("bind", long_source, "/run/app.sock", from_binds=True),),
        inspected=True,
    )
    [report] = diagnose_containers(LOCAL, [spec])
    reason = only_mount(report).reason
    assert "as root" not in reason and "owner" not in reason


@pytest.mark.engine
def test_a_socket_path_longer_than_sun_path_is_probed_through_its_fd(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    """Bound by a server that chdir'ed and bound a relative name; nobody can connect() to it by its full path."""
    deep = d / ("a" * 60) / ("b" * 60)
    deep.mkdir(parents=True)
    path = deep / "app.sock"
    assert len(os.fsencode(str(path))) > 108
    server = subprocess.Popen(
        [sys.executable, str(SOCKSERVER), "app.sock"], cwd=deep, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and server.stdout.readline().startswith("READY ")
        with socket.socket(socket.AF_UNIX) as naive, pytest.raises(OSError):
            naive.connect(str(path))  # what a by-name connect gets: the path does not fit in sun_path
        name = unique_name()
        containers.run(name=name, command=TRAP, binds=[f"{path}:/run/app.sock"])
        m = only_mount(look(engine, name))
        assert m.verdict is Verdict.LIVE, m.reason
        assert m.bound is not None and m.bound.liveness is Liveness.LISTENING
        # Asked to connect, it does so through an O_PATH fd (/proc/self/fd/N), which fits where the path does not.
        [asked] = diagnose(SocktuiEngine.from_options(host=engine.host), names=[name], connect=True).containers
        am = only_mount(asked)
        assert am.host_probe is not None and am.host_probe.ok
        assert am.container is not None and am.container.probe is not None and am.container.probe.ok
        proc = socktui_cli("check", "--json", "-H", engine.host, name)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["containers"][0]["mounts"][0]["verdict"] == "live"
    finally:
        server.terminate()
        server.wait(timeout=10)


# --------------------------------------------------------------------------- symlinked sources


@pytest.mark.engine
def test_a_source_that_is_a_symlink_to_a_live_socket(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    """Docker lets mount(2) follow the link: the container gets the target socket, and socktui judges that target
    (fixes still never act through the link: their no-follow fstatat sees a symlink and refuses)."""
    server = sockserver.start(d / "real.sock")
    (d / "link.sock").symlink_to(server.path)
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{d / 'link.sock'}:/run/app.sock"])
    assert engine.client.inspect_container(name)["Mounts"][0]["Source"] == str(d / "link.sock")
    m = only_mount(look(engine, name))
    # What Docker mounted: the container sees the target socket's inode, and it accepts there.
    assert m.container is not None and m.container.stat is not None
    assert (m.container.stat.kind, m.container.stat.ino) == (Kind.SOCKET, server.ident[1])  # type: ignore[index]
    assert m.bound is not None and m.bound.liveness is Liveness.LISTENING
    # What socktui says: judged at the target Docker mounted, and it says the source is a symlink.
    assert m.host is not None and m.host.kind is Kind.SOCKET
    assert m.verdict is Verdict.LIVE, m.reason
    assert "symlink" in m.reason and str(server.path) in m.reason
    assert m.fixes == ()
    assert os.readlink(d / "link.sock") == str(server.path)


@pytest.mark.engine
def test_a_symlinked_source_is_judged_by_what_docker_mounted(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    server = sockserver.start(d / "real.sock")
    (d / "link.sock").symlink_to(server.path)
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{d / 'link.sock'}:/run/app.sock"])
    m = only_mount(look(engine, name))
    assert m.verdict is Verdict.LIVE, m.reason
    assert "symlink" in m.reason and str(server.path) in m.reason


# --------------------------------------------------------------------------- /proc, /sys and /dev sources


@pytest.mark.engine
def test_sources_under_dev_proc_and_sys_are_judged_without_crashing(
    engine: Engine, containers: ContainerFactory
) -> None:
    name = unique_name()
    binds = [
        "/dev/null:/run/null.sock",
        "/proc/version:/run/version.sock",
        "/sys/kernel:/run/kernel.sock",
        "/dev:/hostdev",
    ]
    containers.run(name=name, command=TRAP, binds=binds)
    proc = socktui_cli("check", "--json", "--all", "-H", engine.host, name, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert validate_document(doc) == []
    by_src = {m["source"]: m for m in doc["containers"][0]["mounts"]}
    assert by_src["/dev/null"]["verdict"] == "not-socket" and "character device" in by_src["/dev/null"]["reason"]
    assert by_src["/proc/version"]["verdict"] == "not-socket" and "regular file" in by_src["/proc/version"]["reason"]
    assert by_src["/sys/kernel"]["verdict"] == "shadowed"  # a directory where a *.sock name says a socket goes
    assert "entries" in by_src["/sys/kernel"]["reason"]
    assert by_src["/dev"]["role"] in ("other", "socket-dir")
    assert os.path.exists("/dev/null") and os.path.isdir("/sys/kernel")


# --------------------------------------------------------------------------- unreadable parent


NONROOT_DIAGNOSE = textwrap.dedent(
    """
    import json, sys
    from socktui.diagnose import diagnose_containers
    from socktui.model import CheckReport, ContainerSpec, EngineInfo, MountSpec
    from socktui.report import to_json
    info = EngineInfo(endpoint="unix:///var/run/docker.sock", local=True, version="x")
    spec = ContainerSpec(id="b" * 64, name="web", state="exited", image="x", inspected=True,
                         mounts=(MountSpec("bind", sys.argv[1], "/run/app.sock", from_binds=True),))
    print(to_json(CheckReport(info, tuple(diagnose_containers(info, [spec])))))
    """
)


def test_a_source_under_an_unreadable_directory_is_unknown_with_the_reason(nonroot: NonRoot, d: Path) -> None:
    private = d / "private"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)
    with listening_socket(private / "app.sock"):
        proc = nonroot.run(["-c", NONROOT_DIAGNOSE, str(private / "app.sock")])
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert validate_document(doc) == []
    [m] = doc["containers"][0]["mounts"]
    assert m["verdict"] == "unknown"
    assert "EACCES" in m["reason"] and "run socktui as root" in m["reason"]
    assert m["fixes"] == []


# --------------------------------------------------------------------------- inotify watch limit


WATCH_WITHOUT_INOTIFY = textwrap.dedent(
    """
    import json, os, socket, sys, threading, time
    from socktui.sources.dirs import DirectoryWatcher
    path = os.path.join(sys.argv[1], "app.sock")
    notices, changes = [], []
    watcher = DirectoryWatcher([path], poll_delay_ms=50)
    stop = threading.Event()
    worker = threading.Thread(target=watcher.run, args=(changes.extend, stop, notices.append), daemon=True)
    worker.start()
    deadline = time.monotonic() + 15
    while not (notices and watcher.watched) and time.monotonic() < deadline:
        time.sleep(0.02)
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    while not any(c.path == path for c in changes) and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    worker.join(5)
    print(json.dumps({"notices": notices, "changes": [[c.path, c.change] for c in changes],
                      "polling": watcher.polling, "alive": worker.is_alive()}))
    """
)


@pytest.mark.timeout(60)
def test_with_the_inotify_watch_limit_exhausted_the_watcher_polls_and_says_so(d: Path) -> None:
    """A real limit: max_inotify_watches set to 0 in a user namespace of our own, so nothing else is affected."""
    shell = 'echo 0 > /proc/sys/user/max_inotify_watches && exec "$0" "$@"'
    argv = ["unshare", "--user", "--map-root-user", "sh", "-c", shell, sys.executable, "-c", WATCH_WITHOUT_INOTIFY]
    try:
        proc = subprocess.run([*argv, str(d)], capture_output=True, text=True, timeout=40, check=False)
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if proc.returncode != 0 and ("unshare" in proc.stderr or "Permission denied" in proc.stderr):
        pytest.skip(f"cannot make a user namespace with its own inotify limit here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["notices"] == ["inotify watch limit reached; polling every 50 ms"]
    assert result["polling"] is True
    assert [str(d / "app.sock"), "added"] in result["changes"]
    assert result["alive"] is False
