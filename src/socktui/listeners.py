"""Who listens on a socket file: found by the file's identity in the kernel's socket tables, never by its name.

The socket bound to a file is the one whose ``UNIX_DIAG_VFS`` ``(dev, ino)`` is that file's (:mod:`.socktable`),
whichever network namespace it sits in and whatever path string its server used: a container that binds the same
path string in its own namespace binds a *different* file and is never named. The holder of a socket inode is
found with one ``/proc/*/fd`` scan per look. Namespaces are read only as needed: the host's first, then those of the
running containers that mount the path, and only for a file still unbound, every other one on the machine; each at
most once per look.

Only where the kernel has no ``unix_diag`` (the ``/proc/net/unix`` fallback, which has no file identities) does
matching fall back to the path string, in the namespace it was read from, and the look says so.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from .model import Listener, Liveness, SocketState
from .socktable import SOURCE_PROC, SocketTable, UnixSocket, binds_a_path, netns_of, network_namespaces, read_table

_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")


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

    def everyone_else() -> Iterator[str]:
        # Listed only when the hinted pids did not hold every inode: a busy host has thousands of processes, and a
        # server re-binding its socket (or churning them) is found among the hinted at once.
        try:
            yield from sorted((p for p in os.listdir(proc) if p.isdigit()), key=int, reverse=True)
        except OSError:
            return

    seen: set[str] = set()
    for pid in itertools.chain(hinted, everyone_else()):
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


class SocketTables:
    """The socket tables one look reads: the host's at most once, each other network namespace at most once.

    With ``everywhere``, a socket file that no socket in the host's namespace or in those of the containers that
    mount it is bound to is looked for in every other network namespace on the machine (once per look, and only
    then): a server can sit in one of its own (a host service with systemd's ``PrivateNetwork=``, ``unshare -n``) or
    in a container the look was not asked about (``socktui check CONSUMER``). Only then is the file stale.
    """

    def __init__(
        self,
        read: Callable[[int | None], SocketTable] = read_table,
        *,
        everywhere: bool = False,
        read_many: Callable[[Sequence[int]], Sequence[SocketTable | OSError]] | None = None,
    ) -> None:
        self._read = read
        self._read_many = read_many or (lambda pids: [_table_or_error(read, pid) for pid in pids])
        self.everywhere = everywhere
        self._host: SocketTable | None = None
        self._host_error: OSError | None = None
        self._by_netns: dict[int, SocketTable | None] = {}  # None: could not be read
        self._machine: dict[int, int] | None = None  # every network namespace on the machine, listed once
        self._no_paths: set[int] = set()  # namespaces where no socket is bound to a path: not worth a dump
        self._machine_list: list[tuple[int, SocketTable]] | None = None
        self._looked_netns: set[int] = set()
        self._looked_machine_wide = 0
        self.reads = 0
        self.fallback = False  # some table came from /proc/net/unix: listeners there were matched by name

    def host(self) -> SocketTable | None:
        if self._host is None and self._host_error is None:
            try:
                self._host = self._read(None)
                self._count(self._host)
                self._by_netns[self._host.netns] = self._host
            except OSError as exc:
                self._host_error = exc
        return self._host

    def of_pid(self, pid: int) -> tuple[int | None, SocketTable | None]:
        """(netns inode, its table). The table is None when the namespace cannot be read (EACCES, EPERM); the
        namespace is None too when the process is gone (it holds no socket any more)."""
        try:
            netns = netns_of(pid)
        except (FileNotFoundError, ProcessLookupError):
            return None, None
        except OSError:
            return -1, None
        if netns not in self._by_netns:
            try:
                self._by_netns[netns] = self._count(self._read(pid))
            except OSError:
                self._by_netns[netns] = None
        return netns, self._by_netns[netns]

    def prefetch(self, pids: Iterable[int]) -> None:
        """Read these pids' namespaces now, all in one go (a look that needs hundreds pays one hand-over to the
        namespace thread, not one each); :meth:`of_pid` then finds them read."""
        todo: dict[int, int] = {}  # netns -> a pid in it
        for pid in pids:
            try:
                netns = netns_of(pid)
            except OSError:
                continue  # of_pid says why, when it is asked
            if netns not in self._by_netns:
                todo.setdefault(netns, pid)
        for netns, result in zip(todo, self._read_many(list(todo.values())), strict=True):
            self._by_netns[netns] = self._count(result) if isinstance(result, SocketTable) else None

    def all_others(self, seen: set[int]) -> Iterator[SocketTable]:
        """The tables of the machine's other network namespaces (not in ``seen``), each read at most once per look.
        One that cannot be read is skipped: it makes the file no less stale than a namespace with no socket in it
        (a non-root socktui reads none of them, and a connect would tell it nothing about those)."""
        for netns, table in self._machine_tables():
            if netns not in seen:
                yield table

    def others_looked(self, seen: set[int]) -> int:
        """How many of the machine's other namespaces :meth:`all_others` looked in: dumped, or seen to bind no path."""
        self._machine_tables()
        looked = self._looked_machine_wide
        return looked - sum(1 for n in seen if n in self._looked_netns)

    def _machine_tables(self) -> list[tuple[int, SocketTable]]:
        """Every readable namespace on the machine that binds a path, with its table: listed, tested and read once
        per look, however many files are then looked for in them."""
        if self._machine_list is None:
            self._machine = network_namespaces()
            found: list[tuple[int, SocketTable]] = []
            read: set[int] = set()
            for netns, pid in self._machine.items():
                if netns not in self._by_netns:
                    if not binds_a_path(pid):
                        self._no_paths.add(netns)
                        continue
                    try:
                        self._by_netns[netns] = self._count(self._read(pid))
                    except OSError:
                        self._by_netns[netns] = None
                table = self._by_netns[netns]
                if table is not None and table.netns == netns:
                    read.add(netns)
                    if table.binds_files:  # a table with no socket bound to a file cannot hold this one
                        found.append((netns, table))
            self._machine_list = found
            self._looked_netns = self._no_paths | read
            self._looked_machine_wide = len(self._looked_netns)
        return self._machine_list

    def _count(self, table: SocketTable) -> SocketTable:
        self.reads += 1
        self.fallback = self.fallback or table.source == SOURCE_PROC
        return table


