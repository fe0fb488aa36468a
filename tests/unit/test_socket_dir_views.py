"""A shared directory whose container-side view cannot be had is never judged ``ok`` from the host side alone."""

from __future__ import annotations

from dataclasses import replace

from builders import DIR_DESTINATION, DIR_SOURCE, dir_obs, directory, entry, lstat_error, probe_ok, target, view

from socktui.diagnose import report_for
from socktui.model import Liveness, SocketState, Verdict

LISTENING = SocketState(liveness=Liveness.LISTENING)


def _live(name: str) -> object:
    return replace(entry(name, host_probe=probe_ok()), bound=LISTENING)


def test_a_socket_dir_whose_container_view_cannot_be_read_is_unknown_not_ok() -> None:
    host_dir = directory(DIR_SOURCE, entries=2, ino=600)
    obs = dir_obs(_live("a.sock"), _live("b.sock"), host_dir=host_dir)  # type: ignore[arg-type]
    healthy = report_for(obs)
    assert healthy.verdict is Verdict.OK  # the same directory, seen from inside: fine
    unreadable = replace(
        obs,
        target=target(
            host_dir, view=view(DIR_DESTINATION, lstat_error(DIR_DESTINATION, "EACCES")), container_path=DIR_DESTINATION
        ),
    )
    report = report_for(unreadable)
    assert report.verdict is Verdict.UNKNOWN, report.reason
    assert "cannot be read" in report.reason and "EACCES" in report.reason


def test_a_socket_dir_of_a_container_socktui_may_not_look_into_is_not_ok() -> None:
    host_dir = directory(DIR_SOURCE, entries=1, ino=600)
    why = "no permission to look into /proc/31337/root (run socktui as root, or as the container's uid)"
    hidden = replace(
        entry("a.sock", host_probe=probe_ok()), view=view(f"{DIR_DESTINATION}/a.sock", unavailable=why), bound=LISTENING
    )
    obs = dir_obs(hidden, host_dir=host_dir)
    obs = replace(
        obs, target=target(host_dir, view=view(DIR_DESTINATION, unavailable=why), container_path=DIR_DESTINATION)
    )
    report = report_for(obs)
    assert report.verdict is not Verdict.OK, report.reason
    assert report.verdict is Verdict.UNKNOWN
