"""The demo's world: one container per way a shared socket breaks, each made the way it breaks in real life.

Every story is built for real on the private daemon: servers are real processes (``sockserver.py``), mounts are
real ``-v`` / ``--mount`` binds, and a shadow directory is the one Docker itself creates. Nothing is faked, so every
fix socktui offers works on it, and the demo's keys (``ServerPool.kill`` / ``restart``, ``container_first``) break
things again the same way.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.types import Mount

from .servers import SocketServer
from .state import DemoPaths

IMAGE = "socktui-demo:latest"
LABEL = "socktui.demo"
LOOP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
RETRY_SECONDS = 0.3  # how often a server that cannot bind tries again, like a service manager restarting it
READY_SECONDS = 3.0
SOCKET_GID = 4242  # the group of the "denied" socket; the container's user is not in it
PROJECT = "shop"
COMPOSE_VERSION = "1.29.2"
BUILD_THREADS = 4


@dataclass(frozen=True)
class Story:
    """One container and what the demo made of it. ``expect`` is the verdict socktui should give it."""

    container: str
    expect: str
    what: str
    socket: str | None = None  # the host socket path its server binds (None: no server of ours)


@dataclass
class ServerPool:
    """The demo's servers, one per host socket path, restartable. ``on_change`` hears every pid change."""

    logs: Path
    on_change: Callable[[dict[str, int]], None] = lambda pids: None
    servers: dict[str, SocketServer] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)  # the scenario is built from several threads

    def _changed(self) -> None:
        with self.lock:
            pids = {path: s.pid for path, s in self.servers.items() if s.alive}
            self.on_change(pids)

    def start(self, path: Path | str, *, mode: int | None = None, gid: int | None = None) -> SocketServer:
        """Start (or start again) the server for ``path``. It waits up to READY_SECONDS for the bind; a server that
        cannot bind yet (a directory is in the way) keeps trying in the background, as a restarting service would."""
        key = str(path)
        self.options.setdefault(key, {"mode": mode, "gid": gid})
        old = self.servers.get(key)
        if old is not None and old.alive:
            raise RuntimeError(f"a server for {key} is already running (pid {old.pid})")
        opts = self.options[key]
        server = SocketServer(
            key,
            mode=opts["mode"],
            gid=opts["gid"],
            retry=RETRY_SECONDS,
            log=self.logs / "servers.log",
        )
        in_the_way = _occupied(Path(key))
        with self.lock:
            server.start(wait=False)
            self.servers[key] = server
            self._changed()
        # Something that is not a socket in the way: it cannot bind until that is gone, so do not wait long.
        _wait_for_ready_line(server, 0.2 if in_the_way else READY_SECONDS)
        return server

    def running(self, path: Path | str) -> SocketServer | None:
        server = self.servers.get(str(path))
        return server if server is not None and server.alive else None

    def kill(self, path: Path | str) -> SocketServer | None:
        """SIGKILL: the socket file stays behind, stale."""
        server = self.running(path)
        if server is not None:
            server.kill()
            self._changed()
        return server

    def stop(self, path: Path | str) -> SocketServer | None:
        """SIGTERM: the server removes its own socket."""
        server = self.running(path)
        if server is not None:
            server.stop()
            self._changed()
        return server

    def restart(self, path: Path | str) -> SocketServer:
        """Stop and start again: the new server unlinks and binds, so the socket gets a new inode."""
        self.stop(path)
        return self.start(path)

    def stop_all(self) -> None:
        for server in self.servers.values():
            if server.alive:
                server.kill()
        self._changed()


def _occupied(path: Path) -> bool:
    try:
        return not stat.S_ISSOCK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _wait_for_ready_line(server: SocketServer, timeout: float) -> bool:
    """True once the server printed READY (its socket is bound and listening); False while it is still retrying."""
    proc = server._proc
    if proc is None or proc.stdout is None:
        return False
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        return False
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        return False
    _, dev, ino = line.split()
    server.ident = (int(dev), int(ino))
    return True


