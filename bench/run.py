"""socktui benchmarks: one-shot check, start-up, reaction time, cost at rest beside lazydocker, bursts, Podman.

    make bench                       # N = 5, 200, 1000, then Podman (about 20 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick        # N = 5, 200, fewer samples, then Podman (a few minutes)
    .venv/bin/python bench/run.py --only podman  # `check` on a private Podman service with 10 containers

Runs as root with docker.io, podman and busybox-static installed (as .ci/run provides): it starts its own dockerd
through the test harness, builds the busybox test image, grows one scenario 5 -> 200 -> 1000 containers and measures
at each size; then it starts a private Podman service with 10 of the scenario's containers. lazydocker, measured at
rest beside socktui, is installed on first use into bench/_work (its own virtualenv, from PyPI). Everything it starts
(daemons, containers, socket servers, proxies, TUIs, lazydocker) is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import docker  # noqa: E402  (after common: it puts tests/ on sys.path)
import lazydocker  # noqa: E402
from common import (
    BENCH,
    SOCKTUI,
    TARGETS,
    Farm,
    Reaper,
    Summary,
    docker_cli_look,
    foreign_heavy_processes,
    loadavg,
    log,
    proc_cpu_seconds,
    timed,
)
from live import Fixtures, run_live  # noqa: E402
from onpodman import measure_podman  # noqa: E402
from ptyapp import TtyApp  # noqa: E402
from rest import at_rest  # noqa: E402
from scenario import TRAP, Scenario  # noqa: E402

import harness  # noqa: E402

# Issue 15's targets are common.TARGETS (bench/writeup.py checks each run against them); the plan follows them.
CHURN_PERIOD_S = 0.1
DOCKER_PARTS = ("oneshot", "startup", "live", "rest", "churn")
PARTS = (*DOCKER_PARTS, "podman")


@dataclass
class Plan:
    sizes: list[int]
    oneshot_runs: dict[int, int]
    startup_runs: int
    samples: int
    stale_samples: int
    bursts: int
    rest_sizes: list[int]
    rest_seconds: float
    rest_settle: float
    podman_runs: int


def rest_sizes(sizes: list[int]) -> list[int]:
    """At rest (socktui, then lazydocker) at every size the targets name or above; the largest size when none is."""
    floor = min(TARGETS.rest_sizes)
    return [n for n in sizes if n >= floor] or [max(sizes)]


def make_plan(quick: bool, sizes: list[int] | None) -> Plan:
    small = TARGETS.oneshot_small_n
    if quick:
        chosen = sizes or [small, 200]
        return Plan(chosen, {n: 5 for n in chosen}, 3, 10, 5, 2, rest_sizes(chosen), 20, 3, 7)
    chosen = sizes or [small, 200, 1000]
    runs = {n: (15 if n <= 10 else 10 if n <= 200 else 7) for n in chosen}
    return Plan(chosen, runs, 5, 30, 12, 5, rest_sizes(chosen), 60, 5, 7)


@dataclass
class SizeResults:
    n: int
    oneshot_check_s: list[float] = field(default_factory=list)
    oneshot_baseline_s: list[float] = field(default_factory=list)
    oneshot_check_rc: int = -1
    oneshot_connects: list[int] = field(default_factory=list)  # connections the farm's servers accepted per check
    oneshot_containers: int = -1
    startup_s: list[float] = field(default_factory=list)
    startup_paint_s: list[float] = field(default_factory=list)
    startup_verdicts_s: list[float] = field(default_factory=list)
    live: dict[str, Any] = field(default_factory=dict)
    rest: dict[str, Any] = field(default_factory=dict)
    lazydocker: dict[str, Any] = field(default_factory=dict)  # the same at-rest measurement, of lazydocker
    churn: dict[str, Any] = field(default_factory=dict)
    load: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    background_busy_pct: float = math.nan


# --------------------------------------------------------------------------- 1. one-shot


def measure_oneshot(host: str, n: int, runs: int, out: SizeResults, farm: Farm) -> None:
    check = [SOCKTUI, "check", "--json", "-H", host]
    _, first = timed(check)  # warm-up (bytecode, page cache), also the correctness check
    doc = json.loads(first.stdout)
    out.oneshot_check_rc = first.returncode
    out.oneshot_containers = len(doc["containers"])
    if out.oneshot_containers != n:
        raise RuntimeError(f"socktui check listed {out.oneshot_containers} containers, expected {n}")
    docker_cli_look(host)
    for r in range(runs):
        # Interleaved, alternating which goes first, so drift and caching hit both alike.
        order = ("check", "baseline") if r % 2 == 0 else ("baseline", "check")
        for which in order:
            if which == "check":
                accepted = farm.accepts()
                took, done = timed(check)
                out.oneshot_connects.append(farm.accepts() - accepted)
                if done.returncode not in (0, 1):
                    raise RuntimeError(f"socktui check failed: {done.stderr.decode()[-500:]}")
                out.oneshot_check_s.append(took)
            else:
                out.oneshot_baseline_s.append(docker_cli_look(host))
    c, b = Summary.of(out.oneshot_check_s), Summary.of(out.oneshot_baseline_s)
    log(
        f"  one-shot N={n}: check {c.median:.2f} s, baseline {b.median:.2f} s, ratio {c.median / b.median:.2f}, "
        f"connects to listening servers per check {max(out.oneshot_connects, default=0)}"
    )


# --------------------------------------------------------------------------- 2. start-up


def measure_startup(host: str, n: int, runs: int, reaper: Reaper, out: SizeResults) -> None:
    pattern = rb"\D%d containers" % n
    for _ in range(runs):
        tui = TtyApp([SOCKTUI, "-H", host]).start()
        reaper.add(tui.pid)
        try:
            paint = tui.wait_for(rb"looking at", 60)
            full = tui.wait_for(pattern, 120)
            # The list comes first (marked "checking"); the verdicts when the whole look is done.
            verdicts = tui.wait_for(rb"checked %d container" % n, 120)
            out.startup_paint_s.append(paint - tui.spawned_at)
            out.startup_s.append(full - tui.spawned_at)
            out.startup_verdicts_s.append(verdicts - tui.spawned_at)
        finally:
            reaper.discard(tui.pid)
            tui.stop()
        time.sleep(0.5)
    s = Summary.of(out.startup_s)
    log(f"  start-up N={n}: first full frame median {s.median:.2f} s (p95 {s.p95:.2f})")


# --------------------------------------------------------------------------- 4. at rest


def measure_rest(
    daemon_socket: str, root: Path, n: int, seconds: float, settle: float, reaper: Reaper
) -> dict[str, Any]:
    """socktui's TUI at rest, on a counting proxy (`bench/rest.py`)."""
    result = at_rest(
        [SOCKTUI, "-H", "{proxy}"],
        ready=rb"\D%d containers" % n,
        daemon_socket=daemon_socket,
        proxy_path=str(root / "px.sock"),
        n=n,
        seconds=seconds,
        settle=settle,
        reaper=reaper,
    )
    log(
        f"  at rest N={n}: socktui {result['cpu_pct']:.2f}% CPU, RSS max {result['rss_kb_max'] / 1024:.0f} MB, "
        f"{result['requests_window_count']} requests in {result['seconds']:.0f} s"
    )
    return result


