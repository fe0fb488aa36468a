"""The plumbing picture: where a shared socket really is, from the server to what the container sees.

server (pid, command) -> socket inode -> host path -> the mount (-v or --mount) -> container path -> what the
container sees (inode, the same or not), with the one broken link marked and labelled in words ("still holds inode
2187294, deleted"; "Docker created this directory at 18:57:24 when web started").

A pure function of a ``MountReport`` (and the container it belongs to): no I/O, no clock unless given one, so
``socktui check --explain`` and the TUI's detail pane draw the very same lines. ``plumbing`` decides what each node
and link says; ``draw`` lays it out in a given width, with box characters or, for a terminal that is not UTF-8,
plain ASCII.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from .model import (
    ContainerReport,
    ContainerSpec,
    ContainerView,
    Kind,
    Listener,
    Liveness,
    MountReport,
    PathStat,
    Role,
    SocketReport,
    Verdict,
)
from .report import printable

# What the TUI's detail pane offers at 80x24: 44 columns, less its border, padding and a scrollbar.
PANE_WIDTH = 38
LABEL_WIDTH = 7
MIN_WIDTH = 20  # narrower than this, ``draw`` still uses 20


class LinkState(StrEnum):
    OK = "ok"
    BROKEN = "broken"
    UNKNOWN = "unknown"  # cannot be checked from here


class Part(StrEnum):
    """The nodes of the chain, in order."""

    SERVER = "server"
    SOCKET = "socket"
    HOST = "host"
    INSIDE = "inside"
    SEES = "sees"


@dataclass(frozen=True)
class Node:
    part: Part
    text: str
    label: str = ""  # shown instead of the part's name ("sockets" for a shared directory)


@dataclass(frozen=True)
class Link:
    state: LinkState
    note: str = ""
    drawn: bool = True  # False: the two nodes sit on adjacent lines (a socket and the path it is at)


@dataclass(frozen=True)
class Plumbing:
    """Nodes in chain order; ``links[i]`` joins ``nodes[i]`` and ``nodes[i + 1]``."""

    nodes: tuple[Node, ...]
    links: tuple[Link, ...]

    @property
    def broken(self) -> int | None:
        """Index of the first link that is not OK, or None when the whole chain holds."""
        return next((i for i, link in enumerate(self.links) if link.state is not LinkState.OK), None)


class LineKind(StrEnum):
    NODE = "node"
    LINK = "link"
    BROKEN = "broken"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Line:
    text: str
    kind: LineKind


@dataclass(frozen=True)
class Charset:
    pipe: str
    broken: str
    unknown: str
    ellipsis: str
    ascii: bool


UNICODE = Charset(pipe="│", broken="╳", unknown="?", ellipsis="…", ascii=False)
ASCII = Charset(pipe="|", broken="X", unknown="?", ellipsis="...", ascii=True)


def charset_for(encoding: str | None) -> Charset:
    """Box characters for a UTF-8 stream, ASCII for anything else (latin-1 locales, ``PYTHONIOENCODING=ascii``)."""
    name = (encoding or "").lower().replace("-", "").replace("_", "")
    return UNICODE if name in ("utf8", "utf8sig") else ASCII


def hhmmss(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(seconds))


Clock = Callable[[float], str]


# --------------------------------------------------------------------------------------------------- deciding


def brief_command(command: str) -> str:
    """A command line as a reader wants it: the program names without their directories (``draw`` cuts it)."""
    words = command.split()
    # The interpreter and the script: their directories say little. Arguments (often the socket's path) stay whole.
    for i, word in enumerate(words[:2]):
        if word.startswith("/") and len(word) > 1:
            words[i] = posixpath.basename(word)
    return printable(" ".join(words))


def _server(listener: Listener | None) -> str:
    if listener is None:
        return "listening (process not named)"
    where = f" in {printable(listener.container)}" if listener.container else ""
    return f"pid {listener.pid} {brief_command(listener.command)}{where}"


def _kind_text(st: PathStat) -> str:
    if st.kind is Kind.SYMLINK:
        return f"a symlink to {printable(st.symlink_target or '?')}"
    if st.kind is Kind.DIRECTORY and st.entries == 0:
        return "an empty directory"
    return st.kind.words


def _mode(st: PathStat) -> str:
    return f"{st.mode:04o} {st.uid}:{st.gid}"


def _mount_text(m: MountReport) -> str:
    spec = m.mount
    flag = ""
    if spec.type == "bind" and spec.from_binds is not None:
        flag = "-v " if spec.from_binds else "--mount "
    return f"{flag}{spec.type}, {'rw' if spec.rw else 'ro'}"


def _name(container: ContainerSpec | None) -> str:
    return printable(container.name) if container is not None else "the container"


def _running(container: ContainerSpec | None, view: ContainerView | None) -> bool:
    return container.running if container is not None else view is not None


def _sees(view: ContainerView | None, container: ContainerSpec | None, healthy: bool) -> str:
    if not _running(container, view):
        state = container.state if container is not None else "not running"
        return f"nothing yet: {_name(container)} is {state}"
    if view is None or view.stat is None:
        return "not looked into"
    st = view.stat
    if st.kind is Kind.MISSING:
        return "nothing there"
    if st.kind is Kind.ERROR:
        return f"cannot look ({st.error})"
    gone = ", deleted" if st.nlink == 0 and st.kind is Kind.SOCKET else ""
    what = "inode" if st.kind is Kind.SOCKET else f"{st.kind.value} inode"
    # The view is probed as root: its success says nothing about a denied user, so it is shown only when healthy.
    connects = ", connects" if healthy and view.probe is not None and view.probe.ok else ""
    return f"{what} {st.ino}{gone}{connects}"


def _view_link(m: MountReport, host: PathStat | None, container: ContainerSpec | None, same: str) -> Link:
    """The last link: does the container see the host's object? Also where a denied user is stopped."""
    view = m.container
    if m.verdict is Verdict.UNSTARTABLE:
        return Link(LinkState.BROKEN, "docker start fails: its own layer has a directory here")
    if not _running(container, view):
        if host is not None and host.kind in (Kind.SOCKET, Kind.DIRECTORY) and _healthy(m):
            return Link(LinkState.OK, "sees it when started")
        return Link(LinkState.OK, drawn=False)
    if host is None:
        return Link(LinkState.OK, drawn=False)  # nothing was looked at: the first mark already says why
    if view is None or view.stat is None:
        why = view.unavailable if view is not None and view.unavailable else "the container was not looked into"
        return Link(LinkState.UNKNOWN, why)
    st = view.stat
    if st.kind is Kind.ERROR:
        return Link(LinkState.UNKNOWN, f"its view cannot be read ({st.error})")
    if host is not None and host.kind not in (Kind.MISSING, Kind.ERROR):
        if st.kind is Kind.MISSING:
            return Link(LinkState.BROKEN, "sees nothing: its mount no longer shows the host's file")
        if st.identity != host.identity:
            if st.nlink == 0:
                return Link(LinkState.BROKEN, f"still holds inode {st.ino}, deleted")
            return Link(LinkState.BROKEN, f"still holds inode {st.ino}, not the host's {host.ino}")
    if m.verdict is Verdict.DENIED:
        user = f"user {printable(container.user)}" if container is not None and container.user else "its user"
        return Link(LinkState.BROKEN, f"{user} may not connect: the socket is {_mode(st)}")
    if view.probe is not None and not view.probe.ok:
        return Link(LinkState.UNKNOWN, f"connect() from inside got {view.probe.errno}")
    return Link(LinkState.OK, same)


