"""Who listens on a socket file: found by the file's identity in the kernel's socket tables, and its holder by a
/proc/*/fd scan. A real listener in this process, one in another network namespace, and a namesake elsewhere."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import harness
from socktui import socktable
from socktui.listeners import ListenerIndex, SocketTables, command_of, container_of, pids_by_socket_inode
from socktui.model import Liveness
from socktui.socktable import parse_proc_net_unix

# The kernel's layout: Num RefCount Protocol Flags Type St Inode Path. Flags 00010000 is __SO_ACCEPTCON (listening).
SAMPLE = b"""\
Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 20001 /run/docker.sock
0000000000000000: 00000003 00000000 00000000 0001 03 20002 /run/docker.sock
0000000000000000: 00000002 00000000 00010000 0001 01 20003 @/tmp/.X11-unix/X0
0000000000000000: 00000002 00000000 00000000 0002 01 20004
0000000000000000: 00000002 00000000 00010000 0001 01 20006 /run/my app/with  spaces.sock
0000000000000000: 00000002 00000000 00010000 0005 01 20007 /run/seq.sock
garbage line that does not fit the table at all
0000000000000000: 00000002 00000000 zzzzzzzz 0001 01 20030 /run/bad-flags.sock
"""


def test_the_proc_fallback_parser_keeps_names_with_spaces_and_skips_what_does_not_fit() -> None:
    found = {(s.inode, s.name, s.listening, s.type) for s in parse_proc_net_unix(SAMPLE)}
    assert found == {
        (20001, "/run/docker.sock", True, "stream"),
        (20003, "@/tmp/.X11-unix/X0", True, "stream"),
        (20006, "/run/my app/with  spaces.sock", True, "stream"),
        (20007, "/run/seq.sock", True, "seqpacket"),
    }  # 20002 is a connection (state 03), 20004 unbound: neither can serve a new client
    assert parse_proc_net_unix(b"") == ()


def test_pids_by_socket_inode_scans_a_proc_tree(tmp_path: Path) -> None:
    for pid, links in {"123": ["socket:[555]", "pipe:[1]"], "456": ["socket:[777]"], "self": ["socket:[999]"]}.items():
        (tmp_path / pid / "fd").mkdir(parents=True)
        for n, link in enumerate(links):
            os.symlink(link, tmp_path / pid / "fd" / str(n))
    (tmp_path / "789").mkdir()  # a process that exited between listdir and the fd scan: no fd dir
    assert pids_by_socket_inode({555, 777, 999, 4}, proc=str(tmp_path)) == {555: 123, 777: 456}
    assert pids_by_socket_inode(set(), proc=str(tmp_path)) == {}
    assert pids_by_socket_inode({555}, proc=str(tmp_path / "missing")) == {}


def test_command_of_this_process_and_of_a_missing_pid() -> None:
    assert "python" in command_of(os.getpid()) or "pytest" in command_of(os.getpid())
    assert command_of(2**22 + 12345) == "?"


def test_container_of_a_plain_process_is_none() -> None:
    assert container_of(os.getpid(), {}) is None
    assert container_of(2**22 + 12345, {"a" * 64: "web"}) is None


# A real listener in this process --------------------------------------------------------------------------------------


@pytest.fixture
def sockdir() -> Iterator[Path]:
    with harness.short_dir("st-") as path:
        yield path


def identity(path: str) -> tuple[int, int]:
    st = os.lstat(path)
    return (st.st_dev, st.st_ino)


def test_listener_index_finds_this_process_by_file_identity(sockdir: Path) -> None:
    path = str(sockdir / "live.sock")
    quiet = str(sockdir / "quiet.sock")
    stale = str(sockdir / "stale.sock")
    with socket.socket(socket.AF_UNIX) as srv, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dgram:
        srv.bind(path)
        srv.listen(3)
        dgram.bind(quiet)
        with socket.socket(socket.AF_UNIX) as gone:
            gone.bind(stale)
        index = ListenerIndex({})
        live = index.state(identity(path), path)
        datagram = index.state(identity(quiet), quiet)
        nobody = index.state(identity(stale), stale)
        index.resolve()
        assert (live.liveness, live.queued, live.backlog, live.looked_in) == (Liveness.LISTENING, 0, 3, 1)
        found = index.listener(live)
        assert found is not None and found.pid == os.getpid() and found.container is None
        assert "python" in found.command or "pytest" in found.command
        assert datagram.liveness is Liveness.BOUND and index.listener(datagram) is not None
        assert nobody.liveness is Liveness.UNBOUND and index.listener(nobody) is None
        assert index.tables.reads == 1  # one table for the whole look


def test_a_renamed_socket_file_keeps_its_listener_and_the_old_name_is_nobody_s(sockdir: Path) -> None:
    path, moved = str(sockdir / "a.sock"), str(sockdir / "b.sock")
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(path)
        srv.listen(1)
        os.rename(path, moved)
        with socket.socket(socket.AF_UNIX) as other:
            other.bind(path)  # a new, dead file under the name the server bound
            index = ListenerIndex({})
            assert index.state(identity(moved), moved).liveness is Liveness.LISTENING
            assert index.state(identity(path), path).liveness is Liveness.UNBOUND


NAMESAKE = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
print("ready", flush=True)
sys.stdin.read()
"""


