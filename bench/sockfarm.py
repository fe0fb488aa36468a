"""One process that listens on many AF_UNIX paths: the benchmark's host servers.

Starting a process per socket would cost 1,000 interpreters at N=1000; one selector loop is enough to accept (and
drop) every connection socktui's probes make. It also takes commands on stdin, so the benchmark can time a ``bind`` or
an ``unlink`` from the very syscall: every reply carries ``time.monotonic()`` (CLOCK_MONOTONIC, the same clock in every
process) taken just before the first syscall and just after the last.

Usage: python bench/sockfarm.py [--paths-file FILE]

Prints ``READY <count>`` once the initial paths are bound. Commands, one per line, paths separated by spaces:

    bind PATH...      bind + listen each (an existing *socket* there is unlinked first); OK <t_first> <t_last>
    unlink PATH...    unlink each path, then close its listener;                       OK <t_first> <t_last>
    count             OK <number of listening sockets>
    accepts           OK <number of connections accepted since start>: what socktui's looks cost the servers
    quit              close everything (sockets stay on disk, the benchmark removes its directory)

An error answers ``ERR <path> <errno name>`` and changes nothing more for that command.
"""

from __future__ import annotations

import argparse
import errno
import os
import resource
import selectors
import socket
import stat
import sys
import time


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Farm:
    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.listeners: dict[str, socket.socket] = {}
        self.accepted = 0

    def bind(self, path: str) -> None:
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            sock.bind(path)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        old = self.listeners.pop(path, None)
        if old is not None:
            self.sel.unregister(old)
            old.close()
        self.listeners[path] = sock
        self.sel.register(sock, selectors.EVENT_READ, path)

    def unlink(self, path: str) -> None:
        os.unlink(path)
        sock = self.listeners.pop(path, None)
        if sock is not None:
            self.sel.unregister(sock)
            sock.close()

    def accept_all(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.accepted += 1
            conn.close()  # a probe only needs the connect to succeed


def _reply(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _command(farm: Farm, line: str) -> bool:
    words = line.split()
    if not words:
        return True
    verb, paths = words[0], words[1:]
    if verb == "quit":
        return False
    if verb == "count":
        _reply(f"OK {len(farm.listeners)}")
        return True
    if verb == "accepts":
        _reply(f"OK {farm.accepted}")
        return True
    if verb not in ("bind", "unlink"):
        _reply(f"ERR - unknown-command:{verb}")
        return True
    action = farm.bind if verb == "bind" else farm.unlink
    first = time.monotonic()
    for path in paths:
        try:
            action(path)
        except OSError as exc:
            _reply(f"ERR {path} {errno.errorcode.get(exc.errno or 0, '?')}")
            return True
    last = time.monotonic()
    _reply(f"OK {first:.9f} {last:.9f}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sockfarm.py")
    parser.add_argument("--paths-file", help="paths to bind at start, one per line")
    args = parser.parse_args(argv)
    _raise_fd_limit()
    farm = Farm()
    if args.paths_file:
        with open(args.paths_file, encoding="utf-8") as fh:
            for path in (line.rstrip("\n") for line in fh):
                if path:
                    try:
                        farm.bind(path)
                    except OSError as exc:
                        print(f"sockfarm: cannot bind {path}: {exc}", file=sys.stderr, flush=True)
                        return 3
    stdin = sys.stdin.fileno()
    farm.sel.register(stdin, selectors.EVENT_READ, None)
    _reply(f"READY {len(farm.listeners)}")
    pending = b""
    try:
        while True:
            for key, _ in farm.sel.select():
                if key.data is None:
                    chunk = os.read(stdin, 1 << 20)
                    if not chunk:
                        return 0
                    pending += chunk
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        if not _command(farm, os.fsdecode(line)):
                            return 0
                else:
                    farm.accept_all(key.fileobj)  # type: ignore[arg-type]
    finally:
        for sock in farm.listeners.values():
            sock.close()


if __name__ == "__main__":
    sys.exit(main())
