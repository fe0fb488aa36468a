"""Listener processes, through ``pidfd_open``: a server that dies *without* unlinking its socket makes no
filesystem event, but its pidfd becomes readable at once."""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable, Iterable

from .wake import WakePipe, drain


class ListenerExitWatcher:
    """Tell when a listening process exits, through ``pidfd_open`` (readable once the process has exited).

    The thread sleeps in ``poll`` on the pidfds until one becomes readable: nothing is spent while every listener
    lives. ``set_pids`` (from any thread) and ``wake`` end the wait at once; without ``wake``, ``stop`` is noticed
    within ``idle`` seconds. A pid is reported once; a pid that is already gone when it is added is reported at once.
    Where ``pidfd_open`` is not available (Linux before 5.3), pids are checked with ``kill(pid, 0)`` every ``tick``.
    """

    def __init__(self, pids: Iterable[int] = (), *, tick: float = 0.1, idle: float = 5.0) -> None:
        self.tick = tick
        self.idle = idle
        self._lock = threading.Lock()
        self._pids: frozenset[int] = frozenset()
        self._dirty = False
        self._wake = WakePipe()
        self.rounds = 0  # poll rounds done, each after taking in the latest set_pids (tests wait on it)
        self.set_pids(pids)

    def set_pids(self, pids: Iterable[int]) -> None:
        """Replace the set of pids to watch (thread-safe)."""
        with self._lock:
            self._pids = frozenset(p for p in pids if p > 0)
            self._dirty = True
        self.wake()

    def wake(self) -> None:
        """End the current wait (thread-safe): new pids, or the stop event, are acted on at once."""
        self._wake.wake()

    def run(self, on_exit: Callable[[int], None], stop: threading.Event) -> None:
        with self._wake as wake_r:
            self._run(on_exit, stop, wake_r)

    def _run(self, on_exit: Callable[[int], None], stop: threading.Event, wake_r: int) -> None:
        poller = select.poll()
        poller.register(wake_r, select.POLLIN)
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
                if not exited:
                    for fd, _mask in poller.poll((self.tick if fallback else self.idle) * 1000):
                        if fd == wake_r:
                            drain(wake_r)
                        else:
                            exited.append(pids_by_fd[fd])
                exited.extend(pid for pid in fallback if not _alive(pid))
                for pid in exited:
                    forget(pid)
                    reported.add(pid)
                    on_exit(pid)
                self.rounds += 1
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
