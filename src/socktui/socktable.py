"""The kernel's table of unix sockets, per network namespace: who is bound to which file, without connecting.

Netlink ``sock_diag`` (``NETLINK_SOCK_DIAG``, ``SOCK_DIAG_BY_FAMILY`` for ``AF_UNIX``; what ``ss -x`` uses) dumps
every unix socket of one network namespace in one request, with the bound file's ``(dev, ino)`` (``UDIAG_SHOW_VFS``),
a listener's accept queue and its maximum (``UDIAG_SHOW_RQLEN``), the bound name, state and type. A host path whose
``(dev, ino)`` is bound by a listening socket is live, and nobody was connected to for it: a server never sees
socktui look.

A small reader of our own rather than pyroute2: importing pyroute2's ``DiagSocket`` costs about 300 ms here, as much
as all of ``socktui check``'s start-up (about 330 ms of imports; see bench/RESULTS.md), for one request and one reply
format.

Each network namespace needs its own dump. ``setns(CLONE_NEWNET)`` affects only the calling thread, so other
namespaces are entered by one thread of their own, which goes back home after each dump; the rest of socktui never
moves.

Where the kernel has no ``unix_diag`` (``CONFIG_UNIX_DIAG`` off), ``/proc/<pid>/net/unix`` is read instead: it has
names, types, states and socket inodes but no file identities and no queue lengths (``source`` says which).
``SOCKTUI_NO_SOCK_DIAG=1`` forces that fallback (tests use it).
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import socket
import struct
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import NamedTuple

from .linux import CLONE_NEWNET, kernel_dev, setns, user_dev

SOURCE_SOCK_DIAG = "sock_diag"
SOURCE_PROC = "/proc/net/unix"
FORCE_FALLBACK_ENV = "SOCKTUI_NO_SOCK_DIAG"

# <linux/netlink.h>, <linux/sock_diag.h>, <linux/unix_diag.h>
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 0x1
_NLM_F_DUMP = 0x300
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_UDIAG_SHOW_NAME = 0x01
_UDIAG_SHOW_VFS = 0x02
_UDIAG_SHOW_RQLEN = 0x10
_UNIX_DIAG_NAME = 0
_UNIX_DIAG_VFS = 1
_UNIX_DIAG_RQLEN = 4
_TCP_ESTABLISHED = 1
_TCP_CLOSE = 7
_TCP_LISTEN = 10
# Listeners and datagram sockets are what can serve a new client. A datagram server is TCP_CLOSE until a client
# connect()s to it, and TCP_ESTABLISHED from then on (the kernel sets both ends), so both states are asked for; the
# connected stream sockets that come with ESTABLISHED, the bulk of a host's table, are dropped before any parsing.
_SERVER_STATES = (1 << _TCP_LISTEN) | (1 << _TCP_CLOSE) | (1 << _TCP_ESTABLISHED)

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_UNIX_DIAG_REQ = struct.Struct("=BBHIIIII")  # family, protocol, pad, states, ino, show, cookie[2]
_UNIX_DIAG_MSG = struct.Struct("=BBBBIII")  # family, type, state, pad, ino, cookie[2]
_RTATTR = struct.Struct("=HH")  # len, type
_U32_PAIR = struct.Struct("=II")

_TYPE_NAMES = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "dgram", socket.SOCK_SEQPACKET: "seqpacket"}
_SO_ACCEPTCON = 0x10000  # /proc/net/unix's "listening" flag
_INO_MASK = 0xFFFFFFFF  # unix_diag_vfs carries the inode as a u32


class UnixSocket(NamedTuple):
    """One unix socket as the kernel lists it. A named tuple: a busy host's table holds thousands, built on every
    re-read, and a tuple is several times cheaper to make than a frozen dataclass."""

    inode: int  # the socket's own inode, as in /proc/PID/fd -> socket:[inode]
    type: str  # "stream" | "dgram" | "seqpacket"
    listening: bool
    name: str | None  # bound address as the binder spelled it (None unbound, "@..." abstract)
    file: tuple[int, int] | None  # (st_dev, st_ino) of the bound socket file, in os.stat's encoding
    queued: int | None  # listeners: connections waiting to be accepted
    backlog: int | None  # listeners: maximum of the accept queue

    @property
    def backlog_full(self) -> bool:
        """A connect would get EAGAIN (or block): the kernel's ``unix_recvq_full`` is ``queued > backlog``."""
        return self.listening and self.queued is not None and self.backlog is not None and self.queued > self.backlog


