"""``ssh://`` endpoints through the system ssh, as the docker CLI reaches them, without paramiko.

The docker CLI runs ``ssh [-l USER] [-p PORT] -- HOST docker system dial-stdio`` and speaks the Engine API over
that process's stdin and stdout, so the user's ssh config, agent, keys and known_hosts all apply. docker-py can do
the same (``use_ssh_client=True``) but imports paramiko for it anyway, and paramiko is not a dependency here (it would
also cost every run its import time). Instead a private unix socket (in a 0700 directory) stands in for the remote
engine: each connection made to it is carried by one such ssh process. docker-py then talks plain HTTP over a unix
socket, as it does locally.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from urllib.parse import urlparse

CHUNK = 65536


def ssh_argv(url: str, ssh: str = "ssh") -> list[str]:
    """The command the docker CLI runs for ``ssh://[USER@]HOST[:PORT]``."""
    parsed = urlparse(url)
    argv = [ssh]
    if parsed.username:
        argv += ["-l", parsed.username]
    if parsed.port:
        argv += ["-p", str(parsed.port)]
    return [*argv, "--", parsed.hostname or "", "docker", "system", "dial-stdio"]


class SshDialer:
    """A unix socket whose every connection is relayed through ``ssh HOST docker system dial-stdio``."""

    def __init__(self, url: str, argv: Sequence[str] | None = None) -> None:
        self.url = url
        self.argv = list(argv) if argv is not None else ssh_argv(url)
        self.last_error = ""  # the last thing ssh said on stderr: why a connection failed
        self._dir = tempfile.mkdtemp(prefix="socktui-ssh-")  # mkdtemp makes it 0700: only we can connect
        self.path = os.path.join(self._dir, "engine.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(16)
        self._closed = threading.Event()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="socktui-ssh-accept", daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), name="socktui-ssh-relay", daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        try:
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C in the terminal is socktui's to handle, not ssh's
            )
        except OSError as exc:
            self.last_error = f"cannot run {self.argv[0]}: {exc.strerror or exc}"
            conn.close()
            return
        with self._lock:
            self._procs.add(proc)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr

        def upstream() -> None:
            with contextlib.suppress(OSError, ValueError):
                while data := conn.recv(CHUNK):
                    stdin.write(data)
                    stdin.flush()
            with contextlib.suppress(OSError, ValueError):
                stdin.close()

        def errors() -> None:
            for line in stderr:
                text = line.decode(errors="replace").strip()
                if text:
                    self.last_error = text

        threading.Thread(target=upstream, daemon=True).start()
        err_thread = threading.Thread(target=errors, daemon=True)
        err_thread.start()
        try:
            while data := os.read(stdout.fileno(), CHUNK):
                conn.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            # ssh's last words first, then the client sees the connection close: a failure is then explained.
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            err_thread.join(timeout=1)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            with self._lock:
                self._procs.discard(proc)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            with contextlib.suppress(OSError):
                proc.terminate()
        shutil.rmtree(self._dir, ignore_errors=True)
