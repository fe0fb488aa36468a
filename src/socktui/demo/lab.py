"""The demo as one object: check what it needs, make its world, break things on request, and remove it all.

``Lab.open`` cleans up what an earlier demo left (or refuses while another runs), writes down every process and
container as it makes them (``state``), starts the supervisor that outlives the TUI, the private daemon and the
scenario. The demo's keys call ``kill_server``, ``start_server`` and ``container_first``; each returns a sentence for
the log and leaves it to socktui's live sources to notice what changed, as they would on a real machine.
``close`` (and the supervisor, and the next run) remove everything through ``state.teardown``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from .daemon import PrivateDaemon
from .image import BUSYBOX, check_busybox
from .image import build_image as build_busybox_image
from .scenario import IMAGE, Builder, ServerPool, Story
from .state import DemoPaths, Proc, State, StateFile, read_state, teardown, unsafe_root

Say = Callable[[str], None]
SUPERVISOR_WAIT_SECONDS = 60.0


class DemoError(Exception):
    """The demo cannot start; the message says why and what to do."""


def missing_prerequisites(
    euid: int | None = None,
    which: Callable[[str], str | None] = shutil.which,
    busybox: Path = BUSYBOX,
) -> list[str]:
    """What the demo lacks on this machine, each with how to get it. Empty when it can run."""
    problems = []
    if (os.geteuid() if euid is None else euid) != 0:
        problems.append(
            "the demo starts a private Docker daemon, which needs root: run `sudo socktui demo` (or `sudo make demo`)"
        )
    if which("dockerd") is None:
        problems.append(
            "dockerd is not installed (or not on PATH): `sudo apt-get install docker.io` (the demo runs a daemon of "
            "its own and never touches the system's)"
        )
    if check_busybox(busybox) is not None:
        problems.append(
            f"{check_busybox(busybox)}: `sudo apt-get install busybox-static` (the demo's image is that one binary, "
            "imported with docker import: no registry needed)"
        )
    return problems


class Lab:
    def __init__(self, paths: DemoPaths, say: Say = lambda _: None) -> None:
        self.paths = paths
        self.say = say
        self.state: StateFile | None = None
        self.daemon: PrivateDaemon | None = None
        self.client: docker.APIClient | None = None
        self.pool: ServerPool | None = None
        self.stories: list[Story] = []
        self.supervisor: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one demo key at a time
        self._state_lock = threading.Lock()  # one state file write at a time (taken inside ``_lock``)

    @property
    def host(self) -> str:
        return self.paths.host

    # ------------------------------------------------------------------ making it

    def open(self) -> Lab:
        """Make the whole demo. On any failure the caller must still call ``close``."""
        self._clear_the_way()
        root = self.paths.root
        root.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(root, 0o755)
        self.paths.logs.mkdir(mode=0o700, exist_ok=True)
        self.state = StateFile(self.paths, State(owner=Proc.of(os.getpid())))
        self.state.save()
        self._start_supervisor()
        self.say(f"starting a private dockerd in {self.paths.engine} (it answers only on {self.paths.socket})")
        self.daemon = PrivateDaemon(workdir=self.paths.engine, start_timeout=60)
        self.daemon.start()
        self.state.update(daemon=Proc.of(self.daemon.pid))
        self.client = docker.APIClient(base_url=self.host, version="auto", timeout=60)
        self.say(f"importing {BUSYBOX} as the image {IMAGE} (docker import: no registry)")
        build_busybox_image(self.client, IMAGE)
        self.pool = ServerPool(self.paths.logs, on_change=self._servers_changed)
        self.say("making one container per way a shared socket breaks")
        self.stories = Builder(self.client, self.paths, self.pool, on_container=self._container_made).build()
        return self

    def _clear_the_way(self) -> None:
        root = self.paths.root
        problem = unsafe_root(root)
        if problem:
            raise DemoError(problem)
        earlier = read_state(self.paths)
        if earlier is not None and earlier.owner.alive and earlier.owner.pid != os.getpid():
            raise DemoError(
                f"another socktui demo is running (pid {earlier.owner.pid}) in {root}: quit it first (q), "
                f"or run this one elsewhere with SOCKTUI_DEMO_DIR=/run/other-demo"
            )
        if earlier is not None and earlier.supervisor is not None and earlier.supervisor.alive:
            self.say("an earlier demo is still being removed; waiting for it")
            deadline = time.monotonic() + SUPERVISOR_WAIT_SECONDS
            while earlier.supervisor.alive and time.monotonic() < deadline:
                time.sleep(0.1)
        if root.exists():
            self.say(f"removing what an earlier demo left in {root}")
            teardown(self.paths, self.say)

    def _start_supervisor(self) -> None:
        assert self.state is not None
        owner = self.state.state.owner
        log = open(self.paths.logs / "supervisor.log", "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.supervisor = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "socktui.demo.supervisor",
                    str(self.paths.root),
                    str(owner.pid),
                    str(owner.started),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,  # the terminal's Ctrl+C and hangup do not reach it
                close_fds=True,
            )
        finally:
            log.close()
        self.state.update(supervisor=Proc.of(self.supervisor.pid))

    def _servers_changed(self, pids: dict[str, int]) -> None:
        if self.state is not None:
            with self._state_lock:
                self.state.update(servers={path: Proc.of(pid) for path, pid in pids.items()})

    def _container_made(self, cid: str) -> None:
        if self.state is not None:
            with self._state_lock:
                self.state.update(containers=(*self.state.state.containers, cid))

    # ------------------------------------------------------------------ the demo's keys

    def _ours(self, path: str) -> Path:
        """Only paths under the demo's own srv/ directory are ever acted on."""
        resolved = Path(os.path.normpath(path))
        if self.paths.srv not in resolved.parents:
            raise DemoError(f"{path} is not one of the demo's paths: the demo keys act only under {self.paths.srv}")
        return resolved

    def kill_server(self, path: str) -> str:
        if path == str(self.paths.socket):
            return "that socket is the demo's own daemon: it stays (q ends the demo)"
        assert self.pool is not None
        try:
            target = self._ours(path)
        except DemoError as exc:
            return str(exc)
        with self._lock:
            server = self.pool.kill(target)
        if server is None:
            return f"no server of the demo is running for {path}: s starts one"
        return f"killed the server of {path} (pid {server.pid}) with SIGKILL: its socket file stays behind"

    def start_server(self, path: str) -> str:
        if path == str(self.paths.socket):
            return "that socket is the demo's own daemon: it is already running"
        assert self.pool is not None
        try:
            target = self._ours(path)
        except DemoError as exc:
            return str(exc)
        with self._lock:
            if self.pool.running(target) is not None:
                server = self.pool.restart(target)
                verb = "restarted"
            else:
                server = self.pool.start(target)
                verb = "started"
        if server.ident is not None:
            extra = (
                " (a new inode: containers that mount the file still hold the old one)" if verb == "restarted" else ""
            )
            return f"{verb} the server of {path} (pid {server.pid}): socket inode {server.ident[1]}{extra}"
        in_the_way = _kind(target)
        return (
            f"{verb} the server of {path} (pid {server.pid}): it cannot bind, {in_the_way} is in the way, "
            "and it tries again every 0.3 s"
        )

    def container_first(self, container: str, path: str) -> str:
        """Start ``container`` before its server, the way the shadow story begins: stop the server (which removes
        its socket), (re)start the container, so Docker creates a directory at ``path``, then start the server."""
        assert self.pool is not None and self.client is not None
        try:
            target = self._ours(path)
        except DemoError as exc:
            return str(exc)
        with self._lock:
            self.pool.stop(target)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(os.lstat(target).st_mode):
                    os.unlink(target)  # a stale socket would be mounted as it is: the story needs nothing there
            try:
                state = self.client.inspect_container(container)["State"]
                if state.get("Running"):
                    self.client.restart(container, timeout=1)
                else:
                    self.client.start(container)
            except docker.errors.APIError as exc:
                self.pool.start(target)
                return f"Docker refused to start {container}: {exc.explanation or exc}"
            server = self.pool.start(target)
        return (
            f"started {container} before its server: Docker made {_kind(target)} at {path}; the server "
            f"(pid {server.pid}) " + ("bound anyway" if server.ident else "cannot bind and keeps trying")
        )

    # ------------------------------------------------------------------ removing it

    def close(self) -> list[str]:
        """Remove everything this demo made; returns what was removed, in words.

        A demo that never took the root (``open`` refused: another demo runs there) removes nothing at all.
        """
        if self.state is None:
            return []
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
        if self.pool is not None:
            self.pool.stop_all()
        removed = teardown(self.paths, self.say)
        if self.daemon is not None and self.daemon._proc is not None:
            with contextlib.suppress(Exception):
                self.daemon._proc.wait(timeout=5)  # reap our child; teardown already stopped it
        if self.supervisor is not None and self.supervisor.poll() is None:
            # Everything is gone: the supervisor has nothing left to guard. (Had teardown been cut short, it would
            # still be running, and would finish the job once this process ends.)
            self.supervisor.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.supervisor.wait(timeout=5)
        return removed


def _kind(path: Path) -> str:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "nothing"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "something else"