def same_file(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two ``(st_dev, st_ino)`` name one file, allowing for unix_diag's 32-bit inode field."""
    return a[0] == b[0] and (a[1] & _INO_MASK) == (b[1] & _INO_MASK)


@dataclass(frozen=True)
class SocketTable:
    """The unix sockets of one network namespace that could serve a new client: listeners and bound, unconnected
    sockets (datagram servers). Connected and unbound sockets are not listed."""

    netns: int  # inode of the network namespace that was dumped
    source: str  # "sock_diag" or "/proc/net/unix" (the fallback: no file identities)
    sockets: tuple[UnixSocket, ...]
    _by_file: dict[tuple[int, int], tuple[UnixSocket, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[tuple[int, int], list[UnixSocket]] = {}
        for sock in self.sockets:
            if sock.file is not None:
                index.setdefault((sock.file[0], sock.file[1] & _INO_MASK), []).append(sock)
        self._by_file.update({key: tuple(found) for key, found in index.items()})

    @property
    def binds_files(self) -> bool:
        """Some socket here is bound to a file (most containers' namespaces bind none)."""
        return bool(self._by_file)

    @property
    def has_identities(self) -> bool:
        return self.source == SOURCE_SOCK_DIAG

    def bound_to(self, file: tuple[int, int]) -> tuple[UnixSocket, ...]:
        """Every listed socket bound to the file (a listener, or a bound datagram socket)."""
        return self._by_file.get((file[0], file[1] & _INO_MASK), ())

    def listener_at(self, file: tuple[int, int]) -> UnixSocket | None:
        """The listening socket bound to the file; the newest when an older one somehow still holds it."""
        found = [s for s in self.bound_to(file) if s.listening]
        return max(found, key=lambda s: s.inode) if found else None

    def named(self, name: str) -> tuple[UnixSocket, ...]:
        """Sockets bound under this name string: only for the fallback, where there is nothing better."""
        return tuple(s for s in self.sockets if s.name == name)


@dataclass(frozen=True)
class Only:
    """A narrower read, for a caller that knows which files it asks about (the periodic re-read of a live screen):
    only sockets bound to ``files``, without their names, and connected datagram servers only when asked for
    (their state brings every connected stream socket along, the bulk of a busy host's table)."""

    files: frozenset[tuple[int, int]]  # (st_dev, st_ino), as os.stat gives them
    connected_dgram: bool = True

    @cached_property
    def kernel_keys(self) -> frozenset[tuple[int, int]]:
        """The files as sock_diag spells them: worked out once, however many namespaces are then dumped."""
        return frozenset((_kernel_dev(dev), ino & _INO_MASK) for dev, ino in self.files)


def read_table(netns_pid: int | None = None, only: Only | None = None) -> SocketTable:
    """The unix sockets of socktui's own network namespace (``None``) or of ``netns_pid``'s; with ``only``, just
    those bound to its files (the ``/proc/net/unix`` fallback, having no identities, always lists them all).

    Raises ``OSError`` when the namespace cannot be entered (EPERM as non-root, ESRCH/ENOENT for a gone pid).
    """
    if os.environ.get(FORCE_FALLBACK_ENV) or _diag_state == [False]:
        return _read_proc(netns_pid)
    try:
        table = _in_netns(netns_pid, only) if netns_pid is not None else _table_here(only)
    except _NoUnixDiag:
        _diag_state[:] = [False]
        return _read_proc(netns_pid)
    _diag_state[:] = [True]
    return table


def read_tables(pids: Sequence[int], only: Only | None = None) -> list[SocketTable | OSError]:
    """:func:`read_table` for many namespaces at once (one hand-over to the namespace thread for all of them); what
    could not be read is its ``OSError``, in its place."""
    if not pids:
        return []
    if os.environ.get(FORCE_FALLBACK_ENV) or _diag_state == [False]:
        return [_proc_or_error(pid) for pid in pids]
    found: list[SocketTable | OSError] = []
    for pid, result in zip(pids, _netns_reader.dump_many(pids, only), strict=True):
        if isinstance(result, _NoUnixDiag):
            _diag_state[:] = [False]
            found.append(_proc_or_error(pid))
        elif isinstance(result, OSError | SocketTable):
            if isinstance(result, SocketTable):
                _diag_state[:] = [True]
            found.append(result)
        else:
            raise result
    return found


def _proc_or_error(pid: int) -> SocketTable | OSError:
    try:
        return _read_proc(pid)
    except OSError as exc:
        return exc


def listener_at(file: tuple[int, int], netns_pids: Iterable[int] = ()) -> UnixSocket | None:
    """The listener bound to ``file`` in the host's namespace or in those of ``netns_pids`` (fixes use this).

    Namespaces that cannot be read are skipped; each namespace is read once however many pids share it.
    """
    seen: set[int] = set()
    tables: list[SocketTable] = []
    with contextlib.suppress(OSError):
        tables.append(read_table())
    for pid in netns_pids:
        try:
            ns = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            continue
        if ns in seen or any(t.netns == ns for t in tables):
            continue
        seen.add(ns)
        try:
            tables.append(read_table(pid))
        except OSError:
            continue
    for table in tables:
        found = table.listener_at(file)
        if found is not None:
            return found
    return None


def netns_of(pid: int | None) -> int:
    """The inode of a pid's network namespace (socktui's own for None); raises OSError for a gone pid."""
    return _own_netns() if pid is None else os.stat(f"/proc/{pid}/ns/net").st_ino


def network_namespaces(proc: str = "/proc") -> dict[int, int]:
    """Every network namespace a process on the machine is in: its inode -> one pid in it (the first found).

    One ``stat`` per process; those that cannot be looked at (gone, or another user's for a non-root socktui) are
    left out.
    """
    found: dict[int, int] = {}
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        try:
            netns = os.stat(f"{proc}/{pid}/ns/net").st_ino
        except OSError:
            continue
        found.setdefault(netns, int(pid))
    return found


def binds_a_path(pid: int, proc: str = "/proc") -> bool:
    """Whether a socket in ``pid``'s network namespace is bound to a path (not an abstract name). Only such a
    namespace can hold a socket bound to a file, and ``/proc/PID/net/unix`` says so without entering it (most
    containers' namespaces bind none): a cheap test before a dump. False when it cannot be read."""
    try:
        with open(f"{proc}/{pid}/net/unix", "rb") as fh:
            text = fh.read()
    except OSError:
        return False
    return any(s.name is not None and not s.name.startswith("@") for s in parse_proc_net_unix(text))


# ---------------------------------------------------------------------- sock_diag
_diag_state: list[bool] = []  # [available], decided by the first dump
# ENOENT: no sock_diag handler for AF_UNIX (unix_diag not built); EPROTONOSUPPORT: no NETLINK_SOCK_DIAG at all.
_NO_DIAG_ERRNOS = (errno.ENOENT, errno.EPROTONOSUPPORT, errno.EOPNOTSUPP)


class _NoUnixDiag(Exception):
    """The kernel cannot dump unix sockets over netlink."""


def _table_here(only: Only | None = None) -> SocketTable:
    return SocketTable(netns=_own_netns(), source=SOURCE_SOCK_DIAG, sockets=_dump(only))


def _own_netns() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def _dump(only: Only | None = None) -> tuple[UnixSocket, ...]:
    """One ``SOCK_DIAG_BY_FAMILY`` dump of the calling thread's network namespace."""
    states, show = _SERVER_STATES, _UDIAG_SHOW_NAME | _UDIAG_SHOW_VFS | _UDIAG_SHOW_RQLEN
    wanted: frozenset[tuple[int, int]] | None = None
    if only is not None:
        wanted = only.kernel_keys
        show = _UDIAG_SHOW_VFS | _UDIAG_SHOW_RQLEN
        if not only.connected_dgram:
            states &= ~(1 << _TCP_ESTABLISHED)
    try:
        nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_SOCK_DIAG)
    except OSError as exc:
        if exc.errno in _NO_DIAG_ERRNOS:
            raise _NoUnixDiag from exc
        raise
    with nl:
        nl.bind((0, 0))
        body = _UNIX_DIAG_REQ.pack(socket.AF_UNIX, 0, 0, states, 0, show, 0xFFFFFFFF, 0xFFFFFFFF)
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0)
        nl.sendall(header + body)
        found: list[UnixSocket] = []
        while True:
            data = nl.recv(_RECV_BYTES)
            if not data:
                raise OSError(errno.EIO, "sock_diag: netlink socket closed mid-dump")
            if _parse_batch(data, found, wanted):
                return tuple(found)


# The kernel fills a dump reply up to 32 KiB (or a page) per message batch: one recv takes a whole batch.
_RECV_BYTES = 1 << 16
_HEADER = _NLMSGHDR.size
_TYPE_AT = _HEADER + 1  # unix_diag_msg.udiag_type, right after the netlink header and the family byte
_FIRST_ATTR_AT = _HEADER + _UNIX_DIAG_MSG.size
_VFS_ATTR_LEN = _RTATTR.size + _U32_PAIR.size
_STATE_AT = _HEADER + 2


def _parse_batch(data: bytes, found: list[UnixSocket], wanted: frozenset[tuple[int, int]] | None = None) -> bool:
    """Parse one recv()'s worth of netlink messages into ``found``; True when the dump is done.

    A busy host's table is mostly connections, which serve nobody new: they are skipped by their type and state
    bytes before anything is unpacked (this loop is what a re-read of the table costs).
    """
    offset, end = 0, len(data)
    unpack_header, unpack_attr, unpack_pair = _NLMSGHDR.unpack_from, _RTATTR.unpack_from, _U32_PAIR.unpack_from
    while offset + _HEADER <= end:
        length, kind, _flags, _seq, _pid = unpack_header(data, offset)
        if length < _HEADER:
            raise OSError(errno.EIO, "sock_diag: malformed netlink message")
        if kind == _SOCK_DIAG_BY_FAMILY:
            if offset + _STATE_AT < end and (
                data[offset + _STATE_AT] == _TCP_LISTEN or data[offset + _TYPE_AT] == socket.SOCK_DGRAM
            ):
                if wanted is not None:
                    # Asked without names, the kernel puts a bound file's attribute first (net/unix/diag.c): a
                    # socket bound to no file asked about is passed over on that one attribute.
                    at = offset + _FIRST_ATTR_AT
                    if at + _VFS_ATTR_LEN > end or unpack_attr(data, at) != (_VFS_ATTR_LEN, _UNIX_DIAG_VFS):
                        offset += (length + 3) & ~3
                        continue
                    ino, kdev = unpack_pair(data, at + _RTATTR.size)
                    if (kdev, ino) not in wanted:
                        offset += (length + 3) & ~3
                        continue
                parsed = _parse_at(data, offset + _HEADER, min(offset + length, end), wanted)
                if parsed is not None:
                    found.append(parsed)
        elif kind == _NLMSG_DONE:
            return True
        elif kind == _NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, offset + _HEADER)
            if code != 0:
                if -code in _NO_DIAG_ERRNOS:
                    raise _NoUnixDiag
                raise OSError(-code, f"sock_diag: {os.strerror(-code)}")
        offset += (length + 3) & ~3
    return False


