"""Repairing socket mounts in place: no container is stopped, restarted or recreated.

A file bind mount pins an inode. When the server re-creates its socket, a running container keeps the dead one
(``detached``); when Docker mounted a shadow directory, the container's own layer keeps a *directory* at the mount
point, so a later start fails ("Are you trying to mount a directory onto a file"). Both are repaired here:

- :func:`reattach`: clone the host socket's mount (``open_tree``) and, inside the container's mount namespace,
  detach the stale mount and move the clone onto its mount point (``umount2``, ``move_mount``);
- :func:`replace_shadow_mountpoint`: the same for a mounted shadow directory, replacing the empty mount-point
  directory of the container's layer by an empty regular file first;
- :func:`repair_upper_dir`: for a stopped container, replace that directory in its writable layer (overlay2's
  ``UpperDir``) so that ``docker start`` works again, keeping its ID and files.

Entering a mount namespace needs a single-threaded process, so the in-namespace work runs in a fresh
``python -I -m socktui._nsexec`` (never ``os.fork()`` of the threaded TUI) with the descriptors passed to it.
Every act re-checks its precondition by descriptor at the moment it acts; :class:`RepairRefused` means nothing was
changed, :class:`RepairFailed` that something was and what state is left.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from . import linux
from .fsview import ContainerRoot, kind_of_mode
from .hostpath import UntrustedSymlink, resolve

HELPER_MODULE = "socktui._nsexec"
DISABLE_ENV = "SOCKTUI_NO_LIVE_REPAIR"
HELPER_TIMEOUT_SECONDS = 20.0
# Intermediate symlinks followed while resolving a destination through the layers (the kernel's own limit).
SYMLINK_LIMIT = 40
# A regular file mount point, as runc creates it for a file bind mount.
MOUNT_POINT_MODE = 0o755
OVERLAY_OPAQUE = "trusted.overlay.opaque"
# Storage drivers whose GraphDriver.Data.UpperDir is an overlayfs upper layer: Docker's, and Podman's.
OVERLAY_DRIVERS = ("overlay2", "overlay")


class RepairRefused(Exception):
    """A precondition does not hold, or the kernel refused the first act: nothing was changed."""


class RepairFailed(Exception):
    """An act failed after an earlier one had changed something; the message says what state is left."""


@dataclass(frozen=True)
class Repaired:
    """What a live repair achieved, from the container's own view."""

    message: str
    seen: tuple[int, int]  # (st_dev, st_ino) the container sees at the destination now


# ---------------------------------------------------------------------------------------------------------------
# What the kernel allows


def kernel_support() -> str | None:
    """None when mounts can be cloned and moved here; otherwise the sentence that says why not.

    ``SOCKTUI_NO_LIVE_REPAIR=1`` answers as a kernel without the calls would (the fallbacks are tested that way).
    """
    if os.environ.get(DISABLE_ENV):
        return f"live repair is turned off ({DISABLE_ENV}=1)"
    try:
        fd = linux.open_tree(linux.AT_FDCWD, "/", linux.OPEN_TREE_CLONE | linux.OPEN_TREE_CLOEXEC)
    except OSError as exc:
        return _unsupported("open_tree", exc)
    os.close(fd)  # a detached clone that nobody attached vanishes with its last descriptor
    try:
        # Bad descriptors on purpose: EBADF says the call exists, ENOSYS that it does not.
        linux.move_mount(-1, "", -1, "", linux.MOVE_MOUNT_F_EMPTY_PATH | linux.MOVE_MOUNT_T_EMPTY_PATH)
    except OSError as exc:
        if exc.errno != errno.EBADF:
            return _unsupported("move_mount", exc)
    try:
        os.close(linux.openat2(linux.AT_FDCWD, "/", os.O_PATH | os.O_CLOEXEC, linux.RESOLVE_IN_ROOT))
    except OSError as exc:
        return _unsupported("openat2", exc)
    return None


def _unsupported(call: str, exc: OSError) -> str:
    if exc.errno == errno.ENOSYS:
        needs = "Linux 5.6" if call == "openat2" else "Linux 5.2"
        return f"this kernel has no {call}() (ENOSYS; {needs} or newer has it), so mounts cannot be repaired in place"
    if exc.errno in (errno.EPERM, errno.EACCES):
        return (
            f"the kernel refused {call}() ({linux.errno_name(exc.errno)}): moving mounts needs CAP_SYS_ADMIN, so run "
            "socktui as root (a rootless engine's containers cannot be repaired from outside)"
        )
    return f"{call}() failed here ({linux.errno_name(exc.errno)}), so mounts cannot be repaired in place"


# ---------------------------------------------------------------------------------------------------------------
# Live repairs, through the helper


