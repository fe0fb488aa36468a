"""A dockerd of our own: its own data root, socket, exec root and pidfile under one directory, no networking.

The test harness, bench/ and ``socktui demo`` all start their daemons here. Nothing here reads ``DOCKER_HOST`` or
any docker context: the daemon is reached only through the socket it was told to create, so the user's own daemon is
never touched. ``stop_daemon`` works from any process that knows the pid and the directory (the demo's supervisor
and a later run's cleanup use it), and kills a pid only after checking that its command line names the directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import docker
import docker.errors


def mountpoints_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, as /proc/self/mountinfo spells them (octal escapes undone)."""
    prefix = str(root).rstrip("/") + "/"
    found: list[str] = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            # Field 5 is the mount point, with space/tab/newline/backslash octal-escaped.
            raw = line.split(b" ")[4]
            point = os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), raw))
            if point == str(root) or point.startswith(prefix):
                found.append(point)
    return found


def unmount_under(root: Path) -> None:
    """Lazily unmount everything below ``root``, deepest first: a busy mount must not keep the directory alive."""
    for point in sorted(mountpoints_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def pids_mentioning(needle: str) -> list[int]:
    """Processes whose command line contains ``needle``, plus all their descendants (never this process)."""
    me = os.getpid()
    parent: dict[int, int] = {}
    matched: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                # The ppid follows the parenthesised command name, which may itself hold spaces.
                parent[int(entry)] = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if needle.encode() in cmdline:
            matched.add(int(entry))
    # Container processes do not carry the path, but they are children of our shims.
    grew = True
    while grew:
        children = {pid for pid, ppid in parent.items() if ppid in matched} - matched
        matched |= children
        grew = bool(children)
    return sorted(matched)


def cmdline_mentions(pid: int, needle: str) -> bool:
    """True when process ``pid`` exists and its command line contains ``needle``: a pid is only a number."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return needle.encode() in f.read()
    except OSError:
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def kill_containers(host: str) -> None:
    """Kill every running container of the daemon at ``host``: dockerd would otherwise give each its stop timeout,
    and ``sleep`` as pid 1 ignores SIGTERM."""
    try:
        with docker.APIClient(base_url=host, version="auto", timeout=10) as client:
            for c in client.containers(quiet=True):
                with contextlib.suppress(docker.errors.DockerException):
                    client.kill(c["Id"])
    except (docker.errors.DockerException, OSError):
        pass


def stop_daemon(pid: int | None, workdir: Path, *, kill_first: bool = True) -> None:
    """Stop the daemon whose files live in ``workdir`` and remove every trace of it: processes, mounts, files.

    ``pid`` is signalled only if its command line names ``workdir`` (a recycled pid belongs to someone else).
    containerd and the shims outlive a killed dockerd; they carry ``workdir`` in their command lines, and the
    container processes are their children, so they are found that way.
    """
    host = f"unix://{workdir / 'docker.sock'}"
    if pid is not None and cmdline_mentions(pid, str(workdir)):
        if kill_first:
            kill_containers(host)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _until(lambda: not cmdline_mentions(pid, str(workdir)), timeout=20):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _until(lambda: not cmdline_mentions(pid, str(workdir)), timeout=10)
    leftovers = pids_mentioning(str(workdir))
    for other in leftovers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(other, signal.SIGKILL)
    if leftovers:
        _until(lambda: not pids_mentioning(str(workdir)), timeout=5)
    unmount_under(workdir)
    shutil.rmtree(workdir, ignore_errors=True)


class PrivateDaemon:
    """A dockerd of our own in a directory of its own, with no network setup at all.

    Everything it owns (socket, data root, exec root, its containerd) lives under ``workdir``, so several can run
    side by side and cleanup is ``rm -rf`` after unmounting. ``workdir`` defaults to a fresh directory under /tmp;
    keep it short, since the daemon's and containerd's sockets live under it (sun_path holds 107 bytes).
    """

    def __init__(
        self,
        dockerd: str = "dockerd",
        start_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
        workdir: Path | None = None,
    ) -> None:
        self.dockerd = dockerd
        self.start_timeout = start_timeout
        self.extra_args = list(extra_args)
        self._wanted_workdir = workdir
        self._workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("PrivateDaemon is not started")
        return self._workdir

    @property
    def socket_path(self) -> Path:
        return self.workdir / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dockerd.log"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("PrivateDaemon is not started")
        return self._proc.pid

    def command(self, workdir: Path) -> list[str]:
        return [
            self.dockerd,
            "--host",
            f"unix://{workdir / 'docker.sock'}",
            "--data-root",
            str(workdir / "data"),
            "--exec-root",
            str(workdir / "exec"),
            "--pidfile",
            str(workdir / "docker.pid"),
            # No registry and no need for networking: containers run with network_mode "none".
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--log-level=warn",
            *self.extra_args,
        ]

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("PrivateDaemon already started")
        if self._wanted_workdir is not None:
            workdir = self._wanted_workdir
            workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        else:
            workdir = Path(tempfile.mkdtemp(prefix="socktui-dockerd-"))
        self._workdir = workdir
        with open(workdir / "dockerd.log", "wb") as log:
            self._proc = subprocess.Popen(
                self.command(workdir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_up(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        last_error = "no socket yet"
        while True:
            rc = self._proc.poll()
            if rc is not None:
                raise RuntimeError(
                    f"dockerd exited with status {rc} while starting; log tail:\n{log_tail(self.log_path)}"
                )
            if self.socket_path.exists():
                try:
                    with docker.APIClient(base_url=self.host, version="auto", timeout=5) as client:
                        if client.ping():
                            return
                except (docker.errors.DockerException, OSError) as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"dockerd did not answer on {self.host} within {self.start_timeout:.0f}s "
                    f"(last error: {last_error}); log tail:\n{log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def _kill_containers(self) -> None:
        kill_containers(self.host)

    def stop(self) -> None:
        proc, workdir = self._proc, self._workdir
        if proc is None or workdir is None:
            return
        if proc.poll() is None:
            self._kill_containers()
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=10)
        stop_daemon(None, workdir)
        self._proc = None
        self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
