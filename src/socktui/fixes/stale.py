"""``remove-stale-socket``: unlink a socket file nobody listens on."""

from __future__ import annotations

import posixpath

from ..model import ContainerReport, Kind, MountReport, PathStat, Role, Verdict
from ..text import printable
from .act import Target, check_holders, check_links, open_target, remove_aside, still_refused
from .base import Fix, Plan, Refused, Run, Step, StepKind, holders_of, writers_of


def stale_target(mount: MountReport) -> tuple[str, PathStat | None, str | None]:
    """The socket to remove (its host path, as diagnosed, and its name inside a shared directory), or the source."""
    if mount.role is Role.SOCKET_DIR:
        for sock in mount.sockets:
            if sock.verdict is Verdict.STALE:
                return sock.host_path, sock.host, posixpath.relpath(sock.host_path, mount.mount.source)
    return mount.mount.source, mount.host, None


def _then(report: ContainerReport, mount: MountReport) -> str:
    """What to do next, and what a restart in between would do to a file mount of a path that is then missing."""
    then = "Then start the server so it binds again."
    if mount.role is not Role.SOCKET:
        return then
    # Prose, not a snippet: names from outside escaped, so a newline in a path cannot start a line of the plan.
    name, source = printable(report.container.name), printable(mount.mount.source)
    if mount.mount.from_binds is False:
        return f"{then} Until it has, {name} cannot start (--mount: bind source path does not exist)."
    return (
        f"{then} Warning: if {name} starts or restarts before the server has bound {source} again, Docker creates "
        "a directory there (a -v mount of a missing path; Podman refuses to start it instead): that directory "
        f"blocks the server, and {name} itself fails to start (a directory cannot be mounted onto the file mount "
        "point it already has). Start the server first."
    )


class RemoveStaleSocket(Fix):
    id = "remove-stale-socket"
    title = "Remove the socket file nobody listens on"
    changes = True
    verdicts = frozenset({Verdict.STALE})

    def plan(self, report: ContainerReport, mount: MountReport, everyone: list[ContainerReport], wait: float) -> Plan:
        path, host, entry = stale_target(mount)
        if host is None:
            return Plan(self.offer, report.container, mount.mount, refusal="no stale socket was observed")
        steps = (Step(StepKind.UNLINK_SOCKET, path, f"remove the socket file {path} (unlink)", expect=host),)
        preconditions = (
            f"{path} is still a socket with device {host.dev}, inode {host.ino}, reached without following a "
            "symlink anyone but root controls",
            "it is the very socket each running container sees through its mount",
            f"a fresh connect to {path} is still refused (ECONNREFUSED), tested again after it is moved into a "
            "root-only directory, where it is removed",
        )
        return Plan(
            self.offer,
            report.container,
            mount.mount,
            steps,
            preconditions,
            _then(report, mount),
            holders=holders_of(mount.mount.source, everyone, entry),
            writers=writers_of(everyone),
        )

    def preflight(self, run: Run) -> None:
        for step in run.plan.steps:
            if step.op is StepKind.UNLINK_SOCKET:
                try:
                    target = open_target(step, Kind.SOCKET)
                except Refused as exc:
                    raise Refused(str(exc), step) from exc
                run.held[step] = target
                try:
                    check_holders(target, run.plan.holders)
                    check_links(target, run.plan.writers)
                except Refused as exc:
                    raise Refused(str(exc), step) from exc
                try:
                    still_refused(target.hp.parent_fd, target.hp.name)
                except Refused as exc:
                    raise Refused(f"{step.target} {exc}", step) from exc

    def act(self, step: Step, run: Run) -> str:
        if step.op is StepKind.UNLINK_SOCKET:
            target = run.held.get(step)
            if not isinstance(target, Target):
                raise Refused(f"{step.target} was not checked before; diagnose again")
            remove_aside(target, verify=still_refused)
            return f"removed the stale socket {step.target}"
        return super().act(step, run)
