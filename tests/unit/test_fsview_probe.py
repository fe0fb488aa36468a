"""Looking at real paths and connecting to real sockets in temporary directories (no daemon needed)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import harness
from socktui.fsview import DIR_SCAN_LIMIT, ContainerRoot, host_lstat, host_socket_names
from socktui.linux import RESOLVE_IN_ROOT, openat2
from socktui.model import UNTRUSTED_SYMLINK, Kind
from socktui.probe import probe_fd, probe_host_path, recognise_api

DOCKER_PING_REPLY = (
    b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: text/plain; charset=utf-8\r\nDocker-Experimental: false\r\n"
    b"Ostype: linux\r\nServer: Docker/20.10.24 (linux)\r\nContent-Length: 2\r\n\r\nOK"
)
PODMAN_PING_REPLY = (
    b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nLibpod-Api-Version: 4.9.3\r\nLibpod-Buildah-Version: 1.33.7\r\n"
    b"Server: Libpod/4.9.3 (linux)\r\nContent-Length: 2\r\n\r\nOK"
)


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory: sun_path holds only 108 bytes, and pytest's tmp_path can be longer than that allows."""
    with harness.short_dir("st-") as path:
        yield path


@contextmanager
def listening(path: Path | str, kind: int = socket.SOCK_STREAM, backlog: int = 8) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, kind)
    sock.bind(os.fspath(path))
    if kind != socket.SOCK_DGRAM:
        sock.listen(backlog)
    try:
        yield sock
    finally:
        sock.close()


