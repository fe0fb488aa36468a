"""socktui's own HTTP/1.1 client over a unix socket (``socktui.unixhttp``), against a real AF_UNIX server thread.

Each answer is written byte for byte by the test (so chunk boundaries, early closes and silences are exactly what is
claimed), and every failure the engine code depends on is checked through ``Engine`` too: it must come out as the
same ``Failure`` and sentence as it did through docker-py.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from socktui.engine import Endpoint, Engine, EngineError, Failure
from socktui.model import Product
from socktui.unixhttp import ConnectionClosed, HTTPError, ProtocolError, UnixHTTPClient

CLOSE = "close"  # in a reply: close the connection here
Piece = bytes | float | str  # bytes to send, seconds to wait, or CLOSE


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    connection: int  # which accepted connection it came on, from 1


Answer = Callable[[Request], Sequence[Piece]]


@dataclass
class Server:
    """A unix stream server on ``path``: each request is answered with the pieces ``answer`` returns for it."""

    path: Path
    answer: Answer
    requests: list[Request] = field(default_factory=list)
    accepted: int = 0
    _listener: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _conns: list[socket.socket] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> Server:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(16)
        listener.settimeout(0.05)
        self._listener = listener
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn, self.accepted), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        buffer = b""
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                line, *lines = head.decode("latin-1").split("\r\n")
                method, target, _ = line.split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
                request = Request(method, target, headers, number)
                self.requests.append(request)
                for piece in self.answer(request):
                    if piece == CLOSE:
                        conn.shutdown(socket.SHUT_RDWR)
                        return
                    if isinstance(piece, float):
                        time.sleep(piece)
                    elif isinstance(piece, bytes):
                        conn.sendall(piece)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Answer], Server]]:
    servers: list[Server] = []

    def start(answer: Answer) -> Server:
        server = Server(tmp_path / f"engine{len(servers)}.sock", answer).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def reply(status: str, body: bytes | dict[str, Any] | list[Any], *headers: str) -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", f"Content-Length: {len(raw)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"


def failure_of(exc: BaseException, url: str) -> tuple[Failure, str, str]:
    error = Engine(Endpoint(url, "--host"))._fail(exc)
    return error.failure, error.problem, error.advice


# --------------------------------------------------------------------------- answers


def test_content_length_body_query_and_request_head(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [reply("200 OK", {"path": r.target})])
    client = UnixHTTPClient(str(server.path), timeout=5)
    response = client.request("GET", "/v1.41/containers/json", {"all": 1, "filters": '{"a":["b c"]}', "skip": None})
    assert (response.status, response.reason) == (200, "OK")
    assert response.header("Content-Type") == "application/json"
    target = "/v1.41/containers/json?all=1&filters=%7B%22a%22%3A%5B%22b+c%22%5D%7D"
    assert response.json() == {"path": target}
    [request] = server.requests
    assert (request.method, request.target) == ("GET", target)
    assert request.headers["host"] == "localhost"  # Docker's Go server refuses HTTP/1.1 without one


def test_chunked_body_with_extensions_and_trailers(serve: Callable[[Answer], Server]) -> None:
    doc = json.dumps([{"Id": "a" * 64, "Names": ["/ü"]}]).encode()
    pieces: list[Piece] = [CHUNKED_HEAD]
    for i in range(0, len(doc), 7):
        pieces += [chunk(doc[i : i + 7]), 0.001]
    pieces += [b"0;ext=1\r\nX-Trailer: yes\r\n\r\n"]
    server = serve(lambda r: pieces)
    client = UnixHTTPClient(str(server.path), timeout=5)
    assert client.get_json("/containers/json") == json.loads(doc)
    assert client.get_json("/containers/json") == json.loads(doc)  # and the connection was left ready
    assert server.accepted == 1


def test_bodies_larger_than_one_read(serve: Callable[[Answer], Server]) -> None:
    # A thousand containers' list is megabytes: read across many recvs, by length and in one big chunk.
    doc = [{"Id": f"{i:064x}", "Labels": {"k": "v" * 2000}} for i in range(1500)]
    raw = json.dumps(doc).encode()
    assert len(raw) > 3_000_000  # three times MAX_READ
    server = serve(
        lambda r: [reply("200 OK", raw)] if r.target == "/length" else [CHUNKED_HEAD, chunk(raw), b"0\r\n\r\n"]
    )
    client = UnixHTTPClient(str(server.path), timeout=5)
    assert client.get_json("/length") == doc
    assert client.get_json("/chunked") == doc
    assert server.accepted == 1


def test_keep_alive_reuses_one_connection(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [reply("200 OK", {"n": len(server.requests)})])
    client = UnixHTTPClient(str(server.path), timeout=5)
    assert [client.get_json("/x")["n"] for _ in range(5)] == [1, 2, 3, 4, 5]
    assert server.accepted == 1 and client.connections_made == 1
    assert {r.connection for r in server.requests} == {1}


def test_reconnects_when_the_server_closed_a_kept_alive_connection(serve: Callable[[Answer], Server]) -> None:
    # The server answers, says nothing about closing, and closes: the next request finds the connection dead.
    server = serve(lambda r: [reply("200 OK", {"on": r.connection}), 0.05, CLOSE])
    client = UnixHTTPClient(str(server.path), timeout=5)
    assert client.get_json("/a") == {"on": 1}
    time.sleep(0.2)  # the close has happened
    assert client.get_json("/b") == {"on": 2}
    assert server.accepted == 2
    assert [r.target for r in server.requests] == ["/a", "/b"]  # nothing was sent twice on the dead one


def test_connection_close_is_honoured(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [reply("200 OK", {}, "Connection: close")])
    client = UnixHTTPClient(str(server.path), timeout=5)
    client.get_json("/a")
    client.get_json("/b")
    assert server.accepted == 2


def test_a_body_until_close_without_length(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[1,", 0.01, b"2]", CLOSE])
    client = UnixHTTPClient(str(server.path), timeout=5)
    assert client.get_json("/a") == [1, 2]
    assert client.get_json("/b") == [1, 2]
    assert server.accepted == 2  # such a body cannot be followed by another answer


def test_no_body_for_304_and_concurrent_requests_each_have_a_connection(serve: Callable[[Answer], Server]) -> None:
    gate = threading.Barrier(3, timeout=5)

    def answer(r: Request) -> list[Piece]:
        if r.target.startswith("/wait"):
            gate.wait()
        return [b"HTTP/1.1 304 Not Modified\r\n\r\n"] if r.method == "POST" else [reply("200 OK", {"ok": True})]

    server = serve(answer)
    client = UnixHTTPClient(str(server.path), timeout=5)
    assert client.call("POST", "/containers/x/start").status == 304  # "already started": no error
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(client.get_json("/wait"))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert results == [{"ok": True}] * 3
    assert server.accepted == 3  # three at once: three connections (the first one reused by one of them)
    assert server.requests[0].headers["content-length"] == "0"


# --------------------------------------------------------------------------- error statuses


def test_404_is_an_answer_for_request_and_an_http_error_for_call(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [reply("404 Not Found", {"message": "No such container: nope"})])
    client = UnixHTTPClient(str(server.path), timeout=5)
    assert client.request("GET", "/containers/nope/json").status == 404
    with pytest.raises(HTTPError) as error:
        client.get_json("/containers/nope/json")
    assert (error.value.status, error.value.message) == (404, "No such container: nope")
    assert str(error.value) == ('404 Client Error for GET /containers/nope/json: Not Found ("No such container: nope")')
    assert server.accepted == 1  # an error answer leaves the connection usable


def test_500_carries_the_engines_message_and_is_an_other_failure(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [reply("500 Internal Server Error", {"message": "fake engine: no version for you"})])
    client = UnixHTTPClient(str(server.path), timeout=5)
    with pytest.raises(HTTPError) as error:
        client.get_json("/version")
    assert error.value.status == 500
    assert str(error.value) == (
        '500 Server Error for GET /version: Internal Server Error ("fake engine: no version for you")'
    )
    failure, problem, advice = failure_of(error.value, server.url)
    assert failure is Failure.OTHER
    assert problem == str(error.value)
    assert advice == "Check that the engine is running and reachable."


def test_an_answer_that_is_not_http(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [b"SSH-2.0-OpenSSH_9.2\r\n", CLOSE])
    with pytest.raises(ProtocolError, match="did not answer in HTTP"):
        UnixHTTPClient(str(server.path), timeout=5).request("GET", "/_ping")


def test_an_answer_cut_short(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{", CLOSE])
    with pytest.raises(ProtocolError, match="in the middle of its answer"):
        UnixHTTPClient(str(server.path), timeout=5).request("GET", "/_ping")


def test_a_connection_closed_before_any_answer_is_not_retried_when_new(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [CLOSE])
    with pytest.raises(ConnectionClosed):
        UnixHTTPClient(str(server.path), timeout=5).request("GET", "/_ping")
    assert server.accepted == 1


# --------------------------------------------------------------------------- the event stream


def test_events_split_across_chunks_and_reads(serve: Callable[[Answer], Server]) -> None:
    events = [{"Type": "container", "Action": "start", "id": str(i), "name": "é" * i} for i in range(4)]
    raw = b"".join(json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in events)
    # One document cut in the middle of a two-byte character, two in one chunk, a chunk of whitespace, a document
    # that is not an object (skipped), and a chunk header arriving apart from its data.
    cut = raw.index("é".encode()) + 1
    second = raw.index(b"\n", raw.index(b"\n", cut) + 1) + 1
    pieces: list[Piece] = [
        CHUNKED_HEAD,
        chunk(raw[:cut]),
        0.02,
        chunk(raw[cut:second]),
        0.02,
        chunk(b"\n  \n"),
        chunk(b"[1, 2]\n"),
        f"{len(raw) - second:x}\r\n".encode(),
        0.02,
        raw[second:] + b"\r\n",
        b"0\r\n\r\n",
    ]
    server = serve(lambda r: pieces)
    client = UnixHTTPClient(str(server.path), timeout=5)
    stream = client.stream("GET", "/v1.41/events", {"filters": json.dumps({"type": ["container"]}), "since": 5})
    assert list(stream) == events
    assert server.requests[0].target == "/v1.41/events?filters=%7B%22type%22%3A+%5B%22container%22%5D%7D&since=5"


def test_close_from_another_thread_ends_a_blocked_stream(serve: Callable[[Answer], Server]) -> None:
    event = json.dumps({"Action": "start"}).encode() + b"\n"
    server = serve(lambda r: [CHUNKED_HEAD, chunk(event), 30.0])
    stream = UnixHTTPClient(str(server.path), timeout=5).stream("GET", "/events")
    seen: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: seen.extend(stream))
    reader.start()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    stream.close()
    reader.join(5)
    assert not reader.is_alive() and time.monotonic() - started < 2
    assert seen == [{"Action": "start"}]


def test_a_stream_closed_before_it_is_read_yields_nothing(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [CHUNKED_HEAD, 30.0])
    stream = UnixHTTPClient(str(server.path), timeout=5).stream("GET", "/events")
    stream.close()
    assert list(stream) == []


def test_a_stream_refused_with_an_error_status(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [reply("400 Bad Request", {"message": "invalid filter 'type=nope'"})])
    with pytest.raises(HTTPError, match="invalid filter"):
        UnixHTTPClient(str(server.path), timeout=5).stream("GET", "/events")


def test_a_stream_the_engine_closes_between_chunks_ends(serve: Callable[[Answer], Server]) -> None:
    # A daemon going away closes its event streams between two events: the stream has ended (docker-py says the
    # same), and the event source reports "the engine closed the event stream".
    server = serve(lambda r: [CHUNKED_HEAD, chunk(b'{"Action": "die"}\n'), 0.02, CLOSE])
    stream = UnixHTTPClient(str(server.path), timeout=5).stream("GET", "/events")
    assert list(stream) == [{"Action": "die"}]


def test_a_stream_cut_in_the_middle_of_a_chunk_raises(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [CHUNKED_HEAD, chunk(b'{"Action": "die"}\n'), b"40\r\n{", 0.02, CLOSE])
    stream = UnixHTTPClient(str(server.path), timeout=5).stream("GET", "/events")
    seen: list[dict[str, Any]] = []
    with pytest.raises(ProtocolError, match="in the middle of its answer"):
        seen.extend(stream)
    assert seen == [{"Action": "die"}]


def test_a_whole_answer_cut_between_chunks_is_cut_short(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [CHUNKED_HEAD, chunk(b"[1,"), 0.02, CLOSE])
    with pytest.raises(ProtocolError, match="in the middle of its answer"):
        UnixHTTPClient(str(server.path), timeout=5).request("GET", "/containers/json")


# --------------------------------------------------------------------------- sockets that cannot be used


ADVICE_NOTHING_LISTENS = (
    "Start the daemon (sudo systemctl start docker), or point socktui at the right engine with --host, --context or "
    "DOCKER_HOST."
)


def test_a_missing_socket_is_unreachable(tmp_path: Path) -> None:
    path = tmp_path / "absent.sock"
    with pytest.raises(FileNotFoundError) as error:
        UnixHTTPClient(str(path), timeout=5).request("GET", "/_ping")
    assert failure_of(error.value, f"unix://{path}") == (
        Failure.UNREACHABLE,
        "nothing is listening there",
        ADVICE_NOTHING_LISTENS,
    )


def test_a_socket_nobody_listens_on_is_refused_and_unreachable(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # bound, never listening: a connect is refused
    try:
        with pytest.raises(ConnectionRefusedError) as error:
            UnixHTTPClient(str(path), timeout=5).request("GET", "/_ping")
    finally:
        stale.close()
    assert failure_of(error.value, f"unix://{path}") == (
        Failure.UNREACHABLE,
        "nothing is listening there",
        ADVICE_NOTHING_LISTENS,
    )


def test_a_directory_at_the_socket_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "docker.sock").mkdir()
    with pytest.raises(ConnectionRefusedError):
        UnixHTTPClient(str(tmp_path / "docker.sock"), timeout=5).request("GET", "/_ping")


DENIED_PROGRAM = """
import os, sys
from socktui.engine import Endpoint, Engine
from socktui.unixhttp import UnixHTTPClient
path = sys.argv[1]
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)  # nobody, outside the socket's group: as a user outside the docker group
try:
    UnixHTTPClient(path, timeout=5).request("GET", "/_ping")