def _table_or_error(read: Callable[[int | None], SocketTable], pid: int) -> SocketTable | OSError:
    try:
        return read(pid)
    except OSError as exc:
        return exc


def server_of(found: Iterable[UnixSocket]) -> UnixSocket | None:
    """The socket that serves a file among those bound to it: the newest listener, else the newest datagram socket
    (a datagram server needs no listen()). Stream sockets left bound after their listener closed answer nobody."""
    found = tuple(found)
    if len(found) == 1:  # the usual case, on every re-read of a busy host
        only = found[0]
        return only if only.listening or only.type == "dgram" else None
    listening = [s for s in found if s.listening]
    if listening:
        return max(listening, key=lambda s: s.inode)
    dgram = [s for s in found if s.type == "dgram"]
    return max(dgram, key=lambda s: s.inode) if dgram else None


def liveness_of(sock: UnixSocket) -> Liveness:
    """What a serving socket (:func:`server_of`) means for a client."""
    if sock.listening:
        return Liveness.NOT_ACCEPTING if sock.backlog_full else Liveness.LISTENING
    return Liveness.BOUND


def _state_of(found: tuple[UnixSocket, ...], table: SocketTable, *, by_name: bool) -> SocketState | None:
    sock = server_of(found)
    if sock is None:
        return None
    return SocketState(
        liveness=liveness_of(sock),
        sock_type=sock.type,
        queued=sock.queued if sock.listening else None,
        backlog=sock.backlog if sock.listening else None,
        socket_inode=sock.inode,
        netns=table.netns,
        by_name=by_name,
    )


def _in_table(table: SocketTable, file: tuple[int, int], name: str | None) -> SocketState | None:
    if table.has_identities:
        return _state_of(table.bound_to(file), table, by_name=False)
    if name is None:
        return None
    return _state_of(table.named(name), table, by_name=True)


