"""The steps of a live repair, shared by ``reattach-socket``, ``remove-shadow-dir`` and ``repair-mount-point``.

The mechanics are in :mod:`socktui.remount`; here they become plan steps with their words, their preflight checks
(read only, so a doomed fix changes nothing) and their acts. Each act re-checks by descriptor at the moment it acts:
``remount`` refuses (nothing changed) or fails (it says what state is left), and that becomes ``Refused`` or a
failed step.
"""

from __future__ import annotations

import os
import posixpath
import stat
import threading
import time
from collections.abc import Sequence

from .. import remount
from ..fsview import ContainerRoot
from ..linux import errno_name
from ..listeners import container_of
from ..model import ContainerSpec, Kind, MountPoint, MountSpec, PathStat
from ..socktable import listener_at, read_table
from .base import Inside, Refused, Run, Step, StepKind, describe_mode, socket_accepts

LIVE = "live: no container is stopped or restarted"


def names_verb(containers: Sequence[ContainerSpec], singular: str, plural: str) -> str:
    """'web keeps' / 'web, db keep': names and a verb that agrees with them."""
    names = ", ".join(c.name for c in containers)
    return f"{names} {singular if len(containers) == 1 else plural}"


def live_unsupported() -> str | None:
    """Why mounts cannot be repaired in place here (old kernel, no privilege), or None when they can."""
    return remount.kernel_support()


def mount_of(container: ContainerSpec, source: str) -> MountSpec | None:
    norm = posixpath.normpath(source)
    return next((m for m in container.mounts if posixpath.normpath(m.source) == norm), None)


def read_only_parent(pid: int, destination: str) -> bool:
    """The directory that holds ``destination`` inside the running container is on a read-only filesystem (a
    ``--read-only`` root filesystem): the mount point there cannot be removed or made a file while it runs."""
    parent = posixpath.dirname(posixpath.normpath("/" + destination.lstrip("/")))
    try:
        with ContainerRoot(pid) as root, root.opened(parent, follow=True) as fd:
            return bool(os.fstatvfs(fd).f_flag & os.ST_RDONLY)
    except OSError:
        return False  # not seen: the preflight and the helper will say what is wrong


def read_only_mount_points(containers: Sequence[ContainerSpec], source: str) -> str | None:
    """Why a mounted shadow directory cannot be replaced live in these running containers, or None."""
    stuck = []
    for c in containers:
        held = mount_of(c, source)
        if c.pid and held is not None and read_only_parent(c.pid, held.destination):
            stuck.append(f"{c.name} ({posixpath.dirname(held.destination)})")
    if not stuck:
        return None
    return (
        f"the directory holding the mount point is read-only inside {', '.join(stuck)} (a --read-only root "
        "filesystem), so the mount point cannot be made a file while it runs"
    )


def layers_of(container: ContainerSpec) -> tuple[str, ...] | None:
    """The container's overlay layers (its own first), or None when they cannot be repaired here."""
    if container.storage_driver not in remount.OVERLAY_DRIVERS or not container.upper_dir:
        return None
    return (container.upper_dir, *container.lower_dirs)


def layer_problem(container: ContainerSpec) -> str:
    driver = container.storage_driver or "not reported"
    if container.storage_driver in remount.OVERLAY_DRIVERS:
        return f"the engine did not report {container.name}'s writable layer (GraphDriver.Data.UpperDir)"
    return f"{container.name}'s storage driver is {driver}: socktui repairs only overlay layers (overlay2)"


# ---------------------------------------------------------------------------------------------------------------
# Steps


def reattach_step(container: ContainerSpec, destination: str, seen: PathStat, host: PathStat) -> Step:
    """Put the host's current socket (or directory) where a running container still has the stale one."""
    if seen.kind is Kind.DIRECTORY and host.kind is Kind.SOCKET:
        return replace_step(container, destination, seen, host)
    what = "directory" if host.kind is Kind.DIRECTORY else "socket"
    return Step(
        StepKind.REATTACH_SOCKET,
        container.name,
        f"in {container.name} (it keeps running): detach the stale mount at {destination} (inode {seen.ino}) and "
        f"mount the host's {what} (inode {host.ino}) in its place",
        container_id=container.id,
        expect=seen,
        inside=Inside(destination, pid=container.pid, source=host),
    )