def _file_chain(m: MountReport, container: ContainerSpec | None, clock: Clock) -> Plumbing:
    host, probe = m.host, m.host_probe
    verdict = m.verdict
    name = _name(container)
    server_link = Link(LinkState.OK, "listens on")
    if host is None:
        server, socket_text = "not looked at", "not looked at"
        server_link = Link(LinkState.UNKNOWN, _first_clause(m.reason) or "the host was not looked at")
    elif host.kind is Kind.ERROR:
        server, socket_text = "not known", f"cannot look ({host.error})"
        server_link = Link(LinkState.UNKNOWN, f"cannot lstat the host path: {host.error}")
    elif host.kind is Kind.MISSING:
        server, socket_text = "none bound here", "none: nothing at the host path"
        note = "no server has made the socket"
        if container is not None and container.state == "created" and m.mount.from_binds is True:
            note = f"starting {name} will make Docker create a directory here"
        elif container is not None and not container.running and m.mount.from_binds is True:
            note = f"no socket; the next start of {name} makes Docker create a directory here"
        server_link = Link(LinkState.BROKEN, note)
    elif host.kind is Kind.SOCKET:
        socket_text = f"inode {host.ino}"
        bound = m.bound  # from the kernel's socket table: no connect was made
        if bound is not None and bound.liveness is Liveness.UNBOUND:
            server, socket_text = "nobody listens", f"inode {host.ino}, stale"
            server_link = Link(LinkState.BROKEN, "no socket is bound to it: the server died and left it behind")
        elif bound is not None and bound.liveness is Liveness.NOT_ACCEPTING:
            server = _server(m.listener)
            server_link = Link(LinkState.UNKNOWN, "bound but not accepting: its accept queue is full")
        elif bound is not None and bound.answering:
            server = _server(m.listener)
        elif bound is not None and probe is None:
            server = "not known"
            server_link = Link(LinkState.UNKNOWN, "its server's network namespace cannot be read")
        elif probe is not None and not probe.ok and probe.errno == "ECONNREFUSED":
            server, socket_text = "nobody listens", f"inode {host.ino}, stale"
            server_link = Link(LinkState.BROKEN, "connect() refused: the server died and left its socket behind")
        elif probe is not None and not probe.ok and probe.errno == "EAGAIN":
            server = _server(m.listener)
            server_link = Link(LinkState.UNKNOWN, "bound but not accepting: its backlog is full")
        elif probe is not None and not probe.ok and probe.errno == "EACCES" and verdict is not Verdict.DENIED:
            server = "not known"
            server_link = Link(LinkState.UNKNOWN, "socktui itself may not connect (EACCES)")
        elif probe is not None and not probe.ok:
            server = "not known"
            server_link = Link(LinkState.UNKNOWN, f"connect() got {probe.errno}")
        elif probe is None:
            server = "not probed"
            server_link = Link(LinkState.UNKNOWN, "not probed")
        else:
            server = _server(m.listener)
    else:
        server = "cannot bind here"
        socket_text = f"none: {_kind_text(host)}"
        if host.kind is not Kind.DIRECTORY:
            socket_text += f", {_mode(host)}"
        if host.kind is Kind.DIRECTORY and m.shadow_created_by_docker_at is not None:
            note = f"Docker created this directory at {clock(m.shadow_created_by_docker_at)} when {name} started"
        elif host.kind is Kind.DIRECTORY:
            note = "bind() fails (EADDRINUSE): a directory is in the way"
        else:
            note = f"bind() fails: {_kind_text(host)} is in the way"
        server_link = Link(LinkState.BROKEN, note)

    socket_is_file = host is not None and host.kind is Kind.SOCKET
    nodes = (
        Node(Part.SERVER, server),
        Node(Part.SOCKET, socket_text),
        Node(Part.HOST, printable(m.mount.source)),
        Node(Part.INSIDE, printable(m.mount.destination)),
        Node(Part.SEES, _sees(m.container, container, _healthy(m))),
    )
    same = "same inode" if socket_is_file else f"the same {'directory' if _is_dir(host) else 'file'}"
    links = (
        server_link,
        Link(LinkState.OK, _at(host), drawn=False),
        Link(LinkState.OK, _mount_text(m)),
        _view_link(m, host, container, same),
    )
    return _with_fallback(Plumbing(nodes, links), m)


