"""The ``unstartable`` verdict and the live-repair plans, from hand-built observations (no daemon, no I/O to speak of).

A stopped container whose own layer has a directory where a socket is mounted cannot be started (runc: "Are you
trying to mount a directory onto a file"). It is seen before a start is tried (the layer) and after (State.Error).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from builders import (
    DESTINATION,
    HOST_SOURCE,
    bind,
    container,
    directory,
    observation,
    probe_ok,
    same_inode_view,
    sock,
    target,
    view,
)

from socktui import fixes
from socktui.diagnose import report_for
from socktui.engine import container_from_inspect
from socktui.fixes import StepKind
from socktui.model import ContainerReport, Kind, MountPoint, Verdict
from socktui.remount import DISABLE_ENV
from socktui.verdict import MountObservation, decide, docker_mount_refusal

DOCKER_ERROR = (
    "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: "
    f'error during container init: error mounting "{HOST_SOURCE}" to rootfs at "{DESTINATION}": mount '
    f"{HOST_SOURCE}:{DESTINATION} (via /proc/self/fd/6), flags: 0x5000: not a directory: unknown: Are you trying to "
    "mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type"
)
UPPER = "/var/lib/docker/overlay2/abc/diff"


def stopped(**kw: object) -> MountObservation:
    layers: dict[str, object] = {
        "storage_driver": "overlay2",
        "upper_dir": UPPER,
        "lower_dirs": ("/l/init", "/l/image"),
    }
    ctr = container("exited", mounts=(bind(),), **{**layers, **kw})
    host = sock()
    return observation(target(host, host_probe=probe_ok()), ctr=ctr)


def with_point(obs: MountObservation, point: MountPoint | None) -> MountObservation:
    return replace(obs, mount_point=point)


def verdict_of(obs: MountObservation) -> tuple[Verdict, str]:
    decision = decide(obs)
    assert decision is not None
    return decision.verdict, decision.reason


# --------------------------------------------------------------------------- the verdict


def test_a_directory_mount_point_in_the_layer_is_unstartable_before_any_start() -> None:
    verdict, reason = verdict_of(with_point(stopped(), MountPoint(DESTINATION, Kind.DIRECTORY, True, False)))
    assert verdict is Verdict.UNSTARTABLE
    assert "Docker cannot start web" in reason and "directory onto a file" in reason
    assert "shadow directory" in reason
    assert not Verdict.UNSTARTABLE.healthy


def test_after_a_failed_start_the_reason_quotes_docker() -> None:
    obs = with_point(stopped(state_error=DOCKER_ERROR, exit_code=127), MountPoint(DESTINATION, Kind.DIRECTORY, True))
    verdict, reason = verdict_of(obs)
    assert verdict is Verdict.UNSTARTABLE
    assert "exit code 127" in reason
    assert f'error mounting "{HOST_SOURCE}" to rootfs at "{DESTINATION}"' in reason
    assert "Are you trying to mount a directory onto a file (or vice-versa)?" in reason


def test_state_error_alone_is_enough_when_the_layer_cannot_be_read() -> None:
    point = MountPoint(DESTINATION, unavailable="cannot open the layer /var/lib/docker/x: EACCES")
    verdict, reason = verdict_of(with_point(stopped(state_error=DOCKER_ERROR, exit_code=127), point))
    assert verdict is Verdict.UNSTARTABLE
    assert "the last start of web failed" in reason and "EACCES" in reason
    verdict, _ = verdict_of(with_point(stopped(state_error=DOCKER_ERROR, exit_code=127), None))
    assert verdict is Verdict.UNSTARTABLE


def test_a_repaired_layer_outweighs_an_old_state_error() -> None:
    """The layer now has a file there: the error is history, the container will start."""
    obs = with_point(stopped(state_error=DOCKER_ERROR, exit_code=127), MountPoint(DESTINATION, Kind.FILE))
    assert verdict_of(obs)[0] is Verdict.LIVE
    obs = with_point(stopped(), MountPoint(DESTINATION, None))  # created, never started: nothing there yet
    assert verdict_of(obs)[0] is Verdict.LIVE


def test_an_error_about_another_mount_is_not_this_mounts() -> None:
    other = DOCKER_ERROR.replace(f'rootfs at "{DESTINATION}"', 'rootfs at "/run/other.sock"')
    assert docker_mount_refusal(other, DESTINATION) is None
    assert verdict_of(with_point(stopped(state_error=other, exit_code=127), None))[0] is Verdict.LIVE


def test_a_directory_from_the_image_says_so() -> None:
    point = MountPoint(DESTINATION, Kind.DIRECTORY, True, from_image=True)
    verdict, reason = verdict_of(with_point(stopped(), point))
    assert verdict is Verdict.UNSTARTABLE and "comes from the image" in reason


def test_a_running_container_and_a_directory_at_the_source_are_not_unstartable() -> None:
    host = sock()
    running = observation(target(host, host_probe=probe_ok(), view=same_inode_view(host)))
    assert verdict_of(with_point(running, MountPoint(DESTINATION, Kind.DIRECTORY, True)))[0] is Verdict.LIVE
    shadow = observation(target(directory(entries=0)), ctr=container("exited", state_error=DOCKER_ERROR))
    assert verdict_of(shadow)[0] is Verdict.SHADOWED  # mounting a directory onto the directory works


def test_the_inspect_payload_gives_the_error_the_exit_code_and_the_layers() -> None:
    spec = container_from_inspect(
        {
            "Id": "abc",
            "Name": "/web",
            "State": {"Status": "exited", "Error": DOCKER_ERROR, "ExitCode": 127},
            "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": UPPER, "LowerDir": "/l/init:/l/image"}},
        }
    )
    assert (spec.state_error, spec.exit_code, spec.storage_driver) == (DOCKER_ERROR, 127, "overlay2")
    assert (spec.upper_dir, spec.lower_dirs) == (UPPER, ("/l/init", "/l/image"))
    odd = container_from_inspect({"Id": "x", "State": {"ExitCode": True}, "GraphDriver": ["not", "a", "map"]})
    assert (odd.exit_code, odd.upper_dir, odd.lower_dirs) == (None, "", ())


# --------------------------------------------------------------------------- the plans


def test_repair_mount_point_is_offered_and_planned_for_an_unstartable_container() -> None:
    obs = with_point(stopped(state_error=DOCKER_ERROR, exit_code=127), MountPoint(DESTINATION, Kind.DIRECTORY, True))
    mount = report_for(obs)
    assert [f.id for f in mount.fixes] == ["repair-mount-point"]
    plan = fixes.plan_fix("repair-mount-point", ContainerReport(obs.container, (mount,)), mount)
    assert plan.refusal is None
    [step] = plan.steps
    assert step.op is StepKind.REPAIR_MOUNT_POINT and step.inside is not None
    assert step.inside.layers == (UPPER, "/l/init", "/l/image")
    assert "docker start web" in plan.advice and "keeps its ID" in plan.note
    assert "docker rm" not in fixes.render_plan(plan)


@pytest.mark.parametrize(
    ("ctr", "point", "refusal"),
    [
        ({"storage_driver": "vfs"}, MountPoint(DESTINATION, Kind.DIRECTORY, True), "storage driver is vfs"),
        ({"upper_dir": ""}, MountPoint(DESTINATION, Kind.DIRECTORY, True), "UpperDir"),
        ({}, MountPoint(DESTINATION, Kind.DIRECTORY, True, from_image=True), "comes from the image"),
        ({}, MountPoint(DESTINATION, Kind.DIRECTORY, False), "not empty"),
    ],
    ids=["other-driver", "no-layer", "from-image", "not-empty"],
)
def test_repair_mount_point_refuses_what_it_cannot_do(ctr: dict[str, object], point: MountPoint, refusal: str) -> None:
    obs = with_point(stopped(**ctr), point)
    mount = report_for(obs)
    plan = fixes.plan_fix("repair-mount-point", ContainerReport(obs.container, (mount,)), mount)
    assert plan.refusal is not None and refusal in plan.refusal
    assert not plan.steps


def detached_obs(name: str, cid: str, pid: int) -> MountObservation:
    host = sock()
    old = replace(host, ino=host.ino - 1, nlink=0)
    ctr = container(name=name, id=cid * 16, pid=pid, mounts=(bind(),))
    return observation(target(host, host_probe=probe_ok(), view=view(stat=old)), ctr=ctr)


def test_reattach_plans_every_running_holder_of_the_old_inode_and_keeps_them_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    reports = []
    for name, cid, pid in (("portainer", "a", 101), ("traefik", "b", 102), ("watchtower", "c", 103)):
        obs = detached_obs(name, cid, pid)
        assert decide(obs) is not None and decide(obs).verdict is Verdict.DETACHED  # type: ignore[union-attr]
        reports.append(ContainerReport(obs.container, (report_for(obs),)))
    first = reports[0]
    plan = fixes.plan_fix("reattach-socket", first, first.mounts[0], reports)
    assert plan.refusal is None
    assert [(s.op, s.target) for s in plan.steps] == [
        (StepKind.REATTACH_SOCKET, "portainer"),
        (StepKind.REATTACH_SOCKET, "traefik"),
        (StepKind.REATTACH_SOCKET, "watchtower"),
    ]
    assert [s.inside.pid for s in plan.steps if s.inside] == [101, 102, 103]
    assert plan.keeps_running and plan.note.startswith("live")


def test_reattach_falls_back_to_restarts_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_ENV, "1")
    obs = detached_obs("web", "a", 101)
    mount = report_for(obs)
    plan = fixes.plan_fix("reattach-socket", ContainerReport(obs.container, (mount,)), mount)
    assert [s.op for s in plan.steps] == [StepKind.RESTART_CONTAINER]
    assert not plan.keeps_running
    assert plan.note.startswith("not possible live here") and DISABLE_ENV in plan.note
    assert "not possible live here" in fixes.render_plan(plan)


def test_remove_shadow_dir_keeps_the_holders_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    obs = observation(target(directory(entries=0)), ctr=container(mounts=(bind(),)))
    mount = report_for(obs)
    assert mount.verdict is Verdict.SHADOWED
    plan = fixes.plan_fix("remove-shadow-dir", ContainerReport(obs.container, (mount,)), mount)
    assert [s.op for s in plan.steps] == [
        StepKind.RMDIR,
        StepKind.WAIT_FOR_LISTENER,
        StepKind.REPLACE_MOUNT_POINT,
    ]
    assert plan.keeps_running and "web keeps running" in plan.note


def test_remove_shadow_dir_without_live_repair_stops_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_ENV, "1")
    obs = observation(target(directory(entries=0)), ctr=container(mounts=(bind(),)))
    mount = report_for(obs)
    plan = fixes.plan_fix("remove-shadow-dir", ContainerReport(obs.container, (mount,)), mount)
    assert [s.op for s in plan.steps][:2] == [StepKind.STOP_CONTAINER, StepKind.RMDIR]
    assert not plan.keeps_running
    assert "not possible live here" in plan.note and "web is stopped" in plan.note
