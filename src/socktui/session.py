"""A live session: the engine, the options, and the latest report, updated piecemeal as things change.

The TUI is given one of these (``make_session``), the same way the CLI builds one, so the screen and
``socktui check`` always come from the same code. Every method here may block: the TUI's
:class:`socktui.live.Monitor` calls them on its own thread, the only one that ever changes a Session.
"""

from __future__ import annotations

import os
import posixpath
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .compose import Flavour, compose_of
from .diagnose import Neighbours, diagnose, diagnose_containers
from .engine import Engine
from .model import (
    CheckReport,
    ContainerReport,
    ContainerSpec,
    EngineInfo,
    Listener,
    MountReport,
    Product,
    Role,
    SocketState,
    Verdict,
)
from .observe import SocketMemory
from .verdict import short_command


@dataclass(frozen=True)
class Options:
    host: str | None = None
    context: str | None = None
    read_only: bool = False
    expected: tuple[str, ...] = ()
    watch_dirs: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: Any) -> Options:
        """The options the ``socktui`` command line gave (an argparse namespace)."""
        return cls(
            host=args.host,
            context=args.context,
            read_only=args.read_only,
            expected=tuple(args.expect),
            watch_dirs=tuple(os.path.abspath(d) for d in args.watch),
        )


@dataclass(frozen=True)
class Change:
    """One line for the event log, derived by comparing two reports of the same container."""

    container: str
    text: str
    verdict: Verdict | None = None
    loud: bool = False  # shown in bold: the engine went away, a source stopped, a watcher degraded


INTEREST = ("paths", "dirs", "pids", "live")


