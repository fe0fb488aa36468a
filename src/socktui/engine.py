"""Talking to the Docker (or Podman) engine: where it is, what it runs, and the few actions fixes need.

One ``GET /containers/json?all=1`` returns every container with its mounts; only the containers that need more
(``State.Pid``, ``HostConfig.Binds``, ``Config.User``, ``State.StartedAt``) are inspected, a few at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

from .model import ContainerSpec, EngineInfo, MountSpec, Product
from .unixhttp import HTTPError, UnixHTTPClient

if TYPE_CHECKING:
    import docker

    from .sshdial import SshDialer

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
DOCKER_SOCKET_PATH = "/var/run/docker.sock"
ROOTFUL_PODMAN_SOCKET = "/run/podman/podman.sock"
DEFAULT_TCP_PORT = 2375  # the docker CLI's default for tcp://host, with or without TLS
MINIMUM_API_VERSION = "1.24"  # docker-py's own minimum; below it docker-py refuses every call
INSPECT_CONCURRENCY = 8
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


@dataclass(frozen=True)
class Endpoint:
    url: str
    source: str  # which rule chose it: "--host", "--context NAME", "DOCKER_HOST", ...
    tls: Any = None
    context: str | None = None  # the docker context it came from, when one did

    @property
    def local(self) -> bool:
        """True when host paths the engine reports are paths on this machine."""
        parsed = urlparse(self.url)
        if parsed.scheme in ("unix", "http+unix", "npipe", ""):
            return True
        if parsed.scheme in ("tcp", "http", "https"):
            return (parsed.hostname or "") in _LOOPBACK
        return False  # ssh:// and anything else: paths belong to another machine


class Failure(StrEnum):
    """Why the engine could not be used: decides whether its socket path is worth judging (``enginesock``)."""

    UNREACHABLE = "unreachable"  # nothing accepted the connection: no file, a refused connect
    DENIED = "denied"  # the socket refused socktui (EACCES)
    TOO_OLD = "too-old"
    TIMEOUT = "timeout"
    ENDPOINT = "endpoint"  # the endpoint itself could not be chosen
    OTHER = "other"

    @property
    def at_the_socket(self) -> bool:
        """The socket could not be used at all, so what stands at its path says more than the error does."""
        return self in (Failure.UNREACHABLE, Failure.DENIED)


class EngineError(Exception):
    """The engine could not be used. ``advice`` says what the user can do about it."""

    def __init__(self, endpoint: str, problem: str, advice: str, failure: Failure = Failure.OTHER) -> None:
        super().__init__(f"{endpoint}: {problem}")
        self.endpoint = endpoint
        self.problem = problem
        self.advice = advice
        self.failure = failure

    def __str__(self) -> str:
        return f"cannot reach the engine at {self.endpoint}: {self.problem}\n{self.advice}"


class EndpointError(EngineError):
    """The endpoint could not even be chosen: a malformed address, a context that does not exist, -H with --context."""

    def __init__(self, endpoint: str, problem: str, advice: str, failure: Failure = Failure.ENDPOINT) -> None:
        super().__init__(endpoint, problem, advice, failure)

    def __str__(self) -> str:
        return f"{self.problem}\n{self.advice}"


def parse_host(value: str, option: str) -> str:
    """An engine address as the docker CLI reads ``-H``, normalised (``tcp://host`` gets port 2375).

    Anything the CLI would reject, and a trailing slash or a bare path (which the CLI silently turns into nonsense
    such as ``tcp://localhost:2375/var/run/docker.sock``), raises :class:`EndpointError` with a sentence saying what
    to write instead.
    """
    text = value.strip()

    def bad(problem: str, advice: str) -> EndpointError:
        return EndpointError(f"{option} {value!r}", f"{option} {value!r}: {problem}", advice)

    if not text:
        raise bad("is empty", "Give an address such as unix:///var/run/docker.sock or tcp://HOST:2375.")
    if "://" not in text:
        if text.startswith(("/", ".")):
            raise bad("is a path, not an engine address", f"Write it as unix://{text}.")
        text = "tcp://" + text  # the docker CLI reads a bare host[:port] as tcp
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme == "unix":
        path = rest or DOCKER_SOCKET_PATH
        if not path.startswith("/"):
            raise bad("names a relative socket path", f"Write the absolute path: unix://{os.path.abspath(path)}.")
        if len(path) > 1 and path.endswith("/"):
            raise bad(
                "ends with a slash, which names a directory, never a socket",
                f"Write it without the slash: unix://{path.rstrip('/')}.",
            )
        return f"unix://{path}"
    if scheme in ("tcp", "http", "https", "ssh"):
        parsed = urlparse(f"{scheme}://{rest}")
        if parsed.path or parsed.query or parsed.fragment or text.endswith("?"):
            fixed = f"{scheme}://{parsed.netloc}"
            what = "ends with a slash" if parsed.path == "/" and not parsed.query else "has a path or query"
            raise bad(f"{what}: an engine address is only a host and a port", f"Write it as {fixed}.")
        try:
            port = parsed.port
        except ValueError:
            raise bad("has a port that is not a number from 1 to 65535", "Write it as SCHEME://HOST:PORT.") from None
        host = parsed.hostname
        if not host:
            raise bad("has no host name", f"Write it as {scheme}://HOST" + (":2375." if scheme == "tcp" else "."))
        if port == 0:
            raise bad("has port 0", "Write it as SCHEME://HOST:PORT with a real port.")
        if scheme == "ssh":
            return text
        netloc = parsed.netloc if port is not None else f"{parsed.netloc}:{DEFAULT_TCP_PORT}"
        return f"{scheme}://{netloc}"
    if scheme in ("npipe", "fd"):
        raise bad(f"{scheme}:// endpoints do not exist on Linux", "Use unix://PATH, tcp://HOST:PORT or ssh://HOST.")
    raise bad(f"{scheme}:// is not an engine address scheme", "Use unix://PATH, tcp://HOST:PORT or ssh://[USER@]HOST.")


def docker_config_dir(env: Mapping[str, str]) -> str:
    """Where the docker CLI keeps config.json and contexts: ``$DOCKER_CONFIG``, else ``$HOME/.docker``."""
    if env.get("DOCKER_CONFIG"):
        return env["DOCKER_CONFIG"]
    return os.path.join(env.get("HOME") or os.path.expanduser("~"), ".docker")


def _current_context(config_dir: str) -> str | None:
    path = os.path.join(config_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise EndpointError(
            path, f"cannot read {path}: {exc}", "Fix or remove the file (the docker CLI cannot read it either)."
        ) from exc
    current = config.get("currentContext") if isinstance(config, dict) else None
    return str(current) if current else None


def resolve_endpoint(
    host: str | None = None,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    docker_socket: str | None = None,
    podman_sockets: Sequence[str] | None = None,
) -> Endpoint:
    """Pick the endpoint the way the docker CLI does, then Podman's clients when nothing names one.

    ``--context``, then ``--host``, then ``DOCKER_HOST``, then ``DOCKER_CONTEXT``, then the config's
    ``currentContext``; with none of them, Docker's socket, and when it is absent Podman's: ``CONTAINER_HOST``,
    ``/run/podman/podman.sock``, ``$XDG_RUNTIME_DIR/podman/podman.sock``. Contexts are read from
    ``$DOCKER_CONFIG`` (or ``~/.docker``) whether or not a config.json exists, as the CLI reads them.
    """
    env = os.environ if environ is None else environ
    docker_socket = docker_socket or DOCKER_SOCKET_PATH
    config_dir = docker_config_dir(env)
    if context and host:
        raise EndpointError(
            "--context and --host",
            "--context and --host (-H) cannot be used together",
            "Give one of them (the docker CLI refuses both too: conflicting options).",
        )
    if context:
        return _from_context(context, f"--context {context}", config_dir, env, docker_socket, podman_sockets)
    if host:
        return Endpoint(url=parse_host(host, "--host"), source="--host")
    if env.get("DOCKER_HOST"):
        tls = None
        if env.get("DOCKER_TLS_VERIFY") or env.get("DOCKER_CERT_PATH"):
            import docker.utils  # TLS is docker-py's business: imported only when asked for

            tls = docker.utils.kwargs_from_env(environment=dict(env)).get("tls")
        return Endpoint(url=parse_host(env["DOCKER_HOST"], "DOCKER_HOST"), source="DOCKER_HOST", tls=tls)
    if env.get("DOCKER_CONTEXT"):
        name = env["DOCKER_CONTEXT"]
        return _from_context(name, f"DOCKER_CONTEXT={name}", config_dir, env, docker_socket, podman_sockets)
    current = _current_context(config_dir)
    if current:
        where = os.path.join(config_dir, "config.json")
        return _from_context(
            current, f"currentContext in {where}", config_dir, env, docker_socket, podman_sockets, current=True
        )
    return _unnamed(env, docker_socket, podman_sockets)


def podman_socket_candidates(env: Mapping[str, str]) -> list[str]:
    """Podman's own clients look here, rootful first."""
    candidates = [ROOTFUL_PODMAN_SOCKET]
    if env.get("XDG_RUNTIME_DIR"):
        candidates.append(os.path.join(env["XDG_RUNTIME_DIR"], "podman", "podman.sock"))
    return candidates


def _unnamed(env: Mapping[str, str], docker_socket: str, podman_sockets: Sequence[str] | None) -> Endpoint:
    """Nothing named an endpoint: Docker's socket when it exists, else where Podman's clients look."""
    if os.path.lexists(docker_socket):
        return Endpoint(url=f"unix://{docker_socket}", source="default socket")
    absent = f"no Docker socket at {docker_socket}"
    if env.get("CONTAINER_HOST"):
        return Endpoint(url=parse_host(env["CONTAINER_HOST"], "CONTAINER_HOST"), source=f"CONTAINER_HOST, {absent}")
    for path in podman_socket_candidates(env) if podman_sockets is None else podman_sockets:
        if os.path.lexists(path):
            return Endpoint(url=f"unix://{path}", source=f"Podman's socket, {absent}")
    return Endpoint(url=f"unix://{docker_socket}", source="default socket")


def _from_context(
    name: str,
    source: str,
    config_dir: str,
    env: Mapping[str, str],
    docker_socket: str,
    podman_sockets: Sequence[str] | None,
    *,
    current: bool = False,
) -> Endpoint:
    """A context from the CLI's store: ``contexts/meta/<sha256 of the name>/meta.json`` under the config dir."""
    if name == "default":
        # The CLI's built-in context: whatever the defaults give, no file behind it.
        return replace(_unnamed(env, docker_socket, podman_sockets), context="default")
    import hashlib  # only contexts need it

    digest = hashlib.sha256(name.encode()).hexdigest()
    meta_path = os.path.join(config_dir, "contexts", "meta", digest, "meta.json")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        if current:
            problem = f'the current docker context "{name}" ({source}) does not exist'
            advice = (
                f"Create it (docker context create {name} --docker host=...), choose another with "
                "`docker context use NAME`, or remove currentContext from the config."
            )
        else:
            problem = f'docker context "{name}" ({source}) does not exist (looked in {os.path.dirname(meta_path)})'
            advice = "See `docker context ls` for the contexts there are."
        raise EndpointError(source, problem, advice) from None
    except (OSError, ValueError) as exc:
        raise EndpointError(source, f'cannot read docker context "{name}" ({meta_path}): {exc}', "") from exc
    endpoint = ((meta.get("Endpoints") or {}) if isinstance(meta, dict) else {}).get("docker") or {}
    url = str(endpoint.get("Host") or "")
    if not url:
        raise EndpointError(source, f'docker context "{name}" has no docker endpoint', "Check `docker context ls`.")
    parsed = parse_host(url, f'context "{name}"')
    tls_dir = os.path.join(config_dir, "contexts", "tls", digest, "docker")
    return Endpoint(url=parsed, source=source, tls=_context_tls(tls_dir, endpoint), context=name)


def _context_tls(tls_dir: str, endpoint: Mapping[str, Any]) -> Any:
    files = {n: os.path.join(tls_dir, f"{n}.pem") for n in ("ca", "cert", "key")}
    present = {n: p for n, p in files.items() if os.path.exists(p)}
    skip_verify = bool(endpoint.get("SkipTLSVerify"))
    if not present and not skip_verify:
        return None
    client_cert = (present["cert"], present["key"]) if "cert" in present and "key" in present else None
    import docker.tls  # TLS is docker-py's business: imported only when a context has TLS material

    return docker.tls.TLSConfig(client_cert=client_cert, ca_cert=present.get("ca"), verify=not skip_verify)


def _looks_like_podman(endpoint: Endpoint) -> bool:
    return "podman" in endpoint.url or endpoint.source.startswith(("CONTAINER_HOST", "Podman"))


def _advice_for(endpoint: Endpoint, exc: BaseException) -> tuple[Failure, str, str]:
    text = str(exc)
    path = urlparse(endpoint.url).path if endpoint.url.startswith("unix://") else ""
    if isinstance(exc, PermissionError) or "Permission denied" in text or "EACCES" in text:
        return (
            Failure.DENIED,
            "permission denied on the engine socket",
            f"Join the group that owns {path or 'the socket'} (usually: sudo usermod -aG docker $USER, then log in "
            "again), or run socktui with sudo.",
        )
    if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)) or any(
        words in text for words in ("No such file", "FileNotFoundError", "ConnectionRefused", "refused")
    ):
        if _looks_like_podman(endpoint):
            start = "Start Podman's API service (sudo systemctl start podman.socket, or systemctl --user for rootless)"
        elif endpoint.source == "default socket":
            start = (
                "Start the daemon (sudo systemctl start docker; for Podman: sudo systemctl start podman.socket, "
                "which socktui finds by itself)"
            )
        else:
            start = "Start the daemon (sudo systemctl start docker)"
        return (
            Failure.UNREACHABLE,
            "nothing is listening there",
            f"{start}, or point socktui at the right engine with --host, --context or DOCKER_HOST.",
        )
    if "API versions below" in text or "InvalidVersion" in type(exc).__name__:
        return (
            Failure.TOO_OLD,
            f"the engine's API is too old for socktui ({text.splitlines()[0] if text else 'unsupported version'})",
            "Upgrade the engine (Docker 1.12 or newer speaks API 1.24), or inspect it with an older tool.",
        )
    if isinstance(exc, TimeoutError) or "timed out" in text.lower() or "timeout" in text.lower():
        return (
            Failure.TIMEOUT,
            "the engine did not answer in time",
            "The daemon may be overloaded or stuck; try again, or check it.",
        )
    return (
        Failure.OTHER,
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


def container_from_list(raw: Mapping[str, Any], product: Product = Product.DOCKER) -> ContainerSpec:
    names = raw.get("Names") or []
    # Docker spells names with a leading "/"; without names the short id stands in, and is never "/" either.
    name = (str(names[0]) if names else str(raw.get("Id", ""))[:12]).lstrip("/")
    labels = raw.get("Labels") or {}
    return ContainerSpec(
        id=str(raw.get("Id", "")),
        name=name,
        state=str(raw.get("State") or "unknown"),
        image=str(raw.get("Image") or ""),
        mounts=tuple(mount_from_api(m) for m in raw.get("Mounts") or ()),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        product=product,
    )


def container_from_inspect(raw: Mapping[str, Any], product: Product = Product.DOCKER) -> ContainerSpec:
    state = raw.get("State") or {}
    host_config = raw.get("HostConfig") or {}
    config = raw.get("Config") or {}
    binds = tuple(host_config.get("Binds") or ())
    labels = config.get("Labels") or {}
    pid = int(state.get("Pid") or 0)
    graph = raw.get("GraphDriver")
    graph = graph if isinstance(graph, Mapping) else {}
    layers = graph.get("Data")
    layers = layers if isinstance(layers, Mapping) else {}
    exit_code = state.get("ExitCode")
    return ContainerSpec(
        id=str(raw.get("Id", "")),
        name=str(raw.get("Name") or "").lstrip("/"),
        state=str(state.get("Status") or "unknown"),
        image=str(config.get("Image") or raw.get("Image") or ""),
        mounts=tuple(mount_from_api(m, binds) for m in raw.get("Mounts") or ()),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        pid=pid or None,
        started_at=_parse_time(state.get("StartedAt")),
        created_at=_parse_time(str(raw.get("Created") or "")),
        user=str(config.get("User") or ""),
        group_add=tuple(str(g) for g in host_config.get("GroupAdd") or ()),
        inspected=True,
        state_error=str(state.get("Error") or ""),
        exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
        storage_driver=str(graph.get("Name") or ""),
        upper_dir=str(layers.get("UpperDir") or ""),
        lower_dirs=tuple(d for d in str(layers.get("LowerDir") or "").split(":") if d),
        product=product,
    )


def product_of(version: Mapping[str, Any]) -> Product:
    """Podman's Docker-compatible ``/version`` names a "Podman Engine" component; Docker's names "Engine"."""
    names = " ".join(str(c.get("Name") or "") for c in version.get("Components") or () if isinstance(c, Mapping))
    platform = (
        str((version.get("Platform") or {}).get("Name") or "") if isinstance(version.get("Platform"), dict) else ""
    )
    return Product.PODMAN if "podman" in f"{names} {platform}".lower() else Product.DOCKER


def podman_version_from_ping(status: int, headers: Mapping[str, str]) -> dict[str, Any] | None:
    """Podman's answer to ``GET /_ping``, as much of a ``/version`` payload as socktui needs; None for others.

    ``headers`` are the ping's, with lower-case names. Podman answers ``/version`` (and ``/info``) slowly, 0.3 to
    1 s each, and ``/_ping`` in milliseconds; its ping names the API version (``Api-Version``) and the product and its
    version (``Server: Libpod/4.3.1 (linux)``). Docker's ping has no rootless or Desktop facts, so Docker is asked
    ``/version`` as well (it answers that at once).
    """
    if status != 200:
        return None
    server = str(headers.get("server") or "")
    api_version = str(headers.get("api-version") or "")
    if not server.startswith("Libpod/") or not api_version:
        return None
    version = str(headers.get("libpod-api-version") or server.removeprefix("Libpod/").split(" ", 1)[0])
    return {
        "ApiVersion": api_version,
        "Version": version,
        "Components": [{"Name": "Podman Engine", "Version": version}],
    }


class InvalidVersion(ValueError):
    """The engine speaks an API version below socktui's minimum (docker-py's own ``InvalidVersion`` wording)."""


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            raise ValueError(f"the engine's API version {version!r} is not a version number")
        parts.append(int(digits))
    return tuple(parts)


def api_version_of(payload: Any) -> str:
    """The API version to speak: the engine's own, from its ``/version`` (or Podman's ping); raises when unusable."""
    api_version = str(payload.get("ApiVersion") or "") if isinstance(payload, Mapping) else ""
    if not api_version:
        raise ValueError('Invalid response from docker daemon: key "ApiVersion" is missing.')
    if _version_tuple(api_version) < _version_tuple(MINIMUM_API_VERSION):
        raise InvalidVersion(f"API versions below {MINIMUM_API_VERSION} are no longer supported by this library.")
    return api_version


def info_from_version(version: Mapping[str, Any], endpoint: Endpoint, api_version: str = "") -> EngineInfo:
    """Everything socktui needs to know about the engine, from its ``/version`` alone."""
    components = [c for c in version.get("Components") or () if isinstance(c, Mapping)]
    platform = version.get("Platform")
    platform = platform if isinstance(platform, Mapping) else {}
    return EngineInfo(
        endpoint=endpoint.url,
        local=endpoint.local,
        version=str(version.get("Version", "")),
        api_version=api_version or str(version.get("ApiVersion") or ""),
        # Rootless dockerd runs under rootlesskit and lists it among its components.
        rootless=any("rootlesskit" in str(c.get("Name") or "").lower() for c in components),
        desktop="Docker Desktop" in str(platform.get("Name") or ""),
        product=product_of(version),
        context=endpoint.context,
        source=endpoint.source,
    )


# What the lean client raises for an engine that cannot be used; docker-py's DockerException is added for the rest.
_LEAN_ERRORS: tuple[type[BaseException], ...] = (HTTPError, OSError, ValueError)


def _docker_py_errors() -> tuple[type[BaseException], ...]:
    import docker.errors

    return (docker.errors.DockerException, OSError, ValueError)


class EngineEvents:
    """An open stream of container events: iterate for decoded dicts (EngineError when it breaks), ``close()`` from
    any thread, also while another one waits for the next event."""

    def __init__(
        self,
        engine: Engine,
        items: Iterable[dict[str, Any]],
        closer: Callable[[], object],
        errors: tuple[type[BaseException], ...],
    ) -> None:
        self._engine = engine
        self._items = items
        self._closer = closer
        self._errors = errors

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            yield from self._items
        except self._errors as exc:
            raise self._engine._fail(exc) from exc

    def close(self) -> None:
        # ValueError: a generator closed while another thread runs it; docker-py cannot cancel streams over ssh.
        # Either way the stream ends at its next event instead.
        with contextlib.suppress(*self._errors):
            self._closer()


class Engine:
    """A connection to one engine. Thread-safe for the calls socktui makes.

    A local ``unix://`` endpoint without TLS is spoken to with socktui's own small HTTP client (``unixhttp``), so a
    check never imports docker-py, requests or urllib3; tcp://, ssh:// and TLS endpoints go through docker-py
    (``client``), imported only then.
    """

    def __init__(self, endpoint: Endpoint, timeout: int = 10) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._client: docker.APIClient | None = None
        self._info: EngineInfo | None = None
        self._http: UnixHTTPClient | None = None
        self._prefix = ""  # "/v1.41": the API version spoken, for the lean client's paths
        self._dialer: SshDialer | None = None
        self._lock = threading.RLock()  # one handshake at a time: threads that need it meanwhile wait for it
        self._early: tuple[threading.Thread, dict[str, Any]] | None = None  # a list asked for ahead (list_early)
        self.listed_at: float | None = None  # time.time() when the last list was asked for

    @classmethod
    def from_options(cls, host: str | None = None, context: str | None = None, timeout: int = 10) -> Engine:
        return cls(resolve_endpoint(host=host, context=context), timeout=timeout)

    @property
    def lean(self) -> bool:
        """True when socktui speaks to this endpoint itself: a local unix socket, no TLS."""
        return self.endpoint.url.startswith("unix://") and not self.endpoint.tls

    def _errors(self) -> tuple[type[BaseException], ...]:
        return _LEAN_ERRORS if self.lean else _docker_py_errors()

    def _fail(self, exc: BaseException) -> EngineError:
        failure, problem, advice = _advice_for(self.endpoint, exc)
        if self._dialer is not None and self._dialer.last_error:
            from .sshdial import ssh_argv

            # Over ssh every failure looks like a closed connection; what ssh itself said is the reason.
            failure, problem = Failure.OTHER, f"ssh said: {self._dialer.last_error}"
            advice = (
                f"Check that `{' '.join(ssh_argv(self.endpoint.url)[:-3])} docker version` works: socktui runs the "
                "same ssh command as the docker CLI, with your ssh config and keys."
            )
        return EngineError(f"{self.endpoint.url} ({self.endpoint.source})", problem, advice, failure)

    @property
    def client(self) -> docker.APIClient:
        """docker-py, speaking the engine's API version. socktui itself uses it only for endpoints that are not
        :attr:`lean`; for a lean one it is made on demand (and imports docker-py then)."""
        with self._lock:
            if self._client is None:
                if not self.lean:
                    self._connect()
                else:
                    import docker

                    api_version = self.info().api_version
                    self._client = docker.APIClient(
                        base_url=self.endpoint.url, version=api_version, timeout=self.timeout
                    )
            assert self._client is not None
            return self._client

    def _connect(self) -> None:
        """Ask the engine what it is once: ``/_ping`` (enough for Podman), else ``/version``.

        docker-py's own negotiation (``version=None``) would ask ``/version`` for the API version alone, and the
        product and its version would then need a second ``/version`` and an ``/info``: on Podman each takes 0.3 to
        0.8 s. Engines have raised and lowered their minimum API version, so the engine's own ``ApiVersion`` is used.
        """
        if self.lean:
            self._connect_lean()
        else:
            self._connect_docker_py()

    def _connect_lean(self) -> None:
        http = UnixHTTPClient(urlparse(self.endpoint.url).path, self.timeout)
        try:
            ping = http.request("GET", "/_ping")
            payload = podman_version_from_ping(ping.status, ping.headers)
            if payload is None:  # Docker (or an engine that says nothing in its ping): its /version, which is quick
                payload = http.get_json("/version")
            api_version = api_version_of(payload)
        except _LEAN_ERRORS as exc:
            http.close()
            raise self._fail(exc) from exc
        self._http = http
        self._prefix = f"/v{api_version}"
        self._info = info_from_version(payload, self.endpoint, api_version)

    def _connect_docker_py(self) -> None:
        import docker

        from .sshdial import SshDialer

        url = self.endpoint.url
        if url.startswith("ssh://"):
            # The system ssh, as the docker CLI uses it, with the user's config, agent and keys (and no paramiko).
            if self._dialer is None:
                self._dialer = SshDialer(url)
            url = self._dialer.base_url
        try:
            client = docker.APIClient(
                base_url=url,
                version=MINIMUM_API_VERSION,  # a placeholder: replaced by the engine's own below, no request made
                timeout=self.timeout,
                tls=self.endpoint.tls or False,
            )
        except (docker.errors.DockerException, ValueError) as exc:
            raise self._fail(exc) from exc
        try:
            ping = client._get(client.base_url + "/_ping")  # type: ignore[attr-defined]
            headers = {str(k).lower(): str(v) for k, v in ping.headers.items()}
            payload = podman_version_from_ping(ping.status_code, headers)
            if payload is None:  # Docker (or an engine that says nothing in its ping): its /version, which is quick
                payload = client.version(api_version=False)
            api_version = api_version_of(payload)
        except (docker.errors.DockerException, OSError, ValueError) as exc:
            client.close()
            raise self._fail(exc) from exc
        # docker-py keeps the version it speaks here; setting it is what version=None would do after its own request.
        client._version = api_version  # type: ignore[attr-defined]
        self._client = client
        self._info = info_from_version(payload, self.endpoint, api_version)

    def info(self) -> EngineInfo:
        with self._lock:
            if self._info is None:
                self._connect()
            assert self._info is not None
            return self._info

    def _lean_client(self) -> UnixHTTPClient | None:
        """The lean client, connected (EngineError when the engine cannot be used); None for docker-py endpoints."""
        if not self.lean:
            return None
        with self._lock:
            if self._http is None:
                self._connect()
            assert self._http is not None
            return self._http

    def reset(self) -> None:
        """Forget the connection so the next call reconnects (after the daemon went away)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
            if self._http is not None:
                self._http.close()
            if self._dialer is not None:
                self._dialer.close()
            self._client = None
            self._http = None
            self._info = None
            self._dialer = None

    def list_early(self) -> None:
        """Ask for the list now, in the background, for the next :meth:`list_containers` to take: the TUI's start-up
        imports Textual meanwhile, and the engine's answer (a tenth of a second for a thousand containers) is in by
        the time the screen wants it. A failure is not kept: the next call asks again, and says what went wrong."""
        if self._early is not None:
            return
        box: dict[str, Any] = {}

        def fetch() -> None:
            box["at"] = time.time()
            with contextlib.suppress(Exception):
                box["specs"] = self._list_now()

        thread = threading.Thread(target=fetch, name="socktui-first-list", daemon=True)
        self._early = (thread, box)
        thread.start()

    def list_containers(self) -> list[ContainerSpec]:
        early, self._early = self._early, None
        if early is not None:
            thread, box = early
            thread.join()
            if "specs" in box:
                self.listed_at = box["at"]
                specs: list[ContainerSpec] = box["specs"]
                return specs
        self.listed_at = time.time()
        return self._list_now()

    def _list_now(self) -> list[ContainerSpec]:
        http = self._lean_client()
        try:
            if http is not None:
                raw = http.get_json(f"{self._prefix}/containers/json", {"all": 1})
            else:
                raw = self.client.containers(all=True)
        except self._errors() as exc:
            raise self._fail(exc) from exc
        product = self.info().product
        return [container_from_list(c, product) for c in raw]

    def inspect_one(self, container_id: str) -> ContainerSpec | None:
        """None when the container is gone: vanishing between list and inspect is normal, not an error."""
        http = self._lean_client()
        if http is None:
            return self._inspect_docker_py(container_id)
        path = f"{self._prefix}/containers/{quote(container_id, safe='')}/json"
        try:
            response = http.request("GET", path)
            if response.status == 404:
                return None
            if response.status >= 300:
                raise HTTPError.of("GET", path, response)
            raw = response.json()
        except _LEAN_ERRORS as exc:
            raise self._fail(exc) from exc
        return container_from_inspect(raw, self.info().product)

    def _inspect_docker_py(self, container_id: str) -> ContainerSpec | None:
        import docker.errors

        try:
            return container_from_inspect(self.client.inspect_container(container_id), self.info().product)
        except docker.errors.NotFound:
            return None
        except (docker.errors.DockerException, OSError, ValueError) as exc:
            raise self._fail(exc) from exc

    def inspect_stream(self, specs: Iterable[ContainerSpec]) -> Iterator[ContainerSpec | None]:
        """Inspect a few at a time and yield each result as soon as it is in (None for a container now gone).

        A failure is raised as soon as it is in; the inspects not yet begun are then not made.
        """
        specs = list(specs)
        if not specs:
            return
        if len(specs) == 1:
            yield merge_inspect(specs[0], self.inspect_one(specs[0].id))
            return
        yield from _in_threads(lambda spec: merge_inspect(spec, self.inspect_one(spec.id)), specs)

    def open_events(self, since: int | None = None) -> EngineEvents:
        """Open the container event stream now: when this returns, the engine has answered. EngineError otherwise."""
        http = self._lean_client()
        errors = self._errors()
        try:
            if http is not None:
                query = {"filters": json.dumps({"type": ["container"]}), "since": since}
                stream = http.stream("GET", f"{self._prefix}/events", query)
                return EngineEvents(self, stream, stream.close, errors)
            raw = self.client.events(decode=True, filters={"type": "container"}, since=since)
        except errors as exc:
            raise self._fail(exc) from exc
        return EngineEvents(self, raw, raw.close, errors)

    def events(self, since: int | None = None) -> Iterator[dict[str, Any]]:
        """Container events as decoded dicts; blocks between events. Raises EngineError when the stream breaks."""
        stream = self.open_events(since)
        try:
            yield from stream
        finally:
            stream.close()

    # Actions used by fixes. A 304 (already stopped, already started) is no error, as in docker-py.
    def _post(self, http: UnixHTTPClient, container_id: str, action: str, query: dict[str, int], wait: int) -> None:
        path = f"{self._prefix}/containers/{quote(container_id, safe='')}/{action}"
        http.call("POST", path, query, timeout=self.timeout + wait)

    def stop(self, container_id: str, timeout: int = 10) -> None:
        http = self._lean_client()
        if http is None:
            self.client.stop(container_id, timeout=timeout)
        else:
            self._post(http, container_id, "stop", {"t": timeout}, timeout)

    def start(self, container_id: str) -> None:
        http = self._lean_client()
        if http is None:
            self.client.start(container_id)
        else:
            self._post(http, container_id, "start", {}, 0)

    def restart(self, container_id: str, timeout: int = 10) -> None:
        http = self._lean_client()
        if http is None:
            self.client.restart(container_id, timeout=timeout)
        else:
            self._post(http, container_id, "restart", {"t": timeout}, timeout)


def _in_threads(
    work: Callable[[ContainerSpec], ContainerSpec | None], specs: Sequence[ContainerSpec]
) -> Iterator[ContainerSpec | None]:
    """``work`` on each spec in up to INSPECT_CONCURRENCY threads; results as they are in, the first error raised.

    Plain threads and a queue: ``concurrent.futures`` would import ``logging``, a good part of a check's start-up.
    """
    todo = iter(specs)
    lock = threading.Lock()
    done: queue.SimpleQueue[tuple[ContainerSpec | None, BaseException | None]] = queue.SimpleQueue()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            with lock:
                spec = next(todo, None)
            if spec is None:
                return
            try:
                done.put((work(spec), None))
            except BaseException as exc:  # handed to the caller's thread, raised there
                done.put((None, exc))

    threads = [
        threading.Thread(target=worker, name="socktui-inspect", daemon=True)
        for _ in range(min(INSPECT_CONCURRENCY, len(specs)))
    ]
    for thread in threads:
        thread.start()
    try:
        for _ in specs:
            result, error = done.get()
            if error is not None:
                raise error
            yield result
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def merge_inspect(listed: ContainerSpec, inspected: ContainerSpec | None) -> ContainerSpec | None:
    if inspected is None:
        return None
    # The list's name and image are what users recognise (image as they typed it); inspect has the rest.
    return replace(inspected, image=listed.image or inspected.image)
