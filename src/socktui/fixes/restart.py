"""``restart-container``: restart a container so it mounts the socket that is there now."""

from __future__ import annotations

import stat

from ..hostpath import resolve
from ..linux import errno_name
from ..model import ContainerReport, Kind, MountReport, Verdict
from .base import CONTAINER_TIMEOUT_SECONDS, Fix, Plan, Refused, Run, Step, StepKind, describe_mode


class RestartContainer(Fix):
    id = "restart-container"
    title = "Restart the container so it sees the current socket"
    changes = True
    keeps_running = False
    verdicts = frozenset({Verdict.DETACHED})

    def plan(self, report: ContainerReport, mount: MountReport, everyone: list[ContainerReport], wait: float) -> Plan:
        c = report.container
        steps = (
            Step(
                StepKind.RESTART_CONTAINER,
                c.name,
                f"restart container {c.name} (timeout {CONTAINER_TIMEOUT_SECONDS} s)",
                container_id=c.id,
                expect=mount.host,
            ),
        )
        preconditions = (
            f"{mount.mount.source} is a socket on the host right now (restarting a -v mount of a missing path would "
            "make Docker create a directory there)",
        )
        return Plan(self.offer, c, mount.mount, steps, preconditions)

    def act(self, step: Step, run: Run) -> str:
        if step.op is StepKind.RESTART_CONTAINER:
            shared_dir = step.expect is not None and step.expect.kind is Kind.DIRECTORY
            return _restart(step, run, shared_dir)
        return super().act(step, run)


def _restart(step: Step, run: Run, shared_dir: bool) -> str:
    source = run.plan.mount.source
    try:
        with resolve(source) as hp:
            st = hp.stat
    except OSError as exc:
        raise Refused(f"cannot reach {source} safely ({errno_name(exc.errno)}): a restart would not help") from exc
    wanted, check = ("a directory", stat.S_ISDIR) if shared_dir else ("a socket", stat.S_ISSOCK)
    if st is None or not check(st.st_mode):
        what = "nothing" if st is None else describe_mode(st.st_mode)
        raise Refused(f"{source} is {what} right now, not {wanted}: a restart would not help")
    assert step.container_id is not None
    run.engine.restart(step.container_id, timeout=CONTAINER_TIMEOUT_SECONDS)
    return f"restarted {step.target}"
