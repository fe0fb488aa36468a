"""Who the container runs as, and whether that user may connect: pure functions over text and modes.

A container in a user namespace (rootless Docker or Podman, ``dockerd --userns-remap``, ``podman --uidmap``) has
its ids mapped (``/proc/PID/uid_map``, ``gid_map``): uid 0 inside may be uid 700000 on the host. Its root has
``CAP_DAC_OVERRIDE`` only over files whose owner and group are both mapped into its namespace. Every check here maps
the container's ids to the host's before comparing them with a file's owner, which is always a host id.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from .model import Creds, Denial, Grant, PathStat

WRITE = 0o2
SEARCH = 0o1
_NO_MAP = 0xFFFFFFFF  # the kernel's "no id": what an unmapped id reads as


@dataclass(frozen=True)
class IdRange:
    inside: int
    outside: int
    count: int


@dataclass(frozen=True)
class IdMap:
    """A user namespace's uid and gid maps, as ``/proc/PID/uid_map`` and ``gid_map`` give them."""

    uids: tuple[IdRange, ...]
    gids: tuple[IdRange, ...]

    @property
    def identity(self) -> bool:
        """The initial namespace's map (``0 0 4294967295``): ids inside are the host's."""
        return all(r.inside == r.outside for r in (*self.uids, *self.gids)) and bool(self.uids)

    def uid_to_host(self, uid: int) -> int | None:
        return _to_outside(self.uids, uid)

    def gid_to_host(self, gid: int) -> int | None:
        return _to_outside(self.gids, gid)

    def uid_inside(self, host_uid: int) -> int | None:
        return _to_inside(self.uids, host_uid)

    def gid_inside(self, host_gid: int) -> int | None:
        return _to_inside(self.gids, host_gid)

    def describe(self) -> str:
        """'container uids 0-65535 are host uids 700000-765535'."""
        parts = [
            f"container uids {r.inside}-{r.inside + r.count - 1} are host uids {r.outside}-{r.outside + r.count - 1}"
            for r in self.uids[:2]
        ]
        return ", ".join(parts) or "no uid is mapped"


def _to_outside(ranges: tuple[IdRange, ...], value: int) -> int | None:
    for r in ranges:
        if r.inside <= value < r.inside + r.count:
            return r.outside + value - r.inside
    return None


def _to_inside(ranges: tuple[IdRange, ...], value: int) -> int | None:
    for r in ranges:
        if r.outside <= value < r.outside + r.count:
            return r.inside + value - r.outside
    return None


def parse_id_map(text: str) -> tuple[IdRange, ...]:
    """The lines of a ``uid_map``/``gid_map`` file: ``inside outside count``. Malformed lines are skipped."""
    ranges = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and all(f.isdigit() for f in fields):
            inside, outside, count = (int(f) for f in fields)
            ranges.append(IdRange(inside, outside, count))
    return tuple(ranges)


def id_map_from(uid_map: str | None, gid_map: str | None) -> IdMap | None:
    """The map of a process, or None when it could not be read (then ids are taken as the host's)."""
    if uid_map is None or gid_map is None:
        return None
    return IdMap(parse_id_map(uid_map), parse_id_map(gid_map))


def _host_ids(creds: Creds, ids: IdMap | None) -> tuple[int | None, set[int]]:
    if ids is None or ids.identity:
        return creds.uid, {creds.gid, *creds.groups}
    uid = ids.uid_to_host(creds.uid)
    gids = {g for g in (ids.gid_to_host(x) for x in (creds.gid, *creds.groups)) if g is not None}
    return uid, gids


def _privileged(creds: Creds, st: PathStat, ids: IdMap | None) -> bool:
    """Root passes, and in a user namespace only over files whose owner and group are mapped into it."""
    if not creds.root:
        return False
    if ids is None or ids.identity:
        return True
    return ids.uid_inside(st.uid) is not None and ids.gid_inside(st.gid) is not None


def can_access(creds: Creds, st: PathStat, want: int, ids: IdMap | None = None) -> bool:
    """Classic Unix permission check (owner, then group, then other), with the container's ids mapped to the host's
    when it has a user namespace. Root passes (see ``_privileged``); ACLs are not considered."""
    if _privileged(creds, st, ids):
        return True
    uid, gids = _host_ids(creds, ids)
    if uid is not None and st.uid == uid:
        bits = (st.mode >> 6) & 0o7
    elif st.gid in gids:
        bits = (st.mode >> 3) & 0o7
    else:
        bits = st.mode & 0o7
    return bits & want == want


def unprivileged(creds: Creds, ids: IdMap | None) -> bool:
    """Can this user be refused at all? Root can, only in a user namespace (over files it does not map)."""
    return not creds.root or (ids is not None and not ids.identity)


