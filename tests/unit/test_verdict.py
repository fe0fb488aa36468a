"""Every verdict word ``decide()`` can give, from hand-built observations, and the evidence its reason names."""

from __future__ import annotations

from dataclasses import replace

import pytest
from builders import (
    DESTINATION,
    DIR_SOURCE,
    HOST_INO,
    HOST_SOURCE,
    STARTED,
    bind,
    container,
    desktop_engine,
    dir_obs,
    directory,
    entry,
    fifo,
    live_socket_obs,
    lstat_error,
    missing,
    observation,
    probe_failed,
    probe_ok,
    regular_file,
    remote_engine,
    same_inode_view,
    sock,
    symlink,
    target,
    view,
)

from socktui import fixes
from socktui.diagnose import report_for
from socktui.model import Creds, FixOffer, Kind, Listener, Liveness, MountSpec, PathStat, Role, SocketState, Verdict
from socktui.verdict import SHADOW_WINDOW_SECONDS, Decision, MountObservation, decide, decide_entry


def verdict_of(obs: MountObservation) -> Decision:
    decision = decide(obs)
    assert decision is not None
    return decision


# live -----------------------------------------------------------------------------------------------------------------


def test_live_when_running_container_sees_the_same_inode_and_probe_connects() -> None:
    d = verdict_of(live_socket_obs())
    assert d.verdict is Verdict.LIVE
    assert "accepts connections" in d.reason
    assert f"web sees the same inode {HOST_INO}" in d.reason
    assert d.shadow_created_at is None


def test_live_reason_names_the_listener_and_the_docker_api() -> None:
    host = sock("/var/run/docker.sock")
    obs = observation(
        target(
            host,
            host_probe=probe_ok(latency_ms=0.25, api="docker"),
            view=same_inode_view(host, "/var/run/docker.sock"),
            listener=Listener(pid=812, command="/usr/bin/dockerd -H fd:// --containerd=/run/containerd.sock"),
            container_path="/var/run/docker.sock",
        ),
        mount=bind("/var/run/docker.sock", "/var/run/docker.sock"),
    )
    d = verdict_of(obs)
    assert d.verdict is Verdict.LIVE
    assert "Docker API socket" in d.reason
    assert "0.25 ms" in d.reason
    assert "pid 812 /usr/bin/dockerd -H fd://" in d.reason
    assert "listens" in d.reason


def test_live_reason_says_podman_for_a_libpod_answer_and_names_the_listeners_container() -> None:
    host = sock("/run/podman/podman.sock")
    obs = observation(
        target(
            host,
            host_probe=probe_ok(api="podman"),
            view=same_inode_view(host),
            listener=Listener(pid=99, command="podman system service", container="api-sidecar"),
        )
    )
    d = verdict_of(obs)
    assert d.verdict is Verdict.LIVE
    assert "Podman API socket" in d.reason
    assert "Docker API" not in d.reason
    assert "pid 99 podman system service in api-sidecar listens" in d.reason


def test_live_reason_names_a_non_stream_socket_type() -> None:
    host = sock()
    d = verdict_of(observation(target(host, host_probe=probe_ok(sock_type="dgram"), view=same_inode_view(host))))
    assert d.verdict is Verdict.LIVE
    assert "dgram" in d.reason


def test_live_reason_shortens_a_very_long_listener_command() -> None:
    host = sock()
    command = "/usr/bin/server " + "--option " * 40
    obs = observation(
        target(host, host_probe=probe_ok(), view=same_inode_view(host), listener=Listener(pid=5, command=command))
    )
    d = verdict_of(obs)
    assert "…" in d.reason
    assert command.strip() not in d.reason


@pytest.mark.parametrize("state", ["exited", "created"])
def test_live_for_a_stopped_container_says_it_will_see_the_socket_when_started(state: str) -> None:
    host = sock()
    obs = observation(target(host, host_probe=probe_ok()), ctr=container(state))
    d = verdict_of(obs)
    assert d.verdict is Verdict.LIVE
    assert f"web is {state} and will see it when started" in d.reason


def test_a_stopped_container_is_never_detached_even_with_an_old_view() -> None:
    host = sock()
    old = view(DESTINATION, sock(DESTINATION, ino=1))
    d = verdict_of(observation(target(host, host_probe=probe_ok(), view=old), ctr=container("exited")))
    assert d.verdict is Verdict.LIVE


