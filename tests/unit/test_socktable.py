"""The kernel's socket table: real sockets bound here, read back through sock_diag, checked against ``ss`` and stat."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import harness
from socktui import socktable
from socktui.linux import kernel_dev, user_dev
from socktui.socktable import (
    SOURCE_PROC,
    SOURCE_SOCK_DIAG,
    Only,
    SocketTable,
    UnixSocket,
    listener_at,
    parse_diag_msg,
    parse_proc_net_unix,
    read_table,
)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # sun_path holds 108 bytes; pytest's tmp_path can be longer than that.
    with harness.short_dir("stbl-") as path:
        yield path


def identity(path: Path) -> tuple[int, int]:
    st = os.stat(path, follow_symlinks=False)
    return (st.st_dev, st.st_ino)


def bound(path: Path, kind: int = socket.SOCK_STREAM, backlog: int | None = 16) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, kind)
    sock.bind(str(path))
    if backlog is not None:
        sock.listen(backlog)
    return sock


def test_a_listener_is_found_by_its_file_identity(short_dir: Path) -> None:
    path = short_dir / "app.sock"
    with bound(path, backlog=7) as server:
        table = read_table()
        found = table.listener_at(identity(path))
        assert found is not None
        assert found.listening and found.type == "stream"
        assert found.name == str(path)
        assert found.file == identity(path)  # the device comes back in os.stat's encoding
        assert (found.queued, found.backlog) == (0, 7)
        assert not found.backlog_full
        assert f"socket:[{found.inode}]" in {os.readlink(f"/proc/self/fd/{n}") for n in [server.fileno()]}
        assert table.source == SOURCE_SOCK_DIAG and table.has_identities
        assert table.netns == os.stat("/proc/self/ns/net").st_ino


def test_the_kernel_rule_for_a_full_backlog_is_queued_greater_than_backlog(short_dir: Path) -> None:
    """``backlog_full`` must be true exactly when the next connect() is refused with EAGAIN."""
    path = short_dir / "full.sock"
    clients: list[socket.socket] = []
    full_after_each: list[bool] = []
    with bound(path, backlog=2):
        try:
            while True:
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
                clients.append(client)
                code = client.connect_ex(str(path))
                if code == errno.EAGAIN:
                    break
                assert code == 0
                listener = read_table().listener_at(identity(path))
                assert listener is not None
                full_after_each.append(listener.backlog_full)
            listener = read_table().listener_at(identity(path))
            assert listener is not None
            # Measured: listen(2) holds three waiting connections before connect() gets EAGAIN.
            assert (len(full_after_each), listener.queued, listener.backlog) == (3, 3, 2)
            assert full_after_each == [False, False, True]
        finally:
            for client in clients:
                client.close()


def test_dgram_and_seqpacket_sockets_and_their_types(short_dir: Path) -> None:
    dgram_path, seq_path = short_dir / "log.sock", short_dir / "seq.sock"
    with bound(dgram_path, socket.SOCK_DGRAM, backlog=None), bound(seq_path, socket.SOCK_SEQPACKET, backlog=3):
        table = read_table()
        [dgram] = table.bound_to(identity(dgram_path))
        assert (dgram.type, dgram.listening, dgram.queued, dgram.backlog) == ("dgram", False, None, None)
        assert table.listener_at(identity(dgram_path)) is None
        seq = table.listener_at(identity(seq_path))
        assert seq is not None and seq.type == "seqpacket" and seq.backlog == 3


def test_a_datagram_server_stays_listed_after_a_client_connected_to_it(short_dir: Path) -> None:
    """connect() on a datagram socket marks both ends ESTABLISHED in the kernel: the server must still be seen."""
    path = short_dir / "dev-log"
    with bound(path, socket.SOCK_DGRAM, backlog=None):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
            client.connect(str(path))
            client.send(b"hello")
            assert [s.type for s in read_table().bound_to(identity(path))] == ["dgram"]
        assert [s.type for s in read_table().bound_to(identity(path))] == ["dgram"]


def test_an_abstract_socket_has_a_name_but_no_file() -> None:
    name = f"socktui-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind("\0" + name)
        sock.listen(1)
        [found] = [s for s in read_table().sockets if s.name == "@" + name]
        assert found.file is None and found.listening


def test_a_socket_file_whose_server_closed_is_bound_to_by_nobody(short_dir: Path) -> None:
    path = short_dir / "stale.sock"
    bound(path).close()  # the file stays; no socket is bound to it any more
    assert path.is_socket()
    assert read_table().bound_to(identity(path)) == ()


def test_only_sockets_that_can_serve_a_new_client_are_listed(short_dir: Path) -> None:
    """Accepted connections share their listener's address; they and unbound sockets are left in the kernel."""
    path = short_dir / "srv.sock"
    with bound(path) as server, socket.socket(socket.AF_UNIX) as client, socket.socket(socket.AF_UNIX) as unbound:
        client.connect(str(path))
        conn, _ = server.accept()
        with conn:
            table = read_table()
            assert [s.listening for s in table.bound_to(identity(path))] == [True]
            inodes = {s.inode for s in table.sockets}
            for sock in (conn, client, unbound):
                assert os.fstat(sock.fileno()).st_ino not in inodes


