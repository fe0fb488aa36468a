"""Which mounts matter: deciding a mount's role from names, and from what the host has at its source.

The name rules are pure; ``role_of`` takes the host's kind and the socket names found one level down a directory
as arguments so that it stays a function of its inputs.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable

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
# Directory destinations that conventionally hold sockets.
_SOCKET_DIR_PATHS = ("/tmp/.X11-unix",)


def looks_like_socket(path: str) -> bool:
    """True when a path's name says it is a socket. Works on any string, including newlines and unicode."""
    if not path:
        return False
    name = posixpath.basename(path.rstrip("/")) or path
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


def role_of(
    mount: MountSpec,
    host_kind: Kind | None,
    sockets_inside: Iterable[str] = (),
    expected: Iterable[str] = (),
) -> Role:
    """Decide the role of a mount.

    ``host_kind`` is what ``lstat`` found at the source on the host (None when the host is not ours to look at);
    ``sockets_inside`` the names of sockets found one level down a directory source (host or container side).
    """
    expected = tuple(expected)
    if mount.type not in ("bind", "volume"):
        return Role.OTHER
    paths = (mount.source, mount.destination)
    if any(p.rstrip("/") in (e.rstrip("/") for e in expected) for p in paths if p):
        return Role.SOCKET
    if host_kind is Kind.SOCKET:
        return Role.SOCKET
    if host_kind is Kind.DIRECTORY:
        if any(sockets_inside):
            return Role.SOCKET_DIR
        if any(expected_in(p, expected) for p in paths if p):
            return Role.SOCKET_DIR
        if mount.destination.rstrip("/") in _SOCKET_DIR_PATHS:
            return Role.SOCKET_DIR
    if mount.type == "bind" and (looks_like_socket(mount.source) or looks_like_socket(mount.destination)):
        return Role.SOCKET
    return Role.OTHER
