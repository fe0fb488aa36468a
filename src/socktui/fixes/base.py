"""What every fix is made of: the ``Fix`` base class, its plan (``Step``, ``Plan``) and its outcome (``FixResult``).

A fix is one class (see ``fixes/__init__.py`` for the registry): its id and title, whether it changes anything,
whether the containers keep running while it acts, which verdicts and roles it applies to, how it plans, the advice
it prints, and how each of its steps is carried out. ``Fix.apply`` runs a plan the same way for every fix: a
preflight that may refuse before anything changes, then each step re-checking what it acts on, and ``undo`` when a
step fails after others changed something.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Protocol

from ..compose import compose_of
from ..hostpath import kind_of_mode, resolve
from ..model import (
    ContainerReport,
    ContainerSpec,
    Denial,
    FixOffer,
    Kind,
    MountReport,
    MountSpec,
    PathStat,
    Role,
    Verdict,
)
from ..probe import probe_fd
from ..text import printable

DEFAULT_WAIT_SECONDS = 30.0
CONTAINER_TIMEOUT_SECONDS = 10


class StepKind(StrEnum):
    """What one step does. The values are what the audit log and ``Step.op`` comparisons use."""

    STOP_CONTAINER = "stop-container"
    RMDIR = "rmdir"
    UNLINK_SOCKET = "unlink-socket"
    WAIT_FOR_SOCKET = "wait-for-socket"
    START_CONTAINER = "start-container"
    RESTART_CONTAINER = "restart-container"
    # Live repair (``fixes/live.py``): no container is stopped for these.
    REATTACH_SOCKET = "reattach-socket"  # move the host's socket over a stale mount in a running container
    REPLACE_MOUNT_POINT = "replace-mount-point"  # a running container's shadow directory becomes the socket
    REPAIR_MOUNT_POINT = "repair-mount-point"  # a stopped container's layer: empty directory -> empty file
    WAIT_FOR_LISTENER = "wait-for-listener"  # the kernel's socket table shows a listener (no connect)


# Steps that stop a container, however briefly.
STOPPING = frozenset({StepKind.STOP_CONTAINER, StepKind.RESTART_CONTAINER})


@dataclass(frozen=True)
class Inside:
    """Where a step acts in a container: the mount's destination, its process or its writable layer."""

    destination: str
    pid: int | None = None  # running: the process whose mount namespace is entered
    layers: tuple[str, ...] = ()  # stopped: its overlay layers, the upper (its own) first
    source: PathStat | None = None  # the host object to mount there, as diagnosed (None: whatever binds later)


class Status(StrEnum):
    """How an attempt ended."""

    APPLIED = "applied"
    REFUSED = "refused"  # nothing was changed
    FAILED = "failed"  # something was changed before a step failed
    NOTHING_TO_DO = "nothing-to-do"  # an advice fix: it changes nothing


@dataclass(frozen=True)
class Step:
    """One operation on a named path or container. ``expect`` is the object the step may act on, as diagnosed."""

    op: StepKind
    target: str
    describe: str
    container_id: str | None = None
    expect: PathStat | None = None
    inside: Inside | None = None


@dataclass(frozen=True)
class Holder:
    """A container that has the target mounted, and where it sees it: ``path`` is the target in its view;
    ``mount_root`` the mounted directory when the target is an entry inside it (a socket in a shared directory)."""

    container: ContainerSpec
    path: str
    mount_root: str | None = None


@dataclass(frozen=True)
class Writer:
    """A read-write mount of some container: through it that container can change what is under its source."""

    container: ContainerSpec
    mount: MountSpec


@dataclass(frozen=True)
class Plan:
    fix: FixOffer
    container: ContainerSpec
    mount: MountSpec
    steps: tuple[Step, ...] = ()
    preconditions: tuple[str, ...] = ()
    advice: str = ""  # the ready-to-copy command or snippet (for advice) or the follow-up
    refusal: str | None = None  # set when the fix cannot be planned safely at all
    holders: tuple[Holder, ...] = ()  # who has the target mounted: checked before acting
    writers: tuple[Writer, ...] = ()  # every read-write mount of every container: who could change the path
    note: str = ""  # how it will be done and why (live, or a fallback that stops containers)

    @property
    def changes(self) -> bool:
        return bool(self.steps)

    @property
    def keeps_running(self) -> bool:
        """No step stops or restarts a container."""
        return not any(s.op in STOPPING for s in self.steps)


@dataclass(frozen=True)
class StepResult:
    step: Step
    ok: bool
    message: str


