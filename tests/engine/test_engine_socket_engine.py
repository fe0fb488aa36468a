"""The engine's own socket, judged when the engine cannot be reached (issue 11, item 4), for real.

A private dockerd's socket path is made into each state the issue names: a directory (dockerd then refuses to start:
"can't create unix socket ...: is a directory", seen here from dockerd itself), a stale socket left by a killed
dockerd, nothing at all. ``socktui check`` must say which on stderr (exit 2) with the fix that applies,
``socktui fix --engine-socket`` must list and apply it (after which dockerd starts), and the TUI's banner must say
the same. The permission case (a user outside the socket's group) is reliability/test_engine_faults.py's, with the
verdict checked there too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Static

from harness import PrivateDaemon, engine_from_env, wait_for
from socktui.demo.daemon import mountpoints_under, pids_mentioning, unmount_under
from socktui.session import Options, make_session
from socktui.ui.app import SocktuiApp

pytestmark = pytest.mark.engine


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A private dockerd's directory (kept short: its sockets live under it). Whatever is left is stopped."""
    if engine_from_env().kind != "private":
        pytest.fail("these tests start their own dockerd")
    path = Path(tempfile.mkdtemp(prefix="st-es-"))
    try:
        yield path
    finally:
        for pid in pids_mentioning(str(path)):
            os.kill(pid, signal.SIGKILL)
        # A killed dockerd leaves its data root mounted, under the next one's: unmount until nothing is left.
        for _ in range(5):
            if not mountpoints_under(path):
                break
            unmount_under(path)
        shutil.rmtree(path, ignore_errors=True)


def socktui(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "socktui.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def dockerd_once(workdir: Path) -> subprocess.CompletedProcess[str]:
    """Start dockerd on ``workdir`` as the harness does, expecting it to give up at once."""
    return subprocess.run(PrivateDaemon().command(workdir), capture_output=True, text=True, timeout=60)


def url(workdir: Path) -> str:
    return f"unix://{workdir / 'docker.sock'}"


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_a_directory_where_docker_sock_belongs_is_shadowed_and_removing_it_lets_dockerd_start(
    workdir: Path, tmp_path: Path
) -> None:
    shadow = workdir / "docker.sock"
    shadow.mkdir()
    refused = dockerd_once(workdir)  # the failure itself, from dockerd
    assert refused.returncode != 0 and f"can't create unix socket {shadow}: is a directory" in refused.stderr

    checked = socktui("check", "-H", url(workdir))
    assert checked.returncode == 2 and checked.stdout == ""
    err = one_line(checked.stderr)
    assert f"cannot reach the engine at {url(workdir)} (--host): shadowed: a directory (empty, root-owned" in err
    assert "dockerd cannot start" in err and "nothing is listening" not in err
    fix = f"sudo socktui fix -H {url(workdir)} --engine-socket remove-shadow-dir"
    assert fix in err

    listed = socktui("fix", "-H", url(workdir), "--engine-socket")
    assert listed.returncode == 0, listed.stderr
    assert f"engine socket {shadow}: shadowed" in listed.stdout and "remove-shadow-dir" in listed.stdout
    dry = socktui("fix", "-H", url(workdir), "--engine-socket", "remove-shadow-dir", "--dry-run")
    assert dry.returncode == 0 and "dry run: nothing was changed" in dry.stdout and shadow.is_dir()

    env = {**os.environ, "SOCKTUI_AUDIT_LOG": str(tmp_path / "actions.log")}
    applied = socktui("fix", "-H", url(workdir), "--engine-socket", "remove-shadow-dir", "--yes", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"[done] removed the empty directory {shadow}" in applied.stdout
    assert not shadow.exists()
    assert '"fix": "remove-shadow-dir"' in (tmp_path / "actions.log").read_text()

    with PrivateDaemon(workdir=workdir) as daemon:  # the daemon starts now
        assert socktui("check", "-H", daemon.host).returncode == 0


def test_a_non_empty_directory_is_shadowed_but_never_removed(workdir: Path) -> None:
    shadow = workdir / "docker.sock"
    shadow.mkdir()
    (shadow / "keep").write_text("someone's\n")
    err = one_line(socktui("check", "-H", url(workdir)).stderr)
    assert "shadowed: a directory (1 entry, root-owned" in err and "will not remove it" in err
    refused = socktui("fix", "-H", url(workdir), "--engine-socket", "remove-shadow-dir", "--yes")
    assert refused.returncode == 1
    assert (shadow / "keep").read_text() == "someone's\n"


def test_a_killed_dockerd_leaves_a_stale_socket_which_the_next_dockerd_replaces(workdir: Path) -> None:
    daemon = PrivateDaemon(workdir=workdir).start()
    os.kill(daemon.pid, signal.SIGKILL)
    wait_for(lambda: daemon._proc is not None and daemon._proc.poll() is not None, timeout=20, message="dockerd")
    for pid in pids_mentioning(str(workdir)):  # its containerd, which outlives it
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pids_mentioning(str(workdir)), timeout=20, message="containerd to go")
    sock = workdir / "docker.sock"
    assert sock.is_socket()

    checked = socktui("check", "-H", url(workdir))
    assert checked.returncode == 2
    err = one_line(checked.stderr)
    assert "stale: a socket file nobody listens on" in err and "dockerd stopped without removing it" in err
    assert "it replaces the stale file itself" in err
    assert "no fix socktui can apply" in socktui("fix", "-H", url(workdir), "--engine-socket").stdout

    # The killed containerd's runtime state would stop the next one (a host's /run starts clean); the stale
    # docker.sock stays, which is the point.
    subprocess.run(["umount", "-R", "-l", str(workdir / "exec")], capture_output=True, check=False)
    shutil.rmtree(workdir / "exec", ignore_errors=True)
    assert sock.is_socket()
    with PrivateDaemon(workdir=workdir) as again:  # as the advice says: a new dockerd replaces the stale file
        assert socktui("check", "-H", again.host).returncode == 0


def test_nothing_at_the_path_is_missing_not_only_nothing_listening(workdir: Path) -> None:
    err = one_line(socktui("check", "-H", url(workdir)).stderr)
    assert f"missing: nothing at {workdir / 'docker.sock'}: dockerd is not running" in err
    assert "Start the daemon" in err


def _plain(widget: Static) -> str:
    return one_line(str(widget.render()))


async def test_the_tui_banner_says_shadowed_and_names_the_fix_then_clears_once_fixed(workdir: Path) -> None:
    shadow = workdir / "docker.sock"
    shadow.mkdir()
    app = SocktuiApp(make_session(Options(host=url(workdir))))
    async with app.run_test(size=(100, 30)) as pilot:
        banner = app.query_one("#banner", Static)
        for _ in range(400):
            if banner.display and "shadowed" in _plain(banner):
                break
            await pilot.pause(0.05)
        text = _plain(banner)
        assert text.startswith("Retrying in the background.")
        assert "shadowed: a directory (empty, root-owned" in text and "dockerd cannot start" in text
        assert "--engine-socket remove-shadow-dir" in text

        fixed = await asyncio.to_thread(
            socktui, "fix", "-H", url(workdir), "--engine-socket", "remove-shadow-dir", "-y"
        )
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        daemon = await asyncio.to_thread(PrivateDaemon(workdir=workdir).start)
        try:
            for _ in range(600):
                if not banner.display and app.report is not None:
                    break
                await pilot.pause(0.05)
            assert not banner.display and app.report is not None
        finally:
            await asyncio.to_thread(daemon.stop)