# stale ----------------------------------------------------------------------------------------------------------------


def test_stale_when_connect_is_refused_and_reason_names_the_inode() -> None:
    host = sock(ino=5151)
    obs = observation(target(host, host_probe=probe_failed("ECONNREFUSED"), view=same_inode_view(host)))
    d = verdict_of(obs)
    assert d.verdict is Verdict.STALE
    assert "ECONNREFUSED" in d.reason
    assert "inode 5151" in d.reason
    assert "nobody listens" in d.reason


def test_stale_for_a_stopped_container_too() -> None:
    obs = observation(target(sock(), host_probe=probe_failed("ECONNREFUSED")), ctr=container("exited"))
    assert verdict_of(obs).verdict is Verdict.STALE


# missing --------------------------------------------------------------------------------------------------------------


def test_missing_for_created_container_with_v_mount_warns_docker_will_create_a_directory() -> None:
    obs = observation(target(missing()), ctr=container("created"), mount=bind(from_binds=True))
    d = verdict_of(obs)
    assert d.verdict is Verdict.MISSING
    assert f"nothing at {HOST_SOURCE}" in d.reason
    assert "will make Docker create a directory there" in d.reason
    assert "start the server first" in d.reason


def test_missing_for_created_container_with_mount_flag_says_it_will_refuse_to_start() -> None:
    obs = observation(target(missing()), ctr=container("created"), mount=bind(from_binds=False))
    d = verdict_of(obs)
    assert d.verdict is Verdict.MISSING
    assert "will refuse to start" in d.reason
    assert "--mount" in d.reason
    assert "create a directory" not in d.reason


def test_missing_for_exited_container_with_v_mount_says_next_start_creates_a_directory() -> None:
    obs = observation(target(missing()), ctr=container("exited"), mount=bind(from_binds=True))
    d = verdict_of(obs)
    assert d.verdict is Verdict.MISSING
    assert "the next start of web will make Docker create a directory there" in d.reason


def test_missing_for_exited_container_with_mount_flag_does_not_predict_a_directory() -> None:
    obs = observation(target(missing()), ctr=container("exited"), mount=bind(from_binds=False))
    d = verdict_of(obs)
    assert d.verdict is Verdict.MISSING
    assert "directory" not in d.reason


def test_missing_on_host_while_running_container_still_holds_the_old_socket() -> None:
    old = sock(DESTINATION, ino=303)
    obs = observation(target(missing(), view=view(DESTINATION, old)))
    d = verdict_of(obs)
    assert d.verdict is Verdict.MISSING
    assert "web still holds the old socket (inode 303)" in d.reason


# shadowed -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [0.0, 0.4, -3.0, SHADOW_WINDOW_SECONDS])
def test_shadowed_empty_root_dir_made_at_start_says_docker_created_it(offset: float) -> None:
    d_stat = directory(entries=0, uid=0, mtime=STARTED + offset)
    obs = observation(target(d_stat), mount=bind(from_binds=True))
    d = verdict_of(obs)
    assert d.verdict is Verdict.SHADOWED
    assert "Docker created it" in d.reason
    assert "web started with a -v mount of a missing path" in d.reason
    assert "EADDRINUSE" in d.reason
    assert d.shadow_created_at == STARTED + offset


def test_shadowed_empty_root_dir_far_from_start_does_not_claim_docker_created_it() -> None:
    d_stat = directory(entries=0, uid=0, mtime=STARTED - 3600)
    d = verdict_of(observation(target(d_stat), mount=bind(from_binds=True)))
    assert d.verdict is Verdict.SHADOWED
    assert "Docker created it" not in d.reason
    assert "empty root-owned directory" in d.reason
    assert d.shadow_created_at is None


def test_shadowed_just_outside_the_window_does_not_claim_docker_created_it() -> None:
    d_stat = directory(entries=0, uid=0, mtime=STARTED + SHADOW_WINDOW_SECONDS + 0.5)
    d = verdict_of(observation(target(d_stat), mount=bind(from_binds=True)))
    assert d.verdict is Verdict.SHADOWED
    assert d.shadow_created_at is None


def test_shadowed_non_empty_directory_counts_its_entries() -> None:
    d_stat = directory(entries=3, uid=1000, mtime=STARTED)
    d = verdict_of(observation(target(d_stat)))
    assert d.verdict is Verdict.SHADOWED
    assert "3 entries" in d.reason
    assert "0755 1000:0" in d.reason
    assert "Docker created it" not in d.reason
    assert d.shadow_created_at is None


