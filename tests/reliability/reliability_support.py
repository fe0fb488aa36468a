"""Helpers for the reliability tests: faulty engines, a non-root socktui, and the check --json contract.

* :class:`UnixProxy` - a forwarder in front of a real engine socket that can slow every answer down or never
  answer at all, and whose own socket can be given any mode (0660 root:root to refuse a non-root user, 0666 to let
  one in).
* :class:`FakeEngine` - a tiny Docker-API-shaped HTTP server on a Unix socket, for what a real daemon will not do
  on demand (claim API 1.24 or 1.99, send odd payloads). It records every request path.
* :func:`nonroot_python` - how to run socktui as uid 65534, which needs an interpreter that user can execute.
* :func:`validate_document` - the README's ``check --json`` contract, checked field by field.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import socketserver
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import docker

import socktui

# Shared by every test; re-exported so these tests import them from one place.
from harness import TRAP as TRAP
from harness import short_dir as short_dir
from harness import unique_name as unique_name
from harness import until as until

# Stops at once on SIGTERM (``sleep`` as PID 1 ignores it, and docker stop would wait its whole timeout).
NOBODY = 65534
VERDICTS = {
    "live",
    "ok",
    "stale",
    "missing",
    "shadowed",
    "detached",
    "denied",
    "not-socket",
    "unstartable",
    "unknown",
}
ROLES = {"socket", "socket-dir", "other"}


def socktui_cli(
    *argv: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    stdout: Any = subprocess.PIPE,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``socktui`` (``python -m socktui.cli``) in a subprocess, with no terminal on stdin."""
    full = dict(os.environ if env is None else env)
    full.pop("SOCKTUI_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "socktui.cli", *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=full,
        check=False,
    )


def exec_in(client: docker.APIClient, cid: str, cmd: list[str]) -> tuple[int, str]:
    exec_id = client.exec_create(cid, cmd)["Id"]
    output = client.exec_start(exec_id)
    code: int = client.exec_inspect(exec_id)["ExitCode"]
    return code, output.decode(errors="replace")


# --------------------------------------------------------------------------- running as nobody


