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

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_BIN = REPO / ".venv" / "bin"
SOCKTUI = str(VENV_BIN / "socktui")
SOCKFARM = BENCH / "sockfarm.py"

sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(BENCH))


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
