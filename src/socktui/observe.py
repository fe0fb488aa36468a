"""Gathering observations: ``lstat``, the container's view, and (only when asked) connects, for one container's mounts.

Thin on purpose: every decision about what the observations mean lives in ``verdict``. Whether a socket file has a
server comes from the kernel's socket tables (:mod:`.listeners`), filled in once the whole look is gathered; a look
connects to nothing unless the caller asks (``connect=True``: ``socktui check --connect``, ``t`` in the TUI).
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace

from .fsview import ContainerRoot, DirNames, host_dir_names, host_lstat, kind_of_mode, resolve_source
from .linux import errno_name, id_maps
from .model import (
    ContainerSpec,
    ContainerView,
    Creds,
    EngineInfo,
    Kind,
    MountPoint,
    MountSpec,
    PathStat,
    ProbeResult,
    Role,
)
from .permissions import IdMap, id_map_from, resolve_creds, unprivileged
from .probe import probe_fd, probe_host_path
from .remount import OVERLAY_DRIVERS, RepairRefused, layer_mount_point
from .roles import ClueKind, DirClue, dir_clues, expected_in, role_of
from .verdict import MountObservation, PathObservation

# Sockets observed per socket-dir mount; beyond it a directory's sockets are counted, not each judged.
MAX_SOCKETS_PER_MOUNT = 512


class HostCache:
    """``lstat`` results for host paths, shared by all containers of one check (many mount the same source)."""

    def __init__(self) -> None:
        self._stats: dict[str, PathStat] = {}
        self._names: dict[str, DirNames] = {}
        self._probes: dict[str, ProbeResult] = {}

    def probe(self, path: str, *, ping: bool = False) -> ProbeResult:
        """One host connect per path per look, however many containers mount it (think docker.sock)."""
        if path not in self._probes:
            self._probes[path] = probe_host_path(path, ping=ping)
        return self._probes[path]

    def lstat(self, path: str) -> PathStat:
        if path not in self._stats:
            self._stats[path] = host_lstat(path)
        return self._stats[path]

    def names_in(self, path: str) -> DirNames:
        """One listing per directory per look: its sockets and their companion files."""
        if path not in self._names:
            self._names[path] = host_dir_names(path) if self.lstat(path).kind is Kind.DIRECTORY else DirNames()
        return self._names[path]

    def sockets_in(self, path: str) -> tuple[str, ...]:
        return self.names_in(path).sockets

    def engine_root(self, engine: EngineInfo) -> int | None:
        """The uid a rootless engine runs as: the owner of its socket (it creates missing bind sources as that)."""
        if not engine.endpoint.startswith("unix://"):
            return None
        found = self.lstat(engine.endpoint.removeprefix("unix://"))
        return found.uid if found.kind is Kind.SOCKET else None


class SocketMemory:
    """The socket names each shared host directory held during this session (the TUI keeps one for its life).

    A directory whose sockets went away is still a socket directory: the memory is what lets the report say
    "it held .s.PGSQL.5432 earlier in this session" instead of dropping the mount. Bounded whatever containers do.
    """

    NAMES_PER_DIR = 8
    DIRS = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, tuple[str, ...]] = {}

    def remember(self, directory: str, names: Iterable[str]) -> None:
        key = posixpath.normpath(directory)
        with self._lock:
            known = self._names.get(key, ())
            merged = tuple(sorted(set(known) | set(names)))[: self.NAMES_PER_DIR]
            if merged == known:
                return
            if key not in self._names and len(self._names) >= self.DIRS:
                self._names.pop(next(iter(self._names)))
            self._names[key] = merged

    def names_in(self, directory: str) -> tuple[str, ...]:
        with self._lock:
            return self._names.get(posixpath.normpath(directory), ())


def clues_for(
    mount: MountSpec, cache: HostCache, expected: Iterable[str], memory: SocketMemory | None
) -> tuple[DirClue, ...]:
    """Why a directory mount should hold sockets, even with none in it now (see :mod:`socktui.roles`)."""
    seen = memory.names_in(mount.source) if memory is not None else ()
    return dir_clues(mount, cache.names_in(mount.source).companions, seen, expected)


def mount_role(
    mount: MountSpec,
    engine: EngineInfo,
    cache: HostCache,
    expected: Iterable[str],
    memory: SocketMemory | None = None,
) -> Role:
    if not engine.local or not mount.source:
        return role_of(mount, None, (), expected)
    host = cache.lstat(mount.source)
    if host.kind is not Kind.DIRECTORY:
        return role_of(mount, host.kind, (), expected)
    sockets = cache.sockets_in(mount.source)
    clues = () if sockets else clues_for(mount, cache, expected, memory)
    return role_of(mount, host.kind, sockets, expected, clues)


class ContainerLook:
    """One container's root, opened once and used for all its mounts. Never used to change anything."""

    def __init__(self, container: ContainerSpec) -> None:
        self.container = container
        self.root: ContainerRoot | None = None
        self.unavailable: str | None = None
        self._ids: tuple[IdMap | None] | None = None  # read once, when first wanted
        if not container.running:
            return
        if not container.pid:
            self.unavailable = "the engine reported no process id"
            return
        try:
            self.root = ContainerRoot(container.pid)
        except PermissionError:
            self.unavailable = (
                f"no permission to look into /proc/{container.pid}/root (run socktui as root, or as the "
                "container's uid)"
            )
        except OSError as exc:
            self.unavailable = f"cannot open /proc/{container.pid}/root: {errno_name(exc.errno)}"

    def close(self) -> None:
        if self.root is not None:
            self.root.close()

    def ids(self) -> IdMap | None:
        """The container's user namespace maps, read from its process (None when it is not running)."""
        if not self.container.running or not self.container.pid:
            return None
        if self._ids is None:
            self._ids = (id_map_from(*id_maps(self.container.pid)),)
        return self._ids[0]

    def creds(self) -> tuple[Creds | None, str]:
        user = self.container.user
        if user in ("", "0", "root", "0:0") and not self.container.group_add:
            return Creds(uid=0, gid=0), "root"  # root needs no /etc/passwd lookup: it may connect to anything
        numeric = all(part.isdigit() for part in (user or "0").split(":") if part)
        passwd = group = None
        if self.root is not None:
            passwd = self.root.read_text("/etc/passwd")
            group = self.root.read_text("/etc/group")
        elif not numeric or self.container.group_add:
            return None, "user names need the container's /etc/passwd, which can only be read while it runs"
        return resolve_creds(user, self.container.group_add, passwd, group)

    def view(self, path: str, *, with_parents: bool, connect: bool = False) -> ContainerView:
        """The container's view of ``path``; ``connect`` also connects to it from there (only when asked)."""
        if self.root is None:
            return ContainerView(path=path, unavailable=self.unavailable)
        seen = self.root.lstat(path)
        probe = None
        if connect and seen.kind is Kind.SOCKET:
            try:
                with self.root.opened(path) as fd:
                    probe = probe_fd(fd)
            except OSError:
                probe = None
        parents = self.root.parents(path) if with_parents else ()
        return ContainerView(path=path, stat=seen, probe=probe, parents=parents)


