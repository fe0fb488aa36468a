"""The live sources, against real directories, sockets and processes (and one fake engine, for the reconnect logic)."""

from __future__ import annotations

import errno
import json
import os
import queue
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import watchfiles

import socktui.sources.dirs as dirs_module
import socktui.sources.reprobe as reprobe_module
from socktui import linux
from socktui.engine import Endpoint, Engine, EngineError, Failure
from socktui.model import Liveness, SocketState
from socktui.sources.dirs import (
    ChangeKind,
    DirectoryWatcher,
    PathChange,
    SeenBy,
    nearest_existing,
    relevant_changes,
    replan_triggers,
    watch_dirs_for,
)
from socktui.sources.events import (
    EngineBack,
    EngineEvent,
    EngineEventStream,
    EngineLost,
    EngineState,
    backoff_delays,
    parse_engine_event,
)
from socktui.sources.exits import ListenerExitWatcher
from socktui.sources.reprobe import Reprober

TIMEOUT = 10.0  # generous: only ever reached when something is broken


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


@contextmanager
def running(target: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
    """Run ``target(stop)`` in a thread; on exit set ``stop`` and insist that the thread ends."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def body() -> None:
        try:
            target(stop)
        except BaseException as exc:  # surfaced in the test below
            errors.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    try:
        yield stop
    except BaseException:
        stop.set()
        thread.join(TIMEOUT)
        raise  # the test's own failure says more than a thread that would not stop
    stop.set()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "the source did not stop"
    assert not errors, errors


class Changes:
    """Collects what a DirectoryWatcher reports, with the time each batch arrived."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[float, PathChange]] = []
        self.notices: list[str] = []

    def __call__(self, batch: list[PathChange]) -> None:
        now = time.perf_counter()
        with self.lock:
            self.seen.extend((now, change) for change in batch)

    def notice(self, message: str) -> None:
        with self.lock:
            self.notices.append(message)

    def has(self, path: Path | str, change: str, seen_by: SeenBy | None = None) -> bool:
        wanted = PathChange(str(path), ChangeKind(change))
        with self.lock:
            return any(c == wanted and seen_by in (None, c.seen_by) for _, c in self.seen)

    def time_of(self, path: Path | str, change: str) -> float | None:
        with self.lock:
            for at, c in self.seen:
                if c == PathChange(str(path), ChangeKind(change)):
                    return at
        return None

    def paths(self) -> set[str]:
        with self.lock:
            return {c.path for _, c in self.seen}


@contextmanager
def watching(watcher: DirectoryWatcher) -> Iterator[Changes]:
    changes = Changes()
    with running(lambda stop: watcher.run(changes, stop, changes.notice)) as stop:
        try:
            yield changes
        finally:
            stop.set()
            watcher.wake()  # as the Monitor does: a sleeping watcher notices its stop at once


def bind(path: Path | str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(4)
    return sock


def armed(watcher: DirectoryWatcher, changes: Changes, directory: Path, probe: Path) -> None:
    """Make sure the watch is in place: touch a relevant path until it is reported."""
    assert wait_until(lambda: str(directory) in watcher.watched)
    probe.touch()
    assert wait_until(lambda: changes.has(probe, "added")), "the watcher never reported a change"


# --- pure helpers ---------------------------------------------------------------------------------------------------


def test_watch_dirs_for_watches_the_parent_of_a_socket() -> None:
    exists = {"/", "/run", "/run/app"}.__contains__
    assert watch_dirs_for(["/run/app/app.sock"], exists=exists) == {"/run/app"}


def test_watch_dirs_for_a_socket_dir_watches_it_and_its_parent() -> None:
    exists = {"/", "/srv", "/srv/socks"}.__contains__
    assert watch_dirs_for([], ["/srv/socks"], exists=exists) == {"/srv", "/srv/socks"}


def test_watch_dirs_for_missing_directories_fall_back_to_the_nearest_existing_ancestor() -> None:
    exists = {"/", "/run"}.__contains__
    assert watch_dirs_for(["/run/a/b/c.sock", "/run/x.sock"], ["/srv/socks"], exists=exists) == {"/run", "/"}


def test_watch_dirs_for_normalises_paths() -> None:
    exists = {"/", "/run", "/run/app"}.__contains__
    assert watch_dirs_for(["/run/./other/../app//app.sock/"], exists=exists) == {"/run/app"}


def test_watch_dirs_for_nothing_is_nothing() -> None:
    assert watch_dirs_for([], []) == set()


def test_nearest_existing_stops_at_root() -> None:
    assert nearest_existing("/a/b/c", exists=lambda _p: False) == "/"
    assert nearest_existing("/a/b/c", exists={"/a"}.__contains__) == "/a"


def test_relevant_changes_keeps_interest_and_direct_children_of_socket_dirs() -> None:
    added, deleted = int(watchfiles.Change.added), int(watchfiles.Change.deleted)
    raw = {
        (added, "/run/app.sock"),
        (added, "/run/other.sock"),
        (added, "/srv/socks/a.sock"),
        (added, "/srv/socks/deeper/b.sock"),
        (deleted, "/srv/socks"),
    }
    got = relevant_changes(raw, ["/run/app.sock"], ["/srv/socks"])
    assert got == [
        PathChange("/run/app.sock", ChangeKind.ADDED),
        PathChange("/srv/socks", ChangeKind.DELETED),
        PathChange("/srv/socks/a.sock", ChangeKind.ADDED),
    ]


def test_relevant_changes_collapses_an_unordered_unlink_and_bind_by_what_is_there_now() -> None:
    raw = {(int(watchfiles.Change.deleted), "/run/app.sock"), (int(watchfiles.Change.added), "/run/app.sock")}
    assert relevant_changes(raw, ["/run/app.sock"], exists=lambda _p: True) == [
        PathChange("/run/app.sock", ChangeKind.MODIFIED)
    ]
    assert relevant_changes(raw, ["/run/app.sock"], exists=lambda _p: False) == [
        PathChange("/run/app.sock", ChangeKind.DELETED)
    ]


def test_replan_triggers_are_the_wanted_directories_and_those_standing_in_for_them() -> None:
    exists = {"/", "/run", "/srv", "/srv/socks"}.__contains__
    got = replan_triggers(["/run/a/b/c.sock", "/run/x.sock"], ["/srv/socks"], exists=exists)
    assert got == {"/run/a/b", "/run/a", "/run", "/srv/socks", "/srv"}


# --- DirectoryWatcher -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["socktui", "watchfiles"])
def test_a_socket_bound_in_a_watched_parent_is_reported_added_then_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """Through socktui's own inotify reader, and through watchfiles (the fallback, or SOCKTUI_WATCHFILES=1)."""
    if backend == "watchfiles":
        monkeypatch.setenv(dirs_module.WATCHFILES_ENV, "1")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = run_dir / "app.sock"
    watcher = DirectoryWatcher([str(path)])
    assert watcher.own_inotify is (backend == "socktui")
    with watching(watcher) as changes:
        assert wait_until(lambda: watcher.watched == {str(run_dir)})
        server = bind(path)
        assert wait_until(lambda: changes.has(path, "added")), changes.seen
        os.unlink(path)
        server.close()
        assert wait_until(lambda: changes.has(path, "deleted")), changes.seen


def test_the_watcher_sleeps_until_the_kernel_has_something_to_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no idle wake-up at all (an hour), a bind, an unlink, a new interest set and the stop still come through
    at once: each wakes the thread, nothing waits for a timer."""
    monkeypatch.setattr(dirs_module, "INOTIFY_IDLE_MS", 3_600_000)
    monkeypatch.setattr(dirs_module, "FULL_RESCAN_S", 3600.0)
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    watcher = DirectoryWatcher([str(first / "a.sock")])
    with watching(watcher) as changes:
        assert wait_until(lambda: watcher.watched == {str(first)})
        server = bind(first / "a.sock")
        assert wait_until(lambda: changes.has(first / "a.sock", "added", SeenBy.EVENT)), changes.seen
        os.unlink(first / "a.sock")
        assert wait_until(lambda: changes.has(first / "a.sock", "deleted", SeenBy.EVENT)), changes.seen
        server.close()
        watcher.set_paths([str(second / "b.sock")])
        assert wait_until(lambda: watcher.watched == {str(second)}), watcher.watched
        other = bind(second / "b.sock")
        assert wait_until(lambda: changes.has(second / "b.sock", "added", SeenBy.EVENT)), changes.seen
        other.close()
    # watching() ended it: stop set, then woken, and the thread was joined well within the hour


def test_inotify_events_are_read_as_watchfiles_would_report_them() -> None:
    """The kernel's records, written into a pipe: names, self-deletion and the queue overflow."""
    record = struct.Struct("=iIII")

    def event(wd: int, mask: int, name: bytes = b"") -> bytes:
        padded = name + b"\0" * (-len(name) % 16 or (16 if name else 0))
        return record.pack(wd, mask, 0, len(padded)) + padded

    read_end, write_end = os.pipe2(os.O_NONBLOCK)
    try:
        os.write(
            write_end,
            event(1, linux.IN_CREATE, b"app.sock")
            + event(1, linux.IN_DELETE, b"old.sock")
            + event(1, linux.IN_ATTRIB, b"perm.sock")
            + event(1, linux.IN_MOVED_TO, b"moved.sock")
            + event(2, linux.IN_DELETE_SELF)
            + event(9, linux.IN_CREATE, b"unknown-watch.sock")
            + event(-1, linux.IN_Q_OVERFLOW),
        )
        batch = dirs_module._read_events(read_end, {1: "/run", 2: "/srv/socks"})
    finally:
        os.close(read_end)
        os.close(write_end)
    added, modified, deleted = (
        int(c) for c in (watchfiles.Change.added, watchfiles.Change.modified, watchfiles.Change.deleted)
    )
    assert batch == {
        (added, "/run/app.sock"),
        (deleted, "/run/old.sock"),
        (modified, "/run/perm.sock"),
        (added, "/run/moved.sock"),
        (deleted, "/srv/socks"),
        dirs_module._OVERFLOW,
    }


def test_a_deleted_socket_is_reported_by_the_watchers_event_not_by_the_rescan(tmp_path: Path) -> None:
    """The safety-net rescan would also notice the unlink: only ``seen_by`` tells the event did its job."""
    path = tmp_path / "app.sock"
    watcher = DirectoryWatcher([str(path)])
    with watching(watcher) as changes:
        assert wait_until(lambda: watcher.watched == {str(tmp_path)})
        server = bind(path)
        assert wait_until(lambda: changes.has(path, "added", SeenBy.EVENT)), changes.seen
        os.unlink(path)
        server.close()
        assert wait_until(lambda: changes.has(path, "deleted", SeenBy.EVENT)), changes.seen


def test_a_change_between_the_baseline_and_the_arming_is_reported_before_the_full_rescan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window forced open: the socket is bound the moment the baseline is taken, before inotify is armed."""
    monkeypatch.setattr(dirs_module, "FULL_RESCAN_S", 3600.0)  # the 10 s safety net must not be what saves it
    path = tmp_path / "app.sock"
    servers: list[socket.socket] = []
    real_rescan = DirectoryWatcher._rescan

    def rescan_then_bind(self: DirectoryWatcher, *args: Any, **kwargs: Any) -> None:
        real_rescan(self, *args, **kwargs)
        if not servers:
            servers.append(bind(path))

    monkeypatch.setattr(DirectoryWatcher, "_rescan", rescan_then_bind)
    watcher = DirectoryWatcher([str(path)])
    with watching(watcher) as changes:
        assert wait_until(lambda: changes.has(path, "added"), timeout=5.0), changes.seen
    servers[0].close()


def test_a_change_while_inotify_is_being_armed_is_reported_even_when_the_mtime_does_not_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The arming delayed until the test has bound the socket, on a filesystem whose directory mtimes are coarse."""
    monkeypatch.setattr(dirs_module, "FULL_RESCAN_S", 3600.0)
    monkeypatch.setattr(dirs_module, "_dir_mark", lambda d: (0, 0, 0))  # same mark, whatever changed
    bound = threading.Event()
    real_watch = dirs_module.inotify_watch

    def late(*paths: str, **kwargs: Any) -> Iterator[set[tuple[int, str]]]:
        assert bound.wait(TIMEOUT)
        yield from real_watch(*paths, **kwargs)

    monkeypatch.setattr(dirs_module, "inotify_watch", late)
    path = tmp_path / "app.sock"
    watcher = DirectoryWatcher([str(path)])
    with watching(watcher) as changes:
        assert wait_until(lambda: watcher.watched == {str(tmp_path)})
        server = bind(path)
        bound.set()
        assert wait_until(lambda: changes.has(path, "added"), timeout=5.0), changes.seen
    server.close()


def test_only_paths_of_interest_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    watcher = DirectoryWatcher([str(path)])
    with watching(watcher) as changes:
        assert wait_until(lambda: watcher.watched == {str(tmp_path)})
        (tmp_path / "noise.txt").write_text("x")
        other = bind(tmp_path / "other.sock")
        server = bind(path)
        assert wait_until(lambda: changes.has(path, "added"))
        assert changes.paths() == {str(path)}
        other.close()
        server.close()


def test_a_watched_directory_deleted_and_recreated_is_watched_again(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = run_dir / "app.sock"
    watcher = DirectoryWatcher([str(path)])
    with watching(watcher) as changes:
        assert wait_until(lambda: watcher.watched == {str(run_dir)})
        server = bind(path)
        assert wait_until(lambda: changes.has(path, "added"))
        os.unlink(path)
        server.close()
        assert wait_until(lambda: changes.has(path, "deleted"))
        run_dir.rmdir()
        assert wait_until(lambda: watcher.watched == {str(tmp_path)}), watcher.watched
        run_dir.mkdir()
        assert wait_until(lambda: watcher.watched == {str(run_dir)}), watcher.watched
        with changes.lock:
            changes.seen.clear()
        server = bind(path)
        assert wait_until(lambda: changes.has(path, "added")), changes.seen
        server.close()


def test_a_wanted_directory_made_between_the_plan_and_the_arming_is_watched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window forced open: the directory appears after the watcher chose its stand-in, before inotify is armed,
    so no event will ever say so; the look after arming must move the watch there."""
    monkeypatch.setattr(dirs_module, "FULL_RESCAN_S", 3600.0)
    run_dir = tmp_path / "run"
    path = run_dir / "app.sock"
    real_watch = dirs_module.inotify_watch

    def made_meanwhile(*paths: str, **kwargs: Any) -> Iterator[set[tuple[int, str]]]:
        run_dir.mkdir(exist_ok=True)
        yield from real_watch(*paths, **kwargs)

    monkeypatch.setattr(dirs_module, "inotify_watch", made_meanwhile)
    watcher = DirectoryWatcher([str(path)])
    with watching(watcher) as changes:
        assert wait_until(lambda: watcher.watched == {str(run_dir)}), watcher.watched
        server = bind(path)
        assert wait_until(lambda: changes.has(path, "added")), changes.seen
        server.close()


def test_a_socket_dir_replaced_under_the_watch_is_noticed(tmp_path: Path) -> None:
    """Renamed away and replaced: inotify keeps reporting the old directory under its old name; we rebuild."""
    socks = tmp_path / "socks"
    socks.mkdir()
    watcher = DirectoryWatcher(socket_dirs=[str(socks)])
    with watching(watcher) as changes:
        armed(watcher, changes, socks, socks / "warm-up")
        socks.rename(tmp_path / "old")
        socks.mkdir()
        server = bind(socks / "new.sock")
        assert wait_until(lambda: changes.has(socks / "new.sock", "added")), changes.seen
        server.close()


def test_a_parent_that_does_not_exist_yet_is_picked_up_when_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "app.sock"
    watcher = DirectoryWatcher([str(path)])
    with watching(watcher) as changes:
        assert wait_until(lambda: watcher.watched == {str(tmp_path)})
        (tmp_path / "a" / "b").mkdir(parents=True)
        server = bind(path)  # at once: the new watch may not be in place yet, and it must not matter
        assert wait_until(lambda: changes.has(path, "added")), changes.seen
        assert wait_until(lambda: watcher.watched == {str(tmp_path / "a" / "b")}), watcher.watched
        os.unlink(path)
        assert wait_until(lambda: changes.has(path, "deleted")), changes.seen
        server.close()


def test_set_paths_from_another_thread_moves_the_watch(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    watcher = DirectoryWatcher([str(first / "a.sock")])
    with watching(watcher) as changes:
        assert wait_until(lambda: watcher.watched == {str(first)})
        threading.Thread(target=watcher.set_paths, args=([str(second / "b.sock")],)).start()
        assert wait_until(lambda: watcher.watched == {str(second)}), watcher.watched
        server = bind(second / "b.sock")
        assert wait_until(lambda: changes.has(second / "b.sock", "added")), changes.seen
        server.close()


def test_falls_back_to_polling_when_inotify_cannot_be_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fakes stand in for an exhausted fs.inotify.max_user_watches, which a test cannot safely cause: socktui's
    own reader gets ENOSPC from inotify_add_watch, watchfiles its own words for it; both end in watchfiles' polling."""
    real_watch = watchfiles.watch

    def limited(*paths: Any, **kwargs: Any) -> Iterator[set[tuple[watchfiles.Change, str]]]:
        if not kwargs.get("force_polling"):
            raise OSError("OS file watch limit reached. (Error { kind: MaxFilesWatch, paths: [] })")
        yield from real_watch(*paths, **kwargs)

    def own_limited(*paths: str, **kwargs: Any) -> Iterator[set[tuple[int, str]]]:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), paths[0])
        yield set()  # a generator, like the real one

    monkeypatch.setattr(watchfiles, "watch", limited)
    monkeypatch.setattr(dirs_module, "inotify_watch", own_limited)
    path = tmp_path / "app.sock"
    watcher = DirectoryWatcher([str(path)], poll_delay_ms=50)
    with watching(watcher) as changes:
        assert wait_until(lambda: bool(changes.notices))
        assert changes.notices == ["inotify watch limit reached; polling every 50 ms"]
        assert watcher.polling
        server = bind(path)
        assert wait_until(lambda: changes.has(path, "added")), changes.seen
        server.close()


def test_the_rescan_reports_what_events_missed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deaf watch (the fake yields only idle timeouts): every change must still come through the rescan."""

    def deaf(*paths: Any, **kwargs: Any) -> Iterator[set[tuple[int, str]]]:
        stop = kwargs["stop_event"]
        while not stop.is_set():
            time.sleep(0.05)
            yield set()

    monkeypatch.setattr(dirs_module, "inotify_watch", deaf)
    socks = tmp_path / "socks"
    socks.mkdir()
    path = tmp_path / "app.sock"
    old = bind(socks / "old.sock")
    watcher = DirectoryWatcher([str(path)], [str(socks)], rescan_ms=50)
    with watching(watcher) as changes:
        assert wait_until(lambda: watcher.watched == {str(tmp_path), str(socks)})
        server = bind(path)
        new = bind(socks / "new.sock")
        os.unlink(socks / "old.sock")
        assert wait_until(lambda: len(changes.seen) == 3), changes.seen
        assert sorted((c for _, c in changes.seen), key=lambda c: c.path) == [
            PathChange(str(path), ChangeKind.ADDED),
            PathChange(str(socks / "new.sock"), ChangeKind.ADDED),
            PathChange(str(socks / "old.sock"), ChangeKind.DELETED),
        ]
        os.unlink(path)
        assert wait_until(lambda: changes.has(path, "deleted")), changes.seen
    for sock in (old, server, new):
        sock.close()


def test_stop_ends_the_watcher_with_nothing_to_watch() -> None:
    watcher = DirectoryWatcher()
    with watching(watcher):
        time.sleep(0.05)


# --- ListenerExitWatcher --------------------------------------------------------------------------------------------


@contextmanager
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(TIMEOUT)


@contextmanager
def exits_watched(watcher: ListenerExitWatcher, exits: list[int]) -> Iterator[None]:
    with running(lambda stop: watcher.run(exits.append, stop)) as stop:
        try:
            yield
        finally:
            stop.set()
            watcher.wake()  # as the Monitor does: a sleeping watcher notices its stop at once


def rounds_pass(watcher: ListenerExitWatcher, count: int = 2) -> None:
    """Wake the watcher ``count`` times and wait for each round: what it had to say by then, it has said."""
    for _ in range(count):
        assert woken_round(watcher), "the exit watcher stopped polling"


def woken_round(watcher: ListenerExitWatcher) -> bool:
    before = watcher.rounds
    watcher.wake()
    return wait_until(lambda: watcher.rounds > before)


def test_a_killed_listener_is_reported() -> None:
    exits: list[int] = []
    with sleeper() as proc:
        watcher = ListenerExitWatcher([proc.pid])
        with exits_watched(watcher, exits):
            rounds_pass(watcher)
            assert exits == []
            proc.send_signal(signal.SIGKILL)  # not reaped yet: a zombie still counts as exited
            assert wait_until(lambda: exits == [proc.pid]), exits
            rounds_pass(watcher)
            assert exits == [proc.pid], "reported more than once"


def test_the_exit_watcher_sleeps_until_a_pid_exits_or_it_is_told_something() -> None:
    """No idle wake-up at all (an hour): an exit, new pids and the stop each wake it, nothing waits for a timer."""
    exits: list[int] = []
    watcher = ListenerExitWatcher(idle=3600.0)
    with sleeper() as first, sleeper() as second:
        stop = threading.Event()
        thread = threading.Thread(target=watcher.run, args=(exits.append, stop), daemon=True)
        thread.start()
        watcher.set_pids([first.pid, second.pid])
        first.kill()
        assert wait_until(lambda: exits == [first.pid]), exits
        second.kill()
        assert wait_until(lambda: exits == [first.pid, second.pid]), exits
        stop.set()
        watcher.wake()
        thread.join(TIMEOUT)
        assert not thread.is_alive()


def test_an_already_dead_pid_is_reported_at_once() -> None:
    with sleeper() as proc:
        pass
    exits: list[int] = []
    watcher = ListenerExitWatcher([proc.pid])
    with exits_watched(watcher, exits):
        assert wait_until(lambda: exits == [proc.pid]), exits


def test_set_pids_from_another_thread() -> None:
    exits: list[int] = []
    watcher = ListenerExitWatcher()
    with sleeper() as first, sleeper() as second, exits_watched(watcher, exits):
        watcher.set_pids([first.pid])
        rounds_pass(watcher)
        watcher.set_pids([second.pid])
        rounds_pass(watcher)
        first.kill()
        second.kill()
        assert wait_until(lambda: exits == [second.pid]), exits
        rounds_pass(watcher)
        assert exits == [second.pid], "a pid no longer watched was reported"


# --- Reprober -------------------------------------------------------------------------------------------------------


def never_connected_to(server: socket.socket) -> bool:
    server.setblocking(False)
    try:
        server.accept()[0].close()
    except BlockingIOError:
        return True
    return False


def reads_pass(reprober: Reprober, count: int) -> None:
    """Wait until the re-prober has read the tables ``count`` more times."""
    target = reprober.rounds + count
    assert wait_until(lambda: reprober.rounds >= target), "the re-prober stopped reading"


def test_reprober_reports_a_socket_going_stale_without_connecting(tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    server = bind(path)
    quiet = bind(str(tmp_path / "quiet.sock"))
    reported: list[tuple[str, SocketState | None]] = []
    reprober = Reprober([path, str(tmp_path / "quiet.sock")], interval=0.05)
    with running(lambda stop: reprober.run(lambda p, r: reported.append((p, r)), stop)):
        reads_pass(reprober, 3)
        assert reported == []  # the first read is the baseline
        assert never_connected_to(quiet)  # it re-read tables several times, and connected to nobody
        server.close()  # no unlink: the file stays, nobody listens
        assert wait_until(lambda: bool(reported))
        assert [(p, r.liveness if r else None) for p, r in reported] == [(path, Liveness.UNBOUND)]
        reads_pass(reprober, 3)
        assert len(reported) == 1, "reported again without a change"
    quiet.close()


def test_reprober_reports_against_a_known_outcome_and_a_new_listener(tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    server = bind(path)
    server.close()
    reprober = Reprober()
    reprober.set_paths([path], known={path: SocketState(liveness=Liveness.LISTENING)})
    changed = reprober.check()
    assert [(p, r.liveness if r else None) for p, r in changed] == [(path, Liveness.UNBOUND)]
    assert reprober.check() == []
    other = bind(path + ".2")
    reprober.set_paths([path, path + ".2"])  # the first keeps its last outcome; the second gets a baseline
    assert reprober.check() == []
    os.unlink(path)
    server = bind(path)  # a server binds the path again: a new file, listened on
    assert [(p, r.liveness if r else None) for p, r in reprober.check()] == [(path, Liveness.LISTENING)]
    server.close()
    other.close()


# A server in a network namespace of its own (unshare -n), driven over stdin: "bind" binds (without listening), "listen"
# listens, "close" closes the socket and keeps running, as a server that stops listening without a sound.
NETNS_SERVER = """
import socket, sys
sock = None
print("ready", flush=True)
for line in sys.stdin:
    word = line.strip()
    if word == "bind":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(sys.argv[1])
    elif word == "listen":
        sock.listen(4)
    elif word == "close":
        sock.close()
    print(word, flush=True)
"""


@contextmanager
def netns_server(path: str) -> Iterator[Callable[[str], None]]:
    with subprocess.Popen(
        ["unshare", "-n", sys.executable, "-c", NETNS_SERVER, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"

        def tell(word: str) -> None:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(word + "\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == word + "\n"

        try:
            yield tell
        finally:
            proc.stdin.close()
            proc.wait(TIMEOUT)


def server_pid(path: str) -> int:
    """The pid of the unshare'd server bound to ``path`` (unshare execs python, so it is the child's own pid)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with suppress(OSError), open(f"/proc/{entry}/cmdline", "rb") as fh:
                if fh.read().endswith(os.fsencode(path) + b"\0") and entry != str(os.getpid()):
                    return int(entry)
    raise AssertionError(f"no server for {path}")