@dataclass(frozen=True)
class NonRoot:
    """An interpreter uid 65534 can run, and the environment that lets it import socktui and its dependencies."""

    python: str
    env: dict[str, str]

    def run(self, argv: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.python, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=self.env,
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            cwd="/",
            check=False,
        )

    def socktui(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run(["-m", "socktui.cli", *argv], timeout=timeout)


def nonroot_python() -> NonRoot | str:
    """How to run socktui as uid 65534, or why it cannot be done here.

    The venv's interpreter may live where nobody can execute it (pyenv under /root); then a system interpreter of the
    same minor version is used with the venv's site-packages and socktui's source on PYTHONPATH.
    """
    if os.geteuid() != 0:
        return "needs root to switch to uid 65534"
    src = str(Path(socktui.__file__).resolve().parent.parent)
    site = str(Path(docker.__file__).resolve().parent.parent)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join([src, site]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable] + [p for p in (f"/usr/bin/{minor}", f"/usr/local/bin/{minor}") if os.path.exists(p)]
    tried = []
    for python in candidates:
        try:
            done = subprocess.run(
                [python, "-c", "import socktui.cli, docker"],
                capture_output=True,
                text=True,
                timeout=30,
                env=env,
                user=NOBODY,
                group=NOBODY,
                extra_groups=[],
                cwd="/",
                check=False,
            )
        except OSError as exc:
            tried.append(f"{python}: {exc}")
            continue
        if done.returncode == 0:
            return NonRoot(python, env)
        tried.append(f"{python}: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
    return "no interpreter uid 65534 can run with socktui importable: " + "; ".join(tried)


# --------------------------------------------------------------------------- a proxy in front of an engine


class UnixProxy:
    """Forward a Unix socket to ``upstream``; ``delay`` seconds before each reply chunk, or ``hang`` for ever.

    A hanging proxy accepts connections and reads requests but never answers: the engine "is there" and stuck.
    """

    def __init__(self, path: Path, upstream: str, *, delay: float = 0.0, hang: bool = False, mode: int = 0o660) -> None:
        self.path = path
        self.upstream = upstream.removeprefix("unix://")
        self.delay = delay
        self.hang = hang
        self.mode = mode
        self.accepted = 0
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> UnixProxy:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        os.chmod(self.path, self.mode)
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener = listener
        self._spawn(self._accept_loop)
        return self

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _keep(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.append(conn)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.settimeout(None)
            self._keep(conn)
            if self.hang:
                self._spawn(self._swallow, conn)
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.upstream)
            except OSError:
                conn.close()
                continue
            self._keep(upstream)
            self._spawn(self._pump, conn, upstream, 0.0)
            self._spawn(self._pump, upstream, conn, self.delay)

    def _swallow(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while not self._stop.is_set() and conn.recv(65536):
                pass

    def _pump(self, src: socket.socket, dst: socket.socket, delay: float) -> None:
        try:
            while not self._stop.is_set():
                chunk = src.recv(65536)
                if not chunk:
                    break
                if delay and self._stop.wait(delay):
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for thread in self._threads:
            thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> UnixProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- a fake engine


_VERSIONED = re.compile(r"^/v\d+\.\d+(/.*)$")


@dataclass
class FakeWorld:
    """What the fake engine answers. ``version`` is the body of /version (None: answer 500)."""

    version: dict[str, Any] | None = field(
        default_factory=lambda: {"Version": "99.0.0-fake", "ApiVersion": "1.99", "MinAPIVersion": "1.24"}
    )
    info: dict[str, Any] = field(default_factory=lambda: {"OperatingSystem": "Fake Linux", "SecurityOptions": []})
    containers: Any = field(default_factory=list)  # the /containers/json body, as it will be sent
    inspect: dict[str, Any] = field(default_factory=dict)  # id -> /containers/{id}/json body
    requests: list[str] = field(default_factory=list)
    version_error: str = "fake engine: no version for you"  # the message of /version's 500 when version is None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def address_string(self) -> str:
        return "fake-engine"

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Api-Version", str((self.server.world.version or {}).get("ApiVersion", "")))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        world = self.server.world
        world.requests.append(self.path)
        path = self.path.split("?", 1)[0]
        match = _VERSIONED.match(path)
        route = match.group(1) if match else path
        if route == "/_ping":
            self._send(200, b"OK", "text/plain")
        elif route == "/version":
            if world.version is None:
                self._send(500, {"message": world.version_error})
            else:
                self._send(200, world.version)
        elif route == "/info":
            self._send(200, world.info)
        elif route == "/containers/json":
            self._send(200, world.containers)
        elif route.startswith("/containers/") and route.endswith("/json"):
            cid = route.split("/")[2]
            if cid in world.inspect:
                self._send(200, world.inspect[cid])
            else:
                self._send(404, {"message": f"No such container: {cid}"})
        else:
            self._send(404, {"message": f"page not found: {route}"})


class _FakeServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    world: FakeWorld


class FakeEngine:
    """A Docker-API-shaped HTTP server on a Unix socket, answering from a :class:`FakeWorld`."""

    def __init__(self, path: Path, world: FakeWorld | None = None) -> None:
        self.path = path
        self.world = world or FakeWorld()
        self._server: _FakeServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def __enter__(self) -> FakeEngine:
        server = _FakeServer(str(self.path), _Handler)
        server.world = self.world
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def api_container(cid: str, name: str, mounts: Sequence[Mapping[str, Any]], state: str = "exited") -> dict[str, Any]:
    """A /containers/json entry the way Docker sends it."""
    return {
        "Id": cid,
        "Names": [f"/{name}"],
        "Image": "fake:latest",
        "State": state,
        "Labels": {},
        "Mounts": [dict(m) for m in mounts],
    }


def api_inspect(cid: str, name: str, mounts: Sequence[Mapping[str, Any]], state: str = "exited") -> dict[str, Any]:
    """A /containers/{id}/json body the way Docker sends it (only the fields socktui reads, plus a few)."""
    return {
        "Id": cid,
        "Name": f"/{name}",
        "Image": "sha256:" + "f" * 64,
        "State": {"Status": state, "Pid": 0, "StartedAt": "2026-01-02T03:04:05.123456789Z"},
        "HostConfig": {"Binds": [f"{m['Source']}:{m['Destination']}" for m in mounts], "GroupAdd": None},
        "Config": {"Image": "fake:latest", "User": "", "Labels": {}},
        "Mounts": [dict(m) for m in mounts],
    }


# --------------------------------------------------------------------------- the check --json contract


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def validate_document(doc: Any) -> list[str]:
    """Every way ``doc`` departs from the README's schema 1; empty when it conforms."""
    problems: list[str] = []

    def need(cond: bool, what: str) -> None:
        if not cond:
            problems.append(what)

    need(isinstance(doc, dict), "document is not an object")
    if not isinstance(doc, dict):
        return problems
    need(set(doc) == {"schema", "engine", "containers"}, f"top-level keys {sorted(doc)}")
    need(doc.get("schema") == 1, "schema is not 1")
    engine = doc.get("engine")
    need(
        isinstance(engine, dict) and set(engine) == {"endpoint", "local", "version", "product", "context"},
        f"engine {engine!r}",
    )
    if isinstance(engine, dict):
        need(_is_str(engine.get("endpoint")) and _is_str(engine.get("version")), "engine endpoint/version types")
        need(isinstance(engine.get("local"), bool), "engine.local is not a bool")
        need(engine.get("product") in ("docker", "podman"), f"engine.product {engine.get('product')!r}")
    containers = doc.get("containers")
    need(isinstance(containers, list), "containers is not a list")
    for c in containers if isinstance(containers, list) else []:
        need(
            isinstance(c, dict) and set(c) == {"id", "name", "state", "image", "compose", "mounts"},
            f"container keys {c!r}",
        )
        if not isinstance(c, dict):
            continue
        for key in ("id", "name", "state", "image"):
            need(_is_str(c.get(key)), f"container.{key} is not a string")
        need(c.get("compose") is None or isinstance(c.get("compose"), dict), "container.compose is not an object")
        need(not str(c.get("name", "")).startswith("/"), f"name with a leading /: {c.get('name')!r}")
        mounts = c.get("mounts")
        need(isinstance(mounts, list), "mounts is not a list")
        for m in mounts if isinstance(mounts, list) else []:
            problems.extend(_validate_mount(m))
    return problems


def _validate_mount(m: Any) -> list[str]:
    problems: list[str] = []
    keys = {"type", "source", "destination", "rw", "role", "verdict", "reason", "listener", "sockets", "fixes"}
    if not isinstance(m, dict) or set(m) != keys:
        return [f"mount keys {m!r}"]
    for key in ("type", "source", "destination", "reason"):
        if not _is_str(m[key]):
            problems.append(f"mount.{key} is not a string")
    if not isinstance(m["rw"], bool):
        problems.append("mount.rw is not a bool")
    if m["role"] not in ROLES:
        problems.append(f"role {m['role']!r}")
    if m["role"] == "other":
        if m["verdict"] is not None:
            problems.append("an 'other' mount has a verdict")
    elif m["verdict"] not in VERDICTS:
        problems.append(f"verdict {m['verdict']!r}")
    listener = m["listener"]
    if listener is not None and (
        not isinstance(listener, dict)
        or set(listener) != {"pid", "command", "container"}
        or not isinstance(listener["pid"], int)
        or not _is_str(listener["command"])
        or not (listener["container"] is None or _is_str(listener["container"]))
    ):
        problems.append(f"listener {listener!r}")
    if not isinstance(m["sockets"], list) or (m["role"] != "socket-dir" and m["sockets"]):
        problems.append(f"sockets {m['sockets']!r} for role {m['role']}")
    for s in m["sockets"] if isinstance(m["sockets"], list) else []:
        if not isinstance(s, dict) or set(s) != {"name", "host_path", "container_path", "verdict", "reason"}:
            problems.append(f"socket {s!r}")
        elif s["verdict"] not in VERDICTS or not all(_is_str(s[k]) for k in ("name", "host_path", "reason")):
            problems.append(f"socket values {s!r}")
    if not isinstance(m["fixes"], list):
        problems.append("fixes is not a list")
    for f in m["fixes"] if isinstance(m["fixes"], list) else []:
        if (
            not isinstance(f, dict)
            or set(f) != {"id", "title", "destructive"}
            or not isinstance(f["destructive"], bool)
        ):
            problems.append(f"fix {f!r}")
    return problems


# --------------------------------------------------------------------------- small things


def listening_socket(path: Path | str, kind: int = socket.SOCK_STREAM, backlog: int = 16) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, kind)
    sock.bind(str(path))
    if kind != socket.SOCK_DGRAM:
        sock.listen(backlog)
    return sock


def is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.lstat().st_mode)
    except FileNotFoundError:
        return False


# --------------------------------------------------------------------------- the app


def log_lines(app: Any) -> list[str]:
    """The event log's lines as drawn (wrapped lines stay separate)."""
    from socktui.ui.widgets import EventLog

    return [" ".join(strip.text.split()) for strip in app.query_one(EventLog).lines]


def log_text(app: Any) -> str:
    return " ".join(log_lines(app))