@dataclass
class Session:
    """The latest report of every container, and what follows from it: totals and what the live sources watch.

    Single writer: only one thread changes a Session (the :class:`socktui.live.Monitor`'s, or a CLI's), so it needs no
    lock, no ordering tickets and no tombstones. Readers on other threads get immutable snapshots through the
    Monitor's updates, never the Session itself.
    """

    engine: Engine
    options: Options
    info: EngineInfo | None = None
    specs: dict[str, ContainerSpec] = field(default_factory=dict)
    reports: dict[str, ContainerReport] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    notes: tuple[str, ...] = ()  # about the last full look (say, that the kernel has no unix_diag)
    # Which shared directories held sockets: one that loses them stays a socket-dir (missing), not "no socket mounts",
    # and so stays watched: the row follows a server that restarts.
    memory: SocketMemory = field(default_factory=SocketMemory)
    # Running totals, interest sets and indexes, kept per container so one change costs one container, not N.
    _contrib: dict[str, dict[str, Any]] = field(default_factory=dict)
    _sets: dict[str, Counter[Any]] = field(default_factory=lambda: {k: Counter() for k in INTEREST})
    _versions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INTEREST, 0))
    _by_source: dict[str, set[tuple[str, str]]] = field(default_factory=dict)  # source -> (container, destination)
    _neighbours_now: Neighbours | None = None
    _by_pid: dict[int, set[tuple[str, str]]] = field(default_factory=dict)  # listener pid -> (container, destination)
    _mounts: int = 0
    _problems: int = 0
    _worst: Counter[Verdict] = field(default_factory=Counter)

    # ------------------------------------------------------------------ whole look
    def full_check(
        self,
        cancel: threading.Event | None = None,
        on_listed: Callable[[EngineInfo, list[ContainerSpec]], None] | None = None,
    ) -> CheckReport:
        """One whole look at the engine; its report replaces every container's."""
        report = diagnose(
            self.engine, expected=self.options.expected, cancel=cancel, on_listed=on_listed, memory=self.memory
        )
        self.info = report.engine
        self.notes = report.notes
        fresh = {r.container.id: r for r in report.containers}
        for cid in set(self.reports) - set(fresh):
            self._account(cid, None)
        for cid, r in fresh.items():
            self._account(cid, r)
        self.reports = fresh
        self.specs = {cid: r.container for cid, r in fresh.items()}
        self._neighbours_now = None
        self.order = [r.container.id for r in report.containers]
        return self.snapshot()

    def snapshot(self) -> CheckReport:
        info = self.info or EngineInfo(endpoint=self.engine.endpoint.url, local=self.engine.endpoint.local)
        return CheckReport(
            engine=info,
            containers=tuple(self.reports[i] for i in self.order if i in self.reports),
            checked_at=time.time(),
            notes=self.notes,
        )

    # ------------------------------------------------------------------ piecemeal updates
    def refresh_container(self, container_id: str) -> tuple[ContainerReport | None, list[Change]]:
        """After an engine event: inspect one container (one request) and re-decide it. None when it is gone."""
        if self.info is None:
            self.info = self.engine.info()
        spec = self.engine.inspect_one(container_id)
        if spec is None:
            return None, self.remove(container_id)
        reports, changes = self.recheck(whole=[spec])
        return reports[0], changes

    def refresh_ids(self, ids: Iterable[str]) -> tuple[list[ContainerReport], list[Change]]:
        """Look again at these containers as the engine last described them (no inspect)."""
        return self.recheck(whole=[self.specs[cid] for cid in ids if cid in self.specs])

    def remove(self, container_id: str) -> list[Change]:
        """A container that is gone. Its id never comes back (the engine makes a new one for a new container)."""
        old = self.reports.pop(container_id, None)
        self._neighbours_now = None
        self._account(container_id, None)
        self.specs.pop(container_id, None)
        if container_id in self.order:
            self.order.remove(container_id)
        return [Change(old.container.name, f"{old.container.name} removed")] if old else []

    def recheck(
        self,
        whole: Iterable[ContainerSpec] = (),
        mounts: Mapping[str, Collection[str]] | None = None,
    ) -> tuple[list[ContainerReport], list[Change]]:
        """Look again at whole containers (new specs, after an engine event) and at single mounts of others.

        ``mounts`` maps container ids to the destinations that changed; every other mount keeps its verdict, so a
        socket bound in one directory costs that mount, not its container nor the rest of the host.
        """
        info = self.info
        if info is None:
            return [], []
        specs = {spec.id: spec for spec in whole}
        keep: dict[str, dict[str, MountReport]] = {}
        known: dict[int, Listener] = {}
        for cid, destinations in (mounts or {}).items():
            if cid in specs or cid not in self.reports:
                continue
            old = self.reports[cid]
            wanted = set(destinations)
            keep[cid] = {m.mount.destination: m for m in old.mounts if m.mount.destination not in wanted}
            known.update(_listeners_named(m for m in old.mounts if m.mount.destination in wanted))
            specs[cid] = self.specs[cid]
        if not specs:
            return [], []
        reports = diagnose_containers(
            info,
            specs.values(),
            self.options.expected,
            keep=keep,
            neighbours=self._neighbours(),
            known=known,
            memory=self.memory,
        )
        return reports, self._store(reports)

    def _neighbours(self) -> Neighbours:
        """Where every running container mounts what, and their names: kept until a container changes."""
        if self._neighbours_now is None:
            self._neighbours_now = Neighbours.of(self.specs.values())
        return self._neighbours_now

    def _store(self, reports: Sequence[ContainerReport]) -> list[Change]:
        changes: list[Change] = []
        for report in reports:
            cid = report.container.id
            if self.specs.get(cid) != report.container:
                self._neighbours_now = None
            old = self.reports.get(cid)
            changes.extend(describe_changes(old, report))
            self.reports[cid] = report
            self._account(cid, report)
            self.specs[cid] = report.container
            if cid not in self.order:
                self.order.append(cid)
        return changes

    # ------------------------------------------------------------------ what a change touches
    def affected_by(self, paths: Iterable[str]) -> dict[str, set[str]]:
        """The mounts (container id -> destinations) whose verdict may change when these host paths change: a
        mount of the path itself, or of the directory that holds it. An index lookup per path, not a scan."""
        found: dict[str, set[str]] = {}
        for path in paths:
            path = posixpath.normpath(path)
            for source in (path, posixpath.dirname(path)):
                for cid, destination in self._by_source.get(source, ()):
                    found.setdefault(cid, set()).add(destination)
        return found

    def listened_by(self, pid: int) -> dict[str, set[str]]:
        """The mounts (container id -> destinations) whose socket the process ``pid`` was seen listening on."""
        found: dict[str, set[str]] = {}
        for cid, destination in self._by_pid.get(pid, ()):
            found.setdefault(cid, set()).add(destination)
        return found

    # ------------------------------------------------------------------ what to watch
    def watched_paths(self) -> set[str]:
        """Host paths of every socket-relevant source (the watcher watches their parents)."""
        return set(self._sets["paths"])

    def socket_dirs(self) -> set[str]:
        """Directory sources to watch inside: socket directories (an emptied one keeps its role), and ``--watch``."""
        return set(self._sets["dirs"]) | set(self.options.watch_dirs)

    def listener_pids(self) -> set[int]:
        return {int(p) for p in self._sets["pids"]}

    def live_socket_paths(self) -> dict[str, tuple[int, ...]]:
        """Every host socket file seen, with the pids of the running containers that mount it and of its listener.

        The socket-table re-read watches these for a server that comes or goes without a filesystem event (a
        listener's exit also comes from its pidfd). It costs one table read per network namespace, not a connect."""
        found: dict[str, set[int]] = {}
        for path, pid, _state in self._sets["live"]:
            pids = found.setdefault(path, set())
            if pid:
                pids.add(pid)
        return {path: tuple(sorted(pids)) for path, pids in found.items()}

    def live_socket_states(self) -> dict[str, SocketState]:
        """What the last look found bound to each of those files: the re-read compares its next round with it."""
        return {path: state for path, _pid, state in self._sets["live"] if state is not None}

    def versions(self) -> dict[str, int]:
        """A number per interest set that moves when the set changes: callers skip rebuilding what did not."""
        return dict(self._versions)

    def counts(self) -> tuple[int, int, int, Verdict | None]:
        """Containers, socket mounts, problems and the worst verdict, kept up to date as reports are stored."""
        worst = max(self._worst, key=lambda v: v.severity, default=None)
        return len(self.reports), self._mounts, self._problems, worst

    # ------------------------------------------------------------------ running totals
    def _account(self, cid: str, report: ContainerReport | None) -> None:
        """Swap one container's contribution to the totals, interest sets and indexes."""
        old = self._contrib.pop(cid, None)
        new = _contribution(report, self.info) if report is not None else None
        for kind in INTEREST:
            before = old[kind] if old else frozenset()
            after = new[kind] if new else frozenset()
            if before == after:
                continue
            counter = self._sets[kind]
            changed = False
            for key in before - after:
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]
                    changed = True
            for key in after - before:
                changed = changed or counter[key] == 0
                counter[key] += 1
            if changed:
                self._versions[kind] += 1
        _reindex(self._by_source, cid, old["sources"] if old else (), new["sources"] if new else ())
        _reindex(self._by_pid, cid, old["listeners"] if old else (), new["listeners"] if new else ())
        if old:
            self._mounts -= old["mounts"]
            self._problems -= old["problems"]
            if old["worst"] is not None:
                self._worst[old["worst"]] -= 1
                if self._worst[old["worst"]] <= 0:
                    del self._worst[old["worst"]]
        if new:
            self._contrib[cid] = new
            self._mounts += new["mounts"]
            self._problems += new["problems"]
            if new["worst"] is not None:
                self._worst[new["worst"]] += 1


