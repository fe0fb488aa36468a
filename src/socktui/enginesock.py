"""The engine's own socket, judged with the same verdicts when the engine cannot be reached.

"Nothing is listening there" is the last thing to say, not the first. Where ``docker.sock`` should be there may be a
*directory* (containers restarted with ``-v /var/run/docker.sock:...`` before dockerd bound it make one, and dockerd
then cannot start: "can't create unix socket /var/run/docker.sock: is a directory"), a stale socket file (a daemon
that died), nothing at all, or a socket socktui's user may not use. :func:`judge_engine_socket` looks (``lstat``
through :mod:`socktui.hostpath`, the kernel's socket table, never a connect) and :func:`decide_engine_socket` says
which, with the advice and the fix that apply; :func:`explain_unreachable` puts that in place of the engine error's
problem, for ``socktui check``'s stderr, ``socktui fix`` and the TUI's banner. ``socktui fix --engine-socket`` applies
the fix (``fixes/enginesock.py``).
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, replace
from urllib.parse import urlparse

from .engine import DEFAULT_SOCKET, Endpoint, EndpointError, EngineError
from .fsview import host_lstat
from .listeners import ListenerIndex
from .model import UNTRUSTED_SYMLINK, Creds, Kind, Listener, Liveness, PathStat, Product, SocketState, Verdict
from .permissions import WRITE, can_access
from .text import counted

REMOVE_SHADOW_DIR = "remove-shadow-dir"


@dataclass(frozen=True)
class EngineSocket:
    """The engine's socket path, its verdict and reason, what to do, and the fix socktui can apply (if any)."""

    path: str
    verdict: Verdict
    reason: str
    advice: str
    host: PathStat | None = None
    listener: Listener | None = None
    fix: str | None = None  # the id for ``socktui fix --engine-socket FIX``
    start: str = "start the daemon"  # how to start the engine, once its socket path is clear

    @property
    def healthy(self) -> bool:
        return self.verdict.healthy


def socket_path(endpoint: Endpoint) -> str | None:
    """The local path of a ``unix://`` endpoint; None for tcp://, ssh:// and the rest (not ours to look at)."""
    if not endpoint.url.startswith("unix://"):
        return None
    return urlparse(endpoint.url).path or None


def _daemon(product: Product) -> str:
    return "Podman's API service" if product is Product.PODMAN else "dockerd"


def _start(product: Product) -> str:
    if product is Product.PODMAN:
        return "start Podman's API service (sudo systemctl start podman.socket, or systemctl --user for rootless)"
    return "start the daemon (sudo systemctl start docker)"


