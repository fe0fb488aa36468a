"""Acting on exactly the object Docker mounted, and nothing else, on paths that others can change.

A fix that removes something (``rmdir`` of a shadow directory, ``unlink`` of a stale socket) does it in four moves:

1. **Resolve** the host path with :func:`socktui.hostpath.resolve`: the parent directory is held by a descriptor,
   reached without following any symlink that a user could have made (see that module for the rule). The entry must
   be of the expected kind and have the (device, inode) that was diagnosed, and an ``O_PATH`` descriptor on it pins
   that inode (a number cannot be reused while it is held).
2. **Check what the containers see.** Every running holder whose process the look found is asked, through its own
   root (``/proc/PID/root`` with ``RESOLVE_IN_ROOT``, :class:`socktui.fsview.ContainerRoot`), what it has at its
   mount: the inode must be the one about to be removed (for a socket in a shared directory, the directory it
   mounted must also be the host directory we hold). The process must still be that container's (its cgroup names
   the container id), or the pid could belong to anything by now. A symlink followed on the way must not lie in a
   directory that any container can write through a read-write mount.
3. **Move the entry aside** into a fresh root-only (0700) directory made for this act, with
   ``renameat2(RENAME_NOREPLACE)`` through the held parent descriptor, and check there that the moved inode is the
   pinned one (and, for a socket, that a fresh connect is still refused). Only then remove it, inside that
   directory. If it is not the one, it is put back under its name (``RENAME_NOREPLACE`` again) and nothing is
   removed. The private directory goes in the parent's parent when that is on the same mount (so a container that
   has only the parent mounted cannot even see it), else in the parent.
4. **Clean up** the private directory; the held descriptors are closed.

What this guarantees, and against whom:

- **A user who owns a directory on the path** (or can write it) cannot redirect the act: a symlink they made or can
  change is never followed (resolve refuses), every later step goes through descriptors, and an entry exchanged
  under the name (``renameat2(RENAME_EXCHANGE)`` in a loop) is caught after the move, in a directory that only root
  can write, where nothing can be exchanged any more: socktui never removes a live socket or a non-empty directory,
  and never anything but the diagnosed inode. The user can make a fix refuse (or leave an exchanged entry where
  they put it); that is all.
- **A root container with the parent (or any directory on the path) mounted read-write** can make root-owned
  symlinks, which the ownership rule cannot tell from the system's. Against it: the holders' own view (step 2) must
  show the very inode, so a redirected path is refused while any holder runs; a followed link inside any
  container's read-write mount is refused; the exchange after the move happens in a directory outside its mount
  whenever the parent's parent is on the same filesystem mount. What remains: with every holder stopped, a
  container that mounts the parent's parent could, in principle, reach the private directory for the instant of the
  act; it could remove those objects itself anyway. A container that mounts the host's ``/`` read-write owns the
  host, and socktui does not pretend otherwise.
- A crash between the move and the removal leaves ``.socktui-<pid>-<random>/entry`` next to the path, root-only,
  with the entry in it (never anything else).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable

from .. import linux
from ..fsview import ContainerRoot
from ..hostpath import Ancestor, HostPath, UntrustedSymlink, resolve
from ..linux import errno_name
from ..listeners import container_of
from ..model import ContainerSpec, Kind
from ..probe import probe_fd
from .base import Failed, Holder, Refused, Step, Writer

ENTRY = "entry"


class Target:
    """The entry a step may remove: its directory held by descriptor, the entry itself pinned by an ``O_PATH`` fd."""

    def __init__(self, step: Step, hp: HostPath, held_fd: int, st: os.stat_result) -> None:
        self.step = step
        self.hp = hp
        self.held_fd = held_fd
        self.st = st

    @property
    def path(self) -> str:
        return self.step.target

    @property
    def identity(self) -> tuple[int, int]:
        return (self.st.st_dev, self.st.st_ino)

    def close(self) -> None:
        if self.held_fd >= 0:
            os.close(self.held_fd)
            self.held_fd = -1
        self.hp.close()

    def in_place(self) -> bool:
        """Is the pinned inode still under its name in the held directory?"""
        now = self.hp.restat()
        return now is not None and (now.st_dev, now.st_ino) == self.identity


# --------------------------------------------------------------------------- 1. resolve


def open_target(step: Step, want: Kind) -> Target:
    """Resolve ``step.target`` and pin the entry, refusing unless it is the diagnosed object of kind ``want``."""
    path = step.target
    try:
        hp = resolve(path, keep_ancestors=True)
    except UntrustedSymlink as exc:
        raise Refused(f"{path} is reached through a symlink socktui will not follow: {exc.strerror}") from exc
    except FileNotFoundError as exc:
        raise Refused(f"a directory on the way to {path} is gone ({exc.filename}): left alone") from exc
    except OSError as exc:
        raise Refused(f"cannot reach {path} safely: {errno_name(exc.errno)}") from exc
    try:
        st = hp.stat
        if st is None:
            raise Refused(f"{path} is already gone")
        if hp.kind is not want:
            raise Refused(f"{path} is now {hp.kind.words}, not {want.words}: left alone")
        expect = step.expect
        if expect is None:
            raise Refused(f"{path} was not observed before; diagnose again")
        if (st.st_dev, st.st_ino) != expect.identity:
            raise Refused(
                f"{path} changed since it was diagnosed: it is now inode {st.st_ino} on device {st.st_dev}, "
                f"not the {want.words.removeprefix('a ')} seen before (inode {expect.ino})"
            )
        try:
            held = os.open(hp.name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=hp.parent_fd)
        except OSError as exc:
            raise Refused(f"cannot open {path}: {errno_name(exc.errno)}") from exc
        pinned = os.fstat(held)
        if (pinned.st_dev, pinned.st_ino) != (st.st_dev, st.st_ino):
            os.close(held)
            raise Refused(f"{path} changed while being checked: left alone")
        return Target(step, hp, held, pinned)
    except BaseException:
        hp.close()
        raise


# --------------------------------------------------------------------------- 2. what the containers see


def _seen_by(container: ContainerSpec, path: str) -> tuple[int, int]:
    """The (dev, ino) a running container has at ``path``, resolved inside its own root."""
    pid = container.pid
    assert pid is not None
    if container_of(pid, {container.id: container.name}) is None:
        raise Refused(
            f"process {pid} is no longer {container.name}'s (it restarted or stopped since the look): look again"
        )
    try:
        with ContainerRoot(pid) as root, root.opened(path) as fd:
            st = os.fstat(fd)
    except PermissionError as exc:
        raise Refused(
            f"cannot see what {container.name} has mounted at {path} (no permission to look into /proc/{pid}/root; "
            "run socktui as root): nothing was changed"
        ) from exc
    except OSError as exc:
        raise Refused(
            f"cannot see what {container.name} has mounted at {path}: {errno_name(exc.errno)}; nothing was changed"
        ) from exc
    return (st.st_dev, st.st_ino)


def check_holders(target: Target, holders: Iterable[Holder]) -> None:
    """Each running holder must see the very inode (and, inside a shared directory, the very directory)."""
    parent = os.fstat(target.hp.parent_fd)
    for holder in holders:
        c = holder.container
        if not c.running or not c.pid:
            continue  # nothing mounted to compare with; the look has no process for it
        seen = _seen_by(c, holder.path)
        if seen != target.identity:
            raise Refused(
                f"{target.path} (inode {target.identity[1]}) is not what {c.name} has mounted at {holder.path} "
                f"(inode {seen[1]}): the path leads somewhere else now; nothing was changed"
            )
        if holder.mount_root is not None:
            root_seen = _seen_by(c, holder.mount_root)
            if root_seen != (parent.st_dev, parent.st_ino):
                raise Refused(
                    f"{target.hp.parent} is not the directory {c.name} has mounted at {holder.mount_root}: "
                    "the path leads somewhere else now; nothing was changed"
                )


def _writer_identity(writer: Writer) -> tuple[int, int] | None:
    """What a read-write mount gives its container: its own view when it runs, else what the source names now."""
    c, m = writer.container, writer.mount
    if c.running and c.pid:
        try:
            with ContainerRoot(c.pid) as root, root.opened(m.destination, follow=True) as fd:
                st = os.fstat(fd)
            return (st.st_dev, st.st_ino)
        except OSError:
            pass
    try:
        with resolve(m.source, follow_final=True) as hp:
            return hp.identity
    except OSError:
        return None


def check_links(target: Target, writers: Iterable[Writer]) -> None:
    """A symlink followed on the way must not sit in a directory a container can write."""
    if not target.hp.followed:
        return
    for writer in writers:
        ident = _writer_identity(writer)
        if ident is None:
            continue
        for link in target.hp.followed:
            if ident in link.dirs:
                raise Refused(
                    f"{target.path} is reached through the symlink {link.path}, inside {writer.mount.source}, which "
                    f"{writer.container.name} mounts read-write: it may have made that link; nothing was changed"
                )


def check_bystanders(target: Target, writers: Iterable[Writer], holders: Iterable[Holder]) -> None:
    """A running container that can write a directory above the target (and is not stopped by the fix) could
    fill it, or swap it, between the preflight and the act."""
    holding = {h.container.id for h in holders}
    above = {(a.stat.st_dev, a.stat.st_ino) for a in target.hp.ancestors}
    for writer in writers:
        c = writer.container
        if not c.running or c.id in holding:
            continue
        ident = _writer_identity(writer)
        if ident is not None and ident in above and ident != target.identity:
            raise Refused(
                f"{c.name} mounts {writer.mount.source} read-write and is not stopped by this fix: it could fill "
                f"{target.path} between this check and the rmdir. Stop {c.name} first, or remove the directory "
                "by hand; nothing was changed"
            )


def check_removable(target: Target) -> None:
    """What would make the final act fail, foreseen: a read-only filesystem, a mount point."""
    if os.fstatvfs(target.hp.parent_fd).f_flag & os.ST_RDONLY:
        raise Refused(
            f"{target.hp.parent} is on a read-only filesystem: removing {target.path} would fail (EROFS); "
            "nothing was changed"
        )
    try:
        sx = linux.statx(target.hp.parent_fd, target.hp.name)
    except OSError:
        return
    parent = linux.statx(target.hp.parent_fd, "", linux.AT_EMPTY_PATH)
    mounted = sx.mount_root if sx.mount_root is not None else (sx.mnt_id is not None and sx.mnt_id != parent.mnt_id)
    if mounted:
        raise Refused(
            f"{target.path} is a mount point on the host (something is mounted on it): removing it would fail "
            "(EBUSY); unmount it first; nothing was changed"
        )


def check_empty(target: Target) -> None:
    try:
        fd = os.open(
            target.hp.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=target.hp.parent_fd
        )
    except OSError as exc:
        raise Refused(f"cannot open {target.path}: {errno_name(exc.errno)}") from exc
    try:
        if (os.fstat(fd).st_dev, os.fstat(fd).st_ino) != target.identity:
            raise Refused(f"{target.path} changed while being checked: left alone")
        if os.listdir(fd):
            raise Refused(f"{target.path} is not empty: nothing was deleted")
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- 3. move aside, verify, remove


def _same_mount(a: int, b: int) -> bool:
    try:
        ma = linux.statx(a, "", linux.AT_EMPTY_PATH).mnt_id
        mb = linux.statx(b, "", linux.AT_EMPTY_PATH).mnt_id
    except OSError:
        return False
    return ma is not None and ma == mb


def _candidates(target: Target) -> list[Ancestor]:
    ancestors = target.hp.ancestors
    parent = ancestors[-1]
    if len(ancestors) >= 2 and _same_mount(ancestors[-2].fd, parent.fd):
        return [ancestors[-2], parent]
    return [parent]


class _Aside:
    """A root-only directory made for one act, and the entry moved into it."""

    def __init__(self, where: Ancestor, name: str, fd: int) -> None:
        self.where = where
        self.name = name
        self.fd = fd

    @property
    def path(self) -> str:
        return (self.where.path.rstrip("/") or "") + "/" + self.name

    def discard(self) -> None:
        """Remove the private directory if it is still ours and empty; keep it (and say so) otherwise."""
        try:
            mine = os.fstat(self.fd)
            there = os.stat(self.name, dir_fd=self.where.fd, follow_symlinks=False)
            if (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino):
                os.rmdir(self.name, dir_fd=self.where.fd)
        except OSError:
            pass
        finally:
            os.close(self.fd)


def _make_private_dir(where: Ancestor) -> _Aside | None:
    for _ in range(3):
        import secrets  # only when a fix applies

        name = f".socktui-{os.getpid()}-{secrets.token_hex(6)}"
        try:
            os.mkdir(name, 0o700, dir_fd=where.fd)
        except FileExistsError:
            continue
        except OSError:
            return None
        try:
            fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=where.fd)
        except OSError:
            return None
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077 or st.st_nlink != 2:
            os.close(fd)  # not the directory just made: someone swapped the name; leave theirs alone
            return None
        return _Aside(where, name, fd)
    return None


def _move_aside(target: Target) -> _Aside:
    hp = target.hp
    last: OSError | None = None
    for where in _candidates(target):
        aside = _make_private_dir(where)
        if aside is None:
            continue
        try:
            linux.renameat2(hp.parent_fd, hp.name, aside.fd, ENTRY, linux.RENAME_NOREPLACE)
            return aside
        except OSError as exc:
            aside.discard()
            last = exc
            if exc.errno == errno.EXDEV:
                continue  # another mount after all: try closer
            break
    if last is None:
        raise Refused(f"cannot make a private directory next to {target.path}: nothing was changed")
    if last.errno == errno.ENOENT:
        raise Refused(f"{target.path} is already gone") from last
    if last.errno == errno.EBUSY:
        raise Refused(f"{target.path} is in use as a mount point (EBUSY): nothing was changed") from last
    raise Refused(
        f"cannot move {target.path} aside to remove it: {errno_name(last.errno)}; nothing was changed"
    ) from last


def _put_back(target: Target, aside: _Aside, why: str) -> Refused:
    """Return the moved entry under its name; a Refused to raise (or Failed when it could not be put back)."""
    try:
        linux.renameat2(aside.fd, ENTRY, target.hp.parent_fd, target.hp.name, linux.RENAME_NOREPLACE)
    except OSError as exc:
        raise Failed(
            f"{why}; it could not be put back under {target.path} ({errno_name(exc.errno)}: the name was taken "
            f"meanwhile), so it was left in {aside.path}/{ENTRY}"
        ) from exc
    aside.discard()
    return Refused(f"{why}; it was put back, nothing was removed")


def remove_aside(target: Target, verify: Callable[[int, str], None] | None = None) -> None:
    """Move the pinned entry aside, check it is still the pinned inode (and ``verify(dir_fd, name)``), remove it.

    Raises ``Refused`` when nothing was removed and everything is back under its name.
    """
    want_dir = stat.S_ISDIR(target.st.st_mode)
    aside = _move_aside(target)
    try:
        moved = os.stat(ENTRY, dir_fd=aside.fd, follow_symlinks=False)
    except OSError as exc:
        raise Failed(f"{target.path} was moved to {aside.path}/{ENTRY} and then could not be looked at") from exc
    if (moved.st_dev, moved.st_ino) != target.identity:
        raise _put_back(
            target,
            aside,
            f"{target.path} was exchanged for another object (inode {moved.st_ino}) at the moment of the act",
        )
    if verify is not None:
        try:
            verify(aside.fd, ENTRY)
        except Refused as exc:
            raise _put_back(target, aside, f"{target.path} {exc}") from exc
    try:
        if want_dir:
            os.rmdir(ENTRY, dir_fd=aside.fd)
        else:
            os.unlink(ENTRY, dir_fd=aside.fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise _put_back(target, aside, f"{target.path} is not empty") from exc
        raise _put_back(target, aside, f"removing {target.path} failed: {errno_name(exc.errno)}") from exc
    aside.discard()


def still_refused(dir_fd: int, name: str) -> None:
    """For a stale socket: a fresh connect, through a descriptor of the moved file, must still be refused."""
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        raise Refused(f"cannot be opened to test it: {errno_name(exc.errno)}") from exc
    try:
        probe = probe_fd(fd)
    finally:
        os.close(fd)
    if probe.ok:
        raise Refused("accepts connections again: a server is listening, so it is not stale")
    if probe.errno != "ECONNREFUSED":
        raise Refused(f"got {probe.errno} from a fresh connect, not ECONNREFUSED: left alone")
