"""The part of a live repair that runs inside a container's mount namespace.

``setns(CLONE_NEWNS)`` fails with EINVAL in a multi-threaded process (the TUI has threads, and ``os.fork()`` of a
threaded process is unsafe), so :mod:`socktui.remount` runs this module as a fresh single-threaded interpreter:
``python -I -m socktui._nsexec``, with the descriptors it needs passed by ``pass_fds`` and one JSON request on
stdin. It imports the standard library and :mod:`socktui.linux` (itself stdlib-only) and nothing else, and answers
with one JSON line on stdout: ``{"status": "done" | "refused" | "failed", "message": str, "seen": [dev, ino]}``.

``refused`` means nothing was changed. Every check is made on a descriptor of the very object the next act touches:
the stale mount is detached through its own descriptor (``umount2`` of ``/proc/self/fd/N`` in *our* procfs, never
a path that a container could have re-pointed), and the new mount is moved onto a descriptor of the mount point.
When a later act fails, the earlier ones are undone from a clone of the mount taken before it was detached.

Requests (descriptors are numbers in this process):
- ``reattach``: ``ns``, ``root`` (the container's ``/proc/PID/root``), ``tree`` (a detached clone of the host
  socket's mount), ``destination``, ``expect`` (the stale ``[dev, ino]`` the container sees), ``want`` (the host's).
- ``replace-shadow``: the same, with ``expect`` the shadow directory's ``[dev, ino]``: the empty mount-point
  directory of the container's own layer is replaced by an empty regular file before the socket is moved on it.
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
import sys
from typing import Any

from socktui import linux

IN_ROOT = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS
ONE_NAME = linux.RESOLVE_BENEATH | linux.RESOLVE_NO_SYMLINKS | linux.RESOLVE_NO_MAGICLINKS
# The mount-point file runc itself makes for a file bind mount has this mode.
MOUNT_POINT_MODE = 0o755


class Refusal(Exception):
    """A precondition does not hold: nothing has been changed."""


class Broken(Exception):
    """An act failed after an earlier one changed something; the message says what state is left."""


def _what(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "something else"


def _bare(kind: str) -> str:
    """'a socket' -> 'socket'."""
    return kind.split(" ", 1)[-1]


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino]


class Namespace:
    """Descriptors of the destination's parent and of what is mounted at the destination, inside the namespace."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.destination = str(request["destination"])
        parent, self.name = posixpath.split(posixpath.normpath("/" + self.destination.lstrip("/")))
        if not self.name or self.name in (".", ".."):
            raise Refusal(f"{self.destination!r} does not name an entry")
        # Our own procfs, opened before entering: the container's /proc/self would not name this process.
        self.own_fds = os.open("/proc/self/fd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.own_fdinfo = os.open("/proc/self/fdinfo", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        linux.setns(int(request["ns"]), linux.CLONE_NEWNS)
        try:
            self.parent = linux.openat2(
                int(request["root"]), parent.lstrip("/") or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, IN_ROOT
            )
        except OSError as exc:
            raise Refusal(f"cannot resolve {parent} inside the container: {linux.errno_name(exc.errno)}") from exc

    def open_entry(self, flags: int = os.O_PATH) -> int:
        return linux.openat2(self.parent, self.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, ONE_NAME)

    def mounted(self, expect: list[int], want_kind: str) -> int:
        """A descriptor of the mount at the destination, after checking it is the object that was diagnosed."""
        try:
            fd = self.open_entry()
        except FileNotFoundError as exc:
            raise Refusal(f"nothing is at {self.destination} inside the container any more") from exc
        except OSError as exc:
            raise Refusal(
                f"cannot open {self.destination} inside the container: {linux.errno_name(exc.errno)}"
            ) from exc
        st = os.fstat(fd)
        if stat.S_ISLNK(st.st_mode):
            raise Refusal(f"a symlink stands at {self.destination} inside the container: left alone")
        if _what(st.st_mode) != want_kind:
            raise Refusal(
                f"{self.destination} inside the container is {_what(st.st_mode)}, not {want_kind}: left alone"
            )
        if _identity(st) != expect:
            raise Refusal(
                f"{self.destination} inside the container is inode {st.st_ino} on device {st.st_dev}, not the "
                f"{_bare(want_kind)} diagnosed (inode {expect[1]}): left alone"
            )
        if not self.is_mount(fd):
            raise Refusal(f"{self.destination} inside the container is not a mount: left alone")
        return fd

    def mount_id(self, fd: int) -> str:
        info = os.open(str(fd), os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.own_fdinfo)
        try:
            text = os.read(info, 4096).decode("ascii", "replace")
        finally:
            os.close(info)
        return next((line.split()[1] for line in text.splitlines() if line.startswith("mnt_id:")), "")

    def is_mount(self, fd: int) -> bool:
        """The entry was reached by crossing into another mount than its parent's: something is mounted there."""
        return self.mount_id(fd) != self.mount_id(self.parent)

    def detach(self, fd: int) -> None:
        """Lazily unmount exactly the mount ``fd`` is the root of (named through our own /proc/self/fd)."""
        os.fchdir(self.own_fds)
        linux.umount2(str(fd), linux.MNT_DETACH)

    def move_onto(self, tree: int, target_fd: int) -> None:
        linux.move_mount(tree, "", target_fd, "", linux.MOVE_MOUNT_F_EMPTY_PATH | linux.MOVE_MOUNT_T_EMPTY_PATH)

    def seen(self) -> list[int] | None:
        try:
            fd = self.open_entry()
        except OSError:
            return None
        try:
            return _identity(os.fstat(fd))
        finally:
            os.close(fd)


def _clone(fd: int) -> int:
    """A detached copy of the mount ``fd`` is the root of, kept to put it back if a later act fails."""
    return linux.open_tree(fd, "", linux.OPEN_TREE_CLONE | linux.OPEN_TREE_CLOEXEC | linux.AT_EMPTY_PATH)


def reattach(request: dict[str, Any]) -> tuple[str, list[int] | None]:
    ns = Namespace(request)
    want, tree = list(request["want"]), int(request["tree"])
    kind = _what(os.fstat(tree).st_mode)  # a socket, or the directory of a socket-dir mount
    stale = ns.mounted(list(request["expect"]), kind)
    try:
        spare = _clone(stale)
    except OSError as exc:
        raise Refusal(f"cannot clone the mount at {ns.destination}: {linux.errno_name(exc.errno)}") from exc
    try:
        ns.detach(stale)
    except OSError as exc:
        raise Refusal(f"umount {ns.destination} inside the container failed: {linux.errno_name(exc.errno)}") from exc
    try:
        point = ns.open_entry()
        st = os.fstat(point)
        if stat.S_ISLNK(st.st_mode) or stat.S_ISDIR(st.st_mode) != (kind == "a directory"):
            raise OSError(0, f"the mount point under it is {_what(st.st_mode)}")
        if ns.is_mount(point):
            raise OSError(0, "another mount lies under it")
        ns.move_onto(tree, point)
    except OSError as exc:
        why = exc.strerror if exc.errno == 0 else linux.errno_name(exc.errno)
        raise Broken(
            _put_back(ns, spare, f"moving the host's {_bare(kind)} onto {ns.destination} failed ({why})")
        ) from exc
    seen = ns.seen()
    if seen != want:
        raise Broken(f"after the move {ns.destination} inside the container is {seen}, not the host's {want}")
    return f"{ns.destination} inside the container is now the host's {_bare(kind)} (inode {want[1]})", seen


def _put_back(ns: Namespace, spare: int, what: str) -> str:
    try:
        point = ns.open_entry()
        ns.move_onto(spare, point)
    except OSError as exc:
        return f"{what}, and putting the old mount back failed too ({linux.errno_name(exc.errno)})"
    return f"{what}; the old mount was put back"


def replace_shadow(request: dict[str, Any]) -> tuple[str, list[int] | None]:
    ns = Namespace(request)
    want, tree = list(request["want"]), int(request["tree"])
    shadow = ns.mounted(list(request["expect"]), "a directory")
    try:
        spare = _clone(shadow)
    except OSError as exc:
        raise Refusal(f"cannot clone the mount at {ns.destination}: {linux.errno_name(exc.errno)}") from exc
    try:
        ns.detach(shadow)
    except OSError as exc:
        raise Refusal(f"umount {ns.destination} inside the container failed: {linux.errno_name(exc.errno)}") from exc
    try:
        point = ns.open_entry(os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise Broken(_put_back(ns, spare, f"the mount point under {ns.destination} is not a directory")) from exc
    try:
        if ns.is_mount(point):
            raise Broken(_put_back(ns, spare, f"another mount lies under {ns.destination}; left alone"))
        if os.listdir(point):
            raise Broken(_put_back(ns, spare, f"the mount-point directory {ns.destination} is not empty; left alone"))
    finally:
        os.close(point)
    try:
        os.rmdir(ns.name, dir_fd=ns.parent)
    except OSError as exc:
        why = f"removing the empty mount-point directory {ns.destination} failed ({linux.errno_name(exc.errno)})"
        raise Broken(_put_back(ns, spare, why)) from exc
    try:
        point = os.open(
            ns.name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            MOUNT_POINT_MODE,
            dir_fd=ns.parent,
        )
    except OSError as exc:
        why = f"creating the mount-point file failed ({linux.errno_name(exc.errno)})"
        raise Broken(_restore_dir(ns, spare, why)) from exc
    try:
        ns.move_onto(tree, point)
    except OSError as exc:
        os.close(point)
        os.unlink(ns.name, dir_fd=ns.parent)
        why = f"moving the host's socket onto {ns.destination} failed ({linux.errno_name(exc.errno)})"
        raise Broken(_restore_dir(ns, spare, why)) from exc
    os.close(point)
    seen = ns.seen()
    if seen != want:
        raise Broken(f"after the move {ns.destination} inside the container is {seen}, not the host's socket {want}")
    return (
        f"{ns.destination} inside the container is now the host's socket (inode {want[1]}); its mount point is a "
        "file, so a restart mounts it too",
        seen,
    )


def _restore_dir(ns: Namespace, spare: int, what: str) -> str:
    try:
        os.mkdir(ns.name, 0o755, dir_fd=ns.parent)
    except OSError as exc:
        return f"{what}, and re-creating the mount-point directory failed too ({linux.errno_name(exc.errno)})"
    return _put_back(ns, spare, what)


OPERATIONS = {"reattach": reattach, "replace-shadow": replace_shadow}


def main() -> int:
    seen: list[int] | None = None
    try:
        request = json.loads(sys.stdin.read())
        operation = OPERATIONS[str(request["op"])]
        message, seen = operation(request)
        reply: dict[str, Any] = {"status": "done", "message": message}
    except Refusal as exc:
        reply = {"status": "refused", "message": str(exc)}
    except Broken as exc:
        reply = {"status": "failed", "message": str(exc)}
    except OSError as exc:
        # Raised before anything was changed (setns, the first opens): a refusal with the kernel's own errno.
        reply = {"status": "refused", "message": f"{exc.strerror} ({linux.errno_name(exc.errno)})", "errno": exc.errno}
    except (KeyError, ValueError, TypeError) as exc:
        reply = {"status": "refused", "message": f"bad request: {exc!r}"}
    reply["seen"] = seen
    sys.stdout.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
