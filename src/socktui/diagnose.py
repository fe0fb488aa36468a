"""One look at the engine: list, inspect what needs it, observe, decide. Used by ``socktui check`` and the TUI."""

from __future__ import annotations

import posixpath
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from .engine import Engine
from .fixes import Situation, offers
from .listeners import ListenerIndex, SocketTables
from .model import (
    CheckReport,
    ContainerReport,
    ContainerSpec,
    EngineInfo,
    Kind,
    Listener,
    Liveness,
    MountReport,
    MountSpec,
    Product,
    Role,
    SocketReport,
    Verdict,
)
from .observe import ContainerLook, HostCache, SocketMemory, mount_role, observe_mount, with_liveness
from .roles import looks_like_socket
from .socktable import Only, read_table, read_tables
from .verdict import MountObservation, PathObservation, api_server, decide, decide_entry

# A look's whole budget, engine answers included: containers still to come after it are listed as not looked at.
LOOK_DEADLINE_SECONDS = 90.0

FALLBACK_NOTE = (
    "this kernel cannot list unix sockets by file (no unix_diag): listeners were matched by the path they bound, "
    "read from /proc/net/unix, and a server in a namespace socktui did not read may be missed"
)


class Cancelled(Exception):
    """The caller's cancel event was set; the look was abandoned."""


def select_containers(containers: Sequence[ContainerSpec], wanted: Sequence[str]) -> list[ContainerSpec]:
    """Containers named by name or id prefix (as the docker CLI accepts them); all when none are named."""
    if not wanted:
        return list(containers)
    chosen = []
    for c in containers:
        if any(w.lstrip("/") == c.name or (len(w) >= 3 and c.id.startswith(w)) for w in wanted):
            chosen.append(c)
    return chosen


def unmatched(containers: Sequence[ContainerSpec], wanted: Sequence[str]) -> list[str]:
    return [w for w in wanted if not select_containers(containers, [w])]


def report_for(obs: MountObservation) -> MountReport:
    decision = decide(obs)
    sockets = tuple(
        SocketReport(
            name=entry.host_path.rsplit("/", 1)[-1],
            host_path=entry.host_path,
            container_path=entry.container_path,
            verdict=(d := decide_entry(entry, obs)).verdict,
            reason=d.reason,
            host=entry.host,
            host_probe=entry.host_probe,
            container=entry.view,
            listener=entry.listener,
            bound=entry.bound,
        )
        for entry in obs.entries
    )
    verdict = decision.verdict if decision else None
    return MountReport(
        mount=obs.mount,
        role=obs.role,
        verdict=verdict,
        reason=decision.reason if decision else "",
        host=obs.target.host,
        host_probe=obs.target.host_probe,
        container=obs.target.view,
        listener=obs.target.listener,
        bound=obs.target.bound,
        shadow_created_by_docker_at=decision.shadow_created_at if decision else None,
        sockets=sockets,
        denial=decision.denial if decision else None,
        fixes=tuple(
            f
            for f in offers(
                verdict,
                obs.mount,
                obs.role,
                Situation(running=obs.container.running, denial=decision.denial if decision else None),
            )
            # Podman never creates a missing source at start and its compat API creates one at create for --mount
            # too, so --mount changes nothing there.
            if not (f.id == "use-mount-flag" and obs.engine.product is Product.PODMAN)
        ),
        mount_point=obs.mount_point,
    )


@dataclass(frozen=True)
class Neighbours:
    """What a look at a few containers must know of all the others: where each running one mounts what (a server
    inside it binds under its own paths, in its own namespace), and every container's name (to name a listener's).
    A live session keeps one until a container changes, so a socket churning in one directory costs that directory's
    look, not a pass over every container."""

    mapped: Mapping[str, tuple[tuple[int, str], ...]]  # host source -> (pid, destination) of running containers
    names: Mapping[str, str]  # container id -> name

    @classmethod
    def of(cls, containers: Iterable[ContainerSpec]) -> Neighbours:
        mapped: dict[str, list[tuple[int, str]]] = {}
        names: dict[str, str] = {}
        for c in containers:
            names[c.id] = c.name
            if c.running and c.pid:
                for m in c.mounts:
                    found = mapped.setdefault(m.source.rstrip("/"), [])
                    if (c.pid, m.destination.rstrip("/")) not in found:
                        found.append((c.pid, m.destination.rstrip("/")))
        return cls({source: tuple(found) for source, found in mapped.items()}, names)