def what_would_grant(st: PathStat, want: int, ids: IdMap | None = None) -> tuple[Grant, int | None, int | None]:
    """Who the mode of ``st`` lets do ``want`` (besides root), in the container's ids.

    Returns the kind of grant, the file's gid as the container names it (what ``--group-add`` would take) and its
    owner's uid as the container names it (for ``--user``), each None where the namespace does not map it.
    """
    group_ok = (st.mode >> 3) & want == want
    owner_ok = (st.mode >> 6) & want == want
    gid = st.gid if ids is None or ids.identity else ids.gid_inside(st.gid)
    uid = st.uid if ids is None or ids.identity else ids.uid_inside(st.uid)
    if group_ok and gid is not None:
        return Grant.GROUP, gid, uid
    if owner_ok and uid is not None:
        return Grant.OWNER, gid, uid
    if group_ok or owner_ok:
        return Grant.UNMAPPED, gid, uid
    return Grant.NOBODY, gid, uid


def denial_of(st: PathStat, want: int, ids: IdMap | None = None) -> Denial:
    grant, gid, uid = what_would_grant(st, want, ids)
    return Denial(
        path=st.path,
        what="search" if want == SEARCH else "write",
        mode=st.mode,
        uid=st.uid,
        gid=st.gid,
        grant=grant,
        group_to_add=gid,
        owner_inside=uid,
    )


# What makes a server create its socket group-writable, by the server: the fix for a 0600/0700 socket.
_SOCKET_MODE_SETTINGS = (
    (("redis-server", "redis*.sock"), "Redis: unixsocketperm 770 (and unixsocketgroup where supported)"),
    (("postgres", "postmaster", ".s.PGSQL.*"), "PostgreSQL: unix_socket_permissions = 0770, unix_socket_group"),
    (("php-fpm*", "php*-fpm*"), "PHP-FPM: listen.mode = 0660, listen.group"),
    (("uwsgi", "*.uwsgi.sock"), "uWSGI: chmod-socket = 660"),
    (("gunicorn",), "gunicorn: --umask 007"),
    (("ssh-agent", "agent.[0-9]*", "ssh-auth.sock"), "ssh-agent always makes its socket 0600: no setting widens it"),
    (("gpg-agent", "S.gpg-agent*"), "gpg-agent always makes its sockets 0700/0600: no setting widens them"),
)
GENERIC_SOCKET_MODE = "the server's socket-mode setting (Redis: unixsocketperm 770)"


def socket_mode_setting(command: str | None, socket_name: str) -> str:
    """The setting that widens this server's socket mode, named for the server when it is recognised (by the
    listener's program, else by the socket's name), else a generic sentence with Redis's as the example."""
    program = (command or "").split(" ", 1)[0].rsplit("/", 1)[-1]
    for patterns, words in _SOCKET_MODE_SETTINGS:
        if any(fnmatch.fnmatchcase(program, p) for p in patterns if "." not in p) and program:
            return words
    for patterns, words in _SOCKET_MODE_SETTINGS:
        if any(fnmatch.fnmatchcase(socket_name, p) for p in patterns):
            return words
    return GENERIC_SOCKET_MODE


def _table(text: str | None) -> list[list[str]]:
    if not text:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def _gid_of(name: str, groups: list[list[str]]) -> int | None:
    if name.isdigit():
        return int(name)
    for row in groups:
        if len(row) >= 3 and row[0] == name and row[2].isdigit():
            return int(row[2])
    return None


def resolve_creds(
    user: str, group_add: Iterable[str], passwd: str | None, group: str | None
) -> tuple[Creds | None, str]:
    """Turn ``Config.User`` and ``HostConfig.GroupAdd`` into numeric credentials, as the runtime would.

    Returns the credentials (None when a name cannot be resolved) and a note that says how they were found.
    """
    users = _table(passwd)
    groups = _table(group)
    name_part, _, group_part = (user or "0").partition(":")
    uid: int | None
    gid: int | None = None
    username: str | None = None
    if name_part.isdigit():
        uid = int(name_part)
        for row in users:
            if len(row) >= 4 and row[2] == name_part:
                username = row[0]
                gid = int(row[3]) if row[3].isdigit() else None
                break
    else:
        uid = None
        for row in users:
            if len(row) >= 4 and row[0] == name_part and row[2].isdigit():
                uid, username = int(row[2]), row[0]
                gid = int(row[3]) if row[3].isdigit() else None
                break
        if uid is None:
            return None, f"user {name_part!r} is not in the container's /etc/passwd"
    if group_part:
        gid = _gid_of(group_part, groups)
        if gid is None:
            return None, f"group {group_part!r} is not in the container's /etc/group"
    if gid is None:
        gid = 0  # runc's default when /etc/passwd has no entry for the user
    supplementary: set[int] = set()
    if username and not group_part:
        for row in groups:
            if len(row) >= 4 and row[2].isdigit() and username in row[3].split(","):
                supplementary.add(int(row[2]))
    for extra in group_add:
        extra_gid = _gid_of(extra, groups)
        if extra_gid is not None:
            supplementary.add(extra_gid)
    supplementary.discard(gid)
    note = f"uid {uid} gid {gid}" + (f" groups {','.join(map(str, sorted(supplementary)))}" if supplementary else "")
    return Creds(uid=uid, gid=gid, groups=tuple(sorted(supplementary))), note
