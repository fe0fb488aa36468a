"""Compose projects made by the real tools: Debian's docker-compose 1.29.2 against the private dockerd (through
DOCKER_HOST) and podman-compose 1.0.3 against the private Podman service (it drives the podman CLI on the same
storage). socktui must name the compose that made each container, and its recreate command must work as printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import TRAP, Engine, SocketServers, wait_for
from socktui.compose import ComposeInfo, Flavour, bind_volume_yaml

pytestmark = pytest.mark.engine


@pytest.fixture
def project_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="st-compose-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found is not None, f"{name} is needed (.ci/run installs it from Debian)"
    return found


def compose_file(where: Path, image: str, volume: str, *, network_none: bool) -> Path:
    network = "    network_mode: none\n" if network_none else ""
    text = (
        'version: "3.8"\n'
        "services:\n"
        "  web:\n"
        f"    image: {image}\n"
        f"    command: {json.dumps(TRAP)}\n"
        f"{network}"
        "    volumes:\n"
        f"{volume}\n"
    )
    path = where / "docker-compose.yml"
    path.write_text(text)
    return path


def run(argv: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 180) -> None:
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{argv} exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


def check(engine: Engine) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "socktui.cli", "check", "--json", "-H", engine.host],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode in (0, 1), proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def container_of(doc: dict[str, Any], project: str) -> dict[str, Any]:
    mine = [c for c in doc["containers"] if (c["compose"] or {}).get("project") == project]
    assert len(mine) == 1, [c["name"] for c in doc["containers"]]
    found: dict[str, Any] = mine[0]
    return found


def check_text(engine: Engine) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "socktui.cli", "check", "-H", engine.host],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return proc.stdout


# --------------------------------------------------------------------------- docker-compose 1.x


def test_docker_compose_v1_project_and_its_recreate_command(
    engine: Engine, sockserver: SocketServers, project_dir: Path
) -> None:
    server = sockserver.start(project_dir / "app.sock")
    compose_file(project_dir, engine.image, f"      - {server.path}:/run/app.sock", network_none=True)
    project = f"st{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DOCKER_HOST": engine.host}
    env.pop("DOCKER_CONTEXT", None)
    run([tool("docker-compose"), "-p", project, "up", "-d"], env, cwd=project_dir)
    try:
        c = container_of(check(engine), project)
        files = [str(project_dir / "docker-compose.yml")]
        assert c["compose"] == {
            "project": project,
            "service": "web",
            "working_dir": str(project_dir),
            "config_files": files,  # docker-compose 1.x labels it relative; made absolute from the working dir
            "flavour": "docker-compose",
            "version": "1.29.2",
            "recreate": f"cd {project_dir} && docker-compose -p {project} -f {files[0]} up -d --force-recreate web",
        }
        assert c["mounts"][0]["verdict"] == "live"
        assert f"compose: {project}/web (docker-compose in {project_dir};" in check_text(engine)

        # The command works as printed, from anywhere: the container is recreated (a new id) and is live again.
        old_id = c["id"]
        run(["sh", "-c", c["compose"]["recreate"]], env, cwd=Path("/"))
        again = container_of(check(engine), project)
        assert again["id"] != old_id and again["state"] == "running"
        assert again["mounts"][0]["verdict"] == "live"
    finally:
        run([tool("docker-compose"), "-p", project, "down", "-t", "1"], env, cwd=project_dir)


def test_docker_compose_v1_rejects_create_host_path_and_accepts_socktuis_snippet(
    engine: Engine, project_dir: Path
) -> None:
    env = {**os.environ, "DOCKER_HOST": engine.host}
    v1 = ComposeInfo("p", "web", str(project_dir), (), Flavour.V1, "1.29.2")
    v2 = ComposeInfo("p", "web", str(project_dir), (), Flavour.V2, "2.24.5")
    src, dst = str(project_dir / "app.sock"), "/run/app.sock"

    compose_file(project_dir, engine.image, bind_volume_yaml(v2, src, dst), network_none=True)
    rejected = subprocess.run(
        [tool("docker-compose"), "config", "-q"], env=env, cwd=project_dir, capture_output=True, text=True, check=False
    )
    assert rejected.returncode != 0 and "create_host_path" in rejected.stderr, rejected.stderr

    compose_file(project_dir, engine.image, bind_volume_yaml(v1, src, dst), network_none=True)
    run([tool("docker-compose"), "config", "-q"], env, cwd=project_dir)


# --------------------------------------------------------------------------- podman-compose


def test_podman_compose_shadow_is_attributed_to_it_and_its_recreate_command_works(
    podman_engine: Engine, sockserver: SocketServers, project_dir: Path
) -> None:
    assert podman_engine.podman is not None
    sock = project_dir / "app.sock"
    compose_file(project_dir, podman_engine.image, f"      - {sock}:/run/app.sock", network_none=False)
    project = f"st{uuid.uuid4().hex[:8]}"
    env = podman_engine.podman.podman_env()
    run([tool("podman-compose"), "-p", project, "up", "-d"], env, cwd=project_dir)
    try:
        assert sock.is_dir()  # podman-compose made it with mkdir (podman run itself would have refused)
        c = container_of(check(podman_engine), project)
        files = [str(project_dir / "docker-compose.yml")]
        assert c["compose"]["flavour"] == "podman-compose"
        assert (c["compose"]["project"], c["compose"]["service"], c["compose"]["config_files"]) == (
            project,
            "web",
            files,
        )
        assert c["compose"]["recreate"] == (
            f"cd {project_dir} && podman-compose -p {project} -f {files[0]} up -d --force-recreate web"
        )
        m = c["mounts"][0]
        assert m["verdict"] == "shadowed"
        assert "podman-compose created it" in m["reason"] and "mkdir" in m["reason"], m["reason"]
        assert "use-mount-flag" not in [f["id"] for f in m["fixes"]]

        # With the directory gone and the server up, the printed command brings the service back, live.
        sock.rmdir()
        sockserver.start(sock)
        old_id = c["id"]
        run(["sh", "-c", c["compose"]["recreate"]], env, cwd=Path("/"))
        again = wait_for(lambda: (x := container_of(check(podman_engine), project))["id"] != old_id and x, timeout=60)
        assert again["state"] == "running"
        assert again["mounts"][0]["verdict"] == "live", again["mounts"][0]["reason"]
    finally:
        run([tool("podman-compose"), "-p", project, "down", "-t", "1"], env, cwd=project_dir)