NOBODY = Neighbours({}, {})


class Look:
    """One look at many containers: observe each as it arrives, then read socket tables and resolve listeners once.

    Containers can be added while others are still being inspected, so a check overlaps the engine's answers with
    the filesystem work instead of waiting for every inspect first. Nothing is connected to unless ``connect``.
    """

    def __init__(
        self,
        info: EngineInfo,
        names_by_id: dict[str, str],
        expected: Sequence[str] = (),
        cache: HostCache | None = None,
        *,
        connect: bool = False,
        deadline: float | None = None,
        memory: SocketMemory | None = None,
        neighbours: Neighbours = NOBODY,
    ) -> None:
        self.info = info
        self.neighbours = neighbours
        self.memory = memory  # socket names each shared directory held earlier in the session
        self.expected = expected
        self.cache = cache or HostCache()
        self.connect = connect
        self.deadline = deadline  # time.monotonic() after which containers are listed, not looked at
        self._only: Only | None = None  # the files this look asks the socket tables about, once all are observed
        tables = SocketTables(
            lambda pid: read_table(pid, self._only),
            everywhere=True,
            read_many=lambda pids: read_tables(pids, self._only),
        )
        self.listeners = ListenerIndex(names_by_id, tables)
        self.notes: tuple[str, ...] = ()
        self.pending: list[tuple[ContainerSpec, list[MountObservation | MountReport]]] = []
        self.mapped: dict[str, list[tuple[int, str]]] = {}  # host source -> (pid, destination) of running ones

    def add(self, container: ContainerSpec, keep: Mapping[str, MountReport] | None = None) -> None:
        """Observe a container's mounts; those in ``keep`` (by destination) are carried over as they were decided.

        ``keep`` is how a live recheck looks again at only the mounts that changed."""
        info, cache, expected = self.info, self.cache, self.expected
        keep = keep or {}
        if self.past_deadline():
            self.pending.append((container, [keep.get(m.destination) or _late(m) for m in container.mounts]))
            return
        roles = [
            None if m.destination in keep else mount_role(m, info, cache, expected, self.memory)
            for m in container.mounts
        ]
        items: list[MountObservation | MountReport] = []
        if any(r is not None and r is not Role.OTHER for r in roles):
            look = ContainerLook(container)
            try:
                creds = look.creds()
                for mount, role in zip(container.mounts, roles, strict=True):
                    if role is None:
                        items.append(keep[mount.destination])
                    elif role is Role.OTHER:
                        items.append(MountReport(mount=mount, role=role, verdict=None, reason=""))
                    else:
                        if role is Role.SOCKET_DIR and self.memory is not None:
                            self.memory.remember(mount.source, cache.sockets_in(mount.source))
                        items.append(
                            observe_mount(
                                info,
                                look,
                                mount,
                                role,
                                cache,
                                creds,
                                expected,
                                connect=self.connect,
                                memory=self.memory,
                            )
                        )
            finally:
                look.close()
        else:
            items = [
                keep.get(m.destination) or MountReport(mount=m, role=Role.OTHER, verdict=None, reason="")
                for m in container.mounts
            ]
        self.know(container)
        self.pending.append((container, items))

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def know(self, container: ContainerSpec) -> None:
        """Where a running container mounts what: a server inside it binds under its own paths, in its namespace."""
        if container.running and container.pid:
            for m in container.mounts:
                mapped = self.mapped.setdefault(m.source.rstrip("/"), [])
                if (container.pid, m.destination.rstrip("/")) not in mapped:
                    mapped.append((container.pid, m.destination.rstrip("/")))

    def _elsewhere(self, *paths: str) -> Iterator[tuple[int, str]]:
        """(pid, path inside) of every running container that mounts one of these host paths or a directory above."""
        seen: set[tuple[int, str]] = set()
        for host_path in paths:
            source = host_path.rstrip("/") or "/"
            while True:
                for pid, destination in (*self.mapped.get(source, ()), *self.neighbours.mapped.get(source, ())):
                    inside = destination + host_path[len(source) :] if source != "/" else destination + host_path
                    if (pid, inside) not in seen:
                        seen.add((pid, inside))
                        yield pid, inside
                if source in ("/", ""):
                    break
                source = posixpath.dirname(source)

    def _bound(self, path_obs: PathObservation) -> PathObservation:
        host = path_obs.host
        if host is None or host.kind is not Kind.SOCKET:
            return path_obs
        seen_at = path_obs.via_symlink or path_obs.host_path
        state = self.listeners.state(host.identity, seen_at, self._elsewhere(path_obs.host_path, seen_at))
        return replace(path_obs, bound=state)

    def _listened(self, path_obs: PathObservation) -> PathObservation:
        state = path_obs.bound
        if state is None:
            return path_obs
        listener = self.listeners.listener(state)
        seen_at = path_obs.via_symlink or path_obs.host_path
        probe = None
        if self.connect:
            # Asked for: connect, and say hello over HTTP only to an engine's own daemon. Its name is whatever the
            # listening process calls itself, so a container can pass for one with many silent sockets; each hello
            # waits for a reply, so past the look's deadline none is said (the connect itself never waits).
            ping = api_server(listener) in ("Docker", "Podman") and not self.past_deadline()
            probe = self.cache.probe(seen_at, ping=ping)
        elif state.liveness is Liveness.UNSEEN and not state.by_name:
            # Nobody visible is bound to this file, so a connect reaches no server we know of; it can only tell
            # whether one hides in a namespace that could not be read.
            probe = self.cache.probe(seen_at)
        return replace(path_obs, listener=listener, host_probe=probe)

    def finish(self) -> list[ContainerReport]:
        # Every socket file is observed by now: the tables are asked about those alone (a busy host lists thousands
        # of sockets, and names nobody here needs).
        sockets = [
            p
            for _container, items in self.pending
            for item in items
            if isinstance(item, MountObservation)
            for p in (item.target, *item.entries)
            if p.host is not None and p.host.kind is Kind.SOCKET
        ]
        self._only = Only(frozenset(p.host.identity for p in sockets if p.host is not None))
        # The namespaces of the containers that mount a file nobody in the host's is bound to, read in one go.
        host = self.listeners.tables.host()
        if host is not None and host.has_identities:
            self.listeners.tables.prefetch(
                pid
                for p in sockets
                if p.host is not None and not host.bound_to(p.host.identity)
                for pid, _inside in self._elsewhere(p.host_path, p.via_symlink or p.host_path)
            )
        bound = [
            (container, [item if isinstance(item, MountReport) else with_liveness(item, self._bound) for item in items])
            for container, items in self.pending
        ]
        self.listeners.resolve()
        if self.listeners.tables.fallback:
            self.notes = (FALLBACK_NOTE,)
        reports = []
        for container, items in bound:
            mounts = tuple(
                item if isinstance(item, MountReport) else report_for(with_liveness(item, self._listened))
                for item in items
            )
            reports.append(ContainerReport(container=container, mounts=_ordered(mounts)))
        return reports


