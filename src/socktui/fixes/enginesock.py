"""``socktui fix --engine-socket remove-shadow-dir``: remove the empty directory where the engine's socket belongs.

Containers restarted with ``-v /var/run/docker.sock:...`` before dockerd bound its socket leave a directory there,
and dockerd then cannot start ("can't create unix socket ...: is a directory"). The engine is down, so there are no
containers to ask or stop: the directory is removed with the rules of ``remove-shadow-dir`` that do not need the
engine (``fixes/act.py``): reached through :mod:`socktui.hostpath` (no symlink a user controls), still the diagnosed
(device, inode), still empty, on a writable filesystem, not a mount point, moved into a root-only directory and
``rmdir``-ed there (never recursive; put back if anything else arrived). Then the daemon can be started.
"""

from __future__ import annotations

from ..enginesock import REMOVE_SHADOW_DIR, EngineSocket
from ..model import ContainerSpec, Kind, MountSpec, Verdict
from .act import Target, check_empty, check_removable, open_target, remove_aside
from .base import CONTAINER_TIMEOUT_SECONDS, Fix, Plan, Refused, Run, Step, StepKind

# Plans and audit entries name a container; this fix has none, so they name the engine.
ENGINE = ContainerSpec(id="", name="the engine", state="down", image="")


class _NoContainers:
    """The engine is down: this fix never stops or starts anything (and says so if it were asked to)."""

    def stop(self, container_id: str, timeout: int = CONTAINER_TIMEOUT_SECONDS) -> None:
        raise Refused("the engine is down: no container can be stopped")

    def start(self, container_id: str) -> None:
        raise Refused("the engine is down: no container can be started")

    def restart(self, container_id: str, timeout: int = CONTAINER_TIMEOUT_SECONDS) -> None:
        raise Refused("the engine is down: no container can be restarted")


NO_CONTAINERS = _NoContainers()


class RemoveEngineShadowDir(Fix):
    id = REMOVE_SHADOW_DIR
    title = "Remove the empty directory where the engine's socket belongs"
    changes = True
    keeps_running = True
    verdicts = frozenset({Verdict.SHADOWED})

    def plan_for(self, judged: EngineSocket, start_advice: str) -> Plan:
        mount = MountSpec(type="bind", source=judged.path, destination=judged.path)
        host = judged.host
        if judged.fix != self.id or host is None or host.kind is not Kind.DIRECTORY:
            return Plan(self.offer, ENGINE, mount, refusal=f"{judged.path} is {judged.verdict.value}: {judged.reason}")
        steps = (
            Step(
                StepKind.RMDIR,
                judged.path,
                f"remove the empty directory {judged.path} (rmdir: never recursive)",
                expect=host,
            ),
        )
        preconditions = (
            f"{judged.path} is still a directory with device {host.dev}, inode {host.ino}, reached without following "
            "a symlink anyone but root controls",
            f"{judged.path} is still empty, on a writable filesystem and not a mount point",
            "it is moved into a root-only directory and removed there (rmdir: never recursive)",
        )
        return Plan(self.offer, ENGINE, mount, steps, preconditions, f"Then {start_advice}.")

    def preflight(self, run: Run) -> None:
        for step in run.plan.steps:
            if step.op is StepKind.RMDIR:
                try:
                    target = open_target(step, Kind.DIRECTORY)
                except Refused as exc:
                    raise Refused(str(exc), step) from exc
                run.held[step] = target
                try:
                    check_empty(target)
                    check_removable(target)
                except Refused as exc:
                    raise Refused(str(exc), step) from exc

    def act(self, step: Step, run: Run) -> str:
        if step.op is StepKind.RMDIR:
            target = run.held.get(step)
            if not isinstance(target, Target):
                raise Refused(f"{step.target} was not checked before; look again")
            if not target.in_place():
                raise Refused(f"{step.target} changed after the check: left alone")
            remove_aside(target)
            return f"removed the empty directory {step.target}"
        return super().act(step, run)


ENGINE_SOCKET_FIXES: dict[str, RemoveEngineShadowDir] = {REMOVE_SHADOW_DIR: RemoveEngineShadowDir()}
