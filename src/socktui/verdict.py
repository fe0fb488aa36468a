"""Deciding a verdict: a pure function of observations. No I/O happens here, so every branch is unit-tested.

Order matters. ``connect()`` cannot tell a stale socket from a directory or a file (all give ECONNREFUSED), so the
kind from ``lstat`` decides first; then whether the container still sees the same inode (a detached mount looks
fine from the host); then the host probe; then the container user's permissions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from .compose import Flavour, compose_of
from .model import (
    UNTRUSTED_SYMLINK,
    ContainerSpec,
    ContainerView,
    Creds,
    Denial,
    EngineInfo,
    Grant,
    Kind,
    Listener,
    Liveness,
    MountPoint,
    MountSpec,
    PathStat,
    ProbeResult,
    Product,
    Role,
    SocketState,
    Verdict,
)
from .permissions import SEARCH, WRITE, IdMap, can_access, denial_of, socket_mode_setting, unprivileged
from .roles import ClueKind, DirClue
from .text import counted

# An empty root-owned directory whose mtime is this close to the container's start was made by Docker.
SHADOW_WINDOW_SECONDS = 10.0
DESKTOP_ONLY_PREFIXES = ("/run/host-services/", "/host_mnt/", "/run/desktop/")


@dataclass(frozen=True)
class PathObservation:
    """Everything seen about one expected socket: on the host, and through the container's eyes."""

    host_path: str
    container_path: str
    host: PathStat | None
    host_probe: ProbeResult | None = None
    view: ContainerView | None = None
    listener: Listener | None = None
    via_symlink: str | None = None  # the source is a symlink Docker followed to this target; observed there
    bound: SocketState | None = None  # what the kernel's socket tables say is bound to the host file
    expected_by: str = ""  # inside a socket-dir: why this name is looked for when it is not there now


@dataclass(frozen=True)
class MountObservation:
    engine: EngineInfo
    container: ContainerSpec
    mount: MountSpec
    role: Role
    target: PathObservation  # the mount itself: its source on the host and its destination inside
    entries: tuple[PathObservation, ...] = ()  # sockets inside a socket-dir
    creds: Creds | None = None
    creds_note: str = ""
    observer_root: bool = True  # socktui itself runs as root: its own EACCES then says something about the socket
    not_looked_at: int = 0  # sockets inside a socket-dir beyond the per-mount bound, counted but not judged
    clues: tuple[DirClue, ...] = ()  # a socket-dir: why it should hold sockets (companions, memory, convention)
    mount_point: MountPoint | None = None  # a stopped container's own layer at the destination (file mounts only)
    ids: IdMap | None = None  # the container's user namespace maps (running containers), None: ids are the host's
    engine_root: int | None = None  # a rootless engine's own uid on the host, when no running container maps it


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    shadow_created_at: float | None = None
    denial: Denial | None = None  # denied: what refuses and who its mode lets in (decides group-add vs the rest)