def diagnose_containers(
    info: EngineInfo,
    containers: Iterable[ContainerSpec],
    expected: Sequence[str] = (),
    cancel: threading.Event | None = None,
    cache: HostCache | None = None,
    *,
    connect: bool = False,
    memory: SocketMemory | None = None,
    keep: Mapping[str, Mapping[str, MountReport]] | None = None,
    others: Iterable[ContainerSpec] = (),
    known: Mapping[int, Listener] | None = None,
    neighbours: Neighbours | None = None,
) -> list[ContainerReport]:
    """Observe and decide for containers that are already listed (and inspected where needed).

    ``memory`` (a session's) remembers which shared directories held sockets, so one that lost them keeps its role.
    For a live recheck: ``keep`` carries over, per container id, the mounts (by destination) that did not change;
    ``others`` are the rest of the containers, whose namespaces may hold a listener (or ``neighbours``, what a session
    already knows of them, the rechecked containers included: their entries then count twice, harmlessly);
    ``known`` maps socket inodes to listeners already named, so a socket seen again is named without a
    ``/proc/*/fd`` scan.
    """
    containers = list(containers)
    keep = keep or {}
    neighbours = neighbours or Neighbours.of(others)
    names = {**neighbours.names, **{c.id: c.name for c in containers}}
    deadline = time.monotonic() + LOOK_DEADLINE_SECONDS
    look = Look(info, names, expected, cache, connect=connect, deadline=deadline, memory=memory, neighbours=neighbours)
    for inode, listener in (known or {}).items():
        look.listeners.remember(inode, listener)
    for container in containers:
        if cancel is not None and cancel.is_set():
            raise Cancelled
        look.add(container, keep.get(container.id))
    return look.finish()