def _clock(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _me() -> tuple[Creds, str]:
    uid, gid = os.geteuid(), os.getegid()
    groups = tuple(sorted(set(os.getgroups()) - {gid}))
    words = f"uid {uid} gid {gid}" + (f" groups {','.join(map(str, groups))}" if groups else "")
    return Creds(uid=uid, gid=gid, groups=groups), words


def decide_engine_socket(
    path: str,
    host: PathStat,
    bound: SocketState | None,
    listener: Listener | None,
    me: tuple[Creds, str],
    product: Product = Product.DOCKER,
    fix_command: str = "socktui fix --engine-socket",
) -> EngineSocket:
    """The verdict for the engine's socket path: pure, from what was seen."""
    judged = _decide(path, host, bound, listener, me, product, fix_command)
    return replace(judged, start=_start(product))


def _decide(
    path: str,
    host: PathStat,
    bound: SocketState | None,
    listener: Listener | None,
    me: tuple[Creds, str],
    product: Product,
    fix_command: str,
) -> EngineSocket:
    daemon, start = _daemon(product), _start(product)
    if host.kind is Kind.ERROR:
        if host.error == UNTRUSTED_SYMLINK:
            why = "the way to it goes through a symlink someone other than root controls: not followed"
        else:
            why = f"cannot lstat it: {host.error}"
        return EngineSocket(path, Verdict.UNKNOWN, why, "Run socktui as root to look at it.", host)
    if host.kind is Kind.MISSING:
        return EngineSocket(
            path,
            Verdict.MISSING,
            f"nothing at {path}: {daemon} is not running, or it listens somewhere else",
            f"{start[0].upper()}{start[1:]}, or point socktui at the right engine with --host, --context or "
            "DOCKER_HOST.",
            host,
        )
    if host.kind is Kind.DIRECTORY:
        empty = host.entries == 0
        what = "empty" if empty else counted(host.entries, "entry", "entries") if host.entries is not None else "?"
        owner = "root-owned" if host.uid == 0 else f"owned by uid {host.uid}"
        reason = (
            f"a directory ({what}, {owner}, made {_clock(host.mtime)}) stands where the engine's socket should be: "
            f'{daemon} cannot start ("can\'t create unix socket {path}: is a directory"); containers started with '
            f"a -v mount of {path} before {daemon} bound it make this directory"
        )
        if empty:
            return EngineSocket(
                path,
                Verdict.SHADOWED,
                reason,
                f"Remove it: sudo {fix_command} {REMOVE_SHADOW_DIR} (rmdir of the empty directory, with the checks of "
                f"remove-shadow-dir), then {start}.",
                host,
                fix=REMOVE_SHADOW_DIR,
            )
        return EngineSocket(
            path,
            Verdict.SHADOWED,
            reason,
            f"It is not empty, so socktui will not remove it: look at what is in {path}, move it away, then {start}.",
            host,
        )
    if host.kind is not Kind.SOCKET:
        return EngineSocket(
            path,
            Verdict.NOT_SOCKET,
            f"{host.kind.words} ({host.mode:04o} {host.uid}:{host.gid}) stands where the engine's socket should be: "
            f"{daemon} cannot create its socket there",
            f"Move it away (it is not a socket), then {start}.",
            host,
        )
    creds, words = me
    if bound is not None and bound.liveness is Liveness.UNBOUND:
        return EngineSocket(
            path,
            Verdict.STALE,
            f"a socket file nobody listens on (inode {host.ino}, last changed {_clock(host.mtime)}): {daemon} "
            "stopped without removing it",
            f"{start[0].upper()}{start[1:]}: it replaces the stale file itself.",
            host,
        )
    if not can_access(creds, host, WRITE):
        group = (host.mode >> 3) & WRITE == WRITE
        join = (
            f"join its group (gid {host.gid}; for docker: sudo usermod -aG docker $USER, then log in again), or run "
            "socktui with sudo"
            if group
            else "run socktui with sudo (only the socket's owner may use it)"
        )
        return EngineSocket(
            path,
            Verdict.DENIED,
            f"permission denied on the engine socket: it is {host.mode:04o} {host.uid}:{host.gid} and socktui runs "
            f"as {words}, so connecting needs write permission it does not have",
            f"{join[0].upper()}{join[1:]}.",
            host,
        )
    if bound is not None and bound.liveness is Liveness.NOT_ACCEPTING:
        return EngineSocket(
            path,
            Verdict.UNKNOWN,
            f"{daemon} is bound but not accepting: its accept queue is full ({bound.queued} of {bound.backlog} "
            "waiting); it is stuck or overloaded",
            "Check the daemon (its log, its load); restart it if it stays stuck.",
            host,
        )
    if bound is not None and bound.answering:
        who = f"pid {listener.pid} {listener.command.split(' ', 1)[0]}" if listener is not None else "a server"
        return EngineSocket(
            path, Verdict.LIVE, f"{who} listens on {path}: the socket is fine", "", host, listener=listener
        )
    return EngineSocket(
        path,
        Verdict.UNKNOWN,
        "a socket file, but the socket table could not say whether anyone listens (a namespace socktui cannot read)",
        "Run socktui as root to see every namespace.",
        host,
    )


def judge_engine_socket(endpoint: Endpoint, product: Product | None = None) -> EngineSocket | None:
    """Look at the engine's socket path (no connect) and judge it; None when the endpoint is not a local path."""
    product = product or _product_of(endpoint)
    path = socket_path(endpoint)
    if path is None:
        return None
    host = host_lstat(path)
    bound = listener = None
    if host.kind is Kind.SOCKET:
        index = ListenerIndex({})
        bound = index.state(host.identity, path)
        index.resolve()
        listener = index.listener(bound)
    return decide_engine_socket(path, host, bound, listener, _me(), product, engine_socket_command(endpoint))


def engine_socket_command(endpoint: Endpoint) -> str:
    """``socktui fix --engine-socket``, naming the endpoint unless it is the default socket (sudo drops
    ``DOCKER_HOST``)."""
    if endpoint.url == DEFAULT_SOCKET:
        return "socktui fix --engine-socket"
    return f"socktui fix -H {shlex.quote(endpoint.url)} --engine-socket"


def _product_of(endpoint: Endpoint) -> Product:
    return Product.PODMAN if "podman" in endpoint.url.rsplit("/", 1)[-1] else Product.DOCKER


def explain_unreachable(exc: EngineError, endpoint: Endpoint) -> EngineError:
    """The engine error with its socket's verdict in place of the problem, when the socket itself is the problem.

    A socket that a daemon is bound to is fine: then the engine's own answer was the problem, and ``exc`` stands.
    """
    if isinstance(exc, EndpointError) or not exc.failure.at_the_socket:
        return exc  # a timeout, a refusal by the engine, an old API: the socket let us through; its answer did not
    judged = judge_engine_socket(endpoint)
    if judged is None or judged.verdict is Verdict.LIVE:
        return exc
    if judged.verdict is Verdict.UNKNOWN and judged.host is not None and judged.host.kind is Kind.SOCKET:
        return exc  # a socket whose listener could not be seen: the engine's own error says more
    return EngineError(exc.endpoint, f"{judged.verdict.value}: {judged.reason}", judged.advice, exc.failure)
