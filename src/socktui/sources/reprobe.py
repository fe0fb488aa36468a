"""A slow, cheap re-look at each socket, for staleness that nothing else announces."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

from ..model import ProbeResult
from ..probe import probe_host_path


class Reprober:
    """Every ``interval`` seconds, connect (non-blocking) to each host socket path; report when the outcome changes.

    "Changes" means ok-ness or errno differs from last time. The last outcome of a path can be seeded with
    ``set_paths(..., known=...)`` (what the caller already shows); a path with no known outcome gets its first
    probe as the baseline, silently.
    """

    def __init__(self, paths: Iterable[str] = (), *, interval: float = 2.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, tuple[bool, str | None] | None] = {}
        self.set_paths(paths)

    def set_paths(self, paths: Iterable[str], known: Mapping[str, ProbeResult] | None = None) -> None:
        """Replace the set of paths (thread-safe), keeping the last outcome of paths that stay."""
        known = known or {}
        with self._lock:
            last = {}
            for path in paths:
                seed = known.get(path)
                last[path] = (seed.ok, seed.errno) if seed is not None else self._last.get(path)
            self._last = last

    def check(self) -> list[tuple[str, ProbeResult]]:
        """Probe every path once; return the paths whose outcome changed, with the new result."""
        with self._lock:
            paths = list(self._last)
        changed = []
        for path in paths:
            result = probe_host_path(path)
            outcome = (result.ok, result.errno)
            with self._lock:
                if path not in self._last:
                    continue  # dropped by set_paths meanwhile
                before = self._last[path]
                self._last[path] = outcome
            if before is not None and before != outcome:
                changed.append((path, result))
        return changed

    def run(self, on_change: Callable[[str, ProbeResult], None], stop: threading.Event) -> None:
        """Probe at once, then every ``interval`` seconds, until ``stop`` is set."""
        while not stop.is_set():
            for path, result in self.check():
                on_change(path, result)
            stop.wait(self.interval)
