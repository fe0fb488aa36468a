"""``-H ssh://`` through the system ssh, as the docker CLI does: an sshd of our own on 127.0.0.1 with a generated key,
whose forced command is ``docker system dial-stdio`` to the private dockerd. The engine is then honestly remote:
its paths are another machine's, so nothing local is looked at.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import ContainerFactory, Engine, wait_for

pytestmark = pytest.mark.engine

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class SshEndpoint:
    url: str
    env: dict[str, str]  # PATH leads to an ``ssh`` that uses our config, key and known_hosts


@pytest.fixture
def ssh_to_engine(engine: Engine) -> Iterator[SshEndpoint]:
    for program in (SSHD, "ssh", "ssh-keygen", "docker"):
        assert shutil.which(program), f"{program} is needed (.ci/run installs openssh-server and docker.io)"
    docker_cli = shutil.which("docker")
    work = Path(tempfile.mkdtemp(prefix="st-ssh-"))
    os.chmod(work, 0o700)
    proc: subprocess.Popen[bytes] | None = None
    try:
        for key in ("host_key", "user_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / key)], check=True)
        forced = f'command="DOCKER_HOST={engine.host} {docker_cli} system dial-stdio",no-pty,no-agent-forwarding'
        (work / "authorized_keys").write_text(f"{forced} {(work / 'user_key.pub').read_text()}")
        port = free_port()
        (work / "sshd_config").write_text(
            f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {work / 'host_key'}\n"
            f"AuthorizedKeysFile {work / 'authorized_keys'}\nPidFile {work / 'sshd.pid'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "UsePAM no\nStrictModes no\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(work / "sshd_config")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

        def listening() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
            assert proc is not None and proc.poll() is None, proc.stderr.read() if proc and proc.stderr else ""
            return False

        wait_for(listening, timeout=15)
        host_pub = (work / "host_key.pub").read_text().split()
        (work / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
        (work / "ssh_config").write_text(
            f"Host 127.0.0.1\n  Port {port}\n  IdentityFile {work / 'user_key'}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {work / 'known_hosts'}\n  StrictHostKeyChecking yes\n  BatchMode yes\n"
        )
        # docker-py runs plain `ssh`; this one is the system ssh with our config (ssh reads ~ from passwd, not HOME).
        bindir = work / "bin"
        bindir.mkdir()
        wrapper = bindir / "ssh"
        wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F {work / "ssh_config"} "$@"\n')
        wrapper.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["PATH"] = f"{bindir}:{env.get('PATH', '/usr/bin:/bin')}"
        yield SshEndpoint(url=f"ssh://root@127.0.0.1:{port}", env=env)
    finally:
        if proc is not None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def test_ssh_endpoint_uses_the_system_ssh_and_is_remote(
    engine: Engine, containers: ContainerFactory, ssh_to_engine: SshEndpoint, tmp_path: Path
) -> None:
    (tmp_path / "app.sock").write_text("")  # locally a regular file: a local look would say not-socket
    name = f"st-{uuid.uuid4().hex[:10]}"
    containers.run(name=name, command=["sleep", "3600"], binds=[f"{tmp_path / 'app.sock'}:/run/app.sock"])
    proc = subprocess.run(
        [sys.executable, "-m", "socktui.cli", "check", "--json", "-H", ssh_to_engine.url, name],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=ssh_to_engine.env,
    )
    assert proc.returncode == 1, proc.stderr
    assert "paramiko" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["engine"]["endpoint"] == ssh_to_engine.url
    assert (doc["engine"]["local"], doc["engine"]["product"]) == (False, "docker")
    assert doc["engine"]["version"] == engine.client.version()["Version"]
    [c] = doc["containers"]
    [m] = c["mounts"]
    assert m["verdict"] == "unknown" and "is remote" in m["reason"], m["reason"]
    assert m["fixes"] == []


def test_an_ssh_endpoint_that_cannot_be_reached_says_what_ssh_said(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    proc = subprocess.run(
        [sys.executable, "-m", "socktui.cli", "check", "-H", f"ssh://root@127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert proc.returncode == 2
    assert "ssh said:" in proc.stderr and "Connection refused" in proc.stderr, proc.stderr
    assert f"ssh -l root -p {port} -- 127.0.0.1 docker version" in proc.stderr
    assert "paramiko" not in proc.stderr and "bug" not in proc.stderr
