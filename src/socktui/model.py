"""Plain data that crosses every boundary: engine -> observe -> verdict -> CLI / TUI / JSON.

Everything here is a frozen dataclass or an enum, with no I/O and no behaviour beyond small derived properties,
so the TUI and ``socktui check`` render the very same objects and can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    """The one word that says what state a socket mount is in."""

    LIVE = "live"
    OK = "ok"
    STALE = "stale"
    MISSING = "missing"
    SHADOWED = "shadowed"
    DETACHED = "detached"
    DENIED = "denied"
    NOT_SOCKET = "not-socket"
    UNSTARTABLE = "unstartable"  # Docker cannot start the container: a directory mount point where a socket goes
    UNKNOWN = "unknown"

    @property
    def healthy(self) -> bool:
        return self in (Verdict.LIVE, Verdict.OK)

    @property
    def severity(self) -> int:
        """Higher is worse; used to sort problems first and to pick a container's worst verdict."""
        return _SEVERITY[self]


_SEVERITY = {
    Verdict.OK: 0,
    Verdict.LIVE: 0,
    Verdict.UNKNOWN: 1,
    Verdict.DENIED: 2,
    Verdict.NOT_SOCKET: 3,
    Verdict.MISSING: 3,
    Verdict.STALE: 4,
    Verdict.DETACHED: 4,
    Verdict.SHADOWED: 5,
    Verdict.UNSTARTABLE: 5,
}


class Role(StrEnum):
    """Why a mount matters to socktui."""

    SOCKET = "socket"
    SOCKET_DIR = "socket-dir"
    OTHER = "other"


class Kind(StrEnum):
    """What an ``lstat`` found at a path (never following a final symlink)."""

    MISSING = "missing"
    SOCKET = "socket"
    DIRECTORY = "directory"
    FILE = "file"
    SYMLINK = "symlink"
    FIFO = "fifo"
    CHAR_DEVICE = "char-device"
    BLOCK_DEVICE = "block-device"
    ERROR = "error"  # lstat itself failed (EACCES on a parent, ELOOP, ...): see PathStat.error

    @property
    def words(self) -> str:
        """The kind in a sentence: 'a regular file', 'a FIFO (named pipe)'."""
        return _KIND_WORDS.get(self, f"a {self.value}")


_KIND_WORDS = {
    Kind.MISSING: "nothing",
    Kind.SOCKET: "a socket",
    Kind.DIRECTORY: "a directory",
    Kind.FILE: "a regular file",
    Kind.SYMLINK: "a symlink",
    Kind.FIFO: "a FIFO (named pipe)",
    Kind.CHAR_DEVICE: "a character device",
    Kind.BLOCK_DEVICE: "a block device",
    Kind.ERROR: "something else",
}


class Product(StrEnum):
    """Which engine answers: they share an API but not every rule (Podman never creates a bind source at start)."""

    DOCKER = "docker"
    PODMAN = "podman"

    @property
    def display(self) -> str:
        """The product's name in a sentence: 'Docker', 'Podman'."""
        return "Podman" if self is Product.PODMAN else "Docker"

    @property
    def cli(self) -> str:
        """The command line program users type for it."""
        return "podman" if self is Product.PODMAN else "docker"


@dataclass(frozen=True)
class EngineInfo:
    endpoint: str
    local: bool
    version: str = ""
    api_version: str = ""
    rootless: bool = False
    desktop: bool = False  # Docker Desktop: sources may live only inside its VM
    product: Product = Product.DOCKER
    context: str | None = None  # the docker context the endpoint came from, when one did
    source: str = ""  # which rule chose the endpoint: "--host", "DOCKER_HOST", "CONTAINER_HOST", ...


@dataclass(frozen=True)
class MountSpec:
    type: str  # bind, volume, tmpfs, npipe, cluster
    source: str
    destination: str
    rw: bool = True
    mode: str = ""
    propagation: str = ""
    name: str = ""  # volume name, for named volumes
    # True when the mount came from ``-v`` (HostConfig.Binds), False from ``--mount`` (HostConfig.Mounts),
    # None when unknown (container not inspected).
    from_binds: bool | None = None