def measure_lazydocker(
    daemon_socket: str, root: Path, n: int, seconds: float, settle: float, reaper: Reaper
) -> dict[str, Any]:
    """lazydocker at rest, measured like socktui (`bench/rest.py`); why not, when it cannot be run."""
    try:
        binary = lazydocker.ensure()
    except Exception as exc:
        log(f"  lazydocker not measured: {type(exc).__name__}: {exc}")
        return {"n": n, "error": f"could not install {lazydocker.PACKAGE}: {type(exc).__name__}: {exc}"}
    home = Path(tempfile.mkdtemp(prefix="ld-home-", dir=root))
    try:
        result = at_rest(
            [str(binary)],
            ready=lazydocker.READY,
            daemon_socket=daemon_socket,
            proxy_path=str(root / "px-ld.sock"),
            n=n,
            seconds=seconds,
            settle=settle,
            reaper=reaper,
            env=lazydocker.environment(home, "{proxy}"),
            cwd=str(home),
        )
    except Exception as exc:  # a crash or no list drawn: say why, keep the rest of the run
        log(f"  lazydocker not measured: {type(exc).__name__}: {str(exc)[:300]}")
        return {"n": n, "version": lazydocker.VERSION, "error": f"{type(exc).__name__}: {str(exc)[:1500]}"}
    finally:
        shutil.rmtree(home, ignore_errors=True)
    result["version"] = lazydocker.VERSION
    log(
        f"  at rest N={n}: lazydocker {result['cpu_pct']:.2f}% CPU, RSS max {result['rss_kb_max'] / 1024:.0f} MB, "
        f"{result['requests_window_count']} requests in {result['seconds']:.0f} s"
    )
    return result


