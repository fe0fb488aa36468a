"""Small factories for hand-built observations, so a test reads like the situation it describes.

Defaults describe the healthy case: a local engine, a running container ``web`` started at ``STARTED``, a ``-v``
bind of ``/run/app/app.sock`` to ``/run/app.sock``, and a root-owned 0660 socket at inode ``HOST_INO``.
Every builder takes keywords to change one fact at a time.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Any

from socktui.model import (
    ContainerSpec,
    ContainerView,
    Creds,
    EngineInfo,
    Kind,
    Listener,
    MountSpec,
    PathStat,
    ProbeResult,
    Role,
    SocketState,
)
from socktui.verdict import MountObservation, PathObservation

STARTED = 1_700_000_000.0  # the container's State.StartedAt, epoch seconds
DEV = 2049
HOST_INO = 4242
HOST_SOURCE = "/run/app/app.sock"
DESTINATION = "/run/app.sock"


def local_engine(**kw: Any) -> EngineInfo:
    return EngineInfo(**{"endpoint": "unix:///var/run/docker.sock", "local": True, "version": "20.10.24", **kw})


def remote_engine(endpoint: str = "tcp://10.0.0.5:2376") -> EngineInfo:
    return EngineInfo(endpoint=endpoint, local=False, version="20.10.24")


def desktop_engine() -> EngineInfo:
    return local_engine(desktop=True)


def container(state: str = "running", **kw: Any) -> ContainerSpec:
    running = state in ("running", "paused", "restarting")
    defaults: dict[str, Any] = {
        "id": "c0ffee" * 10 + "abcd",
        "name": "web",
        "state": state,
        "image": "busybox:latest",
        "pid": 31337 if running else None,
        "started_at": STARTED if state != "created" else None,
        "inspected": True,
    }
    return ContainerSpec(**{**defaults, **kw})


def bind(source: str = HOST_SOURCE, destination: str = DESTINATION, *, from_binds: bool | None = True) -> MountSpec:
    """A bind mount; ``from_binds`` True for ``-v``, False for ``--mount``, None when not inspected."""
    return MountSpec(type="bind", source=source, destination=destination, from_binds=from_binds)


def sock(
    path: str = HOST_SOURCE, *, ino: int = HOST_INO, mode: int = 0o660, uid: int = 0, gid: int = 0, **kw: Any
) -> PathStat:
    return PathStat(
        path=path, kind=Kind.SOCKET, dev=DEV, ino=ino, mode=mode, uid=uid, gid=gid, nlink=1, mtime=STARTED - 60, **kw
    )


def directory(
    path: str = HOST_SOURCE, *, entries: int | None = 0, uid: int = 0, mtime: float = STARTED, ino: int = 900, **kw: Any
) -> PathStat:
    return PathStat(
        path=path,
        kind=Kind.DIRECTORY,
        dev=DEV,
        ino=ino,
        mode=kw.pop("mode", 0o755),
        uid=uid,
        gid=kw.pop("gid", 0),
        nlink=2,
        mtime=mtime,
        entries=entries,
        **kw,
    )


def regular_file(path: str = HOST_SOURCE, *, mode: int = 0o644) -> PathStat:
    return PathStat(path=path, kind=Kind.FILE, dev=DEV, ino=77, mode=mode, nlink=1)


def fifo(path: str = HOST_SOURCE) -> PathStat:
    return PathStat(path=path, kind=Kind.FIFO, dev=DEV, ino=78, mode=0o600, nlink=1)


def symlink(path: str = HOST_SOURCE, target: str = "/var/run/docker.sock") -> PathStat:
    return PathStat(path=path, kind=Kind.SYMLINK, dev=DEV, ino=79, mode=0o777, nlink=1, symlink_target=target)


def missing(path: str = HOST_SOURCE) -> PathStat:
    return PathStat(path=path, kind=Kind.MISSING)


def lstat_error(path: str = HOST_SOURCE, error: str = "EACCES") -> PathStat:
    return PathStat(path=path, kind=Kind.ERROR, error=error)


def probe_ok(*, latency_ms: float = 0.05, sock_type: str = "stream", api: str | None = None) -> ProbeResult:
    return ProbeResult(ok=True, latency_ms=latency_ms, sock_type=sock_type, api=api, detail="connected")


def probe_failed(errno: str, detail: str = "") -> ProbeResult:
    return ProbeResult(ok=False, errno=errno, detail=detail or errno.lower())


def view(
    path: str = DESTINATION,
    stat: PathStat | None = None,
    *,
    probe: ProbeResult | None = None,
    unavailable: str | None = None,
    parents: tuple[PathStat, ...] = (),
) -> ContainerView:
    return ContainerView(path=path, stat=stat, probe=probe, unavailable=unavailable, parents=parents)


def same_inode_view(host: PathStat, path: str = DESTINATION, **kw: Any) -> ContainerView:
    """What a healthy running container sees: the very inode the host has."""
    return view(path, replace(host, path=path), **kw)


def target(
    host: PathStat | None,
    *,
    host_probe: ProbeResult | None = None,
    view: ContainerView | None = None,
    listener: Listener | None = None,
    host_path: str | None = None,
    container_path: str = DESTINATION,
    bound: SocketState | None = None,
) -> PathObservation:
    return PathObservation(
        host_path=host_path if host_path is not None else (host.path if host is not None else HOST_SOURCE),
        container_path=container_path,
        host=host,
        host_probe=host_probe,
        view=view,
        listener=listener,
        bound=bound,
    )


def observation(
    target_obs: PathObservation,
    *,
    engine: EngineInfo | None = None,
    ctr: ContainerSpec | None = None,
    mount: MountSpec | None = None,
    role: Role = Role.SOCKET,
    entries: tuple[PathObservation, ...] = (),
    creds: Creds | None = None,
    creds_note: str = "",
) -> MountObservation:
    return MountObservation(
        engine=engine or local_engine(),
        container=ctr or container(),
        mount=mount or bind(),
        role=role,
        target=target_obs,
        entries=entries,
        creds=creds,
        creds_note=creds_note,
    )


def live_socket_obs(**kw: Any) -> MountObservation:
    """A running container with the host's current socket, which accepts connections."""
    host = sock()
    return observation(target(host, host_probe=probe_ok(), view=same_inode_view(host)), **kw)


