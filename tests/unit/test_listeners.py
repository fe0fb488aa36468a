"""Who listens on a socket: /proc/net/unix parsing, the /proc/*/fd scan, and a real listener in this process."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socktui.listeners import (
    ListenerIndex,
    UnixEntry,
    command_of,
    container_of,
    listening_inode,
    parse_net_unix,
    pids_by_socket_inode,
    read_net_unix,
)

# The kernel's layout: Num RefCount Protocol Flags Type St Inode Path. Flags 00010000 is __SO_ACCEPTCON (listening).
SAMPLE = """\
Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 20001 /run/docker.sock
0000000000000000: 00000003 00000000 00000000 0001 03 20002 /run/docker.sock
0000000000000000: 00000002 00000000 00010000 0001 01 20003 @/tmp/.X11-unix/X0
0000000000000000: 00000002 00000000 00000000 0002 01 20004
0000000000000000: 00000003 00000000 00000000 0001 03 20005
0000000000000000: 00000002 00000000 00010000 0001 01 20006 /run/my app/with  spaces.sock
0000000000000000: 00000002 00000000 00010000 0005 01 20007 /run/seq.sock
0000000000000000: 00000002 00000000 00000000 0002 01 20008 /run/systemd/journal/dev-log
0000000000000000: 00000002 00000000 00010000 0001 01 20010 /run/app.sock
0000000000000000: 00000002 00000000 00010000 0001 01 20020 /run/app.sock
garbage line that does not fit the table at all
0000000000000000: 00000002 00000000 zzzzzzzz 0001 01 20030 /run/bad-flags.sock
"""


def test_parse_net_unix_keeps_named_sockets_and_skips_the_rest() -> None:
    entries = parse_net_unix(SAMPLE)
    assert entries == [
        UnixEntry(inode=20001, listening=True, path="/run/docker.sock"),
        UnixEntry(inode=20002, listening=False, path="/run/docker.sock"),
        UnixEntry(inode=20006, listening=True, path="/run/my app/with  spaces.sock"),
        UnixEntry(inode=20007, listening=True, path="/run/seq.sock"),
        UnixEntry(inode=20008, listening=False, path="/run/systemd/journal/dev-log"),
        UnixEntry(inode=20010, listening=True, path="/run/app.sock"),
        UnixEntry(inode=20020, listening=True, path="/run/app.sock"),
    ]


def test_parse_net_unix_skips_abstract_names() -> None:
    assert all(not e.path.startswith("@") for e in parse_net_unix(SAMPLE))


def test_parse_net_unix_of_header_only_or_empty_text() -> None:
    assert parse_net_unix("") == []
    assert parse_net_unix(SAMPLE.splitlines()[0] + "\n") == []


def test_listening_inode_ignores_connected_sockets_at_the_same_path() -> None:
    assert listening_inode(parse_net_unix(SAMPLE), "/run/docker.sock") == 20001


def test_listening_inode_picks_the_newest_listener() -> None:
    assert listening_inode(parse_net_unix(SAMPLE), "/run/app.sock") == 20020


def test_listening_inode_of_a_path_with_spaces_and_of_unknown_paths() -> None:
    entries = parse_net_unix(SAMPLE)
    assert listening_inode(entries, "/run/my app/with  spaces.sock") == 20006
    assert listening_inode(entries, "/run/systemd/journal/dev-log") is None  # bound but not listening
    assert listening_inode(entries, "/run/nothing.sock") is None


@given(st.text())
def test_parse_net_unix_never_raises(text: str) -> None:
    for e in parse_net_unix("header\n" + text):
        assert isinstance(e.inode, int)


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
    path = Path(tempfile.mkdtemp(prefix="st-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_read_net_unix_sees_our_listening_socket(sockdir: Path) -> None:
    path = str(sockdir / "live.sock")
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(path)
        srv.listen(1)
        assert listening_inode(read_net_unix(), path) == os.fstat(srv.fileno()).st_ino


def test_listener_index_finds_this_process(sockdir: Path) -> None:
    path = str(sockdir / "live.sock")
    quiet = str(sockdir / "quiet.sock")
    with socket.socket(socket.AF_UNIX) as srv, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dgram:
        srv.bind(path)
        srv.listen(1)
        dgram.bind(quiet)
        index = ListenerIndex({})
        index.want(path)
        index.want(quiet)
        index.want(str(sockdir / "none.sock"))
        index.resolve()
        found = index.get(path)
        assert found is not None
        assert found.pid == os.getpid()
        assert "python" in found.command or "pytest" in found.command
        assert found.container is None
        assert index.get(quiet) is None  # bound, never listening
        assert index.get(str(sockdir / "none.sock")) is None
        assert index.get(str(sockdir / "never-asked.sock")) is None


def test_listener_index_by_netns_pid(sockdir: Path) -> None:
    path = str(sockdir / "ns.sock")
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(path)
        srv.listen(1)
        index = ListenerIndex({})
        index.want(path, os.getpid())
        index.resolve()
        found = index.get(path, os.getpid())
        assert found is not None and found.pid == os.getpid()
        assert index.get(path) is None  # asked for one namespace table, not "self"


@pytest.mark.parametrize("name", ["with space.sock", os.fsdecode(b"latin\xe9.sock"), "snow☃.sock"])
def test_listener_index_matches_odd_paths_as_os_fsdecode_spells_them(sockdir: Path, name: str) -> None:
    path = os.path.join(str(sockdir), name)
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(path)
        srv.listen(1)
        index = ListenerIndex({})
        index.want(path)
        index.resolve()
        found = index.get(path)
        assert found is not None and found.pid == os.getpid()
