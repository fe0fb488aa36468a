"""Real servers nobody here wrote, from Debian's packages, on private directories: PostgreSQL, Redis and nginx.

Each runs as its package's own user (``postgres``, ``redis``; nginx's master as root, as packaged), listens only on a
Unix socket in a directory the test gives it (no TCP port), and is stopped by the test or by ``close()``. The ways
they stop are the ways users meet: ``pg_ctl stop`` (which removes the socket and its lock file), a ``SIGKILL``
(which leaves both), ``redis-cli shutdown`` and ``nginx -s stop`` (which unlink their sockets).

Not a pytest module: the tests import it like ``harness``. CI installs the packages (``.ci/run``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from harness import wait_for

START_TIMEOUT = 60.0  # a loaded 2-core machine: initdb and the first start are slow


def _owned_by(path: Path, user: str, mode: int = 0o755) -> Path:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(path, mode)
    return path


def private_dir(user: str = "root", prefix: str = "st-") -> Path:
    """A short directory under /tmp owned by ``user`` (socket paths under it stay well inside sun_path)."""
    return _owned_by(Path(tempfile.mkdtemp(prefix=prefix)), user)


def _pg_bin(program: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"))
    if not found:
        raise RuntimeError(f"no {program}: install postgresql (.ci/run does)")
    return found[-1]


class Postgres:
    """A PostgreSQL cluster of our own: ``initdb`` once, then started and stopped on a given socket directory."""

    def __init__(self) -> None:
        self.workdir = private_dir("postgres", prefix="st-pg-")
        self.data = self.workdir / "data"
        self.log = self.workdir / "log"
        self.socket_dir: Path | None = None
        self.port = 0
        subprocess.run(
            [_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            capture_output=True,
            user="postgres",
            group="postgres",
            timeout=START_TIMEOUT,
        )

    @property
    def socket(self) -> Path:
        assert self.socket_dir is not None
        return self.socket_dir / f".s.PGSQL.{self.port}"

    @property
    def lock(self) -> Path:
        return Path(f"{self.socket}.lock")

    def start(self, socket_dir: Path, port: int, *, own_dir: bool = True) -> None:
        """Listen on ``socket_dir/.s.PGSQL.PORT`` only (no TCP); returns once the socket accepts. ``own_dir=False``
        leaves the directory as it is (a restart: chowning it again would be a change a watcher sees)."""
        if own_dir:
            _owned_by(socket_dir, "postgres")
        self.socket_dir, self.port = socket_dir, port
        options = f"-k {socket_dir} -p {port} -c listen_addresses='' -c fsync=off"
        subprocess.run(
            [_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
            user="postgres",
            group="postgres",
            timeout=START_TIMEOUT + 10,
        )
        wait_for(self.socket.exists, timeout=10, message=f"{self.socket} to appear")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: a clean shutdown, which removes the socket and its lock file."""
        subprocess.run(
            [_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"],
            check=True,
            capture_output=True,
            user="postgres",
            group="postgres",
            timeout=START_TIMEOUT + 10,
        )

    def kill(self) -> None:
        """``SIGKILL`` the postmaster: its socket and lock file stay behind, nobody listens."""
        pid = self.postmaster_pid()
        assert pid is not None, "postgres is not running"
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=20, message=f"postmaster {pid} to exit")
        # Its children notice the postmaster's death and exit; wait so none still holds the socket.
        wait_for(lambda: not _children_of(pid), timeout=30, message=f"postmaster {pid}'s children to exit")

    def close(self) -> None:
        pid = self.postmaster_pid()
        if pid is not None and Path(f"/proc/{pid}").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                if int(f.read().rsplit(b")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """The server and whatever it forked (nginx's workers) are in their own session: kill them all."""
    if proc.poll() is not None:
        return  # reaped: its pid, and so its group id, may belong to someone else by now
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


class Redis:
    """``redis-server`` as the ``redis`` user on one Unix socket with the given ``unixsocketperm`` (no TCP)."""

    def __init__(self, socket: Path, perm: str = "700") -> None:
        _owned_by(socket.parent, "redis")
        self.socket = socket
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                "0",
                "--unixsocket",
                str(socket),
                "--unixsocketperm",
                perm,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(socket.parent),
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user="redis",
            group="redis",
            start_new_session=True,
        )
        wait_for(lambda: socket.exists() or self.proc.poll() is not None, timeout=START_TIMEOUT)
        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.proc.returncode}")

    @property
    def uid(self) -> int:
        return pwd.getpwnam("redis").pw_uid

    @property
    def gid(self) -> int:
        return pwd.getpwnam("redis").pw_gid

    def stop(self) -> None:
        """SIGTERM: Redis shuts down cleanly and removes its socket file."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def close(self) -> None:
        _kill_group(self.proc)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 16; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen unix:{socket};
        location / {{ return 200 "hello from nginx\\n"; }}
    }}
}}
"""


class Nginx:
    """nginx listening on one Unix socket, with its pid file and temporary files in a private directory."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.work = private_dir(prefix="st-ngx-")
        self.conf = self.work / "nginx.conf"
        self.conf.write_text(NGINX_CONF.format(work=self.work, socket=socket))
        self.proc = subprocess.Popen(
            ["nginx", "-c", str(self.conf), "-p", str(self.work)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: socket.exists() or self.proc.poll() is not None, timeout=START_TIMEOUT)
        if self.proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self._log()}")

    def _log(self) -> str:
        try:
            return (self.work / "error.log").read_text()[-500:]
        except OSError:
            return ""

    def stop(self) -> None:
        """``nginx -s stop``: a fast shutdown, which unlinks the socket."""
        subprocess.run(
            ["nginx", "-c", str(self.conf), "-p", str(self.work), "-s", "stop"], check=True, capture_output=True
        )
        self.proc.wait(timeout=30)

    def close(self) -> None:
        _kill_group(self.proc)
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
