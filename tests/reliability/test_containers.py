"""Containers that change under us, come in thousands, have odd names, or mount things that are not binds.

Removal between list and inspect is proved by tests/engine/test_check_engine.py::
test_container_removed_between_list_and_inspect, and the stop/start of every running holder of one shadow directory
by tests/engine/test_fix_engine.py::test_shadow_fix_stops_and_starts_every_holder; these add what they leave out.
"""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from docker.types import Mount
from reliability_support import TRAP, socktui_cli, unique_name, validate_document

from harness import ContainerFactory, Engine, SocketServers
from socktui import cli
from socktui.diagnose import diagnose, diagnose_containers
from socktui.engine import Engine as SocktuiEngine
from socktui.fixes import plan_fix, render_plan
from socktui.model import CheckReport, ContainerSpec, EngineInfo, MountSpec, Role, Verdict
from socktui.report import to_json, to_text
from socktui.session import Options, Session

LOCAL = EngineInfo(endpoint="unix:///var/run/docker.sock", local=True, version="27.0.0")


# --------------------------------------------------------------------------- renamed between list and inspect


def _rename_on_inspect(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, target: str, new_name: str, where: Any
) -> list[str]:
    """Make ``where.inspect_one`` rename ``target`` just before inspecting it: the race, made certain."""
    real_inspect = where.inspect_one
    renamed: list[str] = []

    def inspect_after_rename(*args: Any) -> Any:
        container_id = args[-1]
        if container_id == target and not renamed:
            engine.client.rename(container_id, new_name)
            renamed.append(container_id)
        return real_inspect(*args)  # (self, id) when patched on the class, (id) on an instance

    monkeypatch.setattr(where, "inspect_one", inspect_after_rename)
    return renamed


@pytest.mark.engine
def test_container_renamed_between_list_and_inspect_is_reported_under_its_new_name(
    engine: Engine, containers: ContainerFactory, monkeypatch: pytest.MonkeyPatch, d: Path
) -> None:
    (d / "a.sock").write_text("")
    old, new, other = unique_name(), unique_name(), unique_name()
    cid = containers.run(name=old, command=TRAP, binds=[f"{d / 'a.sock'}:/run/a.sock"])
    containers.run(name=other, command=TRAP, binds=[f"{d / 'a.sock'}:/run/b.sock"])
    eng = SocktuiEngine.from_options(host=engine.host)
    renamed = _rename_on_inspect(monkeypatch, engine, cid, new, eng)

    check = diagnose(eng, names=[old, other])
    assert renamed == [cid]
    names = sorted(c.container.name for c in check.containers)
    assert names == sorted([new, other])  # once each, by the name it has now: inspect is the fresher look
    [report] = [c for c in check.containers if c.container.id == cid]
    [m] = report.socket_mounts
    assert (m.mount.destination, m.verdict) == ("/run/a.sock", Verdict.NOT_SOCKET)


@pytest.mark.engine
def test_check_naming_a_container_renamed_during_the_check_exits_2_with_a_sentence(
    engine: Engine, containers: ContainerFactory, monkeypatch: pytest.MonkeyPatch, d: Path
) -> None:
    """What a user sees when `docker compose up --force-recreate` renames the container mid-check."""
    (d / "a.sock").write_text("")
    old, new = unique_name(), unique_name()
    cid = containers.run(name=old, command=TRAP, binds=[f"{d / 'a.sock'}:/run/a.sock"])
    _rename_on_inspect(monkeypatch, engine, cid, new, SocktuiEngine)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["check", "--json", "-H", engine.host, old])
    assert code == 2
    assert out.getvalue() == ""  # no half document
    assert f"no such container: {old}" in err.getvalue()


