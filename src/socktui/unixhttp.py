"""A small HTTP/1.1 client over a unix socket: how socktui speaks to a local engine without docker-py.

docker-py brings requests and urllib3 (about 0.1 s of imports on a 2-core machine) and ``http.client`` brings the
email parser (about 15 ms): most of a one-shot ``socktui check``. A local engine needs little of either: GET and
POST with a query string, answers framed by ``Content-Length`` or chunked, keep-alive connections, one streamed
``GET /events``, and a timeout on everything but the wait for the next event. Raw socket reads do it here.

Errors are what the caller can tell apart: ``FileNotFoundError``, ``ConnectionRefusedError`` and ``PermissionError``
from ``connect`` as the kernel gives them, ``TimeoutError`` when the engine does not answer in time,
:class:`HTTPError` (the status and the engine's own JSON ``message``) for an error status, :class:`ProtocolError`
(a ``ConnectionError``) for an answer that is not HTTP or that breaks off.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import re
import socket
import threading
from collections.abc import Generator, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

CHUNK = 65536
MAX_READ = 1024 * 1024  # the most asked of one recv, however large the body
MAX_HEAD_BYTES = 64 * 1024  # a status line and headers longer than this are not an engine talking
MAX_EVENT_BYTES = 16 * 1024 * 1024  # an unfinished event document this large is not an event
MAX_IDLE = 8  # idle keep-alive connections kept for reuse
USER_AGENT = "socktui"
_NO_BODY = frozenset({204, 304})
_REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 404: "Not Found", 409: "Conflict", 500: "Server Error"}

Query = Mapping[str, str | int | None]
_SPACE = re.compile(r"[ \t\n\r]*")  # what JSON allows between documents


class HTTPError(Exception):
    """The engine answered with an error status. ``message`` is the engine's JSON ``message`` (or its text)."""

    def __init__(self, method: str, target: str, status: int, reason: str, message: str) -> None:
        super().__init__(method, target, status, reason, message)
        self.method = method
        self.target = target
        self.status = status
        self.reason = reason
        self.message = message

    @classmethod
    def of(cls, method: str, target: str, response: Response) -> HTTPError:
        return cls(method, target, response.status, response.reason, _message_of(response.body))

    def __str__(self) -> str:
        side = "Client" if self.status < 500 else "Server"
        text = f"{self.status} {side} Error for {self.method} {self.target}: {self.reason}"
        return f'{text} ("{self.message}")' if self.message else text


class ProtocolError(ConnectionError):
    """The answer was not HTTP as expected, or the connection broke off in the middle of it."""


class ConnectionClosed(ProtocolError):
    """The engine closed the connection before any byte of an answer (a keep-alive connection it had dropped)."""


class Response:
    """A whole answer: status, reason, headers (names lower-cased) and body."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def json(self) -> Any:
        return json.loads(self.body)


def _message_of(body: bytes) -> str:
    """The engine's own words for an error: Docker and Podman send ``{"message": "..."}``."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:500]
    if isinstance(doc, Mapping) and doc.get("message") is not None:
        return str(doc["message"])
    return body.decode("utf-8", "replace").strip()[:500]


def _target(path: str, query: Query | None) -> str:
    if not query:
        return path
    pairs = [(k, str(v)) for k, v in query.items() if v is not None]
    return f"{path}?{urlencode(pairs)}" if pairs else path


