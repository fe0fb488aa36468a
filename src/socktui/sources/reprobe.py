"""A slow, cheap re-read of the kernel's socket tables, for a server that stops listening without a sound.

No filesystem event says that a server died and left its socket file behind, or closed its listening socket
without exiting. Exits come from pidfd (:mod:`.exits`); this source covers the rest by re-reading the socket tables
(one ``sock_diag`` dump per network namespace, no side effects: nobody is connected to) and comparing, per watched
socket file, whether a server is bound to it.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from ..listeners import ListenerIndex, SocketTables, liveness_of, server_of
from ..model import Liveness, SocketState
from ..socktable import Only, SocketTable, read_table

# What the watcher compares: the file's identity and whether a server answers there; then where that server was found
# (its network namespace) and when the file was made (its ctime), which decide where to look next time.
Outcome = tuple[tuple[int, int] | None, Liveness | None, int | None, float | None]
_NOBODY = (Liveness.UNBOUND, Liveness.UNSEEN)

QUIET_AFTER_SECONDS = 30.0  # with nothing changed for this long, the re-read slows to its quiet interval
FULL_EVERY = 60  # every 60th round (2 to 5 min) looks in every namespace: a safety net
YOUNG_SECONDS = 10.0  # a socket file made (ctime) this lately is looked for in the containers' namespaces each round


class Reprober:
    """Every ``interval`` seconds (``quiet_interval`` on a quiet host), read the socket tables; report each watched path
    whose server came or went.

    ``set_paths`` takes host socket paths, or a mapping of path -> pids of running containers that mount it (their
    network namespaces are read too, each once per round). A path's first outcome is its baseline, silently, unless
    ``known`` seeds it with what the caller already shows.

    A round costs one read of the host's table, plus the containers' namespaces only where a server could be found
    there: a file bound in the host's namespace is bound by that socket alone (one socket per socket file, ever), and
    a file nobody has bound can only get a server by being made anew, which the directory watcher reports. So a
    container's namespace is read for a path whose server was last seen in it, for a file made in the last
    ``YOUNG_SECONDS`` (a server may bind in one step and listen in the next), and every ``FULL_EVERY`` rounds for
    everything, as a safety net. A thousand watched sockets cost a few milliseconds a round, not a namespace each.
    """

    def __init__(
        self,
        paths: Iterable[str] = (),
        *,
        interval: float = 2.0,
        quiet_interval: float = 5.0,
        read: Callable[[int | None, Only | None], SocketTable] = read_table,
        full_every: int = FULL_EVERY,
    ) -> None:
        self.interval = interval
        self.quiet_interval = max(interval, quiet_interval)
        self._told = False  # set_paths was called since the last round: things are moving
        self.full_every = full_every
        self._read = read
        self._lock = threading.Lock()
        self._last: dict[str, Outcome | None] = {}
        self._only: Only | None = None
        self._pids: dict[str, tuple[int, ...]] = {}
        self.rounds = 0  # table reads done so far (tests wait on it)
        self.namespaces_read = 0  # other namespaces read, all rounds together (tests and bench look at it)
        self.set_paths(paths)

    def set_paths(self, paths: Iterable[str], known: Mapping[str, SocketState] | None = None) -> None:
        """Replace the set of paths (thread-safe), keeping the last outcome of paths that stay.

        ``known`` is what the caller shows for some paths: where it differs from the last outcome (the caller looked
        again after a filesystem event, say), it becomes the outcome the next round compares with."""
        known = known or {}
        pids: dict[str, tuple[int, ...]] = (
            {p: tuple(paths[p]) for p in paths} if isinstance(paths, Mapping) else {p: () for p in paths}
        )
        with self._lock:
            last: dict[str, Outcome | None] = {}
            for path in pids:
                seed, old = known.get(path), self._last.get(path)
                if seed is not None and (old is None or old[1] != seed.liveness):
                    last[path] = (None, seed.liveness, seed.netns, None)
                else:
                    last[path] = old
            self._last = last
            self._pids = pids
            self._told = True

    def check(self) -> list[tuple[str, SocketState | None]]:
        """Read the tables once; return the paths whose outcome changed, with what is bound there now."""
        with self._lock:
            wanted = dict(self._pids)
            last = dict(self._last)
        full = self.rounds % self.full_every == 0
        now = time.time()
        # A file nobody was bound to, made long enough ago, stays so until it is made anew (an event for the Monitor,
        # which then hands its new state over): not even looked at outside the full rounds.
        settled = set() if full else {path for path, o in last.items() if o is not None and _settled(o, now)}
        seen = {path: _identity(path) for path in wanted if path not in settled}
        # Only the files being watched, and connected datagram servers only if one was seen (or in a full round).
        only = Only(
            frozenset(s[0] for s in seen.values() if s is not None),
            connected_dgram=full or any(o is not None and o[1] is Liveness.BOUND for o in last.values()),
        )
        if only == self._only:
            only = self._only  # the same files as last round: their kernel spelling is worked out already
        self._only = only
        tables = SocketTables(lambda pid: self._read(pid, only))
        index = ListenerIndex({}, tables)
        changed = []
        outcomes: dict[str, Outcome] = {}
        for path, pids in wanted.items():
            if path in settled:
                continue
            before = last.get(path)
            state, outcome = self._look(index, path, seen[path], pids, before, full)
            outcomes[path] = outcome
            if before is not None and _differs(before, outcome):
                changed.append((path, state if state is not None else _state_of(outcome)))
        with self._lock:
            # A path dropped by set_paths meanwhile stays dropped, and is not reported.
            self._last.update((path, o) for path, o in outcomes.items() if path in self._last)
            changed = [(path, state) for path, state in changed if path in self._last]
        self.rounds += 1
        self.namespaces_read += max(0, tables.reads - 1)
        return changed

    def run(self, on_change: Callable[[str, SocketState | None], None], stop: threading.Event) -> None:
        """Read at once, then every ``interval`` seconds while anything changes (a change found, or new paths), and
        every ``quiet_interval`` once nothing has for ``QUIET_AFTER_SECONDS``, until ``stop`` is set."""
        busy_at = time.monotonic()
        while not stop.is_set():
            changed = self.check()
            for path, state in changed:
                on_change(path, state)
            now = time.monotonic()
            if changed or self._told:
                busy_at, self._told = now, False
            stop.wait(self.interval if now - busy_at < QUIET_AFTER_SECONDS else self.quiet_interval)

    def _look(
        self,
        index: ListenerIndex,
        path: str,
        seen: tuple[tuple[int, int], float] | None,
        pids: tuple[int, ...],
        before: Outcome | None,
        full: bool,
    ) -> tuple[SocketState | None, Outcome]:
        """This path's outcome now; the full state only when it changed (building one per path costs a round more
        than the table read does)."""
        if seen is None:
            return None, (None, None, None, None)
        identity, made_at = seen
        host = index.tables.host()
        if host is not None and host.has_identities and not full:
            server = server_of(host.bound_to(identity))
            if server is not None:
                outcome = (identity, liveness_of(server), host.netns, made_at)
                if before is None or _differs(before, outcome):
                    return index.state(identity, path), outcome
                return None, outcome
            same_file = before is not None and before[0] in (None, identity)
            found_elsewhere = before is not None and before[2] is not None and before[2] != host.netns
            young = time.time() - made_at < YOUNG_SECONDS  # bind() made it lately: a listen() may follow
            if before is not None and same_file and not found_elsewhere and not young:
                # Nobody in the host's namespace holds it, and no container's namespace did: still nobody.
                liveness = before[1] if before[1] in _NOBODY else Liveness.UNBOUND
                return None, (identity, liveness, None, made_at)
        state = index.state(identity, path, ((pid, path) for pid in pids))
        return state, (identity, state.liveness, state.netns, made_at)


def _settled(outcome: Outcome, now: float) -> bool:
    identity, liveness, _netns, made_at = outcome
    return identity is not None and liveness in _NOBODY and made_at is not None and now - made_at >= YOUNG_SECONDS


def _identity(path: str) -> tuple[tuple[int, int], float] | None:
    """A socket file's identity and when it was made (its ctime); None for anything else."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return ((st.st_dev, st.st_ino), st.st_ctime) if stat.S_ISSOCK(st.st_mode) else None


def _state_of(outcome: Outcome) -> SocketState | None:
    return SocketState(liveness=outcome[1]) if outcome[1] is not None else None


def _differs(before: Outcome, now: Outcome) -> bool:
    # A seeded outcome knows the liveness but not the identity: compare what both sides know.
    if before[0] is not None and now[0] is not None and before[0] != now[0]:
        return True
    return before[1] != now[1]
