"""Linux system calls that Python's ``os`` module lacks, in one place.

socktui acts as root on paths that other users and containers control, so it resolves and acts through
descriptors. The calls for that (``openat2``, ``renameat2``), for repairing mounts in place (``open_tree``,
``move_mount``, ``setns``, ``umount2``) and the kernel's own device-number encoding live here. Each wrapper raises
``OSError`` with the real errno, the way ``os`` functions do, so callers handle ENOSYS, EPERM and the rest as usual.

Nothing here decides anything; it only speaks to the kernel.
"""

from __future__ import annotations

import ctypes
import errno
import os

# The syscalls added since Linux 5.0 share one number on every architecture (the "generic" table).
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_OPENAT2 = 437
# renameat2 predates that; glibc 2.28+ wraps it, so it is called by name.

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

OPEN_TREE_CLONE = 0x1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC

MOVE_MOUNT_F_SYMLINKS = 0x01
MOVE_MOUNT_F_AUTOMOUNTS = 0x02
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_SYMLINKS = 0x10
MOVE_MOUNT_T_AUTOMOUNTS = 0x20
MOVE_MOUNT_T_EMPTY_PATH = 0x40

MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

RENAME_NOREPLACE = 0x1
RENAME_EXCHANGE = 0x2


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def errno_name(code: int | None) -> str:
    """``ENOENT`` for 2: the name users can search for."""
    if code is None:
        return "EUNKNOWN"
    return errno.errorcode.get(code, f"E{code}")


def _encode(path: str | bytes) -> bytes:
    encoded = os.fsencode(path)
    if b"\0" in encoded:
        raise OSError(errno.EINVAL, "path contains a NUL byte", os.fsdecode(encoded))
    return encoded


def _check(result: int, what: str | bytes) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), os.fsdecode(what) if isinstance(what, bytes) else what)
    return int(result)


def openat2(dirfd: int, path: str | bytes, flags: int, resolve: int, mode: int = 0) -> int:
    """``openat2(2)``: open ``path`` relative to ``dirfd`` under the ``RESOLVE_*`` rules."""
    how = _OpenHow(flags=flags, mode=mode, resolve=resolve)
    encoded = _encode(path)
    fd = _syscall(SYS_OPENAT2, ctypes.c_int(dirfd), ctypes.c_char_p(encoded), ctypes.byref(how), ctypes.sizeof(how))
    return _check(fd, encoded)


def renameat2(olddirfd: int, oldname: str | bytes, newdirfd: int, newname: str | bytes, flags: int = 0) -> None:
    """``renameat2(2)``: ``RENAME_NOREPLACE`` fails with EEXIST instead of replacing; ``RENAME_EXCHANGE`` swaps."""
    old, new = _encode(oldname), _encode(newname)
    result = _libc.renameat2(ctypes.c_int(olddirfd), old, ctypes.c_int(newdirfd), new, ctypes.c_uint(flags))
    _check(result, old)


def open_tree(dirfd: int, path: str | bytes, flags: int) -> int:
    """``open_tree(2)``: with ``OPEN_TREE_CLONE``, a detached copy of the mount at ``path``, ready to move."""
    encoded = _encode(path)
    fd = _syscall(SYS_OPEN_TREE, ctypes.c_int(dirfd), ctypes.c_char_p(encoded), ctypes.c_uint(flags))
    return _check(fd, encoded)


def move_mount(from_dirfd: int, from_path: str | bytes, to_dirfd: int, to_path: str | bytes, flags: int) -> None:
    """``move_mount(2)``: attach the mount named by ``from`` at ``to`` (``*_EMPTY_PATH`` means the fd itself)."""
    source, target = _encode(from_path), _encode(to_path)
    result = _syscall(
        SYS_MOVE_MOUNT,
        ctypes.c_int(from_dirfd),
        ctypes.c_char_p(source),
        ctypes.c_int(to_dirfd),
        ctypes.c_char_p(target),
        ctypes.c_uint(flags),
    )
    _check(result, target)


def setns(fd: int, nstype: int) -> None:
    """``setns(2)``. Entering a mount namespace needs a single-threaded process (EINVAL otherwise)."""
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def umount2(path: str | bytes, flags: int) -> None:
    """``umount2(2)``; with ``MNT_DETACH`` the mount disappears from the tree at once (lazy unmount)."""
    encoded = _encode(path)
    _check(_libc.umount2(ctypes.c_char_p(encoded), ctypes.c_int(flags)), encoded)


def kernel_dev(st_dev: int) -> int:
    """The kernel's internal device number (``major << 20 | minor``) for a userspace ``st_dev``.

    ``sock_diag`` reports a bound socket file's device in this encoding, ``stat`` in the userspace one.
    """
    return (os.major(st_dev) << 20) | os.minor(st_dev)


def user_dev(kdev: int) -> int:
    """The userspace ``st_dev`` for the kernel's internal encoding: the inverse of :func:`kernel_dev`."""
    return os.makedev(kdev >> 20, kdev & 0xFFFFF)
