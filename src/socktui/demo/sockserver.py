"""A tiny AF_UNIX stream server, run as its own process by the test harness and by ``socktui demo``.

It is a separate process (not a thread) so that every server has its own pid and a recognizable command line, and
so that a test or a demo key can SIGKILL it to leave a stale socket behind. Standard library only: it is run by path
(``python .../sockserver.py``), never imported by socktui itself.

Usage: python sockserver.py PATH [--mode 600] [--gid N] [--no-unlink] [--echo] [--retry SECONDS]

Protocol: after bind/chmod/listen it prints ``READY <st_dev> <st_ino>`` on stdout. On a bind failure it prints one
line on stderr and exits with BIND_FAILED, unless ``--retry`` is given: then it tries again every SECONDS, the way a
service manager restarts a server that could not bind (the "shadowed" story: it binds as soon as the directory in
its way is gone).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import stat
import sys
import threading
import time
from types import FrameType

BIND_FAILED = 3


def _serve_client(conn: socket.socket, echo: bool) -> None:
    with conn:
        try:
            if echo:
                with conn.makefile("rb") as reader:
                    for line in reader:
                        conn.sendall(line)
            else:
                # Hold the connection open like a real server would, until the client goes away.
                while conn.recv(4096):
                    pass
        except OSError:
            pass


def _unlink_if_ours(path: str, ident: tuple[int, int]) -> None:
    # Another server may have replaced the path since (the "shadowed" case): never remove its socket.
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) == ident:
        os.unlink(path)


def _bind(path: str, *, unlink_first: bool, retry: float | None) -> socket.socket | None:
    said = False
    while True:
        if unlink_first:
            # Like most real servers: clear a leftover socket, but never a file or directory.
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    os.unlink(path)
            except FileNotFoundError:
                pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            return listener
        except OSError as exc:
            listener.close()
            if not said:
                name = errno.errorcode.get(exc.errno or 0, "?")
                again = f"; retrying every {retry:g} s" if retry is not None else ""
                print(f"sockserver: cannot bind {path}: {name}: {exc.strerror}{again}", file=sys.stderr, flush=True)
                said = True
            if retry is None:
                return None
        time.sleep(retry)


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sockserver.py")
    parser.add_argument("path")
    parser.add_argument("--mode", type=lambda s: int(s, 8), default=None, help="octal, applied after bind")
    parser.add_argument("--no-unlink", action="store_true", help="do not remove an existing socket first")
    parser.add_argument("--echo", action="store_true", help="echo every line back")
    parser.add_argument("--gid", type=int, default=None, help="group of the socket file, applied after bind")
    parser.add_argument("--retry", type=float, default=None, metavar="SECONDS", help="keep trying to bind")
    args = parser.parse_args(argv)
    path: str = args.path

    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)

    listener = _bind(path, unlink_first=not args.no_unlink, retry=args.retry)
    if listener is None:
        return BIND_FAILED
    st = os.lstat(path)
    ident = (st.st_dev, st.st_ino)
    try:
        if args.gid is not None:
            os.chown(path, -1, args.gid)
        if args.mode is not None:
            os.chmod(path, args.mode)
        listener.listen(64)
        print(f"READY {st.st_dev} {st.st_ino}", flush=True)
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=_serve_client, args=(conn, args.echo), daemon=True).start()
    finally:
        listener.close()
        _unlink_if_ours(path, ident)


if __name__ == "__main__":
    sys.exit(main())
