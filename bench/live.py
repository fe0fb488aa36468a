"""Reaction time, burst and key latency, measured on the real app running headless in this process.

What is measured, precisely:

* ``t0`` is ``time.monotonic()`` taken just before the syscall or API call that changes the world: in the socket
  farm process right before ``bind()``/``unlink()``, here right before ``os.kill(pid, SIGKILL)`` or before docker-py
  sends ``POST /containers/<id>/start`` / ``/stop``.
* **state**: the moment the app's UI thread has *applied* the Monitor's update that shows the new verdict: right
  after Textual handled the ``Updated`` message (its ``message_signal``), the expected verdict is tested against
  ``app.report`` and ``time.monotonic()`` taken. The app is the real ``SocktuiApp``, not a subclass.
* **frame**: the first ``App._display`` call with a compositor update after that (Textual's refresh timer, at most
  1/60 s later, renders the dirty regions; headless, the update is computed and not written anywhere).
* keys: ``t0`` right before the key event is handed to the driver, end when ``ContainerList.cursor_row`` changed
  (polled every millisecond).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from common import Farm, Reaper, log
from textual import events
from textual.message import Message

from harness import SocketServer
from socktui.live import CALM_SECONDS
from socktui.model import CheckReport, ContainerReport, MountReport, Verdict
from socktui.session import Options, make_session
from socktui.ui.app import SocktuiApp
from socktui.ui.messages import Updated
from socktui.ui.widgets import ContainerList

TRAP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
Predicate = Callable[[CheckReport | None], bool]


@dataclass
class Waiter:
    predicate: Predicate
    state: asyncio.Future[float]
    frame: asyncio.Future[float]
    state_wall: float = math.nan


class BenchApp:
    """The real ``SocktuiApp`` (not a subclass) with instruments: when an expected verdict is applied, and the next
    frame. Attribute access falls through to the app, so the steps below read ``app.report`` as usual.

    * *state*: Textual publishes ``message_signal`` right after a message was handled; after each ``Updated`` the
      waiters' predicates are tested against ``app.report``.
    * *frame*: the instance's ``_display`` is wrapped: the first call with a compositor update after *state*.
    * handler time: from ``run_test``'s ``message_hook`` (called just before a message is handled) to the signal.
    """

    def __init__(self, app: SocktuiApp) -> None:
        self.app = app
        self.waiters: list[Waiter] = []
        self.updates = 0
        self.handler_ms: list[float] = []  # time the UI thread spends applying one Update
        self._began: float | None = None
        real_display = app._display

        def display(screen: Any, renderable: Any) -> None:
            real_display(screen, renderable)
            if renderable is not None:
                self._frame()

        app._display = display  # type: ignore[method-assign]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    def hook(self, message: Message) -> None:
        """``run_test(message_hook=...)``: a message is about to be handled."""
        if isinstance(message, Updated):
            self._began = time.perf_counter()

    def subscribe(self) -> None:
        self.app.message_signal.subscribe(self.app, self._handled, immediate=True)

    def _handled(self, message: Message) -> None:
        if not isinstance(message, Updated):
            return
        if self._began is not None:
            self.handler_ms.append((time.perf_counter() - self._began) * 1000)
            self._began = None
        self.updates += 1
        self._check_waiters()

    def _check_waiters(self) -> None:
        now = time.monotonic()
        wall = time.time()
        for w in self.waiters:
            if not w.state.done() and w.predicate(self.app.report):
                w.state_wall = wall
                w.state.set_result(now)

    def _frame(self) -> None:
        now = time.monotonic()
        for w in self.waiters:
            if w.state.done() and not w.frame.done():
                w.frame.set_result(now)


# --------------------------------------------------------------------------- predicates on app.report


def find(report: CheckReport | None, name: str) -> ContainerReport | None:
    if report is None:
        return None
    return next((c for c in report.containers if c.container.name == name), None)


def mount_at(report: CheckReport | None, name: str, destination: str) -> MountReport | None:
    c = find(report, name)
    if c is None:
        return None
    return next((m for m in c.mounts if m.mount.destination == destination), None)


def socket_verdict(report: CheckReport | None, name: str, destination: str, sock: str) -> Verdict | None:
    m = mount_at(report, name, destination)
    if m is None:
        return None
    return next((s.verdict for s in m.sockets if s.name == sock), None)


# --------------------------------------------------------------------------- results


@dataclass
class Series:
    state_ms: list[float] = field(default_factory=list)
    frame_ms: list[float] = field(default_factory=list)
    event_ms: list[float] = field(default_factory=list)  # daemon's event timestamp -> state (start/stop only)
    event_frame_ms: list[float] = field(default_factory=list)  # daemon's event timestamp -> frame
    timeouts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "state_ms": self.state_ms,
            "frame_ms": self.frame_ms,
            "event_ms": self.event_ms,
            "event_frame_ms": self.event_frame_ms,
            "timeouts": self.timeouts,
        }


@dataclass
class LiveResults:
    n: int
    extra_containers: int
    ready_s: float = math.nan
    series: dict[str, Series] = field(default_factory=dict)
    burst_ms: list[float] = field(default_factory=list)  # first bind -> all 200 live (state)
    burst_frame_ms: list[float] = field(default_factory=list)
    burst_bind_span_ms: list[float] = field(default_factory=list)  # first bind -> last bind, in the farm
    burst_timeouts: int = 0
    keys_idle_ms: list[float] = field(default_factory=list)
    keys_burst_ms: list[float] = field(default_factory=list)
    keys_lost: int = 0
    handler_ms: list[float] = field(default_factory=list)
    ghosts: list[str] = field(default_factory=list)  # removed containers the app still listed 15 s later
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "extra_containers": self.extra_containers,
            "ready_s": self.ready_s,
            "series": {k: v.as_dict() for k, v in self.series.items()},
            "burst_ms": self.burst_ms,
            "burst_frame_ms": self.burst_frame_ms,
            "burst_bind_span_ms": self.burst_bind_span_ms,
            "burst_timeouts": self.burst_timeouts,
            "keys_idle_ms": self.keys_idle_ms,
            "keys_burst_ms": self.keys_burst_ms,
            "keys_lost": self.keys_lost,
            "handler_ms": self.handler_ms,
            "ghosts": self.ghosts,
            "notes": self.notes,
        }


# --------------------------------------------------------------------------- the fixtures


class Fixtures:
    """The containers and sockets the reaction measurements act on, next to (not part of) the scenario."""

    BURST_DIRS = 4

    def __init__(self, client: docker.APIClient, image: str, root: Path, farm: Farm) -> None:
        self.client = client
        self.image = image
        self.root = root
        self.farm = farm
        self.ids: list[str] = []
        self.dir = root / "d1"  # bind / unlink happen here
        self.stale_dir = root / "d2"  # a server is killed here
        self.shadow_dir = root / "sh"  # missing -v sources, made into directories by Docker at start
        self.ss_sock = root / "ss.sock"  # the start/stop container's socket
        self.burst_dirs = [root / f"b{i}" for i in range(self.BURST_DIRS)]

    def _create(self, name: str, binds: list[str], start: bool) -> str:
        hc = self.client.create_host_config(network_mode="none", binds=binds)
        cid: str = self.client.create_container(
            image=self.image, command=TRAP, name=name, labels={"socktui.bench": "fixture"}, host_config=hc
        )["Id"]
        self.ids.append(cid)
        if start:
            self.client.start(cid)
        return cid

    def setup(self) -> None:
        for d in (self.dir, self.stale_dir, self.shadow_dir, *self.burst_dirs):
            d.mkdir(parents=True, exist_ok=True)
        seeds = [str(d / "seed.sock") for d in (self.dir, self.stale_dir, *self.burst_dirs)]
        self.farm.bind([*seeds, str(self.ss_sock)])
        self._create("rx-dir", [f"{self.dir}:/run/rx"], start=True)
        self._create("rx-stale", [f"{self.stale_dir}:/run/rx"], start=True)
        self.ss_id = self._create("rx-ss", [f"{self.ss_sock}:/run/app.sock"], start=False)
        self._create("rx-burst", [f"{d}:/run/b{i}" for i, d in enumerate(self.burst_dirs)], start=True)

    def new_shadow_container(self, k: int) -> str:
        return self._create(f"rx-sh{k:03d}", [f"{self.shadow_dir}/k{k:03d}.sock:/run/app.sock"], start=False)

    def remove(self, cid: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.client.remove_container(cid, force=True)
        if cid in self.ids:
            self.ids.remove(cid)

    def teardown(self) -> None:
        for cid in list(self.ids):
            with contextlib.suppress(docker.errors.APIError):
                self.remove(cid)


class EventLog:
    """The bench's own follower of the daemon's events, for the daemon-side timestamps of start and stop."""

    def __init__(self, host: str) -> None:
        self.client = docker.APIClient(base_url=host, version="auto")
        self.events: list[tuple[str, str, float]] = []  # (action, id, epoch seconds)
        self._stream = self.client.events(decode=True, filters={"type": "container"})
        self._thread = threading.Thread(target=self._run, name="bench-events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):
            for raw in self._stream:
                actor = raw.get("Actor") or {}
                self.events.append((str(raw.get("Action")), str(actor.get("ID")), int(raw.get("timeNano", 0)) / 1e9))

    def first(self, action: str, cid: str, after: float) -> float:
        for got_action, got_id, at in list(self.events):
            if got_action == action and got_id == cid and at >= after:
                return at
        return math.nan

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.close()
        self.client.close()


# --------------------------------------------------------------------------- measuring


async def expect(
    app: BenchApp,
    action: Callable[[], float],
    predicate: Predicate,
    *,
    timeout: float = 10.0,
    what: str = "",
) -> tuple[float, float, float, float]:
    """Run ``action`` (in a thread; it returns its t0) and wait for ``predicate``: (t0, state, frame, state_wall)."""
    loop = asyncio.get_running_loop()
    if predicate(app.report):
        raise RuntimeError(f"{what}: the expected state holds already before the action")
    waiter = Waiter(predicate, loop.create_future(), loop.create_future())
    app.waiters.append(waiter)
    try:
        t0 = await asyncio.to_thread(action)
        try:
            state = await asyncio.wait_for(asyncio.shield(waiter.state), timeout)
        except TimeoutError:
            return t0, math.nan, math.nan, math.nan
        try:
            frame = await asyncio.wait_for(asyncio.shield(waiter.frame), 1.0)
        except TimeoutError:
            frame = math.nan
        return t0, state, frame, waiter.state_wall
    finally:
        app.waiters.remove(waiter)


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.01)


def _add(series: Series, t0: float, state: float, frame: float) -> None:
    if math.isnan(state):
        series.timeouts += 1
        return
    series.state_ms.append((state - t0) * 1000)
    series.frame_ms.append((frame - t0) * 1000 if not math.isnan(frame) else math.nan)


async def press_and_time(app: BenchApp, key: str, timeout: float = 5.0) -> float:
    """Milliseconds from handing ``key`` to the driver until the container list's cursor moved; NaN if it never did."""
    table = app.query_one(ContainerList)
    before = table.cursor_row
    event = events.Key(key, key)
    event.set_sender(app)
    assert app._driver is not None
    t0 = time.monotonic()
    app._driver.send_message(event)
    end = t0 + timeout
    while table.cursor_row == before:
        if time.monotonic() > end:
            return math.nan
        await asyncio.sleep(0.001)
    return (time.monotonic() - t0) * 1000


