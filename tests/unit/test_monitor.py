"""The Monitor, driven directly (no App): real directories, sockets and watchers; a fake engine for the list.

What is under test is the live loop's own logic: marks coalesce, a batch re-checks only the mounts it touches, the
watchers are armed before the first look (so a server binding meanwhile is not lost), an emptied socket directory
is still followed, and the Session's running totals match a recount.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from socktui.engine import Endpoint
from socktui.live import Counts, LookKind, Monitor, Update
from socktui.model import (
    CheckReport,
    ContainerReport,
    ContainerSpec,
    EngineInfo,
    Listener,
    MountReport,
    MountSpec,
    ProbeResult,
    Role,
    Verdict,
)
from socktui.session import Change, Options, Session

TIMEOUT = 10.0
INFO = EngineInfo(endpoint="unix:///fake.sock", local=True, version="test")


def until(predicate: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class QuietEvents:
    """An engine event stream with nothing to say: it blocks, as a real one does, until closed."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.closed.wait(TIMEOUT * 3)
        return iter(())

    def close(self) -> None:
        self.closed.set()


class FakeEngine:
    """Lists and inspects scripted containers. ``after_observing`` runs once the look has observed a container
    (between its inspect and the end of the look): the moment a change is easiest to lose."""

    endpoint = Endpoint(url="unix:///fake.sock", source="test")
    listed_at: float | None = None

    def __init__(self, *specs: ContainerSpec) -> None:
        self.specs = {s.id: s for s in specs}
        self.after_observing: Callable[[], None] | None = None
        self.inspected: list[str] = []

    def info(self) -> EngineInfo:
        return INFO

    def list_containers(self) -> list[ContainerSpec]:
        return list(self.specs.values())

    def inspect_one(self, cid: str) -> ContainerSpec | None:
        self.inspected.append(cid)
        return self.specs.get(cid)

    def inspect_stream(self, specs: list[ContainerSpec]) -> Iterator[ContainerSpec | None]:
        for spec in specs:
            self.inspected.append(spec.id)
            yield self.specs.get(spec.id)
        hook, self.after_observing = self.after_observing, None
        if hook is not None:
            hook()

    def events(self, since: int | None = None) -> QuietEvents:
        return QuietEvents()

    def reset(self) -> None:
        pass


def dir_container(cid: str, *dirs: Path) -> ContainerSpec:
    mounts = tuple(MountSpec("bind", str(d), f"/run/{d.name}") for d in dirs)
    return ContainerSpec(id=cid, name=f"c{cid}", state="created", image="img", mounts=mounts, inspected=True)


