"""Who listens on a socket: ``/proc/<pid>/net/unix`` joined by path with a ``/proc/*/fd`` scan.

``/proc/net/unix`` only lists the reader's network namespace, and its inode column is the *socket's* inode, not the
socket file's, so the join is by the path the server bound. A server inside a container appears in its own
namespace's table under its container-side path.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .model import Listener

_SO_ACCEPTCON = 0x10000  # the "listening" flag in /proc/net/unix
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class UnixEntry:
    inode: int
    listening: bool
    path: str


def parse_net_unix(text: str) -> list[UnixEntry]:
    """Parse the body of ``/proc/net/unix``. Lines that do not fit (say a path with a newline) are skipped."""
    entries = []
    for line in text.splitlines()[1:]:
        fields = line.split(None, 7)
        if len(fields) < 8:
            continue  # unnamed socket, or a continuation line of a path containing a newline
        try:
            flags = int(fields[3], 16)
            inode = int(fields[6])
        except ValueError:
            continue
        path = fields[7]
        if path.startswith("@"):
            continue  # abstract socket: has no file
        entries.append(UnixEntry(inode=inode, listening=bool(flags & _SO_ACCEPTCON), path=path))
    return entries


def read_net_unix(pid: int | str = "self") -> list[UnixEntry]:
    try:
        with open(f"/proc/{pid}/net/unix", encoding="utf-8", errors="surrogateescape") as fh:
            return parse_net_unix(fh.read())
    except OSError:
        return []


def listening_inode(entries: Iterable[UnixEntry], path: str) -> int | None:
    """The socket inode listening at ``path``; the newest one when an older listener still holds a replaced name."""
    found = [e.inode for e in entries if e.listening and e.path == path]
    return max(found) if found else None


_recent_listeners: dict[int, None] = {}  # pids that held listening sockets lately, most recent last
_recent_lock = threading.Lock()
_RECENT_MAX = 256


def _remember(pids: Iterable[int]) -> None:
    with _recent_lock:
        for pid in pids:
            _recent_listeners.pop(pid, None)
            _recent_listeners[pid] = None
        while len(_recent_listeners) > _RECENT_MAX:
            _recent_listeners.pop(next(iter(_recent_listeners)))


def pids_by_socket_inode(inodes: set[int], proc: str = "/proc") -> dict[int, int]:
    """Map socket inodes to the pid of a process holding them.

    Servers are few and live long, while a busy host has thousands of processes (every container adds a shim and
    its own), so processes that held listeners before are looked at first, then the rest newest first (a server
    that just bound is usually a recent process). The scan stops as soon as every inode is found.
    """
    wanted = {f"socket:[{i}]": i for i in inodes}
    found: dict[int, int] = {}
    if not wanted:
        return found
    with _recent_lock:
        hinted = [str(p) for p in reversed(_recent_listeners)]
    try:
        rest = sorted((p for p in os.listdir(proc) if p.isdigit()), key=int, reverse=True)
    except OSError:
        return found
    seen: set[str] = set()
    for pid in (*hinted, *rest):
        if pid in seen:
            continue
        seen.add(pid)
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            inode = wanted.get(link)
            if inode is not None and inode not in found:
                found[inode] = int(pid)
                if len(found) == len(wanted):
                    _remember(found.values())
                    return found
    _remember(found.values())
    return found


def command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return "?"
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace") or "?"


def container_of(pid: int, names_by_id: Mapping[str, str]) -> str | None:
    """The name of the container a process runs in, found by the container id in its cgroup path."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    for match in _CONTAINER_ID.finditer(text):
        name = names_by_id.get(match.group(0))
        if name is not None:
            return name
    return None


class ListenerIndex:
    """Finds listeners for many paths with one ``/proc/*/fd`` scan.

    Ask with ``want(path, netns_pid)``, then ``resolve()`` once, then ``get(path, netns_pid)``.
    """

    def __init__(self, names_by_id: Mapping[str, str]) -> None:
        self._names_by_id = names_by_id
        self._tables: dict[int | str, dict[str, int]] = {}
        self._inode_for: dict[tuple[str, int | str], int] = {}
        self._pid_for: dict[int, int] = {}
        self._listeners: dict[int, Listener] = {}
        self._aliases: dict[str, list[tuple[str, int]]] = {}

    def _table(self, netns_pid: int | str) -> dict[str, int]:
        """Listening path -> newest socket inode, built once per namespace (a check asks for many paths)."""
        if netns_pid not in self._tables:
            index: dict[str, int] = {}
            for entry in read_net_unix(netns_pid):
                if entry.listening and entry.inode > index.get(entry.path, -1):
                    index[entry.path] = entry.inode
            self._tables[netns_pid] = index
        return self._tables[netns_pid]

    def want(self, path: str, netns_pid: int | str = "self") -> None:
        inode = self._table(netns_pid).get(path)
        if inode is not None:
            self._inode_for[(path, netns_pid)] = inode

    def found_here(self, path: str, netns_pid: int | str = "self") -> bool:
        return (path, netns_pid) in self._inode_for

    def want_elsewhere(self, host_path: str, container_path: str, netns_pid: int) -> None:
        """The same socket as another container sees it: a server there listens under that container's path."""
        self.want(container_path, netns_pid)
        if (container_path, netns_pid) in self._inode_for:
            self._aliases.setdefault(host_path, []).append((container_path, netns_pid))

    def get_any(self, host_path: str) -> Listener | None:
        """The listener of a host path, whether it binds on the host or inside any container mounting it."""
        found = self.get(host_path)
        for container_path, netns_pid in self._aliases.get(host_path, ()):
            found = found or self.get(container_path, netns_pid)
        return found

    def resolve(self) -> None:
        missing = set(self._inode_for.values()) - set(self._pid_for)
        self._pid_for.update(pids_by_socket_inode(missing))

    def get(self, path: str, netns_pid: int | str = "self") -> Listener | None:
        inode = self._inode_for.get((path, netns_pid))
        if inode is None:
            return None
        pid = self._pid_for.get(inode)
        if pid is None:
            return None
        if pid not in self._listeners:
            self._listeners[pid] = Listener(
                pid=pid, command=command_of(pid), container=container_of(pid, self._names_by_id)
            )
        return self._listeners[pid]