def observe_path(
    host_path: str,
    container_path: str,
    look: ContainerLook,
    cache: HostCache,
    *,
    with_parents: bool,
    follow_source: bool = False,
    connect: bool = False,
    expected_by: str = "",
) -> PathObservation:
    host = cache.lstat(host_path)
    via = None
    if follow_source and host.kind is Kind.SYMLINK:
        # Docker resolves a -v source's symlinks on the host when it mounts: judge what the container really got.
        via = resolve_source(host_path)
        if via is not None:
            host = cache.lstat(via)
    view = look.view(container_path, with_parents=with_parents, connect=connect) if look.container.running else None
    return PathObservation(
        host_path=host_path,
        container_path=container_path,
        host=host,
        view=view,
        via_symlink=via,
        expected_by=expected_by,
    )


def look_at_mount_point(container: ContainerSpec, destination: str) -> MountPoint | None:
    """What a stopped container's own layer has at a file mount's destination: a directory there blocks its start."""
    if container.running or not container.inspected or not container.upper_dir:
        return None
    if container.storage_driver not in OVERLAY_DRIVERS:
        driver = container.storage_driver or "unknown"
        return MountPoint(
            destination, unavailable=f"its storage driver is {driver}; only overlay layers are looked into"
        )
    try:
        entry = layer_mount_point(container.upper_dir, container.lower_dirs, destination)
    except RepairRefused as exc:
        return MountPoint(destination, unavailable=str(exc))
    kind = kind_of_mode(entry.mode) if entry.layer is not None else None
    return MountPoint(entry.path, kind, entry.empty, entry.in_lower)