class _Connection:
    """One socket and what has been read from it but not yet used."""

    def __init__(self, path: str, timeout: float | None) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.buffer = bytearray()
        self.served = 0  # answers read whole from this connection
        self.received = False  # any byte of the current answer has arrived

    def close(self) -> None:
        self.sock.close()

    def _fill(self, want: int = CHUNK) -> None:
        data = self.sock.recv(min(max(want, CHUNK), MAX_READ))
        if not data:
            if self.received or self.buffer:
                raise ProtocolError("the engine closed the connection in the middle of its answer")
            raise ConnectionClosed("the engine closed the connection without an answer")
        self.received = True
        self.buffer += data

    def readline(self, limit: int = MAX_HEAD_BYTES) -> bytes:
        start = 0
        while True:
            end = self.buffer.find(b"\n", start)
            if end >= 0:
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                return line
            if len(self.buffer) > limit:
                raise ProtocolError("the engine's answer has a line too long to be HTTP")
            start = len(self.buffer)
            self._fill()

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill(size - len(self.buffer))
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_until_closed(self) -> Iterator[bytes]:
        if self.buffer:
            data = bytes(self.buffer)
            self.buffer.clear()
            yield data
        while True:
            data = self.sock.recv(CHUNK)
            if not data:
                return
            yield data

    def send(self, head: bytes) -> None:
        self.received = False
        self.sock.sendall(head)

    def read_head(self) -> tuple[int, str, dict[str, str], bool]:
        """The status, reason, headers and whether the connection may be used again (1xx answers skipped)."""
        while True:
            line = self.readline()
            parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise ProtocolError(f"the engine did not answer in HTTP: {line[:80]!r}")
            status = int(parts[1])
            reason = parts[2] if len(parts) > 2 else _REASONS.get(status, "")
            headers: dict[str, str] = {}
            size = 0
            while True:
                raw = self.readline()
                size += len(raw)
                if size > MAX_HEAD_BYTES:
                    raise ProtocolError("the engine's answer has too many headers to be HTTP")
                text = raw.decode("latin-1").rstrip("\r\n")
                if not text:
                    break
                name, sep, value = text.partition(":")
                if sep:
                    key = name.strip().lower()
                    value = value.strip()
                    headers[key] = f"{headers[key]}, {value}" if key in headers else value
            if 100 <= status < 200 and status != 101:
                continue  # 100 Continue and friends: the real answer follows
            keep = parts[0] == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
            return status, reason, headers, keep

    def body_parts(
        self, method: str, status: int, headers: Mapping[str, str], *, stream: bool = False
    ) -> tuple[Iterator[bytes], bool]:
        """The body as it arrives, and whether its end is framed (so the connection can serve another answer).

        A ``stream`` (events) that the engine closes between two chunks has ended, as docker-py also takes it; a
        whole answer closed there is cut short.
        """
        if method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
            return iter(()), True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._chunks(stream), True
        length = headers.get("content-length")
        if length is not None:
            try:
                size = int(length.split(",")[0])
            except ValueError:
                raise ProtocolError(f"the engine sent a Content-Length that is not a number: {length!r}") from None
            if size < 0:
                raise ProtocolError(f"the engine sent a negative Content-Length: {length!r}")
            return (iter((self.read(size),)) if size else iter(())), True
        return self.read_until_closed(), False

    def _chunks(self, end_at_close: bool) -> Iterator[bytes]:
        while True:
            if end_at_close and not self.buffer:
                data = self.sock.recv(CHUNK)
                if not data:
                    return
                self.buffer += data
            line = self.readline().split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise ProtocolError(f"the engine sent a chunk size that is not hexadecimal: {line[:40]!r}") from None
            if size == 0:
                while self.readline().strip():  # trailers, then the blank line that ends the body
                    pass
                return
            data = self.read(size)
            if self.readline().strip():
                raise ProtocolError("the engine's chunk does not end where its size says")
            yield data