def _worst_socket(sockets: Iterable[SocketReport]) -> SocketReport | None:
    bad = [s for s in sockets if not s.verdict.healthy]
    return max(bad, key=lambda s: s.verdict.severity) if bad else None


def _socket_note(s: SocketReport) -> str:
    sock = printable(s.name)
    if s.verdict is Verdict.STALE:
        return f"{sock}: connect() refused, its server died"
    if s.verdict is Verdict.MISSING:
        return f"{sock}: no socket there"
    if s.verdict is Verdict.NOT_SOCKET and s.host is not None:
        return f"{sock} is {_kind_text(s.host)}, not a socket"
    return f"{sock}: {s.verdict.value}"


def _dir_chain(m: MountReport, container: ContainerSpec | None) -> Plumbing:
    host = m.host
    sockets = m.sockets
    worst = _worst_socket(sockets)
    names = " ".join(printable(s.name) for s in sockets)
    if not sockets:
        server, inside, many_servers = "none", "none inside", False
        server_link = Link(LinkState.BROKEN, "no server has bound a socket here")
    else:
        shown = worst or sockets[0]
        others = len({s.listener.pid for s in sockets if s.listener} - {shown.listener.pid if shown.listener else -1})
        more = f" +{others} more" if others else ""
        many_servers = False
        if shown.verdict.healthy or shown.listener is not None:
            server = _server(shown.listener) + more
            many_servers = others > 0
        else:
            server = f"{'nobody listens' if shown.verdict is Verdict.STALE else 'none'} on {printable(shown.name)}"
        inside = f"{len(sockets)} inside: {names}"
        if worst is None:
            server_link = Link(LinkState.OK, "listen in the directory")
        else:
            state = LinkState.UNKNOWN if worst.verdict is Verdict.UNKNOWN else LinkState.BROKEN
            server_link = Link(state, _socket_note(worst))
    view = m.container
    if _running(container, view) and view is not None and view.stat is not None and host is not None:
        if view.stat.kind is Kind.DIRECTORY and view.stat.identity != host.identity:
            last = Link(LinkState.BROKEN, f"still holds directory inode {view.stat.ino}, re-created since")
        else:
            last = _view_link(m, host, container, "same directory")
    else:
        last = _view_link(m, host, container, "same directory")
    nodes = (
        Node(Part.SERVER, server, "servers" if many_servers else ""),
        Node(Part.SOCKET, inside, "sockets"),
        Node(Part.HOST, printable(m.mount.source.rstrip("/") + "/")),
        Node(Part.INSIDE, printable(m.mount.destination.rstrip("/") + "/")),
        Node(Part.SEES, _sees(view, container, _healthy(m))),
    )
    links = (
        server_link,
        Link(LinkState.OK, "in the directory", drawn=False),
        Link(LinkState.OK, _mount_text(m)),
        last,
    )
    return _with_fallback(Plumbing(nodes, links), m)


