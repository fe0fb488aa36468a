"""Test harness shared by the tests, bench/ and the screenshot tool.

It deliberately does not import pytest: bench and tools import it as a plain module (put
``tests/`` on ``sys.path`` and ``import harness``).

What it provides:

* :class:`PrivateDaemon` - a throw-away dockerd of our own, so tests never touch the
  machine's real engine and can run on CI as root with only ``docker.io`` installed.
* :func:`build_test_image` - a busybox-only image made with ``docker import`` (no registry).
* :func:`engine_from_env` / :func:`open_engine` - pick and open an engine.
* :class:`ContainerFactory` - containers that are always cleaned up.
* :class:`SocketServer` / :class:`SocketServers` - real AF_UNIX servers in their own processes.
* :func:`wait_for`, :func:`socket_dir`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import docker
import docker.errors
from docker.types import Mount

T = TypeVar("T")

TEST_IMAGE = "socktui-test:latest"
TEST_LABEL = "socktui.test"
ENV_DOCKER_HOST = "SOCKTUI_TEST_DOCKER_HOST"
ENV_REQUIRE_ENGINE = "SOCKTUI_REQUIRE_ENGINE"

# sun_path is 108 bytes including the terminating NUL.
SUN_PATH_MAX = 107

SOCKSERVER = Path(__file__).resolve().with_name("sockserver.py")
STATIC_SOURCES = Path(__file__).resolve().with_name("static")
BUSYBOX = Path("/bin/busybox")


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


# --------------------------------------------------------------------------- private dockerd


def _mountpoints_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    found: list[str] = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            # Field 5 is the mount point, with space/tab/newline/backslash octal-escaped.
            raw = line.split(b" ")[4]
            point = os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), raw))
            if point == str(root) or point.startswith(prefix):
                found.append(point)
    return found


def _pids_mentioning(needle: str) -> list[int]:
    """Processes whose command line contains ``needle``, plus all their descendants."""
    me = os.getpid()
    parent: dict[int, int] = {}
    matched: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                # The ppid follows the parenthesised command name, which may itself hold spaces.
                parent[int(entry)] = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if needle.encode() in cmdline:
            matched.add(int(entry))
    # Container processes do not carry the path, but they are children of our shims.
    grew = True
    while grew:
        children = {pid for pid, ppid in parent.items() if ppid in matched} - matched
        matched |= children
        grew = bool(children)
    return sorted(matched)


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class PrivateDaemon:
    """A dockerd of our own in a temporary directory, with no network setup at all.

    Everything it owns (socket, data root, exec root, its containerd) lives under
    ``workdir``, so several can run side by side and cleanup is ``rm -rf`` after unmounting.
    """

    def __init__(
        self,
        dockerd: str = "dockerd",
        start_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.dockerd = dockerd
        self.start_timeout = start_timeout
        self.extra_args = list(extra_args)
        self._workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("PrivateDaemon is not started")
        return self._workdir

    @property
    def socket_path(self) -> Path:
        return self.workdir / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dockerd.log"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("PrivateDaemon is not started")
        return self._proc.pid

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("PrivateDaemon already started")
        # Short on purpose: the daemon's and containerd's sockets live under it (sun_path limit).
        workdir = Path(tempfile.mkdtemp(prefix="socktui-dockerd-"))
        self._workdir = workdir
        cmd = [
            self.dockerd,
            "--host",
            f"unix://{workdir / 'docker.sock'}",
            "--data-root",
            str(workdir / "data"),
            "--exec-root",
            str(workdir / "exec"),
            "--pidfile",
            str(workdir / "docker.pid"),
            # No registry and no need for networking: containers run with network_mode "none".
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--log-level=warn",
            *self.extra_args,
        ]
        with open(workdir / "dockerd.log", "wb") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_up(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        last_error = "no socket yet"
        while True:
            rc = self._proc.poll()
            if rc is not None:
                raise RuntimeError(
                    f"dockerd exited with status {rc} while starting; log tail:\n{_log_tail(self.log_path)}"
                )
            if self.socket_path.exists():
                try:
                    with docker.APIClient(base_url=self.host, version="auto", timeout=5) as client:
                        if client.ping():
                            return
                except (docker.errors.DockerException, OSError) as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"dockerd did not answer on {self.host} within {self.start_timeout:.0f}s "
                    f"(last error: {last_error}); log tail:\n{_log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    def _kill_containers(self) -> None:
        # Killing first makes shutdown quick: dockerd would otherwise give each container
        # its stop timeout, and `sleep` as pid 1 ignores SIGTERM.
        try:
            with docker.APIClient(base_url=self.host, version="auto", timeout=10) as client:
                for c in client.containers(quiet=True):
                    with contextlib.suppress(docker.errors.DockerException):
                        client.kill(c["Id"])
        except (docker.errors.DockerException, OSError):
            pass

    def stop(self) -> None:
        proc, workdir = self._proc, self._workdir
        if proc is None or workdir is None:
            return
        if proc.poll() is None:
            self._kill_containers()
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=10)
        # containerd and shims are started by dockerd and can outlive a killed dockerd; they all
        # carry our unique workdir in their command line, and the containers are their children.
        leftovers = _pids_mentioning(str(workdir))
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if leftovers:
            with contextlib.suppress(TimeoutError):
                wait_for(lambda: not _pids_mentioning(str(workdir)), timeout=5, interval=0.05)
        # Deepest first, lazily: a busy mount must not keep the temp dir (and its disk use) alive.
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


# --------------------------------------------------------------------------- test image


def _is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a PT_INTERP header (i.e. needs no dynamic loader)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return False
        is64 = head[4] == 2
        order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
        if is64:
            phoff = int.from_bytes(head[0x20:0x28], order)
            phentsize = int.from_bytes(head[0x36:0x38], order)
            phnum = int.from_bytes(head[0x38:0x3A], order)
        else:
            phoff = int.from_bytes(head[0x1C:0x20], order)
            phentsize = int.from_bytes(head[0x2A:0x2C], order)
            phnum = int.from_bytes(head[0x2C:0x2E], order)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    pt_interp = 3
    return all(int.from_bytes(table[i * phentsize : i * phentsize + 4], order) != pt_interp for i in range(phnum))


def check_busybox(path: Path = BUSYBOX) -> str | None:
    """Return why ``path`` cannot be the test image's only binary, or None when it can."""
    if not path.is_file():
        return f"{path} is missing: install the Debian package busybox-static"
    if not _is_static_elf(path):
        return f"{path} is dynamically linked: install busybox-static (it replaces busybox)"
    return None


