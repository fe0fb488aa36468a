"""Small shared pieces of the benchmark: statistics, the socket farm's client, process bookkeeping."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_BIN = REPO / ".venv" / "bin"
SOCKTUI = str(VENV_BIN / "socktui")
SOCKFARM = BENCH / "sockfarm.py"

sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(BENCH))


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Targets:
    """Issue 15's targets, which `bench/writeup.py` checks every run against (never a timed test)."""

    rest_sizes: tuple[int, ...] = (200, 1000)
    rest_cpu_pct: float = 0.5  # at rest: CPU < this, in % of one core
    rest_requests: int = 0  # at rest: engine requests in the window, at most
    rest_rss_mb: float = 100.0  # at rest: RSS max <= this
    oneshot_ratio_sizes: tuple[int, ...] = (200, 1000)
    oneshot_ratio: float = 1.0  # check --json / (docker ps -a + docker inspect all), medians, <= this
    oneshot_small_n: int = 5
    oneshot_small_s: float = 0.25  # check --json with 5 containers, median, <= this
    reaction_n: int = 1000
    fs_p95_ms: float = 50.0  # socket bound or unlinked -> frame, p95, <= this
    container_p95_ms: float = 100.0  # daemon's start/die event -> frame, p95, <= this
    first_frame_n: int = 1000
    first_frame_s: float = 0.6  # process start -> frame listing every container, median, <= this
    podman_containers: int = 10
    podman_check_s: float = 1.0  # check --json on Podman, median, < this


@dataclass(frozen=True)
class Secondary:
    """Earlier rounds' targets, still measured and shown, but not issue 15's."""

    first_frame_200_s: float = 0.8  # median, <= this
    stale_ms: float = 3000.0  # kill -9 of a listener -> STALE on screen, every sample, < this
    shadow_p95_ms: float = 100.0  # docker start with a missing -v source -> SHADOWED on screen, p95, < this
    churn_cpu_pct: float = 5.0  # a socket bound and unlinked every 0.1 s, < this


TARGETS = Targets()
SECONDARY = Secondary()


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): an observed value, never an interpolation."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p95: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        vals = [v for v in values if not math.isnan(v)]
        if not vals:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        return cls(len(vals), statistics.median(vals), percentile(vals, 95), min(vals), max(vals))

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "median": self.median, "p95": self.p95, "min": self.min, "max": self.max}


def ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    return f"{value:.1f} ms"


# --------------------------------------------------------------------------- one-shot timing


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    t0 = time.monotonic()
    done = subprocess.run(argv, capture_output=True, check=False)
    return time.monotonic() - t0, done


def docker_cli_look(host: str) -> float:
    """What a person types: list every id with the docker CLI, then one inspect with all of them."""
    t0 = time.monotonic()
    ids = subprocess.run(["docker", "-H", host, "ps", "-a", "-q"], capture_output=True, check=True, text=True)
    subprocess.run(["docker", "-H", host, "inspect", *ids.stdout.split()], capture_output=True, check=True)
    return time.monotonic() - t0


# --------------------------------------------------------------------------- the socket farm


class FarmError(RuntimeError):
    pass


class Farm:
    """A running ``sockfarm.py``: one process listening on many paths, driven over its stdin."""

    def __init__(self, paths_file: Path | None = None) -> None:
        argv = [sys.executable, str(SOCKFARM)]
        if paths_file is not None:
            argv += ["--paths-file", str(paths_file)]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        self._lock = threading.Lock()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("READY"):
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise FarmError(f"sockfarm did not start: {line!r} {err}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def command(self, verb: str, paths: Sequence[str] = ()) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self._lock:
            self.proc.stdin.write((" ".join([verb, *paths]) + "\n").encode())
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline().decode().split()
        if not reply or reply[0] != "OK":
            raise FarmError(f"sockfarm {verb} failed: {' '.join(reply) or 'no reply'}")
        return reply[1:]

    def bind(self, paths: Sequence[str], chunk: int = 200) -> tuple[float, float]:
        """Bind every path; (monotonic time just before the first bind(), just after the last)."""
        first = last = math.nan
        for start in range(0, len(paths), chunk):
            t0, t1 = (float(x) for x in self.command("bind", paths[start : start + chunk]))
            first = t0 if math.isnan(first) else first
            last = t1
        return first, last

    def accepts(self) -> int:
        """Connections the farm's servers have accepted so far (socktui's connects, and nothing else here)."""
        return int(self.command("accepts")[0])

    def unlink(self, paths: Sequence[str]) -> tuple[float, float]:
        t0, t1 = (float(x) for x in self.command("unlink", paths))
        return t0, t1

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


# --------------------------------------------------------------------------- processes


class Reaper:
    """Every process the benchmark starts, so that ``finally`` can end them all (by pid, never by name)."""

    def __init__(self) -> None:
        self.pids: set[int] = set()

    def add(self, pid: int) -> int:
        self.pids.add(pid)
        return pid

    def discard(self, pid: int) -> None:
        self.pids.discard(pid)

    def kill_all(self) -> None:
        for pid in sorted(self.pids):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)
        self.pids.clear()


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads, live and exited), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # After the ")" field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    return (int(fields[11]) + int(fields[12])) / ticks


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (from ``/proc/<pid>/task/<tid>/children``)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            with contextlib.suppress(OSError), open(f"/proc/{current}/task/{tid}/children", "rb") as fh:
                todo += [int(x) for x in fh.read().split()]
    return found


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and of its live descendants, plus the children each of them has reaped (cutime +
    cstime), in seconds. A helper that runs and exits within a window is counted when its parent reaps it."""
    total = 0
    for each in process_tree(pid):
        try:
            with open(f"/proc/{each}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def tree_rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` and its live descendants."""
    total = 0
    for each in process_tree(pid):
        with contextlib.suppress(OSError):
            total += proc_status_kb(each, "VmRSS")
    return total


def request_kind(method: str, path: str) -> str:
    """An API request without its query and with container ids folded: ``GET /v1.41/containers/<id>/json``."""
    path = path.split("?", 1)[0]
    parts = path.split("/")
    for i, part in enumerate(parts):
        if (
            i > 0
            and parts[i - 1] in ("containers", "images", "networks", "volumes", "exec")
            and part
            not in (
                "json",
                "create",
                "prune",
            )
        ):
            parts[i] = "<id>"
    return f"{method} {'/'.join(parts)}"


def count_kinds(requests: Iterable[Any]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for r in requests:
        key = request_kind(r.method, r.path)
        kinds[key] = kinds.get(key, 0) + 1
    return dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))


def proc_status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def loadavg() -> str:
    with open("/proc/loadavg", encoding="ascii") as fh:
        return " ".join(fh.read().split()[:3])


def foreign_heavy_processes(own: Iterable[int] = ()) -> list[str]:
    """Other test or benchmark runs on the machine (pytest, other dockerds): they skew timings on 2 cores."""
    mine = set(own) | {os.getpid()}
    seen = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if ("pytest" in cmd and "bench" not in cmd) or cmd.startswith("dockerd ") or "screenshots.py" in cmd:
            seen.append(f"{entry}: {cmd[:100]}")
    return seen
