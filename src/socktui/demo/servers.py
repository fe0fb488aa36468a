"""Running ``sockserver.py`` as real AF_UNIX servers in their own processes (the tests' and the demo's servers)."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

SOCKSERVER = Path(__file__).resolve().with_name("sockserver.py")
# sun_path is 108 bytes including the terminating NUL.
SUN_PATH_MAX = 107


class SocketServerError(RuntimeError):
    """The server process exited while starting (e.g. bind failed); carries its exit code and stderr."""

    def __init__(self, path: Path, returncode: int | None, stderr: str) -> None:
        self.path = path
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"socket server for {path} failed (exit {returncode}): {stderr.strip()}")


class SocketServer:
    """An AF_UNIX SOCK_STREAM server in its own process (``sockserver.py``).

    ``unlink_first`` removes an existing *socket* at ``path`` before binding, as real servers do; files and
    directories are left alone, so binding over them fails with EADDRINUSE. With ``retry`` the process keeps trying
    to bind instead of exiting, and ``start(wait=False)`` returns without waiting for it to be ready. ``log`` sends
    the server's stderr to a file instead of a pipe (a long-lived server must not fill a pipe nobody reads).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        unlink_first: bool = True,
        mode: int | None = None,
        gid: int | None = None,
        echo: bool = False,
        retry: float | None = None,
        log: Path | None = None,
        start_timeout: float = 5.0,
        program: Path = SOCKSERVER,
    ) -> None:
        self.path = Path(path)
        if len(os.fsencode(self.path)) > SUN_PATH_MAX:
            raise ValueError(f"socket path is longer than {SUN_PATH_MAX} bytes: {self.path}")
        self.unlink_first = unlink_first
        self.mode = mode
        self.gid = gid
        self.echo = echo
        self.retry = retry
        self.log = log
        self.start_timeout = start_timeout
        self.program = program
        self.ident: tuple[int, int] | None = None
        self.stderr = ""
        self._proc: subprocess.Popen[str] | None = None

    @property
    def argv(self) -> list[str]:
        argv = [sys.executable, str(self.program), str(self.path)]
        if self.mode is not None:
            argv += ["--mode", format(self.mode, "o")]
        if self.gid is not None:
            argv += ["--gid", str(self.gid)]
        if not self.unlink_first:
            argv.append("--no-unlink")
        if self.echo:
            argv.append("--echo")
        if self.retry is not None:
            argv += ["--retry", f"{self.retry:g}"]
        return argv

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("SocketServer is not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, wait: bool = True) -> Self:
        if self._proc is not None:
            raise RuntimeError("SocketServer already started")
        err: int | IO[str] = subprocess.PIPE
        with contextlib.ExitStack() as stack:
            if self.log is not None:
                err = stack.enter_context(open(self.log, "a"))
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        self._proc = proc
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float | None = None) -> Self:
        """Wait for the server's own READY line: polling the path alone could reach an older server still
        listening there (a stale or shadowed socket)."""
        proc = self._proc
        if proc is None:
            raise RuntimeError("SocketServer is not started")
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], self.start_timeout if timeout is None else timeout)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("READY "):
            if not ready:
                proc.kill()
            self.stderr = proc.communicate(timeout=5)[1] or ""
            raise SocketServerError(self.path, proc.returncode, self.stderr or f"no READY line, got {line!r}")
        _, dev, ino = line.split()
        self.ident = (int(dev), int(ino))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(self.start_timeout)
            probe.connect(str(self.path))
        return self

    def connect(self, timeout: float = 5.0) -> socket.socket:
        """A client connection to the path (whatever now listens there)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(self.path))
        except BaseException:
            sock.close()
            raise
        return sock

    def _reap(self, timeout: float) -> None:
        assert self._proc is not None
        if self._proc.returncode is not None and (self._proc.stderr is None or self._proc.stderr.closed):
            return
        try:
            _, err = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            _, err = self._proc.communicate(timeout=5)
        self.stderr += err or ""

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM; the server removes its own socket (only if the path is still its socket)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
        self._reap(timeout)
        if self.ident is not None:
            with contextlib.suppress(FileNotFoundError):
                st = self.path.lstat()
                if stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) == self.ident:
                    self.path.unlink()

    def kill(self) -> None:
        """SIGKILL: the socket file stays behind, stale (connect gives ECONNREFUSED)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._reap(5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class SocketServers:
    """Factory that remembers its servers so a fixture can stop them all."""

    servers: list[SocketServer] = field(default_factory=list)

    def start(
        self,
        path: str | os.PathLike[str],
        *,
        unlink_first: bool = True,
        mode: int | None = None,
        echo: bool = False,
    ) -> SocketServer:
        server = SocketServer(path, unlink_first=unlink_first, mode=mode, echo=echo)
        self.servers.append(server)
        return server.start()

    def cleanup(self) -> None:
        # Newest first, so a shadowing server goes before the one it shadowed.
        while self.servers:
            self.servers.pop().stop()
