"""A socket directory that lost its sockets stays a socket directory (issue 11, item 2), and a data directory never
becomes one: the clues (companion files, conventional directories, the session's memory, ``--expect DIR/``), the
verdicts and reasons they give, and the listing and look they come from, on real directories."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from builders import DIR_SOURCE, container, dir_mount, dir_obs, directory, entry, local_engine, missing

from socktui.diagnose import diagnose_containers
from socktui.fsview import host_dir_names
from socktui.model import ContainerSpec, Kind, MountReport, MountSpec, Role, Verdict
from socktui.observe import SocketMemory
from socktui.roles import ClueKind, DirClue, companion_clue, conventional_dir, dir_clues, looks_like_socket, role_of
from socktui.verdict import Decision, MountObservation, decide


def verdict_of(obs: MountObservation) -> Decision:
    decision = decide(obs)
    assert decision is not None
    return decision


# --------------------------------------------------------------------------- lock files are not sockets


@pytest.mark.parametrize(
    "name", [".s.PGSQL.5432.lock", "mysqld.sock.lock", "app.sock.lock", "docker.sock.pid", "/run/x/agent.1.lck"]
)
def test_lock_and_pid_files_are_not_socket_candidates(name: str) -> None:
    assert looks_like_socket(name) is False


def test_the_socket_the_lock_file_names_still_is() -> None:
    assert looks_like_socket(".s.PGSQL.5432") and looks_like_socket("mysqld.sock")


# --------------------------------------------------------------------------- companion files


@pytest.mark.parametrize(
    ("name", "socket", "words"),
    [
        (".s.PGSQL.5432.lock", ".s.PGSQL.5432", "PostgreSQL's lock file .s.PGSQL.5432.lock names .s.PGSQL.5432"),
        ("mysqld.sock.lock", "mysqld.sock", "MySQL's lock file mysqld.sock.lock names mysqld.sock"),
        ("app.sock.lock", "app.sock", "the lock file app.sock.lock names app.sock"),
        ("app.sock.pid", "app.sock", "the pid file app.sock.pid names app.sock"),
        ("nginx.pid", None, "nginx's pid file nginx.pid is in it"),
        ("redis-server.pid", None, "redis-server's pid file redis-server.pid is in it"),
        ("php8.2-fpm.pid", None, "php8.2-fpm's pid file"),
        ("15-main.pid", None, "15-main's pid file"),
    ],
)
def test_companion_files_name_their_socket_or_their_server(name: str, socket: str | None, words: str) -> None:
    clue = companion_clue(name)
    assert clue is not None and clue.kind is ClueKind.COMPANION
    assert clue.socket == socket
    assert words in clue.says


@pytest.mark.parametrize("name", ["app.pid", "data.lock", "db.sqlite", "cache.lck", ".pid", "postmaster.pid", "x"])
def test_files_of_a_data_directory_are_no_companions(name: str) -> None:
    assert companion_clue(name) is None


# --------------------------------------------------------------------------- conventional directories


@pytest.mark.parametrize(
    ("path", "server"),
    [
        ("/run/postgresql", "PostgreSQL"),
        ("/var/run/postgresql/", "PostgreSQL"),
        ("/run/mysqld", "MySQL"),
        ("/var/run/redis", "Redis"),
        ("/run/php", "PHP-FPM"),
        ("/tmp/.X11-unix", "X server"),
        ("/run/user/1000", "session services"),
        ("/run/user/1000/pulse", "PulseAudio"),
        ("/run/user/0/docker", "rootless Docker"),
    ],
)
def test_conventional_runtime_directories_are_known(path: str, server: str) -> None:
    clue = conventional_dir(path)
    assert clue is not None and server in clue.says


@pytest.mark.parametrize(
    "path", ["/run", "/var/run", "/srv/data", "/run/user", "/run/user/x", "/run/user/1000/cache/a", "run/redis", ""]
)
def test_other_directories_are_not_conventional(path: str) -> None:
    assert conventional_dir(path) is None


# --------------------------------------------------------------------------- role_of


def test_an_empty_directory_with_a_clue_is_a_socket_dir_and_without_one_is_other() -> None:
    mount = dir_mount("/srv/pg", "/sockets")
    assert role_of(mount, Kind.DIRECTORY) is Role.OTHER
    clues = dir_clues(mount, companions=[".s.PGSQL.5432.lock"])
    assert role_of(mount, Kind.DIRECTORY, (), (), clues) is Role.SOCKET_DIR


@pytest.mark.parametrize("side", ["source", "destination"])
def test_a_conventional_directory_on_either_side_is_a_socket_dir(side: str) -> None:
    mount = dir_mount("/run/postgresql", "/pg") if side == "source" else dir_mount("/srv/pg", "/var/run/postgresql")
    assert role_of(mount, Kind.DIRECTORY) is Role.SOCKET_DIR
    [clue] = dir_clues(mount)
    assert "PostgreSQL" in clue.says
    assert ("(inside the container)" in clue.says) is (side == "destination")


def test_a_directory_held_a_socket_earlier_in_the_session() -> None:
    mount = dir_mount("/srv/web", "/web")
    [clue] = dir_clues(mount, seen=["nginx.sock"])
    assert clue == DirClue(ClueKind.SEEN, "it held nginx.sock earlier in this session", "nginx.sock")
    assert role_of(mount, Kind.DIRECTORY, (), (), (clue,)) is Role.SOCKET_DIR


def test_expect_with_a_slash_names_a_directory_of_sockets_and_without_it_a_socket() -> None:
    mount = dir_mount("/srv/web", "/web")
    assert role_of(mount, Kind.DIRECTORY, expected=["/srv/web/"]) is Role.SOCKET_DIR
    assert role_of(mount, Kind.DIRECTORY, expected=["/web/"]) is Role.SOCKET_DIR
    assert role_of(mount, Kind.DIRECTORY, expected=["/srv/web"]) is Role.SOCKET  # a socket: a directory shadows it
    assert role_of(mount, Kind.MISSING, expected=["/srv/web/"]) is Role.SOCKET  # nothing there: judged as a socket
    [clue] = dir_clues(mount, expected=["/srv/web/"])
    assert clue.kind is ClueKind.EXPECTED and "--expect /srv/web/" in clue.says


def test_data_directories_stay_other() -> None:
    """No false alarm: data, caches, an app's own pid and lock files, a database's pid file in its data dir."""
    for source, destination, files in [
        ("/srv/data", "/data", ["db.sqlite", "app.pid", "data.lock"]),
        ("/var/lib/postgresql/15/main", "/var/lib/postgresql/data", ["postmaster.pid", "PG_VERSION"]),
        ("/home/me/project", "/app", ["package.json", "yarn.lock", "server.pid"]),
        ("/run", "/host-run", []),
    ]:
        mount = dir_mount(source, destination)
        companions = [f for f in files if companion_clue(f) is not None]
        assert companions == []
        assert role_of(mount, Kind.DIRECTORY, (), (), dir_clues(mount, companions)) is Role.OTHER, source


# --------------------------------------------------------------------------- verdicts and reasons


def test_an_empty_conventional_directory_is_missing_and_says_whose_it_is() -> None:
    mount = dir_mount("/srv/pg", "/var/run/postgresql")
    obs = dir_obs(host_dir=directory("/srv/pg", entries=0), mount=mount)
    d = verdict_of(replace(obs, clues=dir_clues(mount)))
    assert d.verdict is Verdict.MISSING
    assert d.reason.startswith("no socket in /srv/pg (at /var/run/postgresql inside): ")
    assert "PostgreSQL puts its socket (.s.PGSQL.PORT)" in d.reason
    assert "nothing is bound there: the server is not running" in d.reason


def test_a_lock_file_naming_a_missing_socket_gives_missing_with_that_name() -> None:
    gone = replace(
        entry(".s.PGSQL.5432", missing(f"{DIR_SOURCE}/.s.PGSQL.5432")),
        expected_by="PostgreSQL's lock file .s.PGSQL.5432.lock names .s.PGSQL.5432",
    )
    d = verdict_of(dir_obs(gone))
    assert d.verdict is Verdict.MISSING
    assert d.reason == (
        f"no socket in {DIR_SOURCE}: PostgreSQL's lock file .s.PGSQL.5432.lock names .s.PGSQL.5432; nothing is "
        "bound there: the server is not running, or its socket was removed"
    )


# --------------------------------------------------------------------------- the listing, on a real directory


def _bind_socket(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    return s


def test_the_listing_finds_sockets_and_companions_and_ignores_the_rest(tmp_path: Path) -> None:
    for name in (".s.PGSQL.5432.lock", "nginx.pid", "app.pid", "data.db", "mysqld.sock.lock"):
        (tmp_path / name).write_text("1\n")
    (tmp_path / "sub.sock").mkdir()
    os.symlink("/etc/passwd", tmp_path / "15-main.pid")  # a link is never a companion (nor read)
    os.mkfifo(tmp_path / "x.pid")  # nor a FIFO
    s = _bind_socket(tmp_path / "live.sock")
    try:
        names = host_dir_names(str(tmp_path))
    finally:
        s.close()
    assert names.sockets == ("live.sock",)
    assert names.companions == (".s.PGSQL.5432.lock", "mysqld.sock.lock", "nginx.pid")


# --------------------------------------------------------------------------- the look, on real directories


def _stopped(name: str, *mounts: MountSpec) -> ContainerSpec:
    return container("exited", name=name, mounts=mounts)


def _mount_report(
    spec: ContainerSpec, memory: SocketMemory | None = None, expected: tuple[str, ...] = ()
) -> MountReport:
    [report] = diagnose_containers(local_engine(), [spec], expected, memory=memory)
    [m] = report.mounts
    return m


def test_a_directory_that_held_a_socket_keeps_its_role_in_the_session_and_says_what_it_held(tmp_path: Path) -> None:
    run = tmp_path / "web"
    run.mkdir()
    spec = _stopped("web", MountSpec(type="bind", source=str(run), destination="/srv/web", from_binds=True))
    memory = SocketMemory()
    s = _bind_socket(run / "nginx.sock")
    s.listen(1)
    try:
        first = _mount_report(spec, memory)
        assert first.role is Role.SOCKET_DIR and first.verdict is Verdict.OK
    finally:
        s.close()
        (run / "nginx.sock").unlink()
    later = _mount_report(spec, memory)
    assert later.role is Role.SOCKET_DIR
    assert later.verdict is Verdict.MISSING
    assert "it held nginx.sock earlier in this session" in later.reason
    assert [s.name for s in later.sockets] == ["nginx.sock"]
    # Without a memory (socktui check) the empty directory is not a socket mount; --expect DIR/ makes it one.
    assert _mount_report(spec).role is Role.OTHER
    expected = _mount_report(spec, expected=(f"{run}/",))
    assert expected.verdict is Verdict.MISSING
    assert f"--expect {run}/ names it as a directory of sockets" in expected.reason


def test_a_lock_file_left_behind_makes_the_missing_socket_an_entry(tmp_path: Path) -> None:
    run = tmp_path / "pg"
    run.mkdir()
    (run / ".s.PGSQL.5499.lock").write_text("4242\n/var/lib/postgresql\n")
    spec = _stopped("db", MountSpec(type="bind", source=str(run), destination="/sockets", from_binds=True))
    m = _mount_report(spec)
    assert m.role is Role.SOCKET_DIR and m.verdict is Verdict.MISSING
    assert "PostgreSQL's lock file .s.PGSQL.5499.lock names .s.PGSQL.5499" in m.reason
    assert [(s.name, s.verdict) for s in m.sockets] == [(".s.PGSQL.5499", Verdict.MISSING)]


def test_a_data_directory_on_disk_is_no_socket_mount(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("db.sqlite", "app.pid", "data.lock", "postmaster.pid"):
        (data / name).write_text("x")
    spec = _stopped("app", MountSpec(type="bind", source=str(data), destination="/data", from_binds=True))
    assert _mount_report(spec, SocketMemory()).role is Role.OTHER


def test_the_memory_is_bounded() -> None:
    memory = SocketMemory()
    memory.remember("/a/", [f"s{i}.sock" for i in range(50)])
    assert len(memory.names_in("/a")) == SocketMemory.NAMES_PER_DIR
    memory.remember("/b", [])
    assert memory.names_in("/b") == ()
    for i in range(SocketMemory.DIRS + 10):
        memory.remember(f"/d{i}", ["x.sock"])
    assert memory.names_in(f"/d{SocketMemory.DIRS + 9}") == ("x.sock",)
    assert memory.names_in("/a") == ()  # the oldest went first


def test_decide_without_clues_keeps_the_old_sentence() -> None:
    d = decide(dir_obs())
    assert d is not None and d.reason == f"no sockets in {DIR_SOURCE}: no server has bound one there"