# --------------------------------------------------------------------------- 4b. churn


class Churner:
    """A server that binds a socket and unlinks it again, over and over, in one socket dir (a busy container)."""

    def __init__(self, directory: Path, period: float) -> None:
        self.path = directory / "churn.sock"
        self.period = period
        self.cycles = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="churner", daemon=True)

    def start(self) -> Churner:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.bind(str(self.path))
                sock.listen(8)
                self._stop.wait(self.period / 2)
                os.unlink(self.path)
            self.cycles += 1
            self._stop.wait(self.period / 2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def measure_churn(
    client: docker.APIClient,
    image: str,
    host: str,
    root: Path,
    n: int,
    seconds: float,
    settle: float,
    reaper: Reaper,
) -> dict[str, Any]:
    """The TUI's CPU while one running container's shared directory gets a socket bound and unlinked every 0.1 s."""
    directory = root / "churn"
    directory.mkdir(parents=True, exist_ok=True)
    seed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    seed.bind(str(directory / "seed.sock"))
    seed.listen(8)
    hc = client.create_host_config(network_mode="none", binds=[f"{directory}:/run/churn"])
    cid = client.create_container(
        image=image, command=TRAP, name="rx-churn", labels={"socktui.bench": "fixture"}, host_config=hc
    )["Id"]
    client.start(cid)
    tui = TtyApp([SOCKTUI, "-H", host]).start()
    reaper.add(tui.pid)
    churner: Churner | None = None
    try:
        tui.wait_for(rb"\D%d containers" % (n + 1), 120)
        time.sleep(settle)
        pid = tui.pid
        quiet0 = proc_cpu_seconds(pid)
        time.sleep(seconds / 2)
        quiet_pct = (proc_cpu_seconds(pid) - quiet0) / (seconds / 2) * 100
        churner = Churner(directory, CHURN_PERIOD_S).start()
        time.sleep(1.0)  # the first cycles start the watcher's batches
        start = time.monotonic()
        cpu0 = proc_cpu_seconds(pid)
        cycles0 = churner.cycles
        time.sleep(seconds)
        cpu1 = proc_cpu_seconds(pid)
        end = time.monotonic()
        cycles = churner.cycles - cycles0
        result = {
            "n": n,
            "seconds": end - start,
            "period_s": CHURN_PERIOD_S,
            "cycles": cycles,
            "cpu_s": cpu1 - cpu0,
            "cpu_pct": (cpu1 - cpu0) / (end - start) * 100,
            "quiet_pct": quiet_pct,
        }
        log(
            f"  churn N={n}: {result['cpu_pct']:.1f}% CPU while {cycles} bind+unlink cycles in {end - start:.0f} s "
            f"({quiet_pct:.2f}% before)"
        )
        return result
    finally:
        if churner is not None:
            churner.stop()
        reaper.discard(tui.pid)
        tui.stop()
        seed.close()
        with contextlib.suppress(docker.errors.APIError):
            client.remove_container(cid, force=True)
        shutil.rmtree(directory, ignore_errors=True)


# --------------------------------------------------------------------------- environment


def machine_busy(seconds: float) -> float:
    """Percent of all CPUs busy over ``seconds`` (from /proc/stat), to show the load the scenario itself makes."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as fh:
            values = [int(x) for x in fh.readline().split()[1:9]]
        idle = values[3] + values[4]
        return sum(values) - idle, idle

    busy0, idle0 = sample()
    time.sleep(seconds)
    busy1, idle1 = sample()
    total = (busy1 - busy0) + (idle1 - idle0)
    return 100 * (busy1 - busy0) / total if total else math.nan


def versions(client: docker.APIClient | None) -> dict[str, str]:
    def pkg(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    def first_line(argv: list[str]) -> str:
        if shutil.which(argv[0]) is None:
            return "not installed"
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return (done.stdout.strip().splitlines() or ["?"])[0]

    found = {
        "python": platform.python_version(),
        "socktui": pkg("socktui"),
        "textual": pkg("textual"),
        "docker-py": pkg("docker"),
        "watchfiles": pkg("watchfiles"),
    }
    if client is not None:
        api = client.version().get("ApiVersion", "?")
        found["dockerd"] = f"{first_line(['dockerd', '--version'])} (API {api})"
    found["docker CLI"] = first_line(["docker", "--version"])
    found["podman"] = first_line(["podman", "--version"]).removeprefix("podman version ")
    return found


def machine() -> dict[str, str]:
    mem_kb = 0
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
    }


def git_rev() -> str:
    done = subprocess.run(["git", "-C", str(BENCH), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "?"


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    # The counting proxy holds two descriptors per stream it relays, and lazydocker opens a /stats stream per running
    # container: at N=1000 that is past the usual soft limit of 1024.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 5 and 200 only, fewer samples")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], help="e.g. 5,200")
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"comma-separated, from {','.join(PARTS)} (rest is socktui and lazydocker side by side)",
    )
    parser.add_argument("--out", default=str(BENCH / "RESULTS.md"), help="where to write the report")
    parser.add_argument("--json", default=str(BENCH / "results.json"), help="raw figures")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if only - set(PARTS):
        parser.error(f"--only: unknown {','.join(sorted(only - set(PARTS)))}; choose from {','.join(PARTS)}")
    if os.geteuid() != 0:
        print("bench: needs root (it starts its own dockerd and Podman service)", file=sys.stderr)
        return 2
    problem = harness.check_busybox()
    missing = [tool for tool in ("dockerd", "docker") if only & set(DOCKER_PARTS) and shutil.which(tool) is None]
    missing += ["podman"] if "podman" in only and shutil.which("podman") is None else []
    if problem or missing:
        print(
            f"bench: needs docker.io, podman and busybox-static: {problem or ', '.join(missing) + ' not on PATH'}",
            file=sys.stderr,
        )
        return 2
    plan = make_plan(args.quick, args.sizes)

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, on_term)

    began = time.monotonic()
    started_at = datetime.datetime.now(datetime.UTC)
    reaper = Reaper()
    meta: dict[str, Any] = {"machine": machine(), "git": git_rev()}
    results: list[SizeResults] = []
    podman: dict[str, Any] = {}
    try:
        if only & set(DOCKER_PARTS):
            results = run_docker(plan, only, reaper, meta)
        if "podman" in only:
            podman = measure_podman(TARGETS.podman_containers, plan.podman_runs, reaper)
    finally:
        reaper.kill_all()
    meta.setdefault("versions", versions(None))
    meta["wall_s"] = time.monotonic() - began
    meta["started_at"] = started_at.strftime("%Y-%m-%d %H:%M UTC")
    meta["quick"] = args.quick
    meta["parts"] = sorted(only, key=PARTS.index)
    meta["plan"] = plan.__dict__
    raw = {"meta": meta, "sizes": [r.__dict__ for r in results], "podman": podman}
    Path(args.json).write_text(json.dumps(raw, indent=1, default=str) + "\n")
    from writeup import target_rows, write_report

    write_report(raw, Path(args.out))
    for name, figure, ok in target_rows(raw):
        log(f"  target: {name}: {figure}: {'met' if ok else 'not measured' if ok is None else 'NOT MET'}")
    log(f"wrote {args.out} and {args.json} ({meta['wall_s'] / 60:.1f} min)")
    return 0


def run_docker(plan: Plan, only: set[str], reaper: Reaper, meta: dict[str, Any]) -> list[SizeResults]:
    """Every measurement on the private dockerd, size after size; the daemon and all it ran stopped in ``finally``."""
    daemon = harness.PrivateDaemon()
    root = Path(tempfile.mkdtemp(prefix="sb-", dir="/tmp"))
    farm: Farm | None = None
    fixtures: Fixtures | None = None
    results: list[SizeResults] = []
    try:
        log(f"starting a private dockerd; scenario under {root}")
        daemon.start()
        client = docker.APIClient(base_url=daemon.host, version="auto", timeout=120)
        image = harness.build_test_image(client)
        meta["versions"] = versions(client)
        farm = Farm()
        reaper.add(farm.pid)
        scenario = Scenario(client, image, root / "s", farm)
        for n in plan.sizes:
            log(f"== N = {n}")
            t0 = time.monotonic()
            scenario.grow(n)
            log(f"  grew to {n} in {time.monotonic() - t0:.0f} s")
            out = SizeResults(n)
            out.foreign = foreign_heavy_processes([daemon.pid])
            out.background_busy_pct = machine_busy(3.0)
            log(f"  machine busy {out.background_busy_pct:.0f}% of all cores with nothing measured (the containers)")
            out.load.append(f"start {loadavg()}")
            if "oneshot" in only:
                measure_oneshot(daemon.host, n, plan.oneshot_runs[n], out, farm)
            if "startup" in only:
                measure_startup(daemon.host, n, plan.startup_runs, reaper, out)
            if "live" in only:
                # The fixtures' sockets come from a server started now, after the containers: finding a new
                # listener then means scanning /proc past every container process, as after a real restart.
                fixture_farm = Farm()
                reaper.add(fixture_farm.pid)
                try:
                    fixtures = Fixtures(client, image, root / "r" / str(n), fixture_farm)
                    fixtures.setup()
                    live = asyncio.run(
                        run_live(
                            daemon.host,
                            fixtures,
                            fixture_farm,
                            reaper,
                            n,
                            plan.samples,
                            plan.stale_samples,
                            plan.bursts,
                        )
                    )
                    out.live = live.as_dict()
                except Exception as exc:  # keep going: the other measurements are still worth having
                    out.live = {"notes": [f"live measurements failed: {type(exc).__name__}: {exc}"]}
                    log(f"  live measurements failed: {type(exc).__name__}: {exc}")
                finally:
                    if fixtures is not None:
                        fixtures.teardown()
                        fixtures = None
                    fixture_farm.stop()
                    reaper.discard(fixture_farm.pid)
            if "rest" in only and n in plan.rest_sizes:
                rest_args = (str(daemon.socket_path), root, n, plan.rest_seconds, plan.rest_settle, reaper)
                out.rest = measure_rest(*rest_args)
                out.lazydocker = measure_lazydocker(*rest_args)
            if "churn" in only:
                out.churn = measure_churn(
                    client, image, daemon.host, root / "c" / str(n), n, plan.rest_seconds / 2, plan.rest_settle, reaper
                )
            out.load.append(f"end {loadavg()}")
            out.foreign = sorted(set(out.foreign) | set(foreign_heavy_processes([daemon.pid])))
            results.append(out)
        meta["scenario"] = scenario.describe()
    finally:
        log("cleaning up the dockerd run")
        reaper.kill_all()
        if fixtures is not None:
            with contextlib.suppress(Exception):
                fixtures.teardown()
        if farm is not None:
            farm.stop()
        t0 = time.monotonic()
        daemon.stop()
        log(f"  daemon stopped in {time.monotonic() - t0:.0f} s")
        shutil.rmtree(root, ignore_errors=True)
    return results


if __name__ == "__main__":
    sys.exit(main())