@dataclass(frozen=True)
class FixResult:
    plan: Plan
    status: Status
    message: str
    steps: tuple[StepResult, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.status in (Status.APPLIED, Status.NOTHING_TO_DO)


class Refused(Exception):
    """A precondition no longer holds: nothing more is done. ``step`` is the step it was checked for, if any."""

    def __init__(self, message: str, step: Step | None = None) -> None:
        super().__init__(message)
        self.step = step


class Failed(Exception):
    """Something was changed and could not be put back: the message says what state is left."""


class ContainerActions(Protocol):
    """What applying needs from the engine; ``socktui.engine.Engine`` provides it."""

    def stop(self, container_id: str, timeout: int = CONTAINER_TIMEOUT_SECONDS) -> None: ...
    def start(self, container_id: str) -> None: ...
    def restart(self, container_id: str, timeout: int = CONTAINER_TIMEOUT_SECONDS) -> None: ...


def shell_word(text: str) -> str:
    """``text`` as exactly one shell word, in a form where no byte of it can end the line or start a command.

    Printable text gets ``shlex.quote``. Text with a newline or any other control character gets bash's ``$'…'``
    form with every such byte escaped (also understood by zsh, ksh and busybox sh; dash reads it as a different,
    harmless word), since a quoted newline would still put the rest of the path at the start of a line.
    """
    if text.isprintable():
        return shlex.quote(text)
    out = ["$'"]
    for byte in os.fsencode(text):  # surrogateescape gives back the path's own bytes
        ch = chr(byte)
        if ch in "\\'":
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}")
    out.append("'")
    return "".join(out)


q = shell_word


def yaml_scalar(text: str) -> str:
    """``text`` as a YAML double-quoted scalar that is also inert if the snippet is pasted into a shell.

    Quotes, backslashes and every non-printable character are escaped (``\\n``, ``\\u001b``), and so are ``$``,
    backquote and ``!``, the characters a shell would still expand inside double quotes. A byte that is not UTF-8
    cannot be written in YAML; it becomes U+FFFD, which is also what Docker receives.
    """
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "$`!" or not ch.isprintable():
            code = ord(ch)
            if 0xD800 <= code <= 0xDFFF:
                code = 0xFFFD
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def comment_text(text: str) -> str:
    """Text from outside, for a ``#`` comment line of a snippet: control characters escaped, so the comment
    cannot end early."""
    return printable(text)


def describe_mode(mode: int) -> str:
    return kind_of_mode(mode).words


def sharing(source: str, reports: Sequence[ContainerReport]) -> list[ContainerSpec]:
    """Every container with a mount of ``source``: all of them hold the shadow directory."""
    norm = posixpath.normpath(source)
    return [r.container for r in reports if any(posixpath.normpath(m.source) == norm for m in r.container.mounts)]


def holders_of(source: str, reports: Sequence[ContainerReport], entry: str | None = None) -> tuple[Holder, ...]:
    """Where each container that mounts ``source`` sees the target: the mount itself, or ``entry`` inside it."""
    norm = posixpath.normpath(source)
    found = []
    for r in reports:
        for m in r.container.mounts:
            if m.source and posixpath.normpath(m.source) == norm:
                if entry is None:
                    found.append(Holder(r.container, m.destination))
                else:
                    found.append(Holder(r.container, posixpath.join(m.destination, entry), m.destination))
    return tuple(found)


def writers_of(reports: Sequence[ContainerReport]) -> tuple[Writer, ...]:
    return tuple(Writer(r.container, m) for r in reports for m in r.container.mounts if m.rw and m.source)


def recreate_advice(container: ContainerSpec) -> str:
    """How to recreate a container, which is what the engine needs after it mounted a shadow directory.

    For the compose that made it, with its project, its files and its working directory (socktui.compose); otherwise
    with the engine's own command line program.
    """
    compose = compose_of(container)
    if compose is not None and compose.service:
        return compose.recreate()
    cli = container.product.cli
    return f"{cli} rm {q(container.name)}, then run it again with the same {cli} run command"


def socket_accepts(path: str) -> bool:
    """Is there a listening socket at ``path``, reached by the safe resolution (no link a user controls)?"""
    try:
        with resolve(path) as hp:
            if hp.kind is not Kind.SOCKET:
                return False
            fd = os.open(hp.name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=hp.parent_fd)
    except OSError:
        return False
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode) and probe_fd(fd).ok
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Situation:
    """What besides the verdict decides whether a fix's advice would work: is the container running (a file mount
    then pins the old inode), and who the refusing socket's mode lets in."""

    running: bool
    denial: Denial | None = None


class Closeable(Protocol):
    def close(self) -> None: ...


class Run:
    """One attempt at applying a plan: what it may use, and what it has done so far."""

    def __init__(
        self,
        plan: Plan,
        engine: ContainerActions,
        wait_seconds: float,
        cancel: threading.Event,
        progress: Callable[[StepResult], None] | None,
    ) -> None:
        self.plan = plan
        self.engine = engine
        self.wait_seconds = wait_seconds
        self.cancel = cancel
        self.progress = progress
        self.done: list[StepResult] = []
        self.stopped: list[Step] = []
        self.held: dict[Step, Closeable] = {}  # what the preflight resolved and pinned, for the step that acts on it

    def close(self) -> None:
        for held in self.held.values():
            held.close()
        self.held.clear()

    def record(self, result: StepResult) -> None:
        self.done.append(result)
        if self.progress:
            self.progress(result)

    def result(self, status: Status, message: str) -> FixResult:
        return FixResult(self.plan, status, message, tuple(self.done))