def open_socket(path: str, expect: tuple[int, int] | None = None, *, directory: bool = False) -> int:
    """An ``O_PATH`` descriptor of the host socket (or, with ``directory``, the directory) at ``path``, never
    through a final symlink."""
    try:
        with resolve(path) as hp:  # no symlink on the way that anyone but root controls
            fd = os.open(hp.name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=hp.parent_fd)
    except UntrustedSymlink as exc:
        raise RepairRefused(f"{path} is reached through a symlink socktui will not follow: {exc.strerror}") from exc
    except OSError as exc:
        raise RepairRefused(f"cannot open {path}: {linux.errno_name(exc.errno)}") from exc
    st = os.fstat(fd)
    if not (stat.S_ISDIR(st.st_mode) if directory else stat.S_ISSOCK(st.st_mode)):
        os.close(fd)
        raise RepairRefused(
            f"{path} is {_what(st.st_mode)} on the host, not {'a directory' if directory else 'a socket'}"
        )
    if expect is not None and (st.st_dev, st.st_ino) != expect:
        os.close(fd)
        raise RepairRefused(f"{path} changed on the host: it is now inode {st.st_ino}, not {expect[1]}")
    return fd


def reattach(pid: int, destination: str, source_fd: int, expect_old: tuple[int, int]) -> Repaired:
    """Put the host socket ``source_fd`` names at ``destination`` in the running container ``pid``.

    Only when the container still sees the stale ``expect_old`` (device, inode) there, as a mount, not a symlink.
    ``source_fd`` may also be a directory: a socket-dir mount whose directory was re-created on the host.
    """
    return _live("reattach", pid, destination, source_fd, expect_old)


def replace_shadow_mountpoint(pid: int, destination: str, socket_fd: int, expect_dir: tuple[int, int]) -> Repaired:
    """Replace a mounted shadow directory ``expect_dir`` at ``destination`` by the host socket ``socket_fd`` names.

    The mount-point directory of the container's own layer must be empty; it becomes an empty regular file, so a
    later restart mounts the socket too.
    """
    return _live("replace-shadow", pid, destination, socket_fd, expect_dir)


def _live(op: str, pid: int, destination: str, source_fd: int, expect: tuple[int, int]) -> Repaired:
    source = os.fstat(source_fd)
    wanted = stat.S_ISSOCK(source.st_mode) or (op == "reattach" and stat.S_ISDIR(source.st_mode))
    if not wanted:
        raise RepairRefused(f"the host side is {_what(source.st_mode)}, not a socket")
    want = (source.st_dev, source.st_ino)
    fds: list[int] = []
    try:
        try:
            tree = linux.open_tree(source_fd, "", linux.OPEN_TREE_CLONE | linux.OPEN_TREE_CLOEXEC | linux.AT_EMPTY_PATH)
        except OSError as exc:
            raise RepairRefused(_unsupported("open_tree", exc)) from exc
        fds.append(tree)
        try:
            ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
            fds.append(ns)
            root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            fds.append(root)
        except OSError as exc:
            raise RepairRefused(f"cannot open process {pid}'s namespace: {linux.errno_name(exc.errno)}") from exc
        if os.fstat(ns).st_ino == os.stat("/proc/self/ns/mnt").st_ino:
            raise RepairRefused(f"process {pid} shares socktui's own mount namespace: it is not in a container")
        request = {
            "op": op,
            "ns": ns,
            "root": root,
            "tree": tree,
            "destination": destination,
            "expect": list(expect),
            "want": list(want),
        }
        reply = _run_helper(request, fds)
    finally:
        for fd in fds:
            os.close(fd)
    status, message = reply.get("status"), str(reply.get("message", ""))
    if status == "refused":
        raise RepairRefused(message)
    if status != "done":
        raise RepairFailed(message or f"the helper answered {reply!r}")
    seen = _seen_from_host(pid, destination)
    if seen != want:
        raise RepairFailed(
            f"the helper reported success, but from the host {destination} in process {pid}'s root is {seen}, "
            f"not the socket {want}"
        )
    return Repaired(message, want)