class UnixHTTPClient:
    """Keep-alive HTTP/1.1 over the unix socket at ``path``; thread-safe.

    Each request takes an idle connection, or opens one, and gives it back when its answer has been read whole: so
    requests made at the same time from several threads each have their own connection, and later ones reuse them.
    A connection the engine dropped while idle is noticed at its next use, and the request is sent again once on a
    new connection.
    """

    def __init__(self, path: str, timeout: float | None = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self.connections_made = 0  # for tests: how many connects

    def _connect(self) -> _Connection:
        conn = _Connection(self.path, self.timeout)
        with self._lock:
            self.connections_made += 1
        return conn

    def _take(self) -> _Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _give_back(self, conn: _Connection) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections; those in use are closed when their answer is read."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _head(self, method: str, target: str) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", "Host: localhost", f"User-Agent: {USER_AGENT}"]
        if method in ("POST", "PUT"):
            lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

    def request(self, method: str, path: str, query: Query | None = None, *, timeout: float | None = None) -> Response:
        """Send one request and read its whole answer, whatever its status."""
        target = _target(path, query)
        head = self._head(method, target)
        for attempt in (1, 2):
            conn = self._take()
            reused = conn.served > 0
            try:
                conn.sock.settimeout(self.timeout if timeout is None else timeout)
                conn.send(head)
                status, reason, headers, keep = conn.read_head()
                parts, framed = conn.body_parts(method, status, headers)
                body = b"".join(parts)
            except (ConnectionClosed, BrokenPipeError, ConnectionResetError):
                conn.close()
                # A kept-alive connection the engine dropped while it was idle: nothing of this request was
                # answered, so it is sent again, once, on a new connection.
                if reused and attempt == 1 and not conn.received:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            conn.served += 1
            if keep and framed:
                self._give_back(conn)
            else:
                conn.close()
            return Response(status, reason, headers, body)
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, method: str, path: str, query: Query | None = None, *, timeout: float | None = None) -> Response:
        """:meth:`request`, raising :class:`HTTPError` for a 4xx or 5xx answer (a 304 is no error)."""
        response = self.request(method, path, query, timeout=timeout)
        if response.status >= 400:
            raise HTTPError.of(method, _target(path, query), response)
        return response

    def get_json(self, path: str, query: Query | None = None) -> Any:
        """``GET`` and decode: an error status raises :class:`HTTPError`, a body that is not JSON ``ValueError``."""
        return self.call("GET", path, query).json()

    def stream(self, method: str, path: str, query: Query | None = None) -> JSONStream:
        """Open a streamed request (``GET /events``) on a connection of its own and return once it is answered.

        The connect and the answer's head are bounded by the timeout; the wait for each document is not.
        """
        target = _target(path, query)
        conn = self._connect()
        try:
            conn.send(self._head(method, target))
            status, reason, headers, _ = conn.read_head()
            parts, _ = conn.body_parts(method, status, headers, stream=status < 300)
            if status >= 400:
                raise HTTPError(method, target, status, reason, _message_of(b"".join(parts)))
        except BaseException:
            conn.close()
            raise
        conn.sock.settimeout(None)
        return JSONStream(conn, parts)


class JSONStream:
    """The JSON documents of a streamed answer (Docker and Podman send one per line), as they arrive.

    Documents may be split across chunks and reads, or several may come in one: a buffer is decoded with
    ``raw_decode`` as far as it holds whole documents. Only objects are yielded. :meth:`close` may be called from
    any thread, also while another one is blocked waiting for the next document: the wait then ends.
    """

    def __init__(self, conn: _Connection, parts: Iterator[bytes]) -> None:
        self._conn = conn
        self._parts = parts
        self._closed = threading.Event()
        self._documents = self._read()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._documents

    def _read(self) -> Generator[dict[str, Any], None, None]:
        decoder = json.JSONDecoder()
        text = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""
        try:
            for data in self._parts:
                pending += text.decode(data)
                documents, pending = _decode_all(decoder, pending)
                yield from documents
                if len(pending) > MAX_EVENT_BYTES:
                    raise ProtocolError("the engine sent an event that never ends")
            pending += text.decode(b"", final=True)
            documents, pending = _decode_all(decoder, pending)
            yield from documents
        except OSError:
            if self._closed.is_set():  # closed under a blocked read: an end, not an error
                return
            raise
        finally:
            self._conn.close()

    def close(self) -> None:
        """End the stream; safe from any thread."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._conn.sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked in recv
        if not self._documents.gi_running:  # type: ignore[attr-defined]  # (typeshed: GeneratorType only)
            # Nobody is reading: end the reader here (it closes the socket). One that is reading ends by itself
            # now that the socket is shut, and closes it as it leaves.
            with contextlib.suppress(ValueError):
                self._documents.close()


def _decode_all(decoder: json.JSONDecoder, text: str) -> tuple[list[dict[str, Any]], str]:
    """The whole JSON objects at the start of ``text``, and what is left of it (an unfinished document)."""
    documents: list[dict[str, Any]] = []
    pos = 0
    end = len(text)
    while True:
        space = _SPACE.match(text, pos)
        pos = space.end() if space else pos
        if pos >= end:
            return documents, ""
        try:
            document, pos_after = decoder.raw_decode(text, pos)
        except ValueError:
            return documents, text[pos:]
        if isinstance(document, dict):
            documents.append(document)
        pos = pos_after