def test_shadowed_unlistable_directory_says_unreadable() -> None:
    d = verdict_of(observation(target(directory(entries=None, uid=1000))))
    assert d.verdict is Verdict.SHADOWED
    assert "unreadable" in d.reason


def test_shadowed_by_a_user_owned_empty_directory_is_not_blamed_on_docker() -> None:
    d = verdict_of(observation(target(directory(entries=0, uid=1000, mtime=STARTED))))
    assert d.verdict is Verdict.SHADOWED
    assert "Docker" not in d.reason
    assert "empty" in d.reason


def test_shadowed_with_mount_flag_is_not_blamed_on_docker() -> None:
    d = verdict_of(observation(target(directory(entries=0, mtime=STARTED)), mount=bind(from_binds=False)))
    assert d.verdict is Verdict.SHADOWED
    assert "Docker" not in d.reason


# detached -------------------------------------------------------------------------------------------------------------


def test_detached_when_the_container_sees_an_older_inode() -> None:
    host = sock(ino=2002)
    old = sock(DESTINATION, ino=1001)
    d = verdict_of(observation(target(host, host_probe=probe_ok(), view=view(DESTINATION, old))))
    assert d.verdict is Verdict.DETACHED
    assert f"{HOST_SOURCE} is now inode 2002" in d.reason
    assert "web still sees inode 1001 at /run/app.sock" in d.reason
    assert "re-created after the container started" in d.reason
    assert "(deleted)" not in d.reason


def test_detached_names_a_deleted_old_inode() -> None:
    host = sock(ino=2002)
    gone = replace(sock(DESTINATION, ino=1001), nlink=0)
    d = verdict_of(observation(target(host, host_probe=probe_ok(), view=view(DESTINATION, gone))))
    assert d.verdict is Verdict.DETACHED
    assert "inode 1001 (deleted)" in d.reason


def test_detached_when_the_container_view_is_missing() -> None:
    host = sock(ino=2002)
    d = verdict_of(observation(target(host, host_probe=probe_ok(), view=view(DESTINATION, missing(DESTINATION)))))
    assert d.verdict is Verdict.DETACHED
    assert "inode 2002" in d.reason
    assert f"web sees nothing at {DESTINATION}" in d.reason


def test_detached_same_inode_number_on_another_device_is_still_detached() -> None:
    host = sock(ino=2002)
    other_dev = replace(sock(DESTINATION, ino=2002), dev=1)
    d = verdict_of(observation(target(host, host_probe=probe_ok(), view=view(DESTINATION, other_dev))))
    assert d.verdict is Verdict.DETACHED


def test_an_unreadable_container_view_is_unknown_not_detached() -> None:
    host = sock(ino=2002)
    broken = view(DESTINATION, PathStat(path=DESTINATION, kind=Kind.ERROR, error="EACCES"))
    d = verdict_of(observation(target(host, host_probe=probe_ok(), view=broken)))
    assert d.verdict is Verdict.UNKNOWN
    assert "EACCES" in d.reason


def test_an_unreadable_container_view_of_a_socket_dir_is_not_detached() -> None:
    obs = dir_obs(entry("a.sock", host_probe=probe_ok()))
    broken = view("/run/app", PathStat(path="/run/app", kind=Kind.ERROR, error="EACCES"))
    d = verdict_of(replace(obs, target=replace(obs.target, view=broken)))
    assert d.verdict is not Verdict.DETACHED
    assert "inode 0" not in d.reason


# denied ---------------------------------------------------------------------------------------------------------------


def test_denied_for_uid_1000_on_a_0600_root_socket() -> None:
    host = sock(mode=0o600, uid=0, gid=0)
    obs = observation(
        target(host, host_probe=probe_ok(), view=same_inode_view(host)),
        creds=Creds(uid=1000, gid=1000),
        creds_note="uid 1000 gid 1000",
    )
    d = verdict_of(obs)
    assert d.verdict is Verdict.DENIED
    assert "web runs as uid 1000 gid 1000" in d.reason
    assert "0600 0:0" in d.reason
    assert "write permission" in d.reason
    assert "only its owner's uid (0) can connect, so --group-add would not help" in d.reason


