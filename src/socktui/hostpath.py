"""Host paths resolved by what the kernel holds, not by what a string names at some later moment.

socktui runs as root on paths that ordinary users and containers can change. A path string handed to ``lstat``,
``rmdir`` or ``open`` is resolved afresh each time, through whatever symlinks exist at that instant: a user who owns a
directory on the way (or a container that has it mounted) can swap it for a symlink and point root anywhere.

``resolve(path)`` opens the path from ``/`` one component at a time with ``O_PATH|O_NOFOLLOW`` and keeps a
descriptor of each directory it enters, so the directory finally reached is the one it walked into, whatever
happens to the names afterwards. It returns that directory's descriptor (``parent_fd``), the final entry's name in
it and what the entry is (an ``lstat`` through ``parent_fd``). Acting through ``parent_fd`` (``rmdir``/``unlink``
with ``dir_fd``) reaches that very directory.

The rules, each with a unit test in ``tests/unit/test_hostpath.py``:

- a symlink on the way is followed only when the link **and** the directory holding it are owned by root (or by
  socktui's own uid) and that directory is writable by nobody else (no group or other write bit). So ``/var/run``
  -> ``/run`` and ``/proc/self`` work; a link that another user owns, or one in a directory another user (or
  ``/tmp``'s everyone) can write, raises ``UntrustedSymlink`` and nothing beyond it is looked at;
- the final component is never followed unless ``follow_final`` is given, under the same rule;
- links are followed by reading them (``readlinkat`` on the ``O_PATH`` descriptor of the very link that was
  checked) and walking the target's components the same way; the kernel itself never follows one for us. More than
  40 links (the kernel's own limit) is ``ELOOP``;
- ``..`` goes back to the directory this walk came from (a descriptor it holds), never to whatever the kernel
  finds as the parent at that moment; ``..`` at ``/`` stays at ``/``;
- a missing final entry is a result (``stat`` is None); a missing directory on the way is ``FileNotFoundError``, a
  non-directory on the way ``NotADirectoryError``, a path of ``PATH_MAX`` bytes or more, or a component longer than
  ``NAME_MAX``, ``ENAMETOOLONG``, as ``lstat`` would say.

Cost: when no component is ``.`` or ``..`` and no ancestor list is wanted, the parent is opened in one
``openat2(RESOLVE_NO_SYMLINKS)`` call (the kernel guarantees that no symlink was crossed) and the entry looked at
with one ``fstatat``: about as cheap as ``lstat``. Only a path with a symlink on the way takes the walk.

What this does *not* decide: whether the object found is the one a container has mounted (see
``socktui.fixes.act``), and whether a root-owned link in a root-owned directory was put there by a root container
that has that directory mounted read-write (it cannot be told from the system's own links by ownership).
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .linux import AT_FDCWD, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, openat2
from .model import Kind

PATH_MAX = 4096  # bytes, with the terminating NUL
NAME_MAX = 255
MAX_SYMLINKS = 40  # the kernel's limit per lookup
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_ENTRY_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def kind_of_mode(mode: int) -> Kind:
    if stat.S_ISSOCK(mode):
        return Kind.SOCKET
    if stat.S_ISDIR(mode):
        return Kind.DIRECTORY
    if stat.S_ISREG(mode):
        return Kind.FILE
    if stat.S_ISLNK(mode):
        return Kind.SYMLINK
    if stat.S_ISFIFO(mode):
        return Kind.FIFO
    if stat.S_ISCHR(mode):
        return Kind.CHAR_DEVICE
    if stat.S_ISBLK(mode):
        return Kind.BLOCK_DEVICE
    return Kind.ERROR


def trusted_owners() -> frozenset[int]:
    """Whose links socktui follows: root's, and its own when it runs as someone else."""
    return frozenset({0, os.geteuid()})


def writable_by_others(st: os.stat_result) -> bool:
    return bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


