"""``remove-shadow-dir``: remove the empty directory Docker created where a socket belongs."""

from __future__ import annotations

import stat
from dataclasses import replace

from .. import remount
from ..model import ContainerReport, ContainerSpec, FixOffer, Kind, MountPoint, MountReport, PathStat, Role, Verdict
from . import live
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
        why_not = live.live_unsupported()
        if why_not is None and mount.role is Role.SOCKET:
            # Checked before anything changes: once the host directory is gone, the shadow mount cannot be put back.
            why_not = live.read_only_mount_points(running, source)
        if why_not is None and mount.role is Role.SOCKET and all(c.pid for c in running):
            plan = _plan_live(fix, report, mount, host, holders, wait)
        else:
            if why_not is None:
                why_not = "the process of " + ", ".join(c.name for c in running if not c.pid) + " is not known"
            plan = _plan_stopping(fix, report, mount, host, holders, wait, why_not)
        return replace(plan, holders=holders_of(source, everyone), writers=writers_of(everyone))

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
        live.preflight(plan.steps)

    def act(self, step: Step, run: Run) -> str:
        if step.op is StepKind.WAIT_FOR_LISTENER:
            try:
                return live.act(step, run)
            except Refused as exc:
                raise Refused(f"{exc}; {_still_holding(run)}") from exc
        if step.op in (StepKind.REPLACE_MOUNT_POINT, StepKind.REPAIR_MOUNT_POINT):
            return live.act(step, run)
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


def _removal_checks(source: str, host: PathStat, name: str) -> tuple[str, ...]:
    return (
        f"{source} is still a directory with device {host.dev}, inode {host.ino}, reached without following "
        "a symlink anyone but root controls",
        f"it is the very directory each running container has mounted (seen from inside {name})",
        f"{source} is still empty, on a writable filesystem, not a mount point, and no other running container "
        "can write the directories above it",
        "it is moved into a root-only directory and removed there (rmdir: never recursive)",
    )


def _plan_stopping(
    fix: FixOffer,
    report: ContainerReport,
    mount: MountReport,
    host: PathStat,
    holders: list[ContainerSpec],
    wait: float,
    why_not: str,
) -> Plan:
    """No live repair here: the holders are stopped while the directory goes, repaired in their layers, started."""
    source = mount.mount.source
    running = [c for c in holders if c.running]
    repairs = {c.id: _repair_in_layer(c, source) for c in holders if c.state != "created"}
    steps = [
        Step(StepKind.STOP_CONTAINER, c.name, f"stop container {c.name} (it holds the directory)", container_id=c.id)
        for c in running
    ]
    steps.append(
        Step(StepKind.RMDIR, source, f"remove the empty directory {source} (rmdir: never recursive)", expect=host)
    )
    repair_steps = [step for step, _ in repairs.values() if step is not None]
    if running or repair_steps:
        steps.append(Step(StepKind.WAIT_FOR_SOCKET, source, f"wait up to {wait:.0f} s for the server to bind {source}"))
    steps += repair_steps
    for c in running:
        repaired = repairs.get(c.id, (None, ""))[0] is not None
        caveat = (
            ""
            if repaired
            else f" (if Docker refuses because {c.name} now has a directory at the mount point, it must be "
            "recreated; the exact command is shown)"
        )
        steps.append(
            Step(
                StepKind.START_CONTAINER,
                c.name,
                f"start container {c.name} once the socket exists{caveat}",
                container_id=c.id,
            )
        )
    follow_up = [why for _, why in repairs.values() if why]
    if running:
        follow_up.insert(
            0, "If the server does not bind in time, start it, then start " + " ".join(q(c.name) for c in running)
        )
    stopped = [c for c in holders if not c.running]
    if stopped:
        follow_up.append(
            "Start " + " ".join(q(c.name) for c in stopped) + " only after the server has bound the socket."
        )
    preconditions = (
        *_removal_checks(source, host, report.container.name),
        "each container is started only after a socket exists at the path",
    )
    note = ""
    if running:
        note = (
            f"not possible live here: {why_not}; so {live.names_verb(running, 'is', 'are')} stopped, and started "
            "again once the socket exists"
        )
    return Plan(fix, report.container, mount.mount, tuple(steps), preconditions, "\n".join(follow_up), note=note)