def parse_diag_msg(payload: bytes) -> UnixSocket | None:
    """One ``unix_diag_msg`` and its attributes."""
    return _parse_at(payload, 0, len(payload))


def _parse_at(data: bytes, start: int, end: int, wanted: frozenset[tuple[int, int]] | None = None) -> UnixSocket | None:
    """The ``unix_diag_msg`` at ``data[start:end]`` and its attributes, read in place (no copy of the message).

    With ``wanted`` (kernel-encoded ``(dev, ino)`` keys), a socket bound to another file, or to none, is skipped as
    soon as its file attribute is read."""
    if end - start < _UNIX_DIAG_MSG.size:
        return None
    _family, sock_type, state, _pad, inode, _c0, _c1 = _UNIX_DIAG_MSG.unpack_from(data, start)
    if state != _TCP_LISTEN and sock_type != socket.SOCK_DGRAM:
        return None  # a connection (or a socket that never listened): it serves nobody new
    name: str | None = None
    file: tuple[int, int] | None = None
    queued = backlog = None
    offset = start + _UNIX_DIAG_MSG.size
    unpack_attr, unpack_pair = _RTATTR.unpack_from, _U32_PAIR.unpack_from
    while offset + 4 <= end:
        attr_len, attr_type = unpack_attr(data, offset)
        if attr_len < 4 or offset + attr_len > end:
            break
        if attr_type == _UNIX_DIAG_NAME:
            name = _name(data[offset + 4 : offset + attr_len])
        elif attr_len >= 12:  # the two u32 values of VFS and RQLEN
            if attr_type == _UNIX_DIAG_VFS:
                ino, kdev = unpack_pair(data, offset + 4)
                if wanted is not None and (kdev, ino) not in wanted:
                    return None
                file = (_user_dev(kdev), ino)
            elif attr_type == _UNIX_DIAG_RQLEN:
                queued, backlog = unpack_pair(data, offset + 4)
        offset += (attr_len + 3) & ~3
    if file is None and (name is None or wanted is not None):
        return None  # unbound (no address, nothing anyone could connect to), or bound to no file asked about
    listening = state == _TCP_LISTEN
    if not listening:
        queued = backlog = None  # for other sockets these are bytes in flight, not an accept queue
    return UnixSocket(inode, _TYPE_NAMES.get(sock_type) or str(sock_type), listening, name, file, queued, backlog)