@pytest.mark.engine
def test_a_rename_seen_live_is_logged_as_a_rename(engine: Engine, containers: ContainerFactory, d: Path) -> None:
    (d / "a.sock").write_text("")
    old, new = unique_name(), unique_name()
    cid = containers.run(name=old, command=TRAP, binds=[f"{d / 'a.sock'}:/run/a.sock"])
    session = Session(engine=SocktuiEngine.from_options(host=engine.host), options=Options(host=engine.host))
    session.full_check()
    engine.client.rename(cid, new)
    report, changes = session.refresh_container(cid)
    assert report is not None and report.container.name == new
    assert [c.text for c in changes] == [f"{old} renamed to {new}"]
    assert [c.container.name for c in session.snapshot().containers if c.container.id == cid] == [new]


# --------------------------------------------------------------------------- thousands of them


def test_three_thousand_containers_with_missing_sources_all_get_a_report(tmp_path: Path) -> None:
    gone = tmp_path / "gone"  # never created: every source below it is missing
    states = ("exited", "created", "running")
    specs = [
        ContainerSpec(
            id=f"{i:064x}",
            name=f"app-{i}",
            state=states[i % 3],
            image="busybox",
            mounts=(
                MountSpec("bind", str(gone / f"svc-{i}" / "app.sock"), "/run/app.sock", from_binds=True),
                MountSpec("volume", str(gone / f"vol-{i}"), "/data", name=f"vol-{i}"),
            ),
            pid=None,  # a running container the engine gave no pid for: its view is unavailable, not a crash
            inspected=True,
        )
        for i in range(3000)
    ]
    reports = diagnose_containers(LOCAL, specs)
    assert len(reports) == 3000
    assert [r.container.id for r in reports] == [s.id for s in specs]
    for r in reports:
        [m] = r.socket_mounts
        assert m.verdict is Verdict.MISSING, (r.container.name, m.reason)
        assert m.mount.source in m.reason
        assert [x.role for x in r.mounts] == [Role.SOCKET, Role.OTHER]
    doc = json.loads(to_json(CheckReport(LOCAL, tuple(reports)), include_all=True))
    assert validate_document(doc) == []
    assert len(doc["containers"]) == 3000
    assert to_text(CheckReport(LOCAL, tuple(reports))).count("\n  missing ") == 3000


# --------------------------------------------------------------------------- odd names


