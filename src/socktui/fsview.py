"""Looking at paths: on the host with ``lstat``, and in a container's root with ``openat2(RESOLVE_IN_ROOT)``.

A container's view is reached through ``/proc/PID/root``. A plain string path through it is unsafe: an absolute
symlink planted inside the container would resolve against the *host* root. So every container path is resolved
with ``openat2`` relative to a directory fd of ``/proc/PID/root`` with ``RESOLVE_IN_ROOT``, which confines ``..``
and absolute symlinks to the container's root, and we only ever get back an ``O_PATH`` fd to look at or connect
through. Nothing is ever modified through a container path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .hostpath import UntrustedSymlink, resolve
from .hostpath import kind_of_mode as kind_of_mode  # defined there; re-exported for callers of fsview
from .linux import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, errno_name, openat2
from .model import UNTRUSTED_SYMLINK, Kind, PathStat
from .roles import is_companion, looks_like_socket

# How many entries of a directory we look at before giving up on listing it (a bind of /home must stay cheap).
DIR_SCAN_LIMIT = 4096


def path_stat_from(path: str, st: os.stat_result, *, entries: int | None = None, target: str | None = None) -> PathStat:
    return PathStat(
        path=path,
        kind=kind_of_mode(st.st_mode),
        dev=st.st_dev,
        ino=st.st_ino,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        nlink=st.st_nlink,
        mtime=st.st_mtime,
        entries=entries,
        symlink_target=target,
    )


def _count_entries(path: str | int) -> int | None:
    try:
        with os.scandir(path) as it:
            count = 0
            for _ in it:
                count += 1
                if count >= DIR_SCAN_LIMIT:
                    break
            return count
    except OSError:
        return None


def host_lstat(path: str) -> PathStat:
    """``lstat`` a host path, resolved by :func:`hostpath.resolve` (one component at a time, following a symlink on
    the way only when root controls it). Never follows a final symlink; a missing path is a result, not an error.

    A path redirected through a link that a user or a container controls is an error (``UNTRUSTED_SYMLINK``), never
    the object it points at: that object is not what the string names for anyone else, nor what Docker mounted.
    """
    if not path.startswith("/") or not path.strip("/"):
        return _plain_lstat(path)  # relative (never a bind source Docker accepts), or "/" itself
    try:
        with resolve(path) as found:
            st = found.stat
            if st is None:
                return PathStat(path=path, kind=Kind.MISSING)
            entries = target = None
            if stat.S_ISDIR(st.st_mode):
                entries = _count_at(found.parent_fd, found.name)
            elif stat.S_ISLNK(st.st_mode):
                with contextlib.suppress(OSError):
                    target = os.readlink(found.name, dir_fd=found.parent_fd)
            return path_stat_from(path, st, entries=entries, target=target)
    except UntrustedSymlink:
        return PathStat(path=path, kind=Kind.ERROR, error=UNTRUSTED_SYMLINK)
    except (FileNotFoundError, NotADirectoryError) as exc:
        return PathStat(path=path, kind=Kind.MISSING, error="ENOTDIR" if isinstance(exc, NotADirectoryError) else None)
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # an embedded NUL: cannot exist on Linux
            return PathStat(path=path, kind=Kind.MISSING, error="EINVAL")
        return PathStat(path=path, kind=Kind.ERROR, error=errno_name(exc.errno))


def resolve_source(path: str) -> str | None:
    """Where a ``-v`` source that is a symlink leads, the way Docker follows it when mounting; None when a link on
    the way (or the source itself) is one that someone other than root controls, or the path cannot be resolved."""
    try:
        with resolve(path, follow_final=True) as found:
            return found.real
    except OSError:
        return None


def _count_at(parent_fd: int, name: str) -> int | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    except OSError:
        return None
    try:
        return _count_entries(fd)
    finally:
        os.close(fd)


def _plain_lstat(path: str) -> PathStat:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return PathStat(path=path, kind=Kind.MISSING)
    except NotADirectoryError:
        return PathStat(path=path, kind=Kind.MISSING, error="ENOTDIR")
    except OSError as exc:
        return PathStat(path=path, kind=Kind.ERROR, error=errno_name(exc.errno))
    except ValueError:  # embedded NUL: cannot exist on Linux
        return PathStat(path=path, kind=Kind.MISSING, error="EINVAL")
    entries = _count_entries(path) if stat.S_ISDIR(st.st_mode) else None
    target = None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = None
    return path_stat_from(path, st, entries=entries, target=target)


@dataclass(frozen=True)
class DirNames:
    """What one listing of a host directory found: its sockets, and the regular files that are a socket's
    companions (lock and pid files: :func:`socktui.roles.is_companion`)."""

    sockets: tuple[str, ...] = ()
    companions: tuple[str, ...] = ()


COMPANIONS_KEPT = 16  # companion names kept per directory, whatever a container writes into it


def host_dir_names(directory: str) -> DirNames:
    """Names of sockets (and symlinks whose names look like sockets) one level down a host directory, and of the
    regular files among them that accompany a socket.

    Every entry is looked at: a socket hidden past some scan limit would silently make the mount "not a socket
    directory". It stays cheap because the directory listing already carries each entry's type (``d_type``):
    directories, regular files and symlinks cost no system call, and only the rest (sockets, FIFOs, devices, or
    entries of a filesystem that gives no type) are ``lstat``-ed.
    """
    names: list[str] = []
    companions: list[str] = []
    try:
        with resolve(directory, follow_final=True) as found:
            fd = os.open(
                found.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=found.parent_fd
            )
    except (OSError, ValueError):
        return DirNames()
    try:
        with os.scandir(fd) as it:
            for entry in it:
                try:
                    if entry.is_symlink():
                        if looks_like_socket(entry.name):
                            names.append(entry.name)
                        continue
                    if entry.is_file(follow_symlinks=False):
                        if len(companions) < COMPANIONS_KEPT and is_companion(entry.name):
                            companions.append(entry.name)
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        continue
                    if stat.S_ISSOCK(os.stat(entry.name, dir_fd=fd, follow_symlinks=False).st_mode):
                        names.append(entry.name)
                except OSError:
                    continue
    except OSError:
        return DirNames()
    finally:
        os.close(fd)
    return DirNames(tuple(sorted(names)), tuple(sorted(companions)))


def host_socket_names(directory: str) -> tuple[str, ...]:
    """Names of sockets (and symlinks whose names look like sockets) one level down a host directory."""
    return host_dir_names(directory).sockets


class ContainerRoot:
    """A directory fd on ``/proc/PID/root``: the handle through which a container's paths are resolved."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ContainerRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open_path(self, path: str, *, follow: bool = False) -> int:
        """An ``O_PATH`` fd for ``path`` resolved inside the container root."""
        flags = os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
        return openat2(self.fd, path.lstrip("/") or ".", flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

    @contextmanager
    def opened(self, path: str, *, follow: bool = False) -> Iterator[int]:
        fd = self.open_path(path, follow=follow)
        try:
            yield fd
        finally:
            os.close(fd)

    def lstat(self, path: str) -> PathStat:
        try:
            with self.opened(path) as fd:
                st = os.fstat(fd)
                entries = None
                if stat.S_ISDIR(st.st_mode):
                    entries = self._count_dir(path)
                return path_stat_from(path, st, entries=entries)
        except FileNotFoundError:
            return PathStat(path=path, kind=Kind.MISSING)
        except OSError as exc:
            return PathStat(path=path, kind=Kind.ERROR, error=errno_name(exc.errno))

    def _count_dir(self, path: str) -> int | None:
        try:
            fd = openat2(
                self.fd,
                path.lstrip("/") or ".",
                os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
            )
        except OSError:
            return None
        try:
            return _count_entries(fd)
        finally:
            os.close(fd)

    def read_text(self, path: str, limit: int = 1 << 20) -> str | None:
        """Read a small file such as /etc/passwd inside the container, confined to its root."""
        # The container controls what is there. Opening a FIFO for reading waits for a writer forever, and opening a
        # device can do anything, so the object is pinned with an O_PATH fd (which opens nothing), checked to be a
        # regular file, and only then reopened for reading through that fd: the same inode, never another.
        try:
            pinned = self.open_path(path)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(pinned).st_mode):
                return None
            fd = os.open(fd_path(pinned), os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError:
            return None
        finally:
            os.close(pinned)
        try:
            return os.read(fd, limit).decode("utf-8", "replace")
        except OSError:
            return None
        finally:
            os.close(fd)

    def parents(self, path: str) -> tuple[PathStat, ...]:
        """``lstat`` of each directory from ``/`` down to the parent of ``path``, as the container sees them."""
        parts = [p for p in path.split("/") if p]
        chain = []
        for depth in range(len(parts)):
            sub = "/" + "/".join(parts[:depth])
            try:
                with self.opened(sub, follow=True) as fd:
                    chain.append(path_stat_from(sub, os.fstat(fd)))
            except OSError as exc:
                chain.append(PathStat(path=sub, kind=Kind.ERROR, error=errno_name(exc.errno)))
                break
        return tuple(chain)


def fd_path(fd: int) -> str:
    """A path that names an open fd; connecting to it reaches the socket the fd points at, with no lookup."""
    return f"/proc/self/fd/{fd}"