def test_a_namesake_in_another_namespace_is_never_named_and_a_real_one_is_found(sockdir: Path) -> None:
    """A process that binds the same path string in its own network namespace (over a private mount of the
    directory, so a different file) must not be taken for the listener of the host's file."""
    target = str(sockdir / "app.sock")
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(target)  # the host's file: stale
    script = f"mount -t tmpfs none {sockdir} && exec {sys.executable} -c '{NAMESAKE}' {target}"
    with subprocess.Popen(
        ["unshare", "-n", "-m", "--propagation", "private", "sh", "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as namesake:
        try:
            assert namesake.stdout is not None and namesake.stdout.readline() == "ready\n"
            index = ListenerIndex({})
            state = index.state(identity(target), target, [(namesake.pid, target)])
            index.resolve()
            assert state.liveness is Liveness.UNBOUND and state.looked_in == 2
            assert index.listener(state) is None
        finally:
            assert namesake.stdin is not None
            namesake.stdin.close()
            namesake.wait()
    real = str(sockdir / "real.sock")
    with subprocess.Popen(
        ["unshare", "-n", sys.executable, "-c", NAMESAKE, real],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None and server.stdout.readline() == "ready\n"
            index = ListenerIndex({})
            state = index.state(identity(real), real, [(server.pid, "/elsewhere/real.sock")])
            index.resolve()
            assert state.liveness is Liveness.LISTENING and state.backlog == 4
            found = index.listener(state)
            assert found is not None and found.pid == server.pid
        finally:
            assert server.stdin is not None
            server.stdin.close()
            server.wait()


def test_a_server_in_a_namespace_nobody_named_is_found_when_every_namespace_is_read(sockdir: Path) -> None:
    """No pid points at it (a host service with a private network namespace, a container the look was not asked
    about): a look that reads every namespace on the machine finds it; the near ones alone call the file unbound."""
    path = str(sockdir / "far.sock")
    with subprocess.Popen(
        ["unshare", "-n", sys.executable, "-c", NAMESAKE, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None and server.stdout.readline() == "ready\n"
            near = ListenerIndex({}).state(identity(path), path)
            assert near.liveness is Liveness.UNBOUND
            index = ListenerIndex({}, SocketTables(everywhere=True))
            stale = str(sockdir / "stale.sock")
            with socket.socket(socket.AF_UNIX) as gone:
                gone.bind(stale)
            unbound = index.state(identity(stale), stale)  # every namespace looked in for it
            assert unbound.liveness is Liveness.UNBOUND and unbound.looked_in >= 2  # the host's, the server's, ...
            reads = index.tables.reads
            assert reads >= 1
            state = index.state(identity(path), path)
            assert index.tables.reads == reads  # once per look: the second file reads no namespace again
            index.resolve()
            assert state.liveness is Liveness.LISTENING and state.backlog == 4
            assert state.netns == socktable.netns_of(server.pid) != socktable.netns_of(None)
            found = index.listener(state)
            assert found is not None and found.pid == server.pid
        finally:
            assert server.stdin is not None
            server.stdin.close()
            server.wait()


def test_a_namespace_that_cannot_be_read_makes_the_file_unseen_not_stale(sockdir: Path) -> None:
    stale = str(sockdir / "s.sock")
    with socket.socket(socket.AF_UNIX) as gone:
        gone.bind(stale)

    def read(pid: int | None) -> socktable.SocketTable:
        if pid is None:
            return socktable.read_table()
        raise PermissionError(1, "Operation not permitted")

    with subprocess.Popen(["unshare", "-n", "sleep", "60"]) as other:
        try:
            while socktable.netns_of(other.pid) == socktable.netns_of(None):
                pass  # until unshare has moved it
            index = ListenerIndex({}, SocketTables(read))
            state = index.state(identity(stale), stale, [(other.pid, "/x/s.sock")])
            assert (state.liveness, state.looked_in, state.unreadable) == (Liveness.UNSEEN, 1, 1)
        finally:
            other.kill()


def test_the_fallback_matches_by_name_and_says_so(sockdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(socktable.FORCE_FALLBACK_ENV, "1")
    path = str(sockdir / "fb.sock")
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(path)
        srv.listen(2)
        index = ListenerIndex({})
        state = index.state(identity(path), path)
        index.resolve()
        assert state.liveness is Liveness.LISTENING and state.by_name
        assert index.tables.fallback
        found = index.listener(state)
        assert found is not None and found.pid == os.getpid()


@pytest.mark.parametrize("name", ["with space.sock", os.fsdecode(b"latin\xe9.sock"), "snow☃.sock", "new\nline.sock"])
def test_odd_names_make_no_difference_to_identity(sockdir: Path, name: str) -> None:
    path = os.path.join(str(sockdir), name)
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(path)
        srv.listen(1)
        index = ListenerIndex({})
        state = index.state(identity(path), path)
        index.resolve()
        found = index.listener(state)
        assert found is not None and found.pid == os.getpid()