class UntrustedSymlink(OSError):
    """A symlink on the way that someone other than root could have put there or could change: not followed."""

    def __init__(self, link: str, link_uid: int, holder_path: str, holder: os.stat_result) -> None:
        owners = trusted_owners()
        if link_uid not in owners:
            why = f"it belongs to uid {link_uid}"
        elif holder.st_uid not in owners:
            why = f"its directory {holder_path} belongs to uid {holder.st_uid}"
        else:
            why = f"its directory {holder_path} is writable by others (mode {stat.S_IMODE(holder.st_mode):04o})"
        super().__init__(errno.EPERM, f"{link} is a symlink that someone else controls ({why}): not followed", link)
        self.link = link
        self.reason = why


@dataclass(frozen=True)
class FollowedLink:
    """A symlink the walk followed, and the (dev, ino) of every directory from ``/`` down to the one holding it:
    whoever can write any of those could have made or changed the link."""

    path: str
    dirs: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Ancestor:
    """A directory the walk went through, held open: ``fd`` stays valid until the ``HostPath`` is closed."""

    path: str
    fd: int
    stat: os.stat_result


class HostPath:
    """A resolved host path: the directory that holds the entry (by descriptor), the entry's name, what it is.

    Close it (or use it as a context manager): it holds ``parent_fd`` and, with ``keep_ancestors``, every
    directory above.
    """

    def __init__(
        self,
        requested: str,
        real: str,
        parent_fd: int,
        name: str,
        st: os.stat_result | None,
        followed: tuple[FollowedLink, ...],
        ancestors: tuple[Ancestor, ...],
    ) -> None:
        self.requested = requested
        self.real = real  # the path with every followed link replaced by what it names
        self.parent_fd = parent_fd
        self.name = name
        self.stat = st  # lstat of the entry through parent_fd; None when there is nothing there
        self.followed = followed  # the symlinks that were followed on the way, in order
        self.ancestors = ancestors  # with keep_ancestors: "/" down to the parent (parent_fd is the last one's fd)

    @property
    def links(self) -> tuple[str, ...]:
        """The paths of the symlinks followed on the way, in order."""
        return tuple(link.path for link in self.followed)

    @property
    def kind(self) -> Kind:
        return Kind.MISSING if self.stat is None else kind_of_mode(self.stat.st_mode)

    @property
    def identity(self) -> tuple[int, int] | None:
        return None if self.stat is None else (self.stat.st_dev, self.stat.st_ino)

    @property
    def parent(self) -> str:
        head = self.real.rsplit("/", 1)[0]
        return head or "/"

    def restat(self) -> os.stat_result | None:
        """``lstat`` the entry again, through the same directory descriptor."""
        try:
            return os.stat(self.name, dir_fd=self.parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def close(self) -> None:
        fds = {a.fd for a in self.ancestors} | {self.parent_fd}
        for fd in fds:
            if fd >= 0:
                os.close(fd)
        self.parent_fd = -1
        self.ancestors = ()

    def __enter__(self) -> HostPath:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _components(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def _check_length(path: str) -> None:
    encoded = os.fsencode(path)
    if b"\0" in encoded:
        raise OSError(errno.EINVAL, "path contains a NUL byte", path)
    if len(encoded) >= PATH_MAX:
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), path)


def resolve(path: str, *, follow_final: bool = False, keep_ancestors: bool = False) -> HostPath:
    """Open ``path``'s directory by the rules above; the caller owns (and must close) the result."""
    if not path.startswith("/"):
        raise OSError(errno.EINVAL, "not an absolute path", path)
    _check_length(path)
    parts = _components(path)
    if not parts:
        raise OSError(errno.EINVAL, "/ names no entry in a directory", path)
    if not keep_ancestors and "." not in parts and ".." not in parts:
        quick = _resolve_without_links(path, parts, follow_final)
        if quick is not None:
            return quick
    return _walk(path, parts, follow_final, keep_ancestors)


