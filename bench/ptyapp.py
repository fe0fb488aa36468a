"""Run the real TUI in a pseudo-terminal of a fixed size and watch what it draws.

The output is read continuously by a thread (a TUI that cannot write would stall) and searched for a pattern; the
time recorded is ``time.monotonic()`` right after the ``read()`` that completed the match.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import struct
import termios
import threading
import time
from collections.abc import Mapping, Sequence

# CSI sequences, OSC sequences (hyperlinks, titles) and character-set selections.
_ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]")


class TtyApp:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        cols: int = 200,
        rows: int = 50,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.cols = cols
        self.rows = rows
        self.env = dict(os.environ if env is None else env)
        self.env.update({"TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)})
        self.env.pop("TEXTUAL", None)
        self.pid = 0
        self.spawned_at = 0.0
        self._fd = -1
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._reader: threading.Thread | None = None
        self._closed = False
        self._reads: list[tuple[int, float]] = []  # (buffer length after a read, when it was read)

    def start(self) -> TtyApp:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", self.rows, self.cols, 0, 0))
        self.spawned_at = time.monotonic()
        pid = os.fork()
        if pid == 0:  # child: the pty is its controlling terminal and stdio
            try:
                os.close(master)
                os.setsid()
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(slave, fd)
                if slave > 2:
                    os.close(slave)
                if self.cwd is not None:
                    os.chdir(self.cwd)
                os.execve(self.argv[0], self.argv, self.env)
            finally:
                os._exit(127)
        os.close(slave)
        self.pid = pid
        self._fd = master
        self._reader = threading.Thread(target=self._read, name=f"tty-{pid}", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.5)
                if not ready:
                    if self._closed:
                        return
                    continue
                chunk = os.read(self._fd, 1 << 16)
            except OSError:
                chunk = b""
            now = time.monotonic()
            with self._cond:
                if not chunk:
                    self._closed = True
                    self._cond.notify_all()
                    return
                self._buf += chunk
                self._reads.append((len(self._buf), now))
                self._cond.notify_all()

    def wait_for(self, pattern: bytes, timeout: float) -> float:
        """Monotonic time of the read that first made ``pattern`` (a regex) appear; TimeoutError otherwise."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        searched = 0
        with self._cond:
            while True:
                found = regex.search(self._buf, max(0, searched - 256))
                if found:
                    return next(t for end, t in self._reads if end >= found.end())
                searched = len(self._buf)
                if self._closed:
                    tail = bytes(self._buf[-2000:]).decode(errors="replace")
                    raise RuntimeError(f"{self.argv} exited before drawing {pattern!r}; output tail: {tail!r}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{pattern!r} not drawn within {timeout:.0f} s")
                self._cond.wait(remaining)

    def text_tail(self, chars: int = 600) -> str:
        """The last ``chars`` characters the app drew, without escape sequences or frames, blank runs collapsed."""
        with self._lock:
            raw = bytes(self._buf[-(chars * 20) :])
        text = _ESCAPES.sub(b" ", raw).decode(errors="replace")
        text = "".join(" " if "\u2500" <= c <= "\u257f" else c for c in text)  # box drawing: frames, not words
        return " ".join(text.split())[-chars:]

    def output_size(self) -> int:
        with self._lock:
            return len(self._buf)

    def clear(self) -> None:
        with self._lock:
            self._buf.clear()
            self._reads.clear()

    def stop(self) -> None:
        if self.pid:
            for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, sig)
                end = time.monotonic() + wait
                done = False
                while time.monotonic() < end:
                    with contextlib.suppress(ChildProcessError):
                        got, _ = os.waitpid(self.pid, os.WNOHANG)
                        if got == 0:
                            time.sleep(0.02)
                            continue
                    done = True
                    break
                if done:
                    break
            self.pid = 0
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        if self._reader is not None:
            self._reader.join(timeout=2)
