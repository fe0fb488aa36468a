"""The fix catalogue: which fixes a verdict offers. (Plans and applying them build on this.)"""

from __future__ import annotations

from .model import FixOffer, MountSpec, Role, Verdict

REMOVE_SHADOW_DIR = FixOffer("remove-shadow-dir", "Remove the empty directory Docker created", True)
REMOVE_STALE_SOCKET = FixOffer("remove-stale-socket", "Remove the socket file nobody listens on", True)
RESTART_CONTAINER = FixOffer("restart-container", "Restart the container so it sees the current socket", True)
MOUNT_PARENT_DIR = FixOffer("mount-parent-dir", "Mount the socket's directory instead of the file", False)
USE_MOUNT_FLAG = FixOffer("use-mount-flag", "Use --mount so a missing socket is an error, not a directory", False)
GROUP_ADD = FixOffer("group-add", "Give the container the socket's group (--group-add)", False)
START_SERVER_FIRST = FixOffer("start-server-first", "Start the server before the container", False)


def offers(verdict: Verdict | None, mount: MountSpec, role: Role) -> tuple[FixOffer, ...]:
    """Fixes that apply to a mount in this state, the ones that change something first."""
    file_mount = role is Role.SOCKET
    uses_v = mount.from_binds is not False
    if verdict is Verdict.SHADOWED:
        return (REMOVE_SHADOW_DIR, START_SERVER_FIRST) + ((USE_MOUNT_FLAG,) if uses_v else ())
    if verdict is Verdict.STALE:
        return (REMOVE_STALE_SOCKET, START_SERVER_FIRST)
    if verdict is Verdict.DETACHED:
        return (RESTART_CONTAINER,) + ((MOUNT_PARENT_DIR,) if file_mount else ())
    if verdict is Verdict.MISSING:
        return (START_SERVER_FIRST,) + ((USE_MOUNT_FLAG,) if file_mount and uses_v else ())
    if verdict is Verdict.DENIED:
        return (GROUP_ADD,)
    return ()