def test_denied_on_a_root_docker_0660_socket_suggests_the_socket_gid() -> None:
    host = sock(mode=0o660, uid=0, gid=999)
    obs = observation(target(host, host_probe=probe_ok(), view=same_inode_view(host)), creds=Creds(1000, 1000))
    d = verdict_of(obs)
    assert d.verdict is Verdict.DENIED
    assert "uid 1000 gid 1000" in d.reason  # no note given: the numbers are used
    assert "--group-add 999" in d.reason


def test_group_match_through_supplementary_groups_passes() -> None:
    host = sock(mode=0o660, uid=0, gid=999)
    obs = observation(
        target(host, host_probe=probe_ok(), view=same_inode_view(host)), creds=Creds(1000, 1000, groups=(10, 999))
    )
    assert verdict_of(obs).verdict is Verdict.LIVE


def test_root_in_the_container_is_never_denied() -> None:
    host = sock(mode=0o600, uid=1234, gid=1234)
    obs = observation(target(host, host_probe=probe_ok(), view=same_inode_view(host)), creds=Creds(0, 0))
    assert verdict_of(obs).verdict is Verdict.LIVE


def test_denied_when_a_parent_directory_has_no_search_permission() -> None:
    host = sock(mode=0o666)
    parents = (
        PathStat(path="/", kind=Kind.DIRECTORY, mode=0o755),
        PathStat(path="/run", kind=Kind.DIRECTORY, mode=0o755),
        PathStat(path="/run/secret", kind=Kind.DIRECTORY, mode=0o700, uid=0, gid=0),
    )
    obs = observation(
        target(
            host,
            host_probe=probe_ok(),
            view=same_inode_view(host, "/run/secret/app.sock", parents=parents),
            container_path="/run/secret/app.sock",
        ),
        mount=bind(destination="/run/secret/app.sock"),
        creds=Creds(1000, 1000),
        creds_note="uid 1000 gid 1000 (app)",
    )
    d = verdict_of(obs)
    assert d.verdict is Verdict.DENIED
    assert "cannot search /run/secret (0700 0:0)" in d.reason
    assert "on the way to /run/secret/app.sock" in d.reason
    assert "uid 1000 gid 1000 (app)" in d.reason


def test_denied_checked_against_the_host_socket_for_a_stopped_container() -> None:
    obs = observation(
        target(sock(mode=0o600), host_probe=probe_ok()), ctr=container("exited"), creds=Creds(uid=1000, gid=1000)
    )
    assert verdict_of(obs).verdict is Verdict.DENIED


def test_denied_when_the_host_probe_gets_eacces() -> None:
    host = sock(mode=0o600, uid=1234, gid=1234)
    d = verdict_of(observation(target(host, host_probe=probe_failed("EACCES"), view=same_inode_view(host))))
    assert d.verdict is Verdict.DENIED
    assert "EACCES" in d.reason
    assert "0600 1234:1234" in d.reason


def test_denied_when_the_probe_through_the_container_view_gets_eacces() -> None:
    host = sock()
    seen = same_inode_view(host, probe=probe_failed("EACCES"))
    d = verdict_of(observation(target(host, host_probe=probe_ok(), view=seen)))
    assert d.verdict is Verdict.DENIED
    assert "container's view got EACCES" in d.reason


# not-socket -----------------------------------------------------------------------------------------------------------


def test_not_socket_for_a_regular_file() -> None:
    d = verdict_of(observation(target(regular_file(mode=0o644), host_probe=probe_failed("ECONNREFUSED"))))
    assert d.verdict is Verdict.NOT_SOCKET
    assert "a regular file (0644 0:0)" in d.reason


def test_not_socket_for_a_fifo() -> None:
    d = verdict_of(observation(target(fifo())))
    assert d.verdict is Verdict.NOT_SOCKET
    assert "FIFO" in d.reason


def test_not_socket_for_a_symlink_says_it_is_not_followed() -> None:
    d = verdict_of(observation(target(symlink(target="/var/run/docker.sock"))))
    assert d.verdict is Verdict.NOT_SOCKET
    assert "a symlink to /var/run/docker.sock, not followed" in d.reason


def test_not_socket_for_a_character_device() -> None:
    dev = PathStat(path=HOST_SOURCE, kind=Kind.CHAR_DEVICE, mode=0o666)
    d = verdict_of(observation(target(dev)))
    assert d.verdict is Verdict.NOT_SOCKET
    assert "character device" in d.reason


