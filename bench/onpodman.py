"""`socktui check --json` on Podman: a private rootful Podman service with the scenario's first 10 containers.

The service is the test harness's (`tests/harness.py` `open_podman`: its own socket, storage, run root, events log and
configuration, the busybox test image imported into it). The containers are `bench/scenario.py`'s mix, the same as on
the Docker daemon: half running, a quarter created, a quarter exited, each with two socket mounts (live file, socket
dir, shadowed file, stale file; Podman makes a missing bind source's directory at create). Their live sockets come
from a socket farm of their own.

``socktui check --json -H unix://<podman socket>`` is timed ``runs`` times after one warm-up, interleaved with the
docker CLI's look at the same socket (``docker ps -a -q`` + ``docker inspect`` of every id) for scale. The service,
its containers, the farm and the scenario's files are all removed in ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import SOCKTUI, Farm, Reaper, Summary, docker_cli_look, log, timed
from scenario import Scenario

import harness


def measure_podman(containers: int, runs: int, reaper: Reaper) -> dict[str, Any]:
    result: dict[str, Any] = {"containers": containers, "runs": runs, "check_s": [], "docker_cli_s": [], "notes": []}
    root = Path(tempfile.mkdtemp(prefix="sbp-", dir="/tmp"))
    farm: Farm | None = None
    began = time.monotonic()
    try:
        log(f"== Podman, {containers} containers: starting a private podman system service")
        with harness.open_podman() as engine:
            version = engine.client.version()
            result["podman"] = f"Podman {version.get('Version', '?')} (API {version.get('ApiVersion', '?')})"
            farm = Farm()
            reaper.add(farm.pid)
            scenario = Scenario(engine.client, engine.image, root / "s", farm)
            t0 = time.monotonic()
            scenario.grow(containers)
            result["grow_s"] = time.monotonic() - t0
            result["scenario"] = scenario.describe()
            check = [SOCKTUI, "check", "--json", "-H", engine.host]
            _, first = timed(check)  # warm-up, and the correctness check
            if first.returncode not in (0, 1):
                raise RuntimeError(f"socktui check failed ({first.returncode}): {first.stderr.decode()[-500:]}")
            doc = json.loads(first.stdout)
            result["check_rc"] = first.returncode
            result["listed"] = len(doc["containers"])
            result["product"] = doc["engine"].get("product")
            if result["listed"] != containers or result["product"] != "podman":
                raise RuntimeError(
                    f"socktui check listed {result['listed']} containers on {result['product']!r}, "
                    f"expected {containers} on 'podman'"
                )
            cli = shutil.which("docker") is not None
            if cli:
                try:
                    docker_cli_look(engine.host)
                except subprocess.CalledProcessError as exc:
                    cli = False
                    result["notes"].append(f"the docker CLI could not look at the Podman socket: {exc}")
            for r in range(runs):
                order = ("check", "cli") if r % 2 == 0 else ("cli", "check")
                for which in order:
                    if which == "check":
                        took, done = timed(check)
                        if done.returncode not in (0, 1):
                            raise RuntimeError(f"socktui check failed: {done.stderr.decode()[-500:]}")
                        result["check_s"].append(took)
                    elif cli:
                        result["docker_cli_s"].append(docker_cli_look(engine.host))
            c = Summary.of(result["check_s"])
            log(f"  Podman check N={containers}: median {c.median:.2f} s, p95 {c.p95:.2f} s ({c.n} runs)")
            log("  stopping the Podman service")
    except Exception as exc:  # the other parts of the bench are still worth writing up
        result["error"] = f"{type(exc).__name__}: {exc}"
        log(f"  Podman measurement failed: {result['error']}")
    finally:
        if farm is not None:
            farm.stop()
            reaper.discard(farm.pid)
        shutil.rmtree(root, ignore_errors=True)
        with contextlib.suppress(OSError):
            root.rmdir()
    result["wall_s"] = time.monotonic() - began
    return result
