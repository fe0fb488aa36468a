"""A counting Unix-socket proxy between socktui and the daemon: how many API requests does the app make?

Bytes are forwarded untouched in both directions; the client-to-daemon direction is scanned for HTTP request lines
(``GET /...``, ``POST /...``) at the start of the stream or after a CRLF. Every request is recorded with the
monotonic time it was seen, so a window can be cut out of the log afterwards. A long-lived ``/events`` stream is one
request.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from dataclasses import dataclass

_REQUEST = re.compile(rb"\r\n(GET|POST|PUT|DELETE|HEAD|PATCH|OPTIONS) (\S+) HTTP/1\.[01]\r\n")


@dataclass(frozen=True)
class Request:
    at: float
    method: str
    path: str


class CountingProxy:
    def __init__(self, listen_path: str, upstream_path: str) -> None:
        self.listen_path = listen_path
        self.upstream_path = upstream_path
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.listen_path}"

    def start(self) -> CountingProxy:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.listen_path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.listen_path)
        server.listen(64)
        self._server = server
        self._thread = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        self._thread.start()
        return self

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.upstream_path)
            except OSError:
                client.close()
                upstream.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        tail = b"\r\n"  # so the first request line matches like every later one
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if count:
                    seen = time.monotonic()
                    window = tail + data
                    found = [
                        Request(seen, m.group(1).decode(), m.group(2).decode(errors="replace"))
                        for m in _REQUEST.finditer(window)
                        if m.end() > len(tail)  # not already counted from the previous chunk
                    ]
                    if found:
                        with self._lock:
                            self.requests.extend(found)
                    tail = window[-512:]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def between(self, start: float, end: float) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if start <= r.at < end]

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.listen_path)
