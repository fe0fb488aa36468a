"""Live sources: what tells socktui that something changed, without polling the daemon.

Four sources, each a blocking ``run(..., stop)`` meant for its own thread (the TUI runs each in a thread worker and
posts a message from the callbacks; benchmarks call them directly). Callbacks run on the source's thread.

- :class:`DirectoryWatcher`: the parent directories of the socket sources, through ``watchfiles`` (inotify).
- :class:`EngineEventStream`: the engine's container events, reconnecting with backoff when the engine goes away.
- :class:`ListenerExitWatcher`: the listening processes, through ``pidfd_open``: a server that dies *without*
  unlinking its socket makes no filesystem event, but its pidfd becomes readable at once.
- :class:`Reprober`: a slow, cheap non-blocking connect to each socket, for staleness nothing else announces.

No Textual or Rich here: this is the core.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import docker.errors
import watchfiles

from .engine import Engine, EngineError
from .fsview import DIR_SCAN_LIMIT
from .model import ProbeResult
from .probe import probe_host_path

# --- plain data ---------------------------------------------------------------------------------------------------

ADDED = "added"
MODIFIED = "modified"
DELETED = "deleted"


@dataclass(frozen=True)
class PathChange:
    """A path of interest changed. ``change`` is "added", "modified" (exists and changed: look again) or "deleted".

    Changes carry no file type (``bind()`` and ``mkdir`` both read as added): re-``lstat`` the path.
    """

    path: str
    change: str


@dataclass(frozen=True)
class EngineEvent:
    """One container event: ``action`` is the bare verb (start, die, ...), ``time`` epoch seconds."""

    action: str
    container_id: str
    name: str
    time: float


@dataclass(frozen=True)
class EngineLost:
    """The event stream broke or the engine cannot be reached; reconnecting in the background."""

    reason: str


@dataclass(frozen=True)
class EngineBack:
    """A new event stream is open after an :class:`EngineLost`."""


EngineState = EngineLost | EngineBack

# --- directories ----------------------------------------------------------------------------------------------------

STEP_MS = 15  # watchfiles reports one to two steps after a change (15-30 ms); each step is a wake-up at rest
DEBOUNCE_MS = 50  # only caps how long a continuous burst is grouped; a lone change is reported after one quiet step
RESCAN_MS = 250  # idle wake-up: stat the watched directories, look inside those that changed (a safety net)
FULL_RESCAN_S = 10.0  # and re-lstat every path of interest this often: a chmod/chown moves no directory mtime
POLL_DELAY_MS = 250  # when inotify cannot be used


def _norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


def _watchable(path: str) -> bool:
    """A directory inotify can watch: it exists, and we may read it."""
    return os.path.isdir(path) and os.access(path, os.R_OK | os.X_OK)


def nearest_existing(path: str, exists: Callable[[str], bool] = _watchable) -> str:
    """``path`` itself when ``exists(path)``, else its nearest ancestor that does; ``/`` at worst."""
    current = path
    while current != "/" and not exists(current):
        current = os.path.dirname(current)
    return current


def watch_dirs_for(
    sockets: Iterable[str], socket_dirs: Iterable[str] = (), exists: Callable[[str], bool] = _watchable
) -> set[str]:
    """The directories to watch, non-recursively, to see every change to the paths of interest.

    A socket is seen from its parent directory; a socket directory from its parent (the directory itself coming
    and going) and from itself (its children). A directory that does not exist (yet) is stood in for by its nearest
    existing ancestor, because watching a missing path fails. Pure when ``exists`` is.
    """
    wanted = {os.path.dirname(_norm(p)) for p in sockets}
    for directory in socket_dirs:
        directory = _norm(directory)
        wanted.add(directory)
        wanted.add(os.path.dirname(directory))
    return {nearest_existing(d, exists) for d in wanted}


def relevant_changes(
    raw: Iterable[tuple[int, str]],
    sockets: Iterable[str],
    socket_dirs: Iterable[str] = (),
    exists: Callable[[str], bool] = os.path.lexists,
) -> list[PathChange]:
    """Keep the changes to a path of interest or to a direct child of a socket directory; one per path, sorted.

    watchfiles batches are unordered sets, so when one path has several kinds of change in a batch (an unlink and a
    new bind, say) the verdict is what is there now: "modified" when it exists, "deleted" when it does not.
    """
    paths = set(sockets) | set(socket_dirs)
    dirs = set(socket_dirs)
    kinds: dict[str, set[str]] = {}
    for code, path in raw:
        if path in paths or os.path.dirname(path) in dirs:
            kinds.setdefault(path, set()).add(watchfiles.Change(code).raw_str())
    out = []
    for path, seen in sorted(kinds.items()):
        change = next(iter(seen)) if len(seen) == 1 else (MODIFIED if exists(path) else DELETED)
        out.append(PathChange(path, change))
    return out


_State = tuple[int, ...] | None


def _path_state(path: str) -> _State:
    """What a path is right now, for the safety-net rescan: its identity, type, mode and owner; None when missing."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mode, st.st_uid, st.st_gid)


