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
from collections.abc import Callable, Iterable, Mapping

from ..listeners import ListenerIndex, SocketTables
from ..model import Liveness, SocketState
from ..socktable import SocketTable, read_table

# What the watcher compares: the file's identity and whether a server answers there.
Outcome = tuple[tuple[int, int] | None, Liveness | None]


class Reprober:
    """Every ``interval`` seconds, read the socket tables; report each watched path whose server came or went.

    ``set_paths`` takes host socket paths, or a mapping of path -> pids of running containers that mount it (their
    network namespaces are read too, each once per round). A path's first outcome is its baseline, silently, unless
    ``known`` seeds it with what the caller already shows.
    """

    def __init__(
        self,
        paths: Iterable[str] = (),
        *,
        interval: float = 2.0,
        read: Callable[[int | None], SocketTable] = read_table,
    ) -> None:
        self.interval = interval
        self._read = read
        self._lock = threading.Lock()
        self._last: dict[str, Outcome | None] = {}
        self._pids: dict[str, tuple[int, ...]] = {}
        self.rounds = 0  # table reads done so far (tests wait on it)
        self.set_paths(paths)

    def set_paths(self, paths: Iterable[str], known: Mapping[str, SocketState] | None = None) -> None:
        """Replace the set of paths (thread-safe), keeping the last outcome of paths that stay."""
        known = known or {}
        pids: dict[str, tuple[int, ...]] = (
            {p: tuple(paths[p]) for p in paths} if isinstance(paths, Mapping) else {p: () for p in paths}
        )
        with self._lock:
            last: dict[str, Outcome | None] = {}
            for path in pids:
                seed = known.get(path)
                last[path] = (None, seed.liveness) if seed is not None else self._last.get(path)
            self._last = last
            self._pids = pids

    def check(self) -> list[tuple[str, SocketState | None]]:
        """Read the tables once; return the paths whose outcome changed, with what is bound there now."""
        with self._lock:
            wanted = dict(self._pids)
        index = ListenerIndex({}, SocketTables(self._read))
        changed = []
        for path, pids in wanted.items():
            state, outcome = _look(index, path, pids)
            with self._lock:
                if path not in self._last:
                    continue  # dropped by set_paths meanwhile
                before = self._last[path]
                self._last[path] = outcome
            if before is not None and _differs(before, outcome):
                changed.append((path, state))
        self.rounds += 1
        return changed

    def run(self, on_change: Callable[[str, SocketState | None], None], stop: threading.Event) -> None:
        """Read at once, then every ``interval`` seconds, until ``stop`` is set."""
        while not stop.is_set():
            for path, state in self.check():
                on_change(path, state)
            stop.wait(self.interval)


def _look(index: ListenerIndex, path: str, pids: tuple[int, ...]) -> tuple[SocketState | None, Outcome]:
    try:
        st = os.lstat(path)
    except OSError:
        return None, (None, None)
    if not stat.S_ISSOCK(st.st_mode):
        return None, (None, None)
    identity = (st.st_dev, st.st_ino)
    state = index.state(identity, path, ((pid, path) for pid in pids))
    return state, (identity, state.liveness)


def _differs(before: Outcome, now: Outcome) -> bool:
    # A seeded outcome knows the liveness but not the identity: compare what both sides know.
    if before[0] is not None and now[0] is not None and before[0] != now[0]:
        return True
    return before[1] != now[1]
