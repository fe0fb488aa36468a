"""A hand-built world with one socket mount per verdict (and a few variants), for the plumbing picture's tests.

Each report comes out of the real pure decision (``diagnose.report_for`` over hand-built observations), so its
verdict and reason are what ``socktui check`` would say about that situation. Times are fixed; read them as UTC.
"""

from __future__ import annotations

from dataclasses import replace

from socktui.diagnose import report_for
from socktui.model import (
    CheckReport,
    ContainerReport,
    ContainerSpec,
    ContainerView,
    Creds,
    EngineInfo,
    Kind,
    Listener,
    MountPoint,
    MountReport,
    MountSpec,
    PathStat,
    ProbeResult,
    Role,
)
from socktui.verdict import MountObservation, PathObservation

FROZEN = 1_764_442_800.0  # 2025-11-29 19:00:00 UTC
STARTED = FROZEN - 3600  # 18:00:00 UTC
DEV = 2049
BASE = "/run/socktui-demo/srv"
SERVER = "/usr/bin/python3 /opt/socktui/demo/sockserver.py /run/socktui-demo/srv/api.sock"
ENGINE = EngineInfo(endpoint="unix:///run/socktui-demo/engine/docker.sock", local=True, version="20.10.24")


def _container(name: str, n: int, state: str = "running", user: str = "", **kw: object) -> ContainerSpec:
    running = state == "running"
    return ContainerSpec(
        id=f"{n:02d}" * 32,
        name=name,
        state=state,
        image="socktui-test:latest",
        pid=1000 + n if running else None,
        started_at=STARTED if state != "created" else None,
        user=user,
        inspected=True,
        **kw,  # type: ignore[arg-type]
    )


def _sock(path: str, ino: int, mode: int = 0o660, gid: int = 0, nlink: int = 1) -> PathStat:
    return PathStat(path=path, kind=Kind.SOCKET, dev=DEV, ino=ino, mode=mode, gid=gid, nlink=nlink, mtime=STARTED)


def _seen(st: PathStat, path: str, **kw: object) -> ContainerView:
    return ContainerView(path=path, stat=replace(st, path=path), **kw)  # type: ignore[arg-type]


OK = ProbeResult(ok=True, latency_ms=0.05)
REFUSED = ProbeResult(ok=False, errno="ECONNREFUSED", detail="Connection refused")


def _one(
    ctr: ContainerSpec,
    name: str,
    host: PathStat | None,
    *,
    probe: ProbeResult | None = None,
    view: ContainerView | None = None,
    listener: Listener | None = None,
    from_binds: bool | None = True,
    creds: Creds | None = None,
    engine: EngineInfo = ENGINE,
    mount_point: MountPoint | None = None,
) -> tuple[ContainerSpec, MountReport]:
    source, destination = f"{BASE}/{name}", f"/run/{name}"
    mount = MountSpec(type="bind", source=source, destination=destination, from_binds=from_binds)
    ctr = replace(ctr, mounts=(mount,))
    if view is None and ctr.running and host is not None and host.kind is not Kind.ERROR:
        view = _seen(host, destination, probe=OK if probe is not None and probe.ok else None)
    target = PathObservation(
        host_path=source, container_path=destination, host=host, host_probe=probe, view=view, listener=listener
    )
    obs = MountObservation(engine, ctr, mount, Role.SOCKET, target, creds=creds, creds_note="", mount_point=mount_point)
    return ctr, report_for(obs)


def _dir(
    ctr: ContainerSpec, name: str, sockets: dict[str, tuple[int, ProbeResult, Listener | None]]
) -> tuple[ContainerSpec, MountReport]:
    source, destination = f"{BASE}/{name}", f"/{name}"
    mount = MountSpec(type="bind", source=source, destination=destination, from_binds=True)
    ctr = replace(ctr, mounts=(mount,))
    host = PathStat(path=source, kind=Kind.DIRECTORY, dev=DEV, ino=4600, mode=0o755, nlink=2, entries=len(sockets))
    target = PathObservation(source, destination, host, view=_seen(host, destination))
    entries = tuple(
        PathObservation(
            f"{source}/{sock}",
            f"{destination}/{sock}",
            _sock(f"{source}/{sock}", ino),
            host_probe=probe,
            view=_seen(_sock(f"{source}/{sock}", ino), f"{destination}/{sock}"),
            listener=listener,
        )
        for sock, (ino, probe, listener) in sockets.items()
    )
    obs = MountObservation(ENGINE, ctr, mount, Role.SOCKET_DIR, target, entries=entries)
    return ctr, report_for(obs)