async def run_live(
    host: str,
    fixtures: Fixtures,
    farm: Farm,
    reaper: Reaper,
    n: int,
    samples: int,
    stale_samples: int,
    bursts: int,
) -> LiveResults:
    results = LiveResults(n=n, extra_containers=len(fixtures.ids))
    app = BenchApp(SocktuiApp(make_session(Options(host=host))))
    expected_total = n + len(fixtures.ids)
    bench_events = EventLog(host)
    client = fixtures.client
    try:
        started = time.monotonic()
        async with app.app.run_test(size=(200, 50), message_hook=app.hook) as pilot:
            app.subscribe()
            await until(
                lambda: app.report is not None and len(app.report.containers) == expected_total,
                120,
                f"the first report with {expected_total} containers",
            )
            results.ready_s = time.monotonic() - started
            monitor = app.app.monitor
            await until(
                lambda: monitor.armed and monitor.sources is not None and bool(monitor.sources.dirs.watched), 30, "live"
            )
            await asyncio.sleep(1.0)  # let the watchers open their inotify watches and the re-prober its baseline
            log(f"  live app ready in {results.ready_s:.1f} s ({expected_total} containers)")

            steps = (
                ("keys at rest", _keys_idle(app, pilot, results, samples)),
                ("bind/unlink", _bind_unlink(app, fixtures, farm, results, samples)),
                ("stale", _stale(app, fixtures, reaper, results, stale_samples)),
                ("shadow", _shadow(app, fixtures, results, samples)),
                ("start/stop", _start_stop(app, fixtures, bench_events, client, results, samples)),
                ("burst", _burst(app, fixtures, farm, results, bursts)),
            )
            for label, step in steps:
                try:
                    await step
                except Exception as exc:  # one broken measurement must not lose the others
                    results.notes.append(f"{label} stopped early: {type(exc).__name__}: {exc}")
                    log(f"  {label} stopped early: {type(exc).__name__}: {exc}")
            results.handler_ms = list(app.handler_ms)
            app.app.exit()
    finally:
        bench_events.close()
    return results