@dataclass(frozen=True)
class ContainerSpec:
    id: str
    name: str
    state: str  # created, running, paused, restarting, removing, exited, dead
    image: str
    mounts: tuple[MountSpec, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    pid: int | None = None
    started_at: float | None = None  # epoch seconds, from State.StartedAt
    created_at: float | None = None  # epoch seconds, from Created (Podman makes missing bind sources then)
    user: str = ""  # Config.User as given: "", "1000", "1000:1000", "app", "app:docker"
    group_add: tuple[str, ...] = ()
    inspected: bool = False
    state_error: str = ""  # State.Error: why the last start failed, in the engine's own words
    exit_code: int | None = None  # State.ExitCode
    storage_driver: str = ""  # GraphDriver.Name: overlay2 (Docker), overlay (Podman), ...
    upper_dir: str = ""  # GraphDriver.Data.UpperDir: the container's own writable layer
    lower_dirs: tuple[str, ...] = ()  # GraphDriver.Data.LowerDir, topmost first: the init and image layers
    product: Product = Product.DOCKER  # the engine it runs on: its commands and rules go into every snippet

    @property
    def running(self) -> bool:
        return self.state in ("running", "paused", "restarting")

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def label(self, key: str) -> str | None:
        for k, v in self.labels:
            if k == key:
                return v
        return None

    @property
    def compose(self) -> str | None:
        project = self.label("com.docker.compose.project")
        service = self.label("com.docker.compose.service")
        if project and service:
            return f"{project}/{service}"
        return project or service


UNTRUSTED_SYMLINK = "untrusted-symlink"  # PathStat.error: a symlink on the way that someone other than root controls


@dataclass(frozen=True)
class PathStat:
    """What one ``lstat`` saw. ``dev``/``ino`` identify the object; ``entries`` counts a directory's children."""

    path: str
    kind: Kind
    dev: int = 0
    ino: int = 0
    mode: int = 0
    uid: int = 0
    gid: int = 0
    nlink: int = 0
    mtime: float = 0.0
    entries: int | None = None  # directories only; None when not listed
    symlink_target: str | None = None
    error: str | None = None  # errno name when kind is ERROR

    @property
    def identity(self) -> tuple[int, int]:
        return (self.dev, self.ino)


@dataclass(frozen=True)
class ProbeResult:
    """One connect attempt. ``errno`` is a name such as ECONNREFUSED, or None on success."""

    ok: bool
    errno: str | None = None
    latency_ms: float = 0.0
    sock_type: str = "stream"  # stream, dgram, seqpacket: the type that worked (or was last tried)
    api: str | None = None  # "docker" or "podman" when the socket answered GET /_ping
    detail: str = ""
    reply: str | None = None  # echo test: what came back


class Liveness(StrEnum):
    """What the kernel's socket tables say about a socket file. Learnt without connecting to anyone."""

    LISTENING = "listening"  # a listening socket is bound to the file
    NOT_ACCEPTING = "not-accepting"  # bound and listening, but its accept queue is full
    BOUND = "bound"  # bound by a socket that does not listen: a datagram server
    UNBOUND = "unbound"  # no socket in any namespace looked at is bound to it: nobody can answer
    UNSEEN = "unseen"  # nobody visible is bound to it, but some namespace that could hold its server was not read


@dataclass(frozen=True)
class SocketState:
    """The socket bound to a file, as ``sock_diag`` lists it; ``looked_in`` says how many namespaces were read."""

    liveness: Liveness
    sock_type: str | None = None  # stream, dgram, seqpacket
    queued: int | None = None  # listeners: connections waiting to be accepted
    backlog: int | None = None  # listeners: the accept queue's maximum
    socket_inode: int | None = None
    netns: int | None = None  # the network namespace the socket was found in
    looked_in: int = 0  # network namespaces read
    unreadable: int = 0  # network namespaces that could hold its server but could not be read
    by_name: bool = False  # the fallback (/proc/net/unix) matched it by name, not by file identity

    @property
    def answering(self) -> bool:
        """A server is there to answer (it may still refuse a particular user)."""
        return self.liveness in (Liveness.LISTENING, Liveness.BOUND)


@dataclass(frozen=True)
class Listener:
    pid: int
    command: str
    container: str | None = None  # container name when the process runs in one


@dataclass(frozen=True)
class Creds:
    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    @property
    def root(self) -> bool:
        return self.uid == 0


@dataclass(frozen=True)
class ContainerView:
    """The container's own view of a path, resolved inside its root (never through a host symlink).

    ``stat`` is None when the view could not be had; ``unavailable`` then says why.
    """

    path: str
    stat: PathStat | None = None
    probe: ProbeResult | None = None
    unavailable: str | None = None
    parents: tuple[PathStat, ...] = ()  # the directories above it, for the search-permission check


class Grant(StrEnum):
    """Who a refusing socket's (or directory's) mode lets connect, which decides the advice that can work."""

    GROUP = "group"  # its group has the permission: --group-add that gid works
    OWNER = "owner"  # only its owner (0600/0700): --group-add cannot help; the owner's uid, or a wider mode, can
    UNMAPPED = "unmapped"  # the owner or group that has it is not mapped into the container's user namespace
    NOBODY = "nobody"  # the mode grants it to no one but root


@dataclass(frozen=True)
class Denial:
    """Why the container's user may not connect: the object that refuses (host ids), and what would grant it."""

    path: str
    what: str  # "write" (the socket) or "search" (a directory on the way)
    mode: int
    uid: int
    gid: int
    grant: Grant
    group_to_add: int | None = None  # the gid to --group-add, as the container names it (None: not mapped)
    owner_inside: int | None = None  # the owner's uid as the container names it (None: not mapped)


@dataclass(frozen=True)
class MountPoint:
    """What a stopped container's own writable layer holds at a mount's destination (overlay's upper layer).

    A *directory* there, where a socket is mounted, makes ``docker start`` fail. ``path`` is the destination resolved
    through the layers as runc resolves it (``/var/run`` -> ``/run``); ``unavailable`` says why it was not looked at.
    """

    path: str
    kind: Kind | None = None  # None: no layer has anything there (the start creates the mount point)
    empty: bool | None = None
    from_image: bool = False  # an image layer has that path too: the container's own layer did not make it
    unavailable: str | None = None


@dataclass(frozen=True)
class FixOffer:
    id: str
    title: str
    destructive: bool


@dataclass(frozen=True)
class SocketReport:
    """A socket inside a ``socket-dir`` mount, with its own verdict."""

    name: str
    host_path: str
    container_path: str
    verdict: Verdict
    reason: str
    host: PathStat | None = None
    host_probe: ProbeResult | None = None
    container: ContainerView | None = None
    listener: Listener | None = None
    bound: SocketState | None = None


@dataclass(frozen=True)
class MountReport:
    mount: MountSpec
    role: Role
    verdict: Verdict | None  # None for role OTHER: nothing to judge
    reason: str
    host: PathStat | None = None
    host_probe: ProbeResult | None = None
    container: ContainerView | None = None
    listener: Listener | None = None
    bound: SocketState | None = None
    shadow_created_by_docker_at: float | None = None
    sockets: tuple[SocketReport, ...] = ()
    fixes: tuple[FixOffer, ...] = ()
    mount_point: MountPoint | None = None  # a stopped container's own layer at the destination
    denial: Denial | None = None  # denied: what refuses, and who its mode lets in

    @property
    def relevant(self) -> bool:
        return self.role is not Role.OTHER


@dataclass(frozen=True)
class ContainerReport:
    container: ContainerSpec
    mounts: tuple[MountReport, ...] = ()
    note: str | None = None  # e.g. "vanished while being inspected"

    @property
    def socket_mounts(self) -> tuple[MountReport, ...]:
        return tuple(m for m in self.mounts if m.relevant)

    @property
    def worst(self) -> Verdict | None:
        verdicts = [m.verdict for m in self.socket_mounts if m.verdict is not None]
        if not verdicts:
            return None
        return max(verdicts, key=lambda v: v.severity)

    @property
    def problems(self) -> int:
        return sum(1 for m in self.socket_mounts if m.verdict is not None and not m.verdict.healthy)


@dataclass(frozen=True)
class CheckReport:
    engine: EngineInfo
    containers: tuple[ContainerReport, ...] = field(default=())
    checked_at: float = 0.0
    notes: tuple[str, ...] = ()  # about the look itself, e.g. that the kernel could not list sockets by file

    @property
    def healthy(self) -> bool:
        return all(c.problems == 0 for c in self.containers)