@contextmanager
def http_server(path: Path, reply: bytes | None) -> Iterator[list[bytes]]:
    """Accepts one connection on ``path``; answers ``reply`` to the request, or never answers when None."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(os.fspath(path))
    srv.listen(1)
    srv.settimeout(5)
    received: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            received.append(data)
            if reply is None:
                done.wait(5)  # hold the connection open, silent, until the test is over
            else:
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        done.set()
        thread.join(5)
        srv.close()


# host_lstat -----------------------------------------------------------------------------------------------------------


def test_host_lstat_of_a_missing_path(sockdir: Path) -> None:
    st_ = host_lstat(str(sockdir / "nothing.sock"))
    assert st_.kind is Kind.MISSING
    assert st_.error is None


def test_host_lstat_below_a_regular_file_is_missing_with_enotdir(sockdir: Path) -> None:
    (sockdir / "file").write_text("x")
    st_ = host_lstat(str(sockdir / "file" / "app.sock"))
    assert st_.kind is Kind.MISSING
    assert st_.error == "ENOTDIR"


def test_host_lstat_with_a_nul_byte_is_missing_not_an_exception(sockdir: Path) -> None:
    st_ = host_lstat(f"{sockdir}/a\0b.sock")
    assert st_.kind is Kind.MISSING
    assert st_.error == "EINVAL"


def test_host_lstat_through_a_symlink_loop_is_an_error(sockdir: Path) -> None:
    os.symlink("loop", sockdir / "loop")
    st_ = host_lstat(str(sockdir / "loop" / "app.sock"))
    assert st_.kind is Kind.ERROR
    assert st_.error == "ELOOP"


def test_host_lstat_of_a_socket_records_its_identity_and_mode(sockdir: Path) -> None:
    path = sockdir / "app.sock"
    with listening(path):
        os.chmod(path, 0o660)
        real = os.lstat(path)
        st_ = host_lstat(str(path))
    assert st_.kind is Kind.SOCKET
    assert st_.identity == (real.st_dev, real.st_ino)
    assert st_.mode == 0o660
    assert (st_.uid, st_.gid) == (real.st_uid, real.st_gid)
    assert st_.entries is None
    assert st_.path == str(path)


def test_host_lstat_of_an_empty_directory_counts_zero_entries(sockdir: Path) -> None:
    (sockdir / "shadow.sock").mkdir()
    st_ = host_lstat(str(sockdir / "shadow.sock"))
    assert st_.kind is Kind.DIRECTORY
    assert st_.entries == 0


def test_host_lstat_of_a_directory_counts_its_entries(sockdir: Path) -> None:
    d = sockdir / "d"
    d.mkdir()
    (d / "a").write_text("")
    (d / ".hidden").write_text("")
    (d / "sub").mkdir()
    st_ = host_lstat(str(d))
    assert st_.kind is Kind.DIRECTORY
    assert st_.entries == 3


def test_host_lstat_of_a_regular_file(sockdir: Path) -> None:
    (sockdir / "app.sock").write_text("not a socket")
    st_ = host_lstat(str(sockdir / "app.sock"))
    assert st_.kind is Kind.FILE
    assert st_.entries is None


def test_host_lstat_of_a_fifo(sockdir: Path) -> None:
    os.mkfifo(sockdir / "pipe")
    assert host_lstat(str(sockdir / "pipe")).kind is Kind.FIFO


def test_host_lstat_does_not_follow_a_symlink_and_records_its_target(sockdir: Path) -> None:
    real = sockdir / "real.sock"
    link = sockdir / "link.sock"
    with listening(real):
        os.symlink(real, link)
        st_ = host_lstat(str(link))
        assert st_.kind is Kind.SYMLINK
        assert st_.symlink_target == str(real)
        assert st_.ino == os.lstat(link).st_ino
        assert st_.ino != os.stat(real).st_ino


@pytest.mark.parametrize("name", ["my app.sock", "two\nlines.sock", "☃ ünïcode.sock", " lead and trail .sock"])
def test_host_lstat_and_probe_of_odd_names(sockdir: Path, name: str) -> None:
    path = sockdir / name
    with listening(path):
        st_ = host_lstat(str(path))
        probe = probe_host_path(str(path))
    assert st_.kind is Kind.SOCKET
    assert st_.path == str(path)
    assert probe.ok, probe


def test_host_lstat_of_a_non_utf8_name(sockdir: Path) -> None:
    name = os.fsdecode(b"\xff\xfe.sock")
    path = os.path.join(os.fsdecode(bytes(sockdir)), name)
    with listening(path):
        st_ = host_lstat(path)
        assert st_.kind is Kind.SOCKET
        assert probe_host_path(path).ok
        assert name in host_socket_names(str(sockdir))


@given(st.text(max_size=300))
def test_host_lstat_never_raises(name: str) -> None:
    assert host_lstat("/tmp/socktui-no-such-dir/" + name).kind in (Kind.MISSING, Kind.ERROR)


# host_socket_names ----------------------------------------------------------------------------------------------------


def test_host_socket_names_lists_sockets_and_socket_named_links_one_level_down(sockdir: Path) -> None:
    with listening(sockdir / "a.sock"), listening(sockdir / "noext"):
        (sockdir / "notes.txt").write_text("")
        (sockdir / "file.sock").write_text("")  # a regular file named like a socket is not listed
        os.symlink("/nowhere/x.sock", sockdir / "link.sock")
        os.symlink("/nowhere/x", sockdir / "link-plain")
        (sockdir / "sub").mkdir()
        with listening(sockdir / "sub" / "deep.sock"):
            assert host_socket_names(str(sockdir)) == ("a.sock", "link.sock", "noext")


def test_host_socket_names_of_a_missing_or_non_directory_path_is_empty(sockdir: Path) -> None:
    assert host_socket_names(str(sockdir / "missing")) == ()
    (sockdir / "f").write_text("")
    assert host_socket_names(str(sockdir / "f")) == ()


def test_host_socket_names_finds_a_socket_past_the_old_scan_limit(sockdir: Path) -> None:
    """A directory with more entries than DIR_SCAN_LIMIT used to be cut there, hiding the sockets past it.

    Every entry here but two is a socket: whatever order the filesystem lists them in (ext4 hashes the names), a cut
    anywhere hides some of them. One socket among many files could land before the cut and prove nothing."""
    names = {f"s{i:05d}" for i in range(DIR_SCAN_LIMIT + 50)}
    for name in names:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(sockdir / name))  # closed without unlink: a socket file is left
    os.mkfifo(sockdir / "fifo")
    (sockdir / "sub").mkdir()
    with listening(sockdir / "zz-last.sock"):
        assert host_socket_names(str(sockdir)) == tuple(sorted({*names, "zz-last.sock"}))


# ContainerRoot on our own root ----------------------------------------------------------------------------------------


def test_container_root_on_own_pid_sees_the_same_socket(sockdir: Path) -> None:
    path = sockdir / "app.sock"
    with listening(path), ContainerRoot(os.getpid()) as root:
        seen = root.lstat(str(path))
        assert seen.kind is Kind.SOCKET
        assert seen.identity == host_lstat(str(path)).identity
        with root.opened(str(path)) as fd:
            assert probe_fd(fd).ok


def test_container_root_follows_a_symlink_chain_only_when_asked(sockdir: Path) -> None:
    real = sockdir / "c.sock"
    with listening(real), ContainerRoot(os.getpid()) as root:
        os.symlink("c.sock", sockdir / "b")  # relative
        os.symlink(sockdir / "b", sockdir / "a")  # absolute, resolved in the (here: host) root
        assert root.lstat(str(sockdir / "a")).kind is Kind.SYMLINK
        with root.opened(str(sockdir / "a"), follow=True) as fd:
            assert os.fstat(fd).st_ino == os.lstat(real).st_ino
            assert probe_fd(fd).ok


def test_container_root_lstat_of_missing_path_and_directory(sockdir: Path) -> None:
    (sockdir / "d").mkdir()
    (sockdir / "d" / "x").write_text("")
    with ContainerRoot(os.getpid()) as root:
        assert root.lstat(str(sockdir / "nope")).kind is Kind.MISSING
        d = root.lstat(str(sockdir / "d"))
        assert d.kind is Kind.DIRECTORY
        assert d.entries == 1


def test_container_root_parents_lists_each_directory_down_to_the_parent(sockdir: Path) -> None:
    (sockdir / "a" / "b").mkdir(parents=True)
    target = sockdir / "a" / "b" / "app.sock"
    with ContainerRoot(os.getpid()) as root:
        chain = root.parents(str(target))
    assert [p.path for p in chain][-1] == str(sockdir / "a" / "b")
    assert chain[0].path == "/"
    assert all(p.kind is Kind.DIRECTORY for p in chain)
    assert len(chain) == len(target.parts) - 1


def test_container_root_read_text_never_blocks_on_a_fifo(sockdir: Path) -> None:
    """A FIFO where /etc/passwd should be: opening it for reading would wait for a writer forever."""
    os.mkfifo(sockdir / "passwd")
    with ContainerRoot(os.getpid()) as root:
        assert root.read_text(str(sockdir / "passwd")) is None


def test_container_root_read_text_reads_no_more_than_its_limit(sockdir: Path) -> None:
    """A container can make its /etc/passwd as large as it likes (a sparse file costs it nothing): only the first
    ``limit`` bytes are ever read."""
    with open(sockdir / "passwd", "wb") as f:
        f.write(b"app:x:1000:1000::/:/bin/sh\n")
        f.truncate(64 << 20)  # 64 MiB, almost all of it a hole
    with ContainerRoot(os.getpid()) as root:
        text = root.read_text(str(sockdir / "passwd"), limit=4096)
        assert text is not None and text.startswith("app:x:1000:") and len(text) == 4096
        default = root.read_text(str(sockdir / "passwd"))
        assert default is not None and len(default) == 1 << 20


def test_container_root_read_text_refuses_a_symlink(sockdir: Path) -> None:
    (sockdir / "passwd").write_text("app:x:1000:1000::/:/bin/sh\n")
    os.symlink(sockdir / "passwd", sockdir / "link")
    with ContainerRoot(os.getpid()) as root:
        assert root.read_text(str(sockdir / "passwd")) == "app:x:1000:1000::/:/bin/sh\n"
        assert root.read_text(str(sockdir / "link")) is None
        assert root.read_text(str(sockdir)) is None  # a directory is not text
        assert root.read_text(str(sockdir / "missing")) is None


def test_container_root_close_is_idempotent() -> None:
    root = ContainerRoot(os.getpid())
    root.close()
    root.close()
    assert root.fd == -1


# RESOLVE_IN_ROOT confines resolution to a fake root ------------------------------------------------------------------


@pytest.fixture
def fake_root(sockdir: Path) -> Iterator[tuple[Path, Path, int]]:
    """``sockdir/root`` as a container root, and a live socket *outside* it; yields (root, outside socket, dirfd)."""
    root = sockdir / "root"
    (root / "run").mkdir(parents=True)
    outside = sockdir / "outside.sock"
    with listening(outside):
        fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield root, outside, fd
        finally:
            os.close(fd)


def _identity(fd: int) -> tuple[int, int]:
    st_ = os.fstat(fd)
    return (st_.st_dev, st_.st_ino)


def _outside_identity(path: Path) -> tuple[int, int]:
    st_ = os.stat(path)
    return (st_.st_dev, st_.st_ino)


def test_absolute_symlink_does_not_reach_the_outside_socket(fake_root: tuple[Path, Path, int]) -> None:
    root, outside, dirfd = fake_root
    os.symlink(outside, root / "run" / "evil.sock")
    # Without RESOLVE_IN_ROOT the link escapes: that is the attack this guards against.
    fd = openat2(dirfd, "run/evil.sock", os.O_PATH, 0)
    try:
        assert _identity(fd) == _outside_identity(outside)
    finally:
        os.close(fd)
    with pytest.raises(FileNotFoundError):
        openat2(dirfd, "run/evil.sock", os.O_PATH, RESOLVE_IN_ROOT)


def test_absolute_symlink_resolves_to_the_same_path_inside_the_root(fake_root: tuple[Path, Path, int]) -> None:
    root, outside, dirfd = fake_root
    decoy = root / str(outside).lstrip("/")
    decoy.parent.mkdir(parents=True)
    decoy.write_text("inside")
    os.symlink(outside, root / "run" / "evil.sock")
    fd = openat2(dirfd, "run/evil.sock", os.O_PATH, RESOLVE_IN_ROOT)
    try:
        assert _identity(fd) == (os.stat(decoy).st_dev, os.stat(decoy).st_ino)
        assert _identity(fd) != _outside_identity(outside)
    finally:
        os.close(fd)


def test_dot_dot_escapes_are_confined_to_the_root(fake_root: tuple[Path, Path, int]) -> None:
    root, outside, dirfd = fake_root
    climb = "../" * 12 + str(outside).lstrip("/")
    with pytest.raises(FileNotFoundError):
        openat2(dirfd, climb, os.O_PATH, RESOLVE_IN_ROOT)
    fd = openat2(dirfd, "run/../../../..", os.O_PATH, RESOLVE_IN_ROOT)
    try:
        assert _identity(fd) == _identity(dirfd)  # ".." above the root stays at the root
    finally:
        os.close(fd)


def test_relative_symlink_climbing_out_is_confined(fake_root: tuple[Path, Path, int]) -> None:
    root, outside, dirfd = fake_root
    os.symlink("../" * 12 + str(outside).lstrip("/"), root / "run" / "rel.sock")
    with pytest.raises(FileNotFoundError):
        openat2(dirfd, "run/rel.sock", os.O_PATH, RESOLVE_IN_ROOT)


def test_symlinked_directory_in_the_middle_is_confined(fake_root: tuple[Path, Path, int]) -> None:
    root, outside, dirfd = fake_root
    os.symlink(outside.parent, root / "hostdir")
    with pytest.raises(FileNotFoundError):
        openat2(dirfd, f"hostdir/{outside.name}", os.O_PATH, RESOLVE_IN_ROOT)


def test_openat2_refuses_a_nul_byte(fake_root: tuple[Path, Path, int]) -> None:
    _, _, dirfd = fake_root
    with pytest.raises(OSError) as info:
        openat2(dirfd, "run/a\0b", os.O_PATH, RESOLVE_IN_ROOT)
    assert info.value.errno == 22  # EINVAL


@pytest.fixture
def chrooted_process(fake_root: tuple[Path, Path, int]) -> Iterator[tuple[int, Path, Path]]:
    """A process whose root is the fake root, like a container's: ContainerRoot(pid) opens /proc/PID/root."""
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    root, outside, _ = fake_root
    code = "import os, sys, time; os.chroot(sys.argv[1]); os.chdir('/'); print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc.pid, root, outside
    finally:
        proc.kill()
        proc.wait()