def bind(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(4)
    return sock


class Run:
    """A Monitor running in its own thread, and every Update it emitted."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.updates: list[Update] = []
        self.lock = threading.Lock()

    def emit(self, update: Update) -> None:
        with self.lock:
            self.updates.append(update)

    @property
    def latest(self) -> CheckReport:
        with self.lock:
            return self.updates[-1].report

    def mount(self, cid: str, destination: str) -> MountReport:
        report = next(c for c in self.latest.containers if c.container.id == cid)
        return next(m for m in report.mounts if m.mount.destination == destination)

    def socket_names(self, cid: str, destination: str) -> set[str]:
        return {s.name for s in self.mount(cid, destination).sockets}

    def log(self) -> list[str]:
        with self.lock:
            return [c.text for u in self.updates for c in u.log]


@contextmanager
def monitoring(engine: FakeEngine, *, live: bool = True) -> Iterator[Run]:
    session = Session(engine=engine, options=Options())  # type: ignore[arg-type]
    monitor = Monitor(session, live=live)
    run = Run(monitor)
    cancel = threading.Event()
    errors: list[BaseException] = []

    def body() -> None:
        try:
            monitor.run(cancel, run.emit)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    try:
        until(lambda: monitor.looks >= 1, "the first look")
        yield run
    finally:
        monitor.stop()
        thread.join(TIMEOUT)
    assert not thread.is_alive(), "the Monitor did not stop"
    assert not errors, errors


# --------------------------------------------------------------------------- the live loop


def test_a_socket_bound_in_one_directory_rechecks_that_mount_and_keeps_the_other(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    seeds = [bind(one / "seed.sock"), bind(two / "seed.sock")]
    engine = FakeEngine(dir_container("a", one, two))
    with monitoring(engine) as run:
        until(lambda: run.monitor.armed, "the sources")
        kept = run.mount("a", "/run/two")
        assert run.mount("a", "/run/one").role is Role.SOCKET_DIR
        new = bind(one / "new.sock")
        until(lambda: "new.sock" in run.socket_names("a", "/run/one"), "the new socket on screen")
        assert run.mount("a", "/run/two") is kept, "a change in one directory re-observed the other mount"
        assert engine.inspected == ["a"], "a socket event went to the engine"
    for sock in (*seeds, new):
        sock.close()


def test_a_server_that_binds_while_the_first_look_runs_is_not_lost(tmp_path: Path) -> None:
    """The socket is bound after the look observed its directory, before the look ends: only a watcher armed
    before the look can tell."""
    shared = tmp_path / "shared"
    shared.mkdir()
    seed = bind(shared / "seed.sock")
    late: list[socket.socket] = []
    engine = FakeEngine(dir_container("a", shared))
    engine.after_observing = lambda: late.append(bind(shared / "late.sock"))
    with monitoring(engine) as run:
        until(lambda: any(u.look is LookKind.FULL for u in run.updates), "the first look on screen")
        with run.lock:
            first_full = next(u for u in run.updates if u.look is LookKind.FULL)
        assert "late.sock" not in {s.name for c in first_full.report.containers for m in c.mounts for s in m.sockets}
        until(lambda: "late.sock" in run.socket_names("a", "/run/shared"), "the late socket on screen")
    for sock in (seed, *late):
        sock.close()


def test_a_socket_directory_that_empties_and_fills_again_is_followed(tmp_path: Path) -> None:
    shared = tmp_path / "pg"
    shared.mkdir()
    path = shared / ".s.PGSQL.5432"
    server = bind(path)
    engine = FakeEngine(dir_container("a", shared))
    with monitoring(engine) as run:
        until(lambda: run.monitor.armed, "the sources")
        assert run.mount("a", "/run/pg").verdict is Verdict.OK
        path.unlink()  # the server stops and removes its socket: the directory is empty
        server.close()
        # The directory keeps its role (it held a socket earlier in this session): missing, and still watched.
        until(lambda: run.mount("a", "/run/pg").verdict is Verdict.MISSING, "the socket gone from the screen")
        server = bind(path)  # and starts again
        until(lambda: run.mount("a", "/run/pg").verdict is Verdict.OK, "the directory followed again")
        assert run.socket_names("a", "/run/pg") == {".s.PGSQL.5432"}
    server.close()


# A server in a network namespace of its own (a host service with systemd's PrivateNetwork=): it stops listening on
# a line from its stdin, and keeps running with its socket file left behind.
FAR_SERVER = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
print("ready", flush=True)
sys.stdin.readline()
s.close()
print("closed", flush=True)
sys.stdin.read()
"""


def test_a_listener_in_a_namespace_of_its_own_that_stops_listening_is_followed() -> None:
    """Found by the look's machine-wide read, not in any mounter's namespace: no pidfd fires (it keeps running) and
    no file changes, so only the socket-table re-read of the listener's own namespace can tell."""
    shared = Path(tempfile.mkdtemp(prefix="st-"))
    path = shared / "far.sock"
    server = subprocess.Popen(
        ["unshare", "-n", sys.executable, "-c", FAR_SERVER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline() == "ready\n"
        engine = FakeEngine(dir_container("a", shared))
        with monitoring(engine) as run:
            until(lambda: run.monitor.armed, "the sources")
            until(lambda: run.mount("a", "/run/" + shared.name).verdict is Verdict.OK, "the far listener found")
            [sock] = run.mount("a", "/run/" + shared.name).sockets
            assert sock.listener is not None and sock.listener.pid == server.pid
            sources = run.monitor.sources
            assert sources is not None
            rounds = sources.tables.rounds
            until(lambda: sources.tables.rounds >= rounds + 2, "a socket-table re-read after the look")
            assert server.stdin is not None
            server.stdin.write("close\n")
            server.stdin.flush()
            assert server.stdout.readline() == "closed\n"
            until(
                lambda: run.mount("a", "/run/" + shared.name).verdict is Verdict.STALE,
                "the socket shown stale",
                timeout=TIMEOUT * 2,
            )
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(shared, ignore_errors=True)


def test_r_looks_at_everything_again_and_a_container_removed_meanwhile_is_gone(tmp_path: Path) -> None:
    shared = tmp_path / "s"
    shared.mkdir()
    seed = bind(shared / "seed.sock")
    engine = FakeEngine(dir_container("a", shared), dir_container("b", shared))
    with monitoring(engine, live=False) as run:
        assert {c.container.id for c in run.latest.containers} == {"a", "b"}
        del engine.specs["b"]
        run.monitor.recheck_all()
        until(lambda: run.monitor.looks >= 2, "the second look")
        until(lambda: {c.container.id for c in run.latest.containers} == {"a"}, "b gone")
        assert run.updates[-1].counts.containers == 1
    seed.close()


def test_a_recheck_after_a_fix_inspects_the_container_and_says_what_changed(tmp_path: Path) -> None:
    shared = tmp_path / "s"
    shared.mkdir()
    seed = bind(shared / "seed.sock")
    engine = FakeEngine(dir_container("a", shared))
    with monitoring(engine, live=False) as run:
        engine.specs["a"] = ContainerSpec(
            id="a", name="ca", state="exited", image="img", mounts=engine.specs["a"].mounts, inspected=True
        )
        run.monitor.recheck_container("a")
        until(lambda: "ca exited" in run.log(), "the state change in the log")
        assert run.updates[-1].changed == {"a"}
    seed.close()


def test_an_engine_that_cannot_be_reached_is_said_once_and_retried(tmp_path: Path) -> None:
    from socktui.engine import EngineError, Failure

    class Away(FakeEngine):
        calls = 0

        def info(self) -> EngineInfo:
            self.calls += 1
            if self.calls < 3:
                raise EngineError(
                    self.endpoint.url, "nothing is listening there", "Start the daemon.", Failure.UNREACHABLE
                )
            return INFO

    engine = Away()
    with monitoring(engine, live=False) as run:
        problems = [u for u in run.updates if u.engine_problem]
        # The engine's socket is judged before "nothing is listening" (socktui.enginesock): /fake.sock is missing.
        assert len(problems) == 2 and "missing: nothing at /fake.sock" in (problems[0].engine_problem or "")
        assert len([t for t in run.log() if t.startswith("engine unreachable")]) == 1, run.log()
        assert run.updates[-1].engine_back and run.updates[-1].look is LookKind.FULL


# --------------------------------------------------------------------------- merging updates


def _update(**what: Any) -> Update:
    return Update(report=CheckReport(engine=INFO), counts=Counts(), **what)


def test_a_newer_update_absorbs_an_older_one_so_nothing_is_lost() -> None:
    older = _update(changed=frozenset({"a", "b"}), removed=frozenset({"c"}), log=(Change("", "one"),))
    newer = _update(changed=frozenset({"c"}), removed=frozenset({"b"}), log=(Change("", "two"),))
    merged = older.then(newer)
    assert merged.changed == {"a", "c"} and merged.removed == {"b"}
    assert [c.text for c in merged.log] == ["one", "two"]
    assert _update(look=LookKind.FULL).then(_update()).look is LookKind.FULL
    assert _update(engine_problem="away").then(_update()).engine_problem == "away"
    assert _update(engine_problem="away").then(_update(engine_back=True)).engine_problem is None


def test_the_screen_message_replaces_a_queued_one_by_absorbing_it() -> None:
    from socktui.ui.messages import LogLine, Updated

    older = Updated(_update(changed=frozenset({"a"}), log=(Change("", "one"),)))
    newer = Updated(_update(changed=frozenset({"b"}), log=(Change("", "two"),)))
    assert older.can_replace(newer)
    assert newer.update.changed == {"a", "b"} and [c.text for c in newer.update.log] == ["one", "two"]
    assert not older.can_replace(LogLine("x"))


# --------------------------------------------------------------------------- the Session's running totals


def _mount_report(source: str, verdict: str, pid: int = 0, probe_ok: bool = True) -> MountReport:
    return MountReport(
        mount=MountSpec("bind", source, "/run/x.sock"),
        role=Role.SOCKET,
        verdict=Verdict(verdict),
        reason="",
        host_probe=ProbeResult(ok=probe_ok),
        listener=Listener(pid=pid, command="srv") if pid else None,
    )


def _recount(session: Session) -> tuple[int, int, int, Verdict | None]:
    reports = session.snapshot().containers
    worst = max((r.worst for r in reports if r.worst), key=lambda v: v.severity, default=None)
    return len(reports), sum(len(r.socket_mounts) for r in reports), sum(r.problems for r in reports), worst


def _spec(cid: str) -> ContainerSpec:
    return ContainerSpec(id=cid, name=f"n{cid}", state="running", image="img", inspected=True)


def test_running_totals_match_a_recount_and_versions_move_only_when_a_set_changes() -> None:
    engine = FakeEngine(_spec("a"), _spec("b"))
    session = Session(engine=engine, options=Options())  # type: ignore[arg-type]
    session.full_check()
    live_a = ContainerReport(_spec("a"), (_mount_report("/s/a.sock", "live", pid=10),))
    stale_b = ContainerReport(_spec("b"), (_mount_report("/s/b.sock", "stale", probe_ok=False),))
    session._store([live_a, stale_b])
    assert session.counts() == _recount(session) == (2, 2, 1, Verdict.STALE)
    assert session.listener_pids() == {10} and session.watched_paths() == {"/s/a.sock", "/s/b.sock"}
    assert session.affected_by(["/s/a.sock"]) == {"a": {"/run/x.sock"}}
    assert session.listened_by(10) == {"a": {"/run/x.sock"}}
    before = session.versions()

    session._store([live_a])  # the same report again: nothing moves
    assert session.versions() == before

    live_b = ContainerReport(_spec("b"), (_mount_report("/s/b.sock", "live", pid=11),))
    session._store([live_b])
    after = session.versions()
    assert after["pids"] != before["pids"] and after["paths"] == before["paths"]
    assert session.counts() == _recount(session) == (2, 2, 0, Verdict.LIVE)

    session.remove("a")
    assert session.counts() == _recount(session) == (1, 1, 0, Verdict.LIVE)
    assert session.listener_pids() == {11} and session.watched_paths() == {"/s/b.sock"}
    assert session.affected_by(["/s/a.sock"]) == {} and session.listened_by(10) == {}


@pytest.mark.parametrize("gone", ["deleted", "probe"])
def test_marks_coalesce_per_path(gone: str) -> None:
    from socktui.live import Marks

    marks = Marks()
    marks.paths([("/s/a.sock", "added"), ("/s/b.sock", "added")])
    marks.paths([("/s/a.sock", gone)])
    batch = marks.take(0)
    assert batch.paths == {"/s/a.sock": gone, "/s/b.sock": "added"}
    assert not marks.take(0)


def test_a_deferred_mark_comes_back_when_it_is_due_and_a_fresh_mark_does_not_wait() -> None:
    from socktui.live import Marks

    marks = Marks()
    marks.defer({"/s/a.sock": "added"}, time.monotonic() + 0.05)
    assert not marks.take(0)  # not due yet
    assert marks.take(TIMEOUT).paths == {"/s/a.sock": "added"}  # take waits until it is due, not for the timeout
    marks.defer({"/s/b.sock": "added"}, time.monotonic() + TIMEOUT)
    marks.paths([("/s/b.sock", "deleted")])
    assert marks.take(0).paths == {"/s/b.sock": "deleted"}  # marked again: no waiting for the deferred one
    assert not marks.take(0)


def test_a_directory_churning_sockets_does_not_hold_up_another_containers_change(tmp_path: Path) -> None:
    busy, quiet = tmp_path / "busy", tmp_path / "quiet"
    busy.mkdir()
    quiet.mkdir()
    seeds = [bind(busy / "seed.sock"), bind(quiet / "seed.sock")]
    engine = FakeEngine(dir_container("a", busy), dir_container("b", quiet))
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            sock = bind(busy / "churn.sock")
            stop.wait(0.01)
            (busy / "churn.sock").unlink()
            sock.close()

    churner = threading.Thread(target=churn, daemon=True)
    with monitoring(engine) as run:
        until(lambda: run.monitor.armed, "the sources")
        churner.start()
        try:
            until(lambda: run.monitor.batches >= 5, "the churn to reach the Monitor")
            new = bind(quiet / "new.sock")
            until(lambda: "new.sock" in run.socket_names("b", "/run/quiet"), "the quiet container's change on screen")
        finally:
            stop.set()
            churner.join(TIMEOUT)
    for sock in (*seeds, new):
        sock.close()


def test_a_mount_that_keeps_changing_is_looked_at_once_a_second_and_a_calm_one_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The churn bound, on a clock of the test's own: four looks in a row make a mount busy (a look a second), two
    quiet seconds make it calm again (a change is looked at as soon as a quarter second has passed)."""
    import types

    from socktui import live

    clock = [100.0]
    monkeypatch.setattr(live, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))

    class Touches:
        """What the Monitor asks a Session when paths change: which mounts they touch."""

        def affected_by(self, paths: object) -> dict[str, set[str]]:
            return {"c": {"/run/s"}}

    monitor = Monitor(Touches(), live=False)  # type: ignore[arg-type]
    mount = {"c": {"/run/s"}}
    change = {"/s/x.sock": "added"}
    for _ in range(live.BUSY_STREAK):  # looked at every 0.3 s: each change was due
        assert monitor._not_too_soon(change) == mount
        monitor._looked_at(mount)
        clock[0] += 0.3
    assert monitor._not_too_soon(change) == {}, "busy: 0.3 s after the last look is too soon"
    assert monitor.marks._later["/s/x.sock"] == ("added", clock[0] - 0.3 + live.BUSY_SECONDS)
    clock[0] += live.BUSY_SECONDS
    assert monitor._not_too_soon(change) == mount, "a second later it is looked at"
    monitor._looked_at(mount)
    clock[0] += live.CALM_SECONDS + 0.3
    monitor._looked_at(mount)  # a look after a calm spell starts a new streak
    clock[0] += 0.3
    assert monitor._not_too_soon(change) == mount, "calm again: a quarter second is enough"