def _at(host: PathStat | None) -> str:
    if host is None or host.kind is Kind.SOCKET:
        return "is the file at"
    return "would be at" if host.kind is Kind.MISSING else "stands at"


def _healthy(m: MountReport) -> bool:
    return m.verdict is not None and m.verdict.healthy


def _is_dir(st: PathStat | None) -> bool:
    return st is not None and st.kind is Kind.DIRECTORY


def _first_clause(reason: str) -> str:
    return printable(reason.split(";", 1)[0].split(": ", 1)[0]) if reason else ""


def _with_fallback(p: Plumbing, m: MountReport) -> Plumbing:
    """A verdict that is not healthy always shows a mark: when no link explains it, the reason goes on the last."""
    if m.verdict is None or m.verdict.healthy or p.broken is not None:
        return p
    state = LinkState.UNKNOWN if m.verdict is Verdict.UNKNOWN else LinkState.BROKEN
    note = _first_clause(m.reason) or m.verdict.value
    return Plumbing(p.nodes, (*p.links[:-1], Link(state, note)))


def plumbing(m: MountReport, container: ContainerSpec | None = None, *, clock: Clock = hhmmss) -> Plumbing:
    """What each node and link of the chain says for this mount. ``clock`` formats the shadow directory's time."""
    if m.role is Role.SOCKET_DIR:
        return _dir_chain(m, container)
    return _file_chain(m, container, clock)


# --------------------------------------------------------------------------------------------------- drawing


