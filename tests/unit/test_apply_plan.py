"""apply_plan against a recording fake of the container actions: every safety check, without a daemon.

The filesystem is real (``tmp_path``, real sockets); only stop/start/restart are recorded instead of sent to an
engine, so each test can say exactly which container actions a refusal spared.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from socktui.fixes import FIXES, Fix, Plan, Status, Step, StepKind, apply_plan, plan_fix
from socktui.fsview import host_lstat
from socktui.model import ContainerReport, ContainerSpec, FixOffer, MountReport, MountSpec, Role, Verdict


class RecordingActions:
    """ContainerActions that do nothing but remember what they were asked, in order."""

    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = fail  # an action that raises, as an engine error would

    def _do(self, action: str, container_id: str) -> None:
        self.calls.append((action, container_id))
        if action == self.fail:
            raise RuntimeError(f"the engine refused to {action}")

    def stop(self, container_id: str, timeout: int = 10) -> None:
        self._do("stop", container_id)

    def start(self, container_id: str) -> None:
        self._do("start", container_id)

    def restart(self, container_id: str, timeout: int = 10) -> None:
        self._do("restart", container_id)


def container(state: str = "exited", pid: int | None = None, *mounts: MountSpec) -> ContainerSpec:
    return ContainerSpec(id="c" * 64, name="web", state=state, image="img", mounts=mounts, pid=pid, inspected=True)


def report_of(
    source: Path, destination: str, verdict: Verdict, state: str = "exited"
) -> tuple[ContainerReport, MountReport]:
    mount = MountSpec("bind", str(source), destination, from_binds=True)
    spec = container(state, None, mount)
    offers = tuple(f.offer for f in FIXES if f.applies(verdict, mount, Role.SOCKET))
    mount_report = MountReport(
        mount=mount, role=Role.SOCKET, verdict=verdict, reason="", host=host_lstat(str(source)), fixes=offers
    )
    return ContainerReport(container=spec, mounts=(mount_report,)), mount_report


def planned(fix_id: str, source: Path, verdict: Verdict, state: str = "exited") -> Plan:
    report, mount = report_of(source, "/run/app.sock", verdict, state)
    plan = plan_fix(fix_id, report, mount, [report], wait_seconds=1)
    assert plan.refusal is None, plan.refusal
    return plan


def stale_socket(path: Path) -> Path:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))  # closed without unlink: a socket file nobody listens on
    return path


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "live.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(4)
    yield path
    sock.close()


# --------------------------------------------------------------------------- read-only, for every fix


CHANGING = [f for f in FIXES if f.changes]


def test_every_fix_that_changes_something_is_listed() -> None:
    assert {"remove-shadow-dir", "remove-stale-socket", "restart-container"} <= {f.id for f in CHANGING}


@pytest.mark.parametrize("fix", CHANGING, ids=lambda f: f.id)
def test_read_only_refuses_every_fix_before_anything_is_looked_at_or_done(fix: Fix, tmp_path: Path) -> None:
    """Whatever the plan says, read-only refuses: not one container action, not one file touched."""
    source = tmp_path / "app.sock"
    source.mkdir()  # something a step could remove
    spec = container("running", os.getpid(), MountSpec("bind", str(source), "/run/app.sock"))
    steps = tuple(
        Step(kind, str(source), f"{kind} for the test", container_id=spec.id, expect=host_lstat(str(source)))
        for kind in StepKind
    )
    plan = Plan(fix.offer, spec, spec.mounts[0], steps, ("anything",))
    actions = RecordingActions()
    result = apply_plan(plan, actions, read_only=True, wait_seconds=0.1)
    assert result.status is Status.REFUSED and "read-only" in result.message
    assert actions.calls == []
    assert source.is_dir()


# --------------------------------------------------------------------------- restart-container


def test_restart_refuses_when_the_host_path_is_missing_so_docker_cannot_make_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    stale_socket(path)
    plan = planned("restart-container", path, Verdict.DETACHED, "running")
    path.unlink()  # the server went away between the plan and `y`
    actions = RecordingActions()
    result = apply_plan(plan, actions)
    assert result.status is Status.REFUSED and "nothing right now" in result.message
    assert actions.calls == []
    assert not path.exists()


def test_restart_refuses_when_a_directory_stands_at_the_socket_path(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    stale_socket(path)
    plan = planned("restart-container", path, Verdict.DETACHED, "running")
    path.unlink()
    path.mkdir()
    actions = RecordingActions()
    result = apply_plan(plan, actions)
    assert result.status is Status.REFUSED and "a directory" in result.message
    assert actions.calls == []


def test_restart_goes_ahead_when_the_socket_is_there(listening: Path) -> None:
    plan = planned("restart-container", listening, Verdict.DETACHED, "running")
    actions = RecordingActions()
    result = apply_plan(plan, actions)
    assert result.status is Status.APPLIED, result.message
    assert actions.calls == [("restart", "c" * 64)]


def test_an_engine_that_refuses_the_restart_is_a_failure_said_as_such(listening: Path) -> None:
    plan = planned("restart-container", listening, Verdict.DETACHED, "running")
    actions = RecordingActions(fail="restart")
    result = apply_plan(plan, actions)
    assert result.status is Status.FAILED and "the engine refused to restart" in result.message


# --------------------------------------------------------------------------- remove-stale-socket


def test_a_stale_socket_is_removed(tmp_path: Path) -> None:
    path = stale_socket(tmp_path / "app.sock")
    result = apply_plan(planned("remove-stale-socket", path, Verdict.STALE), RecordingActions())
    assert result.status is Status.APPLIED, result.message
    assert not os.path.lexists(path)


def test_a_stale_socket_that_listens_again_is_left_alone(tmp_path: Path) -> None:
    path = stale_socket(tmp_path / "app.sock")
    plan = planned("remove-stale-socket", path, Verdict.STALE)
    path.unlink()  # the server comes back: it unlinks the old file and binds the path again
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    try:
        result = apply_plan(plan, RecordingActions())
        assert result.status is Status.REFUSED
        assert path.exists()
    finally:
        server.close()


def test_a_stale_socket_replaced_by_another_file_is_left_alone(tmp_path: Path) -> None:
    path = stale_socket(tmp_path / "app.sock")
    plan = planned("remove-stale-socket", path, Verdict.STALE)
    path.rename(tmp_path / "kept.sock")  # kept, so that the new file cannot reuse its inode number
    stale_socket(path)  # another stale socket: same name, a new inode nobody diagnosed
    result = apply_plan(plan, RecordingActions())
    assert result.status is Status.REFUSED
    assert path.exists()


def test_a_stale_socket_replaced_by_a_directory_is_left_alone(tmp_path: Path) -> None:
    path = stale_socket(tmp_path / "app.sock")
    plan = planned("remove-stale-socket", path, Verdict.STALE)
    path.unlink()
    path.mkdir()
    result = apply_plan(plan, RecordingActions())
    assert result.status is Status.REFUSED
    assert path.is_dir()


# --------------------------------------------------------------------------- remove-shadow-dir (the stopping flow)


@pytest.fixture
def stopping_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback where live repair is not available: holders are stopped, the directory removed, then started."""
    from socktui.remount import DISABLE_ENV

    monkeypatch.setenv(DISABLE_ENV, "1")