def _reindex(
    index: dict[Any, set[tuple[str, str]]],
    cid: str,
    before: Iterable[tuple[Any, str]],
    after: Iterable[tuple[Any, str]],
) -> None:
    for key, destination in before:
        entries = index.get(key)
        if entries is not None:
            entries.discard((cid, destination))
            if not entries:
                del index[key]
    for key, destination in after:
        index.setdefault(key, set()).add((cid, destination))


def _listeners_named(mounts: Iterable[MountReport]) -> dict[int, Listener]:
    """Socket inode -> listener, for every socket these mounts saw listened on."""
    named: dict[int, Listener] = {}
    for m in mounts:
        for bound, listener in ((m.bound, m.listener), *((s.bound, s.listener) for s in m.sockets)):
            if bound is not None and bound.socket_inode is not None and listener is not None:
                named[bound.socket_inode] = listener
    return named


def _contribution(report: ContainerReport, info: EngineInfo | None) -> dict[str, Any]:
    local = info is None or info.local
    mounts = report.socket_mounts
    paths = frozenset(m.mount.source for m in mounts if m.mount.source and local)
    dirs = frozenset(m.mount.source for m in mounts if m.role is Role.SOCKET_DIR)
    pids: set[int] = set()
    live: set[tuple[str, int, SocketState | None]] = set()
    listeners: set[tuple[int, str]] = set()
    mounter = report.container.pid if report.container.running and report.container.pid else 0
    for m in mounts:
        if m.listener:
            pids.add(m.listener.pid)
            listeners.add((m.listener.pid, m.mount.destination))
        if m.bound is not None or (m.host_probe is not None and m.host_probe.ok):
            live.add((m.mount.source, mounter, m.bound))
            if m.listener:  # its namespace too: it may be none of the mounters' (found by a machine-wide read)
                live.add((m.mount.source, m.listener.pid, m.bound))
        for sock in m.sockets:
            if sock.listener:
                pids.add(sock.listener.pid)
                listeners.add((sock.listener.pid, m.mount.destination))
            if sock.bound is not None or (sock.host_probe is not None and sock.host_probe.ok):
                live.add((sock.host_path, mounter, sock.bound))
                if sock.listener:
                    live.add((sock.host_path, sock.listener.pid, sock.bound))
    sources = frozenset((posixpath.normpath(m.mount.source), m.mount.destination) for m in mounts if m.mount.source)
    return {
        "paths": paths,
        "dirs": dirs,
        "pids": frozenset(pids),
        "live": frozenset(live),
        "sources": sources,
        "listeners": frozenset(listeners),
        "mounts": len(mounts),
        "problems": report.problems,
        "worst": report.worst,
    }