# Socket directories -------------------------------------------------------------------------------------------------

DIR_SOURCE = "/run/app"
DIR_DESTINATION = "/run/app"


def dir_mount(source: str = DIR_SOURCE, destination: str = DIR_DESTINATION) -> MountSpec:
    return bind(source, destination)


def entry(
    name: str, host: PathStat | None = None, *, host_probe: ProbeResult | None = None, ino: int = 0
) -> PathObservation:
    """One socket inside the default socket-dir mount, seen the same way by host and container."""
    host_path = posixpath.join(DIR_SOURCE, name)
    container_path = posixpath.join(DIR_DESTINATION, name)
    st = host if host is not None else sock(host_path, ino=ino or 5000 + len(name))
    seen = same_inode_view(st, container_path) if st.kind is Kind.SOCKET else view(container_path, replace(st))
    return PathObservation(
        host_path=host_path, container_path=container_path, host=st, host_probe=host_probe, view=seen
    )


def dir_obs(*entries: PathObservation, host_dir: PathStat | None = None, **kw: Any) -> MountObservation:
    d = host_dir or directory(DIR_SOURCE, entries=len(entries), ino=600)
    return observation(
        target(d, view=same_inode_view(d, DIR_DESTINATION), container_path=DIR_DESTINATION),
        mount=kw.pop("mount", dir_mount()),
        role=Role.SOCKET_DIR,
        entries=entries,
        **kw,
    )