def test_a_name_with_a_newline_comes_back_whole(short_dir: Path) -> None:
    path = short_dir / "new\nline.sock"
    with bound(path):
        found = read_table().listener_at(identity(path))
        assert found is not None and found.name == str(path)


def test_the_table_agrees_with_ss(short_dir: Path) -> None:
    """``ss -xlpn`` is the tool admins trust: our listeners, their inodes and queues must read the same there."""
    paths = [short_dir / f"s{i}.sock" for i in range(3)]
    socks = [bound(p, backlog=5 + i) for i, p in enumerate(paths)]
    try:
        out = subprocess.run(["ss", "-xlpnH"], capture_output=True, check=True).stdout.decode(
            "utf-8", "surrogateescape"
        )
        truth = {}
        for line in out.splitlines():
            fields = line.split()
            # Netid State Recv-Q Send-Q Local-Address Port Peer-Address Port [Process]
            if len(fields) >= 6 and fields[4] in {str(p) for p in paths}:
                truth[fields[4]] = (int(fields[5]), int(fields[2]), int(fields[3]))
        table = read_table()
        ours = {}
        for p in paths:
            found = table.listener_at(identity(p))
            assert found is not None
            ours[str(p)] = (found.inode, found.queued, found.backlog)
        assert ours == truth
        assert f"pid={os.getpid()}," in out
    finally:
        for s in socks:
            s.close()


