"""The live loop: one owner for everything that changes while the TUI runs.

A :class:`Monitor` owns the live sources (the directory watcher, the engine's events, listener exits, the socket-table
re-read). Their callbacks run on the sources' own threads and only *mark* what changed (paths, containers, pids) in
one thread-safe, coalescing set. One Monitor thread drains that set, re-checks each batch once (only the mounts the
changed paths or pids belong to; whole containers only after an engine event), recomputes what the sources must
watch and hands it straight back to them, and emits one :class:`Update` for the screen. So a busy directory costs its
own mount, however many containers and events there are, and nothing else waits behind it.

At start-up the Monitor lists, arms the watchers on the listed sources' parents, *then* looks, then reconciles what
was reported meanwhile: a server that binds while the first look runs is not lost.

No Textual or Rich here: the App runs :meth:`Monitor.run` in one thread worker and posts each Update it is given.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING

from .diagnose import Cancelled
from .engine import EngineError
from .enginesock import explain_unreachable
from .fsview import host_lstat
from .model import CheckReport, ContainerReport, ContainerSpec, EngineInfo, Kind, Role, Verdict
from .observe import HostCache, mount_role
from .session import Change, Session
from .socktable import listener_at

if TYPE_CHECKING:
    from .sources.dirs import DirectoryWatcher, PathChange
    from .sources.events import EngineEvent, EngineEventStream, EngineState
    from .sources.exits import ListenerExitWatcher
    from .sources.reprobe import Reprober

RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0
IDLE_WAKE_SECONDS = 0.5  # how often an idle Monitor looks at its cancel event
# One mount is looked at again at most this often: a container binding and unlinking sockets as fast as it can costs
# a bounded share of a core (its later changes wait, and coalesce), and a lone change is still handled at once.
MOUNT_RECHECK_SECONDS = 0.25
BUSY_SECONDS = 1.0  # how often a mount that keeps changing is looked at
BUSY_STREAK = 4  # looks in a row, each less than CALM_SECONDS after the one before, make a mount busy
CALM_SECONDS = 2.0
LIVE_HANDOVER_SECONDS = 1.0  # the socket-table re-read is given a changed set of files at most this often
LISTED_FRAME_WAIT_SECONDS = 0.3  # at most this long for a screen to draw the first list before the look starts


class LookKind(StrEnum):
    """What kind of whole look an Update carries."""

    LISTED = "listed"  # the engine's list is in; verdicts follow
    FULL = "full"  # every container looked at again


@dataclass(frozen=True)
class Counts:
    containers: int = 0
    mounts: int = 0
    problems: int = 0
    worst: Verdict | None = None


@dataclass(frozen=True)
class Update:
    """What changed, for the screen: immutable, so the UI thread reads it while the Monitor goes on.

    ``report`` is every container as it is now; ``changed`` and ``removed`` say which rows to redraw; ``log`` the lines
    for the event log, in order.
    """

    report: CheckReport
    counts: Counts
    changed: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    log: tuple[Change, ...] = ()
    look: LookKind | None = None
    engine_problem: str | None = None  # the engine cannot be reached: what happened and what to do
    engine_back: bool = False

    def then(self, newer: Update) -> Update:
        """This update followed by ``newer``, as one: what a screen that missed this one must still do."""
        look = newer.look or self.look
        if LookKind.FULL in (self.look, newer.look):
            look = LookKind.FULL
        return replace(
            newer,
            changed=(self.changed - newer.removed) | newer.changed,
            removed=(self.removed - newer.changed) | newer.removed,
            log=self.log + newer.log,
            look=look,
            engine_problem=newer.engine_problem or (None if newer.engine_back else self.engine_problem),
            engine_back=newer.engine_back or (self.engine_back and not newer.engine_problem),
        )


@dataclass
class Batch:
    """Everything marked since the Monitor last looked: each path, container and pid once."""

    paths: dict[str, str] = field(default_factory=dict)  # path -> change kind ("added", "deleted", "probe", ...)
    containers: dict[str, EngineEvent] = field(default_factory=dict)  # id -> its latest event
    rechecks: set[str] = field(default_factory=set)  # container ids asked for (after a fix)
    exits: set[int] = field(default_factory=set)
    notes: list[Change] = field(default_factory=list)
    engine: EngineState | None = None
    full: bool = False

    def __bool__(self) -> bool:
        return bool(self.paths or self.containers or self.rechecks or self.exits or self.notes or self.full) or (
            self.engine is not None
        )


class Marks:
    """The coalescing set the sources mark and the Monitor drains. Every method is safe from any thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._batch = Batch()
        self._later: dict[str, tuple[str, float]] = {}  # path -> (change kind, monotonic time it is due)

    def paths(self, changes: Iterable[tuple[str, str]]) -> None:
        with self._cond:
            for path, kind in changes:
                self._batch.paths[path] = kind
            self._cond.notify()

    def container(self, event: EngineEvent) -> None:
        with self._cond:
            self._batch.containers[event.container_id] = event
            self._cond.notify()

    def recheck(self, container_id: str) -> None:
        with self._cond:
            self._batch.rechecks.add(container_id)
            self._cond.notify()

    def exited(self, pid: int) -> None:
        with self._cond:
            self._batch.exits.add(pid)
            self._cond.notify()

    def note(self, text: str, loud: bool = False) -> None:
        with self._cond:
            self._batch.notes.append(Change("", text, loud=loud))
            self._cond.notify()

    def engine(self, state: EngineState) -> None:
        with self._cond:
            self._batch.engine = state
            self._cond.notify()

    def full(self) -> None:
        with self._cond:
            self._batch.full = True
            self._cond.notify()

    def defer(self, paths: Mapping[str, str], until: float) -> None:
        """Mark these paths again at ``until`` (``time.monotonic()``), unless they are marked sooner."""
        with self._cond:
            for path, kind in paths.items():
                self._later[path] = (kind, until)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def take(self, timeout: float) -> Batch:
        """What was marked, waiting up to ``timeout`` seconds for something; an empty Batch when nothing came."""
        with self._cond:
            self._due()
            if not self._batch:
                if self._later:
                    timeout = max(0.0, min(timeout, min(due for _, due in self._later.values()) - time.monotonic()))
                self._cond.wait(timeout)
                self._due()
            batch, self._batch = self._batch, Batch()
        return batch

    def _due(self) -> None:
        now = time.monotonic()
        for path, (kind, due) in list(self._later.items()):
            if due <= now or path in self._batch.paths:
                del self._later[path]
                self._batch.paths.setdefault(path, kind)


