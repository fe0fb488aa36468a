"""Test harness shared by the tests, bench/ and the screenshot tool.

It deliberately does not import pytest: bench and tools import it as a plain module (put
``tests/`` on ``sys.path`` and ``import harness``).

What it provides:

* :class:`PrivateDaemon` - a throw-away dockerd of our own, so tests never touch the
  machine's real engine and can run on CI as root with only ``docker.io`` installed.
* :class:`PrivatePodman` / :func:`open_podman` - the same for a rootful ``podman system service``.
* :func:`build_test_image` - a busybox-only image made with ``docker import`` (no registry).
* :func:`engine_from_env` / :func:`open_engine` - pick and open an engine.
* :class:`ContainerFactory` - containers that are always cleaned up.
* :class:`SocketServer` / :class:`SocketServers` - real AF_UNIX servers in their own processes.
* :func:`wait_for`, :func:`socket_dir`.

The daemon launcher, the image builder and the socket servers live in ``socktui.demo`` (``socktui demo`` starts
its daemon exactly as the tests do); they are re-exported here under their old names.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import docker
import docker.errors
from docker.types import Mount

from socktui.demo.daemon import PrivateDaemon
from socktui.demo.daemon import log_tail as _log_tail
from socktui.demo.daemon import mountpoints_under as _mountpoints_under
from socktui.demo.daemon import pids_mentioning as _pids_mentioning
from socktui.demo.image import BUSYBOX, IMAGE, check_busybox
from socktui.demo.image import build_image as _build_image
from socktui.demo.image import image_exists as _image_exists
from socktui.demo.image import is_static_elf as _is_static_elf
from socktui.demo.image import rootfs_tar as _rootfs_tar
from socktui.demo.servers import SOCKSERVER, SUN_PATH_MAX, SocketServer, SocketServerError, SocketServers

__all__ = [
    "BUSYBOX",
    "SOCKSERVER",
    "SUN_PATH_MAX",
    "ContainerFactory",
    "Engine",
    "EngineChoice",
    "EngineUnavailable",
    "PrivateDaemon",
    "PrivatePodman",
    "SocketServer",
    "SocketServerError",
    "SocketServers",
    "build_static",
    "build_test_image",
    "check_busybox",
    "engine_from_env",
    "listening_pids",
    "open_engine",
    "open_podman",
    "podman_from_env",
    "short_dir",
    "socket_dir",
    "TRAP",
    "unique_name",
    "until",
    "wait_for",
    "_image_exists",
    "_is_static_elf",
    "_log_tail",
    "_mountpoints_under",
    "_pids_mentioning",
    "_rootfs_tar",
]

T = TypeVar("T")

TEST_IMAGE = IMAGE
TEST_LABEL = "socktui.test"
ENV_DOCKER_HOST = "SOCKTUI_TEST_DOCKER_HOST"
ENV_REQUIRE_ENGINE = "SOCKTUI_REQUIRE_ENGINE"

STATIC_SOURCES = Path(__file__).resolve().with_name("static")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 5.0,
    interval: float = 0.02,
    message: str | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Raises TimeoutError rather than returning False, so a failing test says what it waited for.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def socket_dir(preferred: Path | None = None, room: int = 32) -> Iterator[Path]:
    """Yield a directory where socket names of up to ``room`` bytes still fit in sun_path.

    ``preferred`` (e.g. pytest's tmp_path) is used when short enough; otherwise a short
    directory is made under /tmp and removed afterwards.
    """
    if preferred is not None and len(os.fsencode(preferred)) + 1 + room <= SUN_PATH_MAX:
        yield preferred
        return
    short = Path(tempfile.mkdtemp(prefix="st-"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


@contextlib.contextmanager
def short_dir(prefix: str = "st-") -> Iterator[Path]:
    """A fresh directory under /tmp, mode 0755: short enough for socket names, reachable by a non-root user."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# A container that stays up until stopped and stops at once when told (busybox sh; TERM ends the loop).
TRAP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]