def replace_step(container: ContainerSpec, destination: str, shadow: PathStat, host: PathStat | None) -> Step:
    """A running container's mounted shadow directory becomes the socket; its mount point becomes a file."""
    return Step(
        StepKind.REPLACE_MOUNT_POINT,
        container.name,
        f"in {container.name} (it keeps running): detach the shadow directory at {destination}, replace the empty "
        "mount-point directory in its own layer by an empty file, and mount the socket there",
        container_id=container.id,
        expect=shadow,
        inside=Inside(destination, pid=container.pid, source=host),
    )


def repair_step(container: ContainerSpec, destination: str, point: MountPoint | None) -> Step:
    """A stopped container's layer: the empty directory at the mount point becomes an empty file."""
    layers = layers_of(container) or ()
    where = destination if point is None or point.path == destination else f"{destination} ({point.path})"
    return Step(
        StepKind.REPAIR_MOUNT_POINT,
        container.name,
        f"in {container.name}'s own layer (it is stopped), replace the empty directory {where} by an empty file, "
        "so that Docker can mount the socket there again",
        container_id=container.id,
        inside=Inside(destination, layers=layers),
    )


def wait_step(source: str, wait: float) -> Step:
    return Step(
        StepKind.WAIT_FOR_LISTENER,
        source,
        f"wait up to {wait:.0f} s for the server to bind {source} (the kernel's socket table: no connect)",
    )


# ---------------------------------------------------------------------------------------------------------------
# Preflight: read only


def check_view(step: Step) -> None:
    """The running container still sees, at the destination, the object the step was planned for."""
    inside, expect = step.inside, step.expect
    assert inside is not None and inside.pid is not None and expect is not None
    still_theirs(step)
    try:
        with ContainerRoot(inside.pid) as root:
            seen = root.lstat(inside.destination)
    except OSError as exc:
        raise Refused(f"cannot look into {step.target} (process {inside.pid}): {errno_name(exc.errno)}", step) from exc
    if seen.kind is Kind.SYMLINK:
        raise Refused(f"a symlink stands at {inside.destination} inside {step.target}: left alone", step)
    if seen.kind is not expect.kind or seen.identity != expect.identity:
        raise Refused(
            f"{step.target} now sees {seen.kind.words} (inode {seen.ino}) at {inside.destination}, not the "
            f"{expect.kind.value} diagnosed (inode {expect.ino}): diagnose again",
            step,
        )
    if step.op is StepKind.REPLACE_MOUNT_POINT and read_only_parent(inside.pid, inside.destination):
        raise Refused(
            f"the directory holding {inside.destination} inside {step.target} is read-only: its mount point cannot "
            "be made a file while it runs",
            step,
        )


def still_theirs(step: Step) -> None:
    """The process is still the container's (its cgroup names the container id): a pid can be reused."""
    inside = step.inside
    assert inside is not None and inside.pid is not None and step.container_id is not None
    if container_of(inside.pid, {step.container_id: step.target}) is None:
        raise Refused(
            f"process {inside.pid} is no longer {step.target}'s (it restarted or stopped since the look): look again",
            step,
        )


def check_layer(step: Step) -> None:
    """The stopped container's layer has an empty directory of its own at the destination."""
    inside = step.inside
    assert inside is not None
    if not inside.layers:
        raise Refused(f"{step.target}'s writable layer is not known: it cannot be repaired here", step)
    upper, *lowers = inside.layers
    if remount.overlay_in_use(upper):
        raise Refused(f"{step.target} is running: its layer is repaired only while it is stopped", step)
    try:
        entry = remount.layer_mount_point(upper, lowers, inside.destination)
    except remount.RepairRefused as exc:
        raise Refused(f"{step.target}: {exc}", step) from exc
    if entry.layer is None or not stat.S_ISDIR(entry.mode):
        what = "nothing" if entry.layer is None else describe_mode(entry.mode)
        raise Refused(f"{step.target}'s layer has {what} at {entry.path}, not a directory: nothing to repair", step)
    if entry.layer != 0 or entry.in_lower:
        raise Refused(f"the directory {entry.path} in {step.target} comes from the image: left alone", step)
    if entry.empty is not True:
        raise Refused(f"the directory {entry.path} in {step.target}'s layer is not empty: left alone", step)