def observe_mount(
    engine: EngineInfo,
    look: ContainerLook,
    mount: MountSpec,
    role: Role,
    cache: HostCache,
    creds: tuple[Creds | None, str],
    expected: Iterable[str] = (),
    *,
    connect: bool = False,
    memory: SocketMemory | None = None,
) -> MountObservation:
    container = look.container
    user_creds, note = creds
    ids = look.ids() if engine.local else None
    needs_parents = user_creds is not None and unprivileged(user_creds, ids)
    if not engine.local:
        target = PathObservation(host_path=mount.source, container_path=mount.destination, host=None)
        return MountObservation(engine, container, mount, role, target)
    target = observe_path(
        mount.source, mount.destination, look, cache, with_parents=needs_parents, follow_source=True, connect=connect
    )
    entries: list[PathObservation] = []
    not_looked_at = 0
    clues: tuple[DirClue, ...] = ()
    if role is Role.SOCKET_DIR and target.host is not None and target.host.kind is Kind.DIRECTORY:
        present = cache.sockets_in(mount.source)
        clues = clues_for(mount, cache, expected, memory)
        # Each name with why it is looked for: found there now, named by --expect or a companion file, or (only
        # when the directory has no socket left) held earlier in this session.
        why: dict[str, str] = dict.fromkeys(present, "")
        for name in (*expected_in(mount.source, expected), *expected_in(mount.destination, expected)):
            why.setdefault(name, f"--expect names {name}")
        for clue in clues:
            if clue.socket is None or (clue.kind is ClueKind.SEEN and present):
                continue
            why.setdefault(clue.socket, clue.says)
        ordered = sorted(why)
        # Bounded work whatever a container puts in a shared directory: the rest are counted, and the reason says so.
        not_looked_at = max(0, len(ordered) - MAX_SOCKETS_PER_MOUNT)
        for name in ordered[:MAX_SOCKETS_PER_MOUNT]:
            entries.append(
                observe_path(
                    posixpath.join(mount.source, name),
                    posixpath.join(mount.destination, name),
                    look,
                    cache,
                    with_parents=needs_parents,
                    connect=connect,
                    expected_by=why[name],
                )
            )
    mount_point = None
    host = target.host
    if role is Role.SOCKET and host is not None and host.kind not in (Kind.DIRECTORY, Kind.MISSING, Kind.ERROR):
        mount_point = look_at_mount_point(container, mount.destination)
    return MountObservation(
        engine=engine,
        container=container,
        mount=mount,
        role=role,
        target=target,
        entries=tuple(entries),
        creds=user_creds,
        creds_note=note,
        observer_root=os.geteuid() == 0,
        not_looked_at=not_looked_at,
        clues=clues,
        mount_point=mount_point,
        ids=ids,
        engine_root=cache.engine_root(engine) if engine.rootless else None,
    )


def with_liveness(obs: MountObservation, fill: Callable[[PathObservation], PathObservation]) -> MountObservation:
    """The observation with every socket path's liveness filled in by ``fill`` (once the whole look is in)."""
    return replace(obs, target=fill(obs.target), entries=tuple(fill(e) for e in obs.entries))
