"""A pipe a sleeping source polls beside its own descriptors, so that another thread can end its wait at once."""

from __future__ import annotations

import contextlib
import os
import threading
from types import TracebackType


class WakePipe:
    """``with pipe as read_end:`` for the length of a source's ``run``; :meth:`wake` (any thread) makes that read end
    readable, and :func:`drain` empties it again. Waking a source that is not running does nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fds: tuple[int, int] | None = None

    def __enter__(self) -> int:
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with self._lock:
            self._fds = (read_end, write_end)
        return read_end

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        with self._lock:
            fds, self._fds = self._fds, None
        if fds is not None:
            for fd in fds:
                os.close(fd)

    def wake(self) -> None:
        with self._lock:
            if self._fds is not None:
                with contextlib.suppress(BlockingIOError):  # full: it is awake already
                    os.write(self._fds[1], b"!")


def drain(fd: int) -> None:
    """Empty a woken pipe's read end, so the next wait sleeps again."""
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass
