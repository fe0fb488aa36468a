"""Advice that works (issue 11, item 6), from hand-built observations: each offer and sentence is what the kernel's
rules (and the server's) would really allow. The engine tests check the same advice against real servers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from builders import (
    DESTINATION,
    HOST_SOURCE,
    STARTED,
    bind,
    container,
    dir_obs,
    directory,
    entry,
    local_engine,
    missing,
    observation,
    probe_failed,
    same_inode_view,
    sock,
    target,
)

from socktui import fixes
from socktui.diagnose import report_for
from socktui.fixes import Situation, advice_for, plan_fix, render_plan
from socktui.model import (
    CheckReport,
    ContainerReport,
    Creds,
    Denial,
    FixOffer,
    Grant,
    Listener,
    MountReport,
    MountSpec,
    ProbeResult,
    Role,
    Verdict,
)
from socktui.permissions import (
    IdMap,
    IdRange,
    can_access,
    denial_of,
    id_map_from,
    parse_id_map,
    socket_mode_setting,
    what_would_grant,
)
from socktui.report import to_text
from socktui.text import counted
from socktui.verdict import SERVER_FAILS, Decision, MountObservation, decide

WRITE = 0o2
REMAP = IdMap((IdRange(0, 700000, 65536),), (IdRange(0, 700000, 65536),))
IDENTITY = IdMap((IdRange(0, 0, 4294967295),), (IdRange(0, 0, 4294967295),))


def verdict_of(obs: MountObservation) -> Decision:
    decision = decide(obs)
    assert decision is not None
    return decision


def denied_obs(mode: int, uid: int, gid: int, creds: Creds, listener: Listener | None = None) -> MountObservation:
    host = sock(mode=mode, uid=uid, gid=gid)
    return observation(target(host, view=same_inode_view(host), listener=listener), creds=creds)


def _refused() -> ProbeResult:
    return probe_failed("ECONNREFUSED")


def ids_of(offered: tuple[FixOffer, ...] | MountReport) -> list[str]:
    found = offered.fixes if isinstance(offered, MountReport) else offered
    return [f.id for f in found]


# --------------------------------------------------------------------------- group-add only when the group has it


def test_a_group_writable_socket_offers_group_add_with_its_gid() -> None:
    obs = denied_obs(0o660, 0, 999, Creds(1000, 1000))
    d = verdict_of(obs)
    assert d.verdict is Verdict.DENIED and d.denial is not None and d.denial.grant is Grant.GROUP
    assert "its group has it: add --group-add 999 to web" in d.reason
    m = report_for(obs)
    assert ids_of(m) == ["group-add"]
    assert "--group-add 999" in advice_for("group-add", ContainerReport(obs.container, (m,)), m)


@pytest.mark.parametrize("mode", [0o600, 0o700, 0o640, 0o750])
def test_an_owner_only_socket_never_offers_group_add_and_names_what_would_work(mode: int) -> None:
    """ssh-agent's 0600, Redis's unixsocketperm 700: the group has no write bit, so --group-add cannot help."""
    obs = denied_obs(mode, 103, 106, Creds(1000, 1000))
    d = verdict_of(obs)
    assert d.verdict is Verdict.DENIED and d.denial is not None and d.denial.grant is Grant.OWNER
    assert "only its owner's uid (103) can connect, so --group-add would not help" in d.reason
    assert "Redis: unixsocketperm 770" in d.reason  # the generic example when the server is not known
    assert "running web as uid 103 (--user 103)" in d.reason
    m = report_for(obs)
    assert ids_of(m) == ["socket-mode", "run-as-owner"]
    report = ContainerReport(obs.container, (m,))
    assert "docker run --user 103" in advice_for("run-as-owner", report, m)
    assert "--group-add 106" in advice_for("socket-mode", report, m)


def test_the_socket_mode_setting_is_named_for_the_server_that_listens() -> None:
    redis = Listener(pid=10, command="/usr/bin/redis-server *:0")
    obs = denied_obs(0o700, 103, 106, Creds(1000, 1000), listener=redis)
    assert "Redis: unixsocketperm 770" in verdict_of(obs).reason
    assert socket_mode_setting("/usr/lib/postgresql/15/bin/postgres -D x", ".s.PGSQL.5432").startswith("PostgreSQL")
    assert socket_mode_setting(None, ".s.PGSQL.5432").startswith("PostgreSQL")
    assert "ssh-agent always makes its socket 0600" in socket_mode_setting("ssh-agent -a /tmp/a", "agent.sock")
    assert socket_mode_setting(None, "agent.4242").startswith("ssh-agent")
    assert socket_mode_setting("/opt/app", "app.sock") == "the server's socket-mode setting (Redis: unixsocketperm 770)"


def test_a_mode_that_lets_nobody_write_says_so() -> None:
    d = verdict_of(denied_obs(0o500, 103, 106, Creds(1000, 1000)))
    assert d.denial is not None and d.denial.grant is Grant.NOBODY
    assert "lets nobody but root write it" in d.reason


def test_a_directory_on_the_way_names_its_own_gid() -> None:
    host = sock(mode=0o666)
    parent = directory("/run", entries=3, uid=0, gid=4242, mode=0o750)
    obs = observation(target(host, view=same_inode_view(host, parents=(parent,))), creds=Creds(1000, 1000))
    d = verdict_of(obs)
    assert d.verdict is Verdict.DENIED and "cannot search /run" in d.reason
    assert "add --group-add 4242" in d.reason
    m = report_for(obs)
    assert "--group-add 4242" in advice_for("group-add", ContainerReport(obs.container, (m,)), m)


def test_inside_a_socket_dir_group_add_gives_the_sockets_gid_not_the_directorys() -> None:
    s = sock("/run/app/a.sock", mode=0o660, gid=999)
    obs = replace(dir_obs(entry("a.sock", s), host_dir=directory("/run/app", gid=50, entries=1)), creds=Creds(1000, 1))
    m = report_for(obs)
    assert m.verdict is Verdict.DENIED
    assert "--group-add 999" in advice_for("group-add", ContainerReport(obs.container, (m,)), m)


# --------------------------------------------------------------------------- user namespaces (rootless)


def test_id_maps_parse_and_map_both_ways() -> None:
    assert parse_id_map("         0     700000      65536\n") == (IdRange(0, 700000, 65536),)
    assert parse_id_map("garbage\n0 0\n") == ()
    ids = id_map_from("0 1000 1\n1 100000 65536\n", "0 1000 1\n1 100000 65536\n")
    assert ids is not None and not ids.identity
    assert (ids.uid_to_host(0), ids.uid_to_host(1), ids.uid_to_host(70000)) == (1000, 100000, None)
    assert (ids.uid_inside(1000), ids.uid_inside(100999), ids.uid_inside(0)) == (0, 1000, None)
    assert IDENTITY.identity and id_map_from(None, "0 0 1") is None
    assert REMAP.describe() == "container uids 0-65535 are host uids 700000-765535"


def test_root_in_a_user_namespace_is_not_root_over_an_unmapped_socket() -> None:
    root = Creds(0, 0)
    host_root_sock = sock(mode=0o660, uid=0, gid=999)
    assert can_access(root, host_root_sock, WRITE) is True  # no namespace: root passes
    assert can_access(root, host_root_sock, WRITE, IDENTITY) is True
    assert can_access(root, host_root_sock, WRITE, REMAP) is False  # owner and group not mapped: no capability
    assert can_access(root, sock(mode=0o600, uid=700000, gid=700000), WRITE, REMAP) is True  # its own root's file
    assert can_access(root, sock(mode=0o666, uid=0, gid=0), WRITE, REMAP) is True  # others may write


def test_a_container_user_is_compared_by_its_host_ids() -> None:
    user = Creds(1000, 1000)
    assert can_access(user, sock(mode=0o600, uid=1000, gid=1000), WRITE, REMAP) is False  # host 1000 is not it
    assert can_access(user, sock(mode=0o600, uid=701000, gid=0), WRITE, REMAP) is True
    assert can_access(user, sock(mode=0o660, uid=0, gid=701000), WRITE, REMAP) is True
    grant, gid, uid = what_would_grant(sock(mode=0o660, uid=0, gid=999), WRITE, REMAP)
    assert (grant, gid, uid) == (Grant.UNMAPPED, None, None)
    grant, gid, uid = what_would_grant(sock(mode=0o660, uid=0, gid=700999), WRITE, REMAP)
    assert (grant, gid, uid) == (Grant.GROUP, 999, None)  # --group-add takes the container's number


def test_root_of_a_remapped_container_is_denied_a_host_root_socket_and_group_add_is_not_offered() -> None:
    host = sock(mode=0o660, uid=0, gid=999)
    obs = replace(
        observation(target(host, view=same_inode_view(host)), creds=Creds(0, 0), creds_note="root"), ids=REMAP
    )
    d = verdict_of(obs)
    assert d.verdict is Verdict.DENIED
    assert "web runs as root (host uid 700000 in its user namespace: container uids 0-65535 are host uids" in d.reason
    assert "not mapped into web's user namespace, so neither --group-add nor --user can reach them" in d.reason
    assert ids_of(report_for(obs)) == []
    # Without the map the same container would be called live: root passes.
    assert verdict_of(replace(obs, ids=None)).verdict is Verdict.LIVE


def test_a_remapped_group_is_added_by_its_container_side_number() -> None:
    host = sock(mode=0o660, uid=0, gid=700999)
    obs = replace(observation(target(host, view=same_inode_view(host)), creds=Creds(1000, 1000)), ids=REMAP)
    d = verdict_of(obs)
    assert "add --group-add 999 to web" in d.reason
    m = report_for(obs)
    assert ids_of(m) == ["group-add"]
    assert "--group-add 999" in advice_for("group-add", ContainerReport(obs.container, (m,)), m)


@pytest.mark.parametrize(
    ("ids", "rootless", "engine_root", "words"),
    [
        (REMAP, False, None, "owned by uid 700000, root of the engine's user namespace"),
        (None, True, 1000, "owned by uid 1000, the user rootless Docker runs as"),
        (id_map_from("0 1000 1\n1 100000 65536", "0 1000 1\n1 100000 65536"), True, None, "rootless Docker runs as"),
    ],
)
def test_a_shadow_directory_of_a_namespaced_engine_is_attributed_to_it(
    ids: IdMap | None, rootless: bool, engine_root: int | None, words: str
) -> None:
    owner = 700000 if ids is REMAP else 1000
    d_stat = directory(entries=0, uid=owner, mtime=STARTED + 1)
    obs = replace(observation(target(d_stat), engine=local_engine(rootless=rootless)), ids=ids, engine_root=engine_root)
    d = verdict_of(obs)
    assert d.verdict is Verdict.SHADOWED
    assert ("rootless Docker created it" if rootless else "Docker created it") in d.reason
    assert words in d.reason
    assert d.shadow_created_at is not None
    assert "remove-shadow-dir" in ids_of(report_for(obs))
    # The same directory under a rootful engine without a namespace was made by someone else.
    assert "created it" not in verdict_of(replace(obs, ids=None, engine_root=None, engine=local_engine())).reason


# --------------------------------------------------------------------------- running containers and file mounts


def _report(obs: MountObservation) -> tuple[ContainerReport, MountReport]:
    m = report_for(obs)
    return ContainerReport(obs.container, (m,)), m


def test_a_running_container_with_a_stale_file_mount_is_never_told_to_docker_start() -> None:
    host = sock()
    obs = observation(target(host, view=same_inode_view(host), host_probe=_refused()))
    report, m = _report(obs)
    assert m.verdict is Verdict.STALE
    assert ids_of(m) == ["remove-stale-socket", "mount-parent-dir", "start-server-first"]
    text = advice_for("start-server-first", report, m)
    assert "docker start" not in text
    assert f"socktui fix web {DESTINATION} reattach-socket" in text
    assert "docker restart web" in text
    assert f"socktui fix web {DESTINATION} mount-parent-dir" in text


def test_a_stopped_container_is_told_to_start_after_the_server() -> None:
    host = sock()
    obs = observation(target(host, host_probe=_refused()), ctr=container("exited"))
    report, m = _report(obs)
    assert ids_of(m) == ["remove-stale-socket", "start-server-first"]  # no pinned inode: mount-parent-dir not needed
    assert "docker start web" in advice_for("start-server-first", report, m)


def test_a_running_container_with_a_socket_dir_needs_no_restart() -> None:
    gone = replace(entry("a.sock", missing("/run/app/a.sock")), expected_by="it held a.sock earlier")
    report, m = _report(dir_obs(gone))
    text = advice_for("start-server-first", report, m)
    assert "no restart needed" in text and "docker start" not in text and "reattach" not in text


def test_remove_stale_socket_on_a_file_mount_warns_about_a_restart_before_the_server_binds() -> None:
    host = sock()
    obs = observation(target(host, view=same_inode_view(host), host_probe=_refused()))
    report, m = _report(obs)
    plan = plan_fix("remove-stale-socket", report, m)
    assert "if web starts or restarts before the server has bound" in plan.advice
    assert "Docker creates a directory there" in plan.advice
    assert "Docker creates a directory there" in render_plan(plan)
    flag = observation(target(host, host_probe=_refused()), mount=bind(from_binds=False))
    plan = plan_fix("remove-stale-socket", *_report(flag))
    assert "cannot start (--mount: bind source path does not exist)" in plan.advice
    in_dir = dir_obs(entry("b.sock", host_probe=_refused()))
    plan = plan_fix("remove-stale-socket", *_report(in_dir))
    assert plan.advice == "Then start the server so it binds again."  # a directory mount: nothing to warn about


# --------------------------------------------------------------------------- shadowed, :ro docker.sock, counts


def test_the_shadowed_reason_names_both_ways_servers_fail() -> None:
    assert "bind" in SERVER_FAILS and "EADDRINUSE" in SERVER_FAILS
    assert "unlinks the path first fails with EISDIR (Python: IsADirectoryError)" in SERVER_FAILS
    for d_stat in (directory(entries=0, mtime=STARTED + 1), directory(entries=0, mtime=0), directory(entries=2)):
        assert SERVER_FAILS in verdict_of(observation(target(d_stat))).reason


def test_a_read_only_docker_socket_says_read_only_does_not_limit_the_api() -> None:
    host = sock("/var/run/docker.sock")
    ro = MountSpec(type="bind", source="/var/run/docker.sock", destination="/var/run/docker.sock", rw=False)
    obs = observation(target(host, view=same_inode_view(host, "/var/run/docker.sock")), mount=ro)
    d = verdict_of(obs)
    assert d.verdict is Verdict.LIVE
    assert "mounted read-only (:ro), which does not limit what the Docker API allows" in d.reason
    assert "root on the host" in d.reason
    assert "read-only" not in verdict_of(replace(obs, mount=replace(ro, rw=True))).reason
    other = replace(ro, source=HOST_SOURCE, destination=DESTINATION)
    assert "read-only" not in verdict_of(observation(target(sock(), view=same_inode_view(sock())), mount=other)).reason
    podman = Listener(pid=1, command="/usr/bin/podman system service")
    api = replace(other, source="/srv/api")
    assert "Podman API" in verdict_of(observation(target(sock(), listener=podman), mount=api)).reason


def test_counts_are_in_words() -> None:
    assert [counted(n, "container") for n in (0, 1, 2)] == ["0 containers", "1 container", "2 containers"]
    assert counted(1, "entry", "entries") == "1 entry" and counted(3, "entry", "entries") == "3 entries"
    host = sock()
    obs = observation(target(host, view=same_inode_view(host), host_probe=_refused()))
    report, _ = _report(obs)
    text = to_text(CheckReport(engine=local_engine(), containers=(report,)))
    assert "1 container, 1 socket mount, 1 problem" in text
    one = replace(dir_obs(entry("x.sock", host_probe=_refused())))
    assert "1 of 1 socket inside is not live" in verdict_of(one).reason
    assert "(1 entry, " in verdict_of(observation(target(directory(entries=1)))).reason


def test_offers_without_a_situation_keep_the_old_choice() -> None:
    v = bind()
    assert ids_of(fixes.offers(Verdict.DENIED, v, Role.SOCKET)) == ["group-add"]
    assert ids_of(fixes.offers(Verdict.STALE, v, Role.SOCKET)) == ["remove-stale-socket", "start-server-first"]
    owner = Denial("/s", "write", 0o600, 1, 1, Grant.OWNER, 1, 1)
    assert ids_of(fixes.offers(Verdict.DENIED, v, Role.SOCKET, Situation(True, owner))) == [
        "socket-mode",
        "run-as-owner",
    ]
    assert denial_of(sock(mode=0o600, uid=5, gid=6), WRITE).owner_inside == 5