# unknown --------------------------------------------------------------------------------------------------------------


def test_unknown_for_a_remote_engine_names_the_endpoint_and_the_path() -> None:
    obs = observation(target(None), engine=remote_engine("tcp://10.0.0.5:2376"))
    d = verdict_of(obs)
    assert d.verdict is Verdict.UNKNOWN
    assert "tcp://10.0.0.5:2376 is remote" in d.reason
    assert HOST_SOURCE in d.reason


def test_remote_engine_wins_over_any_host_observation() -> None:
    obs = observation(target(sock(), host_probe=probe_failed("ECONNREFUSED")), engine=remote_engine())
    assert verdict_of(obs).verdict is Verdict.UNKNOWN


@pytest.mark.parametrize(
    "source", ["/run/host-services/ssh-auth.sock", "/host_mnt/Users/me/app.sock", "/run/desktop/mnt/x.sock"]
)
def test_unknown_for_a_docker_desktop_vm_path(source: str) -> None:
    obs = observation(target(sock(source)), engine=desktop_engine(), mount=bind(source, "/run/ssh.sock"))
    d = verdict_of(obs)
    assert d.verdict is Verdict.UNKNOWN
    assert "exists only inside Docker Desktop's VM" in d.reason
    assert source in d.reason


def test_unknown_for_a_missing_path_on_docker_desktop() -> None:
    d = verdict_of(observation(target(missing()), engine=desktop_engine()))
    assert d.verdict is Verdict.UNKNOWN
    assert "Docker Desktop" in d.reason


def test_a_missing_path_without_docker_desktop_is_missing_not_unknown() -> None:
    assert verdict_of(observation(target(missing()))).verdict is Verdict.MISSING


def test_unknown_when_lstat_fails() -> None:
    d = verdict_of(observation(target(lstat_error(error="EACCES"))))
    assert d.verdict is Verdict.UNKNOWN
    assert f"cannot lstat {HOST_SOURCE}: EACCES" in d.reason


def test_unknown_when_the_host_was_not_looked_at() -> None:
    d = verdict_of(observation(target(None)))
    assert d.verdict is Verdict.UNKNOWN
    assert "not looked at" in d.reason


def test_unknown_when_the_backlog_is_full() -> None:
    host = sock()
    d = verdict_of(observation(target(host, host_probe=probe_failed("EAGAIN"), view=same_inode_view(host))))
    assert d.verdict is Verdict.UNKNOWN
    assert "EAGAIN" in d.reason
    assert "backlog is full" in d.reason


def test_unknown_for_an_unexpected_connect_error_names_it() -> None:
    host = sock()
    obs = observation(target(host, host_probe=probe_failed("ETIMEDOUT", "timed out"), view=same_inode_view(host)))
    d = verdict_of(obs)
    assert d.verdict is Verdict.UNKNOWN
    assert "ETIMEDOUT: timed out" in d.reason


def test_unknown_when_the_running_container_view_is_unavailable() -> None:
    why = "no permission to look into /proc/31337/root (run socktui as root, or as the container's uid)"
    obs = observation(target(sock(), host_probe=probe_ok(), view=view(DESTINATION, None, unavailable=why)))
    d = verdict_of(obs)
    assert d.verdict is Verdict.UNKNOWN
    assert "accepts connections" in d.reason
    assert "web's view cannot be checked" in d.reason
    assert "/proc/31337/root" in d.reason


def test_unknown_when_the_running_container_was_not_looked_into() -> None:
    d = verdict_of(observation(target(sock(), host_probe=probe_ok(), view=None)))
    assert d.verdict is Verdict.UNKNOWN
    assert "not looked into" in d.reason


def test_unknown_when_only_the_container_side_probe_fails() -> None:
    host = sock()
    seen = same_inode_view(host, probe=probe_failed("ECONNREFUSED"))
    d = verdict_of(observation(target(host, host_probe=probe_ok(), view=seen)))
    assert d.verdict is Verdict.UNKNOWN
    assert "from web's view connect() got ECONNREFUSED" in d.reason


# socket-dir -----------------------------------------------------------------------------------------------------------


