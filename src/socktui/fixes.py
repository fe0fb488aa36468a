"""Fixes: what each verdict offers, the exact plan, and applying it safely.

Safety comes from construction, not care at call sites:
- every step that touches the filesystem acts through a directory fd on the *host* parent and names one entry in it
  (``rmdir``/``unlink`` with ``dir_fd``), after an ``fstatat`` without following symlinks shows the very
  (device, inode) that was diagnosed; paths reached through a container's view are never acted on;
- ``rmdir`` removes only an empty directory (the kernel refuses otherwise), never a tree;
- a stale socket is unlinked only if a fresh connect is still refused;
- a container is (re)started only when the socket it mounts exists, since starting a ``-v`` mount of a missing path
  would make Docker create the directory all over again;
- read-only mode refuses before anything is looked at twice.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shlex
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .fsview import kind_of_mode
from .linux import errno_name
from .model import ContainerReport, ContainerSpec, FixOffer, Kind, MountReport, MountSpec, PathStat, Role, Verdict
from .probe import probe_fd

REMOVE_SHADOW_DIR = FixOffer("remove-shadow-dir", "Remove the empty directory Docker created", True)
REMOVE_STALE_SOCKET = FixOffer("remove-stale-socket", "Remove the socket file nobody listens on", True)
RESTART_CONTAINER = FixOffer("restart-container", "Restart the container so it sees the current socket", True)
MOUNT_PARENT_DIR = FixOffer("mount-parent-dir", "Mount the socket's directory instead of the file", False)
USE_MOUNT_FLAG = FixOffer("use-mount-flag", "Use --mount so a missing socket is an error, not a directory", False)
GROUP_ADD = FixOffer("group-add", "Give the container the socket's group (--group-add)", False)
START_SERVER_FIRST = FixOffer("start-server-first", "Start the server before the container", False)
CATALOGUE = {
    f.id: f
    for f in (
        REMOVE_SHADOW_DIR,
        REMOVE_STALE_SOCKET,
        RESTART_CONTAINER,
        MOUNT_PARENT_DIR,
        USE_MOUNT_FLAG,
        GROUP_ADD,
        START_SERVER_FIRST,
    )
}
DEFAULT_WAIT_SECONDS = 30.0
CONTAINER_TIMEOUT_SECONDS = 10


def offers(verdict: Verdict | None, mount: MountSpec, role: Role) -> tuple[FixOffer, ...]:
    """Fixes that apply to a mount in this state, the ones that change something first."""
    file_mount = role is Role.SOCKET
    uses_v = mount.from_binds is not False
    if verdict is Verdict.SHADOWED:
        return (REMOVE_SHADOW_DIR, START_SERVER_FIRST) + ((USE_MOUNT_FLAG,) if uses_v else ())
    if verdict is Verdict.STALE:
        return (REMOVE_STALE_SOCKET, START_SERVER_FIRST)
    if verdict is Verdict.DETACHED:
        return (RESTART_CONTAINER,) + ((MOUNT_PARENT_DIR,) if file_mount else ())
    if verdict is Verdict.MISSING:
        return (START_SERVER_FIRST,) + ((USE_MOUNT_FLAG,) if file_mount and uses_v else ())
    if verdict is Verdict.DENIED:
        return (GROUP_ADD,)
    return ()


# ---------------------------------------------------------------------------------------------------------------
# Plans


@dataclass(frozen=True)
class Step:
    """One operation on a named path or container. ``expect`` is the object the step may act on, as diagnosed."""

    op: str  # stop-container, rmdir, unlink-socket, wait-for-socket, start-container, restart-container
    target: str
    describe: str
    container_id: str | None = None
    expect: PathStat | None = None


@dataclass(frozen=True)
class Plan:
    fix: FixOffer
    container: ContainerSpec
    mount: MountSpec
    steps: tuple[Step, ...] = ()
    preconditions: tuple[str, ...] = ()
    advice: str = ""  # the ready-to-copy command or snippet (for advice) or the follow-up
    refusal: str | None = None  # set when the fix cannot be planned safely at all

    @property
    def changes(self) -> bool:
        return bool(self.steps)


def _q(path: str) -> str:
    return shlex.quote(path)


def _sharing(source: str, reports: Sequence[ContainerReport]) -> list[ContainerSpec]:
    """Every container with a mount of ``source``: all of them hold the shadow directory."""
    norm = posixpath.normpath(source)
    return [r.container for r in reports if any(posixpath.normpath(m.source) == norm for m in r.container.mounts)]


def plan_fix(
    fix_id: str,
    report: ContainerReport,
    mount: MountReport,
    everyone: Sequence[ContainerReport] = (),
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> Plan:
    fix = CATALOGUE.get(fix_id)
    container = report.container
    if fix is None:
        known = ", ".join(CATALOGUE)
        return Plan(FixOffer(fix_id, fix_id, False), container, mount.mount, refusal=f"no fix {fix_id!r} ({known})")
    if fix not in mount.fixes:
        offered = ", ".join(f.id for f in mount.fixes) or "none"
        return Plan(
            fix,
            container,
            mount.mount,
            refusal=f"{fix_id} does not apply to a {mount.verdict or 'healthy'} mount (offered: {offered})",
        )
    builder = _PLANNERS[fix_id]
    return builder(fix, report, mount, list(everyone) or [report], wait_seconds)


def _plan_remove_shadow(
    fix: FixOffer, report: ContainerReport, mount: MountReport, everyone: list[ContainerReport], wait: float
) -> Plan:
    source = mount.mount.source
    host = mount.host
    if host is None:
        return Plan(fix, report.container, mount.mount, refusal="the host path was not looked at")
    holders = _sharing(source, everyone)
    running = [c for c in holders if c.running]
    steps = [
        Step("stop-container", c.name, f"stop container {c.name} (it holds the directory)", container_id=c.id)
        for c in running
    ]
    steps.append(Step("rmdir", source, f"remove the empty directory {source} (rmdir: never recursive)", expect=host))
    follow_up = ""
    if running:
        steps.append(
            Step("wait-for-socket", source, f"wait up to {wait:.0f} s for the server to bind {source}", expect=None)
        )
        steps += [
            Step(
                "start-container",
                c.name,
                f"start container {c.name} once the socket exists (if Docker refuses because {c.name} now has a "
                "directory at the mount point, it must be recreated; the exact command is shown)",
                container_id=c.id,
            )
            for c in running
        ]
        follow_up = (
            "If the server does not bind in time, start it, then start "
            + " ".join(_q(c.name) for c in running)
            + " again; if Docker refuses, recreate it: "
            + "; ".join(recreate_advice(c) for c in running)
        )
    stopped = [c for c in holders if not c.running]
    if stopped:
        follow_up += ("\n" if follow_up else "") + (
            "Start the server first, then recreate "
            + " ".join(_q(c.name) for c in stopped)
            + " (Docker left a directory mount point inside it): "
            + "; ".join(recreate_advice(c) for c in stopped)
        )
    preconditions = (
        f"{source} is still a directory with device {host.dev}, inode {host.ino} (lstat, symlinks not followed)",
        f"{source} is still empty (rmdir refuses otherwise)",
        "each container is started only after a socket exists at the path",
    )
    return Plan(fix, report.container, mount.mount, tuple(steps), preconditions, follow_up)


def _stale_target(mount: MountReport) -> tuple[str, PathStat | None]:
    if mount.role is Role.SOCKET_DIR:
        for sock in mount.sockets:
            if sock.verdict is Verdict.STALE:
                return sock.host_path, sock.host
    return mount.mount.source, mount.host


def _plan_remove_stale(
    fix: FixOffer, report: ContainerReport, mount: MountReport, everyone: list[ContainerReport], wait: float
) -> Plan:
    path, host = _stale_target(mount)
    if host is None:
        return Plan(fix, report.container, mount.mount, refusal="no stale socket was observed")
    steps = (Step("unlink-socket", path, f"remove the socket file {path} (unlink)", expect=host),)
    preconditions = (
        f"{path} is still a socket with device {host.dev}, inode {host.ino} (lstat, symlinks not followed)",
        f"a fresh connect to {path} is still refused (ECONNREFUSED)",
    )
    return Plan(fix, report.container, mount.mount, steps, preconditions, "Then start the server so it binds again.")


def _plan_restart(
    fix: FixOffer, report: ContainerReport, mount: MountReport, everyone: list[ContainerReport], wait: float
) -> Plan:
    c = report.container
    steps = (
        Step(
            "restart-container",
            c.name,
            f"restart container {c.name} (timeout {CONTAINER_TIMEOUT_SECONDS} s)",
            container_id=c.id,
            expect=mount.host,
        ),
    )
    preconditions = (
        f"{mount.mount.source} is a socket on the host right now (restarting a -v mount of a missing path would "
        "make Docker create a directory there)",
    )
    return Plan(fix, c, mount.mount, steps, preconditions)


def _container_dir_for(mount: MountSpec) -> str:
    dst_dir = posixpath.dirname(mount.destination.rstrip("/")) or "/"
    if dst_dir in ("/", "/run", "/var/run", "/tmp", "/var", "/etc", "/usr"):
        # Mounting over a system directory would hide the image's own files: use a dedicated one inside it.
        return posixpath.join(dst_dir, posixpath.basename(posixpath.dirname(mount.source)) or "sockets")
    return dst_dir


def advice_for(fix_id: str, report: ContainerReport, mount: MountReport) -> str:
    """The ready-to-copy snippet for an advice fix, with this mount's real paths and gid."""
    m, c = mount.mount, report.container
    src, dst = m.source, m.destination
    if fix_id == "mount-parent-dir":
        src_dir = posixpath.dirname(src.rstrip("/")) or "/"
        dst_dir = _container_dir_for(m)
        new_path = posixpath.join(dst_dir, posixpath.basename(src))
        return (
            f"# mount the directory, so a restarted server's new socket is seen at once\n"
            f"docker run -v {_q(src_dir)}:{_q(dst_dir)} ...   # instead of -v {_q(src)}:{_q(dst)}\n"
            f"# compose:\n    volumes:\n      - {src_dir}:{dst_dir}\n"
            f"# then point the client at {new_path} inside {c.name}"
        )
    if fix_id == "use-mount-flag":
        return (
            "# a missing socket becomes an error instead of a directory\n"
            f"docker run --mount type=bind,src={_q(src)},dst={_q(dst)} ...\n"
            "# compose:\n    volumes:\n      - type: bind\n"
            f"        source: {src}\n        target: {dst}\n        bind:\n          create_host_path: false"
        )
    if fix_id == "group-add":
        gid = mount.host.gid if mount.host is not None else 0
        return (
            f"# let {c.name}'s user connect: give it the socket's group (gid {gid})\n"
            f'docker run --group-add {gid} ...\n# compose:\n    group_add:\n      - "{gid}"'
        )
    if fix_id == "start-server-first":
        return (
            f"# start the server that creates {src} before {c.name}, then:\n"
            f"docker start {_q(c.name)}\n"
            f"# compose: make {c.name}'s service depend on the server being healthy:\n"
            "    depends_on:\n      server:\n        condition: service_healthy\n"
            f"# with a healthcheck on the server such as: test -S {_q(src)}"
        )
    return ""


