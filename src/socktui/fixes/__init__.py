"""Fixes: what each verdict offers, the exact plan, and applying it safely.

Each fix is one class (``fixes/shadow.py``, ``stale.py``, ``restart.py``, ``advice.py``) registered once in
``FIXES`` below; everything else here is derived from that list. Safety comes from construction, not care at call
sites:
- a fix that removes something does it through ``fixes/act.py``: the host path is resolved by
  ``socktui.hostpath`` (no symlink that anyone but root controls is followed; the parent is held by descriptor),
  the entry must be the diagnosed (device, inode) and the inode each running holder has mounted, and it is moved
  into a root-only directory and removed there, or put back; paths reached through a container's view are only
  ever looked at;
- ``rmdir`` removes only an empty directory (the kernel refuses otherwise), never a tree;
- a stale socket is unlinked only if a fresh connect is still refused;
- a preflight foresees what would make the act fail (read-only filesystem, a mount point, another container that
  can write the directory) before any container is stopped;
- a container is (re)started only when the socket it mounts exists, since starting a ``-v`` mount of a missing path
  would make Docker create the directory all over again;
- read-only mode refuses before anything is looked at twice;
- snippets quote every path for the shell and for YAML (``shell_word``, ``yaml_scalar``), and ``render_plan``
  escapes everything from outside.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from ..model import ContainerReport, FixOffer, MountReport, MountSpec, Role, Verdict
from ..text import printable
from .advice import GroupAdd, MountParentDir, RunAsOwner, SocketMode, StartServerFirst, UseMountFlag
from .base import (
    CONTAINER_TIMEOUT_SECONDS,
    DEFAULT_WAIT_SECONDS,
    ContainerActions,
    Fix,
    FixResult,
    Plan,
    Refused,
    Situation,
    Status,
    Step,
    StepKind,
    StepResult,
    recreate_advice,
    shell_word,
    socket_accepts,
    yaml_scalar,
)
from .mountpoint import RepairMountPoint
from .reattach import ReattachSocket
from .restart import RestartContainer
from .shadow import RemoveShadowDir
from .stale import RemoveStaleSocket

__all__ = [
    "CATALOGUE",
    "CONTAINER_TIMEOUT_SECONDS",
    "DEFAULT_WAIT_SECONDS",
    "FIXES",
    "ContainerActions",
    "Fix",
    "FixResult",
    "Plan",
    "Refused",
    "Situation",
    "Status",
    "Step",
    "StepKind",
    "StepResult",
    "advice_for",
    "apply_plan",
    "fix_command",
    "fix_for",
    "offers",
    "plan_fix",
    "recreate_advice",
    "render_plan",
    "shell_word",
    "socket_accepts",
    "yaml_scalar",
]

# Every fix, once. The order is the order they are offered in: those that change something first, then advice.
FIXES: tuple[Fix, ...] = (
    RemoveShadowDir(),
    RemoveStaleSocket(),
    ReattachSocket(),
    RestartContainer(),
    RepairMountPoint(),
    MountParentDir(),
    StartServerFirst(),
    UseMountFlag(),
    GroupAdd(),
    SocketMode(),
    RunAsOwner(),
)
_BY_ID = {f.id: f for f in FIXES}
CATALOGUE: dict[str, FixOffer] = {f.id: f.offer for f in FIXES}

REMOVE_SHADOW_DIR = CATALOGUE["remove-shadow-dir"]
REMOVE_STALE_SOCKET = CATALOGUE["remove-stale-socket"]
RESTART_CONTAINER = CATALOGUE["restart-container"]
REATTACH_SOCKET = CATALOGUE["reattach-socket"]
REPAIR_MOUNT_POINT = CATALOGUE["repair-mount-point"]
MOUNT_PARENT_DIR = CATALOGUE["mount-parent-dir"]
USE_MOUNT_FLAG = CATALOGUE["use-mount-flag"]
GROUP_ADD = CATALOGUE["group-add"]
SOCKET_MODE = CATALOGUE["socket-mode"]
RUN_AS_OWNER = CATALOGUE["run-as-owner"]
START_SERVER_FIRST = CATALOGUE["start-server-first"]


def fix_for(fix_id: str) -> Fix | None:
    return _BY_ID.get(fix_id)


def offers(
    verdict: Verdict | None, mount: MountSpec, role: Role, situation: Situation | None = None
) -> tuple[FixOffer, ...]:
    """Fixes that apply to a mount in this state, the ones that change something first.

    ``situation`` (whether the container runs, who a refusing mode lets in) keeps out advice that would not work:
    ``group-add`` for a socket only its owner may use, ``docker start`` for a running container.
    """
    known = situation or Situation(running=False)
    applying = [f for f in FIXES if f.applies(verdict, mount, role) and f.suits(verdict, role, known)]
    return tuple(f.offer for f in sorted(applying, key=lambda f: not f.changes))


def plan_fix(
    fix_id: str,
    report: ContainerReport,
    mount: MountReport,
    everyone: Sequence[ContainerReport] = (),
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> Plan:
    fix = fix_for(fix_id)
    container = report.container
    if fix is None:
        known = ", ".join(CATALOGUE)
        return Plan(FixOffer(fix_id, fix_id, False), container, mount.mount, refusal=f"no fix {fix_id!r} ({known})")
    if fix.offer not in mount.fixes:
        offered = ", ".join(f.id for f in mount.fixes) or "none"
        return Plan(
            fix.offer,
            container,
            mount.mount,
            refusal=f"{fix_id} does not apply to a {mount.verdict or 'healthy'} mount (offered: {offered})",
        )
    return fix.plan(report, mount, list(everyone) or [report], wait_seconds)


def advice_for(fix_id: str, report: ContainerReport, mount: MountReport) -> str:
    """The ready-to-copy snippet for an advice fix, with this mount's real paths and gid."""
    fix = fix_for(fix_id)
    return fix.advice(report, mount) if fix is not None else ""


