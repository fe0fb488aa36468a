"""``socktui check --explain`` on real situations: the picture names the real inodes and marks the real break."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from harness import TRAP, ContainerFactory, Engine, SocketServers

pytestmark = pytest.mark.engine


def check_explain(engine: Engine, name: str, encoding: str = "utf-8") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    env.pop("DOCKER_HOST", None)
    return subprocess.run(
        [sys.executable, "-m", "socktui.cli", "check", "--explain", "-H", engine.host, name],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_a_detached_mount_is_drawn_with_the_inode_the_container_still_holds(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    path = d / "metrics.sock"
    first = sockserver.start(path)
    name = f"st-{uuid.uuid4().hex[:10]}"
    containers.run(name=name, binds=[f"{path}:/run/metrics.sock"], command=TRAP)
    first.stop()
    second = sockserver.start(path)
    assert first.ident is not None and second.ident is not None
    old, new = first.ident[1], second.ident[1]

    done = check_explain(engine, name)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert f"             socket  inode {new}" in lines
    assert f"               ╳ still holds inode {old}, deleted" in lines
    assert f"             server  pid {second.pid} python sockserver.py {path}"[:80] in [
        ln[:80] for ln in lines
    ] or any(ln.startswith(f"             server  pid {second.pid} ") for ln in lines)
    assert "             inside  /run/metrics.sock" in lines

    plain = check_explain(engine, name, encoding="ascii")
    assert plain.returncode == 1, plain.stderr
    assert f"               X still holds inode {old}, deleted" in plain.stdout.splitlines()
    assert "╳" not in plain.stdout and "│" not in plain.stdout


def test_a_shadow_directory_is_drawn_with_the_time_docker_made_it(
    engine: Engine, containers: ContainerFactory, d: Path
) -> None:
    path = d / "app.sock"
    name = f"st-{uuid.uuid4().hex[:10]}"
    containers.run(name=name, binds=[f"{path}:/run/app.sock"], command=TRAP)
    assert path.is_dir()

    done = check_explain(engine, name)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    made = time.strftime("%H:%M:%S", time.localtime(path.stat().st_mtime))
    marked = [ln.removeprefix("               ╳ ") for ln in lines if ln.startswith("               ╳ ")]
    assert " ".join(marked) == f"Docker created this directory at {made} when {name} started"
    assert "             socket  none: an empty directory" in lines