def unique_name(stem: str = "st") -> str:
    """A container name no other test (or earlier run) uses."""
    return f"{stem}-{uuid.uuid4().hex[:10]}"


_T = TypeVar("_T")


async def until(
    pilot: Any, predicate: Callable[[], _T | Literal[False] | None], what: str, timeout: float = 15.0
) -> _T:
    """Let a Textual app run until ``predicate()`` is truthy; return its value, or fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        await pilot.pause(0.05)


# --------------------------------------------------------------------------- static helpers


def build_static(source: Path | str, name: str | None = None) -> Path:
    """Compile a C program with ``gcc -static`` and return the binary, cached by the source's content.

    The busybox test image has no libc, so programs run inside containers (a server, a client, a hostile helper)
    must be static. ``source`` is a path, or a bare name of a file in ``tests/static/``. The binary sits in a
    0755 directory under /tmp so that any uid, and any container it is bind-mounted into, can run it. Raises
    RuntimeError (never skips) when it cannot be built: CI installs gcc and libc6-dev.
    """
    path = Path(source)
    if not path.is_absolute() and not path.exists():
        path = STATIC_SOURCES / (path.name if path.suffix == ".c" else f"{path.name}.c")
    text = path.read_bytes()
    digest = hashlib.sha256(text).hexdigest()[:16]
    where = Path(tempfile.gettempdir()) / f"socktui-static-{digest}"
    binary = where / (name or path.stem)
    if binary.exists():
        return binary
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeError("no C compiler: install gcc and libc6-dev (.ci/run does)")
    where.mkdir(mode=0o755, exist_ok=True)
    os.chmod(where, 0o755)
    partial = where / f".{binary.name}.{os.getpid()}"
    built = subprocess.run(
        [gcc, "-static", "-O1", "-Wall", "-o", str(partial), str(path)], capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        raise RuntimeError(f"gcc -static {path} failed: {built.stderr.strip()[-500:]}")
    os.chmod(partial, 0o755)
    os.replace(partial, binary)
    return binary


# --------------------------------------------------------------------------- private Podman


def listening_pids(socket_path: Path) -> list[int]:
    """Pids holding a listening unix socket bound at ``socket_path`` (what ``ss -xlpn`` shows)."""
    inodes: set[str] = set()
    wanted = os.fsencode(socket_path)
    # Bytes: other tests bind sockets whose names are not UTF-8.
    with open("/proc/net/unix", "rb") as f:
        next(f)
        for line in f:
            fields = line.split(None, 7)
            # Flags 00010000 is __SO_ACCEPTCON: a listener.
            if len(fields) == 8 and fields[7].strip() == wanted and int(fields[3], 16) & 0x10000:
                inodes.add(fields[6].decode())
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{entry}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                found.append(int(entry))
                break
    return sorted(found)


class PrivatePodman:
    """A rootful ``podman system service`` of our own: private socket, storage, run root, events log and config.

    The configuration is the one that works on this project's machines (see DOMAIN.md): no network namespace, fixed
    ulimits (the VM lacks CAP_SYS_RESOURCE), cgroupfs, runc, events in a file. ``podman_env`` lets the ``podman``
    CLI (and podman-compose, which drives it) use the very same storage, so what they create the service lists.
    ``podman system service`` re-execs itself, so the process to stop is the one listening on the socket.
    """

    def __init__(self, podman: str = "podman", start_timeout: float = 60.0) -> None:
        self.podman = podman
        self.start_timeout = start_timeout
        self._workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("PrivatePodman is not started")
        return self._workdir

    @property
    def socket_path(self) -> Path:
        return self.workdir / "podman.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "podman.log"

    def podman_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for the podman CLI (and podman-compose) to work on this service's storage."""
        env = dict(os.environ if base is None else base)
        env["CONTAINERS_CONF"] = str(self.workdir / "containers.conf")
        env["CONTAINERS_STORAGE_CONF"] = str(self.workdir / "storage.conf")
        return env

    def _write_config(self, workdir: Path) -> None:
        for sub in ("run", "root", "tmp", "cni"):
            (workdir / sub).mkdir()
        (workdir / "containers.conf").write_text(
            "[containers]\n"
            'netns = "none"\n'
            'default_ulimits = ["nofile=20000:20000", "nproc=10000:10000"]\n'
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{workdir}/events.log"\n'
            'runtime = "runc"\n'
            f'tmp_dir = "{workdir}/tmp"\n'
            "[network]\n"
            'network_backend = "cni"\n'
            # podman-compose makes a network per project: keep its CNI files out of /etc/cni/net.d.
            f'network_config_dir = "{workdir}/cni"\n'
        )
        (workdir / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\nrunroot = "{workdir}/run"\ngraphroot = "{workdir}/root"\n'
        )

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("PrivatePodman already started")
        workdir = Path(tempfile.mkdtemp(prefix="socktui-podman-"))
        self._workdir = workdir
        self._write_config(workdir)
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [self.podman, "system", "service", "--time=0", self.host],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.podman_env(),
                cwd=workdir,
            )
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last_error = "no socket yet"
        while True:
            if self.socket_path.exists():
                try:
                    with docker.APIClient(base_url=self.host, version="1.41", timeout=10) as client:
                        if client.ping():
                            return
                except (docker.errors.DockerException, OSError) as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
            elif self._proc is not None and self._proc.poll() not in (None, 0):
                raise RuntimeError(f"podman system service exited; log tail:\n{_log_tail(self.log_path)}")
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"podman did not answer on {self.host} within {self.start_timeout:.0f}s "
                    f"(last error: {last_error}); log tail:\n{_log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        proc, workdir = self._proc, self._workdir
        if proc is None or workdir is None:
            return
        try:
            with docker.APIClient(base_url=self.host, version="1.41", timeout=20) as client:
                for c in client.containers(all=True, quiet=True):
                    with contextlib.suppress(docker.errors.DockerException):
                        client.remove_container(c["Id"], force=True, v=True)
        except (docker.errors.DockerException, OSError):
            pass
        # Networks podman-compose made own a bridge and firewall rules on the host: remove them with the service.
        subprocess.run(
            [self.podman, "network", "prune", "-f"], env=self.podman_env(), capture_output=True, check=False, timeout=60
        )
        service = listening_pids(self.socket_path) if self.socket_path.exists() else []
        for pid in {*service, proc.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: not any(_alive(pid) for pid in service), timeout=10, interval=0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        # conmon and container processes carry our workdir in their command lines (or are children of those).
        leftovers = sorted(set(_pids_mentioning(str(workdir))) | {p for p in service if _alive(p)})
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for point in sorted(_mountpoints_under(workdir), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
        self._proc = None
        self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def podman_from_env() -> EngineChoice:
    """Podman tests need root and the podman binary (the harness starts its own service)."""
    how = "Podman engine tests need root and the Debian package podman (.ci/run installs it)"
    if os.geteuid() != 0:
        return EngineChoice(None, reason=f"not root; {how}")
    if shutil.which("podman") is None:
        return EngineChoice(None, reason=f"podman not found on PATH; {how}")
    problem = check_busybox()
    if problem:
        return EngineChoice(None, reason=f"{problem}; {how}")
    return EngineChoice("private", reason="private podman system service")


@contextlib.contextmanager
def open_podman(image: str = TEST_IMAGE) -> Iterator[Engine]:
    """Start a private Podman service, make sure the test image exists in it, stop it after."""
    with contextlib.ExitStack() as stack:
        service = stack.enter_context(PrivatePodman())
        client = stack.enter_context(docker.APIClient(base_url=service.host, version="auto", timeout=60))
        yield Engine(host=service.host, client=client, image=build_test_image(client, image), podman=service)


def build_test_image(client: docker.APIClient, tag: str = TEST_IMAGE, busybox: Path = BUSYBOX) -> str:
    """Make ``tag`` from a static busybox with ``docker import`` unless it exists; return ``tag``.

    Applets are symlinks in /bin; users root(0) and app(1000); groups root, docker(999), app.
    """
    return _build_image(client, tag, busybox)


# --------------------------------------------------------------------------- choosing an engine


@dataclass(frozen=True)
class EngineChoice:
    """Which engine tests should use. ``kind`` is None when none is usable; ``reason`` says why."""

    kind: Literal["external", "private"] | None
    host: str | None = None
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.kind is not None


def engine_from_env() -> EngineChoice:
    host = os.environ.get(ENV_DOCKER_HOST)
    if host:
        return EngineChoice("external", host, f"{ENV_DOCKER_HOST}={host}")
    how = (
        "engine tests need a Docker engine: run as root with the Debian packages docker.io and "
        f"busybox-static installed (the harness starts a private dockerd), or set {ENV_DOCKER_HOST} "
        "to an engine's URL (e.g. unix:///run/docker.sock)"
    )
    if os.geteuid() != 0:
        return EngineChoice(None, reason=f"not root; {how}")
    if shutil.which("dockerd") is None:
        return EngineChoice(None, reason=f"dockerd not found on PATH; {how}")
    problem = check_busybox()
    if problem:
        return EngineChoice(None, reason=f"{problem}; {how}")
    return EngineChoice("private", reason="private dockerd (root, dockerd on PATH)")


class EngineUnavailable(RuntimeError):
    pass


@dataclass
class Engine:
    host: str
    client: docker.APIClient
    image: str
    daemon: PrivateDaemon | None = None
    podman: PrivatePodman | None = None

    @property
    def product(self) -> str:
        """ "docker" or "podman", as socktui's JSON names it."""
        return "podman" if self.podman is not None else "docker"


@contextlib.contextmanager
def open_engine(choice: EngineChoice | None = None, image: str = TEST_IMAGE) -> Iterator[Engine]:
    """Connect to (or start) the chosen engine, make sure the test image exists, clean up after."""
    choice = choice or engine_from_env()
    with contextlib.ExitStack() as stack:
        daemon: PrivateDaemon | None = None
        if choice.kind == "external" and choice.host:
            host = choice.host
        elif choice.kind == "private":
            daemon = stack.enter_context(PrivateDaemon())
            host = daemon.host
        else:
            raise EngineUnavailable(choice.reason)
        client = stack.enter_context(docker.APIClient(base_url=host, version="auto"))
        yield Engine(host=host, client=client, image=build_test_image(client, image), daemon=daemon)


class ContainerFactory:
    """Creates labelled, network-less test containers and force-removes all of them on cleanup()."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.created: list[str] = []

    def create(
        self,
        *,
        command: str | list[str] | None = None,
        binds: list[str] | None = None,
        mounts: list[Mount] | None = None,
        user: str | int | None = None,
        group_add: list[str | int] | None = None,
        name: str | None = None,
        labels: dict[str, str] | None = None,
        environment: dict[str, str] | list[str] | None = None,
        working_dir: str | None = None,
        **host_config: Any,
    ) -> str:
        client = self.engine.client
        hc = client.create_host_config(
            network_mode="none", binds=binds, mounts=mounts, group_add=group_add, **host_config
        )
        result = client.create_container(
            image=self.engine.image,
            command=command if command is not None else ["sleep", "3600"],
            user=user,
            name=name,
            environment=environment,
            working_dir=working_dir,
            labels={TEST_LABEL: "1", **(labels or {})},
            host_config=hc,
        )
        cid: str = result["Id"]
        self.created.append(cid)
        return cid

    def run(self, **kwargs: Any) -> str:
        """create() then start(); same arguments."""
        cid = self.create(**kwargs)
        self.engine.client.start(cid)
        return cid

    def cleanup(self) -> None:
        while self.created:
            cid = self.created.pop()
            with contextlib.suppress(docker.errors.NotFound):
                self.engine.client.remove_container(cid, force=True, v=True)
