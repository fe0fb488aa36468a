"""``reattach-socket``: give running containers the host's current socket, without stopping them.

A file bind mount pins the inode the container started with; when the server re-creates its socket, the container
keeps the dead one. Every running container that holds an old inode of the same source is repaired in one go (the
docker.sock case: portainer, traefik, watchtower...). Where the kernel does not allow it, the plan says so and
restarts them instead.
"""

from __future__ import annotations

import posixpath

from ..model import ContainerReport, ContainerSpec, Kind, MountReport, PathStat, Verdict
from . import live
from .base import CONTAINER_TIMEOUT_SECONDS, Fix, Plan, Run, Step, StepKind
from .restart import RestartContainer

_RESTART = RestartContainer()


def _restart_step(container: ContainerSpec, host: PathStat) -> Step:
    return Step(
        StepKind.RESTART_CONTAINER,
        container.name,
        f"restart container {container.name} (timeout {CONTAINER_TIMEOUT_SECONDS} s)",
        container_id=container.id,
        expect=host,
    )


def _holders(
    source: str, mount: MountReport, report: ContainerReport, everyone: list[ContainerReport]
) -> list[tuple[ContainerSpec, str, PathStat]]:
    """(container, destination, what it sees) for every running container still holding an old inode of source."""
    norm = posixpath.normpath(source)
    found: list[tuple[ContainerSpec, str, PathStat]] = []
    for r in [report, *(r for r in everyone if r.container.id != report.container.id)]:
        for m in (mount,) if r is report else r.mounts:
            if posixpath.normpath(m.mount.source) != norm or m.verdict is not Verdict.DETACHED:
                continue
            seen = m.container.stat if m.container is not None else None
            if r.container.running and r.container.pid and seen is not None and seen.kind is not Kind.MISSING:
                found.append((r.container, m.mount.destination, seen))
    return found


class ReattachSocket(Fix):
    id = "reattach-socket"
    title = "Put the current socket back into the running containers"
    changes = True
    keeps_running = True
    verdicts = frozenset({Verdict.DETACHED})

    def plan(self, report: ContainerReport, mount: MountReport, everyone: list[ContainerReport], wait: float) -> Plan:
        source, host = mount.mount.source, mount.host
        c = report.container
        if host is None or host.kind not in (Kind.SOCKET, Kind.DIRECTORY):
            return Plan(self.offer, c, mount.mount, refusal=f"the host has no socket at {source} to put back")
        holders = _holders(source, mount, report, everyone)
        if not holders:
            return Plan(
                self.offer,
                c,
                mount.mount,
                refusal=f"{c.name}'s own view of {mount.mount.destination} was not seen, so there is nothing to "
                "compare it with: diagnose again as root",
            )
        containers = [h for h, _, _ in holders]
        why_not = live.live_unsupported()
        if why_not is not None:
            steps = tuple(_restart_step(h, host) for h, _, _ in holders)
            note = (
                f"not possible live here: {why_not}; restarting instead ({live.names_verb(containers, 'stops', 'stop')}"
                f" for up to {CONTAINER_TIMEOUT_SECONDS} s)"
            )
            restart_checks = (f"{source} is a socket on the host right now",)
            return Plan(self.offer, c, mount.mount, steps, restart_checks, note=note)
        steps = tuple(live.reattach_step(h, dest, seen, host) for h, dest, seen in holders)
        preconditions = (
            f"{source} on the host is still the {host.kind.value} diagnosed: device {host.dev}, inode {host.ino}",
            "inside each container the destination is still a mount of the inode diagnosed, not a symlink "
            "(resolved inside its root, never through the host's)",
            "afterwards each container's own view shows the host's inode",
        )
        note = (
            f"{live.LIVE}: {live.names_verb(containers, 'keeps', 'keep')} running (open_tree and move_mount work here)"
        )
        return Plan(self.offer, c, mount.mount, steps, preconditions, note=note)

    def preflight(self, run: Run) -> None:
        live.preflight(run.plan.steps)

    def act(self, step: Step, run: Run) -> str:
        if step.op is StepKind.RESTART_CONTAINER:
            return _RESTART.act(step, run)
        return live.act(step, run)