def _children_inodes(directory: str) -> dict[str, int | None]:
    """The direct children of a directory and their inode numbers: one ``getdents``, no ``stat`` per child."""
    inodes: dict[str, int | None] = {}
    try:
        with os.scandir(directory) as entries:
            for seen, entry in enumerate(entries):
                if seen >= DIR_SCAN_LIMIT:
                    break
                inodes[entry.path] = entry.inode()
    except OSError:
        pass
    return inodes


def _inode(path: str) -> int | None:
    try:
        return os.lstat(path).st_ino
    except OSError:
        return None


def _dir_mark(path: str) -> tuple[int, int, int] | None:
    """A directory's identity and mtime: an entry added, removed or renamed inside it moves the mtime."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns)


def _identities(plan: Mapping[str, tuple[int, int] | None]) -> dict[str, tuple[int, int] | None]:
    return {d: _dir_id(d) for d in plan}


def _dir_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _state_changes(before: Mapping[str, object], after: Mapping[str, object], keys: Iterable[str]) -> list[PathChange]:
    out = []
    for path in sorted(keys):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        change = ADDED if old is None else DELETED if new is None else MODIFIED
        out.append(PathChange(path, change))
    return out


class _Either:
    """The ``stop_event`` handed to watchfiles: it ends a watch when we stop, or when the interest set changed."""

    def __init__(self, *events: threading.Event) -> None:
        self._events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self._events)


class DirectoryWatcher:
    """Watch the directories around a set of host paths and report changes to those paths.

    Interest is a set of socket paths plus a set of socket directories (whose direct children matter too). Each is
    watched through its parent directory (and a socket directory also through itself), non-recursively. When a
    watched directory disappears, is replaced, or a wanted one appears, the watch set is rebuilt.

    Under the events lies a safety net: every ``rescan_ms`` of quiet the paths of interest are ``lstat``-ed and the
    socket directories listed, and whatever changed without an event is reported. Events can be missed: a socket
    bound in a directory in the instant between the directory's creation and its new watch (a systemd
    ``RuntimeDirectory`` does exactly this), or a watch that went deaf.

    ``set_paths`` may be called from any thread; the watch set follows within one ``step_ms``.
    """

    def __init__(
        self,
        sockets: Iterable[str] = (),
        socket_dirs: Iterable[str] = (),
        *,
        step_ms: int = STEP_MS,
        debounce_ms: int = DEBOUNCE_MS,
        rescan_ms: int = RESCAN_MS,
        poll_delay_ms: int = POLL_DELAY_MS,
        force_polling: bool = False,
    ) -> None:
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        self.rescan_ms = rescan_ms
        self.poll_delay_ms = poll_delay_ms
        self.polling = force_polling
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._sockets: frozenset[str] = frozenset()
        self._socket_dirs: frozenset[str] = frozenset()
        self._watched: frozenset[str] = frozenset()
        # What the rescan last saw (owned by the run() thread): paths of interest, and socket directories' children.
        self._state: dict[str, _State] | None = None
        self._children: dict[str, dict[str, int | None]] = {}
        self.set_paths(sockets, socket_dirs)

    def set_paths(self, sockets: Iterable[str], socket_dirs: Iterable[str] = ()) -> None:
        """Replace the interest set (thread-safe). Paths new to the set are not reported until they change."""
        with self._lock:
            self._sockets = frozenset(_norm(p) for p in sockets)
            self._socket_dirs = frozenset(_norm(p) for p in socket_dirs)
        self._dirty.set()

    @property
    def watched(self) -> frozenset[str]:
        """The directories watched right now."""
        return self._watched

    def _interest(self) -> tuple[frozenset[str], frozenset[str]]:
        with self._lock:
            return self._sockets, self._socket_dirs

    def run(
        self,
        on_changes: Callable[[list[PathChange]], None],
        stop: threading.Event,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        """Report changes until ``stop`` is set (it is honoured within one ``step_ms``).

        ``on_notice`` hears about degraded watching (inotify unavailable, so polling). Exceptions from the
        callbacks end the run.
        """
        notice = on_notice or (lambda _message: None)
        interrupt = _Either(stop, self._dirty)
        self._state, self._children = None, {}
        failures = 0
        while not stop.is_set():
            self._dirty.clear()
            sockets, dirs = self._interest()
            plan = self._plan(sockets, dirs)
            self._rescan(sockets, dirs, on_changes)
            self._watched = frozenset(plan)  # published after the baseline: a change from now on will be reported
            if not plan:
                while not interrupt.is_set():
                    stop.wait(self.step_ms / 1000)
                continue
            started = False
            marks = {d: _dir_mark(d) for d in plan}
            try:
                with contextlib.closing(self._changes(plan, interrupt)) as batches:
                    last_rescan = last_full = time.monotonic()
                    for raw in batches:
                        started = True
                        failures = 0
                        self._report(relevant_changes(raw, sockets, dirs), on_changes)
                        # Planning looks at every path of interest; an idle tick only needs the watched directories'
                        # identities (a replaced or vanished one means rebuild; a new one arrives as an event).
                        if (self._plan(sockets, dirs) if raw else _identities(plan)) != plan:
                            break
                        now = time.monotonic()
                        if now - last_full >= FULL_RESCAN_S:
                            last_full = last_rescan = now
                            self._rescan(sockets, dirs, on_changes)
                            marks = {d: _dir_mark(d) for d in plan}
                        elif not raw or now - last_rescan >= self.rescan_ms / 1000:
                            last_rescan = now
                            fresh = {d: _dir_mark(d) for d in plan}
                            moved = {d for d, mark in fresh.items() if marks.get(d) != mark}
                            marks = fresh
                            if moved:
                                self._rescan(sockets, dirs, on_changes, within=moved)
            except FileNotFoundError:
                stop.wait(self.step_ms / 1000)  # a directory vanished between planning and watching: plan again
            except (OSError, RuntimeError) as exc:  # WatchfilesRustInternalError is a RuntimeError
                if not started and not self.polling:
                    self.polling = True
                    notice(_polling_notice(exc, self.poll_delay_ms))
                else:
                    failures += 1
                    if failures == 1:
                        notice(f"file watching failed ({exc}); retrying")
                    stop.wait(min(self.rescan_ms * failures, 10_000) / 1000)

    def _changes(
        self, plan: Iterable[str], interrupt: _Either
    ) -> Generator[set[tuple[watchfiles.Change, str]], None, None]:
        return watchfiles.watch(
            *sorted(plan),
            watch_filter=None,
            debounce=self.debounce_ms,
            step=self.step_ms,
            stop_event=interrupt,
            rust_timeout=self.rescan_ms,
            yield_on_timeout=True,
            debug=False,  # watchfiles would print to the terminal the TUI draws on
            raise_interrupt=False,
            force_polling=True if self.polling else None,  # None: watchfiles' own defaults (env, WSL)
            poll_delay_ms=self.poll_delay_ms,
            recursive=False,
            ignore_permission_denied=False,  # True would also hide "watch limit reached"
        )

    def _report(self, batch: list[PathChange], on_changes: Callable[[list[PathChange]], None]) -> None:
        if not batch:
            return
        for change in batch:  # keep the rescan's picture current, so it reports only what events missed
            if self._state is not None and change.path in self._state:
                self._state[change.path] = _path_state(change.path)
            children = self._children.get(os.path.dirname(change.path))
            if children is not None:
                children[change.path] = _inode(change.path)
        on_changes(batch)

    def _rescan(
        self,
        sockets: frozenset[str],
        dirs: frozenset[str],
        on_changes: Callable[[list[PathChange]], None],
        within: set[str] | None = None,
    ) -> None:
        """Compare the paths of interest and the socket directories' children with what they were last seen as.

        The safety net under missed events: paths new to the interest set only get a baseline. With ``within``,
        only the paths in (or being) those watched directories are looked at again.
        """
        if within is not None and self._state is not None:
            sockets = frozenset(p for p in sockets if os.path.dirname(p) in within or p in within)
            dirs = frozenset(d for d in dirs if d in within or os.path.dirname(d) in within)
            fresh = dict(self._state)
            fresh.update({p: _path_state(p) for p in sockets | dirs})
            children = dict(self._children)
            children.update({d: _children_inodes(d) for d in dirs})
        else:
            fresh = {p: _path_state(p) for p in sockets | dirs}
            children = {d: _children_inodes(d) for d in dirs}
        before, self._state = self._state, fresh
        children_before, self._children = self._children, children
        missed = {}
        if before is not None:
            missed = {c.path: c for c in _state_changes(before, fresh, before.keys() & (sockets | dirs))}
        for directory in dirs:
            now_children = self._children.get(directory, {})
            old = children_before.get(directory)
            if old is not None:
                for change in _state_changes(old, now_children, old.keys() | now_children.keys()):
                    missed.setdefault(change.path, change)
        if missed:
            on_changes([missed[p] for p in sorted(missed)])

    def _plan(self, sockets: Iterable[str], dirs: Iterable[str]) -> dict[str, tuple[int, int] | None]:
        """The directories to watch and the identity of each, so a directory replaced under us is noticed."""
        return {d: _dir_id(d) for d in watch_dirs_for(sockets, dirs)}


def _polling_notice(exc: BaseException, poll_delay_ms: int) -> str:
    text = str(exc)
    if "limit" in text.lower() or getattr(exc, "errno", None) == errno.ENOSPC:
        return f"inotify watch limit reached; polling every {poll_delay_ms} ms"
    return f"inotify unavailable ({text}); polling every {poll_delay_ms} ms"


# --- engine events --------------------------------------------------------------------------------------------------

CONTAINER_ACTIONS = frozenset({"create", "start", "die", "stop", "destroy", "rename", "restart", "pause", "unpause"})
BACKOFF_MIN = 0.5
BACKOFF_MAX = 10.0


class EventSource(Protocol):
    """What :class:`EngineEventStream` needs of an engine; :class:`socktui.engine.Engine` is one."""

    def events(self, since: int | None = None) -> Iterator[dict[str, Any]]: ...

    def reset(self) -> None: ...


def parse_engine_event(raw: Mapping[str, Any], actions: frozenset[str] = CONTAINER_ACTIONS) -> EngineEvent | None:
    """An :class:`EngineEvent` from a decoded Docker event, or None when it is not a container action of interest.

    Actions such as ``exec_start: sh -c ...`` or ``health_status: healthy`` are reduced to the word before the colon.
    """
    if str(raw.get("Type") or "container") != "container":
        return None
    action = str(raw.get("Action") or raw.get("status") or "").partition(":")[0].strip()
    if action not in actions:
        return None
    actor = raw.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    return EngineEvent(
        action=action,
        container_id=str(actor.get("ID") or raw.get("id") or ""),
        name=str(attributes.get("name") or ""),
        time=_event_nanos(raw) / 1e9,
    )


def _event_nanos(raw: Mapping[str, Any]) -> int:
    try:
        nanos = int(raw.get("timeNano") or 0)
        return nanos or int(raw.get("time") or 0) * 1_000_000_000
    except (TypeError, ValueError):
        return 0


def backoff_delays(first: float = BACKOFF_MIN, most: float = BACKOFF_MAX) -> Iterator[float]:
    """0.5, 1, 2, 4, 8, 10, 10, ... seconds."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, most)