def test_socket_dir_with_all_live_entries_is_ok_and_names_them() -> None:
    obs = dir_obs(entry("a.sock", host_probe=probe_ok()), entry("b.sock", host_probe=probe_ok()))
    d = verdict_of(obs)
    assert d.verdict is Verdict.OK
    assert "2 sockets inside, all live: a.sock, b.sock" in d.reason


def test_socket_dir_with_one_live_entry_uses_the_singular() -> None:
    d = verdict_of(dir_obs(entry("only.sock", host_probe=probe_ok())))
    assert d.verdict is Verdict.OK
    assert "1 socket inside, all live: only.sock" in d.reason


def test_socket_dir_with_one_stale_entry_takes_that_entrys_verdict() -> None:
    stale = entry("b.sock", host_probe=probe_failed("ECONNREFUSED"), ino=8888)
    obs = dir_obs(entry("a.sock", host_probe=probe_ok()), stale)
    d = verdict_of(obs)
    assert d.verdict is Verdict.STALE
    assert "1 of 2 sockets inside is not live; b.sock:" in d.reason
    assert "ECONNREFUSED" in d.reason
    assert "inode 8888" in d.reason
    assert decide_entry(stale, obs).verdict is Verdict.STALE
    assert decide_entry(obs.entries[0], obs).verdict is Verdict.LIVE


def test_socket_dir_reports_the_worst_of_several_bad_entries() -> None:
    gone = entry("gone.sock", missing(f"{DIR_SOURCE}/gone.sock"))
    stale = entry("stale.sock", host_probe=probe_failed("ECONNREFUSED"))
    d = verdict_of(dir_obs(gone, stale))
    assert d.verdict is Verdict.STALE
    assert "2 of 2 sockets inside are not live; stale.sock:" in d.reason


def test_socket_dir_entry_that_is_missing_or_a_directory() -> None:
    gone = entry("gone.sock", missing(f"{DIR_SOURCE}/gone.sock"))
    obs = dir_obs(gone)
    d = decide_entry(gone, obs)
    assert d.verdict is Verdict.MISSING
    assert f"no socket at {DIR_SOURCE}/gone.sock" in d.reason
    sub = entry("sub.sock", directory(f"{DIR_SOURCE}/sub.sock", entries=0))
    d = decide_entry(sub, dir_obs(sub))
    assert d.verdict is Verdict.NOT_SOCKET  # inside a socket-dir a directory is not a Docker shadow
    assert "a directory" in d.reason


def test_socket_dir_without_sockets_is_missing() -> None:
    d = verdict_of(dir_obs())
    assert d.verdict is Verdict.MISSING
    assert f"no sockets in {DIR_SOURCE}" in d.reason


def test_socket_dir_re_created_on_the_host_is_detached() -> None:
    host_dir = directory(DIR_SOURCE, entries=1, ino=601)
    obs = dir_obs(entry("a.sock", host_probe=probe_ok()), host_dir=host_dir)
    obs = replace(obs, target=replace(obs.target, view=view("/run/app", directory("/run/app", ino=600))))
    d = verdict_of(obs)
    assert d.verdict is Verdict.DETACHED
    assert "inode 601" in d.reason
    assert "directory inode 600" in d.reason


def test_socket_dir_whose_source_is_now_a_socket_is_judged_as_a_file_mount() -> None:
    host = sock(DIR_SOURCE)
    obs = replace(dir_obs(), target=target(host, host_probe=probe_failed("ECONNREFUSED"), container_path="/run/app"))
    assert verdict_of(obs).verdict is Verdict.STALE


def test_socket_dir_with_unreadable_source_is_unknown() -> None:
    obs = replace(dir_obs(), target=target(lstat_error(DIR_SOURCE, "ELOOP"), container_path="/run/app"))
    d = verdict_of(obs)
    assert d.verdict is Verdict.UNKNOWN
    assert "ELOOP" in d.reason


# role other -----------------------------------------------------------------------------------------------------------


def test_role_other_gives_no_verdict() -> None:
    obs = observation(target(directory("/data", entries=12)), mount=bind("/data", "/data"), role=Role.OTHER)
    assert decide(obs) is None


# ordering -------------------------------------------------------------------------------------------------------------


def test_a_directory_never_reads_as_stale_even_if_a_probe_said_econnrefused() -> None:
    d_stat = directory(entries=0, mtime=STARTED + 1)
    d = verdict_of(observation(target(d_stat, host_probe=probe_failed("ECONNREFUSED"))))
    assert d.verdict is Verdict.SHADOWED
    assert "ECONNREFUSED" not in d.reason