def _plan_advice(
    fix: FixOffer, report: ContainerReport, mount: MountReport, everyone: list[ContainerReport], wait: float
) -> Plan:
    return Plan(fix, report.container, mount.mount, advice=advice_for(fix.id, report, mount))


_PLANNERS: dict[str, Callable[[FixOffer, ContainerReport, MountReport, list[ContainerReport], float], Plan]] = {
    "remove-shadow-dir": _plan_remove_shadow,
    "remove-stale-socket": _plan_remove_stale,
    "restart-container": _plan_restart,
    "mount-parent-dir": _plan_advice,
    "use-mount-flag": _plan_advice,
    "group-add": _plan_advice,
    "start-server-first": _plan_advice,
}


def render_plan(plan: Plan) -> str:
    lines = [
        f"{plan.fix.id}: {plan.fix.title}",
        f"  for {plan.container.name}: {plan.mount.source} -> {plan.mount.destination}",
    ]
    if plan.refusal:
        lines.append(f"  cannot plan: {plan.refusal}")
        return "\n".join(lines)
    if plan.steps:
        lines.append("  steps:")
        lines += [f"    {i}. {s.describe}" for i, s in enumerate(plan.steps, 1)]
        lines.append("  re-checked at the moment each step acts:")
        lines += [f"    - {p}" for p in plan.preconditions]
    else:
        lines.append("  changes nothing; copy this:")
    if plan.advice:
        lines += ["    " + line for line in plan.advice.splitlines()]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Applying


