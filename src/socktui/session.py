"""A live session: the engine, the options, and the latest report, updated piecemeal as things change.

The TUI is given one of these (``make_session``), the same way the CLI builds one, so the screen and
``socktui check`` always come from the same code. Every method here may block: callers run them in threads.
"""

from __future__ import annotations

import posixpath
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .compose import Flavour, compose_of
from .diagnose import diagnose, diagnose_containers
from .engine import Engine
from .model import CheckReport, ContainerReport, ContainerSpec, EngineInfo, MountReport, Product, Role, Verdict
from .observe import SocketMemory
from .verdict import short_command


@dataclass(frozen=True)
class Options:
    host: str | None = None
    context: str | None = None
    read_only: bool = False
    expected: tuple[str, ...] = ()
    watch_dirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """One line for the event log, derived by comparing two reports of the same container."""

    container: str
    text: str
    verdict: Verdict | None = None


@dataclass
class Session:
    engine: Engine
    options: Options
    info: EngineInfo | None = None
    specs: dict[str, ContainerSpec] = field(default_factory=dict)
    reports: dict[str, ContainerReport] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Rechecks run concurrently. Each takes a number when it *starts*, and a result is kept only if no recheck that
    # started later has already stored one; a destroyed container's id never comes back, so it is remembered.
    _seq: int = 0
    _stored_seq: dict[str, int] = field(default_factory=dict)
    _removed: set[str] = field(default_factory=set)
    # Running totals and interest sets, kept per container so one change costs one container, not N.
    _contrib: dict[str, dict[str, Any]] = field(default_factory=dict)
    _sets: dict[str, Counter[Any]] = field(
        default_factory=lambda: {k: Counter() for k in ("paths", "dirs", "pids", "live")}
    )
    _versions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("paths", "dirs", "pids", "live"), 0))
    notes: tuple[str, ...] = ()  # about the last full look (say, that the kernel has no unix_diag)
    # Which shared directories held sockets: one that loses them stays a socket-dir (missing), not "no socket mounts".
    memory: SocketMemory = field(default_factory=SocketMemory)
    _mounts: int = 0
    _problems: int = 0
    _worst: Counter[Verdict] = field(default_factory=Counter)

    def _ticket(self) -> int:
        with self.lock:
            self._seq += 1
            return self._seq

    # ------------------------------------------------------------------ whole look
    def full_check(
        self,
        cancel: threading.Event | None = None,
        on_listed: Callable[[EngineInfo, list[ContainerSpec]], None] | None = None,
    ) -> CheckReport:
        ticket = self._ticket()
        report = diagnose(
            self.engine, expected=self.options.expected, cancel=cancel, on_listed=on_listed, memory=self.memory
        )
        with self.lock:
            self.info = report.engine
            self.notes = report.notes
            fresh = {r.container.id: r for r in report.containers if r.container.id not in self._removed}
            # Anything a later recheck stored (a container created meanwhile, a newer state) wins over this look.
            newer = {cid: r for cid, r in self.reports.items() if self._stored_seq.get(cid, 0) > ticket}
            fresh.update(newer)
            for cid in fresh:
                self._stored_seq[cid] = max(self._stored_seq.get(cid, 0), ticket)
            for cid in set(self.reports) - set(fresh):
                self._account(cid, None)
            for cid, r in fresh.items():
                if self.reports.get(cid) is not r:
                    self._account(cid, r)
            self.reports = fresh
            self.specs = {cid: r.container for cid, r in fresh.items()}
            self.order = [r.container.id for r in report.containers if r.container.id in fresh]
            self.order += [cid for cid in newer if cid not in self.order]
        return self.snapshot()

    def snapshot(self) -> CheckReport:
        with self.lock:
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
        ticket = self._ticket()
        info = self.info or self.engine.info()
        spec = self.engine.inspect_one(container_id)
        if spec is None:
            with self.lock:
                self._removed.add(container_id)
                old = self.reports.pop(container_id, None)
                self._account(container_id, None)
                self.specs.pop(container_id, None)
                if container_id in self.order:
                    self.order.remove(container_id)
            return None, ([Change(old.container.name, f"{old.container.name} removed")] if old else [])
        [report] = diagnose_containers(info, [spec], self.options.expected, memory=self.memory)
        return report, self._store([report], ticket)

    def refresh_paths(self, paths: Iterable[str]) -> tuple[list[ContainerReport], list[Change]]:
        """After filesystem changes: re-decide only the containers whose mounts involve these paths."""
        ids = self.affected_by(paths)
        return self.refresh_ids(ids)

    def refresh_ids(self, ids: Iterable[str]) -> tuple[list[ContainerReport], list[Change]]:
        ticket = self._ticket()
        info = self.info
        if info is None:
            return [], []
        with self.lock:
            specs = [self.specs[i] for i in ids if i in self.specs]
        if not specs:
            return [], []
        reports = diagnose_containers(info, specs, self.options.expected, memory=self.memory)
        return reports, self._store(reports, ticket)

    def _store(self, reports: Sequence[ContainerReport], ticket: int) -> list[Change]:
        changes: list[Change] = []
        with self.lock:
            for report in reports:
                cid = report.container.id
                if cid in self._removed or self._stored_seq.get(cid, 0) > ticket:
                    continue  # gone, or a recheck that started later already stored a newer truth
                self._stored_seq[cid] = ticket
                old = self.reports.get(cid)
                changes.extend(describe_changes(old, report))
                self.reports[cid] = report
                self._account(cid, report)
                self.specs[cid] = report.container
                if cid not in self.order:
                    self.order.append(cid)
        return changes

    def affected_by(self, paths: Iterable[str]) -> list[str]:
        wanted = {posixpath.normpath(p) for p in paths}
        parents = {posixpath.dirname(p) for p in wanted}
        with self.lock:
            reports = list(self.reports.values())
        ids = []
        for report in reports:
            for m in report.socket_mounts:
                source = posixpath.normpath(m.mount.source)
                if source in wanted or source in parents:
                    ids.append(report.container.id)
                    break
        return ids

    # ------------------------------------------------------------------ what to watch
    def watched_paths(self) -> set[str]:
        """Host paths of every socket-relevant source (the watcher watches their parents)."""
        with self.lock:
            return set(self._sets["paths"])

    def socket_dirs(self) -> set[str]:
        with self.lock:
            return set(self._sets["dirs"]) | set(self.options.watch_dirs)

    def listener_pids(self) -> set[int]:
        with self.lock:
            return {int(p) for p in self._sets["pids"]}

    def live_socket_paths(self) -> dict[str, tuple[int, ...]]:
        """Every host socket file seen, with the pids of the running containers that mount it.

        The socket-table re-read watches these for a server that comes or goes without a filesystem event (a
        listener's exit also comes from its pidfd). It costs one table read per network namespace, not a connect."""
        with self.lock:
            keys = list(self._sets["live"])
        found: dict[str, set[int]] = {}
        for path, pid in keys:
            pids = found.setdefault(path, set())
            if pid:
                pids.add(pid)
        return {path: tuple(sorted(pids)) for path, pids in found.items()}

    def versions(self) -> dict[str, int]:
        """A number per interest set that moves when the set changes: callers skip rebuilding what did not."""
        with self.lock:
            return dict(self._versions)

    def counts(self) -> tuple[int, int, int, Verdict | None]:
        """Containers, socket mounts, problems and the worst verdict, kept up to date as reports are stored."""
        with self.lock:
            worst = max(self._worst, key=lambda v: v.severity, default=None)
            return len(self.reports), self._mounts, self._problems, worst

    # ------------------------------------------------------------------ running totals
    def _account(self, cid: str, report: ContainerReport | None) -> None:
        """Swap one container's contribution to the totals and interest sets (call with the lock held)."""
        old = self._contrib.pop(cid, None)
        new = _contribution(report, self.info) if report is not None else None
        for kind in ("paths", "dirs", "pids", "live"):
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


def _contribution(report: ContainerReport, info: EngineInfo | None) -> dict[str, Any]:
    local = info is None or info.local
    mounts = report.socket_mounts
    paths = frozenset(m.mount.source for m in mounts if m.mount.source and local)
    dirs = frozenset(m.mount.source for m in mounts if m.role is Role.SOCKET_DIR)
    pids: set[int] = set()
    live: set[tuple[str, int]] = set()
    mounter = report.container.pid if report.container.running and report.container.pid else 0
    for m in mounts:
        if m.listener:
            pids.add(m.listener.pid)
        if m.bound is not None or (m.host_probe is not None and m.host_probe.ok):
            live.add((m.mount.source, mounter))
        for sock in m.sockets:
            if sock.listener:
                pids.add(sock.listener.pid)
            if sock.bound is not None or (sock.host_probe is not None and sock.host_probe.ok):
                live.add((sock.host_path, mounter))
    return {
        "paths": paths,
        "dirs": dirs,
        "pids": frozenset(pids),
        "live": frozenset(live),
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
