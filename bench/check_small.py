"""``socktui check --json`` with a handful of containers: wall time (median, p95), CPU time and import time.

    .venv/bin/python bench/check_small.py                     # 5 containers, 15 runs
    .venv/bin/python bench/check_small.py --compare DIR/src   # the same, interleaved with another tree's socktui

Issue 15's target is 0.25 s for 5 containers, and most of it is Python start-up and imports, so on a shared 2-core
machine the wall time is noisy: the CPU time of each run (user + sys, from ``wait4``) is printed beside it, and with
``--compare`` the two trees run alternately so that the load hits both alike. Runs as root: it starts a private
dockerd through the test harness, with one container per socket, each socket a listener held by this script; all of
it is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
from common import SOCKTUI, log, percentile

import harness


@dataclass
class Series:
    name: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.name:>8}: wall median {statistics.median(self.wall):.3f} s, p95 {percentile(self.wall, 95):.3f} s, "
            f"min {min(self.wall):.3f} s; CPU (user+sys) median {statistics.median(self.cpu):.3f} s "
            f"({len(self.wall)} runs)"
        )


def environment(src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
    env.pop("SOCKTUI_DEBUG", None)
    if src:
        env["PYTHONPATH"] = src
    return env


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes, int]:
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, out, proc.returncode


def import_total(env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median and min over ``runs`` of the summed self times in ``-X importtime`` for ``import socktui.cli.main``."""
    totals = []
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import socktui.cli.main"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stderr
        totals.append(
            sum(
                int(line.split("|")[0].split(":")[1])
                for line in err.splitlines()
                if line.startswith("import time:") and "[us]" not in line
            )
        )
    return statistics.median(totals) / 1e6, min(totals) / 1e6


PROFILE = """
import cProfile, io, pstats, sys, time
profile = cProfile.Profile(time.process_time)
profile.enable()
from socktui.cli.main import main
sys.stdout = io.StringIO()
main(["check", "--json", "-H", sys.argv[1]])
profile.disable()
sys.stdout = sys.__stdout__
stats = pstats.Stats(profile)
stats.sort_stats("cumulative").print_stats(45)
stats.sort_stats("tottime").print_stats(25)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="containers, each mounting one live socket")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--compare", metavar="SRC", help="another tree's src/ to time alternately (e.g. before)")
    parser.add_argument("--profile", action="store_true", help="also profile one check (CPU time, cProfile)")
    args = parser.parse_args(argv)

    trees = {"this": environment(None)}
    if args.compare:
        trees["compare"] = environment(args.compare)
    for env in trees.values():  # cache bytecode, as an installed package has it
        subprocess.run([sys.executable, "-m", "compileall", "-q", env.get("PYTHONPATH") or "src"], env=env, check=False)

    root = Path(tempfile.mkdtemp(prefix="sc-", dir="/tmp"))
    daemon = harness.PrivateDaemon()
    listeners: list[socket.socket] = []
    client: docker.APIClient | None = None
    try:
        daemon.start()
        client = docker.APIClient(base_url=daemon.host, version="auto", timeout=120)
        image = harness.build_test_image(client)
        for i in range(args.n):
            path = root / f"app{i}.sock"
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(path))
            listener.listen(16)
            listeners.append(listener)
            host_config = client.create_host_config(network_mode="none", binds=[f"{path}:/run/app.sock"])
            cid = client.create_container(image=image, command=harness.TRAP, name=f"sc-{i}", host_config=host_config)
            client.start(cid["Id"])
        log(f"{args.n} running containers on {daemon.host}, each mounting a live socket")

        argv = [SOCKTUI, "check", "--json", "-H", daemon.host]
        series = {name: Series(name) for name in trees}
        for name, env in trees.items():  # warm-up and correctness
            _, _, out, code = run_once(argv, env)
            doc = json.loads(out)
            verdicts = sorted(m["verdict"] for c in doc["containers"] for m in c["mounts"])
            log(f"{name}: exit {code}, {len(doc['containers'])} containers, verdicts {verdicts}")
        baseline = Series("docker ps")
        for r in range(args.runs):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))
            for name in order:
                wall, cpu, _, _ = run_once(argv, trees[name])
                series[name].wall.append(wall)
                series[name].cpu.append(cpu)
            wall, cpu, _, _ = run_once(["docker", "-H", daemon.host, "ps", "-a"], environment(None))
            baseline.wall.append(wall)
            baseline.cpu.append(cpu)
        print(f"socktui check --json -H {daemon.host}, N = {args.n}, load average {os.getloadavg()}")
        for s in [*series.values(), baseline]:
            print(s.line())
        if args.profile:
            subprocess.run([sys.executable, "-c", PROFILE, daemon.host], env=trees["this"], check=False)
        for name, env in trees.items():
            median, least = import_total(env, args.runs)
            print(f"{name:>8}: -X importtime, import socktui.cli.main: median {median:.3f} s, min {least:.3f} s")
    finally:
        for listener in listeners:
            listener.close()
        if client is not None:
            client.close()
        daemon.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
