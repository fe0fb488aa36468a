"""Talking to the Docker (or Podman) engine: where it is, what it runs, and the few actions fixes need.

One ``GET /containers/json?all=1`` returns every container with its mounts; only the containers that need more
(``State.Pid``, ``HostConfig.Binds``, ``Config.User``, ``State.StartedAt``) are inspected, a few at a time.
"""

from __future__ import annotations

import http.client
import json
import os
import posixpath
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlparse

import docker
import docker.errors
import docker.utils
from docker.context import ContextAPI

from .model import ContainerSpec, EngineInfo, MountSpec

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
INSPECT_CONCURRENCY = 8
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


@dataclass(frozen=True)
class Endpoint:
    url: str
    source: str  # which rule chose it: "--host", "--context NAME", "DOCKER_HOST", ...
    tls: Any = None

    @property
    def local(self) -> bool:
        """True when host paths the engine reports are paths on this machine."""
        parsed = urlparse(self.url)
        if parsed.scheme in ("unix", "http+unix", "npipe", ""):
            return True
        if parsed.scheme in ("tcp", "http", "https"):
            return (parsed.hostname or "") in _LOOPBACK
        return False  # ssh:// and anything else: paths belong to another machine


class EngineError(Exception):
    """The engine could not be used. ``advice`` says what the user can do about it."""

    def __init__(self, endpoint: str, problem: str, advice: str) -> None:
        super().__init__(f"{endpoint}: {problem}")
        self.endpoint = endpoint
        self.problem = problem
        self.advice = advice

    def __str__(self) -> str:
        return f"cannot reach the engine at {self.endpoint}: {self.problem}\n{self.advice}"


def resolve_endpoint(
    host: str | None = None, context: str | None = None, environ: Mapping[str, str] | None = None
) -> Endpoint:
    """Pick the endpoint the way the docker CLI does.

    ``--context``, then ``--host``, then ``DOCKER_HOST``, then ``DOCKER_CONTEXT``, then the config's
    ``currentContext``, then the default socket.
    """
    env = os.environ if environ is None else environ
    if context:
        return _from_context(context, f"--context {context}")
    if host:
        return Endpoint(url=host, source="--host")
    if env.get("DOCKER_HOST"):
        tls = None
        if env.get("DOCKER_TLS_VERIFY") or env.get("DOCKER_CERT_PATH"):
            tls = docker.utils.kwargs_from_env(environment=dict(env)).get("tls")
        return Endpoint(url=env["DOCKER_HOST"], source="DOCKER_HOST", tls=tls)
    if env.get("DOCKER_CONTEXT"):
        name = env["DOCKER_CONTEXT"]
        return _from_context(name, f"DOCKER_CONTEXT={name}")
    try:
        kwargs = ContextAPI.kwargs_from_context(environment={})
    except docker.errors.DockerException:
        kwargs = {}
    if kwargs.get("base_url") and kwargs["base_url"] not in (DEFAULT_SOCKET, "http+" + DEFAULT_SOCKET):
        return Endpoint(url=kwargs["base_url"], source="current context", tls=kwargs.get("tls"))
    return Endpoint(url=DEFAULT_SOCKET, source="default socket")


def _from_context(name: str, source: str) -> Endpoint:
    try:
        kwargs = ContextAPI.kwargs_from_context(name=name, environment={})
    except docker.errors.DockerException as exc:
        raise EngineError(source, f"cannot read docker context {name!r}: {exc}", "Check `docker context ls`.") from exc
    if not kwargs.get("base_url"):
        raise EngineError(source, f"docker context {name!r} not found", "Check `docker context ls`.")
    return Endpoint(url=kwargs["base_url"], source=source, tls=kwargs.get("tls"))


def _advice_for(endpoint: Endpoint, exc: BaseException) -> tuple[str, str]:
    text = str(exc)
    path = urlparse(endpoint.url).path if endpoint.url.startswith("unix://") else ""
    if "Permission denied" in text or "EACCES" in text:
        return (
            "permission denied on the engine socket",
            f"Join the group that owns {path or 'the socket'} (usually: sudo usermod -aG docker $USER, then log in "
            "again), or run socktui with sudo.",
        )
    if "No such file" in text or "FileNotFoundError" in text or "ConnectionRefused" in text or "refused" in text:
        return (
            "nothing is listening there",
            "Start the daemon (sudo systemctl start docker), or point socktui at the right engine with --host, "
            "--context or DOCKER_HOST.",
        )
    if "API versions below" in text or "InvalidVersion" in type(exc).__name__:
        return (
            f"the engine's API is too old for socktui ({text.splitlines()[0] if text else 'unsupported version'})",
            "Upgrade the engine (Docker 1.12 or newer speaks API 1.24), or inspect it with an older tool.",
        )
    if "timed out" in text.lower() or "timeout" in text.lower():
        return (
            "the engine did not answer in time",
            "The daemon may be overloaded or stuck; try again, or check it.",
        )
    return (
        text.splitlines()[0] if text else type(exc).__name__,
        "Check that the engine is running and reachable.",
    )