def test_container_root_of_a_chrooted_process_never_leaves_its_root(chrooted_process: tuple[int, Path, Path]) -> None:
    pid, root, outside = chrooted_process
    (root / "etc").mkdir()
    os.symlink("/etc/passwd", root / "etc" / "passwd")  # a hostile image pointing at the host's file
    os.symlink(outside, root / "run" / "evil.sock")
    os.symlink(outside.parent, root / "run" / "hostdir")
    with ContainerRoot(pid) as croot:
        assert croot.lstat("/run/evil.sock").kind is Kind.SYMLINK
        with pytest.raises(FileNotFoundError):
            croot.open_path("/run/evil.sock", follow=True)
        assert croot.read_text("/etc/passwd") is None
        assert croot.lstat(f"/run/hostdir/{outside.name}").kind is Kind.MISSING
        assert croot.lstat("/../../.." + str(outside)).kind is Kind.MISSING
        chain = croot.parents(f"/run/hostdir/{outside.name}")
        assert [p.path for p in chain] == ["/", "/run", "/run/hostdir"]
        assert chain[-1].kind is Kind.ERROR
        assert chain[-1].error == "ENOENT"


def test_container_root_of_a_chrooted_process_probes_a_socket_inside(chrooted_process: tuple[int, Path, Path]) -> None:
    pid, root, _ = chrooted_process
    inside = root / "run" / "in.sock"
    with listening(inside), ContainerRoot(pid) as croot:
        seen = croot.lstat("/run/in.sock")
        assert seen.kind is Kind.SOCKET
        assert seen.identity == host_lstat(str(inside)).identity
        with croot.opened("/run/in.sock") as fd:
            assert probe_fd(fd).ok