def _fit(text: str, width: int, charset: Charset) -> str:
    """One line of at most ``width`` characters; a long path keeps its end (the socket's name) and its start."""
    if charset.ascii:
        text = text.encode("ascii", "backslashreplace").decode("ascii")
    if len(text) <= width:
        return text
    cut = charset.ellipsis
    if width <= len(cut):
        return text[:width]
    if text.startswith("/") and " " not in text:
        return _fit_path(text, width, cut)
    return text[: width - len(cut)] + cut


def _fit_path(path: str, width: int, cut: str) -> str:
    """'/run/…/srv/metrics.sock': the first directory, then as many whole trailing components as fit."""
    parts = path.split("/")
    head = f"/{parts[1]}/" if len(parts) > 2 else "/"
    tail = ""
    for part in reversed(parts[2:] if len(parts) > 2 else parts[1:]):
        candidate = f"{part}/{tail}" if tail else part
        if len(head) + len(cut) + 1 + len(candidate) > width:
            break
        tail = candidate
    if tail and len(head) + len(tail) < len(path):
        return f"{head}{cut}/{tail}"
    keep = width - len(cut)
    return path[: keep // 3] + cut + path[len(path) - (keep - keep // 3) :]


def _wrap(text: str, width: int, charset: Charset, most: int = 2) -> list[str]:
    if charset.ascii:
        text = text.encode("ascii", "backslashreplace").decode("ascii")
    words = text.split(" ")
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
    if current:
        lines.append(current)
    if len(lines) > most:
        rest = " ".join(lines[most - 1 :])
        lines = [*lines[: most - 1], _fit(rest, width, charset)]
    return [_fit(line, width, charset) for line in lines]


def draw(p: Plumbing, width: int = PANE_WIDTH, charset: Charset = UNICODE) -> tuple[Line, ...]:
    """The chain as lines of at most ``width`` characters: a node per line, a link between each two.

    A broken link is drawn with a cross and its label (over at most two lines); a link that cannot be checked with
    a question mark; the others with a plain pipe and a word or two.
    """
    width = max(width, MIN_WIDTH)
    body = width - LABEL_WIDTH - 1
    link_body = width - 4
    lines: list[Line] = []
    for index, node in enumerate(p.nodes):
        label = node.label or node.part.value
        lines.append(Line(f"{label:<{LABEL_WIDTH}} {_fit(node.text, body, charset)}".rstrip(), LineKind.NODE))
        if index >= len(p.links):
            continue
        link = p.links[index]
        if link.state is LinkState.OK and not link.drawn:
            continue
        if link.state is LinkState.OK:
            note = _fit(link.note, link_body, charset) if link.note else ""
            lines.append(Line(f"  {charset.pipe} {note}".rstrip(), LineKind.LINK))
            continue
        mark, kind = (
            (charset.broken, LineKind.BROKEN) if link.state is LinkState.BROKEN else (charset.unknown, LineKind.UNKNOWN)
        )
        for part in _wrap(link.note, link_body, charset) or [""]:
            lines.append(Line(f"  {mark} {part}".rstrip(), kind))
    return tuple(lines)


def picture(
    m: MountReport,
    container: ContainerSpec | None = None,
    *,
    width: int = PANE_WIDTH,
    charset: Charset = UNICODE,
    clock: Clock = hhmmss,
) -> tuple[Line, ...]:
    """``draw(plumbing(...))``: the lines the CLI prints and the TUI shows. Empty for a mount that is not a socket's."""
    if not m.relevant:
        return ()
    return draw(plumbing(m, container, clock=clock), width, charset)


TEXT_INDENT = 13  # where ``socktui check`` puts a mount's reason


def text_explainer(
    charset: Charset, width: int = 80, clock: Clock = hhmmss
) -> Callable[[ContainerReport, MountReport], list[str]]:
    """The lines ``socktui check --explain`` adds under each socket mount: its picture, indented like the reason."""

    def lines(c: ContainerReport, m: MountReport) -> list[str]:
        drawn = picture(m, c.container, width=width - TEXT_INDENT, charset=charset, clock=clock)
        return [" " * TEXT_INDENT + line.text for line in drawn]

    return lines