def fix_command(container: str, destination: str, fix_id: str = "FIX_ID") -> str:
    """The ``socktui fix`` command line for a mount, every word shell-quoted."""
    return " ".join(("socktui fix", shell_word(container), shell_word(destination), fix_id))


def render_plan(plan: Plan) -> str:
    """The plan as text. Each field from outside is printable()d on its own: a newline cannot forge a line."""
    mount = plan.mount
    lines = [
        f"{plan.fix.id}: {plan.fix.title}",
        f"  for {printable(plan.container.name)}: {printable(mount.source)} -> {printable(mount.destination)}"
        if plan.container.id
        else f"  for the engine's socket: {printable(mount.source)}",
    ]
    if plan.refusal:
        lines.append(f"  cannot plan: {printable(plan.refusal)}")
        return "\n".join(lines)
    if plan.note:
        lines.append(f"  {plan.note}")
    if plan.steps:
        lines.append("  steps:")
        lines += [f"    {i}. {printable(s.describe)}" for i, s in enumerate(plan.steps, 1)]
        lines.append("  re-checked at the moment each step acts:")
        lines += [f"    - {printable(p)}" for p in plan.preconditions]
    else:
        lines.append("  changes nothing; copy this:")
    if plan.advice:
        lines += ["    " + printable(line) for line in plan.advice.split("\n")]
    return "\n".join(lines)


def apply_plan(
    plan: Plan,
    engine: ContainerActions,
    *,
    read_only: bool = False,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    cancel: threading.Event | None = None,
    progress: Callable[[StepResult], None] | None = None,
) -> FixResult:
    """Carry out a plan with the fix that made it, re-checking each step's preconditions at the moment it acts."""
    fix = fix_for(plan.fix.id)
    if fix is None:
        return FixResult(plan, Status.REFUSED, plan.refusal or f"no fix {plan.fix.id!r}")
    return fix.apply(plan, engine, read_only=read_only, wait_seconds=wait_seconds, cancel=cancel, progress=progress)