def _image_exists(client: docker.APIClient, tag: str) -> bool:
    return bool(client.images(name=tag, quiet=True))


def _rootfs_tar(busybox: Path) -> bytes:
    """The image's root filesystem as a tar, built in memory so owners and modes are exact."""
    applets = subprocess.run([str(busybox), "--list"], check=True, capture_output=True, text=True)
    mtime = int(time.time())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "", owner: int = 0) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = kind, mode, mtime
            info.uid = info.gid = owner
            info.linkname = link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        for d in ("bin", "dev", "etc", "proc", "sys", "run", "var", "var/run", "home"):
            add(d, tarfile.DIRTYPE, 0o755)
        add("root", tarfile.DIRTYPE, 0o700)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        add("home/app", tarfile.DIRTYPE, 0o755, owner=1000)
        add("bin/busybox", tarfile.REGTYPE, 0o755, busybox.read_bytes())
        for applet in sorted(set(applets.stdout.split()) - {"busybox"}):
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
        add(
            "etc/passwd",
            tarfile.REGTYPE,
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\ndocker:x:999:\napp:x:1000:\n")
    return buf.getvalue()


def build_test_image(client: docker.APIClient, tag: str = TEST_IMAGE, busybox: Path = BUSYBOX) -> str:
    """Make ``tag`` from a static busybox with ``docker import`` unless it exists; return ``tag``.

    Applets are symlinks in /bin; users root(0) and app(1000); groups root, docker(999), app.
    """
    if _image_exists(client, tag):
        return tag
    problem = check_busybox(busybox)
    if problem:
        raise RuntimeError(f"cannot build the test image {tag}: {problem}")
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    client.import_image_from_data(
        _rootfs_tar(busybox),
        repository=repository,
        tag=version,
        changes=["ENV PATH=/bin", 'CMD ["sh"]'],
    )
    if not _image_exists(client, tag):
        raise RuntimeError(f"docker import reported success but {tag} does not exist")
    return tag


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


# --------------------------------------------------------------------------- socket servers


class SocketServerError(RuntimeError):
    """The server process exited while starting (e.g. bind failed); carries its exit code and stderr."""

    def __init__(self, path: Path, returncode: int | None, stderr: str) -> None:
        self.path = path
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"socket server for {path} failed (exit {returncode}): {stderr.strip()}")


