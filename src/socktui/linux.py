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

STATX_MNT_ID = 0x1000
STATX_ATTR_MOUNT_ROOT = 0x2000


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_OPEN_HOW_SIZE = ctypes.sizeof(_OpenHow)
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


_HOWS: dict[tuple[int, int, int], tuple[_OpenHow, object]] = {}


def openat2(dirfd: int, path: str | bytes, flags: int, resolve: int, mode: int = 0) -> int:
    """``openat2(2)``: open ``path`` relative to ``dirfd`` under the ``RESOLVE_*`` rules."""
    key = (flags, mode, resolve)
    cached = _HOWS.get(key)
    if cached is None:  # one open_how per combination: a look calls this for every path, so keep it cheap
        how = _OpenHow(flags=flags, mode=mode, resolve=resolve)
        cached = _HOWS[key] = (how, ctypes.byref(how))
    encoded = _encode(path)
    fd = _syscall(SYS_OPENAT2, dirfd, encoded, cached[1], _OPEN_HOW_SIZE)
    return _check(fd, encoded)


def renameat2(olddirfd: int, oldname: str | bytes, newdirfd: int, newname: str | bytes, flags: int = 0) -> None:
    """``renameat2(2)``: ``RENAME_NOREPLACE`` fails with EEXIST instead of replacing; ``RENAME_EXCHANGE`` swaps."""
    old, new = _encode(oldname), _encode(newname)
    result = _libc.renameat2(ctypes.c_int(olddirfd), old, ctypes.c_int(newdirfd), new, ctypes.c_uint(flags))
    _check(result, old)


class Statx:
    """The few ``statx(2)`` fields that ``os.stat`` lacks: which mount an object is on, and whether it is a mount's
    root (a mount point, seen from above)."""

    __slots__ = ("mnt_id", "mount_root", "dev", "ino")

    def __init__(self, mnt_id: int | None, mount_root: bool | None, dev: int, ino: int) -> None:
        self.mnt_id = mnt_id  # None when the kernel does not say (before Linux 5.8)
        self.mount_root = mount_root  # None when the kernel does not say
        self.dev = dev
        self.ino = ino


class _StatxTimestamp(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_int64), ("tv_nsec", ctypes.c_uint32), ("reserved", ctypes.c_int32)]


class _Statx(ctypes.Structure):
    _fields_ = [
        ("stx_mask", ctypes.c_uint32),
        ("stx_blksize", ctypes.c_uint32),
        ("stx_attributes", ctypes.c_uint64),
        ("stx_nlink", ctypes.c_uint32),
        ("stx_uid", ctypes.c_uint32),
        ("stx_gid", ctypes.c_uint32),
        ("stx_mode", ctypes.c_uint16),
        ("spare0", ctypes.c_uint16),
        ("stx_ino", ctypes.c_uint64),
        ("stx_size", ctypes.c_uint64),
        ("stx_blocks", ctypes.c_uint64),
        ("stx_attributes_mask", ctypes.c_uint64),
        ("stx_atime", _StatxTimestamp),
        ("stx_btime", _StatxTimestamp),
        ("stx_ctime", _StatxTimestamp),
        ("stx_mtime", _StatxTimestamp),
        ("stx_rdev_major", ctypes.c_uint32),
        ("stx_rdev_minor", ctypes.c_uint32),
        ("stx_dev_major", ctypes.c_uint32),
        ("stx_dev_minor", ctypes.c_uint32),
        ("stx_mnt_id", ctypes.c_uint64),
        ("spare", ctypes.c_uint64 * 13),
    ]


def statx(dirfd: int, path: str | bytes, flags: int = AT_SYMLINK_NOFOLLOW) -> Statx:
    """``statx(2)`` with ``STATX_MNT_ID``; ``path`` "" with ``AT_EMPTY_PATH`` in ``flags`` looks at ``dirfd``."""
    encoded = os.fsencode(path)
    if b"\0" in encoded:
        raise OSError(errno.EINVAL, "path contains a NUL byte", os.fsdecode(encoded))
    buf = _Statx()
    result = _libc.statx(
        ctypes.c_int(dirfd),
        ctypes.c_char_p(encoded),
        ctypes.c_int(flags),
        ctypes.c_uint(STATX_MNT_ID),
        ctypes.byref(buf),
    )
    _check(result, encoded)
    mnt_id = int(buf.stx_mnt_id) if buf.stx_mask & STATX_MNT_ID else None
    mount_root = (
        bool(buf.stx_attributes & STATX_ATTR_MOUNT_ROOT) if buf.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT else None
    )
    return Statx(mnt_id, mount_root, os.makedev(buf.stx_dev_major, buf.stx_dev_minor), int(buf.stx_ino))


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


def id_maps(pid: int, proc: str = "/proc") -> tuple[str | None, str | None]:
    """The text of ``/proc/PID/uid_map`` and ``gid_map`` (None each when it cannot be read): how the process's user
    namespace maps its ids to the host's."""
    found: list[str | None] = []
    for name in ("uid_map", "gid_map"):
        try:
            with open(f"{proc}/{pid}/{name}", encoding="ascii", errors="replace") as f:
                found.append(f.read(4096))
        except OSError:
            found.append(None)
    return found[0], found[1]


# <sys/inotify.h>
IN_ATTRIB = 0x00000004
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC


def inotify_init1(flags: int) -> int:
    """``inotify_init1(2)``: a new inotify instance's descriptor."""
    return _check(_libc.inotify_init1(ctypes.c_int(flags)), "inotify_init1")


def inotify_add_watch(fd: int, path: str | bytes, mask: int) -> int:
    """``inotify_add_watch(2)``: the watch descriptor (ENOSPC: the user's watch limit is reached)."""
    encoded = _encode(path)
    return _check(_libc.inotify_add_watch(ctypes.c_int(fd), ctypes.c_char_p(encoded), ctypes.c_uint32(mask)), encoded)