except BaseException as exc:
    error = Engine(Endpoint("unix://" + path, "--host"))._fail(exc)
    print(type(exc).__name__, error.failure.value, error.problem, error.advice, sep="\\n")
else:
    print("connected")
"""


def test_a_socket_the_user_may_not_write_is_denied() -> None:
    """EACCES, for real: a 0660 root-owned socket (as dockerd makes it) connected to as uid 65534 (when run as root,
    in a subprocess that drops to it; otherwise the socket is made 0 for the user running the tests)."""
    directory = tempfile.mkdtemp(prefix="st-http-")
    try:
        os.chmod(directory, 0o755)  # nobody may reach the socket: only the socket's own mode stands in the way
        path = os.path.join(directory, "docker.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        os.chmod(path, 0o660 if os.geteuid() == 0 else 0)
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        try:
            done = subprocess.run(
                [sys.executable, "-c", DENIED_PROGRAM, path], capture_output=True, text=True, timeout=60, check=False
            )
        finally:
            listener.close()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, "docker.sock"))
        os.rmdir(directory)
    assert done.returncode == 0, done.stderr
    kind, failure, problem, advice = done.stdout.splitlines()
    assert (kind, failure, problem) == ("PermissionError", "denied", "permission denied on the engine socket")
    assert advice == (
        f"Join the group that owns {path} (usually: sudo usermod -aG docker $USER, then log in again), or run socktui "
        "with sudo."
    )


def test_an_engine_that_never_answers_times_out(serve: Callable[[Answer], Server]) -> None:
    server = serve(lambda r: [30.0])
    client = UnixHTTPClient(str(server.path), timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as error:
        client.request("GET", "/_ping")
    assert time.monotonic() - started < 3
    assert failure_of(error.value, server.url) == (
        Failure.TIMEOUT,
        "the engine did not answer in time",
        "The daemon may be overloaded or stuck; try again, or check it.",
    )


# --------------------------------------------------------------------------- the engine on top of it


PING_DOCKER = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nServer: Docker/20.10.24 (linux)\r\nContent-Length: 2\r\n\r\nOK"
PING_PODMAN = (
    b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nLibpod-Api-Version: 4.3.1\r\nServer: Libpod/4.3.1 (linux)\r\n"
    b"Content-Length: 2\r\n\r\nOK"
)


def engine_answer(ping: bytes, actions: dict[str, bytes] | None = None) -> Answer:
    def answer(r: Request) -> list[Piece]:
        path = r.target.split("?", 1)[0]
        if path == "/_ping":
            return [ping]
        if path == "/version":
            return [reply("200 OK", {"Version": "20.10.24", "ApiVersion": "1.41", "Components": [{"Name": "Engine"}]})]
        if path == "/v1.41/containers/json":
            return [reply("200 OK", [{"Id": "c1", "Names": ["/one"], "State": "running", "Mounts": []}])]
        if path == "/v1.41/containers/c1/json":
            return [reply("200 OK", {"Id": "c1", "Name": "/one", "State": {"Status": "running", "Pid": 42}})]
        if path.startswith("/v1.41/containers/") and path.endswith("/json"):
            return [reply("404 Not Found", {"message": "No such container"})]
        for action, answer in (actions or {}).items():
            if r.method == "POST" and path.endswith(f"/{action}"):
                return [answer]
        return [reply("404 Not Found", {"message": "page not found"})]

    return answer


def test_engine_asks_docker_its_ping_and_version_then_speaks_its_api(serve: Callable[[Answer], Server]) -> None:
    server = serve(engine_answer(PING_DOCKER))
    engine = Engine(Endpoint(server.url, "--host"))
    info = engine.info()
    assert (info.product, info.version, info.api_version) == (Product.DOCKER, "20.10.24", "1.41")
    [listed] = engine.list_containers()
    assert listed.name == "one"
    inspected = engine.inspect_one("c1")
    assert inspected is not None and inspected.pid == 42
    assert engine.inspect_one("gone") is None
    assert [r.target for r in server.requests] == [
        "/_ping",
        "/version",
        "/v1.41/containers/json?all=1",
        "/v1.41/containers/c1/json",
        "/v1.41/containers/gone/json",
    ]
    assert server.accepted == 1


def test_engine_knows_podman_from_its_ping_alone(serve: Callable[[Answer], Server]) -> None:
    server = serve(engine_answer(PING_PODMAN))
    info = Engine(Endpoint(server.url, "--host")).info()
    assert (info.product, info.version, info.api_version) == (Product.PODMAN, "4.3.1", "1.41")
    assert [r.target for r in server.requests] == ["/_ping"]


def test_engine_actions_post_with_their_timeout_and_take_304(serve: Callable[[Answer], Server]) -> None:
    actions = {
        "stop": b"HTTP/1.1 304 Not Modified\r\n\r\n",
        "restart": b"HTTP/1.1 204 No Content\r\n\r\n",
        "start": reply("500 Internal Server Error", {"message": "error mounting: not a directory"}),
    }
    server = serve(engine_answer(PING_DOCKER, actions))
    engine = Engine(Endpoint(server.url, "--host"))
    engine.stop("c1", timeout=3)
    engine.restart("c1", timeout=4)
    with pytest.raises(HTTPError, match=r"500 Server Error for POST /v1\.41/containers/c1/start: .*not a directory"):
        engine.start("c1")
    posts = [(r.method, r.target) for r in server.requests if r.method == "POST"]
    assert posts == [
        ("POST", "/v1.41/containers/c1/stop?t=3"),
        ("POST", "/v1.41/containers/c1/restart?t=4"),
        ("POST", "/v1.41/containers/c1/start"),
    ]


def test_engine_events_open_eagerly_and_follow_container_events(serve: Callable[[Answer], Server]) -> None:
    event = {"Type": "container", "Action": "start", "Actor": {"ID": "c1", "Attributes": {"name": "one"}}}

    def answer(r: Request) -> Sequence[Piece]:
        if r.target.startswith("/v1.41/events"):
            return [CHUNKED_HEAD, chunk(json.dumps(event).encode() + b"\n"), 0.05, b"0\r\n\r\n"]
        return engine_answer(PING_DOCKER)(r)

    server = serve(answer)
    engine = Engine(Endpoint(server.url, "--host"))
    stream = engine.open_events(since=1700000000)
    assert server.requests[-1].target.startswith("/v1.41/events?filters=")  # asked before the first event
    assert "since=1700000000" in server.requests[-1].target
    assert list(stream) == [event]


def test_engine_errors_are_engine_errors_with_their_failure(tmp_path: Path) -> None:
    engine = Engine(Endpoint(f"unix://{tmp_path / 'absent.sock'}", "--host"))
    with pytest.raises(EngineError) as error:
        engine.list_containers()
    assert error.value.failure is Failure.UNREACHABLE
    with pytest.raises(EngineError) as error:
        engine.open_events()
    assert error.value.failure is Failure.UNREACHABLE