# probes ---------------------------------------------------------------------------------------------------------------


def test_probe_of_a_listening_socket(sockdir: Path) -> None:
    with listening(sockdir / "app.sock"):
        result = probe_host_path(str(sockdir / "app.sock"))
    assert result.ok
    assert result.errno is None
    assert result.latency_ms >= 0
    assert result.sock_type == "stream"
    assert result.api is None


def test_lstat_and_probe_of_a_socket_path_longer_than_sun_path(sockdir: Path) -> None:
    deep = sockdir / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = deep / "app.sock"
    assert len(os.fsencode(str(path))) > 108  # too long to bind or connect by name
    dirfd = os.open(deep, os.O_PATH | os.O_DIRECTORY)
    try:
        with listening(f"/proc/self/fd/{dirfd}/app.sock"):
            assert host_lstat(str(path)).kind is Kind.SOCKET
            result = probe_host_path(str(path))  # connects through an O_PATH fd, so length does not matter
    finally:
        os.close(dirfd)
    assert result.ok, result


def test_probe_of_a_socket_whose_server_closed_without_unlinking(sockdir: Path) -> None:
    path = sockdir / "stale.sock"
    with listening(path):
        pass
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    result = probe_host_path(str(path))
    assert not result.ok
    assert result.errno == "ECONNREFUSED"


