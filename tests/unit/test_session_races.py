"""Concurrent rechecks must never bring back a removed container or let an older look overwrite a newer one.

The engine is a stand-in whose inspect blocks until the test lets it go: what is under test is the ordering logic
in Session, and this makes the interleaving that a busy machine produces by chance happen every time."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from socktui.engine import Endpoint
from socktui.model import (
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
from socktui.session import Options, Session


def spec(cid: str, state: str) -> ContainerSpec:
    return ContainerSpec(id=cid, name=f"n{cid}", state=state, image="img", inspected=True)


class GatedEngine:
    """inspect_one answers from ``answers[cid]`` (a queue), waiting on the gate registered for that answer."""

    endpoint = Endpoint(url="unix:///fake.sock", source="test")

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[threading.Event | None, ContainerSpec | None]]] = {}
        self.listed: list[ContainerSpec] = []

    def info(self) -> EngineInfo:
        return EngineInfo(endpoint=self.endpoint.url, local=True, version="test")

    def inspect_one(self, cid: str) -> ContainerSpec | None:
        gate, answer = self.answers[cid].pop(0)
        if gate is not None:
            assert gate.wait(5)
        return answer

    def list_containers(self) -> list[ContainerSpec]:
        return list(self.listed)

    def inspect_stream(self, specs: Iterable[ContainerSpec]) -> Iterable[ContainerSpec | None]:
        yield from specs


def make(engine: GatedEngine, *specs: ContainerSpec) -> Session:
    session = Session(engine=engine, options=Options())  # type: ignore[arg-type]
    engine.listed = list(specs)
    session.full_check()
    return session


def states(session: Session) -> dict[str, str]:
    return {r.container.id: r.container.state for r in session.snapshot().containers}


def test_a_slow_recheck_does_not_bring_back_a_removed_container() -> None:
    engine = GatedEngine()
    session = make(engine, spec("a", "created"))
    gate = threading.Event()
    engine.answers["a"] = [(gate, spec("a", "running")), (None, None)]
    slow = threading.Thread(target=session.refresh_container, args=("a",))
    slow.start()  # the "start" event's recheck: inspect saw it running, then got held up
    while not engine.answers["a"] or len(engine.answers["a"]) == 2:
        pass  # wait until the slow recheck has taken its answer
    report, changes = session.refresh_container("a")  # the "destroy" event's recheck
    assert report is None and any("removed" in c.text for c in changes)
    gate.set()
    slow.join(5)
    assert "a" not in states(session)


def test_a_recheck_that_started_later_wins() -> None:
    engine = GatedEngine()
    session = make(engine, spec("a", "running"))
    gate = threading.Event()
    engine.answers["a"] = [(gate, spec("a", "running")), (None, spec("a", "exited"))]
    older = threading.Thread(target=session.refresh_container, args=("a",))
    older.start()
    while len(engine.answers["a"]) == 2:
        pass
    session.refresh_container("a")
    assert states(session) == {"a": "exited"}
    gate.set()
    older.join(5)
    assert states(session) == {"a": "exited"}


def test_a_full_look_does_not_resurrect_a_container_removed_meanwhile() -> None:
    engine = GatedEngine()
    session = make(engine, spec("a", "running"), spec("b", "running"))
    engine.answers["b"] = [(None, None)]
    session.refresh_container("b")
    engine.listed = [spec("a", "running"), spec("b", "running")]  # a list taken before the removal
    session.full_check()
    assert set(states(session)) == {"a"}


def _mount_report(source: str, verdict: str, pid: int | None = None, probe_ok: bool = True) -> MountReport:
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


def test_running_totals_match_a_recount_and_versions_move_only_when_a_set_changes() -> None:
    engine = GatedEngine()
    session = make(engine, spec("a", "running"), spec("b", "running"))
    live_a = ContainerReport(spec("a", "running"), (_mount_report("/s/a.sock", "live", pid=10),))
    stale_b = ContainerReport(spec("b", "running"), (_mount_report("/s/b.sock", "stale", probe_ok=False),))
    session._store([live_a, stale_b], session._ticket())
    assert session.counts() == _recount(session) == (2, 2, 1, Verdict.STALE)
    assert session.listener_pids() == {10} and session.watched_paths() == {"/s/a.sock", "/s/b.sock"}
    before = session.versions()

    session._store([live_a], session._ticket())  # the same report again: nothing moves
    assert session.versions() == before

    live_b = ContainerReport(spec("b", "running"), (_mount_report("/s/b.sock", "live", pid=11),))
    session._store([live_b], session._ticket())
    after = session.versions()
    assert after["pids"] != before["pids"] and after["paths"] == before["paths"]
    assert session.counts() == _recount(session) == (2, 2, 0, Verdict.LIVE)

    engine.answers["a"] = [(None, None)]
    session.refresh_container("a")
    assert session.counts() == _recount(session) == (1, 1, 0, Verdict.LIVE)
    assert session.listener_pids() == {11} and session.watched_paths() == {"/s/b.sock"}