LISTEN_IN_NEW_NETNS = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
print("ready", flush=True)
sys.stdin.read()
"""


def test_a_listener_in_another_network_namespace_is_seen_only_in_that_namespace(short_dir: Path) -> None:
    path = short_dir / "ns.sock"
    with subprocess.Popen(
        ["unshare", "-n", sys.executable, "-c", LISTEN_IN_NEW_NETNS, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
            here = read_table()
            there = read_table(proc.pid)
            assert there.netns != here.netns
            assert there.netns == os.stat(f"/proc/{proc.pid}/ns/net").st_ino
            assert here.listener_at(identity(path)) is None
            found = there.listener_at(identity(path))
            assert found is not None and found.backlog == 4
            # socktui's own thread never moved: its namespace is still the host's.
            assert os.stat("/proc/thread-self/ns/net").st_ino == here.netns
            assert listener_at(identity(path)) is None
            assert listener_at(identity(path), [proc.pid, proc.pid]) == found
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()


def test_a_namespace_binds_a_path_only_when_a_socket_there_has_a_file(short_dir: Path) -> None:
    """The cheap test before a dump: /proc/PID/net/unix of the namespace, read without entering it."""
    abstract = f"import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind('\\0st-{os.getpid()}'); s.listen(1); "
    abstract += "print('ready', flush=True); sys.stdin.read()"
    with subprocess.Popen(
        ["unshare", "-n", sys.executable, "-c", abstract], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as only_abstract:
        try:
            assert only_abstract.stdout is not None and only_abstract.stdout.readline() == "ready\n"
            assert not socktable.binds_a_path(only_abstract.pid)
        finally:
            assert only_abstract.stdin is not None
            only_abstract.stdin.close()
            only_abstract.wait()
    with subprocess.Popen(
        ["unshare", "-n", sys.executable, "-c", LISTEN_IN_NEW_NETNS, str(short_dir / "p.sock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as with_path:
        try:
            assert with_path.stdout is not None and with_path.stdout.readline() == "ready\n"
            assert socktable.binds_a_path(with_path.pid)
        finally:
            assert with_path.stdin is not None
            with_path.stdin.close()
            with_path.wait()
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert not socktable.binds_a_path(gone.pid)
    namespaces = socktable.network_namespaces()
    assert namespaces[socktable.netns_of(None)] > 0 and all(pid > 0 for pid in namespaces.values())


def test_a_gone_pid_is_an_oserror_and_listener_at_skips_it(short_dir: Path) -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    with pytest.raises(OSError):
        read_table(proc.pid)
    path = short_dir / "here.sock"
    with bound(path):
        assert listener_at(identity(path), [proc.pid]) is not None


def test_forced_fallback_reads_proc_net_unix_without_identities(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(socktable.FORCE_FALLBACK_ENV, "1")
    path = short_dir / "fb.sock"
    with bound(path, backlog=3):
        table = read_table()
        assert table.source == SOURCE_PROC and not table.has_identities
        assert table.listener_at(identity(path)) is None  # no identities: nothing can be matched by them
        [named] = table.named(str(path))
        assert named.listening and named.type == "stream" and named.file is None


def test_a_narrow_read_lists_only_the_files_asked_about(short_dir: Path) -> None:
    """What the live screen's periodic re-read asks: its own files, no names, connected datagram servers on request."""
    asked, other, dgram_path = short_dir / "asked.sock", short_dir / "other.sock", short_dir / "dgram.sock"
    with (
        bound(asked, backlog=5),
        bound(other),
        bound(dgram_path, socket.SOCK_DGRAM, backlog=None),
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client,
    ):
        client.connect(str(dgram_path))  # the server is ESTABLISHED from now on
        files = frozenset({identity(asked), identity(dgram_path)})
        narrow = read_table(only=Only(files, connected_dgram=False))
        assert [(s.file, s.listening, s.backlog, s.name) for s in narrow.sockets] == [(identity(asked), True, 5, None)]
        with_dgram = read_table(only=Only(files, connected_dgram=True))
        assert {s.file for s in with_dgram.sockets} == files
        assert with_dgram.listener_at(identity(other)) is None
        assert read_table().listener_at(identity(other)) is not None  # the full read still has everyone


def test_the_dev_encoding_round_trips_against_stat(short_dir: Path) -> None:
    for where in (short_dir, Path("/proc"), Path("/dev/shm"), Path("/")):
        st_dev = os.stat(where).st_dev
        assert user_dev(kernel_dev(st_dev)) == st_dev
        assert kernel_dev(st_dev) == (os.major(st_dev) << 20) | os.minor(st_dev)
    # A large minor shows the difference between the encodings (userspace splits the minor around the major).
    big = os.makedev(259, 0x12345)
    assert user_dev(kernel_dev(big)) == big
    assert kernel_dev(big) != big


def test_identity_ignores_the_high_bits_unix_diag_cannot_carry() -> None:
    sock = UnixSocket(inode=1, type="stream", listening=True, name="/x", file=(5, 0x1234), queued=0, backlog=1)
    table = SocketTable(netns=1, source=SOURCE_SOCK_DIAG, sockets=(sock,))
    assert table.listener_at((5, (7 << 32) | 0x1234)) == sock
    assert table.listener_at((6, 0x1234)) is None


def test_proc_net_unix_parser() -> None:
    text = (
        b"Num       RefCount Protocol Flags    Type St Inode Path\n"
        b"0000000000000000: 00000002 00000000 00010000 0001 01 20001 /run/docker.sock\n"
        b"0000000000000000: 00000002 00000000 00000000 0002 01 20004\n"
        b"0000000000000000: 00000002 00000000 00010000 0005 01 20007 @abstract\n"
        b"garbage\n"
    )
    assert [(s.inode, s.type, s.listening, s.name) for s in parse_proc_net_unix(text)] == [
        (20001, "stream", True, "/run/docker.sock"),
        (20007, "seqpacket", True, "@abstract"),
    ]  # the unbound datagram socket is left out


@given(st.binary(max_size=200))
def test_the_diag_parser_never_crashes_on_odd_bytes(raw: bytes) -> None:
    result = parse_diag_msg(raw)
    assert result is None or isinstance(result, UnixSocket)