@pytest.mark.timeout(10)
def test_probe_of_a_full_backlog_returns_eagain_instead_of_hanging(sockdir: Path) -> None:
    path = sockdir / "busy.sock"
    pending: list[socket.socket] = []
    with listening(path, backlog=0):
        try:
            for _ in range(64):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
                pending.append(c)
                if c.connect_ex(str(path)) != 0:
                    break
            result = probe_host_path(str(path))
        finally:
            for c in pending:
                c.close()
    assert not result.ok
    assert result.errno == "EAGAIN"
    assert "backlog" in result.detail


def test_probe_of_a_datagram_socket(sockdir: Path) -> None:
    with listening(sockdir / "log.sock", socket.SOCK_DGRAM):
        result = probe_host_path(str(sockdir / "log.sock"))
    assert result.ok
    assert result.sock_type == "dgram"


def test_probe_of_a_seqpacket_listener(sockdir: Path) -> None:
    with listening(sockdir / "seq.sock", socket.SOCK_SEQPACKET):
        result = probe_host_path(str(sockdir / "seq.sock"))
    assert result.ok
    assert result.sock_type == "seqpacket"


def test_probe_does_not_follow_a_symlink_to_a_live_socket(sockdir: Path) -> None:
    with listening(sockdir / "real.sock"):
        os.symlink(sockdir / "real.sock", sockdir / "link.sock")
        result = probe_host_path(str(sockdir / "link.sock"))
    assert not result.ok
    assert result.errno == "ELOOP"
    assert "not followed" in result.detail


def test_probe_of_a_directory_says_enotsock(sockdir: Path) -> None:
    (sockdir / "shadow.sock").mkdir()
    result = probe_host_path(str(sockdir / "shadow.sock"))
    assert not result.ok
    assert result.errno == "ENOTSOCK"