def test_a_regular_file_never_reads_as_stale() -> None:
    d = verdict_of(observation(target(regular_file(), host_probe=probe_failed("ECONNREFUSED"))))
    assert d.verdict is Verdict.NOT_SOCKET


def test_detached_wins_over_a_live_host_probe_and_a_listener() -> None:
    host = sock(ino=2002)
    obs = observation(
        target(
            host,
            host_probe=probe_ok(api="docker"),
            view=view(DESTINATION, sock(DESTINATION, ino=1001)),
            listener=Listener(pid=1, command="server"),
        )
    )
    assert verdict_of(obs).verdict is Verdict.DETACHED


def test_detached_wins_over_denied() -> None:
    host = sock(ino=2002, mode=0o600)
    obs = observation(
        target(host, host_probe=probe_ok(), view=view(DESTINATION, sock(DESTINATION, ino=1001, mode=0o600))),
        creds=Creds(1000, 1000),
    )
    assert verdict_of(obs).verdict is Verdict.DETACHED


def test_stale_wins_over_denied() -> None:
    host = sock(mode=0o600)
    obs = observation(
        target(host, host_probe=probe_failed("ECONNREFUSED"), view=same_inode_view(host)), creds=Creds(1000, 1000)
    )
    assert verdict_of(obs).verdict is Verdict.STALE


# what the verdict feeds: fix offers and the mount report ------------------------------------------------------------


def _ids(offers: tuple[FixOffer, ...]) -> list[str]:
    return [o.id for o in offers]


def test_fix_offers_follow_the_verdict() -> None:
    v_mount = bind(from_binds=True)
    flag_mount = bind(from_binds=False)
    assert _ids(fixes.offers(Verdict.SHADOWED, v_mount, Role.SOCKET)) == [
        "remove-shadow-dir",
        "start-server-first",
        "use-mount-flag",
    ]
    assert "use-mount-flag" not in _ids(fixes.offers(Verdict.SHADOWED, flag_mount, Role.SOCKET))
    assert _ids(fixes.offers(Verdict.STALE, v_mount, Role.SOCKET)) == ["remove-stale-socket", "start-server-first"]
    assert _ids(fixes.offers(Verdict.DETACHED, v_mount, Role.SOCKET)) == [
        "reattach-socket",
        "restart-container",
        "mount-parent-dir",
    ]
    assert _ids(fixes.offers(Verdict.DETACHED, v_mount, Role.SOCKET_DIR)) == ["reattach-socket", "restart-container"]
    assert _ids(fixes.offers(Verdict.UNSTARTABLE, v_mount, Role.SOCKET)) == ["repair-mount-point"]
    assert _ids(fixes.offers(Verdict.DENIED, v_mount, Role.SOCKET)) == ["group-add"]
    for healthy in (Verdict.LIVE, Verdict.OK, Verdict.UNKNOWN, None):
        assert fixes.offers(healthy, v_mount, Role.SOCKET) == ()


def test_report_for_a_shadowed_mount_carries_the_creation_time_and_fixes() -> None:
    obs = observation(target(directory(entries=0, mtime=STARTED + 1)))
    report = report_for(obs)
    assert report.verdict is Verdict.SHADOWED
    assert report.shadow_created_by_docker_at == STARTED + 1
    assert report.fixes[0].id == "remove-shadow-dir"
    assert report.fixes[0].destructive is True


def test_report_for_a_socket_dir_lists_each_socket_with_its_own_verdict() -> None:
    obs = dir_obs(entry("a.sock", host_probe=probe_ok()), entry("b.sock", host_probe=probe_failed("ECONNREFUSED")))
    report = report_for(obs)
    assert report.verdict is Verdict.STALE
    assert [(s.name, s.verdict) for s in report.sockets] == [("a.sock", Verdict.LIVE), ("b.sock", Verdict.STALE)]
    assert report.sockets[1].host_path == f"{DIR_SOURCE}/b.sock"


def test_report_for_role_other_has_no_verdict_and_no_fixes() -> None:
    other = MountSpec(type="volume", source="/var/lib/docker/volumes/x/_data", destination="/data")
    report = report_for(observation(target(directory("/data", entries=3)), mount=other, role=Role.OTHER))
    assert report.verdict is None
    assert report.reason == ""
    assert report.fixes == ()