def shadow_maker(container: ContainerSpec) -> tuple[str, str]:
    """Who makes a missing bind source a directory for this container, and when (see verdict._made_by)."""
    compose = compose_of(container)
    if compose is not None and compose.flavour is Flavour.PODMAN:
        return "podman-compose", f"before it ran {container.name}"
    if container.product is Product.PODMAN:
        return "Podman", f"when {container.name} was created"
    return "Docker", f"when {container.name} started"


def describe_changes(old: ContainerReport | None, new: ContainerReport) -> list[Change]:
    name = new.container.name
    changes: list[Change] = []
    if old is None:
        return [Change(name, f"{name} appeared ({new.container.state})", new.worst)]
    if old.container.state != new.container.state:
        changes.append(Change(name, f"{name} {new.container.state}", new.worst))
    if old.container.name != new.container.name:
        changes.append(Change(name, f"{old.container.name} renamed to {name}", new.worst))
    before = {(m.mount.source, m.mount.destination): m for m in old.socket_mounts}
    for m in new.socket_mounts:
        prev = before.get((m.mount.source, m.mount.destination))
        if prev is not None and prev.verdict == m.verdict and _socket_verdicts(prev) == _socket_verdicts(m):
            continue
        verdict = m.verdict
        src = m.mount.source
        if prev is None or prev.verdict != verdict:
            if verdict is Verdict.LIVE and m.listener is not None:
                text = f"{src} bound by pid {m.listener.pid} {short_command(m.listener.command, 40)}"
            elif verdict is Verdict.SHADOWED and m.shadow_created_by_docker_at is not None:
                who, when = shadow_maker(new.container)
                text = f"{who} created directory {src} {when}"
            else:
                was = prev.verdict.value if prev is not None and prev.verdict else "new"
                text = f"{name}: {src}: {was} → {verdict.value if verdict else '-'}"
            changes.append(Change(name, text, verdict))
        if m.role is Role.SOCKET_DIR and prev is not None:
            old_socks = {s.name: s for s in prev.sockets}
            now = {s.name for s in m.sockets}
            for s in m.sockets:
                before_s = old_socks.get(s.name)
                if before_s is None or before_s.verdict != s.verdict:
                    if s.verdict is Verdict.LIVE and s.listener is not None:
                        text = f"{s.host_path} bound by pid {s.listener.pid} {short_command(s.listener.command, 40)}"
                    else:
                        text = f"{s.host_path}: {before_s.verdict.value if before_s else 'new'} → {s.verdict.value}"
                    changes.append(Change(name, text, s.verdict))
            for gone in sorted(set(old_socks) - now):
                changes.append(Change(name, f"{old_socks[gone].host_path} removed", None))
    return changes


def _socket_verdicts(m: MountReport) -> tuple[tuple[str, str], ...]:
    return tuple((s.name, s.verdict.value) for s in m.sockets)


def make_session(options: Options, timeout: int = 10) -> Session:
    return Session(
        engine=Engine.from_options(host=options.host, context=options.context, timeout=timeout), options=options
    )