def _parse_time(value: str | None) -> float | None:
    """Docker timestamps have nanoseconds and 'Z'; the zero time means never."""
    if not value or value.startswith("0001-"):
        return None
    head, _, frac = value.rstrip("Z").partition(".")
    try:
        base = datetime.fromisoformat(head + "+00:00")
    except ValueError:
        return None
    digits = "".join(ch for ch in frac if ch.isdigit())[:6]
    return base.timestamp() + (int(digits) / 10 ** len(digits) if digits else 0.0)


def mount_from_api(raw: Mapping[str, Any], binds: Iterable[str] | None = None) -> MountSpec:
    """A mount from the list or inspect payload. ``binds`` (HostConfig.Binds) tells ``-v`` from ``--mount``."""
    source = str(raw.get("Source") or "")
    destination = str(raw.get("Destination") or "")
    from_binds = None
    if binds is not None:
        from_binds = any(_bind_matches(b, destination) for b in binds)
    return MountSpec(
        type=str(raw.get("Type") or "bind"),
        source=source,
        destination=destination,
        rw=bool(raw.get("RW", True)),
        mode=str(raw.get("Mode") or ""),
        propagation=str(raw.get("Propagation") or ""),
        name=str(raw.get("Name") or ""),
        from_binds=from_binds,
    )


def _bind_matches(bind: str, destination: str) -> bool:
    # A bind is "src:dst[:opts]"; Docker itself splits it on colons, so the same split finds the destination.
    parts = bind.split(":")
    return len(parts) >= 2 and posixpath.normpath(parts[1]) == posixpath.normpath(destination)


def container_from_list(raw: Mapping[str, Any]) -> ContainerSpec:
    names = raw.get("Names") or []
    name = str(names[0]).lstrip("/") if names else str(raw.get("Id", ""))[:12]
    labels = raw.get("Labels") or {}
    return ContainerSpec(
        id=str(raw.get("Id", "")),
        name=name,
        state=str(raw.get("State") or "unknown"),
        image=str(raw.get("Image") or ""),
        mounts=tuple(mount_from_api(m) for m in raw.get("Mounts") or ()),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
    )


def container_from_inspect(raw: Mapping[str, Any]) -> ContainerSpec:
    state = raw.get("State") or {}
    host_config = raw.get("HostConfig") or {}
    config = raw.get("Config") or {}
    binds = tuple(host_config.get("Binds") or ())
    labels = config.get("Labels") or {}
    pid = int(state.get("Pid") or 0)
    return ContainerSpec(
        id=str(raw.get("Id", "")),
        name=str(raw.get("Name") or "").lstrip("/"),
        state=str(state.get("Status") or "unknown"),
        image=str(config.get("Image") or raw.get("Image") or ""),
        mounts=tuple(mount_from_api(m, binds) for m in raw.get("Mounts") or ()),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        pid=pid or None,
        started_at=_parse_time(state.get("StartedAt")),
        user=str(config.get("User") or ""),
        group_add=tuple(str(g) for g in host_config.get("GroupAdd") or ()),
        inspected=True,
    )


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


class _LeanInspector:
    """``GET /containers/{id}/json`` over a unix socket with plain http.client, one keep-alive connection per thread.

    Inspecting a thousand containers is the bulk of a check; docker-py's requests stack costs about 2.5 times more
    per call (measured in bench/), so local unix endpoints use this and everything else keeps docker-py.
    """

    def __init__(self, socket_path: str, api_version: str, timeout: float) -> None:
        self.socket_path = socket_path
        self.prefix = f"/v{api_version}"
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> _UnixHTTPConnection:
        conn: _UnixHTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _UnixHTTPConnection(self.socket_path, self.timeout)
            self._local.conn = conn
        return conn

    def inspect(self, container_id: str) -> dict[str, Any] | None:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("GET", f"{self.prefix}/containers/{quote(container_id, safe='')}/json")
                response = conn.getresponse()
                body = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        if response.status == 404:
            return None
        if response.status != 200:
            raise OSError(f"inspect {container_id[:12]}: HTTP {response.status}: {body[:200]!r}")
        payload: dict[str, Any] = json.loads(body)
        return payload