def _resolve_without_links(path: str, parts: list[str], follow_final: bool) -> HostPath | None:
    """One ``openat2`` for the parent when no symlink is on the way; None when the walk is needed."""
    parent = "/" + "/".join(parts[:-1])
    try:
        fd = openat2(AT_FDCWD, parent, _DIR_FLAGS, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOSYS, errno.E2BIG, errno.EPERM):
            return None  # a symlink on the way (or no openat2 here, or a seccomp filter): walk
        raise
    name = parts[-1]
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    except BaseException:
        os.close(fd)
        raise
    if follow_final and st is not None and stat.S_ISLNK(st.st_mode):
        os.close(fd)
        return None
    return HostPath(path, "/" + "/".join(parts), fd, name, st, (), ())


def _joined(stack: list[Ancestor], name: str) -> str:
    base = stack[-1].path
    return (base.rstrip("/") or "") + "/" + name


def _walk(path: str, parts: list[str], follow_final: bool, keep_ancestors: bool) -> HostPath:
    root_fd = os.open("/", _DIR_FLAGS)
    stack = [Ancestor("/", root_fd, os.fstat(root_fd))]
    pending = deque(parts)
    links: list[FollowedLink] = []

    def pop() -> None:
        os.close(stack.pop().fd)

    def follow(link_fd: int, link_path: str, link_st: os.stat_result) -> None:
        holder = stack[-1]
        owners = trusted_owners()
        if link_st.st_uid not in owners or holder.stat.st_uid not in owners or writable_by_others(holder.stat):
            raise UntrustedSymlink(link_path, link_st.st_uid, holder.path, holder.stat)
        if len(links) >= MAX_SYMLINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        target = os.readlink("", dir_fd=link_fd)  # the very link that was checked, not a fresh lookup of its name
        if not target:
            raise FileNotFoundError(errno.ENOENT, "empty symlink", link_path)
        links.append(FollowedLink(link_path, tuple((a.stat.st_dev, a.stat.st_ino) for a in stack)))
        if target.startswith("/"):
            while len(stack) > 1:
                pop()
        pending.extendleft(reversed(_components(target)))

    try:
        while True:
            final = _enter_directories(stack, pending, follow, pop, path)
            here = stack[-1]
            try:
                st: os.stat_result | None = os.stat(final, dir_fd=here.fd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if follow_final and st is not None and stat.S_ISLNK(st.st_mode):
                link_fd = os.open(final, _ENTRY_FLAGS, dir_fd=here.fd)
                try:
                    follow(link_fd, _joined(stack, final), os.fstat(link_fd))
                finally:
                    os.close(link_fd)
                continue
            real = _joined(stack, final)
            if not keep_ancestors:
                for a in stack[:-1]:
                    os.close(a.fd)
            return HostPath(path, real, here.fd, final, st, tuple(links), tuple(stack) if keep_ancestors else ())
    except BaseException:
        for a in stack:
            os.close(a.fd)
        raise


def _enter_directories(
    stack: list[Ancestor],
    pending: deque[str],
    follow: Callable[[int, str, os.stat_result], None],
    pop: Callable[[], None],
    path: str,
) -> str:
    """Walk every pending component but the last into ``stack``; return the last (the entry to look at)."""
    while pending:
        part = pending.popleft()
        if part == ".":
            continue
        if part == "..":
            if len(stack) > 1:
                pop()
            continue
        if len(os.fsencode(part)) > NAME_MAX:
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), _joined(stack, part))
        if not pending:
            return part
        fd = os.open(part, _ENTRY_FLAGS, dir_fd=stack[-1].fd)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                stack.append(Ancestor(_joined(stack, part), fd, st))
                fd = -1  # the stack holds it now
                continue
            if stat.S_ISLNK(st.st_mode):
                follow(fd, _joined(stack, part), st)
                continue
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), _joined(stack, part))
        finally:
            if fd >= 0:
                os.close(fd)
    # The path ended in "." or "..": it names the directory reached, which is an entry of the one above it.
    if len(stack) == 1:
        raise OSError(errno.EINVAL, "/ names no entry in a directory", path)
    name = stack[-1].path.rsplit("/", 1)[-1]
    pop()
    return name