def outcomes(changed: list[tuple[str, SocketState | None]]) -> list[tuple[str, Liveness | None]]:
    return [(p, r.liveness if r else None) for p, r in changed]


def test_a_listener_in_a_containers_namespace_that_closes_is_seen_in_the_next_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where its server was last seen, the namespace is read every round, not only in the full rounds (and not only
    while the file is young)."""
    monkeypatch.setattr(reprobe_module, "YOUNG_SECONDS", 0.0)
    path = str(tmp_path / "app.sock")
    with netns_server(path) as tell:
        tell("bind")
        tell("listen")
        reprober = Reprober({path: (server_pid(path),)}, full_every=1000)
        assert reprober.check() == []  # the baseline: listening, found in the server's namespace
        assert reprober.check() == []
        tell("close")  # the file stays and the process lives: no filesystem event, no exit
        assert outcomes(reprober.check()) == [(path, Liveness.UNBOUND)]


def test_a_new_socket_file_that_starts_listening_later_is_seen(tmp_path: Path) -> None:
    """bind() makes the file, listen() comes later and makes no event: a young file's namespaces are read each round."""
    path = str(tmp_path / "app.sock")
    with netns_server(path) as tell:
        tell("bind")
        reprober = Reprober({path: (server_pid(path),)}, full_every=1000)
        assert reprober.check() == []  # bound, not listening: nobody answers yet
        reprober.check()
        tell("listen")
        assert outcomes(reprober.check()) == [(path, Liveness.LISTENING)]


