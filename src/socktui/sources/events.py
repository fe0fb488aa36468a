"""The engine's container events, followed with reconnect and backoff when the engine goes away."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..engine import Engine, EngineError


@dataclass(frozen=True)
class EngineEvent:
    """One container event: ``action`` is the bare verb (start, die, ...), ``time`` epoch seconds."""

    action: str
    container_id: str
    name: str
    time: float


@dataclass(frozen=True)
class EngineLost:
    """The event stream broke or the engine cannot be reached; reconnecting in the background."""

    reason: str


@dataclass(frozen=True)
class EngineBack:
    """A new event stream is open after an :class:`EngineLost`."""


EngineState = EngineLost | EngineBack


CONTAINER_ACTIONS = frozenset({"create", "start", "die", "stop", "destroy", "rename", "restart", "pause", "unpause"})
# Podman names a few actions its own way; they are delivered under Docker's word so every consumer sees one verb.
ACTION_ALIASES = {"remove": "destroy"}
BACKOFF_MIN = 0.5
BACKOFF_MAX = 10.0


class EventSource(Protocol):
    """What :class:`EngineEventStream` needs of an engine; :class:`socktui.engine.Engine` is one."""

    def events(self, since: int | None = None) -> Iterator[dict[str, Any]]: ...

    def reset(self) -> None: ...


def parse_engine_event(raw: Mapping[str, Any], actions: frozenset[str] = CONTAINER_ACTIONS) -> EngineEvent | None:
    """An :class:`EngineEvent` from a decoded Docker event, or None when it is not a container action of interest.

    Actions such as ``exec_start: sh -c ...`` or ``health_status: healthy`` are reduced to the word before the colon.
    """
    if str(raw.get("Type") or "container") != "container":
        return None
    action = str(raw.get("Action") or raw.get("status") or "").partition(":")[0].strip()
    action = ACTION_ALIASES.get(action, action)
    if action not in actions:
        return None
    actor = raw.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    return EngineEvent(
        action=action,
        container_id=str(actor.get("ID") or raw.get("id") or ""),
        name=str(attributes.get("name") or ""),
        time=_event_nanos(raw) / 1e9,
    )


def _event_nanos(raw: Mapping[str, Any]) -> int:
    try:
        nanos = int(raw.get("timeNano") or 0)
        return nanos or int(raw.get("time") or 0) * 1_000_000_000
    except (TypeError, ValueError):
        return 0


def backoff_delays(first: float = BACKOFF_MIN, most: float = BACKOFF_MAX) -> Iterator[float]:
    """0.5, 1, 2, 4, 8, 10, 10, ... seconds."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, most)


class _Stream:
    """An open event stream: an iterator plus a ``close()`` that is safe to call from another thread."""

    def __init__(self, items: Iterator[dict[str, Any]], closer: Callable[[], object] | None) -> None:
        self.items = items
        self._closer = closer

    def close(self) -> None:
        if self._closer is None:
            return
        # ValueError: a generator closed while another thread runs it; the stream then ends at its next event.
        # (An Engine's own stream suppresses what its client raises on closing.)
        with contextlib.suppress(OSError, ValueError):
            self._closer()


def _open_stream(engine: EventSource, since: int | None) -> _Stream:
    if isinstance(engine, Engine):
        # Engine.events() is a generator: it opens nothing until the first event is asked for, and its stream inside
        # cannot be reached to close it. Open the stream eagerly here instead, so "open" means the engine answered and
        # stop() can shut the socket under a blocked read.
        stream = engine.open_events(since)
        return _Stream(iter(stream), stream.close)
    items = engine.events(since=since)
    return _Stream(iter(items), getattr(items, "close", None))


