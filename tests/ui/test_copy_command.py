"""What ``c`` copies is pasted into a shell: no byte of a name or path may end the command or start another."""

from __future__ import annotations

import os
import subprocess
import tempfile

from socktui.fixes import offers
from socktui.model import ContainerReport, ContainerSpec, MountReport, MountSpec, Role, Verdict
from socktui.ui.app import suggested_command

HOSTILE = "/srv/a b;$(touch /tmp/pwned)\nrm -rf ~ `x`'q.sock"


def _words(text: str) -> list[str]:
    """The words a shell makes of the copied text. bash, not shlex.split: a path with a newline or another control
    character is copied in bash's $'...' form, so that no raw newline is in the copied text at all. HOME is a
    scratch directory, so that even broken quoting could not reach the real one (HOSTILE holds ``rm -rf ~``)."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {"HOME": scratch, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        done = subprocess.run(["bash", "-c", "printf '%s\\0' " + text], capture_output=True, check=True, env=env)
    return done.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1]


def _report(verdict: Verdict | None, role: Role = Role.SOCKET) -> tuple[ContainerReport, MountReport]:
    spec = MountSpec(type="bind", source=HOSTILE, destination=HOSTILE, from_binds=True)
    mount = MountReport(mount=spec, role=role, verdict=verdict, reason="", fixes=offers(verdict, spec, role))
    container = ContainerSpec(id="ab" * 32, name="web", state="running", image="busybox", mounts=(spec,))
    return ContainerReport(container=container, mounts=(mount,)), mount


def test_the_fix_command_line_is_quoted_word_by_word() -> None:
    report, mount = _report(Verdict.DETACHED)  # restart-container: the only advice-free fix
    mount = MountReport(**{**mount.__dict__, "fixes": mount.fixes[:1]})
    text = suggested_command(report, mount, [report])
    assert _words(text) == ["socktui", "fix", "web", HOSTILE, mount.fixes[0].id]
    assert "\n" not in text


def test_a_bare_path_is_quoted_too() -> None:
    report, mount = _report(Verdict.LIVE)
    assert not mount.fixes
    assert _words(suggested_command(report, mount, [report])) == [HOSTILE]