def cases() -> dict[str, tuple[ContainerSpec, MountReport]]:
    """Name -> (container, its one socket mount). The first nine are one per verdict."""
    api_sock = _sock(f"{BASE}/api.sock", 2187301)
    shadow = PathStat(
        path=f"{BASE}/app.sock",
        kind=Kind.DIRECTORY,
        dev=DEV,
        ino=2187290,
        mode=0o755,
        nlink=2,
        mtime=STARTED + 1,
        entries=0,
    )
    metrics = _sock(f"{BASE}/metrics.sock", 2187295)
    admin = _sock(f"{BASE}/admin.sock", 2187310, mode=0o660, gid=999)
    server = Listener(pid=4242, command=SERVER)
    return {
        "live": _one(_container("api", 1), "api.sock", api_sock, probe=OK, listener=server),
        "ok": _dir(
            _container("producer", 2),
            "ipc",
            {
                "ipc.sock": (2187320, OK, Listener(pid=4300, command="/usr/bin/python3 /opt/ipc/server.py")),
                "events.sock": (2187321, OK, Listener(pid=4300, command="/usr/bin/python3 /opt/ipc/server.py")),
            },
        ),
        "shadowed": _one(_container("web", 3), "app.sock", shadow, view=_seen(shadow, "/run/app.sock")),
        "stale": _one(_container("consumer", 4), "queue.sock", _sock(f"{BASE}/queue.sock", 2187280), probe=REFUSED),
        "detached": _one(
            _container("exporter", 5),
            "metrics.sock",
            metrics,
            probe=OK,
            listener=replace(server, pid=4250),
            view=_seen(replace(metrics, ino=2187294, nlink=0), "/run/metrics.sock", probe=REFUSED),
        ),
        "missing": _one(
            _container("batch", 6, state="created"), "batch.sock", PathStat(f"{BASE}/batch.sock", Kind.MISSING)
        ),
        "denied": _one(
            _container("reporter", 7, user="1000:1000"),
            "admin.sock",
            admin,
            probe=OK,
            listener=replace(server, pid=4260),
            creds=Creds(uid=1000, gid=1000),
        ),
        "not-socket": _one(
            _container("notes", 8),
            "notes.sock",
            PathStat(f"{BASE}/notes.sock", Kind.FILE, dev=DEV, ino=2187330, mode=0o644, nlink=1),
        ),
        "unknown": _one(
            _container("probe", 9),
            "agent.sock",
            _sock(f"{BASE}/agent.sock", 2187340),
            probe=OK,
            view=ContainerView(
                path="/run/agent.sock",
                unavailable="no permission to look into /proc/1009/root (run socktui as root, or as the container's "
                "uid)",
            ),
        ),
        "unstartable": _one(
            _container(
                "legacy",
                14,
                state="exited",
                state_error=f'error mounting "{BASE}/legacy.sock" to rootfs at "/run/legacy.sock": mount ...: not a '
                "directory: unknown: Are you trying to mount a directory onto a file (or vice-versa)? Check if the "
                "specified host path exists and is the expected type",
                exit_code=127,
            ),
            "legacy.sock",
            _sock(f"{BASE}/legacy.sock", 2187360),
            probe=OK,
            listener=replace(server, pid=4270),
            mount_point=MountPoint("/run/legacy.sock", Kind.DIRECTORY, empty=True),
        ),
        # Variants the picture must also tell apart.
        "empty-dir": _dir(_container("xclient", 10), "x11", {}),
        "dir-stale": _dir(
            _container("sidecar", 11),
            "shared",
            {"db.sock": (2187350, REFUSED, None), "cache.sock": (2187351, OK, server)},
        ),
        "stopped-live": _one(
            _container("nightly", 12, state="exited"), "api.sock", api_sock, probe=OK, listener=server
        ),
        "remote": _one(
            _container("far", 13),
            "api.sock",
            None,
            engine=EngineInfo(endpoint="tcp://10.0.0.5:2376", local=False, version="20.10.24"),
        ),
    }


VERDICT_CASES = (
    "live",
    "ok",
    "shadowed",
    "stale",
    "detached",
    "missing",
    "denied",
    "not-socket",
    "unstartable",
    "unknown",
)


def report() -> CheckReport:
    containers = tuple(ContainerReport(container=c, mounts=(m,)) for c, m in cases().values())
    return CheckReport(engine=ENGINE, containers=containers, checked_at=FROZEN)
