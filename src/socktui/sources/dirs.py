"""The directory watcher: the parent directories of the socket sources, through inotify.

socktui reads inotify itself (:func:`inotify_watch`): the thread sleeps in ``poll`` until the kernel has an event,
so watching costs nothing while nothing changes, and a change is reported the moment it is read. ``watchfiles``
steps every ``step`` milliseconds whether or not anything happened (a third of a percent of a core here at the 15 ms
that a 50 ms reaction needs); it stays as the fallback where socktui's own reader cannot be used: no inotify
instance to be had, the watch limit reached (its polling mode), or ``SOCKTUI_WATCHFILES=1``.

A safety-net rescan underneath catches what events cannot report (a socket bound in a directory in the instant
between its creation and its new watch, an inotify queue that overflowed, a watch gone deaf).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import struct
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Set
from dataclasses import dataclass, field
from enum import StrEnum

import watchfiles

from .. import linux
from ..fsview import DIR_SCAN_LIMIT
from .wake import WakePipe, drain


class ChangeKind(StrEnum):
    """What happened to a path. The values are watchfiles' own words."""

    ADDED = "added"
    MODIFIED = "modified"  # exists and changed: look again
    DELETED = "deleted"


ADDED, MODIFIED, DELETED = ChangeKind.ADDED, ChangeKind.MODIFIED, ChangeKind.DELETED


class SeenBy(StrEnum):
    """How the watcher learned of a change: an inotify event, or the safety-net rescan that catches what events miss."""

    EVENT = "event"
    RESCAN = "rescan"


@dataclass(frozen=True)
class PathChange:
    """A path of interest changed.

    Changes carry no file type (``bind()`` and ``mkdir`` both read as added): re-``lstat`` the path. ``seen_by`` is
    how it was learned, for tests and diagnostics; it takes no part in comparing changes.
    """

    path: str
    change: ChangeKind
    seen_by: SeenBy = field(default=SeenBy.EVENT, compare=False)


STEP_MS = 15  # watchfiles reports one to two steps after a change (15-30 ms); each step is a wake-up at rest
DEBOUNCE_MS = 50  # only caps how long a continuous burst is grouped; a lone change is reported after one quiet step
RESCAN_MS = 250  # idle wake-up: stat the watched directories, look inside those that changed (a safety net)
FULL_RESCAN_S = 10.0  # and re-lstat every path of interest this often: a chmod/chown moves no directory mtime
POLL_DELAY_MS = 250  # when inotify cannot be used
INOTIFY_IDLE_MS = 5000  # socktui's own reader wakes this often when nothing happens, for its safety-net checks
WATCHFILES_ENV = "SOCKTUI_WATCHFILES"  # "1": watch through watchfiles (steps) instead of socktui's inotify reader
_OVERFLOW = (0, "")  # in a batch: the kernel dropped events, so look at everything again


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
    return {nearest_existing(d, exists) for d in wanted_dirs(sockets, socket_dirs)}


def wanted_dirs(sockets: Iterable[str], socket_dirs: Iterable[str] = ()) -> set[str]:
    """The directories whose changes matter, existing or not: each socket's parent, each socket directory and its
    parent. Pure."""
    wanted = {os.path.dirname(_norm(p)) for p in sockets}
    for directory in socket_dirs:
        directory = _norm(directory)
        wanted.add(directory)
        wanted.add(os.path.dirname(directory))
    return wanted


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
    paths = sockets if isinstance(sockets, frozenset | set) else frozenset(sockets)
    dirs = socket_dirs if isinstance(socket_dirs, frozenset | set) else frozenset(socket_dirs)
    kinds: dict[str, set[ChangeKind]] = {}
    for code, path in raw:
        if path in paths or path in dirs or os.path.dirname(path) in dirs:
            kinds.setdefault(path, set()).add(ChangeKind(watchfiles.Change(code).raw_str()))
    out = []
    for path, seen in sorted(kinds.items()):
        change = next(iter(seen)) if len(seen) == 1 else (MODIFIED if exists(path) else DELETED)
        out.append(PathChange(path, change))
    return out


def replan_triggers(
    sockets: Iterable[str], socket_dirs: Iterable[str] = (), exists: Callable[[str], bool] = _watchable
) -> frozenset[str]:
    """The paths whose own change can move the watch set: each wanted directory and, when it is missing, every
    directory between it and the ancestor standing in for it. A change anywhere else (a socket bound, a file
    written) leaves the plan as it is, so a busy directory costs nothing to re-plan."""
    wanted = {os.path.dirname(_norm(p)) for p in sockets}
    for directory in socket_dirs:
        directory = _norm(directory)
        wanted.add(directory)
        wanted.add(os.path.dirname(directory))
    triggers: set[str] = set()
    for directory in wanted:
        current = directory
        triggers.add(current)
        while current != "/" and not exists(current):
            current = os.path.dirname(current)
            triggers.add(current)
    return frozenset(triggers)


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
        out.append(PathChange(path, change, SeenBy.RESCAN))
    return out


