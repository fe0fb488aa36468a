"""``socktui check`` on a local unix engine never loads docker-py, requests or urllib3 (issue 15: most of a one-shot
check was their import time). The run is the real CLI in a subprocess, against a fake engine on a unix socket, and
what it loaded is read from ``sys.modules`` as the interpreter exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from reliability_support import FakeEngine, FakeWorld, api_container, api_inspect, validate_document

HEAVY = ("docker", "requests", "urllib3")
# Not needed to speak HTTP over a unix socket either: http.client brings the email parser.
AVOIDED = ("http.client", "email.parser", "concurrent.futures")

PROGRAM = """
import atexit, json, os, sys

def report():
    with open(os.environ["LOADED_REPORT"], "w") as f:
        json.dump(sorted(sys.modules), f)

atexit.register(report)
from socktui.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def run_loaded(argv: list[str], report: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    env = dict(os.environ, LOADED_REPORT=str(report))
    env.pop("SOCKTUI_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
        check=False,
    )
    return proc, set(json.loads(report.read_text()))


def loaded_of(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m in roots or m.split(".")[0] in roots)


def test_check_json_on_a_unix_engine_loads_no_docker_py(tmp_path: Path) -> None:
    (tmp_path / "notes.sock").write_text("")
    mounts = [{"Type": "bind", "Source": str(tmp_path / "notes.sock"), "Destination": "/run/n.sock", "RW": True}]
    world = FakeWorld(
        version={"Version": "fake-1.41", "ApiVersion": "1.41", "MinAPIVersion": "1.12"},
        containers=[api_container(c * 64, f"c{i}", mounts) for i, c in enumerate("abcde")],
        inspect={c * 64: api_inspect(c * 64, f"c{i}", mounts) for i, c in enumerate("abcde")},
    )
    with FakeEngine(tmp_path / "fake.sock", world) as fake:
        proc, modules = run_loaded(["check", "--json", "-H", fake.url], tmp_path / "loaded.json")
    assert proc.returncode == 1, proc.stderr  # every mount is a regular file where a socket is expected
    doc = json.loads(proc.stdout)
    assert validate_document(doc) == []
    assert [c["mounts"][0]["verdict"] for c in doc["containers"]] == ["not-socket"] * 5
    # The whole check went through the engine: asked what it is, listed, inspected.
    assert world.requests[:3] == ["/_ping", "/version", "/v1.41/containers/json?all=1"]
    assert sorted(world.requests[3:]) == [f"/v1.41/containers/{c * 64}/json" for c in "abcde"]
    assert loaded_of(modules, HEAVY) == []
    assert loaded_of(modules, AVOIDED) == []


def test_the_command_line_imports_no_docker_py(tmp_path: Path) -> None:
    proc, modules = run_loaded(["--version"], tmp_path / "loaded.json")
    assert proc.returncode == 0 and proc.stdout.startswith("socktui "), proc.stderr
    assert loaded_of(modules, HEAVY) == []
    assert loaded_of(modules, AVOIDED) == []


def test_the_probe_sees_docker_py_when_it_is_loaded(tmp_path: Path) -> None:
    # A tcp:// endpoint goes through docker-py: the same probe must report it, or the tests above prove nothing.
    proc, modules = run_loaded(["check", "--json", "-H", "tcp://127.0.0.1:1"], tmp_path / "loaded.json")
    assert proc.returncode == 2, proc.stderr
    assert "nothing is listening there" in proc.stderr
    assert set(HEAVY) <= modules


def test_the_tui_imports_no_docker_py() -> None:
    program = "import sys, socktui.ui.app; print(sorted(m for m in sys.modules if m.split('.')[0] in sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", program, *HEAVY], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
