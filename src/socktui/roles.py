"""Which mounts matter: deciding a mount's role from names, and from what the host has at its source.

The name rules are pure; ``role_of`` takes the host's kind, the socket names found one level down a directory and
the clues that a directory is meant to hold sockets (:func:`dir_clues`) as arguments, so that it stays a function
of its inputs.

A directory whose sockets are gone (``nginx -s stop``, ``pg_ctlcluster ... stop``, a server that unlinks its socket
on exit, socktui's own remove-stale-socket) must not drop out of the report: every client in the container then gets
``ENOENT``. It keeps the socket-dir role when it held a socket earlier in the session, holds a socket's companion
files (a lock file naming the socket, a known server's pid file), is a conventional runtime socket directory on
either side of the mount, or ``--expect DIR/`` names it. A plain data directory has none of these.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from .model import Kind, MountSpec, Role

# Matched against the last path component.
_SOCKET_NAME_PATTERNS = (
    "*.sock",
    "*.socket",
    "docker.sock",
    "podman.sock",
    ".s.PGSQL.*",
    "mysqld.sock",
    "ssh-auth.sock",
    "S.gpg-agent*",
    "agent.[0-9]*",  # OpenSSH's agent socket: /tmp/ssh-XXXX/agent.<pid>
)
# Matched against the whole path.
_SOCKET_PATH_PATTERNS = (
    "/tmp/.X11-unix/X[0-9]*",
    "/tmp/ssh-*/agent.*",
    "*/ssh-agent*",
)
# A socket's companions are never sockets themselves, whatever the rest of their name says.
_NOT_SOCKET_SUFFIXES = (".lock", ".pid", ".lck")


def looks_like_socket(path: str) -> bool:
    """True when a path's name says it is a socket. Works on any string, including newlines and unicode.

    Lock and pid files (``.s.PGSQL.5432.lock``, ``mysqld.sock.lock``, ``app.sock.pid``) are companions of a socket,
    not candidates."""
    if not path:
        return False
    name = posixpath.basename(path.rstrip("/")) or path
    if name.endswith(_NOT_SOCKET_SUFFIXES):
        return False
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in _SOCKET_NAME_PATTERNS):
        return True
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in _SOCKET_PATH_PATTERNS)


def expected_in(directory: str, expected: Iterable[str]) -> tuple[str, ...]:
    """Names of expected socket paths that sit directly inside ``directory``."""
    directory = directory.rstrip("/") or "/"
    names = []
    for path in expected:
        if posixpath.dirname(path.rstrip("/")) == directory:
            names.append(posixpath.basename(path.rstrip("/")))
    return tuple(names)


class ClueKind(StrEnum):
    """Why a directory (empty or not) is taken for one that should hold sockets."""

    SEEN = "seen"  # it held a socket earlier in this session
    COMPANION = "companion"  # a lock or pid file of a socket's server is in it
    CONVENTIONAL = "conventional"  # a runtime directory where servers conventionally put their sockets
    EXPECTED = "expected"  # --expect DIR/ names it


@dataclass(frozen=True)
class DirClue:
    """One reason to expect sockets in a directory, in words, and the socket it names when it names one."""

    kind: ClueKind
    says: str  # "PostgreSQL's lock file .s.PGSQL.5432.lock names .s.PGSQL.5432"
    socket: str | None = None  # the socket's name inside the directory, when the clue names it


@dataclass(frozen=True)
class _Conventional:
    server: str
    sockets: str  # what its socket is called there


# Runtime directories where servers conventionally put their sockets (``/var/run/X`` is the same as ``/run/X``).
_CONVENTIONAL_DIRS = {
    "/run/postgresql": _Conventional("PostgreSQL", ".s.PGSQL.PORT"),
    "/run/mysqld": _Conventional("MySQL and MariaDB", "mysqld.sock"),
    "/run/mariadb": _Conventional("MariaDB", "mariadb.sock"),
    "/run/redis": _Conventional("Redis", "redis-server.sock"),
    "/run/php": _Conventional("PHP-FPM", "php*-fpm.sock"),
    "/run/php-fpm": _Conventional("PHP-FPM", "www.sock"),
    "/run/uwsgi": _Conventional("uWSGI", "*.socket"),
    "/run/gunicorn": _Conventional("gunicorn", "*.sock"),
    "/run/supervisor": _Conventional("supervisord", "supervisor.sock"),
    "/run/memcached": _Conventional("memcached", "memcached.sock"),
    "/run/dbus": _Conventional("D-Bus", "system_bus_socket"),
    "/run/containerd": _Conventional("containerd", "containerd.sock"),
    "/run/podman": _Conventional("Podman", "podman.sock"),
    "/run/clamav": _Conventional("ClamAV", "clamd.ctl"),
    "/run/systemd/journal": _Conventional("journald", "socket, stdout, dev-log"),
    "/tmp/.X11-unix": _Conventional("the X server", "X0, X1, ..."),
}
_USER_RUNTIME = re.compile(r"/run/user/[0-9]+")
_USER_RUNTIME_DIRS = {
    "": _Conventional("the user's session services", "bus, wayland-0, pipewire-0, ..."),
    "pulse": _Conventional("PulseAudio", "native"),
    "gnupg": _Conventional("GnuPG", "S.gpg-agent"),
    "podman": _Conventional("rootless Podman", "podman.sock"),
    "docker": _Conventional("rootless Docker", "docker.sock"),
}

# Servers whose pid file beside their socket says the directory is theirs: nginx.pid, redis-server.pid, ...
_PID_FILE_SERVERS = (
    "nginx",
    "redis",
    "redis-server",
    "redis_[0-9]*",
    "mysqld",
    "mariadbd",
    "mariadb",
    "php*-fpm",
    "php-fpm*",
    "uwsgi",
    "gunicorn",
    "supervisord",
    "memcached",
    "pgbouncer",
    "haproxy",
    "dockerd",
    "docker",
    "containerd",
    "[0-9]*-main",  # Debian's PostgreSQL cluster pid file (15-main.pid) in /run/postgresql
)
_PG_LOCK = re.compile(r"\.s\.PGSQL\.[0-9]+\.lock")
_COMPANION_LIMIT = 8  # clues kept per directory: enough to explain, bounded whatever a container writes


def _norm_dir(path: str) -> str:
    path = posixpath.normpath(path) if path else ""
    if path == "/var/run" or path.startswith("/var/run/"):
        path = path[len("/var") :]
    return path


def conventional_dir(path: str) -> DirClue | None:
    """The clue when ``path`` is a conventional runtime socket directory (``/run/postgresql``, ``/run/user/1000``)."""
    if not path or not path.startswith("/"):
        return None
    norm = _norm_dir(path)
    found = _CONVENTIONAL_DIRS.get(norm)
    if found is None:
        match = _USER_RUNTIME.match(norm)
        if match is not None:
            rest = norm[match.end() :].lstrip("/")
            found = _USER_RUNTIME_DIRS.get(rest) if "/" not in rest else None
    if found is None:
        return None
    return DirClue(
        ClueKind.CONVENTIONAL, f"the directory where {found.server} puts its socket ({found.sockets})", socket=None
    )


def companion_clue(name: str) -> DirClue | None:
    """The clue a regular file named ``name`` gives: a socket's lock file, or a known server's pid file."""
    if _PG_LOCK.fullmatch(name):
        socket = name.removesuffix(".lock")
        return DirClue(ClueKind.COMPANION, f"PostgreSQL's lock file {name} names {socket}", socket)
    for suffix in (".lock", ".lck"):
        stem = name.removesuffix(suffix)
        if stem != name and looks_like_socket(stem):
            server = "MySQL's" if stem == "mysqld.sock" else "the"
            return DirClue(ClueKind.COMPANION, f"{server} lock file {name} names {stem}", stem)
    stem = name.removesuffix(".pid")
    if stem != name and stem:
        if looks_like_socket(stem):
            return DirClue(ClueKind.COMPANION, f"the pid file {name} names {stem}", stem)
        if any(fnmatch.fnmatchcase(stem, pattern) for pattern in _PID_FILE_SERVERS):
            return DirClue(ClueKind.COMPANION, f"{stem}'s pid file {name} is in it")
    return None


def is_companion(name: str) -> bool:
    return companion_clue(name) is not None


def dir_clues(
    mount: MountSpec,
    companions: Iterable[str] = (),
    seen: Iterable[str] = (),
    expected: Iterable[str] = (),
) -> tuple[DirClue, ...]:
    """Every reason to expect sockets in a directory mount, strongest first.

    ``companions`` are regular files found in the source (only those :func:`is_companion` accepts count), ``seen``
    the socket names it held earlier in this session, ``expected`` the ``--expect`` paths (``DIR/``, with its
    slash, names a directory of sockets).
    """
    clues: list[DirClue] = []
    for path in expected:
        if path.endswith("/") and path.rstrip("/") in (p.rstrip("/") for p in (mount.source, mount.destination) if p):
            clues.append(DirClue(ClueKind.EXPECTED, f"--expect {path} names it as a directory of sockets"))
            break
    for name in sorted(set(seen))[:_COMPANION_LIMIT]:
        clues.append(DirClue(ClueKind.SEEN, f"it held {name} earlier in this session", name))
    kept = 0
    for name in sorted(set(companions)):
        clue = companion_clue(name)
        if clue is not None and kept < _COMPANION_LIMIT:
            clues.append(clue)
            kept += 1
    for path, side in ((mount.source, ""), (mount.destination, " (inside the container)")):
        clue = conventional_dir(path)
        if clue is not None:
            clues.append(DirClue(clue.kind, f"{path}{side} is {clue.says}"))
            break
    return tuple(clues)


def role_of(
    mount: MountSpec,
    host_kind: Kind | None,
    sockets_inside: Iterable[str] = (),
    expected: Iterable[str] = (),
    clues: Iterable[DirClue] = (),
) -> Role:
    """Decide the role of a mount.

    ``host_kind`` is what ``lstat`` found at the source on the host (None when the host is not ours to look at);
    ``sockets_inside`` the names of sockets found one level down a directory source (host or container side);
    ``clues`` the reasons to expect sockets in it even when it has none (:func:`dir_clues`).
    """
    expected = tuple(expected)
    if mount.type not in ("bind", "volume"):
        return Role.OTHER
    paths = tuple(p.rstrip("/") for p in (mount.source, mount.destination) if p)
    for e in expected:
        if e.rstrip("/") in paths and not (e.endswith("/") and host_kind is Kind.DIRECTORY):
            return Role.SOCKET  # --expect PATH: a socket; --expect DIR/ with a directory there: a socket-dir below
    if host_kind is Kind.SOCKET:
        return Role.SOCKET
    if host_kind is Kind.DIRECTORY:
        if any(sockets_inside):
            return Role.SOCKET_DIR
        if any(expected_in(p, expected) for p in paths):
            return Role.SOCKET_DIR
        if any(clues) or any(dir_clues(mount, expected=expected)):
            return Role.SOCKET_DIR
    if mount.type == "bind" and (looks_like_socket(mount.source) or looks_like_socket(mount.destination)):
        return Role.SOCKET
    return Role.OTHER
