"""Looking at paths: on the host with ``lstat``, and in a container's root with ``openat2(RESOLVE_IN_ROOT)``.

A container's view is reached through ``/proc/PID/root``. A plain string path through it is unsafe: an absolute
symlink planted inside the container would resolve against the *host* root. So every container path is resolved
with ``openat2`` relative to a directory fd of ``/proc/PID/root`` with ``RESOLVE_IN_ROOT``, which confines ``..``
and absolute symlinks to the container's root, and we only ever get back an ``O_PATH`` fd to look at or connect
through. Nothing is ever modified through a container path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from .hostpath import kind_of_mode as kind_of_mode  # defined there; re-exported for callers of fsview
from .linux import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, errno_name, openat2
from .model import Kind, PathStat
from .roles import looks_like_socket

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
    """``lstat`` a host path. Never follows a final symlink; a missing path is a result, not an error."""
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


def host_socket_names(directory: str, limit: int = DIR_SCAN_LIMIT) -> tuple[str, ...]:
    """Names of sockets (and symlinks whose names look like sockets) one level down a host directory."""
    names: list[str] = []
    try:
        with os.scandir(directory) as it:
            for seen, entry in enumerate(it):
                if seen >= limit:
                    break
                try:
                    mode = entry.stat(follow_symlinks=False).st_mode
                except OSError:
                    continue
                if stat.S_ISSOCK(mode) or (stat.S_ISLNK(mode) and looks_like_socket(entry.name)):
                    names.append(entry.name)
    except OSError:
        return ()
    return tuple(sorted(names))


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
        try:
            fd = openat2(
                self.fd,
                path.lstrip("/"),
                os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
            )
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            return os.read(fd, limit).decode("utf-8", "replace")
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