@dataclass
class Sources:
    """The live sources a Monitor owns. Tests and bench may hand in their own (shorter intervals, say)."""

    dirs: DirectoryWatcher
    events: EngineEventStream
    exits: ListenerExitWatcher
    tables: Reprober

    @classmethod
    def default(cls) -> Sources:
        # Imported here: watchfiles costs start-up time a one-shot `socktui check` never needs.
        from .sources.dirs import DirectoryWatcher
        from .sources.events import EngineEventStream
        from .sources.exits import ListenerExitWatcher
        from .sources.reprobe import Reprober

        return cls(DirectoryWatcher(), EngineEventStream(), ListenerExitWatcher(), Reprober())


Emit = Callable[[Update], None]


class Monitor:
    """Runs the live loop for one :class:`Session`: the only thread that changes it.

    ``run`` blocks until ``stop`` or its cancel event; ``recheck_all`` (the ``r`` key) and ``recheck_container``
    (after a fix) may be called from any thread. With ``live=False`` there are no sources: the first look, then only
    what is asked for.
    """

    def __init__(
        self,
        session: Session,
        *,
        live: bool = True,
        sources: Sources | Callable[[], Sources] = Sources.default,
        wait_for_screen: bool = False,
    ) -> None:
        self.session = session
        self.live = live
        self._make_sources = sources if callable(sources) else (lambda: sources)
        self.sources: Sources | None = None
        self.marks = Marks()
        self._stop = threading.Event()
        self._sources_stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._versions: dict[str, int] = {}
        self.armed = False  # the engine's sources run (tests and bench wait on it)
        self._cancel: threading.Event = threading.Event()
        self._emit: Emit = lambda _update: None
        self._engine_down: str | None = None
        self._retry_at: float | None = None
        self._retry_delay = RETRY_FIRST_SECONDS
        # (container, destination) -> when it was last looked at, and how many looks in a row came close together
        self._rechecked: dict[tuple[str, str], tuple[float, int]] = {}
        self._live_handed_at = -LIVE_HANDOVER_SECONDS  # when the socket-table re-read was last given its files
        self.looks = 0  # whole looks done (tests and bench wait on these)
        # Set by a screen once it has drawn the first list; a Monitor nobody watches does not wait for it.
        self.listed_shown = threading.Event()
        if not wait_for_screen:
            self.listed_shown.set()
        self.batches = 0  # batches of marks handled

    # ------------------------------------------------------------------ asked from any thread
    def recheck_all(self) -> None:
        """Look at everything again, as at start-up (the ``r`` key)."""
        self.marks.full()

    def recheck_container(self, container_id: str) -> None:
        """Inspect one container and look at it again (after a fix acted on it)."""
        self.marks.recheck(container_id)

    def stop(self) -> None:
        """End :meth:`run` and every source, at once (an engine stream blocked in a read included)."""
        self._stop.set()
        self._stop_sources()
        self.marks.wake()

    def _stop_sources(self) -> None:
        """Tell every source to stop, and wake those that sleep until something happens."""
        self._sources_stop.set()
        if self.sources is not None:
            self.sources.events.stop()
            self.sources.dirs.wake()
            self.sources.exits.wake()

    # ------------------------------------------------------------------ the loop
    def run(self, cancel: threading.Event, emit: Emit) -> None:
        """Look, then follow every change until ``cancel`` is set or :meth:`stop` is called."""
        self._cancel, self._emit = cancel, emit
        try:
            if self.live and self.session.options.watch_dirs:
                self._arm_dirs()  # watched directories need no engine: they are followed even while it is away
            self._guarded(self._look)
            while not self._stopping():
                timeout = IDLE_WAKE_SECONDS
                if self._retry_at is not None:
                    timeout = max(0.0, min(timeout, self._retry_at - time.monotonic()))
                batch = self.marks.take(timeout)
                if self._stopping():
                    break
                self._guarded(self._hand_interest)  # what was held back (LIVE_HANDOVER_SECONDS) goes out now
                retry_due = self._retry_at is not None and time.monotonic() >= self._retry_at
                if batch or retry_due:
                    self.batches += 1 if batch else 0
                    self._guarded(partial(self._handle, batch, retry_due))
        finally:
            self._stop_sources()
            for thread in self._threads:
                thread.join(2.0)

    def _guarded(self, step: Callable[[], None]) -> None:
        """A bug in one look must not end the live loop: say what happened, and keep following changes."""
        try:
            step()
        except Exception as exc:
            text = f"a look failed: {type(exc).__name__}: {exc}. socktui keeps running; press r to re-check."
            self._send(log=(Change("", text, loud=True),))

    def _stopping(self) -> bool:
        return self._stop.is_set() or self._cancel.is_set()

    def _handle(self, batch: Batch, retry_due: bool) -> None:
        from .sources.events import EngineBack, EngineLost

        if isinstance(batch.engine, EngineLost):
            endpoint = self.session.engine.endpoint
            self._engine_failed(
                f"lost the engine at {endpoint.url} ({endpoint.source}): {batch.engine.reason}\n"
                "Start the daemon again, or point socktui at the right engine with --host or DOCKER_HOST.",
                retry=False,  # the event stream reconnects by itself, and a look follows when it is back
            )
        if batch.full or retry_due or isinstance(batch.engine, EngineBack):
            # A whole look covers every mark; events missed while the engine was away included.
            self._look(batch.notes)
            return
        self._recheck(batch)

    # ------------------------------------------------------------------ whole looks
    def _look(self, notes: Iterable[Change] = ()) -> None:
        self._retry_at = None
        try:
            self.session.full_check(cancel=self._cancel, on_listed=self._listed)
        except Cancelled:
            return
        except EngineError as exc:
            # The engine's socket judged first (a directory, a stale file, ...), with the fix that applies.
            self._engine_failed(str(explain_unreachable(exc, self.session.engine.endpoint)), retry=True)
            return
        self.looks += 1
        back = self._engine_down is not None
        self._engine_down = None
        self._retry_delay = RETRY_FIRST_SECONDS
        self._send(log=tuple(notes), look=LookKind.FULL, engine_back=back)
        self._hand_interest()

    def _listed(self, info: EngineInfo, specs: list[ContainerSpec]) -> None:
        """The list is in: show it, and arm the watchers on its sources before anything is looked at."""
        if self.looks == 0:
            listed = CheckReport(engine=info, containers=tuple(ContainerReport(container=c) for c in specs))
            self._emit(Update(report=listed, counts=Counts(containers=len(specs)), look=LookKind.LISTED))
            # The look would compete with the screen for the interpreter: let the list be drawn first (briefly).
            self.listed_shown.wait(LISTED_FRAME_WAIT_SECONDS)
        if self.live and not self.armed:
            self._arm(info, specs)

    def _engine_failed(self, problem: str, *, retry: bool) -> None:
        first = self._engine_down is None
        self._engine_down = problem
        if retry:
            self._retry_at = time.monotonic() + self._retry_delay
            self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_SECONDS)
        log = (Change("", f"engine unreachable: {problem.splitlines()[0]}", loud=True),) if first else ()
        self._send(log=log, engine_problem=problem)

    # ------------------------------------------------------------------ piecemeal rechecks
    def _recheck(self, batch: Batch) -> None:
        session = self.session
        log: list[Change] = list(batch.notes)
        removed: set[str] = set()
        whole: dict[str, ContainerSpec] = {}
        for cid, event in batch.containers.items():
            line = event_line(event, session.specs.get(cid))
            if line:
                log.append(Change(event.name, line))
        for cid in [*batch.containers, *sorted(batch.rechecks - batch.containers.keys())]:
            try:
                spec = session.engine.inspect_one(cid)
            except EngineError as exc:
                log.append(Change("", f"could not inspect {cid[:12]}: {exc.problem}", loud=True))
                continue
            if spec is None:
                log += session.remove(cid)
                removed.add(cid)
            else:
                whole[cid] = spec
        mounts: dict[str, set[str]] = {}
        for pid in sorted(batch.exits):
            log.append(Change("", f"listener pid {pid} exited"))
            _merge(mounts, session.listened_by(pid))
        watched = session.options.watch_dirs
        for path, kind in sorted(batch.paths.items()):
            if os.path.dirname(path) in watched or path in watched:
                log.append(Change("", describe_path_change(path, kind)))
        _merge(mounts, self._not_too_soon(batch.paths))
        reports, changes = session.recheck(whole.values(), mounts)
        self._looked_at(mounts)
        log += changes
        changed = frozenset(r.container.id for r in reports)
        if changed or removed or log:
            self._send(changed=changed, removed=frozenset(removed), log=tuple(log))
        self._hand_interest()

    def _looked_at(self, mounts: Mapping[str, Iterable[str]]) -> None:
        """Note when these mounts were looked at, and whether they keep changing (see :meth:`_not_too_soon`)."""
        now = time.monotonic()
        for cid, destinations in mounts.items():
            for destination in destinations:
                last, streak = self._rechecked.get((cid, destination), (-CALM_SECONDS, 0))
                self._rechecked[(cid, destination)] = (now, streak + 1 if now - last < CALM_SECONDS else 1)

    def _not_too_soon(self, paths: Mapping[str, str]) -> dict[str, set[str]]:
        """The mounts these paths touch; a path whose mount was looked at less than MOUNT_RECHECK_SECONDS ago waits
        (deferred, and coalesced with what comes meanwhile) so that one busy mount cannot take the Monitor's time.
        A mount that keeps changing (BUSY_STREAK looks in a row, none CALM_SECONDS after the last) is looked at once
        every BUSY_SECONDS until it calms down: a directory churning sockets costs a look and a frame a second."""
        now = time.monotonic()
        mounts: dict[str, set[str]] = {}
        later: dict[str, str] = {}
        due = now
        for path, kind in paths.items():
            touched = self.session.affected_by([path])
            seen = [self._rechecked.get((cid, d), (-CALM_SECONDS, 0)) for cid, ds in touched.items() for d in ds]
            last = max((at for at, _ in seen), default=-CALM_SECONDS)
            busy = any(streak >= BUSY_STREAK for _, streak in seen)
            interval = BUSY_SECONDS if busy else MOUNT_RECHECK_SECONDS
            if now - last < interval:
                later[path] = kind
                due = max(due, last + interval)
            else:
                _merge(mounts, touched)
        if later:
            self.marks.defer(later, due)
        return mounts

    def _send(self, **what: object) -> None:
        containers, mounts, problems, worst = self.session.counts()
        counts = Counts(containers, mounts, problems, worst)
        self._emit(Update(report=self.session.snapshot(), counts=counts, **what))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ the sources
    def _sources(self) -> Sources:
        if self.sources is None:
            self.sources = self._make_sources()
        return self.sources

    def _start(self, name: str, target: Callable[[], None]) -> None:
        def body() -> None:
            try:
                target()
            except Exception as exc:  # a source that dies says so; the others go on
                if not self._sources_stop.is_set():
                    self.marks.note(f"{name} stopped: {type(exc).__name__}: {exc}", loud=True)

        thread = threading.Thread(target=body, name=f"socktui-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _arm_dirs(self, sockets: Iterable[str] = (), dirs: Iterable[str] = ()) -> None:
        sources = self._sources()
        sources.dirs.set_paths(sockets, {*dirs, *self.session.options.watch_dirs})
        if not any(t.name == "socktui-file-watcher" for t in self._threads):

            def on_changes(changes: list[PathChange]) -> None:
                self.marks.paths((c.path, c.change) for c in changes)

            self._start(
                "file-watcher",
                lambda: sources.dirs.run(on_changes, self._sources_stop, on_notice=lambda t: self.marks.note(t, True)),
            )
        # The baseline comes before the look: a change after it is reported, by an event or by the watcher's
        # first look once inotify is armed.
        sources.dirs.wait_published(timeout=10.0)

    def _arm(self, info: EngineInfo, specs: list[ContainerSpec]) -> None:
        """Watch the listed containers' socket sources, follow the engine from the moment it was listed."""
        self.armed = True
        # From when the list was asked for (it may have been asked early); the daemon's `since` has one-second
        # resolution: replay rather than miss.
        since = (self.session.engine.listed_at or time.time()) - 1.0
        sockets, dirs = listed_interest(info, specs, self.session.options.expected)
        self._arm_dirs(sockets, dirs)
        sources = self._sources()
        sources.events.since = since
        engine, marks, stop = self.session.engine, self.marks, self._sources_stop
        self._start("engine-events", lambda: sources.events.run(engine, marks.container, marks.engine, stop))
        self._start("listener-exits", lambda: sources.exits.run(self.marks.exited, self._sources_stop))
        self._start(
            "socket-tables",
            lambda: sources.tables.run(lambda path, _state: self.marks.paths([(path, "probe")]), self._sources_stop),
        )
        self._versions = {}  # new sources: every set is handed over after the look

    def _hand_interest(self) -> None:
        """Tell the sources what matters now, only the sets that changed (a new watch set means a rebuild)."""
        if self.sources is None or not self.live:
            return
        session = self.session
        versions = session.versions()
        if versions == self._versions:
            return
        changed = {k for k, v in versions.items() if self._versions.get(k) != v}
        now = time.monotonic()
        if "live" in changed and now - self._live_handed_at < LIVE_HANDOVER_SECONDS:
            # The re-read reads every 2 s anyway, and the set is as big as the host's sockets: a directory churning
            # sockets hands it over at most this often, not at every change (the rest waits, see run()).
            changed.discard("live")
            versions["live"] = self._versions.get("live", -1)
        self._versions = versions
        if changed & {"paths", "dirs"}:
            self.sources.dirs.set_paths(session.watched_paths(), session.socket_dirs())
        if "pids" in changed:
            self.sources.exits.set_pids(session.listener_pids())
        if "live" in changed:
            self._live_handed_at = now
            self.sources.tables.set_paths(session.live_socket_paths(), known=session.live_socket_states())


def _merge(into: dict[str, set[str]], more: Mapping[str, set[str]]) -> None:
    for cid, destinations in more.items():
        into.setdefault(cid, set()).update(destinations)


def listed_interest(
    info: EngineInfo, specs: Iterable[ContainerSpec], expected: Iterable[str] = ()
) -> tuple[set[str], set[str]]:
    """What to watch before the first look: the socket-relevant sources of the listed containers (roles from one
    ``lstat`` and one directory listing per source), and those that are directories of sockets."""
    sockets: set[str] = set()
    dirs: set[str] = set()
    if not info.local:
        return sockets, dirs
    cache = HostCache()
    expected = tuple(expected)
    for spec in specs:
        for mount in spec.mounts:
            if not mount.source:
                continue
            role = mount_role(mount, info, cache, expected)
            if role is not Role.OTHER:
                sockets.add(mount.source)
            if role is Role.SOCKET_DIR:
                dirs.add(mount.source)
    return sockets, dirs


_VERBS = {"die": "stopped", "destroy": "removed", "create": "created", "rename": "renamed", "start": "started"}


def event_line(event: EngineEvent, known: ContainerSpec | None) -> str:
    """The log line for an engine event worth telling: "web started", "db stopped"."""
    if event.action not in ("start", "die", "destroy", "rename", "create", "restart"):
        return ""
    verb = _VERBS.get(event.action, event.action + "ed")
    name = event.name or (known.name if known else "") or event.container_id[:12]
    return f"{name} {verb}"


def describe_path_change(path: str, change: str) -> str:
    """A log line for a change in a directory the user asked to watch, by what is there now."""
    if change == "deleted":
        return f"{path} removed"
    st = host_lstat(path)
    if st.kind is Kind.MISSING:
        return f"{path} removed"
    if st.kind is Kind.SOCKET:
        # From the socket table: a change in a watched directory must not make socktui connect to a server.
        listening = listener_at(st.identity) is not None
        return f"{path} socket {'listening' if listening else 'with nobody listening'}"
    return f"{path} {change}: {st.kind.value}"
