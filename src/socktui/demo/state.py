"""What a demo made, written down as it is made, and ``teardown``: the one way everything is removed again.

Everything the demo makes lives under one root directory (``/run/socktui-demo`` unless ``SOCKTUI_DEMO_DIR`` says
otherwise): the daemon's files (``engine/``), the scenario's host paths (``srv/``), logs and ``state.json``. The
state file names the processes (the TUI that owns the demo, its supervisor, the daemon, the servers), each with its
start time so a recycled pid is never mistaken for ours. ``teardown`` is called by the TUI on its way out, by the
supervisor when the TUI died without doing it, and by the next ``socktui demo`` when both died: it is idempotent,
and it takes the paths it removes from the root it is given, never from the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .daemon import cmdline_mentions, stop_daemon, unmount_under

DEFAULT_ROOT = Path("/run/socktui-demo")
ENV_ROOT = "SOCKTUI_DEMO_DIR"
SERVER_PROGRAM = "sockserver.py"


def demo_root(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(ENV_ROOT) or DEFAULT_ROOT)


@dataclass(frozen=True)
class DemoPaths:
    root: Path

    @property
    def engine(self) -> Path:
        return self.root / "engine"

    @property
    def srv(self) -> Path:
        return self.root / "srv"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def socket(self) -> Path:
        return self.engine / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22); None when it is gone,
    or dead and not yet reaped (a zombie runs nothing: an init that reaps slowly must not make it look alive)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            after_name = f.read().rsplit(b")", 1)[1].split()
        if after_name[0] in (b"Z", b"X"):
            return None
        return int(after_name[19])
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Proc:
    pid: int
    started: int | None

    @classmethod
    def of(cls, pid: int) -> Proc:
        return cls(pid, start_time(pid))

    @property
    def alive(self) -> bool:
        return self.started is not None and start_time(self.pid) == self.started


@dataclass(frozen=True)
class State:
    owner: Proc
    supervisor: Proc | None = None
    daemon: Proc | None = None
    servers: dict[str, Proc] = field(default_factory=dict)  # host path -> its server process
    containers: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> State:
        raw = json.loads(text)

        def proc(value: object) -> Proc | None:
            if not isinstance(value, dict):
                return None
            return Proc(int(value["pid"]), None if value.get("started") is None else int(value["started"]))

        owner = proc(raw.get("owner"))
        if owner is None:
            raise ValueError("no owner in the demo's state file")
        servers = {str(k): p for k, v in (raw.get("servers") or {}).items() if (p := proc(v)) is not None}
        return cls(
            owner=owner,
            supervisor=proc(raw.get("supervisor")),
            daemon=proc(raw.get("daemon")),
            servers=servers,
            containers=tuple(str(c) for c in raw.get("containers") or ()),
        )


class StateFile:
    """The state on disk, rewritten whole (write, fsync, rename) at every change: a crash leaves the old or the new."""

    def __init__(self, paths: DemoPaths, state: State) -> None:
        self.paths = paths
        self.state = state

    def update(self, **changes: object) -> None:
        self.state = replace(self.state, **changes)  # type: ignore[arg-type]
        self.save()

    def save(self) -> None:
        partial = self.paths.state_file.with_name(f".state.{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.state.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, self.paths.state_file)


def read_state(paths: DemoPaths) -> State | None:
    try:
        return State.from_json(paths.state_file.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def unsafe_root(root: Path) -> str | None:
    """Why ``root`` must not be used (and never removed): a symlink, not a directory, or not root's."""
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return f"{root} is a symlink: remove it, or set {ENV_ROOT} to another directory"
    if not stat.S_ISDIR(st.st_mode):
        return f"{root} is not a directory: remove it, or set {ENV_ROOT} to another directory"
    if st.st_uid != os.geteuid():
        return f"{root} belongs to uid {st.st_uid}, not to us: remove it, or set {ENV_ROOT} to another directory"
    return None


def _is_our_server(pid: int, root: Path) -> bool:
    return cmdline_mentions(pid, SERVER_PROGRAM) and cmdline_mentions(pid, str(root))


def server_pids(root: Path) -> list[int]:
    """Every demo server still running under ``root``, recorded or not (one may start just before a crash)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and _is_our_server(int(entry), root):
            found.append(int(entry))
    return sorted(found)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while start_time(pid) is not None:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # our own child: reap it, or it stays a zombie with a start time
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def teardown(paths: DemoPaths, say: Callable[[str], None] = lambda _: None) -> list[str]:
    """Remove everything the demo at ``paths.root`` made: servers, containers, the daemon, mounts, files.

    Returns what it removed, in words. Safe to run twice, and from any process.
    """
    root = paths.root
    if unsafe_root(root) is not None or not root.exists():
        return []
    state = read_state(paths)
    done: list[str] = []
    servers = set(server_pids(root))
    if state is not None:
        servers |= {p.pid for p in state.servers.values() if p.alive and _is_our_server(p.pid, root)}
    for pid in sorted(servers):
        _kill(pid)
    for pid in sorted(servers):
        _gone(pid)
    if servers:
        done.append(f"{len(servers)} server{'s' * (len(servers) != 1)}")
        say(done[-1])
    daemon_pid = state.daemon.pid if state is not None and state.daemon is not None else None
    if daemon_pid is None:
        daemon_pid = _pidfile(paths.engine / "docker.pid")
    if paths.engine.exists():
        say("the private dockerd and its containers")
        stop_daemon(daemon_pid, paths.engine)
        done.append("the private dockerd and its containers")
    unmount_under(root)
    shutil.rmtree(root, ignore_errors=True)
    if not root.exists():
        done.append(str(root))
    return done


def _pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