async def _keys_idle(app: BenchApp, pilot: Any, results: LiveResults, samples: int) -> None:
    app.query_one(ContainerList).focus()
    await pilot.pause()
    for i in range(samples):
        got = await press_and_time(app, "j" if i % 2 == 0 else "k")
        if math.isnan(got):
            results.keys_lost += 1
        else:
            results.keys_idle_ms.append(got)
        await asyncio.sleep(0.05)
    log(f"  keys at rest: {len(results.keys_idle_ms)} presses")


async def _bind_unlink(app: BenchApp, fx: Fixtures, farm: Farm, results: LiveResults, samples: int) -> None:
    bind, unlink = results.series.setdefault("bind", Series()), results.series.setdefault("unlink", Series())
    for k in range(samples):
        name = f"b{k:03d}.sock"
        path = str(fx.dir / name)
        t0, state, frame, _ = await expect(
            app,
            lambda path=path: farm.bind([path])[0],
            lambda r, name=name: socket_verdict(r, "rx-dir", "/run/rx", name) is Verdict.LIVE,
            what=f"bind {name}",
        )
        _add(bind, t0, state, frame)
        # Each sample is a lone change on a calm mount: a mount changed again and again sooner than CALM_SECONDS is
        # busy and looked at once a second, by design (the churn measurement covers that), so the next one comes later.
        await asyncio.sleep(CALM_SECONDS + 0.05)
        t0, state, frame, _ = await expect(
            app,
            lambda path=path: farm.unlink([path])[0],
            lambda r, name=name: find(r, "rx-dir") is not None and socket_verdict(r, "rx-dir", "/run/rx", name) is None,
            what=f"unlink {name}",
        )
        _add(unlink, t0, state, frame)
        await asyncio.sleep(CALM_SECONDS + 0.05)
    timeouts = bind.timeouts + unlink.timeouts
    log(f"  bind/unlink: {len(bind.state_ms)}/{len(unlink.state_ms)} samples, {timeouts} timeouts")