@pytest.mark.usefixtures("stopping_flow")
def test_an_empty_shadow_directory_of_a_stopped_container_is_removed_and_nobody_is_started(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    path.mkdir()
    actions = RecordingActions()
    result = apply_plan(planned("remove-shadow-dir", path, Verdict.SHADOWED), actions)
    assert result.status is Status.APPLIED, result.message
    assert not path.exists()
    assert actions.calls == []  # a stopped holder is never started: the socket must exist first


@pytest.mark.usefixtures("stopping_flow")
def test_a_shadow_directory_that_is_not_empty_is_refused_and_nothing_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    path.mkdir()
    plan = planned("remove-shadow-dir", path, Verdict.SHADOWED)
    (path / "data").write_text("someone's file")
    result = apply_plan(plan, RecordingActions())
    assert result.status is Status.REFUSED and "not empty" in result.message
    assert (path / "data").read_text() == "someone's file"


@pytest.mark.usefixtures("stopping_flow")
def test_a_shadow_directory_replaced_by_another_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    path.mkdir()
    plan = planned("remove-shadow-dir", path, Verdict.SHADOWED)
    path.rename(tmp_path / "kept")  # kept, so that the new directory cannot reuse its inode number
    path.mkdir()  # empty too, but not the directory that was diagnosed
    result = apply_plan(plan, RecordingActions())
    assert result.status is Status.REFUSED
    assert path.is_dir()


@pytest.mark.usefixtures("stopping_flow")
def test_a_running_holder_that_cannot_be_verified_stops_nobody(tmp_path: Path) -> None:
    """A doomed fix changes nothing: the holder's pid is not its container's, so the preflight refuses before the
    first stop."""
    path = tmp_path / "app.sock"
    path.mkdir()
    mount = MountSpec("bind", str(path), "/run/app.sock", from_binds=True)
    spec = container("running", os.getpid(), mount)  # our own pid: its cgroup names no container
    offers = tuple(f.offer for f in FIXES if f.applies(Verdict.SHADOWED, mount, Role.SOCKET))
    mount_report = MountReport(mount, Role.SOCKET, Verdict.SHADOWED, "", host=host_lstat(str(path)), fixes=offers)
    report = ContainerReport(spec, (mount_report,))
    plan = plan_fix("remove-shadow-dir", report, mount_report, [report], wait_seconds=1)
    assert [s.op for s in plan.steps][0] is StepKind.STOP_CONTAINER
    actions = RecordingActions()
    result = apply_plan(plan, actions)
    assert result.status is Status.REFUSED
    assert actions.calls == []
    assert path.is_dir()


# --------------------------------------------------------------------------- refusals common to every fix


def test_a_plan_that_could_not_be_made_is_refused() -> None:
    spec = container()
    plan = Plan(FixOffer("remove-stale-socket", "x", True), spec, MountSpec("bind", "/x", "/y"), refusal="no")
    actions = RecordingActions()
    assert apply_plan(plan, actions).status is Status.REFUSED
    assert actions.calls == []


def test_a_cancelled_fix_does_nothing(tmp_path: Path) -> None:
    path = stale_socket(tmp_path / "app.sock")
    plan = planned("remove-stale-socket", path, Verdict.STALE)
    cancel = threading.Event()
    cancel.set()
    result = apply_plan(plan, RecordingActions(), cancel=cancel)
    assert result.status is Status.REFUSED and "cancel" in result.message
    assert path.exists()


def test_an_advice_fix_changes_nothing_even_without_read_only(tmp_path: Path) -> None:
    path = stale_socket(tmp_path / "app.sock")
    plan = planned("start-server-first", path, Verdict.STALE)
    actions = RecordingActions()
    assert apply_plan(plan, actions).status is Status.NOTHING_TO_DO
    assert actions.calls == [] and path.exists()
