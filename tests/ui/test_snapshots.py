"""SVG snapshots of the main screens, made deterministic: no daemon, a hand-built report, a frozen clock, fixed sizes.

What is under test here is rendering, so the app is given a small fake session that returns one hand-built
``CheckReport`` with a container for every verdict (and one with no socket mount at all). Every reason is fixed
text; the only clock the UI reads (``socktui.ui.widgets.time``) is frozen at ``FROZEN``, read as UTC.

Regenerate after an intended change with ``pytest tests/ui/test_snapshots.py --snapshot-update`` and look at the
SVGs under ``tests/ui/__snapshots__/`` before committing them.
"""

from __future__ import annotations

import time as real_time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from textual.pilot import Pilot

from socktui.fixes import offers
from socktui.model import (
    CheckReport,
    ContainerReport,
    ContainerSpec,
    ContainerView,
    EngineInfo,
    Kind,
    Listener,
    MountReport,
    MountSpec,
    PathStat,
    ProbeResult,
    Role,
    SocketReport,
    Verdict,
)
from socktui.session import Options
from socktui.ui import widgets
from socktui.ui.app import SocktuiApp
from socktui.ui.screens import FixScreen, HelpScreen
from socktui.ui.widgets import ContainerList

FROZEN = 1_764_442_800.0  # 2025-11-29 19:00:00 UTC
STARTED = FROZEN - 3600
DEV = 2049
ENDPOINT = "unix:///var/run/docker.sock"
SERVER = "/usr/bin/python3 /srv/app/server.py --socket /srv/run/app.sock"

# --------------------------------------------------------------------------- the hand-built world


def _sock(path: str, ino: int, mode: int = 0o660, gid: int = 0) -> PathStat:
    return PathStat(path=path, kind=Kind.SOCKET, dev=DEV, ino=ino, mode=mode, uid=0, gid=gid, nlink=1, mtime=STARTED)


def _ok_probe(ms: float = 0.05) -> ProbeResult:
    return ProbeResult(ok=True, latency_ms=ms)


def _refused() -> ProbeResult:
    return ProbeResult(ok=False, errno="ECONNREFUSED", detail="Connection refused")


def _container(name: str, n: int, state: str = "running", user: str = "", **kw: Any) -> ContainerSpec:
    running = state == "running"
    return ContainerSpec(
        id=f"{n:02d}" * 32,
        name=name,
        state=state,
        image=kw.pop("image", "busybox:1.36"),
        pid=1000 + n if running else None,
        started_at=STARTED if state != "created" else None,
        user=user,
        inspected=True,
        **kw,
    )


def _mount(
    source: str,
    destination: str,
    verdict: Verdict | None,
    reason: str,
    role: Role = Role.SOCKET,
    **kw: Any,
) -> MountReport:
    spec = MountSpec(type="bind", source=source, destination=destination, from_binds=True)
    return MountReport(mount=spec, role=role, verdict=verdict, reason=reason, fixes=offers(verdict, spec, role), **kw)


def _report(spec: ContainerSpec, *mounts: MountReport) -> ContainerReport:
    spec = ContainerSpec(**{**spec.__dict__, "mounts": tuple(m.mount for m in mounts)})
    return ContainerReport(container=spec, mounts=mounts)


