"""The benchmark scenario: N containers, each with two socket-relevant mounts, on a private dockerd.

Container i is, by ``i % 4``: running, created, running, exited (so half run, a quarter were never started and a
quarter ran and exited). Its two mounts are, by ``(i + i // 4) % 4`` so that every state meets every pair:

    0: live socket file + socket dir        L = -v <root>/live/lNNNN.sock:/run/app.sock   (a farm socket)
    1: live socket file + shadowed file     D = -v <root>/dirs/dNN:/run/sockets           (dir with 2 farm sockets)
    2: socket dir + stale socket file       S = -v <root>/shadow/sNNNN.sock:/run/db.sock  (nothing there: Docker
    3: shadowed file + stale socket file        makes a directory at start; "missing" while only created)
                                            T = -v <root>/stale/tNNNN.sock:/run/old.sock  (bound, closed, left)

Growing from N to M only adds containers N..M-1, so measurements at 10, 200 and 1000 reuse the same containers.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import docker
from common import Farm, log

TRAP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
EXIT_AT_ONCE = ["sh", "-c", "exit 0"]
STATES = ("running", "created", "running", "exited")
PAIRS = (("L", "D"), ("L", "S"), ("D", "T"), ("S", "T"))
SOCKET_DIRS = 25
LABEL = {"socktui.bench": "1"}


@dataclass
class Scenario:
    client: docker.APIClient
    image: str
    root: Path
    farm: Farm
    workers: int = 8
    ids: list[str] = field(default_factory=list)
    states: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        for sub in ("live", "dirs", "shadow", "stale"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._dirs_made: set[int] = set()

    @property
    def n(self) -> int:
        return len(self.ids)

    def _mount(self, kind: str, i: int) -> tuple[str, str]:
        if kind == "L":
            return str(self.root / "live" / f"l{i:04d}.sock"), "/run/app.sock"
        if kind == "D":
            return str(self.root / "dirs" / f"d{i % SOCKET_DIRS:02d}"), "/run/sockets"
        if kind == "S":
            return str(self.root / "shadow" / f"s{i:04d}.sock"), "/run/db.sock"
        return str(self.root / "stale" / f"t{i:04d}.sock"), "/run/old.sock"

    def _prepare_host(self, first: int, last: int) -> None:
        """Bind the live sockets and leave the stale ones that containers first..last-1 will mount."""
        live: list[str] = []
        for i in range(first, last):
            for kind in PAIRS[(i + i // 4) % 4]:
                src, _ = self._mount(kind, i)
                if kind == "L":
                    live.append(src)
                elif kind == "D" and i % SOCKET_DIRS not in self._dirs_made:
                    os.makedirs(src, exist_ok=True)
                    live += [f"{src}/a.sock", f"{src}/b.sock"]
                    self._dirs_made.add(i % SOCKET_DIRS)
                elif kind == "T":
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                        s.bind(src)  # closed without unlink: a socket file nobody listens on
        if live:
            self.farm.bind(live)

    def _make(self, i: int) -> str:
        state = STATES[i % 4]
        binds = []
        for kind in PAIRS[(i + i // 4) % 4]:
            src, dst = self._mount(kind, i)
            binds.append(f"{src}:{dst}")
            self.kinds[kind] += 1
        hc = self.client.create_host_config(network_mode="none", binds=binds)
        command = EXIT_AT_ONCE if state == "exited" else TRAP
        cid: str = self.client.create_container(
            image=self.image, command=command, name=f"sb-{i:04d}", labels=LABEL, host_config=hc
        )["Id"]
        if state != "created":
            self.client.start(cid)
        return cid

    def grow(self, n: int) -> None:
        first = self.n
        if n <= first:
            return
        self._prepare_host(first, n)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            made = list(pool.map(self._make, range(first, n)))
        self.ids.extend(made)
        for i in range(first, n):
            self.states[STATES[i % 4]] += 1
        # "exited" containers run `exit 0`: wait until none of them is still on its way out.
        for cid in made:
            info = self.client.inspect_container(cid)
            if info["State"]["Status"] == "running" and info["Config"]["Cmd"] == EXIT_AT_ONCE:
                self.client.wait(cid, timeout=30)
        log(f"scenario now {self.n} containers: {dict(self.states)}; mounts {dict(self.kinds)}")

    def describe(self) -> str:
        return (
            f"{self.n} containers ({self.states['running']} running, {self.states['created']} created, "
            f"{self.states['exited']} exited), {2 * self.n} socket mounts "
            f"(live file {self.kinds['L']}, socket dir {self.kinds['D']}, shadowed {self.kinds['S']}, "
            f"stale {self.kinds['T']})"
        )