async def _stale(app: BenchApp, fx: Fixtures, reaper: Reaper, results: LiveResults, samples: int) -> None:
    series = results.series.setdefault("stale", Series())
    path = fx.stale_dir / "victim.sock"
    for _ in range(samples):
        server = SocketServer(path)
        await asyncio.to_thread(server.start)
        reaper.add(server.pid)
        try:
            await until(
                lambda pid=server.pid: _listened_by(app.report, pid),
                15,
                f"victim.sock live with listener pid {server.pid}",
            )
            await asyncio.sleep(0.3)  # the pidfd watcher picks up new pids within its 0.1 s tick

            def kill(pid: int = server.pid) -> float:
                t0 = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                return t0

            t0, state, frame, _ = await expect(
                app,
                kill,
                lambda r: socket_verdict(r, "rx-stale", "/run/rx", "victim.sock") is Verdict.STALE,
                timeout=10,
                what="kill -9",
            )
            _add(series, t0, state, frame)
        finally:
            await asyncio.to_thread(server.kill)
            reaper.discard(server.pid)
        await asyncio.sleep(0.1)
    log(f"  stale: {len(series.state_ms)} samples, {series.timeouts} timeouts")


def _listened_by(report: CheckReport | None, pid: int) -> bool:
    m = mount_at(report, "rx-stale", "/run/rx")
    if m is None:
        return False
    return any(
        s.name == "victim.sock" and s.verdict is Verdict.LIVE and s.listener and s.listener.pid == pid
        for s in m.sockets
    )


async def _shadow(app: BenchApp, fx: Fixtures, results: LiveResults, samples: int) -> None:
    series = results.series.setdefault("shadow", Series())
    for k in range(samples):
        name = f"rx-sh{k:03d}"
        cid = await asyncio.to_thread(fx.new_shadow_container, k)
        try:
            await until(
                lambda name=name: (
                    (m := mount_at(app.report, name, "/run/app.sock")) is not None and m.verdict is Verdict.MISSING
                ),
                15,
                f"{name} listed as missing",
            )

            def start(cid: str = cid) -> float:
                t0 = time.monotonic()
                fx.client.start(cid)
                return t0

            t0, state, frame, _ = await expect(
                app,
                start,
                lambda r, name=name: (
                    (m := mount_at(r, name, "/run/app.sock")) is not None and m.verdict is Verdict.SHADOWED
                ),
                what=f"start {name}",
            )
            _add(series, t0, state, frame)
        finally:
            await asyncio.to_thread(fx.remove, cid)
        try:
            await until(lambda name=name: find(app.report, name) is None, 15, f"{name} removed")
        except TimeoutError:
            # Not a measurement failure but a finding: the app still lists a container the engine has removed.
            results.ghosts.append(name)
    log(f"  shadow: {len(series.state_ms)} samples, {series.timeouts} timeouts")


