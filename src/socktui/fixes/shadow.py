"""``remove-shadow-dir``: remove the empty directory Docker created where a socket belongs."""

from __future__ import annotations

import errno
import os
import stat

from ..linux import errno_name
from ..model import ContainerReport, MountReport, Verdict
from .base import (
    Fix,
    Plan,
    Refused,
    Run,
    Step,
    StepKind,
    StepResult,
    describe_mode,
    q,
    recreate_advice,
    sharing,
    socket_accepts,
    wait_for_socket,
)
from .paths import open_parent, same_object


class RemoveShadowDir(Fix):
    id = "remove-shadow-dir"
    title = "Remove the empty directory Docker created"
    changes = True
    keeps_running = False
    verdicts = frozenset({Verdict.SHADOWED})

    def plan(self, report: ContainerReport, mount: MountReport, everyone: list[ContainerReport], wait: float) -> Plan:
        fix = self.offer
        source = mount.mount.source
        host = mount.host
        if host is None:
            return Plan(fix, report.container, mount.mount, refusal="the host path was not looked at")
        holders = sharing(source, everyone)
        running = [c for c in holders if c.running]
        steps = [
            Step(
                StepKind.STOP_CONTAINER, c.name, f"stop container {c.name} (it holds the directory)", container_id=c.id
            )
            for c in running
        ]
        steps.append(
            Step(StepKind.RMDIR, source, f"remove the empty directory {source} (rmdir: never recursive)", expect=host)
        )
        follow_up = ""
        if running:
            steps.append(
                Step(StepKind.WAIT_FOR_SOCKET, source, f"wait up to {wait:.0f} s for the server to bind {source}")
            )
            steps += [
                Step(
                    StepKind.START_CONTAINER,
                    c.name,
                    f"start container {c.name} once the socket exists (if Docker refuses because {c.name} now has a "
                    "directory at the mount point, it must be recreated; the exact command is shown)",
                    container_id=c.id,
                )
                for c in running
            ]
            follow_up = (
                "If the server does not bind in time, start it, then start "
                + " ".join(q(c.name) for c in running)
                + " again; if Docker refuses, recreate it: "
                + "; ".join(recreate_advice(c) for c in running)
            )
        stopped = [c for c in holders if not c.running]
        if stopped:
            follow_up += ("\n" if follow_up else "") + (
                "Start the server first, then recreate "
                + " ".join(q(c.name) for c in stopped)
                + " (Docker left a directory mount point inside it): "
                + "; ".join(recreate_advice(c) for c in stopped)
            )
        preconditions = (
            f"{source} is still a directory with device {host.dev}, inode {host.ino} (lstat, symlinks not followed)",
            f"{source} is still empty (rmdir refuses otherwise)",
            "each container is started only after a socket exists at the path",
        )
        return Plan(fix, report.container, mount.mount, tuple(steps), preconditions, follow_up)

    def preflight(self, run: Run) -> None:
        """Checked before any container is stopped, so a doomed fix stops nothing."""
        for step in run.plan.steps:
            if step.op is StepKind.RMDIR:
                try:
                    _preflight_rmdir(step)
                except Refused as exc:
                    raise Refused(str(exc), step) from exc

    def act(self, step: Step, run: Run) -> str:
        if step.op is StepKind.RMDIR:
            return _rmdir(step)
        if step.op is StepKind.WAIT_FOR_SOCKET:
            return wait_for_socket(step, run.wait_seconds, run.cancel)
        if step.op is StepKind.START_CONTAINER:
            return _start(step, run)
        return super().act(step, run)

    def undo(self, run: Run) -> None:
        socket_path = run.plan.mount.source
        if run.stopped and os.path.isdir(socket_path) and not os.path.islink(socket_path):
            # The directory is still there, so starting the containers again restores exactly what was before.
            for step in run.stopped:
                try:
                    assert step.container_id is not None
                    run.engine.start(step.container_id)
                    run.record(StepResult(step, True, f"started {step.target} again: nothing else was changed"))
                except Exception as exc:
                    run.record(StepResult(step, False, f"could not start {step.target} again: {exc}"))


def _check_directory(step: Step, dir_fd: int, name: str) -> None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError as exc:
        raise Refused(f"{step.target} is already gone") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise Refused(f"{step.target} is now {describe_mode(st.st_mode)}, not a directory: left alone")
    same_object(st, step.expect, step.target, "directory")


def _preflight_rmdir(step: Step) -> None:
    dir_fd, name = open_parent(step.target)
    try:
        _check_directory(step, dir_fd, name)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            if os.listdir(fd):
                raise Refused(f"{step.target} is not empty: nothing was deleted")
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def _rmdir(step: Step) -> str:
    dir_fd, name = open_parent(step.target)
    try:
        _check_directory(step, dir_fd, name)
        try:
            os.rmdir(name, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise Refused(f"{step.target} is not empty: nothing was deleted") from exc
            raise Refused(f"rmdir {step.target} failed: {errno_name(exc.errno)}") from exc
        return f"removed the empty directory {step.target}"
    finally:
        os.close(dir_fd)


def _start(step: Step, run: Run) -> str:
    socket_path = run.plan.mount.source
    if not socket_accepts(socket_path):
        raise Refused(f"{socket_path} is not a listening socket right now: starting would recreate the directory")
    assert step.container_id is not None
    try:
        run.engine.start(step.container_id)
    except Exception as exc:
        if "directory onto a file" in str(exc) or "not a directory" in str(exc):
            # Docker made a *directory* mountpoint inside the container when it mounted the shadow directory; a
            # socket cannot be mounted onto it, so this container can only come back by being recreated.
            raise Refused(
                f"Docker cannot start {step.target} again: its own filesystem now has a directory where the socket "
                f"is mounted (made when the shadow directory was mounted). The socket is fixed on the host; "
                f"recreate the container: {recreate_advice(run.plan.container)}"
            ) from exc
        raise
    return f"started {step.target}"
