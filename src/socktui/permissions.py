"""Who the container runs as, and whether that user may connect: pure functions over text and modes."""

from __future__ import annotations

from collections.abc import Iterable

from .model import Creds, PathStat

WRITE = 0o2
SEARCH = 0o1


def can_access(creds: Creds, st: PathStat, want: int) -> bool:
    """Classic Unix permission check (owner, then group, then other). Root passes; ACLs are not considered."""
    if creds.root:
        return True
    if st.uid == creds.uid:
        bits = (st.mode >> 6) & 0o7
    elif st.gid == creds.gid or st.gid in creds.groups:
        bits = (st.mode >> 3) & 0o7
    else:
        bits = st.mode & 0o7
    return bits & want == want


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