class _Stream:
    """An open event stream: an iterator plus a ``close()`` that is safe to call from another thread."""

    def __init__(self, items: Iterator[dict[str, Any]], closer: Callable[[], object] | None) -> None:
        self.items = items
        self._closer = closer

    def close(self) -> None:
        if self._closer is None:
            return
        # ValueError: a generator closed while another thread runs it; DockerException: docker-py cannot cancel
        # streams over ssh. Either way the stream ends at its next event instead.
        with contextlib.suppress(OSError, ValueError, docker.errors.DockerException):
            self._closer()


def _open_stream(engine: EventSource, since: int | None) -> _Stream:
    if isinstance(engine, Engine):
        # Engine.events() is a generator: it opens nothing until the first event arrives, and the docker-py
        # CancellableStream inside it cannot be reached to cancel it. Open the same stream eagerly here instead, so
        # "open" means the engine answered and stop() can shut the socket under a blocked read.
        try:
            raw = engine.client.events(decode=True, filters={"type": "container"}, since=since)
        except (docker.errors.DockerException, OSError) as exc:
            raise engine._fail(exc) from exc
        return _Stream(_wrap_errors(engine, raw), raw.close)
    items = engine.events(since=since)
    return _Stream(iter(items), getattr(items, "close", None))


def _wrap_errors(engine: Engine, stream: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    try:
        yield from stream
    except (docker.errors.DockerException, OSError) as exc:
        raise engine._fail(exc) from exc


class EngineEventStream:
    """Follow the engine's container events; when the engine goes away, say so and reconnect with backoff.

    Reconnecting asks for events ``since`` the last one seen, so nothing in between is lost (the daemon keeps a
    short buffer), and events already delivered are not delivered twice.

    Call :meth:`stop` from another thread to end :meth:`run`: it sets the run's ``stop`` event *and* shuts the
    stream's socket, which setting ``stop`` alone cannot do while the stream is blocked waiting for an event.
    """

    def __init__(
        self,
        *,
        since: float | None = None,
        actions: frozenset[str] = CONTAINER_ACTIONS,
        backoff_min: float = BACKOFF_MIN,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self.actions = actions
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self._since = since
        self._last_nanos = 0
        self._last_keys: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stream: _Stream | None = None
        self._stop_event: threading.Event | None = None
        self._halted = False

    def stop(self) -> None:
        """End :meth:`run` now, even from the middle of a blocked read. Safe from any thread, before or during."""
        with self._lock:
            self._halted = True
            event, stream = self._stop_event, self._stream
        if event is not None:
            event.set()
        if stream is not None:
            stream.close()

    def run(
        self,
        engine: EventSource,
        on_event: Callable[[EngineEvent], None],
        on_state: Callable[[EngineState], None],
        stop: threading.Event,
    ) -> None:
        """Deliver events until ``stop`` is set or :meth:`stop` is called.

        ``on_state`` gets one :class:`EngineLost` per outage and one :class:`EngineBack` when a stream is open again.
        Exceptions from the callbacks end the run.
        """
        with self._lock:
            if self._halted:
                return
            self._stop_event = stop
        lost = False
        delays = backoff_delays(self.backoff_min, self.backoff_max)
        try:
            while not stop.is_set():
                opened, reason = self._follow(engine, on_event, on_state, stop, lost)
                if reason is None or stop.is_set():
                    return
                if opened:  # this stream had opened: a new outage starts, with a fresh backoff
                    lost = False
                    delays = backoff_delays(self.backoff_min, self.backoff_max)
                if not lost:
                    lost = True
                    on_state(EngineLost(reason))
                if stop.wait(next(delays)):
                    return
                engine.reset()
        finally:
            with self._lock:
                self._stop_event = None

    def _follow(
        self,
        engine: EventSource,
        on_event: Callable[[EngineEvent], None],
        on_state: Callable[[EngineState], None],
        stop: threading.Event,
        lost: bool,
    ) -> tuple[bool, str | None]:
        """Open one stream and deliver its events: (whether it opened, why it ended or None when stopping)."""
        try:
            stream = _open_stream(engine, self._since_param())
        except EngineError as exc:
            return False, exc.problem
        with self._lock:
            if self._halted:
                stream.close()
                return True, None
            self._stream = stream
        try:
            if self._since is None:
                self._since = time.time()  # so a reconnect before any event still asks for what it missed
            if lost:
                on_state(EngineBack())
            for raw in stream.items:
                if stop.is_set():
                    break
                self._deliver(raw, on_event)
            reason = "the engine closed the event stream"
        except EngineError as exc:
            reason = exc.problem
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        return True, None if stop.is_set() else reason

    def _since_param(self) -> int | None:
        if self._last_nanos:
            return self._last_nanos // 1_000_000_000
        return None if self._since is None else int(self._since)

    def _deliver(self, raw: Mapping[str, Any], on_event: Callable[[EngineEvent], None]) -> None:
        nanos = _event_nanos(raw)
        actor = raw.get("Actor") or {}
        key = (str(raw.get("Action") or raw.get("status") or ""), str(actor.get("ID") or raw.get("id") or ""))
        # ``since`` has one-second resolution: a reconnect replays the last second, skip what was delivered.
        if nanos < self._last_nanos or (nanos == self._last_nanos and key in self._last_keys):
            return
        if nanos > self._last_nanos:
            self._last_nanos = nanos
            self._last_keys = set()
        self._last_keys.add(key)
        event = parse_engine_event(raw, self.actions)
        if event is not None:
            on_event(event)


# --- listener processes ---------------------------------------------------------------------------------------------


class ListenerExitWatcher:
    """Tell when a listening process exits, through ``pidfd_open`` (readable once the process has exited).

    ``set_pids`` may be called from any thread; it and ``stop`` take effect within ``tick`` seconds. A pid is
    reported once; a pid that is already gone when it is added is reported at once. Where ``pidfd_open`` is not
    available (Linux before 5.3), pids are checked with ``kill(pid, 0)`` every tick instead.
    """

    def __init__(self, pids: Iterable[int] = (), *, tick: float = 0.1) -> None:
        self.tick = tick
        self._lock = threading.Lock()
        self._pids: frozenset[int] = frozenset()
        self._dirty = False
        self.set_pids(pids)

    def set_pids(self, pids: Iterable[int]) -> None:
        """Replace the set of pids to watch (thread-safe)."""
        with self._lock:
            self._pids = frozenset(p for p in pids if p > 0)
            self._dirty = True

    def run(self, on_exit: Callable[[int], None], stop: threading.Event) -> None:
        poller = select.poll()
        fds: dict[int, int] = {}  # pid -> pidfd
        pids_by_fd: dict[int, int] = {}
        fallback: set[int] = set()  # pids watched with kill(pid, 0)
        reported: set[int] = set()

        def forget(pid: int) -> None:
            fd = fds.pop(pid, None)
            if fd is not None:
                poller.unregister(fd)
                del pids_by_fd[fd]
                os.close(fd)
            fallback.discard(pid)

        try:
            while not stop.is_set():
                exited: list[int] = []
                with self._lock:
                    wanted, dirty, self._dirty = self._pids, self._dirty, False
                if dirty:
                    for pid in (fds.keys() | fallback) - wanted:
                        forget(pid)
                    reported &= wanted
                    for pid in sorted(wanted - fds.keys() - fallback - reported):
                        try:
                            fd = os.pidfd_open(pid)
                        except ProcessLookupError:
                            exited.append(pid)
                            continue
                        except (OSError, AttributeError):  # ENOSYS, or no os.pidfd_open at all
                            fallback.add(pid)
                            continue
                        fds[pid] = fd
                        pids_by_fd[fd] = pid
                        poller.register(fd, select.POLLIN)
                for fd, _mask in poller.poll(self.tick * 1000):
                    exited.append(pids_by_fd[fd])
                exited.extend(pid for pid in fallback if not _alive(pid))
                for pid in exited:
                    forget(pid)
                    reported.add(pid)
                    on_exit(pid)
        finally:
            for pid in list(fds):
                forget(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- periodic re-probe ----------------------------------------------------------------------------------------------


class Reprober:
    """Every ``interval`` seconds, connect (non-blocking) to each host socket path; report when the outcome changes.

    "Changes" means ok-ness or errno differs from last time. The last outcome of a path can be seeded with
    ``set_paths(..., known=...)`` (what the caller already shows); a path with no known outcome gets its first
    probe as the baseline, silently.
    """

    def __init__(self, paths: Iterable[str] = (), *, interval: float = 2.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, tuple[bool, str | None] | None] = {}
        self.set_paths(paths)

    def set_paths(self, paths: Iterable[str], known: Mapping[str, ProbeResult] | None = None) -> None:
        """Replace the set of paths (thread-safe), keeping the last outcome of paths that stay."""
        known = known or {}
        with self._lock:
            last = {}
            for path in paths:
                seed = known.get(path)
                last[path] = (seed.ok, seed.errno) if seed is not None else self._last.get(path)
            self._last = last

    def check(self) -> list[tuple[str, ProbeResult]]:
        """Probe every path once; return the paths whose outcome changed, with the new result."""
        with self._lock:
            paths = list(self._last)
        changed = []
        for path in paths:
            result = probe_host_path(path)
            outcome = (result.ok, result.errno)
            with self._lock:
                if path not in self._last:
                    continue  # dropped by set_paths meanwhile
                before = self._last[path]
                self._last[path] = outcome
            if before is not None and before != outcome:
                changed.append((path, result))
        return changed

    def run(self, on_change: Callable[[str, ProbeResult], None], stop: threading.Event) -> None:
        """Probe at once, then every ``interval`` seconds, until ``stop`` is set."""
        while not stop.is_set():
            for path, result in self.check():
                on_change(path, result)
            stop.wait(self.interval)
