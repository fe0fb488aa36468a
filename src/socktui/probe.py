"""Connecting to sockets without ever hanging.

Every connect is non-blocking: a listener whose backlog is full answers EAGAIN at once instead of blocking forever.
Anything that waits for a reply (``/_ping``, an echo line) does so against a deadline. Probes go through an
``O_PATH`` fd (``/proc/self/fd/N``) so that the object connected to is exactly the one that was ``lstat``-ed: a
symlink swapped in between cannot redirect the connect.
"""

from __future__ import annotations

import os
import select
import socket
import stat
import time

from .fsview import fd_path
from .linux import errno_name
from .model import ProbeResult

DEFAULT_DEADLINE = 0.5  # seconds, for anything that waits for a reply

_TYPES = (
    ("stream", socket.SOCK_STREAM),
    ("seqpacket", socket.SOCK_SEQPACKET),
    ("dgram", socket.SOCK_DGRAM),
)
_PING_REQUEST = b"GET /_ping HTTP/1.1\r\nHost: socktui\r\nUser-Agent: socktui\r\nConnection: close\r\n\r\n"


def probe_host_path(
    path: str, *, ping: bool = False, send: bytes | None = None, deadline: float = DEFAULT_DEADLINE
) -> ProbeResult:
    """Probe a host path, refusing to follow a symlink at its last component."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        return ProbeResult(ok=False, errno=errno_name(exc.errno), detail=f"cannot open: {exc.strerror}")
    try:
        return probe_fd(fd, ping=ping, send=send, deadline=deadline)
    finally:
        os.close(fd)


def probe_fd(
    fd: int, *, ping: bool = False, send: bytes | None = None, deadline: float = DEFAULT_DEADLINE
) -> ProbeResult:
    """Connect to the socket an ``O_PATH`` fd refers to, trying the socket's own type (stream, seqpacket, dgram)."""
    mode = os.fstat(fd).st_mode
    if stat.S_ISLNK(mode):
        return ProbeResult(ok=False, errno="ELOOP", detail="a symlink: not followed")
    if not stat.S_ISSOCK(mode):
        # connect() would say ECONNREFUSED for a directory or a file; say what it really is instead.
        return ProbeResult(ok=False, errno="ENOTSOCK", detail="not a socket")
    target = fd_path(fd)
    result = ProbeResult(ok=False, errno="EPROTOTYPE")
    for type_name, sock_type in _TYPES:
        result = _connect(target, type_name, sock_type, ping=ping, send=send, deadline=deadline)
        if result.errno != "EPROTOTYPE":
            return result
    return result


def _connect(
    target: str, type_name: str, sock_type: int, *, ping: bool, send: bytes | None, deadline: float
) -> ProbeResult:
    sock = socket.socket(socket.AF_UNIX, sock_type | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    try:
        started = time.perf_counter()
        code = sock.connect_ex(target)
        latency_ms = (time.perf_counter() - started) * 1000
        if code != 0:
            name = errno_name(code)
            detail = "backlog full: the server is not accepting" if name == "EAGAIN" else os.strerror(code)
            return ProbeResult(ok=False, errno=name, latency_ms=latency_ms, sock_type=type_name, detail=detail)
        if type_name != "stream":
            return ProbeResult(ok=True, latency_ms=latency_ms, sock_type=type_name, detail=f"{type_name} socket")
        api = None
        reply = None
        detail = "connected"
        if ping:
            raw = _exchange(sock, _PING_REQUEST, deadline, until_close=True)
            api = recognise_api(raw)
            detail = f"answers /_ping: {api} API" if api else "connected; no Docker API reply"
        elif send is not None:
            raw = _exchange(sock, send, deadline, until_close=False)
            reply = raw.decode("utf-8", "replace") if raw else None
            detail = "replied" if raw else f"no reply within {int(deadline * 1000)} ms"
        return ProbeResult(ok=True, latency_ms=latency_ms, sock_type=type_name, api=api, detail=detail, reply=reply)
    finally:
        sock.close()


def _exchange(sock: socket.socket, payload: bytes, deadline: float, *, until_close: bool) -> bytes:
    """Send ``payload``, then read until the peer closes (or a newline, for a line) or time runs out."""
    end = time.monotonic() + deadline
    try:
        pending = payload
        while pending:
            remaining = end - time.monotonic()
            if remaining <= 0 or not select.select([], [sock], [], remaining)[1]:
                return b""
            pending = pending[sock.send(pending) :]
        chunks: list[bytes] = []
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
                break
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if not until_close and b"\n" in chunk:
                break
            if sum(len(c) for c in chunks) > 65536:
                break
        return b"".join(chunks)
    except OSError:
        return b""


def recognise_api(raw: bytes) -> str | None:
    """'docker' or 'podman' when ``raw`` is an HTTP 200 reply to ``/_ping`` with body ``OK``."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines or not lines[0].startswith(b"HTTP/1.") or b" 200 " not in lines[0] + b" ":
        return None
    if b"OK" not in body[:64]:
        return None
    headers = b"\n".join(lines[1:]).lower()
    if b"libpod" in headers:
        return "podman"
    return "docker"