_INOTIFY_MASK = (
    linux.IN_CREATE
    | linux.IN_DELETE
    | linux.IN_MOVED_FROM
    | linux.IN_MOVED_TO
    | linux.IN_ATTRIB
    | linux.IN_DELETE_SELF
    | linux.IN_MOVE_SELF
    | linux.IN_ONLYDIR
    | linux.IN_DONT_FOLLOW
    | linux.IN_EXCL_UNLINK
)
_SELF_GONE = linux.IN_DELETE_SELF | linux.IN_MOVE_SELF | linux.IN_IGNORED
_EVENT = struct.Struct("=iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name
_ADDED, _MODIFIED, _DELETED = (
    int(c) for c in (watchfiles.Change.added, watchfiles.Change.modified, watchfiles.Change.deleted)
)


def inotify_watch(
    *paths: str,
    stop_event: _Either,
    rust_timeout: int = INOTIFY_IDLE_MS,
    wake_fd: int | None = None,
) -> Generator[set[tuple[int, str]], None, None]:
    """Batches of ``(change, path)`` for the children of ``paths`` (directories, not recursive), in watchfiles'
    codes, like ``watchfiles.watch(..., yield_on_timeout=True)``: an empty set when ``rust_timeout`` ms passed quietly.

    The watches are in place before the first (empty) batch. A watched directory that goes away is reported as
    deleted under its own path, and a queue overflow as ``_OVERFLOW``. ``wake_fd`` (a pipe's read end) being written
    to ends the wait at once, so ``stop_event`` and a new interest set need not wait for the timeout.
    Raises ``OSError`` as ``inotify_add_watch`` does: ``FileNotFoundError`` for a path gone, ENOSPC at the limit.
    """
    fd = linux.inotify_init1(linux.IN_NONBLOCK | linux.IN_CLOEXEC)
    try:
        watched = {linux.inotify_add_watch(fd, path, _INOTIFY_MASK): path for path in paths}
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if wake_fd is not None:
            poller.register(wake_fd, select.POLLIN)
        yield set()
        while not stop_event.is_set():
            ready = poller.poll(rust_timeout)
            if wake_fd is not None and any(f == wake_fd for f, _ in ready):
                drain(wake_fd)
            if stop_event.is_set():
                return
            yield _read_events(fd, watched) if any(f == fd for f, _ in ready) else set()
    finally:
        os.close(fd)


def _read_events(fd: int, watched: Mapping[int, str]) -> set[tuple[int, str]]:
    batch: set[tuple[int, str]] = set()
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return batch
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
            offset += _EVENT.size + length
            if mask & linux.IN_Q_OVERFLOW:
                batch.add(_OVERFLOW)
                continue
            directory = watched.get(wd)
            if directory is None:
                continue
            if not name:
                if mask & _SELF_GONE:
                    batch.add((_DELETED, directory))
                continue
            path = os.path.join(directory, os.fsdecode(name))
            if mask & (linux.IN_CREATE | linux.IN_MOVED_TO):
                batch.add((_ADDED, path))
            elif mask & (linux.IN_DELETE | linux.IN_MOVED_FROM):
                batch.add((_DELETED, path))
            else:
                batch.add((_MODIFIED, path))


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

    ``set_paths`` may be called from any thread; the watch set follows at once (within one ``step_ms`` through
    watchfiles). ``wake`` makes a stopping watcher notice its stop event at once.
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
        # socktui's own inotify reader, unless asked for watchfiles or it could not be used (then watchfiles).
        self.own_inotify = os.environ.get(WATCHFILES_ENV) != "1"
        self._wake = WakePipe()
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._sockets: frozenset[str] = frozenset()
        self._socket_dirs: frozenset[str] = frozenset()
        self._watched: frozenset[str] = frozenset()
        self._published = threading.Event()
        # What the rescan last saw (owned by the run() thread): paths of interest, and socket directories' children.
        self._state: dict[str, _State] | None = None
        self._children: dict[str, dict[str, int | None]] = {}
        self.set_paths(sockets, socket_dirs)

    def set_paths(self, sockets: Iterable[str], socket_dirs: Iterable[str] = ()) -> None:
        """Replace the interest set (thread-safe). Paths new to the set are not reported until they change."""
        with self._lock:
            self._sockets = frozenset(_norm(p) for p in sockets)
            self._socket_dirs = frozenset(_norm(p) for p in socket_dirs)
            self._published.clear()
        self._dirty.set()
        self.wake()

    def wake(self) -> None:
        """End the current wait (thread-safe): a new interest set or the stop event is acted on at once."""
        self._wake.wake()

    @property
    def watched(self) -> frozenset[str]:
        """The directories watched right now."""
        return self._watched

    def wait_published(self, timeout: float) -> bool:
        """Wait until the watch set for the latest ``set_paths`` is in place: every change from then on is
        reported (by an event, or by the look the watcher takes once inotify is armed)."""
        deadline = time.monotonic() + timeout
        while not self._published.is_set() or self._dirty.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._published.wait(min(0.005, left))
        return True

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
        with self._wake as wake_r:
            self._run(on_changes, stop, on_notice, wake_r)

    def _run(
        self,
        on_changes: Callable[[list[PathChange]], None],
        stop: threading.Event,
        on_notice: Callable[[str], None] | None,
        wake_r: int,
    ) -> None:
        notice = on_notice or (lambda _message: None)
        interrupt = _Either(stop, self._dirty)
        self._state, self._children = None, {}
        failures = 0
        while not stop.is_set():
            self._dirty.clear()
            sockets, dirs = self._interest()
            wanted = wanted_dirs(sockets, dirs)  # computed once per interest set: a tick only stats these
            plan = self._plan(wanted)
            triggers = replan_triggers(sockets, dirs)
            # The marks come before the baseline: a change after it moves a mark, and a change before it is in it.
            marks = {d: _dir_mark(d) for d in plan}
            self._rescan(sockets, dirs, on_changes)
            self._watched = frozenset(plan)  # published after the baseline: a change from now on will be reported
            if not self._dirty.is_set():
                self._published.set()
            if not plan:
                while not interrupt.is_set():
                    stop.wait(self.step_ms / 1000)
                continue
            started = False
            try:
                with contextlib.closing(self._changes(plan, interrupt, wake_r)) as batches:
                    last_rescan = last_full = time.monotonic()
                    for raw in batches:
                        first, started = not started, True
                        failures = 0
                        self._report(relevant_changes(raw, sockets, dirs), on_changes)
                        if _OVERFLOW in raw:  # the kernel dropped events: what they said, the rescan says
                            self._rescan(sockets, dirs, on_changes)
                        if first:
                            # The watches were armed before this first answer: look once more, for what changed
                            # between the baseline and the arming (no event reports that, and a coarse directory
                            # mtime may not have moved); a wanted directory made meanwhile moves the plan.
                            self._rescan(sockets, dirs, on_changes)
                            if self._plan(wanted) != plan:
                                break
                        # A change to a wanted directory (or one standing in for it) may move the plan; so may one
                        # that no event reported, which an idle tick notices (a replaced, vanished or new directory).
                        replan = not raw or any(path in triggers for _code, path in raw)
                        if replan and self._plan(wanted) != plan:
                            break
                        now = time.monotonic()
                        if now - last_full >= FULL_RESCAN_S:
                            last_full = last_rescan = now
                            self._rescan(sockets, dirs, on_changes)
                            marks = {d: _dir_mark(d) for d in plan}
                        elif not raw or (self._stepping and now - last_rescan >= self.rescan_ms / 1000):
                            # Between events, and through watchfiles also while they flow; socktui's own reader
                            # misses nothing while events flow (an overflow says so), so a busy directory is not
                            # listed again and again.
                            last_rescan = now
                            fresh = {d: _dir_mark(d) for d in plan}
                            moved = {d for d, mark in fresh.items() if marks.get(d) != mark}
                            marks = fresh
                            if moved:
                                self._rescan(sockets, dirs, on_changes, within=moved)
            except FileNotFoundError:
                stop.wait(self.step_ms / 1000)  # a directory vanished between planning and watching: plan again
            except (OSError, RuntimeError) as exc:  # WatchfilesRustInternalError is a RuntimeError
                if self.own_inotify and not self.polling and not _watch_limit(exc):
                    # No inotify instance to be had here (ENOSYS, EMFILE, ...): watchfiles may still manage.
                    self.own_inotify = False
                    notice(f"inotify unavailable to socktui ({exc}); watching through watchfiles")
                elif not started and not self.polling:
                    self.polling = True
                    notice(_polling_notice(exc, self.poll_delay_ms))
                else:
                    failures += 1
                    if failures == 1:
                        notice(f"file watching failed ({exc}); retrying")
                    stop.wait(min(self.rescan_ms * failures, 10_000) / 1000)

    @property
    def _stepping(self) -> bool:
        """Watching through watchfiles (its steps, or its polling), not socktui's own inotify reader."""
        return self.polling or not self.own_inotify

    def _changes(
        self, plan: Iterable[str], interrupt: _Either, wake_r: int
    ) -> Generator[Set[tuple[int, str]], None, None]:
        if not self._stepping:
            return inotify_watch(
                *sorted(plan), stop_event=interrupt, rust_timeout=max(self.rescan_ms, INOTIFY_IDLE_MS), wake_fd=wake_r
            )
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

    def _plan(self, wanted: Iterable[str]) -> dict[str, tuple[int, int] | None]:
        """The directories to watch and the identity of each, so a directory replaced under us is noticed."""
        return {d: _dir_id(d) for d in {nearest_existing(w) for w in wanted}}


def _watch_limit(exc: BaseException) -> bool:
    return "limit" in str(exc).lower() or getattr(exc, "errno", None) == errno.ENOSPC


def _polling_notice(exc: BaseException, poll_delay_ms: int) -> str:
    text = str(exc)
    if _watch_limit(exc):
        return f"inotify watch limit reached; polling every {poll_delay_ms} ms"
    return f"inotify unavailable ({text}); polling every {poll_delay_ms} ms"
