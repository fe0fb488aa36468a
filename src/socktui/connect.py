"""The ``t`` key: a connect to a mount's socket from the host, and from the container's own view.

Asked for by the user, so it connects (a look never does); an HTTP ``/_ping`` goes only to an engine's own daemon,
known by who listens.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import ContainerReport, MountReport, ProbeResult
from .observe import ContainerLook
from .probe import probe_host_path
from .verdict import api_server


@dataclass(frozen=True)
class ConnectTest:
    target: str  # the host path connected to
    host: ProbeResult
    lines: tuple[str, ...]  # one per side, for the screen and the detail pane


def test_connect(report: ContainerReport, mount: MountReport) -> ConnectTest:
    target = mount.sockets[0].host_path if mount.sockets else mount.mount.source
    inside = mount.sockets[0].container_path if mount.sockets else mount.mount.destination
    listener = mount.sockets[0].listener if mount.sockets else mount.listener
    host = probe_host_path(target, ping=api_server(listener) in ("Docker", "Podman"))
    look = ContainerLook(report.container)
    try:
        view = look.view(inside, with_parents=False, connect=True) if report.container.running else None
    finally:
        look.close()
    lines = [f"host {target}: {probe_text(host)}"]
    if view is None:
        lines.append(f"container {inside}: {report.container.name} is not running")
    elif view.stat is None:
        lines.append(f"container {inside}: {view.unavailable}")
    elif view.probe is None:
        lines.append(f"container {inside}: {view.stat.kind.value}, not a socket")
    else:
        lines.append(f"container {inside}: {probe_text(view.probe)}")
    return ConnectTest(target, host, tuple(lines))


def probe_text(p: ProbeResult) -> str:
    if p.ok:
        api = f", {p.api} API" if p.api else ""
        return f"connected in {p.latency_ms:.2f} ms ({p.sock_type}{api})"
    return f"{p.errno}: {p.detail}"


def send_line(path: str, payload: bytes) -> ProbeResult:
    """What the connect screen sends to an echo-style server: one line, one reply, within a second."""
    return probe_host_path(path, send=payload, deadline=1.0)
