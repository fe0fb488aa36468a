"""Cost at rest of a TUI on the bench's daemon: socktui's, and lazydocker's beside it on the same containers.

Either app runs in a 200x50 pseudo-terminal (`ptyapp.TtyApp`), talks to the daemon through its own counting proxy
(`proxy.CountingProxy`), is left alone until it has drawn its container list plus a settling pause, and is then
watched, untouched, for the window:

* CPU: the delta of utime + stime over the window, of the process, its live descendants and the children they have
  reaped (`common.tree_cpu_seconds`), as % of one core;
* RSS: the sum of VmRSS over the same processes, sampled every second (max);
* engine requests: the HTTP request lines the proxy saw in the window (a long-lived stream is one request).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from common import Reaper, count_kinds, proc_status_kb, process_tree, tree_cpu_seconds, tree_rss_kb
from proxy import CountingProxy
from ptyapp import TtyApp

KEEP_REQUESTS = 50  # request lines kept verbatim per window in the JSON (lazydocker makes thousands)


def at_rest(
    argv: Sequence[str],
    *,
    ready: bytes,
    daemon_socket: str,
    proxy_path: str,
    n: int,
    seconds: float,
    settle: float,
    reaper: Reaper,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    ready_timeout: float = 120.0,
) -> dict[str, Any]:
    """Start ``argv`` (with ``{proxy}`` in it replaced by the proxy's URL), wait for ``ready``, settle, measure."""
    proxy = CountingProxy(proxy_path, daemon_socket).start()
    argv = [a.replace("{proxy}", proxy.url) for a in argv]
    env = {k: v.replace("{proxy}", proxy.url) for k, v in env.items()} if env is not None else None
    app = TtyApp(argv, env=env, cwd=cwd).start()
    pid = reaper.add(app.pid)
    try:
        try:
            ready_at = app.wait_for(ready, ready_timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; the screen's last text: {app.text_tail()!r}") from None
        time.sleep(settle)
        _alive(app)
        start = time.monotonic()
        cpu0 = tree_cpu_seconds(pid)
        rss = []
        threads = proc_status_kb(pid, "Threads")
        processes = len(process_tree(pid))
        while time.monotonic() - start < seconds:
            rss.append(tree_rss_kb(pid))
            time.sleep(1.0)
        _alive(app)
        cpu1 = tree_cpu_seconds(pid)
        end = time.monotonic()
        rss.append(tree_rss_kb(pid))
        processes = max(processes, len(process_tree(pid)))
        hwm = proc_status_kb(pid, "VmHWM")
        window = proxy.between(start, end)
        startup = proxy.between(0, ready_at)
        settling = proxy.between(ready_at, start)
        return {
            "n": n,
            "ready_s": ready_at - app.spawned_at,
            "seconds": end - start,
            "cpu_s": cpu1 - cpu0,
            "cpu_pct": (cpu1 - cpu0) / (end - start) * 100,
            "rss_kb_max": max(rss),
            "rss_kb_samples": rss,
            "vm_hwm_kb": hwm,
            "threads": threads,
            "processes": processes,
            "requests_window_count": len(window),
            "requests_window_kinds": count_kinds(window),
            "requests_in_window": [f"{r.method} {r.path}" for r in window[:KEEP_REQUESTS]],
            "requests_settle_count": len(settling),
            "requests_settle": [f"{r.method} {r.path}" for r in settling[:KEEP_REQUESTS]],
            "requests_startup": len(startup),
            "requests_before_window": len(startup) + len(settling),
            "requests_startup_kinds": count_kinds(startup),
        }
    finally:
        reaper.discard(pid)
        app.stop()
        proxy.stop()


def _alive(app: TtyApp) -> None:
    got, status = os.waitpid(app.pid, os.WNOHANG)
    if got:
        app.pid = 0  # reaped: nothing left for stop() to signal
        raise RuntimeError(f"{app.argv[0]} exited during the measurement (wait status {status})")
