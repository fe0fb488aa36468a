"""``remove-shadow-dir``: remove the empty directory Docker created where a socket belongs."""

from __future__ import annotations

from ..model import ContainerReport, Kind, MountReport, Verdict
from .act import (
    Target,
    check_bystanders,
    check_empty,
    check_holders,
    check_links,
    check_removable,
    open_target,
    remove_aside,
)
from .base import (
    Fix,
    Plan,
    Refused,
    Run,
    Step,
    StepKind,
    StepResult,
    describe_mode,
    holders_of,
    q,
    recreate_advice,
    sharing,
    socket_accepts,
    wait_for_socket,
    writers_of,
)


class RemoveShadowDir(Fix):
    id = "remove-shadow-dir"
    title = "Remove the empty directory Docker created"
    changes = True
    keeps_running = False
    verdicts = frozenset({Verdict.SHADOWED})

    def plan(self, report: ContainerReport, mount: MountReport, everyone: list[ContainerReport], wait: float) -> Plan:
        fix = self.offer
        source = mount.mount.source
        host = mount.host
        if host is None:
            return Plan(fix, report.container, mount.mount, refusal="the host path was not looked at")
        holders = sharing(source, everyone)
        running = [c for c in holders if c.running]
        steps = [
            Step(
                StepKind.STOP_CONTAINER, c.name, f"stop container {c.name} (it holds the directory)", container_id=c.id
            )
            for c in running
        ]
        steps.append(
            Step(StepKind.RMDIR, source, f"remove the empty directory {source} (rmdir: never recursive)", expect=host)
        )
        follow_up = ""
        if running:
            steps.append(
                Step(StepKind.WAIT_FOR_SOCKET, source, f"wait up to {wait:.0f} s for the server to bind {source}")
            )
            steps += [
                Step(
                    StepKind.START_CONTAINER,
                    c.name,
                    f"start container {c.name} once the socket exists (if Docker refuses because {c.name} now has a "
                    "directory at the mount point, it must be recreated; the exact command is shown)",
                    container_id=c.id,
                )
                for c in running
            ]
            follow_up = (
                "If the server does not bind in time, start it, then start "
                + " ".join(q(c.name) for c in running)
                + " again; if Docker refuses, recreate it: "
                + "; ".join(recreate_advice(c) for c in running)
            )
        stopped = [c for c in holders if not c.running]
        if stopped:
            follow_up += ("\n" if follow_up else "") + (
                "Start the server first, then recreate "
                + " ".join(q(c.name) for c in stopped)
                + " (Docker left a directory mount point inside it): "
                + "; ".join(recreate_advice(c) for c in stopped)
            )
        preconditions = (
            f"{source} is still a directory with device {host.dev}, inode {host.ino}, reached without following "
            "a symlink anyone but root controls",
            f"it is the very directory each running container has mounted (seen from inside {report.container.name})",
            f"{source} is still empty, on a writable filesystem, not a mount point, and no other running container "
            "can write the directories above it",
            "it is moved into a root-only directory and removed there (rmdir: never recursive)",
            "each container is started only after a socket exists at the path",
        )
        return Plan(
            fix,
            report.container,
            mount.mount,
            tuple(steps),
            preconditions,
            follow_up,
            holders=holders_of(source, everyone),
            writers=writers_of(everyone),
        )

    def preflight(self, run: Run) -> None:
        """Checked before any container is stopped, so a doomed fix stops nothing."""
        plan = run.plan
        for step in plan.steps:
            if step.op is StepKind.RMDIR:
                try:
                    target = open_target(step, Kind.DIRECTORY)
                except Refused as exc:
                    raise Refused(str(exc), step) from exc
                run.held[step] = target
                try:
                    check_empty(target)
                    check_removable(target)
                    check_holders(target, plan.holders)
                    check_links(target, plan.writers)
                    check_bystanders(target, plan.writers, plan.holders)
                except Refused as exc:
                    raise Refused(str(exc), step) from exc

    def act(self, step: Step, run: Run) -> str:
        if step.op is StepKind.RMDIR:
            return _rmdir(step, run)
        if step.op is StepKind.WAIT_FOR_SOCKET:
            return wait_for_socket(step, run.wait_seconds, run.cancel)
        if step.op is StepKind.START_CONTAINER:
            return _start(step, run)
        return super().act(step, run)

    def undo(self, run: Run) -> None:
        if not run.stopped or any(r.ok and r.step.op is StepKind.RMDIR for r in run.done):
            return  # nothing stopped, or the directory is gone as planned: starting is the later steps' business
        targets = [t for t in run.held.values() if isinstance(t, Target)]
        if not targets or not all(t.in_place() for t in targets):
            for step in run.stopped:
                run.record(
                    StepResult(
                        step,
                        False,
                        f"{step.target} was left stopped: the directory is no longer where it was, and starting it "
                        "now could make Docker create another one",
                    )
                )
            return
        # The directory is still there, the same inode, so starting the containers again restores exactly what was.
        for step in run.stopped:
            try:
                assert step.container_id is not None
                run.engine.start(step.container_id)
                run.record(StepResult(step, True, f"started {step.target} again: nothing else was changed"))
            except Exception as exc:
                run.record(StepResult(step, False, f"could not start {step.target} again: {exc}"))


def _rmdir(step: Step, run: Run) -> str:
    target = run.held.get(step)
    if not isinstance(target, Target):
        raise Refused(f"{step.target} was not checked before; diagnose again")
    if not target.in_place():
        now = target.hp.restat()
        what = "nothing" if now is None else describe_mode(now.st_mode)
        raise Refused(f"{step.target} changed after the check (now {what} there): left alone")
    remove_aside(target)
    return f"removed the empty directory {step.target}"


def _start(step: Step, run: Run) -> str:
    socket_path = run.plan.mount.source
    if not socket_accepts(socket_path):
        raise Refused(f"{socket_path} is not a listening socket right now: starting would recreate the directory")
    assert step.container_id is not None
    try:
        run.engine.start(step.container_id)
    except Exception as exc:
        if "directory onto a file" in str(exc) or "not a directory" in str(exc):
            # Docker made a *directory* mountpoint inside the container when it mounted the shadow directory; a
            # socket cannot be mounted onto it, so this container can only come back by being recreated.
            raise Refused(
                f"Docker cannot start {step.target} again: its own filesystem now has a directory where the socket "
                f"is mounted (made when the shadow directory was mounted). The socket is fixed on the host; "
                f"recreate the container: {recreate_advice(run.plan.container)}"
            ) from exc
        raise
    return f"started {step.target}"