def _plan_live(
    fix: FixOffer,
    report: ContainerReport,
    mount: MountReport,
    host: PathStat,
    holders: list[ContainerSpec],
    wait: float,
) -> Plan:
    """Nobody is stopped: the directory goes while the holders keep it mounted, then each gets the socket."""
    source = mount.mount.source
    running = [c for c in holders if c.running]
    repairs = [_repair_in_layer(c, source) for c in holders if not c.running and c.state != "created"]
    steps = [
        Step(
            StepKind.RMDIR,
            source,
            f"remove the empty directory {source} (moved into a root-only directory and rmdir-ed there, never "
            "recursive; the containers keep it mounted meanwhile)",
            expect=host,
        ),
        live.wait_step(source, wait),
    ]
    for c in running:
        held = live.mount_of(c, source)
        steps.append(live.replace_step(c, held.destination if held else mount.mount.destination, host, None))
    steps += [step for step, _ in repairs if step is not None]
    left = [why for step, why in repairs if step is None and why]
    follow_up = "\n".join(left)
    created = [c for c in holders if c.state == "created"]
    if created:
        follow_up += ("\n" if follow_up else "") + (
            "Start " + " ".join(q(c.name) for c in created) + " only after the server has bound the socket."
        )
    preconditions = (
        *_removal_checks(source, host, report.container.name),
        "inside each running container the destination is still a mount of that directory, not a symlink; its "
        "mount-point directory is empty",
        "a stopped container's layer is repaired only while no overlay mount uses it",
    )
    note = (
        f"{live.LIVE}: {live.names_verb(running, 'keeps', 'keep')} running; until the server binds, a restart "
        "would make Docker create the directory again"
        if running
        else live.LIVE
    )
    return Plan(fix, report.container, mount.mount, tuple(steps), preconditions, follow_up, note=note)


def _repair_in_layer(container: ContainerSpec, source: str) -> tuple[Step | None, str]:
    """The step that repairs a holder's layer once it is stopped, or why there is none (and what to do)."""
    held = live.mount_of(container, source)
    if held is None:
        return None, ""
    layers = live.layers_of(container)
    if layers is None:
        return None, (
            f"{live.layer_problem(container)}: once the server binds, recreate {container.name}: "
            f"{recreate_advice(container)}"
        )
    upper, *lowers = layers
    try:
        point = remount.layer_mount_point(upper, lowers, held.destination)
    except remount.RepairRefused as exc:
        return None, f"{container.name}'s layer cannot be looked at ({exc}); if Docker refuses to start it, recreate it"
    if point.layer is None or not stat.S_ISDIR(point.mode):
        return None, ""  # no directory mount point: it will start as it is
    if point.layer != 0 or point.in_lower or point.empty is not True:
        why = "comes from the image" if point.layer != 0 or point.in_lower else "is not empty"
        return None, (
            f"the directory {point.path} in {container.name} {why}, so Docker will refuse to start it with the "
            f"socket: {recreate_advice(container)}"
        )
    found = MountPoint(point.path, Kind.DIRECTORY, True, False)
    return live.repair_step(container, held.destination, found), ""


def _still_holding(run: Run) -> str:
    holders = [s.target for s in run.plan.steps if s.op is StepKind.REPLACE_MOUNT_POINT]
    if not holders:
        return "start the server, then start the containers"
    name = run.plan.container.name
    return (
        f"the directory is gone and {', '.join(holders)} keep running with the old one mounted; once the server "
        f"binds, run: socktui fix {q(name)} {q(run.plan.mount.destination)} reattach-socket"
    )


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
                f"{run.plan.container.product.display} cannot start {step.target} again: its own filesystem now has "
                "a directory where the socket "
                f"is mounted (made when the shadow directory was mounted). The socket is fixed on the host; "
                f"recreate the container: {recreate_advice(run.plan.container)}"
            ) from exc
        raise
    return f"started {step.target}"