def test_probe_of_a_regular_file_says_enotsock(sockdir: Path) -> None:
    (sockdir / "file.sock").write_text("")
    assert probe_host_path(str(sockdir / "file.sock")).errno == "ENOTSOCK"


def test_probe_of_a_missing_path(sockdir: Path) -> None:
    result = probe_host_path(str(sockdir / "none.sock"))
    assert not result.ok
    assert result.errno == "ENOENT"


@pytest.mark.timeout(10)
def test_ping_recognises_docker(sockdir: Path) -> None:
    path = sockdir / "docker.sock"
    with http_server(path, DOCKER_PING_REPLY) as received:
        result = probe_host_path(str(path), ping=True, deadline=2.0)
    assert result.ok
    assert result.api == "docker"
    assert "docker API" in result.detail
    assert received and received[0].startswith(b"GET /_ping HTTP/1.1\r\n")


@pytest.mark.timeout(10)
def test_ping_recognises_podman(sockdir: Path) -> None:
    path = sockdir / "podman.sock"
    with http_server(path, PODMAN_PING_REPLY):
        result = probe_host_path(str(path), ping=True, deadline=2.0)
    assert result.ok
    assert result.api == "podman"


@pytest.mark.timeout(10)
def test_ping_of_a_server_that_never_answers_returns_with_no_api(sockdir: Path) -> None:
    path = sockdir / "docker.sock"
    with http_server(path, None):
        result = probe_host_path(str(path), ping=True, deadline=0.2)
    assert result.ok  # it connected: the socket is live, just not a Docker API
    assert result.api is None
    assert "no Docker API reply" in result.detail


@pytest.mark.timeout(10)
def test_ping_of_a_server_answering_something_else(sockdir: Path) -> None:
    path = sockdir / "docker.sock"
    with http_server(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"):
        result = probe_host_path(str(path), ping=True, deadline=2.0)
    assert result.ok
    assert result.api is None


@pytest.mark.timeout(10)
def test_send_returns_the_reply_line(sockdir: Path) -> None:
    path = sockdir / "echo.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    srv.settimeout(5)

    def echo() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.sendall(conn.recv(100))

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    try:
        result = probe_host_path(str(path), send=b"hello\n", deadline=2.0)
    finally:
        thread.join(5)
        srv.close()
    assert result.ok
    assert result.reply == "hello\n"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTP/1.1 404 Not Found\r\n\r\nOK",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nApi-Version: 1.41",  # cut before the body
        b"HTTP/1.1 2000 OK\r\n\r\nOK",
        b"OK",
    ],
)
def test_recognise_api_rejects_junk(raw: bytes) -> None:
    assert recognise_api(raw) is None


def test_recognise_api_accepts_docker_and_podman_replies() -> None:
    assert recognise_api(DOCKER_PING_REPLY) == "docker"
    assert recognise_api(PODMAN_PING_REPLY) == "podman"
    assert recognise_api(b"HTTP/1.0 200\r\n\r\nOK") == "docker"


@given(st.binary(max_size=512))
def test_recognise_api_never_raises(raw: bytes) -> None:
    assert recognise_api(raw) in (None, "docker", "podman")


# host paths resolved by hostpath --------------------------------------------------------------------------------


def test_a_host_path_redirected_through_a_user_owned_symlink_is_not_reported_as_its_target(sockdir: Path) -> None:
    """A user who owns a directory on the way can point the path string anywhere: socktui does not follow."""
    real = sockdir / "real"
    real.mkdir()
    user_dir = sockdir / "user"
    user_dir.mkdir()
    os.chown(user_dir, 65534, 65534)
    os.symlink(str(real), user_dir / "sub")
    with listening(real / "app.sock"):
        seen = host_lstat(str(user_dir / "sub" / "app.sock"))
        assert seen.kind is Kind.ERROR and seen.error == UNTRUSTED_SYMLINK
        assert host_socket_names(str(user_dir / "sub")) == ()
        # The same link made by root in a directory only root can write is followed, as /var/run -> /run is.
        os.symlink(str(real), sockdir / "trusted")
        assert host_lstat(str(sockdir / "trusted" / "app.sock")).kind is Kind.SOCKET
        assert host_socket_names(str(sockdir / "trusted")) == ("app.sock",)