def _clock(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _mode(st: PathStat) -> str:
    return f"{st.mode:04o} {st.uid}:{st.gid}"


def decide(obs: MountObservation) -> Decision | None:
    """The verdict for a mount, or None for a mount that is not socket-relevant."""
    if obs.role is Role.OTHER:
        return None
    engine, mount = obs.engine, obs.mount
    if not engine.local:
        return Decision(
            Verdict.UNKNOWN,
            f"the engine at {engine.endpoint} is remote: {mount.source} is a path on that machine; "
            "run socktui there to inspect it",
        )
    host = obs.target.host
    if engine.desktop and (
        mount.source.startswith(DESKTOP_ONLY_PREFIXES) or (host is not None and host.kind is Kind.MISSING)
    ):
        return Decision(
            Verdict.UNKNOWN,
            f"{mount.source} exists only inside Docker Desktop's VM: not inspectable from here",
        )
    if obs.role is Role.SOCKET_DIR:
        return _decide_dir(obs)
    blocked = _unstartable(obs)
    if blocked is not None:
        return blocked
    decision = decide_path(obs.target, obs, file_mount=True)
    if obs.target.via_symlink is not None:
        decision = replace(
            decision,
            reason=f"{decision.reason} (judged at {obs.target.via_symlink}: {mount.source} is a symlink, and Docker "
            "followed it when mounting)",
        )
    api = _engine_socket(obs)
    if api is not None and not mount.rw:
        decision = replace(
            decision,
            reason=f"{decision.reason}; mounted read-only (:ro), which does not limit what the {api} API allows: "
            f"whoever in {obs.container.name} can connect can still create and start containers (root on the host)",
        )
    return decision


# What runc says when a file is mounted onto a directory (or the reverse); Docker records it in State.Error.
DOCKER_MOUNT_REFUSAL = "Are you trying to mount a directory onto a file (or vice-versa)?"


def docker_mount_refusal(error: str, destination: str) -> str | None:
    """Docker's own sentence from ``State.Error`` when the last start failed on this mount, else None."""
    if "directory onto a file" not in error:
        return None
    if "rootfs at" in error and f'rootfs at "{destination}"' not in error:
        return None  # it names another mount of the same container
    start = error.find("error mounting")
    return error[start:] if start >= 0 else error


def _unstartable(obs: MountObservation) -> Decision | None:
    """A stopped container whose own layer has a directory where a socket is mounted cannot be started again."""
    container, mount = obs.container, obs.mount
    host = obs.target.host
    if container.running or host is None or host.kind in (Kind.DIRECTORY, Kind.MISSING, Kind.ERROR):
        return None
    said = docker_mount_refusal(container.state_error, mount.destination)
    exit_code = f" (exit code {container.exit_code})" if container.exit_code else ""
    point = obs.mount_point
    if point is not None and point.unavailable is None:
        if point.kind is not Kind.DIRECTORY:
            return None  # the layer is right (a file, or nothing yet): an older State.Error is history
        where = mount.destination if point.path == mount.destination else f"{mount.destination} ({point.path})"
        origin = (
            "it comes from the image, so rebuild the image without it or mount the socket elsewhere"
            if point.from_image
            else "made when a shadow directory was mounted there"
        )
        head = (
            f"Docker cannot start {container.name}: its own layer has a directory at {where} ({origin}), and "
            f"{host.kind.words} cannot be mounted onto a directory"
        )
        if said:
            return Decision(Verdict.UNSTARTABLE, f"{head}; the last start failed{exit_code}: {said}")
        return Decision(Verdict.UNSTARTABLE, f'{head}; `docker start` will fail: "{DOCKER_MOUNT_REFUSAL}"')
    if said is None:
        return None
    why = f"; the mount point in its layer was not looked at: {point.unavailable}" if point is not None else ""
    return Decision(Verdict.UNSTARTABLE, f"the last start of {container.name} failed{exit_code}: {said}{why}")


_ENGINE_SOCKET_NAMES = {"docker.sock": "Docker", "podman.sock": "Podman"}


def _engine_socket(obs: MountObservation) -> str | None:
    """'Docker' or 'Podman' when this file mount is an engine's API socket: by its listener, else by its name."""
    by_listener = api_server(obs.target.listener)
    if by_listener in ("Docker", "Podman"):
        return by_listener
    for path in (obs.mount.source, obs.mount.destination):
        name = _ENGINE_SOCKET_NAMES.get(path.rstrip("/").rsplit("/", 1)[-1])
        if name is not None:
            return name
    return None


def decide_path(target: PathObservation, obs: MountObservation, *, file_mount: bool) -> Decision:
    container = obs.container
    host = target.host
    path = target.host_path
    if host is None:
        return Decision(Verdict.UNKNOWN, f"{path} was not looked at")
    if host.kind is Kind.ERROR and host.error == UNTRUSTED_SYMLINK:
        return Decision(
            Verdict.UNKNOWN,
            f"the way to {path} goes through a symlink that someone other than root owns or can replace: not "
            "followed, so what it leads to is not taken for what the container got",
        )
    if host.kind is Kind.ERROR:
        return Decision(Verdict.UNKNOWN, f"cannot lstat {path}: {host.error}; {_lstat_advice(host.error)}")
    if host.kind is Kind.MISSING:
        return _missing(target, obs, file_mount=file_mount)
    if host.kind is Kind.DIRECTORY:
        return _shadowed(host, obs) if file_mount else _not_socket(host)
    if host.kind is not Kind.SOCKET:
        return _not_socket(host)

    view = target.view
    if container.running and view is not None and view.stat is not None:
        seen = view.stat
        if seen.kind is Kind.ERROR:
            # Not seeing is not the same as seeing another inode: never call it detached (that offers a restart).
            return Decision(
                Verdict.UNKNOWN,
                f"{container.name}'s view of {target.container_path} cannot be read ({seen.error}); "
                "the host side cannot be compared with it",
            )
        if seen.kind is Kind.MISSING:
            return Decision(
                Verdict.DETACHED,
                f"the host has a socket at {path} (inode {host.ino}) but {container.name} sees nothing at "
                f"{target.container_path}: its mount no longer shows the host's current file",
            )
        if seen.identity != host.identity:
            gone = " (deleted)" if seen.nlink == 0 else ""
            return Decision(
                Verdict.DETACHED,
                f"{path} is now inode {host.ino}, but {container.name} still sees inode {seen.ino}{gone} at "
                f"{target.container_path}: the socket was re-created after the container started",
            )

    probe = target.host_probe
    bound = target.bound
    if bound is not None:
        problem = _liveness_problem(bound, probe, host)
        if problem is not None:
            return problem
    if probe is not None and not probe.ok:
        if probe.errno == "ECONNREFUSED" and bound is not None and bound.answering:
            return Decision(
                Verdict.UNKNOWN,
                "the kernel lists a socket bound to it, but connect() got ECONNREFUSED: it changed in between",
            )
        if probe.errno == "ECONNREFUSED":
            return Decision(
                Verdict.STALE,
                f"a socket file nobody listens on: connect() got ECONNREFUSED (inode {host.ino}, "
                f"last changed {_clock(host.mtime)})",
            )
        if probe.errno == "EACCES":
            denied = _permission_problem(target, obs, host)
            if denied is not None:
                return denied
            if not obs.observer_root:
                # Our own refusal as a non-root user says nothing about what the container's user may do.
                return Decision(
                    Verdict.UNKNOWN,
                    f"socktui is not running as root and the socket ({_mode(host)}) refuses it (EACCES), so whether "
                    f"{container.name} may connect cannot be tested from here: run socktui as root",
                )
            return Decision(Verdict.DENIED, f"connect() from the host got EACCES ({_mode(host)})")
        if probe.errno == "EAGAIN":
            return Decision(
                Verdict.UNKNOWN,
                "the server is bound but not accepting: its listen backlog is full (EAGAIN); it is stuck or overloaded",
            )
        return Decision(Verdict.UNKNOWN, f"connect() got {probe.errno}: {probe.detail}")

    denied = _permission_problem(target, obs, host)
    if denied is not None:
        return denied

    if view is not None and view.probe is not None and not view.probe.ok:
        if view.probe.errno == "EACCES":
            return Decision(Verdict.DENIED, f"connect() from the container's view got EACCES ({_mode(host)})")
        return Decision(
            Verdict.UNKNOWN,
            f"the host connects, but from {container.name}'s view connect() got {view.probe.errno}",
        )

    how = _accepts(probe, target.listener) if bound is None else _how_live(bound, probe, target.listener)
    if not container.running:
        return Decision(Verdict.LIVE, f"{how}; {container.name} is {container.state} and will see it when started")
    if view is None or view.stat is None:
        why = view.unavailable if view is not None and view.unavailable else "the container was not looked into"
        return Decision(
            Verdict.UNKNOWN,
            f"{how}, but {container.name}'s view cannot be checked: {why}",
        )
    return Decision(Verdict.LIVE, f"{how}; {container.name} sees the same inode {host.ino}")


def _accepts(probe: ProbeResult | None, listener: Listener | None) -> str:
    text = "accepts connections"
    if probe is not None:
        text += f" ({probe.latency_ms:.2f} ms"
        if probe.sock_type != "stream":
            text += f", {probe.sock_type}"
        if probe.api:
            text += f", {'Podman' if probe.api == 'podman' else 'Docker'} API socket"
        text += ")"
    if listener is not None:
        where = f" in {listener.container}" if listener.container else ""
        text += f"; pid {listener.pid} {short_command(listener.command)}{where} listens"
    return text


def api_server(listener: Listener | None) -> str | None:
    """'Docker', 'Podman' or 'containerd' when the listener is that engine's daemon, by its program's name.

    Recognising an API socket by who listens (not by the socket's name) means a hostile name gets no HTTP request.
    """
    if listener is None:
        return None
    program = listener.command.split(" ", 1)[0].rsplit("/", 1)[-1]
    return API_SERVERS.get(program)


API_SERVERS = {"dockerd": "Docker", "podman": "Podman", "containerd": "containerd"}


def _where(bound: SocketState) -> str:
    looked = "the host's network namespace" if bound.looked_in <= 1 else f"{bound.looked_in} network namespaces"
    return f"looked in {looked}"


def _liveness_problem(bound: SocketState, probe: ProbeResult | None, host: PathStat) -> Decision | None:
    """Stale, stuck or unseeable, from the socket tables; None when a server is bound (or a connect found one)."""
    if bound.liveness is Liveness.UNBOUND:
        return Decision(
            Verdict.STALE,
            f"a socket file no socket is bound to: nobody listens (inode {host.ino}, last changed "
            f"{_clock(host.mtime)}; {_where(bound)})",
        )
    if bound.liveness is Liveness.NOT_ACCEPTING:
        return Decision(
            Verdict.UNKNOWN,
            f"the server is bound but not accepting: its accept queue is full ({bound.queued} of {bound.backlog} "
            "waiting); it is stuck or overloaded",
        )
    if bound.liveness is Liveness.UNSEEN:
        hidden = (
            f"{bound.unreadable} network namespace{'s' if bound.unreadable != 1 else ''} that could hold its server "
            "could not be read"
        )
        if probe is None:
            return Decision(
                Verdict.UNKNOWN, f"no socket in sight is bound to it, and {hidden} (run socktui as root to see them)"
            )
        if not probe.ok and probe.errno == "ECONNREFUSED":
            return Decision(
                Verdict.STALE,
                f"a socket file nobody listens on: no socket in sight is bound to it ({hidden}) and connect() got "
                f"ECONNREFUSED (inode {host.ino}, last changed {_clock(host.mtime)})",
            )
    return None


def _how_live(bound: SocketState, probe: ProbeResult | None, listener: Listener | None) -> str:
    if bound.liveness is Liveness.LISTENING:
        kind = "" if bound.sock_type == "stream" else f"{bound.sock_type}, "
        text = f"listening ({kind}{bound.queued} of {bound.backlog} waiting)"
    elif bound.liveness is Liveness.BOUND:
        text = "a datagram socket is bound to it"
    else:
        text = "a server in a namespace socktui cannot read answers a connect"
    if bound.by_name:
        text += " (matched by the path it bound: this kernel has no unix_diag)"
    if probe is not None and probe.ok:
        text += f"; connect() succeeded in {probe.latency_ms:.2f} ms"
        if probe.api:
            text += f", answers /_ping ({'Podman' if probe.api == 'podman' else 'Docker'} API)"
    engine = api_server(listener)
    if engine is not None:
        text += f"; {engine} API socket"
    if listener is not None:
        where = f" in {listener.container}" if listener.container else ""
        text += f"; pid {listener.pid} {short_command(listener.command)}{where} listens"
    return text


def _lstat_advice(error: str | None) -> str:
    if error in ("EACCES", "EPERM"):
        return "run socktui as root or as the owner of its directory"
    if error == "ENAMETOOLONG":
        return "the path is longer than the system allows, so no server can bind it either"
    if error == "ELOOP":
        return "its symlinks loop, so nothing can be reached through it"
    return "check the path and its directories"


def short_command(command: str, limit: int = 60) -> str:
    flat = " ".join(command.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _missing(target: PathObservation, obs: MountObservation, *, file_mount: bool) -> Decision:
    container, mount = obs.container, obs.mount
    path = target.host_path
    podman = obs.engine.product is Product.PODMAN
    if not file_mount:
        if target.expected_by:
            return Decision(Verdict.MISSING, f"{target.expected_by}; {NOTHING_BOUND}")
        return Decision(Verdict.MISSING, f"no socket at {path}: the server has not bound it, or removed it")
    if container.state == "created":
        if podman:
            return Decision(
                Verdict.MISSING,
                f"nothing at {path}; {container.name} will fail to start (Podman never creates a missing bind "
                "source at start: stat ... no such file or directory) until the server creates it",
            )
        if mount.from_binds is True:
            return Decision(
                Verdict.MISSING,
                f"nothing at {path}; starting {container.name} will make Docker create a directory there "
                "(a -v mount), which then blocks the server: start the server first",
            )
        if mount.from_binds is False:
            return Decision(
                Verdict.MISSING,
                f"nothing at {path}; {container.name} will refuse to start (--mount: bind source path does not "
                "exist) until the server creates it",
            )
    extra = ""
    if container.running and target.view is not None and target.view.stat is not None:
        seen = target.view.stat
        if seen.kind is Kind.SOCKET:
            extra = f"; {container.name} still holds the old socket (inode {seen.ino})"
    elif podman and not container.running:
        extra = f"; the next start of {container.name} will fail until it exists (Podman does not create it)"
    elif mount.from_binds and not container.running:
        extra = f"; the next start of {container.name} will make Docker create a directory there (a -v mount)"
    return Decision(Verdict.MISSING, f"nothing at {path}: the server is not running or removed its socket{extra}")


def _made_by(host: PathStat, obs: MountObservation) -> tuple[str, str] | None:
    """Who made this empty directory (owned by the engine's root) at a missing socket's path, and when, by its mtime.

    Docker makes it when the container *starts* with a ``-v`` mount; Podman's Docker-compatible API when the
    container is *created* (for ``Binds`` and ``Mounts`` alike, never at start); podman-compose with ``mkdir`` just
    before it runs the container.
    """
    container, mount = obs.container, obs.mount

    def near(ts: float | None) -> bool:
        return ts is not None and abs(host.mtime - ts) <= SHADOW_WINDOW_SECONDS

    compose = compose_of(container)
    podman_compose = compose is not None and compose.flavour is Flavour.PODMAN
    if podman_compose and (near(container.created_at) or near(container.started_at)):
        return "podman-compose", f"with mkdir before it ran {container.name}"
    if obs.engine.product is Product.PODMAN:
        if near(container.created_at):
            return (
                "Podman",
                f"when {container.name} was created through its Docker-compatible API with a missing source",
            )
        return None
    if mount.from_binds and near(container.started_at):
        return _docker(obs), f"when {container.name} started with a -v mount of a missing path"
    return None


# Both ways servers meet a directory at their socket's path (the seed article's server dies of IsADirectoryError).
SERVER_FAILS = (
    "a server that binds there fails with EADDRINUSE, and one that unlinks the path first fails with EISDIR "
    "(Python: IsADirectoryError)"
)


def engine_root_uid(obs: MountObservation) -> int:
    """The host uid the engine creates missing bind sources as: root, or the root of its user namespace (the
    user a rootless engine runs as, the remapped root of ``dockerd --userns-remap``)."""
    if obs.ids is not None and not obs.ids.identity:
        mapped = obs.ids.uid_to_host(0)
        if mapped is not None:
            return mapped
    if obs.engine_root is not None:
        return obs.engine_root
    return 0


def _owner_words(obs: MountObservation, uid: int) -> str:
    if uid == 0:
        return "root-owned"
    if obs.engine.rootless:
        return f"owned by uid {uid}, the user rootless {obs.engine.product.display} runs as"
    return f"owned by uid {uid}, root of the engine's user namespace"


def _shadowed(host: PathStat, obs: MountObservation) -> Decision:
    mount = obs.mount
    root = engine_root_uid(obs)
    by_engine = host.entries == 0 and host.uid == root
    owner = _owner_words(obs, root)
    made_by = _made_by(host, obs) if by_engine else None
    if made_by is not None:
        who, circumstance = made_by
        return Decision(
            Verdict.SHADOWED,
            f"a directory stands where the socket should be: {who} created it (empty, {owner}) at "
            f"{_clock(host.mtime)} {circumstance}; {SERVER_FAILS}",
            shadow_created_at=host.mtime,
        )
    if by_engine and mount.from_binds is not False:
        makers = (
            "as Podman's Docker-compatible API and podman-compose create for a missing source"
            if obs.engine.product is Product.PODMAN
            else f"as {_docker(obs)} creates for a -v mount whose source is missing"
        )
        return Decision(
            Verdict.SHADOWED,
            f"an empty {'root-owned directory' if root == 0 else f'directory ({owner})'} stands where the socket "
            f"should be (made {_clock(host.mtime)}), "
            f"{makers}; {SERVER_FAILS}",
        )
    count = (
        "empty"
        if host.entries == 0
        else counted(host.entries, "entry", "entries")
        if host.entries is not None
        else "unreadable"
    )
    return Decision(
        Verdict.SHADOWED,
        f"a directory ({count}, {_mode(host)}) stands where a socket is expected; {SERVER_FAILS}",
    )


def _docker(obs: MountObservation) -> str:
    return "rootless Docker" if obs.engine.rootless else "Docker"


def _not_socket(host: PathStat) -> Decision:
    if host.kind is Kind.SYMLINK:
        return Decision(
            Verdict.NOT_SOCKET,
            f"a symlink to {host.symlink_target}, not followed: a container can plant links in a shared directory",
        )
    what = host.kind.words
    return Decision(
        Verdict.NOT_SOCKET,
        f"{what} ({_mode(host)}) is where a socket is expected; connect() would fail with ECONNREFUSED",
    )


def _permission_problem(target: PathObservation, obs: MountObservation, host: PathStat) -> Decision | None:
    creds, ids = obs.creds, obs.ids
    if creds is None or not unprivileged(creds, ids):
        return None
    who = obs.creds_note or f"uid {creds.uid} gid {creds.gid}"
    if ids is not None and not ids.identity:
        host_uid = ids.uid_to_host(creds.uid)
        who += f" (host uid {host_uid if host_uid is not None else 'unmapped'} in its user namespace: {ids.describe()})"
    view = target.view
    # Judge the inode the container actually reaches when it has one; the host's otherwise.
    seen = view.stat if view is not None else None
    sock = seen if seen is not None and seen.kind is Kind.SOCKET else host
    name = obs.container.name
    if not can_access(creds, sock, WRITE, ids):
        denial = denial_of(sock, WRITE, ids)
        setting = socket_mode_setting(
            target.listener.command if target.listener else None, target.host_path.rsplit("/", 1)[-1]
        )
        return Decision(
            Verdict.DENIED,
            f"{name} runs as {who}, but the socket is {_mode(sock)}: connecting needs write permission; "
            + _what_would_let_it(denial, name, setting),
            denial=denial,
        )
    for parent in _container_parents(target):
        if parent.kind is Kind.DIRECTORY and not can_access(creds, parent, SEARCH, ids):
            denial = denial_of(parent, SEARCH, ids)
            return Decision(
                Verdict.DENIED,
                f"{name} runs as {who}, but cannot search {parent.path} ({_mode(parent)}) on the way to "
                f"{target.container_path}; " + _what_would_let_it(denial, name, "the directory's mode (chmod o+x)"),
                denial=denial,
            )
    return None


def _what_would_let_it(denial: Denial, name: str, setting: str) -> str:
    """The advice that works for this mode, checked against what the kernel would allow."""
    if denial.grant is Grant.GROUP:
        return f"its group has it: add --group-add {denial.group_to_add} to {name}"
    if denial.grant is Grant.OWNER:
        gid = denial.group_to_add if denial.group_to_add is not None else denial.gid
        return (
            f"only its owner's uid ({denial.uid}) can connect, so --group-add would not help; what would: "
            f"{setting} (then --group-add {gid}), or running {name} as uid {denial.owner_inside} "
            f"(--user {denial.owner_inside})"
        )
    if denial.grant is Grant.UNMAPPED:
        return (
            f"the owner ({denial.uid}) and group ({denial.gid}) that have it are not mapped into {name}'s user "
            "namespace, so neither --group-add nor --user can reach them; only a mode that lets others in, or an "
            "owner or group inside the mapped range, would"
        )
    return f"its mode lets nobody but root {denial.what} it; {setting} would"


def _container_parents(target: PathObservation) -> tuple[PathStat, ...]:
    return target.view.parents if target.view is not None else ()


def _decide_dir(obs: MountObservation) -> Decision:
    container = obs.container
    host = obs.target.host
    if host is None or host.kind is Kind.ERROR:
        return decide_path(obs.target, obs, file_mount=False)
    if host.kind is not Kind.DIRECTORY:
        return decide_path(obs.target, obs, file_mount=True)
    view = obs.target.view
    if container.running and view is not None and view.stat is not None and view.stat.kind is Kind.ERROR:
        return Decision(
            Verdict.UNKNOWN,
            f"{container.name}'s view of {obs.mount.destination} cannot be read ({view.stat.error})",
        )
    if container.running and view is not None and view.stat is not None and view.stat.identity != host.identity:
        return Decision(
            Verdict.DETACHED,
            f"{obs.mount.source} is now inode {host.ino}, but {container.name} still sees directory inode "
            f"{view.stat.ino}: the directory was re-created after the container started",
        )
    if not obs.entries:
        return _empty_dir(obs)
    decisions = [(entry, decide_path(entry, obs, file_mount=False)) for entry in obs.entries]
    if all(e.host is not None and e.host.kind is Kind.MISSING for e in obs.entries) and not obs.not_looked_at:
        # Only names the clues gave, none of them there: the directory has lost its sockets.
        said = "; ".join(e.expected_by or f"{e.host_path.rsplit('/', 1)[-1]} is expected" for e in obs.entries[:3])
        more = f" (and {len(obs.entries) - 3} more)" if len(obs.entries) > 3 else ""
        return Decision(
            Verdict.MISSING, f"no socket in {obs.mount.source}{_inside(obs)}: {said}{more}; {NOTHING_BOUND}"
        )
    bad = [(e, d) for e, d in decisions if not d.verdict.healthy]
    if not bad and obs.not_looked_at:
        return Decision(
            Verdict.UNKNOWN,
            f"{len(obs.entries)} sockets inside are live, but {obs.not_looked_at} more were not looked at (more "
            f"than {len(obs.entries)} in one directory)",
        )
    if not bad:
        names = ", ".join(e.host_path.rsplit("/", 1)[-1] for e in obs.entries)
        count = len(obs.entries)
        return Decision(Verdict.OK, f"{count} socket{'s' if count != 1 else ''} inside, all live: {names}")
    worst_entry, worst = max(bad, key=lambda pair: pair[1].verdict.severity)
    name = worst_entry.host_path.rsplit("/", 1)[-1]
    unseen = f" ({obs.not_looked_at} more not looked at)" if obs.not_looked_at else ""
    return Decision(
        worst.verdict,
        f"{len(bad)} of {counted(len(obs.entries), 'socket')} inside {'is' if len(bad) == 1 else 'are'} not "
        f"live{unseen}; {name}: {worst.reason}",
        denial=worst.denial,
    )


NOTHING_BOUND = "nothing is bound there: the server is not running, or its socket was removed"


def _inside(obs: MountObservation) -> str:
    mount = obs.mount
    return "" if mount.destination.rstrip("/") == mount.source.rstrip("/") else f" (at {mount.destination} inside)"


def _empty_dir(obs: MountObservation) -> Decision:
    """A socket-dir with no socket in it: say what made socktui expect one."""
    source = obs.mount.source
    clues = [c for c in obs.clues if c.kind is not ClueKind.SEEN]
    if not clues:
        return Decision(Verdict.MISSING, f"no sockets in {source}: no server has bound one there")
    said = "; ".join(c.says for c in clues[:2])
    return Decision(Verdict.MISSING, f"no socket in {source}{_inside(obs)}: {said}; {NOTHING_BOUND}")


def decide_entry(entry: PathObservation, obs: MountObservation) -> Decision:
    """The verdict of one socket inside a socket-dir."""
    return decide_path(entry, obs, file_mount=False)