def test_a_stale_file_costs_no_namespace_read_outside_the_full_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file nobody is bound to can get a server only by being made anew, which the directory watcher reports."""
    monkeypatch.setattr(reprobe_module, "YOUNG_SECONDS", 0.0)
    path = str(tmp_path / "stale.sock")
    bind(path).close()  # left behind, nobody bound
    # A process in a network namespace of its own stands in for a running container that mounts the file.
    with subprocess.Popen(["unshare", "-n", sys.executable, "-c", "import time; time.sleep(60)"]) as container:
        assert wait_until(
            lambda: os.stat(f"/proc/{container.pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
        )
        reprober = Reprober({path: (container.pid,)}, full_every=3)
        reprober.check()  # round 0: a full round reads the container's namespace
        after_full = reprober.namespaces_read
        assert after_full == 1
        reprober.check()
        reprober.check()
        assert reprober.namespaces_read == after_full  # rounds 1 and 2 read only the host's table
        reprober.check()  # round 3: full again
        assert reprober.namespaces_read == after_full + 1
        assert reprober.check() == []
        container.kill()


def test_a_settled_stale_file_is_looked_at_again_once_the_caller_says_what_it_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stale file is not even looked at between full rounds; when the Monitor, told by the watcher that the file was
    made anew, hands over what it found, the next rounds follow that server again."""
    monkeypatch.setattr(reprobe_module, "YOUNG_SECONDS", 0.0)
    path = str(tmp_path / "app.sock")
    bind(path).close()
    reprober = Reprober([path], full_every=1000)
    assert reprober.check() == []  # the baseline: nobody bound
    os.unlink(path)
    server = bind(path)  # made anew, listened on: the watcher's business, not the re-read's
    assert reprober.check() == []
    reprober.set_paths([path], known={path: SocketState(liveness=Liveness.LISTENING)})
    assert reprober.check() == []  # the same as the Monitor found
    server.close()  # no unlink, no exit: only the re-read can tell
    assert outcomes(reprober.check()) == [(path, Liveness.UNBOUND)]