class SocketServer:
    """An AF_UNIX SOCK_STREAM server in its own process (``tests/sockserver.py``).

    ``unlink_first`` removes an existing *socket* at ``path`` before binding, as real servers
    do; files and directories are left alone, so binding over them fails with EADDRINUSE.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        unlink_first: bool = True,
        mode: int | None = None,
        echo: bool = False,
        start_timeout: float = 5.0,
    ) -> None:
        self.path = Path(path)
        if len(os.fsencode(self.path)) > SUN_PATH_MAX:
            raise ValueError(f"socket path is longer than {SUN_PATH_MAX} bytes: {self.path}")
        self.unlink_first = unlink_first
        self.mode = mode
        self.echo = echo
        self.start_timeout = start_timeout
        self.ident: tuple[int, int] | None = None
        self.stderr = ""
        self._proc: subprocess.Popen[str] | None = None

    @property
    def argv(self) -> list[str]:
        argv = [sys.executable, str(SOCKSERVER), str(self.path)]
        if self.mode is not None:
            argv += ["--mode", format(self.mode, "o")]
        if not self.unlink_first:
            argv.append("--no-unlink")
        if self.echo:
            argv.append("--echo")
        return argv

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("SocketServer is not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("SocketServer already started")
        proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._proc = proc
        assert proc.stdout is not None
        # Wait for the server's own READY line: polling the path alone could reach an older
        # server still listening there (a stale or shadowed socket).
        ready, _, _ = select.select([proc.stdout], [], [], self.start_timeout)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("READY "):
            if not ready:
                proc.kill()
            self.stderr = proc.communicate(timeout=5)[1]
            raise SocketServerError(self.path, proc.returncode, self.stderr or f"no READY line, got {line!r}")
        _, dev, ino = line.split()
        self.ident = (int(dev), int(ino))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(self.start_timeout)
            probe.connect(str(self.path))
        return self

    def connect(self, timeout: float = 5.0) -> socket.socket:
        """A client connection to the path (whatever now listens there)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(self.path))
        except BaseException:
            sock.close()
            raise
        return sock

    def _reap(self, timeout: float) -> None:
        assert self._proc is not None
        if self._proc.returncode is not None and self._proc.stderr is not None and self._proc.stderr.closed:
            return
        try:
            _, err = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            _, err = self._proc.communicate(timeout=5)
        self.stderr += err or ""

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM; the server removes its own socket (only if the path is still its socket)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
        self._reap(timeout)
        if self.ident is not None:
            with contextlib.suppress(FileNotFoundError):
                st = self.path.lstat()
                if stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) == self.ident:
                    self.path.unlink()

    def kill(self) -> None:
        """SIGKILL: the socket file stays behind, stale (connect gives ECONNREFUSED)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._reap(5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class SocketServers:
    """Factory that remembers its servers so a fixture can stop them all."""

    servers: list[SocketServer] = field(default_factory=list)

    def start(
        self,
        path: str | os.PathLike[str],
        *,
        unlink_first: bool = True,
        mode: int | None = None,
        echo: bool = False,
    ) -> SocketServer:
        server = SocketServer(path, unlink_first=unlink_first, mode=mode, echo=echo)
        self.servers.append(server)
        return server.start()

    def cleanup(self) -> None:
        # Newest first, so a shadowing server goes before the one it shadowed.
        while self.servers:
            self.servers.pop().stop()