def helper_argv() -> list[str]:
    """``python -I`` running the helper from the very copy of socktui that is running now (however it was
    installed, even from a source tree on ``PYTHONPATH``, which ``-I`` ignores)."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bootstrap = (
        f"import sys, runpy; sys.path.insert(0, {package_parent!r}); "
        f"runpy.run_module({HELPER_MODULE!r}, run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-I", "-c", bootstrap]


def _run_helper(request: dict[str, object], fds: Sequence[int]) -> dict[str, object]:
    import subprocess  # only a live repair runs the helper: a check never does

    try:
        done = subprocess.run(
            helper_argv(),
            input=json.dumps(request),
            capture_output=True,
            text=True,
            pass_fds=tuple(fds),
            timeout=HELPER_TIMEOUT_SECONDS,
            check=False,
            env={"PATH": os.defpath},
        )
    except subprocess.TimeoutExpired as exc:
        raise RepairFailed(f"the namespace helper did not answer within {HELPER_TIMEOUT_SECONDS:.0f} s") from exc
    line = done.stdout.strip().splitlines()[-1:] or [""]
    try:
        reply = json.loads(line[0])
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        # It died before answering: it changes nothing before it has checked, so this is a refusal only if it said
        # nothing at all; say what it printed either way.
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RepairFailed(f"the namespace helper exited with status {done.returncode}: {tail}")
    return reply


def _seen_from_host(pid: int, destination: str) -> tuple[int, int] | None:
    """What the container sees at ``destination``, resolved in its root from the host (``RESOLVE_IN_ROOT``)."""
    try:
        with ContainerRoot(pid) as root:
            seen = root.lstat(destination)
    except OSError:
        return None
    return seen.identity if seen.dev or seen.ino else None


# ---------------------------------------------------------------------------------------------------------------
# A stopped container's writable layer


@dataclass(frozen=True)
class LayerEntry:
    """What a container's layers hold at a destination, resolved the way the merged view would resolve it."""

    path: str  # the resolved path inside the container, with no symlinks in it
    layer: int | None  # index in (upper, *lowers) of the layer that provides it; None when no layer has it
    mode: int = 0
    empty: bool | None = None  # for a directory in the upper layer: whether it has no entries
    in_lower: bool = False  # a lower (image) layer also has something at that path


def _open_layer(path: str) -> int:
    try:
        return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise RepairRefused(f"cannot open the layer {path}: {linux.errno_name(exc.errno)}") from exc


def _lookup(layer_fd: int, parts: Sequence[str]) -> os.stat_result | None:
    if not parts:
        return os.fstat(layer_fd)
    try:
        fd = linux.openat2(
            layer_fd,
            "/".join(parts),
            os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC,
            linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_SYMLINKS | linux.RESOLVE_NO_MAGICLINKS,
        )
    except OSError:
        return None  # missing, or a symlink higher up in this layer: this layer has nothing at that path
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(layer_fd: int, parts: Sequence[str]) -> bool:
    try:
        fd = linux.openat2(
            layer_fd,
            "/".join(parts) or ".",
            os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
            linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_SYMLINKS | linux.RESOLVE_NO_MAGICLINKS,
        )
    except OSError:
        return False
    try:
        return os.getxattr(fd, OVERLAY_OPAQUE) == b"y"
    except OSError:
        return False
    finally:
        os.close(fd)


def _readlink(layer_fd: int, parts: Sequence[str]) -> str:
    parent = linux.openat2(
        layer_fd,
        "/".join(parts[:-1]) or ".",
        os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
        linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_SYMLINKS | linux.RESOLVE_NO_MAGICLINKS,
    )
    try:
        return os.readlink(parts[-1], dir_fd=parent)
    finally:
        os.close(parent)


def _first(layers: Sequence[int], visible: int, parts: Sequence[str]) -> tuple[int, os.stat_result] | None:
    """The topmost of the first ``visible`` layers that has ``parts``, as overlayfs picks it (whiteouts hide)."""
    for index in range(visible):
        st = _lookup(layers[index], parts)
        if st is None:
            continue
        if _is_whiteout(st):
            return None
        return index, st
    return None


def resolve_in_layers(layers: Sequence[int], destination: str) -> LayerEntry:
    """Resolve ``destination`` through overlay layers (upper first), following intermediate symlinks in the merged
    view as runc does when it makes a mount point; the final component is never followed."""
    pending = [p for p in destination.split("/") if p]
    resolved: list[str] = []
    visible = len(layers)  # an opaque directory hides the layers below it for everything underneath
    links = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            visible = _visible_at(layers, resolved)
            continue
        candidate = [*resolved, part]
        found = _first(layers, visible, candidate)
        if found is None:
            if pending:  # a missing directory on the way: nothing can be at the destination
                return LayerEntry("/" + "/".join([*candidate, *pending]), None)
            return LayerEntry("/" + "/".join(candidate), None)
        index, st = found
        if stat.S_ISLNK(st.st_mode) and pending:
            links += 1
            if links > SYMLINK_LIMIT:
                raise RepairRefused(f"too many symlinks resolving {destination} in the container's layers")
            target = _readlink(layers[index], candidate)
            pending = [p for p in target.split("/") if p] + pending
            if target.startswith("/"):
                resolved = []
            visible = _visible_at(layers, resolved)
            continue
        resolved = candidate
        if stat.S_ISDIR(st.st_mode) and _opaque(layers[index], resolved):
            visible = min(visible, index + 1)
        if not pending:
            in_lower = any(
                (low := _lookup(layers[i], resolved)) is not None and not _is_whiteout(low)
                for i in range(1, _visible_at(layers, resolved[:-1]))
            )
            empty = None
            if index == 0 and stat.S_ISDIR(st.st_mode):
                empty = _is_empty(layers[0], resolved)
            return LayerEntry("/" + "/".join(resolved), index, st.st_mode, empty, in_lower)
    return LayerEntry("/", 0, stat.S_IFDIR, None, True)