def _late(mount: MountSpec) -> MountReport:
    return MountReport(
        mount=mount,
        role=Role.SOCKET if looks_like_socket(mount.source) or looks_like_socket(mount.destination) else Role.OTHER,
        verdict=Verdict.UNKNOWN,
        reason=f"not looked at: the look reached its deadline ({LOOK_DEADLINE_SECONDS:.0f} s) before this container; "
        "re-check to look again",
    )


def _ordered(mounts: tuple[MountReport, ...]) -> tuple[MountReport, ...]:
    # The engine lists mounts in no stable order; a stable one keeps the screen and the JSON from shuffling.
    return tuple(sorted(mounts, key=lambda m: (m.role is Role.OTHER, m.mount.destination, m.mount.source)))


def needs_inspect(
    container: ContainerSpec,
    info: EngineInfo,
    cache: HostCache,
    expected: Sequence[str],
    memory: SocketMemory | None = None,
) -> bool:
    return any(mount_role(m, info, cache, expected, memory) is not Role.OTHER for m in container.mounts)


def diagnose(
    engine: Engine,
    names: Sequence[str] = (),
    expected: Sequence[str] = (),
    cancel: threading.Event | None = None,
    on_listed: Callable[[EngineInfo, list[ContainerSpec]], None] | None = None,
    *,
    connect: bool = False,
    memory: SocketMemory | None = None,
) -> CheckReport:
    """The whole look: one list request, inspects only where needed, then observe and decide.

    ``on_listed`` hears the list as soon as it is in, so a screen can show the containers before the verdicts.
    ``connect`` also connects to every socket (host side and container side): only when the user asks.
    ``memory`` is the session's record of which shared directories held sockets (the TUI's; ``check`` has none).
    """
    info = engine.info()
    every = engine.list_containers()
    listed = select_containers(every, names)
    if on_listed is not None:
        on_listed(info, listed)
    cache = HostCache()
    deadline = time.monotonic() + LOOK_DEADLINE_SECONDS
    # Every container's name: a listener may run in one that was not asked about.
    look = Look(info, {c.id: c.name for c in every}, expected, cache, connect=connect, deadline=deadline, memory=memory)
    order = {c.id: i for i, c in enumerate(listed)}
    to_inspect = []
    for c in listed:
        if needs_inspect(c, info, cache, expected, memory):
            to_inspect.append(c)
        else:
            look.add(c)
    # Observe each container as its inspect comes back. One removed between list and inspect is simply gone.
    for inspected in engine.inspect_stream(to_inspect):
        if cancel is not None and cancel.is_set():
            raise Cancelled
        if inspected is not None:
            look.add(inspected)
    reports = sorted(look.finish(), key=lambda r: order.get(r.container.id, len(order)))
    return CheckReport(engine=info, containers=tuple(reports), checked_at=time.time(), notes=look.notes)