# --- EngineEventStream: the reconnect logic, with a fake engine -----------------------------------------------------


def docker_event(action: str, cid: str, name: str, nanos: int) -> dict[str, Any]:
    return {
        "Type": "container",
        "Action": action,
        "Actor": {"ID": cid, "Attributes": {"name": name, "image": "busybox"}},
        "time": nanos // 1_000_000_000,
        "timeNano": nanos,
    }


T0 = 1_700_000_000 * 1_000_000_000


def test_backoff_doubles_to_a_ceiling() -> None:
    delays = backoff_delays()
    assert [next(delays) for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_parse_engine_event() -> None:
    assert parse_engine_event(docker_event("start", "abc", "web", T0 + 5)) == EngineEvent(
        "start", "abc", "web", (T0 + 5) / 1e9
    )
    assert parse_engine_event(docker_event("exec_start: sh -c true", "abc", "web", T0)) is None
    assert parse_engine_event(docker_event("health_status: healthy", "abc", "web", T0)) is None
    assert parse_engine_event({**docker_event("create", "n", "net", T0), "Type": "network"}) is None


class FakeStream:
    """An event stream that blocks, like a real one, once its events are out, until closed (or told to end)."""

    def __init__(self, events: list[dict[str, Any]], end: bool) -> None:
        self.events = events
        self.end = end
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self.events
        if not self.end:
            self.closed.wait(TIMEOUT * 2)

    def close(self) -> None:
        self.closed.set()


class FakeEngine:
    """Fails, then serves the scripted streams; records what each call asked for."""

    def __init__(self, script: list[FakeStream | None]) -> None:
        self.script = script
        self.since: list[int | None] = []
        self.resets = 0

    def events(self, since: int | None = None) -> Iterator[dict[str, Any]]:
        self.since.append(since)
        step = self.script.pop(0) if self.script else None
        if step is None:
            raise EngineError(
                "unix:///fake.sock", "nothing is listening there", "Start the daemon.", Failure.UNREACHABLE
            )
        return step  # type: ignore[return-value]  # iterable with close(), like docker-py's CancellableStream

    def reset(self) -> None:
        self.resets += 1


class Recorder:
    def __init__(self) -> None:
        self.events: list[EngineEvent] = []
        self.states: list[EngineState] = []


def follow(engine: Any, stream: EngineEventStream) -> tuple[Recorder, Callable[[threading.Event], None]]:
    rec = Recorder()
    return rec, lambda stop: stream.run(engine, rec.events.append, rec.states.append, stop)


def test_event_stream_reconnects_after_the_engine_was_unreachable() -> None:
    first = [docker_event("start", "c1", "web", T0 + 1), docker_event("die", "c1", "web", T0 + 2)]
    engine = FakeEngine([None, FakeStream(first, end=False)])
    stream = EngineEventStream(backoff_min=0.01, backoff_max=0.05)
    rec, target = follow(engine, stream)
    with running(target):
        assert wait_until(lambda: len(rec.events) == 2), rec.events
        assert [e.action for e in rec.events] == ["start", "die"]
        assert rec.states == [EngineLost("nothing is listening there"), EngineBack()]
        assert engine.resets == 1
        assert engine.since == [None, None]
        stream.stop()  # must interrupt the blocked stream


def test_event_stream_asks_for_what_it_missed_and_skips_what_it_already_delivered() -> None:
    first = [docker_event("start", "c1", "web", T0 + 1), docker_event("exec_start: ls", "c1", "web", T0 + 2)]
    replay = [*first, docker_event("die", "c1", "web", T0 + 3)]
    engine = FakeEngine([FakeStream(first, end=True), None, None, FakeStream(replay, end=False)])
    stream = EngineEventStream(backoff_min=0.01, backoff_max=0.05)
    rec, target = follow(engine, stream)
    with running(target):
        assert wait_until(lambda: len(rec.events) == 2), rec.events
        assert [e.action for e in rec.events] == ["start", "die"]
        # one EngineLost for the whole outage, however many attempts failed
        assert rec.states == [EngineLost("the engine closed the event stream"), EngineBack()]
        assert engine.since[1:] == [T0 // 1_000_000_000] * 3
        assert engine.resets == 3
        stream.stop()


def test_stop_interrupts_the_backoff_and_a_stop_before_run_returns_at_once() -> None:
    engine = FakeEngine([])
    stream = EngineEventStream(backoff_min=30, backoff_max=30)
    rec, target = follow(engine, stream)
    with running(target):
        assert wait_until(lambda: rec.states == [EngineLost("nothing is listening there")])
        stream.stop()
        assert wait_until(lambda: len(engine.since) == 1)
    early = EngineEventStream()
    early.stop()
    early.run(engine, rec.events.append, rec.states.append, threading.Event())


# --- EngineEventStream through docker-py, against a tiny fake daemon on a Unix socket -------------------------------


class FakeDaemon:
    """Just enough of the Engine API for docker-py's ``events()``: /_ping, /version and a chunked /events that stays
    open."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.feed: queue.Queue[dict[str, Any]] = queue.Queue()
        self.queries: list[str] = []
        self.connections: list[socket.socket] = []
        self.server: socketserver.ThreadingUnixStreamServer | None = None

    def start(self) -> None:
        daemon = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.endswith("/_ping"):  # what socktui asks first: a Docker ping, so /version follows
                    self.send_response(200)
                    self.send_header("Api-Version", "1.41")
                    self.send_header("Server", "Docker/20.10 (linux)")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"OK")
                    return
                if self.path.endswith("/version"):
                    body = json.dumps({"ApiVersion": "1.41", "MinAPIVersion": "1.12", "Version": "20.10"}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                daemon.queries.append(self.path)
                daemon.connections.append(self.connection)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                while daemon.server is not None:
                    try:
                        event = daemon.feed.get(timeout=0.05)
                    except queue.Empty:
                        continue
                    data = json.dumps(event).encode() + b"\n"
                    try:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                    except OSError:
                        return

        self.server = socketserver.ThreadingUnixStreamServer(self.path, Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def kill(self) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for conn in self.connections:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.connections.clear()
        os.unlink(self.path)


def test_event_stream_through_docker_py_survives_a_daemon_restart_and_stops_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "docker.sock")
    daemon = FakeDaemon(path)
    daemon.start()
    engine = Engine(Endpoint(url=f"unix://{path}", source="--host"))
    stream = EngineEventStream(backoff_min=0.05, backoff_max=0.2)
    rec, target = follow(engine, stream)
    try:
        with running(target) as stop:
            assert wait_until(lambda: len(daemon.queries) == 1)
            daemon.feed.put(docker_event("start", "c1", "web", T0 + 1_500_000_000))
            assert wait_until(lambda: len(rec.events) == 1), rec.events
            daemon.kill()
            assert wait_until(lambda: rec.states == [EngineLost("the engine closed the event stream")]), rec.states
            tried = stream.attempts
            assert wait_until(lambda: stream.attempts >= tried + 3)  # a few failed attempts against the missing socket
            assert len(rec.states) == 1
            daemon.start()
            assert wait_until(lambda: rec.states[-1:] == [EngineBack()]), rec.states
            assert "since=1700000001" in daemon.queries[-1]
            daemon.feed.put(docker_event("die", "c1", "web", T0 + 2_000_000_000))
            assert wait_until(lambda: len(rec.events) == 2), rec.events
            # the stream is now blocked reading the socket: stop() must shut it, setting the event cannot
            stream.stop()
            assert stop.is_set()
    finally:
        daemon.kill()
    assert [e.action for e in rec.events] == ["start", "die"]


def test_the_re_read_slows_down_on_a_quiet_host_and_speeds_up_when_told_something(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the test's own clock: every 2 s at first, every 5 s once nothing has changed for 30 s, every 2 s again as
    soon as it is given new paths."""
    import types

    clock = [0.0]
    monkeypatch.setattr(reprobe_module, "time", types.SimpleNamespace(monotonic=lambda: clock[0], time=time.time))
    reprober = Reprober(interval=2.0, quiet_interval=5.0)
    waits: list[float] = []

    class Ticks:
        """The stop event run() waits on: each wait moves the clock on, and says when enough rounds were seen."""

        def is_set(self) -> bool:
            return len(waits) >= 40

        def wait(self, timeout: float) -> bool:
            waits.append(timeout)
            clock[0] += timeout
            if len(waits) == 25:
                reprober.set_paths([])  # the Monitor hands it something: things are moving again
            return self.is_set()

    reprober.run(lambda path, state: None, Ticks())  # type: ignore[arg-type]
    assert waits[:15] == [2.0] * 15, waits  # 30 s at the busy pace
    assert waits[15:25] == [5.0] * 10, waits
    assert waits[25:40] == [2.0] * 15, waits