def build_report() -> CheckReport:
    """One container per verdict, as `socktui check` would describe them."""
    web = _report(
        _container("web", 1, labels=(("com.docker.compose.project", "shop"), ("com.docker.compose.service", "web"))),
        _mount(
            "/srv/run/app.sock",
            "/run/app.sock",
            Verdict.SHADOWED,
            "a directory stands where the socket should be: Docker created it (empty, root-owned) at 18:00:00 when "
            "web started with a -v mount of a missing path; the server's bind() now fails with EADDRINUSE",
            host=PathStat(
                path="/srv/run/app.sock",
                kind=Kind.DIRECTORY,
                dev=DEV,
                ino=901,
                mode=0o755,
                nlink=2,
                mtime=STARTED,
                entries=0,
            ),
            container=ContainerView(
                path="/run/app.sock",
                stat=PathStat(path="/run/app.sock", kind=Kind.DIRECTORY, dev=DEV, ino=901, mode=0o755, entries=0),
            ),
            shadow_created_by_docker_at=STARTED,
        ),
        _mount("/srv/web/static", "/usr/share/www", None, "", role=Role.OTHER),
    )
    consumer = _report(
        _container("consumer", 2),
        _mount(
            "/srv/run/queue.sock",
            "/run/queue.sock",
            Verdict.STALE,
            "a socket file nobody listens on: connect() got ECONNREFUSED (inode 4101, last changed 18:00:00)",
            host=_sock("/srv/run/queue.sock", 4101),
            host_probe=_refused(),
        ),
    )
    exporter = _report(
        _container("exporter", 3),
        _mount(
            "/srv/run/metrics.sock",
            "/run/metrics.sock",
            Verdict.DETACHED,
            "/srv/run/metrics.sock is now inode 4202, but exporter still sees inode 4201 (deleted) at "
            "/run/metrics.sock: the socket was re-created after the container started",
            host=_sock("/srv/run/metrics.sock", 4202),
            host_probe=_ok_probe(),
        ),
    )
    batch = _report(
        _container("batch", 4, state="exited"),
        _mount(
            "/srv/run/batch.sock",
            "/run/batch.sock",
            Verdict.MISSING,
            "nothing at /srv/run/batch.sock: the server is not running or removed its socket; the next start of "
            "batch will make Docker create a directory there (a -v mount)",
            host=PathStat(path="/srv/run/batch.sock", kind=Kind.MISSING),
        ),
    )
    notes = _report(
        _container("notes", 5),
        _mount(
            "/srv/run/notes.sock",
            "/run/notes.sock",
            Verdict.NOT_SOCKET,
            "a regular file (0644 0:0) is where a socket is expected; connect() would fail with ECONNREFUSED",
            host=PathStat(path="/srv/run/notes.sock", kind=Kind.FILE, dev=DEV, ino=4301, mode=0o644, nlink=1),
        ),
    )
    reporter = _report(
        _container("reporter", 6, user="1000:1000"),
        _mount(
            "/srv/run/admin.sock",
            "/run/admin.sock",
            Verdict.DENIED,
            "reporter runs as uid 1000 gid 1000, but the socket is 0600 0:0: connecting needs write permission "
            "(add --group-add 0, or change the socket's group)",
            host=_sock("/srv/run/admin.sock", 4401, mode=0o600),
            host_probe=_ok_probe(),
        ),
    )
    probe = _report(
        _container("probe", 7),
        _mount(
            "/mnt/vm/agent.sock",
            "/run/agent.sock",
            Verdict.UNKNOWN,
            "cannot lstat /mnt/vm/agent.sock: EACCES; run socktui as root or as the owner of its directory",
            host=PathStat(path="/mnt/vm/agent.sock", kind=Kind.ERROR, error="EACCES"),
        ),
    )
    api = _report(
        _container("api", 8),
        _mount(
            "/srv/run/api.sock",
            "/run/api.sock",
            Verdict.LIVE,
            f"accepts connections (0.05 ms, stream); pid 4242 {SERVER} listens; api sees the same inode 4501",
            host=_sock("/srv/run/api.sock", 4501),
            host_probe=_ok_probe(),
            container=ContainerView(path="/run/api.sock", stat=_sock("/run/api.sock", 4501), probe=_ok_probe(0.04)),
            listener=Listener(pid=4242, command=SERVER),
        ),
    )
    shared = [
        SocketReport(
            name=name,
            host_path=f"/srv/shared/{name}",
            container_path=f"/shared/{name}",
            verdict=Verdict.LIVE,
            reason="accepts connections",
            host=_sock(f"/srv/shared/{name}", ino),
            host_probe=_ok_probe(),
            listener=Listener(pid=pid, command=f"/usr/sbin/{name.split('.')[0]}d"),
        )
        for name, ino, pid in (("cache.sock", 4601, 5100), ("db.sock", 4602, 5200))
    ]
    worker = _report(
        _container("worker", 9),
        _mount(
            "/srv/shared",
            "/shared",
            Verdict.OK,
            "a shared directory with 2 sockets, all live",
            role=Role.SOCKET_DIR,
            host=PathStat(path="/srv/shared", kind=Kind.DIRECTORY, dev=DEV, ino=4600, mode=0o755, entries=2),
            sockets=tuple(shared),
        ),
    )
    cron = _report(_container("cron", 10), _mount("/srv/cron", "/etc/cron.d", None, "", role=Role.OTHER))
    legacy = _report(
        _container("legacy", 11, state="exited"),
        _mount(
            "/srv/run/legacy.sock",
            "/run/legacy.sock",
            Verdict.UNSTARTABLE,
            "Docker cannot start legacy: its own layer has a directory at /run/legacy.sock (made when a shadow "
            "directory was mounted there), and a socket cannot be mounted onto a directory; the last start failed "
            '(exit code 127): error mounting "/srv/run/legacy.sock" to rootfs at "/run/legacy.sock": ... Are you '
            "trying to mount a directory onto a file (or vice-versa)?",
            host=_sock("/srv/run/legacy.sock", 4701),
            host_probe=_ok_probe(),
        ),
    )
    engine = EngineInfo(endpoint=ENDPOINT, local=True, version="27.5.1", api_version="1.47")
    containers = (web, consumer, exporter, batch, notes, reporter, probe, api, worker, cron, legacy)
    return CheckReport(engine=engine, containers=containers, checked_at=FROZEN)