def _compose_labels(service: str, workdir: Path) -> dict[str, str]:
    return {
        "com.docker.compose.project": PROJECT,
        "com.docker.compose.service": service,
        "com.docker.compose.project.config_files": str(workdir / "docker-compose.yml"),
        "com.docker.compose.project.working_dir": str(workdir),
        "com.docker.compose.version": COMPOSE_VERSION,
        "com.docker.compose.container-number": "1",
        "com.docker.compose.oneoff": "False",
    }


COMPOSE_FILE = """\
# What docker-compose would have been given for the demo's "shop" project (the demo creates the containers
# itself with these labels: it needs no compose program).
version: "3.8"
services:
  web:
    image: socktui-demo:latest
    volumes:
      - {srv}/app.sock:/run/app.sock        # started before its server: Docker made a directory here
  api:
    image: socktui-demo:latest
    volumes:
      - {srv}/api.sock:/run/api.sock
  worker:
    image: socktui-demo:latest
    volumes:
      - {srv}/ipc:/ipc                      # the socket's directory, not the socket: survives server restarts
"""


class Builder:
    """Makes the stories on the daemon at ``client``, recording every container id through ``on_container``."""

    def __init__(
        self,
        client: docker.APIClient,
        paths: DemoPaths,
        servers: ServerPool,
        on_container: Callable[[str], None] = lambda cid: None,
        image: str = IMAGE,
    ) -> None:
        self.client = client
        self.paths = paths
        self.srv = paths.srv
        self.servers = servers
        self.on_container = on_container
        self.image = image

    def create(
        self,
        name: str,
        *,
        binds: list[str] | None = None,
        mounts: list[Mount] | None = None,
        user: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> str:
        hc = self.client.create_host_config(network_mode="none", binds=binds, mounts=mounts)
        cid: str = self.client.create_container(
            image=self.image,
            command=LOOP,
            name=name,
            user=user,
            labels={LABEL: "1", **(labels or {})},
            host_config=hc,
        )["Id"]
        self.on_container(cid)
        return cid

    def run(self, name: str, **kwargs: Any) -> str:
        cid = self.create(name, **kwargs)
        self.client.start(cid)
        return cid

    def build(self) -> list[Story]:
        """Make every story. They are independent, so they are made a few at a time (a container start costs about
        half a second here); each story's own steps keep their order."""
        srv = self.srv
        srv.mkdir(mode=0o755, parents=True, exist_ok=True)
        shop = srv / "shop"
        shop.mkdir(mode=0o755, exist_ok=True)
        (shop / "docker-compose.yml").write_text(COMPOSE_FILE.format(srv=srv))
        makers = [getattr(self, name) for name in sorted(dir(self)) if name.startswith("story_")]
        with ThreadPoolExecutor(max_workers=BUILD_THREADS, thread_name_prefix="demo-build") as pool:
            made = list(pool.map(lambda make: make(), makers))
        return [story for stories in made for story in stories]

    def story_01_live(self) -> list[Story]:
        # The server first, then the container (a compose service): the right order.
        api = self.srv / "api.sock"
        self.servers.start(api)
        self.run("shop-api-1", binds=[f"{api}:/run/api.sock"], labels=_compose_labels("api", self.srv / "shop"))
        return [Story("shop-api-1", "live", "server first, then the container: the right order", str(api))]

    def story_02_shadowed(self) -> list[Story]:
        # The container first. Docker creates a directory where the socket should be; the server, started next,
        # cannot bind there and keeps trying (remove-shadow-dir lets it).
        app = self.srv / "app.sock"
        self.run("shop-web-1", binds=[f"{app}:/run/app.sock"], labels=_compose_labels("web", self.srv / "shop"))
        self.servers.start(app)
        return [Story("shop-web-1", "shadowed", "started with -v before its server existed", str(app))]

    def story_03_ipc(self) -> list[Story]:
        # The seed article's IPC socket, shared through a directory by two containers.
        ipc = self.srv / "ipc"
        ipc.mkdir(mode=0o755, exist_ok=True)
        sock = str(ipc / "ipc.sock")
        self.servers.start(ipc / "ipc.sock")
        self.run("shop-worker-1", binds=[f"{ipc}:/ipc"], labels=_compose_labels("worker", self.srv / "shop"))
        self.run("reader", binds=[f"{ipc}:/ipc"])
        return [
            Story("shop-worker-1", "ok", "the socket's directory is shared, not the file", sock),
            Story("reader", "ok", "a second container on the same IPC directory", sock),
        ]

    def story_04_stale(self) -> list[Story]:
        # The server dies without removing its socket.
        queue = self.srv / "queue.sock"
        self.servers.start(queue)
        self.run("consumer", binds=[f"{queue}:/run/queue.sock"])
        self.servers.kill(queue)
        return [Story("consumer", "stale", "its server was killed and left the socket behind", str(queue))]

    def story_05_detached(self) -> list[Story]:
        # The server restarts (unlink + bind) after the container started.
        metrics = self.srv / "metrics.sock"
        self.servers.start(metrics)
        self.run("exporter", binds=[f"{metrics}:/run/metrics.sock"])
        self.servers.restart(metrics)
        return [Story("exporter", "detached", "its server restarted: the container holds the old inode", str(metrics))]

    def story_06_missing(self) -> list[Story]:
        # Created with -v, never started, no server yet.
        batch = self.srv / "batch.sock"
        self.create("batch", binds=[f"{batch}:/run/batch.sock"])
        return [Story("batch", "missing", "created with -v; starting it now would make a directory", str(batch))]

    def story_07_missing_mount_flag(self) -> list[Story]:
        # Created with --mount while its server ran (--mount refuses a missing source even at create); the server
        # has stopped since, and Docker will refuse to start the container rather than make a directory.
        cron = self.srv / "cron.sock"
        self.servers.start(cron)
        self.create("cron", mounts=[Mount(target="/run/cron.sock", source=str(cron), type="bind")])
        self.servers.stop(cron)
        return [Story("cron", "missing", "--mount, server gone: Docker will refuse to start it", str(cron))]

    def story_08_denied(self) -> list[Story]:
        # A non-root container user against a 0660 socket of a group it lacks.
        admin = self.srv / "admin.sock"
        self.servers.start(admin, mode=0o660, gid=SOCKET_GID)
        self.run("reporter", binds=[f"{admin}:/run/admin.sock"], user="1000:1000")
        return [Story("reporter", "denied", f"runs as uid 1000, the socket is 0660 root:{SOCKET_GID}", str(admin))]

    def story_09_not_socket(self) -> list[Story]:
        # A regular file where the socket should be.
        notes = self.srv / "notes.sock"
        notes.write_text("not a socket: somebody ran `touch notes.sock`\n")
        self.run("notes", binds=[f"{notes}:/run/notes.sock"])
        return [Story("notes", "not-socket", "a regular file stands where the socket should be", None)]

    def story_10_unstartable(self) -> list[Story]:
        # Its shadow directory was mounted once; the source is a socket now, and Docker refuses to start it.
        legacy = self.srv / "legacy.sock"
        cid = self.run("legacy", binds=[f"{legacy}:/run/legacy.sock"])
        self.client.stop(cid, timeout=1)
        if legacy.is_dir():
            os.rmdir(legacy)
        self.servers.start(legacy)
        with contextlib.suppress(docker.errors.APIError):
            self.client.start(cid)  # fails: "Are you trying to mount a directory onto a file (or vice-versa)?"
        what = "a directory in its own layer where the socket mounts: docker start fails"
        return [Story("legacy", "unstartable", what, str(legacy))]

    def story_11_empty_socket_dir(self) -> list[Story]:
        # An X11 client with no X server: an empty socket directory.
        x11 = self.srv / "x11"
        x11.mkdir(mode=0o1777, exist_ok=True)
        os.chmod(x11, 0o1777)
        self.run("xclient", binds=[f"{x11}:/tmp/.X11-unix"])
        return [Story("xclient", "missing", "an X11 socket directory with no socket in it", None)]

    def story_12_docker_sock(self) -> list[Story]:
        # The engine's own socket, as so many tools mount it.
        self.run("portainer", binds=[f"{self.paths.socket}:/var/run/docker.sock"])
        return [Story("portainer", "live", "the demo daemon's own docker.sock", None)]