class Fix:
    """One fix. Subclasses set the class attributes and override what they do differently."""

    id: ClassVar[str]
    title: ClassVar[str]
    changes: ClassVar[bool] = False  # False: advice only, never touches anything
    keeps_running: ClassVar[bool] = True  # False when it stops or restarts containers
    verdicts: ClassVar[frozenset[Verdict]] = frozenset()
    roles: ClassVar[frozenset[Role]] = frozenset({Role.SOCKET, Role.SOCKET_DIR})

    @property
    def offer(self) -> FixOffer:
        return FixOffer(self.id, self.title, self.changes)

    def applies(self, verdict: Verdict | None, mount: MountSpec, role: Role) -> bool:
        return verdict in self.verdicts and role in self.roles

    def suits(self, verdict: Verdict | None, role: Role, situation: Situation) -> bool:
        """Whether the fix would really work here (checked after ``applies``); fixes that can be wrong override."""
        return True

    # ------------------------------------------------------------------ planning
    def plan(self, report: ContainerReport, mount: MountReport, everyone: list[ContainerReport], wait: float) -> Plan:
        """The exact plan. The default is an advice plan: no steps, the snippet to copy."""
        return Plan(self.offer, report.container, mount.mount, advice=self.advice(report, mount))

    def advice(self, report: ContainerReport, mount: MountReport) -> str:
        """The ready-to-copy snippet, with this mount's real paths and gid; empty for fixes that act."""
        return ""

    # ------------------------------------------------------------------ applying
    def apply(
        self,
        plan: Plan,
        engine: ContainerActions,
        *,
        read_only: bool = False,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        cancel: threading.Event | None = None,
        progress: Callable[[StepResult], None] | None = None,
    ) -> FixResult:
        """Carry out a plan, re-checking each step's preconditions at the moment it acts."""
        if plan.refusal:
            return FixResult(plan, Status.REFUSED, plan.refusal)
        if not plan.changes:
            first = (plan.advice.splitlines() or [""])[0]
            return FixResult(plan, Status.NOTHING_TO_DO, "this fix changes nothing: " + first)
        if read_only:
            return FixResult(
                plan, Status.REFUSED, "read-only mode: no change was made (run without --read-only to fix)"
            )
        run = Run(plan, engine, wait_seconds, cancel or threading.Event(), progress)
        try:
            return self._run(run)
        finally:
            run.close()

    def _run(self, run: Run) -> FixResult:
        try:
            self.preflight(run)
        except Refused as exc:
            if exc.step is not None:
                run.record(StepResult(exc.step, False, str(exc)))
            return self._finish(run, Status.REFUSED, str(exc))
        for step in run.plan.steps:
            try:
                if run.cancel.is_set():
                    raise Refused("cancelled")
                message = self.act(step, run)
            except Refused as exc:
                run.record(StepResult(step, False, str(exc)))
                return self._finish(run, Status.FAILED if any(r.ok for r in run.done) else Status.REFUSED, str(exc))
            except Failed as exc:
                run.record(StepResult(step, False, str(exc)))
                return self._finish(run, Status.FAILED, str(exc))
            except Exception as exc:  # engine errors and the like: report, stop, keep what was done
                run.record(StepResult(step, False, f"{step.describe} failed: {exc}"))
                return self._finish(run, Status.FAILED, f"{step.describe} failed: {exc}")
            run.record(StepResult(step, True, message))
        return run.result(Status.APPLIED, "every step done")

    def _finish(self, run: Run, status: Status, message: str) -> FixResult:
        self.undo(run)
        return run.result(status, message)

    def preflight(self, run: Run) -> None:
        """Checked before any step, so a doomed fix changes nothing: raise ``Refused`` (its step is recorded)."""

    def undo(self, run: Run) -> None:
        """After a failed or refused step: put back what can be put back (started containers again, ...)."""

    def act(self, step: Step, run: Run) -> str:
        """Carry out one step; return what was done, raise ``Refused`` when its precondition no longer holds."""
        if step.op is StepKind.STOP_CONTAINER:
            assert step.container_id is not None
            run.engine.stop(step.container_id, timeout=CONTAINER_TIMEOUT_SECONDS)
            run.stopped.append(step)
            return f"stopped {step.target}"
        raise Refused(f"unknown step {step.op}")


def wait_for_socket(step: Step, wait: float, cancel: threading.Event) -> str:
    deadline = time.monotonic() + wait
    while True:
        if socket_accepts(step.target):
            return f"a server is listening at {step.target}"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Refused(
                f"no server bound {step.target} within {wait:.0f} s; the containers were left stopped so that "
                "Docker does not create the directory again"
            )
        if cancel.wait(min(0.05, remaining)):
            raise Refused("cancelled while waiting for the server")