@pytest.mark.engine
def test_odd_container_names_are_listed_and_selected_exactly(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    (d / "x.sock").write_text("")
    stem = unique_name()
    names = [stem, f"{stem}-1", f"{stem}.a_b-c", "0" + stem, stem + "x" * 180]
    for name in names:
        containers.create(name=name, command=TRAP, binds=[f"{d / 'x.sock'}:/run/x.sock"])

    proc = socktui_cli("check", "--json", "-H", engine.host, stem)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert validate_document(doc) == []
    assert [c["name"] for c in doc["containers"]] == [stem]  # exactly that name, not every name it begins

    proc = socktui_cli("check", "--json", "-H", engine.host, *names)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert validate_document(doc) == []
    assert sorted(c["name"] for c in doc["containers"]) == sorted(names)
    assert all(c["mounts"][0]["verdict"] == "not-socket" for c in doc["containers"])

    proc = socktui_cli("check", "-H", engine.host, *names)
    assert proc.returncode == 1
    for name in names:
        # Text output wraps at 80 columns, so a very long name may span lines: undo the wrapping to find it whole.
        assert f"{name}  [created]" in "".join(proc.stdout.splitlines()), name


# --------------------------------------------------------------------------- volumes and tmpfs next to binds


@pytest.mark.engine
def test_volumes_and_tmpfs_next_to_binds_are_other_and_listed_with_all(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    server = sockserver.start(d / "app.sock")
    plain_volume, socket_volume = unique_name("st-vol"), unique_name("st-vol")
    for volume in (plain_volume, socket_volume):
        engine.client.create_volume(volume)
    try:
        # A server binds its socket inside the named volume's own directory on the host.
        volume_dir = engine.client.inspect_volume(socket_volume)["Mountpoint"]
        inside = sockserver.start(Path(volume_dir) / "db.sock")
        name = unique_name()
        containers.run(
            name=name,
            command=TRAP,
            binds=[f"{server.path}:/run/app.sock", f"{plain_volume}:/data", f"{socket_volume}:/sockets"],
            mounts=[Mount("/scratch", None, type="tmpfs"), Mount("/anon", None, type="volume")],
            tmpfs={"/run/t": ""},
        )
        proc = socktui_cli("check", "--json", "--all", "-H", engine.host, name)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        doc = json.loads(proc.stdout)
        assert validate_document(doc) == []
        [c] = doc["containers"]
        by_dst = {m["destination"]: m for m in c["mounts"]}
        # --tmpfs (HostConfig.Tmpfs) is not in the engine's Mounts at all; --mount type=tmpfs is.
        assert set(by_dst) == {"/run/app.sock", "/data", "/sockets", "/scratch", "/anon"}
        assert (by_dst["/run/app.sock"]["role"], by_dst["/run/app.sock"]["verdict"]) == ("socket", "live")
        sockets = by_dst["/sockets"]
        assert (sockets["type"], sockets["role"], sockets["verdict"]) == ("volume", "socket-dir", "ok")
        assert [(s["name"], s["verdict"]) for s in sockets["sockets"]] == [("db.sock", "live")]
        for dst, kind in (("/data", "volume"), ("/scratch", "tmpfs"), ("/anon", "volume")):
            m = by_dst[dst]
            assert (m["type"], m["role"], m["verdict"], m["sockets"], m["fixes"]) == (kind, "other", None, [], [])
        assert by_dst["/scratch"]["source"] == ""

        proc = socktui_cli("check", "--json", "-H", engine.host, name)
        [c] = json.loads(proc.stdout)["containers"]
        assert sorted(m["destination"] for m in c["mounts"]) == ["/run/app.sock", "/sockets"]
        inside.stop()
    finally:
        containers.cleanup()
        for volume in (plain_volume, socket_volume):
            engine.client.remove_volume(volume, force=True)


# --------------------------------------------------------------------------- one shadow directory, many holders


@pytest.mark.engine
def test_the_shadow_plan_names_every_holder_running_or_not(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    sock = d / "app.sock"
    first, second, stopped, bystander = (unique_name() for _ in range(4))
    ids = {n: containers.run(name=n, command=TRAP, binds=[f"{sock}:/run/app.sock"]) for n in (first, second)}
    ids[stopped] = containers.run(name=stopped, command=TRAP, binds=[f"{sock}:/srv/app.sock"])
    engine.client.stop(ids[stopped], timeout=5)
    (d / "other.sock").write_text("")
    containers.run(name=bystander, command=TRAP, binds=[f"{d / 'other.sock'}:/run/app.sock"])
    assert sock.is_dir()

    everyone = diagnose(SocktuiEngine.from_options(host=engine.host)).containers
    [report] = [c for c in everyone if c.container.name == first]
    [m] = report.socket_mounts
    assert m.verdict is Verdict.SHADOWED
    plan = plan_fix("remove-shadow-dir", report, m, everyone, wait_seconds=5)
    text = render_plan(plan)
    for holder in (first, second, stopped):
        assert holder in text, holder
    assert bystander not in text
    # Live: the running holders keep running and get the socket in place of the directory; the stopped one gets
    # its layer's mount point repaired and is not started by the fix.
    replaced = sorted(s.container_id or "" for s in plan.steps if s.op == "replace-mount-point")
    repaired = [s.container_id for s in plan.steps if s.op == "repair-mount-point"]
    assert replaced == sorted([ids[first], ids[second]]) and repaired == [ids[stopped]]
    assert not any(s.op in ("stop-container", "start-container", "restart-container") for s in plan.steps)
    assert os.path.isdir(sock)  # planning changed nothing