@dataclass
class FakeSession:
    """What the app reads from a Session, and nothing more: rendering is what is under test."""

    report: CheckReport = field(default_factory=build_report)
    options: Options = field(default_factory=Options)
    engine: Any = field(
        default_factory=lambda: SimpleNamespace(endpoint=SimpleNamespace(url=ENDPOINT, source="DOCKER_HOST"))
    )

    def full_check(self, cancel: object = None, on_listed: object = None) -> CheckReport:
        return self.report

    def snapshot(self) -> CheckReport:
        return self.report

    def counts(self) -> tuple[int, int, int, Verdict | None]:
        containers = self.report.containers
        worst = max((c.worst for c in containers if c.worst), key=lambda v: v.severity, default=None)
        return (
            len(containers),
            sum(len(c.socket_mounts) for c in containers),
            sum(c.problems for c in containers),
            worst,
        )

    def versions(self) -> dict[str, int]:
        return {}

    def watched_paths(self) -> set[str]:
        return {m.mount.source for c in self.report.containers for m in c.socket_mounts}

    def socket_dirs(self) -> set[str]:
        return {m.mount.source for c in self.report.containers for m in c.socket_mounts if m.role is Role.SOCKET_DIR}

    def listener_pids(self) -> set[int]:
        return {m.listener.pid for c in self.report.containers for m in c.socket_mounts if m.listener}

    def live_socket_paths(self) -> set[str]:
        return {m.mount.source for c in self.report.containers for m in c.socket_mounts if m.verdict is Verdict.LIVE}


class FrozenClock:
    """Stands in for the ``time`` module inside ``socktui.ui.widgets``: always FROZEN, always UTC."""

    @staticmethod
    def localtime(seconds: float | None = None) -> real_time.struct_time:
        return real_time.gmtime(FROZEN if seconds is None else seconds)

    @staticmethod
    def strftime(fmt: str, when: real_time.struct_time | None = None) -> str:
        return real_time.strftime(fmt, when if when is not None else real_time.gmtime(FROZEN))


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(widgets, "time", FrozenClock)


def make_app() -> SocktuiApp:
    return SocktuiApp(FakeSession(), live=False)  # type: ignore[arg-type]


async def _until(pilot: Pilot[Any], predicate: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    deadline = real_time.monotonic() + timeout
    while not predicate():
        if real_time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def loaded(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, SocktuiApp)
    # Eleven containers and the row of their one compose project, "shop".
    await _until(pilot, lambda: app.report is not None and app.query_one(ContainerList).row_count == 12, "the rows")
    await _until(pilot, lambda: app.selected_id is not None, "a selection")
    await pilot.pause()


# --------------------------------------------------------------------------- the snapshots


def test_the_fake_world_has_every_verdict() -> None:
    # The snapshots claim to show one container per verdict: keep the claim true when the model grows.
    worst = {c.worst for c in build_report().containers}
    assert worst == set(Verdict) | {None}


def test_main_screen_80x24(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=loaded)


def test_main_screen_120x36(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(120, 36), run_before=loaded)


def test_help_screen(snap_compare: Any) -> None:
    async def open_help(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        await pilot.press("question_mark")
        await _until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help screen")

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=open_help)


def test_fix_plan_preview(snap_compare: Any) -> None:
    async def preview(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        app = pilot.app
        assert isinstance(app, SocktuiApp)
        assert app.selected_report() is not None and app.selected_report().container.name == "web"  # type: ignore[union-attr]
        await pilot.press("f")
        await _until(pilot, lambda: isinstance(app.screen, FixScreen), "the fix screen")
        await pilot.press("enter")
        await _until(pilot, lambda: getattr(app.screen, "stage", "") == "preview", "the plan preview")

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=preview)


def test_main_screen_ascii_80x24(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A terminal that is not UTF-8: every cell ASCII, and the log says why. The sentence names the locale.
    for name in ("LC_ALL", "LC_CTYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C")
    app = SocktuiApp(FakeSession(), live=False, ascii_only=True)  # type: ignore[arg-type]
    assert snap_compare(app, terminal_size=(80, 24), run_before=loaded)