@dataclass(frozen=True)
class StepResult:
    step: Step
    ok: bool
    message: str


@dataclass(frozen=True)
class FixResult:
    plan: Plan
    status: str  # applied, refused, failed, nothing-to-do
    message: str
    steps: tuple[StepResult, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.status in ("applied", "nothing-to-do")


class Refused(Exception):
    """A precondition no longer holds: nothing more is done."""


class ContainerActions(Protocol):
    """What applying needs from the engine; ``socktui.engine.Engine`` provides it."""

    def stop(self, container_id: str, timeout: int = CONTAINER_TIMEOUT_SECONDS) -> None: ...
    def start(self, container_id: str) -> None: ...
    def restart(self, container_id: str, timeout: int = CONTAINER_TIMEOUT_SECONDS) -> None: ...


def _open_parent(path: str) -> tuple[int, str]:
    """A directory fd on the host parent of ``path`` and the entry name to act on inside it."""
    parent, name = posixpath.split(posixpath.normpath(path))
    if not name or name in (".", ".."):
        raise Refused(f"{path!r} does not name an entry that can be removed")
    try:
        return os.open(parent or "/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), name
    except OSError as exc:
        raise Refused(f"cannot open the directory {parent}: {errno_name(exc.errno)}") from exc


def _same_object(st: os.stat_result, expect: PathStat | None, path: str, what: str) -> None:
    if expect is None:
        raise Refused(f"{path} was not observed before; diagnose again")
    if (st.st_dev, st.st_ino) != expect.identity:
        raise Refused(
            f"{path} changed since it was diagnosed: it is now inode {st.st_ino} on device {st.st_dev}, "
            f"not the {what} seen before (inode {expect.ino})"
        )


def _describe_mode(mode: int) -> str:
    return kind_of_mode(mode).words


def _check_directory(step: Step, dir_fd: int, name: str) -> None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError as exc:
        raise Refused(f"{step.target} is already gone") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise Refused(f"{step.target} is now {_describe_mode(st.st_mode)}, not a directory: left alone")
    _same_object(st, step.expect, step.target, "directory")


def _preflight_rmdir(step: Step) -> None:
    """Checked before any container is stopped, so a doomed fix stops nothing."""
    dir_fd, name = _open_parent(step.target)
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
    dir_fd, name = _open_parent(step.target)
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


def _unlink_socket(step: Step) -> str:
    dir_fd, name = _open_parent(step.target)
    try:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError as exc:
            raise Refused(f"{step.target} is already gone") from exc
        if not stat.S_ISSOCK(st.st_mode):
            raise Refused(f"{step.target} is now {_describe_mode(st.st_mode)}, not a socket: left alone")
        _same_object(st, step.expect, step.target, "socket")
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


def socket_accepts(path: str) -> bool:
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode) and probe_fd(fd).ok
    finally:
        os.close(fd)


def _wait_for_socket(step: Step, wait: float, cancel: threading.Event) -> str:
    deadline = time.monotonic() + wait
    while True:
        if socket_accepts(step.target):
            return f"a server is listening at {step.target}"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Refused(
                f"no server bound {step.target} within {wait:.0f} s; the containers were left stopped so that "
                "Docker does not create the directory again"
            )
        if cancel.wait(min(0.05, remaining)):
            raise Refused("cancelled while waiting for the server")


def recreate_advice(container: ContainerSpec) -> str:
    """How to recreate a container, which is what Docker needs after it mounted a shadow directory."""
    project = container.label("com.docker.compose.project")
    service = container.label("com.docker.compose.service")
    if project and service:
        workdir = container.label("com.docker.compose.project.working_dir")
        where = f"cd {_q(workdir)} && " if workdir else ""
        return f"{where}docker compose -p {_q(project)} up -d --force-recreate {_q(service)}"
    return f"docker rm {_q(container.name)}, then run it again with the same docker run command"


def _start(step: Step, engine: ContainerActions, socket_path: str, container: ContainerSpec) -> str:
    if not socket_accepts(socket_path):
        raise Refused(f"{socket_path} is not a listening socket right now: starting would recreate the directory")
    assert step.container_id is not None
    try:
        engine.start(step.container_id)
    except Exception as exc:
        if "directory onto a file" in str(exc) or "not a directory" in str(exc):
            # Docker made a *directory* mountpoint inside the container when it mounted the shadow directory; a
            # socket cannot be mounted onto it, so this container can only come back by being recreated.
            raise Refused(
                f"Docker cannot start {step.target} again: its own filesystem now has a directory where the socket "
                f"is mounted (made when the shadow directory was mounted). The socket is fixed on the host; "
                f"recreate the container: {recreate_advice(container)}"
            ) from exc
        raise
    return f"started {step.target}"


def _restart(step: Step, engine: ContainerActions, source: str, shared_dir: bool) -> str:
    st = os.lstat(source) if os.path.lexists(source) else None
    wanted, check = ("a directory", stat.S_ISDIR) if shared_dir else ("a socket", stat.S_ISSOCK)
    if st is None or not check(st.st_mode):
        what = "nothing" if st is None else _describe_mode(st.st_mode)
        raise Refused(f"{source} is {what} right now, not {wanted}: a restart would not help")
    assert step.container_id is not None
    engine.restart(step.container_id, timeout=CONTAINER_TIMEOUT_SECONDS)
    return f"restarted {step.target}"


def apply_plan(
    plan: Plan,
    engine: ContainerActions,
    *,
    read_only: bool = False,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    cancel: threading.Event | None = None,
    progress: Callable[[StepResult], None] | None = None,
) -> FixResult:
    """Carry out a plan, re-checking each step's preconditions at the moment it acts."""
    cancel = cancel or threading.Event()
    if plan.refusal:
        return FixResult(plan, "refused", plan.refusal)
    if not plan.changes:
        return FixResult(plan, "nothing-to-do", "this fix changes nothing: " + (plan.advice.splitlines() or [""])[0])
    if read_only:
        return FixResult(plan, "refused", "read-only mode: no change was made (run without --read-only to fix)")
    done: list[StepResult] = []
    socket_path = plan.mount.source
    stopped: list[Step] = []

    def record(result: StepResult) -> None:
        done.append(result)
        if progress:
            progress(result)

    def finish(status: str, message: str) -> FixResult:
        if stopped and status != "applied" and os.path.isdir(socket_path) and not os.path.islink(socket_path):
            # The directory is still there, so starting the containers again restores exactly what was before.
            for step in stopped:
                try:
                    assert step.container_id is not None
                    engine.start(step.container_id)
                    record(StepResult(step, True, f"started {step.target} again: nothing else was changed"))
                except Exception as exc:
                    record(StepResult(step, False, f"could not start {step.target} again: {exc}"))
        return FixResult(plan, status, message, tuple(done))

    for step in plan.steps:
        if step.op == "rmdir":
            try:
                _preflight_rmdir(step)
            except Refused as exc:
                record(StepResult(step, False, str(exc)))
                return finish("refused", str(exc))
    for step in plan.steps:
        try:
            if cancel.is_set():
                raise Refused("cancelled")
            if step.op == "stop-container":
                assert step.container_id is not None
                engine.stop(step.container_id, timeout=CONTAINER_TIMEOUT_SECONDS)
                stopped.append(step)
                message = f"stopped {step.target}"
            elif step.op == "rmdir":
                message = _rmdir(step)
            elif step.op == "unlink-socket":
                message = _unlink_socket(step)
            elif step.op == "wait-for-socket":
                message = _wait_for_socket(step, wait_seconds, cancel)
            elif step.op == "start-container":
                message = _start(step, engine, socket_path, plan.container)
            elif step.op == "restart-container":
                message = _restart(
                    step, engine, socket_path, shared_dir=step.expect is not None and step.expect.kind is Kind.DIRECTORY
                )
            else:
                raise Refused(f"unknown step {step.op}")
        except Refused as exc:
            record(StepResult(step, False, str(exc)))
            return finish("refused" if not any(r.ok for r in done) else "failed", str(exc))
        except Exception as exc:  # engine errors and the like: report, stop, keep what was done
            record(StepResult(step, False, f"{step.describe} failed: {exc}"))
            return finish("failed", f"{step.describe} failed: {exc}")
        record(StepResult(step, True, message))
    return FixResult(plan, "applied", "every step done", tuple(done))