# A table names a handful of devices thousands of times.
_user_dev = lru_cache(maxsize=256)(user_dev)
_kernel_dev = lru_cache(maxsize=256)(kernel_dev)


def _name(raw: bytes) -> str | None:
    if not raw:
        return None
    if raw[:1] == b"\0":
        return "@" + os.fsdecode(raw[1:])
    return os.fsdecode(raw.partition(b"\0")[0])


def _in_netns(pid: int, only: Only | None = None) -> SocketTable:
    """Dump ``pid``'s network namespace, from the one thread that enters other namespaces."""
    return _netns_reader.dump(pid, only)


class _NetnsReader:
    """One long-lived thread that dumps other network namespaces: it enters each (``setns``), dumps it and returns
    to its own, so a look that reads hundreds of containers' namespaces pays no thread start for each (about 60
    microseconds a namespace here, against 300 for a thread of its own). Idle, it sleeps on its queue.

    ``setns(CLONE_NEWNET)`` moves only the calling thread, and this one is used for nothing else. A thread that could
    not get back to its own namespace answers no more requests: the next request starts a fresh one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[
            tuple[tuple[int, ...], Only | None, list[SocketTable | BaseException], threading.Event]
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def dump(self, pid: int, only: Only | None = None) -> SocketTable:
        result = self.dump_many((pid,), only)[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def dump_many(self, pids: Sequence[int], only: Only | None = None) -> list[SocketTable | BaseException]:
        """Each pid's table, or what went wrong reading it, in one hand-over to the thread (not one per pid)."""
        outcome: list[SocketTable | BaseException] = []
        done = threading.Event()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="socktui-netns", daemon=True)
                self._thread.start()
            self._requests.put((tuple(pids), only, outcome, done))
        done.wait()
        return outcome

    def _serve(self) -> None:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        home_netns = os.fstat(home).st_ino
        try:
            while True:
                pids, only, outcome, done = self._requests.get()
                stranded = False
                try:
                    for pid in pids:
                        if stranded:
                            outcome.append(OSError(errno.EIO, "the namespace reader could not return home"))
                            continue
                        try:
                            outcome.append(self._dump_of(pid, only, home, home_netns))
                        except BaseException as exc:  # handed to the caller's thread
                            outcome.append(exc)
                        stranded = _own_netns() != home_netns
                finally:
                    done.set()
                if stranded:
                    return  # never answer from another namespace again
        finally:
            os.close(home)

    @staticmethod
    def _dump_of(pid: int, only: Only | None, home: int, home_netns: int) -> SocketTable:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            netns = os.fstat(fd).st_ino
            if netns != home_netns:
                setns(fd, CLONE_NEWNET)
        finally:
            os.close(fd)
        try:
            if _own_netns() != netns:
                raise OSError(errno.EIO, f"could not enter the network namespace of pid {pid}")
            return SocketTable(netns=netns, source=SOURCE_SOCK_DIAG, sockets=_dump(only))
        finally:
            if netns != home_netns:
                setns(home, CLONE_NEWNET)


