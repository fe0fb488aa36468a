"""``remove-stale-socket``: unlink a socket file nobody listens on."""

from __future__ import annotations

import os
import stat

from ..linux import errno_name
from ..model import ContainerReport, MountReport, PathStat, Role, Verdict
from ..probe import probe_fd
from .base import Fix, Plan, Refused, Run, Step, StepKind, describe_mode
from .paths import open_parent, same_object


def stale_target(mount: MountReport) -> tuple[str, PathStat | None]:
    """The socket to remove: the mount's own source, or the first stale socket inside a shared directory."""
    if mount.role is Role.SOCKET_DIR:
        for sock in mount.sockets:
            if sock.verdict is Verdict.STALE:
                return sock.host_path, sock.host
    return mount.mount.source, mount.host


class RemoveStaleSocket(Fix):
    id = "remove-stale-socket"
    title = "Remove the socket file nobody listens on"
    changes = True
    verdicts = frozenset({Verdict.STALE})

    def plan(self, report: ContainerReport, mount: MountReport, everyone: list[ContainerReport], wait: float) -> Plan:
        path, host = stale_target(mount)
        if host is None:
            return Plan(self.offer, report.container, mount.mount, refusal="no stale socket was observed")
        steps = (Step(StepKind.UNLINK_SOCKET, path, f"remove the socket file {path} (unlink)", expect=host),)
        preconditions = (
            f"{path} is still a socket with device {host.dev}, inode {host.ino} (lstat, symlinks not followed)",
            f"a fresh connect to {path} is still refused (ECONNREFUSED)",
        )
        return Plan(
            self.offer, report.container, mount.mount, steps, preconditions, "Then start the server so it binds again."
        )

    def act(self, step: Step, run: Run) -> str:
        if step.op is StepKind.UNLINK_SOCKET:
            return _unlink_socket(step)
        return super().act(step, run)


def _unlink_socket(step: Step) -> str:
    dir_fd, name = open_parent(step.target)
    try:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError as exc:
            raise Refused(f"{step.target} is already gone") from exc
        if not stat.S_ISSOCK(st.st_mode):
            raise Refused(f"{step.target} is now {describe_mode(st.st_mode)}, not a socket: left alone")
        same_object(st, step.expect, step.target, "socket")
        try:
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as exc:
            raise Refused(f"cannot open {step.target}: {errno_name(exc.errno)}") from exc
        try:
            if (os.fstat(fd).st_ino, os.fstat(fd).st_dev) != (st.st_ino, st.st_dev):
                raise Refused(f"{step.target} changed while being checked")
            probe = probe_fd(fd)
        finally:
            os.close(fd)
        if probe.ok:
            raise Refused(f"{step.target} accepts connections again: a server is listening, so it is not stale")
        if probe.errno != "ECONNREFUSED":
            raise Refused(f"a fresh connect to {step.target} got {probe.errno}, not ECONNREFUSED: left alone")
        os.unlink(name, dir_fd=dir_fd)
        return f"removed the stale socket {step.target}"
    finally:
        os.close(dir_fd)