# liveness from the socket tables (no connect) -------------------------------------------------------------------------


def _bound(liveness: Liveness, **kw: object) -> SocketState:
    defaults: dict[str, object] = {
        "sock_type": "stream",
        "queued": 3,
        "backlog": 128,
        "socket_inode": 99,
        "looked_in": 1,
    }
    if liveness not in (Liveness.LISTENING, Liveness.NOT_ACCEPTING):
        defaults = {"looked_in": 1}
    return SocketState(liveness=liveness, **{**defaults, **kw})  # type: ignore[arg-type]


def test_a_listener_bound_to_the_file_is_live_with_its_backlog_and_no_connect() -> None:
    host = sock()
    listener = Listener(pid=77, command="/usr/sbin/app --serve", container="api")
    obs = observation(target(host, view=same_inode_view(host), bound=_bound(Liveness.LISTENING), listener=listener))
    d = verdict_of(obs)
    assert d.verdict is Verdict.LIVE
    assert "listening (3 of 128 waiting)" in d.reason
    assert "pid 77 /usr/sbin/app --serve in api listens" in d.reason
    assert "connect" not in d.reason


def test_a_socket_file_nobody_is_bound_to_is_stale_without_a_connect() -> None:
    obs = observation(target(sock(), view=same_inode_view(sock()), bound=_bound(Liveness.UNBOUND, looked_in=3)))
    d = verdict_of(obs)
    assert d.verdict is Verdict.STALE
    assert "no socket is bound to" in d.reason and "3 network namespaces" in d.reason
    assert "ECONNREFUSED" not in d.reason  # nobody was connected to


def test_a_full_accept_queue_is_unknown_not_accepting() -> None:
    bound = _bound(Liveness.NOT_ACCEPTING, queued=129, backlog=128)
    d = verdict_of(observation(target(sock(), view=same_inode_view(sock()), bound=bound)))
    assert d.verdict is Verdict.UNKNOWN
    assert "129 of 128 waiting" in d.reason and "not accepting" in d.reason


def test_a_datagram_server_is_live() -> None:
    d = verdict_of(observation(target(sock(), view=same_inode_view(sock()), bound=_bound(Liveness.BOUND))))
    assert d.verdict is Verdict.LIVE and "datagram socket is bound" in d.reason


def test_an_unreadable_namespace_without_a_connect_is_unknown_and_with_a_refused_one_stale() -> None:
    unseen = _bound(Liveness.UNSEEN, unreadable=2)
    d = verdict_of(observation(target(sock(), view=same_inode_view(sock()), bound=unseen)))
    assert d.verdict is Verdict.UNKNOWN and "2 network namespaces" in d.reason
    refused = target(sock(), view=same_inode_view(sock()), bound=unseen, host_probe=probe_failed("ECONNREFUSED"))
    assert verdict_of(observation(refused)).verdict is Verdict.STALE
    answered = target(sock(), view=same_inode_view(sock()), bound=unseen, host_probe=probe_ok())
    d = verdict_of(observation(answered))
    assert d.verdict is Verdict.LIVE and "cannot read" in d.reason


def test_an_engine_api_socket_is_recognised_by_its_listener_not_its_name() -> None:
    host = sock("/srv/x/control")
    dockerd = Listener(pid=812, command="/usr/bin/dockerd -H fd://")
    obs = observation(
        target(host, view=same_inode_view(host), bound=_bound(Liveness.LISTENING), listener=dockerd),
        mount=bind("/srv/x/control", "/run/control"),
    )
    assert "Docker API socket" in verdict_of(obs).reason
    impostor = Listener(pid=9, command="/usr/bin/python3 fake-docker.sock")
    named = observation(
        target(
            sock("/run/docker.sock"),
            view=same_inode_view(sock("/run/docker.sock")),
            bound=_bound(Liveness.LISTENING),
            listener=impostor,
        ),
        mount=bind("/run/docker.sock", "/run/docker.sock"),
    )
    assert "API" not in verdict_of(named).reason


def test_detached_still_wins_over_a_live_listener() -> None:
    host = sock()
    old = sock(DESTINATION, ino=HOST_INO - 1)
    d = verdict_of(observation(target(host, view=view(DESTINATION, old), bound=_bound(Liveness.LISTENING))))
    assert d.verdict is Verdict.DETACHED