class Engine:
    """A connection to one engine. Thread-safe for the calls socktui makes (docker-py pools connections)."""

    def __init__(self, endpoint: Endpoint, timeout: int = 10) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._client: docker.APIClient | None = None
        self._info: EngineInfo | None = None
        self._lean: _LeanInspector | None = None

    @classmethod
    def from_options(cls, host: str | None = None, context: str | None = None, timeout: int = 10) -> Engine:
        return cls(resolve_endpoint(host=host, context=context), timeout=timeout)

    def _fail(self, exc: BaseException) -> EngineError:
        problem, advice = _advice_for(self.endpoint, exc)
        return EngineError(f"{self.endpoint.url} ({self.endpoint.source})", problem, advice)

    @property
    def client(self) -> docker.APIClient:
        if self._client is None:
            try:
                # version=None negotiates: engines have raised and lowered their minimum API version.
                self._client = docker.APIClient(
                    base_url=self.endpoint.url,
                    version=None,
                    timeout=self.timeout,
                    tls=self.endpoint.tls or False,
                )
            except docker.errors.DockerException as exc:
                raise self._fail(exc) from exc
        return self._client

    def info(self) -> EngineInfo:
        if self._info is None:
            try:
                version = self.client.version()
                info = self.client.info()
            except (docker.errors.DockerException, OSError) as exc:
                raise self._fail(exc) from exc
            security = " ".join(info.get("SecurityOptions") or [])
            self._info = EngineInfo(
                endpoint=self.endpoint.url,
                local=self.endpoint.local,
                version=str(version.get("Version", "")),
                api_version=str(self.client.api_version),
                rootless="rootless" in security,
                desktop="Docker Desktop" in str(info.get("OperatingSystem", "")),
            )
        return self._info

    def reset(self) -> None:
        """Forget the connection so the next call reconnects (after the daemon went away)."""
        if self._client is not None:
            self._client.close()
        self._client = None
        self._info = None
        self._lean = None

    def list_containers(self) -> list[ContainerSpec]:
        try:
            raw = self.client.containers(all=True)
        except (docker.errors.DockerException, OSError) as exc:
            raise self._fail(exc) from exc
        return [container_from_list(c) for c in raw]

    def _lean_inspector(self) -> _LeanInspector | None:
        if self._lean is None and self.endpoint.url.startswith("unix://") and not self.endpoint.tls:
            self._lean = _LeanInspector(urlparse(self.endpoint.url).path, self.client.api_version, self.timeout)
        return self._lean

    def inspect_one(self, container_id: str) -> ContainerSpec | None:
        """None when the container is gone: vanishing between list and inspect is normal, not an error."""
        try:
            lean = self._lean_inspector()
            if lean is not None:
                raw = lean.inspect(container_id)
                return None if raw is None else container_from_inspect(raw)
            return container_from_inspect(self.client.inspect_container(container_id))
        except docker.errors.NotFound:
            return None
        except (docker.errors.DockerException, OSError, ValueError) as exc:
            raise self._fail(exc) from exc

    def inspect_stream(self, specs: Iterable[ContainerSpec]) -> Iterator[ContainerSpec | None]:
        """Inspect a few at a time and yield each result as soon as it is in (None for a container now gone)."""
        specs = list(specs)
        if not specs:
            return

        def one(spec: ContainerSpec) -> ContainerSpec | None:
            return merge_inspect(spec, self.inspect_one(spec.id))

        with ThreadPoolExecutor(max_workers=min(INSPECT_CONCURRENCY, len(specs))) as pool:
            for future in as_completed([pool.submit(one, spec) for spec in specs]):
                yield future.result()

    def events(self, since: int | None = None) -> Iterator[dict[str, Any]]:
        """Container events as decoded dicts; blocks between events. Raises EngineError when the stream breaks."""
        try:
            stream = self.client.events(decode=True, filters={"type": "container"}, since=since)
        except (docker.errors.DockerException, OSError) as exc:
            raise self._fail(exc) from exc
        try:
            yield from stream
        except (docker.errors.DockerException, OSError) as exc:
            raise self._fail(exc) from exc
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    # Actions used by fixes.
    def stop(self, container_id: str, timeout: int = 10) -> None:
        self.client.stop(container_id, timeout=timeout)

    def start(self, container_id: str) -> None:
        self.client.start(container_id)

    def restart(self, container_id: str, timeout: int = 10) -> None:
        self.client.restart(container_id, timeout=timeout)


def merge_inspect(listed: ContainerSpec, inspected: ContainerSpec | None) -> ContainerSpec | None:
    if inspected is None:
        return None
    # The list's name and image are what users recognise (image as they typed it); inspect has the rest.
    return replace(inspected, image=listed.image or inspected.image)