def _visible_at(layers: Sequence[int], parts: Sequence[str]) -> int:
    visible = len(layers)
    for depth in range(len(parts) + 1):
        for index in range(visible):
            st = _lookup(layers[index], parts[:depth])
            if st is not None and stat.S_ISDIR(st.st_mode) and _opaque(layers[index], parts[:depth]):
                visible = min(visible, index + 1)
                break
    return visible


def _is_empty(layer_fd: int, parts: Sequence[str]) -> bool | None:
    try:
        fd = linux.openat2(
            layer_fd,
            "/".join(parts),
            os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
            linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_SYMLINKS | linux.RESOLVE_NO_MAGICLINKS,
        )
    except OSError:
        return None
    try:
        return not os.listdir(fd)
    finally:
        os.close(fd)


def layer_mount_point(upper_dir: str, lower_dirs: Sequence[str], destination: str) -> LayerEntry:
    """What a stopped container's layers hold at ``destination`` (read only)."""
    layers = [_open_layer(d) for d in (upper_dir, *lower_dirs)]
    try:
        return resolve_in_layers(layers, destination)
    finally:
        for fd in layers:
            os.close(fd)


def overlay_in_use(upper_dir: str, mountinfo: str = "/proc/self/mountinfo") -> bool:
    """True when an overlay mount uses ``upper_dir`` as its upper layer: the container is running."""
    wanted = "upperdir=" + os.path.normpath(upper_dir)
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                _, _, tail = line.partition(" - ")
                fields = tail.split(" ", 2)
                if len(fields) == 3 and fields[0] == "overlay":
                    options = fields[2].strip().split(",")
                    if wanted in options:
                        return True
    except OSError:
        return False
    return False


def repair_upper_dir(upper_dir: str, lower_dirs: Sequence[str], destination: str) -> str:
    """Replace the empty directory at ``destination`` in a stopped container's upper layer by an empty file.

    Only when it is an empty directory, lives in the upper layer (no lower, image layer has that path) and no
    overlay mount uses the layer (the container is not running). Returns what was done.
    """
    if overlay_in_use(upper_dir):
        raise RepairRefused("the container's layer is mounted: it is running, so it is repaired live or not at all")
    layers = [_open_layer(d) for d in (upper_dir, *lower_dirs)]
    try:
        entry = resolve_in_layers(layers, destination)
        where = destination if entry.path == destination else f"{destination} (resolved to {entry.path})"
        if entry.layer is None:
            raise RepairRefused(f"the container's layers have nothing at {where}: there is nothing to repair")
        if stat.S_ISLNK(entry.mode):
            raise RepairRefused(f"a symlink stands at {where} in the container's layer: left alone")
        if not stat.S_ISDIR(entry.mode):
            raise RepairRefused(f"{where} is already {_what(entry.mode)} in the container's layer: nothing to repair")
        if entry.layer != 0 or entry.in_lower:
            raise RepairRefused(f"the directory at {where} comes from the image, not from the container's own layer")
        if entry.empty is not True:
            raise RepairRefused(f"the directory at {where} in the container's layer is not empty: left alone")
        parent_parts = [p for p in posixpath.dirname(entry.path).split("/") if p]
        name = posixpath.basename(entry.path)
        parent = linux.openat2(
            layers[0],
            "/".join(parent_parts) or ".",
            os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
            linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_SYMLINKS | linux.RESOLVE_NO_MAGICLINKS,
        )
        try:
            if overlay_in_use(upper_dir):
                raise RepairRefused("the container started meanwhile: left alone")
            try:
                os.rmdir(name, dir_fd=parent)
            except OSError as exc:
                raise RepairRefused(
                    f"rmdir {entry.path} in the container's layer failed: {linux.errno_name(exc.errno)}"
                ) from exc
            try:
                fd = os.open(
                    name,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    MOUNT_POINT_MODE,
                    dir_fd=parent,
                )
            except OSError as exc:
                raise RepairFailed(
                    f"removed the empty directory {entry.path} from the container's layer, but creating the file "
                    f"failed ({linux.errno_name(exc.errno)}): the next start will create the mount point itself"
                ) from exc
            os.close(fd)
        finally:
            os.close(parent)
        return f"the mount point {entry.path} in the container's layer is now an empty file, as a socket mount needs"
    finally:
        for fd in layers:
            os.close(fd)


def _what(mode: int) -> str:
    return kind_of_mode(mode).words