_netns_reader = _NetnsReader()


# ---------------------------------------------------------------------- /proc/net/unix fallback
def _read_proc(netns_pid: int | None) -> SocketTable:
    where = "self" if netns_pid is None else str(netns_pid)
    netns = netns_of(netns_pid)
    with open(f"/proc/{where}/net/unix", "rb") as fh:
        text = fh.read()
    return SocketTable(netns=netns, source=SOURCE_PROC, sockets=parse_proc_net_unix(text))


_PROC_TYPES = {"0001": "stream", "0002": "dgram", "0005": "seqpacket"}


def parse_proc_net_unix(text: bytes) -> tuple[UnixSocket, ...]:
    """The body of ``/proc/net/unix``. A name holding a newline cannot be told apart there: such lines are cut."""
    found = []
    for line in text.split(b"\n")[1:]:
        fields = line.split(None, 7)
        if len(fields) < 7:
            continue
        try:
            flags = int(fields[3], 16)
            inode = int(fields[6])
        except ValueError:
            continue
        if len(fields) < 8 or fields[5] == b"03":
            continue  # unbound, or connected (SS_CONNECTED): serves nobody new
        name = os.fsdecode(fields[7])
        found.append(
            UnixSocket(
                inode=inode,
                type=_PROC_TYPES.get(fields[4].decode("ascii", "replace"), fields[4].decode("ascii", "replace")),
                listening=bool(flags & _SO_ACCEPTCON),
                name=name,
                file=None,
                queued=None,
                backlog=None,
            )
        )
    return tuple(found)