class ListenerIndex:
    """Finds, for many socket files, the socket bound to each and the process that holds it, in one look.

    Ask with ``state(...)`` for every file, then ``resolve()`` once (one ``/proc/*/fd`` scan for every socket
    found), then ``listener(state)``.
    """

    def __init__(self, names_by_id: Mapping[str, str], tables: SocketTables | None = None) -> None:
        self._names_by_id = names_by_id
        self.tables = tables or SocketTables()
        self._pid_for: dict[int, int] = {}
        self._wanted: set[int] = set()
        self._files: dict[int, tuple[tuple[int, int], str]] = {}  # socket inode -> the file it is bound to, its path
        self._listeners: dict[int, Listener] = {}

    def state(
        self,
        file: tuple[int, int],
        host_name: str | None,
        elsewhere: Iterable[tuple[int, str]] = (),
    ) -> SocketState:
        """What is bound to ``file``: in the host's namespace, else in those of ``elsewhere`` (pid, path there).

        The names are used only by the ``/proc/net/unix`` fallback, which cannot match by identity.
        """
        looked = unreadable = 0
        host = self.tables.host()
        if host is None:
            unreadable += 1
        else:
            looked += 1
            found = _in_table(host, file, host_name)
            if found is not None:
                return self._wanting(found, looked, unreadable, file, host_name)
        seen: set[int] = {host.netns} if host is not None else set()
        for pid, name in elsewhere:
            netns, table = self.tables.of_pid(pid)
            if netns is None or (netns in seen and netns != -1):
                continue  # gone, or a namespace already read
            seen.add(netns)
            if table is None:
                unreadable += 1
                continue
            looked += 1
            found = _in_table(table, file, name)
            if found is not None:
                return self._wanting(found, looked, unreadable, file, host_name)
        if self.tables.everywhere and host is not None and host.has_identities:
            for table in self.tables.all_others(seen):
                bound = table.bound_to(file)
                found = _state_of(bound, table, by_name=False) if bound else None
                if found is not None:
                    return self._wanting(found, looked + 1, unreadable, file, host_name)
            looked += self.tables.others_looked(seen)
        liveness = Liveness.UNSEEN if unreadable else Liveness.UNBOUND
        return SocketState(liveness=liveness, looked_in=looked, unreadable=unreadable, by_name=self.tables.fallback)

    def _wanting(
        self, found: SocketState, looked: int, unreadable: int, file: tuple[int, int], host_name: str | None
    ) -> SocketState:
        if found.socket_inode is not None:
            self._wanted.add(found.socket_inode)
            if host_name is not None:
                self._files[found.socket_inode] = (file, host_name)
        return SocketState(
            liveness=found.liveness,
            sock_type=found.sock_type,
            queued=found.queued,
            backlog=found.backlog,
            socket_inode=found.socket_inode,
            netns=found.netns,
            looked_in=looked,
            unreadable=unreadable,
            by_name=found.by_name,
        )

    def remember(self, socket_inode: int, listener: Listener) -> None:
        """A listener named by an earlier look: found again by its socket's inode, without scanning ``/proc``."""
        self._pid_for[socket_inode] = listener.pid
        self._listeners.setdefault(listener.pid, listener)

    def resolve(self) -> None:
        missing = {inode for inode in self._wanted - set(self._pid_for) if self._still_bound_file(inode)}
        self._pid_for.update(pids_by_socket_inode(missing))

    def _still_bound_file(self, socket_inode: int) -> bool:
        """Is the socket's file still there? One that was unlinked since the table was read has no listener left to
        name, and looking for it would cost a scan of every process (a server churning sockets would pay it each time).
        """
        known = self._files.get(socket_inode)
        if known is None:
            return True
        file, path = known
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == file

    def listener(self, state: SocketState | None) -> Listener | None:
        if state is None or state.socket_inode is None:
            return None
        pid = self._pid_for.get(state.socket_inode)
        if pid is None:
            return None
        if pid not in self._listeners:
            self._listeners[pid] = Listener(
                pid=pid, command=command_of(pid), container=container_of(pid, self._names_by_id)
            )
        return self._listeners[pid]
