"""``repair-mount-point``: let Docker start a container again whose own layer has a directory where a socket goes.

Once Docker has mounted a shadow directory, runc has made a *directory* mount point in the container's writable
layer; with a socket at the source, every later start fails ("Are you trying to mount a directory onto a file").
Replacing that empty directory by an empty file in the stopped container's overlay upper layer fixes it. The
container keeps its ID, its logs and every file it wrote: it is never removed and recreated.
"""

from __future__ import annotations

from ..model import ContainerReport, MountReport, Role, Verdict
from . import live
from .base import Fix, Plan, Run, Step, q, recreate_advice


class RepairMountPoint(Fix):
    id = "repair-mount-point"
    title = "Make the mount point in the container's own layer a file, so Docker can start it"
    changes = True
    keeps_running = True
    verdicts = frozenset({Verdict.UNSTARTABLE})
    roles = frozenset({Role.SOCKET})

    def plan(self, report: ContainerReport, mount: MountReport, everyone: list[ContainerReport], wait: float) -> Plan:
        c, spec = report.container, mount.mount
        if c.running:
            return Plan(
                self.offer,
                c,
                spec,
                refusal=f"{c.name} is running: its layer is repaired only while it is stopped (reattach-socket "
                "repairs a running container)",
            )
        if live.layers_of(c) is None:
            return Plan(
                self.offer, c, spec, refusal=f"{live.layer_problem(c)}; recreate it instead: {recreate_advice(c)}"
            )
        point = mount.mount_point
        if point is not None and point.from_image:
            return Plan(
                self.offer,
                c,
                spec,
                refusal=f"the directory at {point.path} comes from the image {c.image}, not from {c.name}'s own "
                "layer: rebuild the image without it, or mount the socket elsewhere",
            )
        if point is not None and point.empty is False:
            return Plan(
                self.offer,
                c,
                spec,
                refusal=f"the directory at {point.path} in {c.name}'s layer is not empty: left alone (look at what "
                "is in it first)",
            )
        steps = (live.repair_step(c, spec.destination, point),)
        preconditions = (
            f"{c.name} is stopped: no overlay mount uses its layer",
            f"{spec.destination} (resolved through its layers as runc does) is an empty directory of its own layer, "
            "not of the image, and not a symlink",
            "the directory is removed with rmdir (never recursive), the file created with O_EXCL|O_NOFOLLOW",
        )
        note = f"{c.name} keeps its ID and every file it wrote: nothing is removed or recreated"
        advice = f"Then start it: docker start {q(c.name)}"
        return Plan(self.offer, c, spec, steps, preconditions, advice, note=note)

    def preflight(self, run: Run) -> None:
        live.preflight(run.plan.steps)

    def act(self, step: Step, run: Run) -> str:
        return live.act(step, run)
