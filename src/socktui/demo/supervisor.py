"""The demo's supervisor: a process of its own that outlives the TUI and removes the demo if the TUI could not.

``python -m socktui.demo.supervisor ROOT OWNER_PID OWNER_START`` is started by ``socktui demo`` in a new session
(the terminal's Ctrl+C and hangup never reach it). It waits for the owner (the TUI process, known by pid *and* start
time) to end, however it ends: ``q``, a crash, SIGTERM, SIGKILL. If the owner's state file is still there, the owner
did not finish its own cleanup, and the supervisor runs ``teardown``. A state file of another owner (a newer demo)
is never touched.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path

from .state import DemoPaths, Proc, read_state, start_time, teardown


def wait_for_exit(owner: Proc) -> None:
    if not owner.alive:
        return
    try:
        fd = os.pidfd_open(owner.pid)
    except OSError:
        while owner.alive:
            time.sleep(0.2)
        return
    try:
        # The pid may have been recycled between the check and pidfd_open: check the start time again.
        if start_time(owner.pid) != owner.started:
            return
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not poller.poll(1000):
            pass
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root, pid, started = Path(args[0]), int(args[1]), args[2]
    owner = Proc(pid, None if started == "None" else int(started))
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    wait_for_exit(owner)
    paths = DemoPaths(root)
    state = read_state(paths)
    if state is None or state.owner != owner:
        return 0  # the owner cleaned up after itself, or the directory now belongs to a newer demo
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} owner pid {pid} ended without removing the demo; removing it", file=sys.stderr, flush=True)
    removed = teardown(paths)
    print(f"{time.strftime('%H:%M:%S')} removed: {', '.join(removed) or 'nothing'}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