def preflight(steps: Sequence[Step]) -> None:
    """Every live step's precondition, before anything changes. A layer that an earlier step stops the container
    for is checked when its turn comes (it is mounted until then)."""
    stopped_first: set[str | None] = set()
    for step in steps:
        if step.op is StepKind.STOP_CONTAINER:
            stopped_first.add(step.container_id)
        elif step.op in (StepKind.REATTACH_SOCKET, StepKind.REPLACE_MOUNT_POINT):
            check_view(step)
        elif step.op is StepKind.REPAIR_MOUNT_POINT and step.container_id not in stopped_first:
            check_layer(step)


# ---------------------------------------------------------------------------------------------------------------
# Acts


class LiveRepairFailed(Exception):
    """A live step changed something and then failed: the message says what state is left."""


def act(step: Step, run: Run) -> str:
    if step.op is StepKind.REPAIR_MOUNT_POINT:
        return _repair_layer(step)
    if step.op in (StepKind.REATTACH_SOCKET, StepKind.REPLACE_MOUNT_POINT):
        return _remount(step, run.plan.mount.source)
    if step.op is StepKind.WAIT_FOR_LISTENER:
        pids = [s.inside.pid for s in run.plan.steps if s.inside is not None and s.inside.pid]
        return wait_for_listener(step.target, run.wait_seconds, run.cancel, pids)
    raise Refused(f"unknown step {step.op}")


def _remount(step: Step, source: str) -> str:
    inside, expect = step.inside, step.expect
    assert inside is not None and inside.pid is not None and expect is not None
    host = inside.source
    directory = host is not None and host.kind is Kind.DIRECTORY
    still_theirs(step)
    try:
        fd = remount.open_socket(source, host.identity if host is not None else None, directory=directory)
    except remount.RepairRefused as exc:
        raise Refused(str(exc)) from exc
    try:
        if step.op is StepKind.REPLACE_MOUNT_POINT:
            done = remount.replace_shadow_mountpoint(inside.pid, inside.destination, fd, expect.identity)
        else:
            done = remount.reattach(inside.pid, inside.destination, fd, expect.identity)
    except remount.RepairRefused as exc:
        raise Refused(f"{step.target}: {exc}") from exc
    except remount.RepairFailed as exc:
        raise LiveRepairFailed(f"{step.target}: {exc}") from exc
    finally:
        os.close(fd)
    if directory:
        return f"{step.target} sees the host's directory {source} at {inside.destination} again; it kept running"
    bound = (
        "a listener is bound to it"
        if listener_at(done.seen, [inside.pid]) is not None
        else "no listener is bound to it right now (start the server)"
    )
    now = f"{step.target} now sees the host's socket at {inside.destination} (inode {done.seen[1]})"
    return f"{now}, {bound}; it kept running"


def _repair_layer(step: Step) -> str:
    inside = step.inside
    assert inside is not None
    check_layer(step)
    upper, *lowers = inside.layers
    try:
        message = remount.repair_upper_dir(upper, lowers, inside.destination)
    except remount.RepairRefused as exc:
        raise Refused(f"{step.target}: {exc}") from exc
    except remount.RepairFailed as exc:
        raise LiveRepairFailed(f"{step.target}: {exc}") from exc
    return f"{step.target}: {message}"


def wait_for_listener(path: str, wait: float, cancel: threading.Event, pids: Sequence[int] = ()) -> str:
    """Until a listening socket is bound to the file at ``path``, seen in the socket table (no connect)."""
    deadline = time.monotonic() + wait
    try:
        by_table = read_table().has_identities
    except OSError:
        by_table = False
    while True:
        if _listening(path, pids, by_table):
            return f"a server is listening at {path}"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Refused(f"no server bound {path} within {wait:.0f} s")
        if cancel.wait(min(0.05, remaining)):
            raise Refused("cancelled while waiting for the server")


def _listening(path: str, pids: Sequence[int], by_table: bool) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISSOCK(st.st_mode):
        return False
    if not by_table:  # no sock_diag here: only a connect can tell
        return socket_accepts(path)
    return listener_at((st.st_dev, st.st_ino), pids) is not None