async def _start_stop(
    app: BenchApp, fx: Fixtures, bench_events: EventLog, client: docker.APIClient, results: LiveResults, samples: int
) -> None:
    start_s, stop_s = results.series.setdefault("start", Series()), results.series.setdefault("stop", Series())
    cid = fx.ss_id

    def running(r: CheckReport | None) -> bool:
        c = find(r, "rx-ss")
        return c is not None and c.container.state == "running" and c.worst is Verdict.LIVE

    def exited(r: CheckReport | None) -> bool:
        c = find(r, "rx-ss")
        return c is not None and c.container.state == "exited"

    await until(lambda: find(app.report, "rx-ss") is not None, 15, "rx-ss listed")
    for _ in range(samples):
        for series, action, predicate, verb in (
            (start_s, lambda: client.start(cid), running, "start"),
            (stop_s, lambda: client.stop(cid, timeout=10), exited, "die"),
        ):

            def act(action: Callable[[], object] = action) -> float:
                t0 = time.monotonic()
                action()
                return t0

            wall0 = time.time()
            t0, state, frame, state_wall = await expect(app, act, predicate, what=verb)
            _add(series, t0, state, frame)
            event_at = bench_events.first(verb, cid, wall0 - 0.001)
            if not math.isnan(state_wall) and not math.isnan(event_at):
                series.event_ms.append((state_wall - event_at) * 1000)
                if not math.isnan(frame):
                    series.event_frame_ms.append((state_wall + (frame - state) - event_at) * 1000)
            await asyncio.sleep(0.1)
    log(f"  start/stop: {len(start_s.state_ms)}/{len(stop_s.state_ms)} samples")


async def _burst(app: BenchApp, fx: Fixtures, farm: Farm, results: LiveResults, bursts: int) -> None:
    per_dir = 200 // len(fx.burst_dirs)
    for b in range(bursts):
        names = [f"x{b:02d}-{i:03d}.sock" for i in range(per_dir)]
        paths = [str(d / name) for d in fx.burst_dirs for name in names]

        def all_live(r: CheckReport | None, names: list[str] = names) -> bool:
            c = find(r, "rx-burst")
            if c is None:
                return False
            for i in range(len(fx.burst_dirs)):
                m = next((m for m in c.mounts if m.mount.destination == f"/run/b{i}"), None)
                if m is None:
                    return False
                live = {s.name for s in m.sockets if s.verdict is Verdict.LIVE}
                if not live.issuperset(names):
                    return False
            return True

        span: list[float] = []

        def bind(paths: list[str] = paths, span: list[float] = span) -> float:
            first, last = farm.bind(paths, chunk=len(paths))
            span.append((last - first) * 1000)
            return first

        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        presser = loop.create_task(_press_during(app, done, results))
        try:
            t0, state, frame, _ = await expect(app, bind, all_live, timeout=30, what="burst")
        finally:
            await asyncio.sleep(0.2)  # keep pressing a little after the last update
            done.set()
            await presser
        if math.isnan(state):
            results.burst_timeouts += 1
        else:
            results.burst_ms.append((state - t0) * 1000)
            results.burst_frame_ms.append((frame - t0) * 1000 if not math.isnan(frame) else math.nan)
        results.burst_bind_span_ms.extend(span)
        # Clear the burst away again (not measured), and let the app settle before the next one.
        await asyncio.to_thread(farm.unlink, paths)
        await until(
            lambda names=names: (
                (c := find(app.report, "rx-burst")) is not None
                and not any(s.name in names for m in c.mounts for s in m.sockets)
            ),
            30,
            "burst sockets gone",
        )
        await asyncio.sleep(0.5)
    log(f"  burst: {len(results.burst_ms)} bursts, {len(results.keys_burst_ms)} key presses during them")


async def _press_during(app: BenchApp, done: asyncio.Event, results: LiveResults) -> None:
    i = 0
    while not done.is_set():
        got = await press_and_time(app, "j" if i % 2 == 0 else "k")
        if math.isnan(got):
            results.keys_lost += 1
        else:
            results.keys_burst_ms.append(got)
        i += 1
        await asyncio.sleep(0.01)