class EngineEventStream:
    """Follow the engine's container events; when the engine goes away, say so and reconnect with backoff.

    Reconnecting asks for events ``since`` the last one seen, so nothing in between is lost (the daemon keeps a
    short buffer), and events already delivered are not delivered twice.

    Call :meth:`stop` from another thread to end :meth:`run`: it sets the run's ``stop`` event *and* shuts the
    stream's socket, which setting ``stop`` alone cannot do while the stream is blocked waiting for an event.
    """

    def __init__(
        self,
        *,
        since: float | None = None,
        actions: frozenset[str] = CONTAINER_ACTIONS,
        backoff_min: float = BACKOFF_MIN,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self.actions = actions
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.since = since  # epoch seconds: the first stream asks for what happened since then
        self._last_nanos = 0
        self._last_keys: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stream: _Stream | None = None
        self._stop_event: threading.Event | None = None
        self._halted = False
        self.attempts = 0  # streams tried so far, opened or not (tests wait on it)

    def stop(self) -> None:
        """End :meth:`run` now, even from the middle of a blocked read. Safe from any thread, before or during."""
        with self._lock:
            self._halted = True
            event, stream = self._stop_event, self._stream
        if event is not None:
            event.set()
        if stream is not None:
            stream.close()

    def run(
        self,
        engine: EventSource,
        on_event: Callable[[EngineEvent], None],
        on_state: Callable[[EngineState], None],
        stop: threading.Event,
    ) -> None:
        """Deliver events until ``stop`` is set or :meth:`stop` is called.

        ``on_state`` gets one :class:`EngineLost` per outage and one :class:`EngineBack` when a stream is open again.
        Exceptions from the callbacks end the run.
        """
        with self._lock:
            if self._halted:
                return
            self._stop_event = stop
        lost = False
        delays = backoff_delays(self.backoff_min, self.backoff_max)
        try:
            while not stop.is_set():
                opened, reason = self._follow(engine, on_event, on_state, stop, lost)
                if reason is None or stop.is_set():
                    return
                if opened:  # this stream had opened: a new outage starts, with a fresh backoff
                    lost = False
                    delays = backoff_delays(self.backoff_min, self.backoff_max)
                if not lost:
                    lost = True
                    on_state(EngineLost(reason))
                if stop.wait(next(delays)):
                    return
                engine.reset()
        finally:
            with self._lock:
                self._stop_event = None

    def _follow(
        self,
        engine: EventSource,
        on_event: Callable[[EngineEvent], None],
        on_state: Callable[[EngineState], None],
        stop: threading.Event,
        lost: bool,
    ) -> tuple[bool, str | None]:
        """Open one stream and deliver its events: (whether it opened, why it ended or None when stopping)."""
        self.attempts += 1
        try:
            stream = _open_stream(engine, self._since_param())
        except EngineError as exc:
            return False, exc.problem
        with self._lock:
            if self._halted:
                stream.close()
                return True, None
            self._stream = stream
        try:
            if self.since is None:
                self.since = time.time()  # so a reconnect before any event still asks for what it missed
            if lost:
                on_state(EngineBack())
            for raw in stream.items:
                if stop.is_set():
                    break
                self._deliver(raw, on_event)
            reason = "the engine closed the event stream"
        except EngineError as exc:
            reason = exc.problem
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        return True, None if stop.is_set() else reason

    def _since_param(self) -> int | None:
        if self._last_nanos:
            return self._last_nanos // 1_000_000_000
        return None if self.since is None else int(self.since)

    def _deliver(self, raw: Mapping[str, Any], on_event: Callable[[EngineEvent], None]) -> None:
        nanos = _event_nanos(raw)
        actor = raw.get("Actor") or {}
        key = (str(raw.get("Action") or raw.get("status") or ""), str(actor.get("ID") or raw.get("id") or ""))
        # ``since`` has one-second resolution: a reconnect replays the last second, skip what was delivered.
        if nanos < self._last_nanos or (nanos == self._last_nanos and key in self._last_keys):
            return
        if nanos > self._last_nanos:
            self._last_nanos = nanos
            self._last_keys = set()
        self._last_keys.add(key)
        event = parse_engine_event(raw, self.actions)
        if event is not None:
            on_event(event)
