"""A socket directory that lost its sockets, made for real with PostgreSQL and nginx (issue 11, item 2).

Each server runs from Debian's package on a private directory that a container mounts; the truth is what a client
inside the container gets (``tests/static/uclient.c`` via ``docker exec``): ``connected`` while the server runs,
``ENOENT`` once its socket is gone. socktui must then say ``missing`` and exit 1, naming what it expected, where it
used to drop the mount and exit 0. A plain data directory must stay out of the report.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import TRAP, ContainerFactory, Engine, build_static, unique_name
from real_servers import Nginx, Postgres, private_dir
from socktui.live import Monitor, Update
from socktui.model import Role, Verdict
from socktui.session import Options, make_session

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def uclient() -> Path:
    return build_static("uclient")


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with Postgres() as pg:
        yield pg


@pytest.fixture
def run_dir() -> Iterator[Path]:
    path = private_dir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def port() -> int:
    return random.randrange(20000, 60000)


def socktui(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "socktui.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def check(engine: Engine, name: str, *extra: str, rc: int) -> dict[str, Any]:
    """``socktui check --json --all NAME``: the exit code checked, the container's one mount returned."""
    proc = socktui("check", "--json", "--all", "-H", engine.host, *extra, name)
    assert proc.returncode == rc, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    [container] = json.loads(proc.stdout)["containers"]
    mounts = [m for m in container["mounts"] if m["destination"] != "/uclient"]
    assert len(mounts) == 1, mounts
    found: dict[str, Any] = mounts[0]
    return found


def inside(engine: Engine, cid: str, *argv: str) -> str:
    exec_id = engine.client.exec_create(cid, list(argv))["Id"]
    return bytes(engine.client.exec_start(exec_id)).decode().strip()


def run_mounting(containers: ContainerFactory, uclient: Path, source: Path, destination: str) -> tuple[str, str]:
    name = unique_name()
    cid = containers.run(name=name, command=TRAP, binds=[f"{source}:{destination}", f"{uclient}:/uclient:ro"])
    return name, cid


# --------------------------------------------------------------------------- PostgreSQL


def test_postgres_stopped_cleanly_leaves_its_conventional_directory_missing(
    engine: Engine, containers: ContainerFactory, postgres: Postgres, run_dir: Path, uclient: Path
) -> None:
    """``pg_ctl stop`` removes the socket and its lock file: an empty directory mounted at /var/run/postgresql."""
    postgres.start(run_dir, port())
    name, cid = run_mounting(containers, uclient, run_dir, "/var/run/postgresql")
    inner = f"/var/run/postgresql/{postgres.socket.name}"
    assert inside(engine, cid, "/uclient", inner) == "connected"
    m = check(engine, name, rc=0)
    assert (m["role"], m["verdict"]) == ("socket-dir", "ok")
    assert [s["name"] for s in m["sockets"]] == [postgres.socket.name]

    postgres.stop()
    assert not postgres.socket.exists() and not postgres.lock.exists()
    assert inside(engine, cid, "/uclient", inner).startswith("error ENOENT")  # the truth inside
    m = check(engine, name, rc=1)
    assert (m["role"], m["verdict"]) == ("socket-dir", "missing")
    assert m["reason"].startswith(f"no socket in {run_dir} (at /var/run/postgresql inside): ")
    assert "where PostgreSQL puts its socket (.s.PGSQL.PORT)" in m["reason"]
    assert "nothing is bound there: the server is not running" in m["reason"]


def test_postgres_killed_and_its_stale_socket_removed_leaves_the_lock_file_naming_it(
    engine: Engine, containers: ContainerFactory, postgres: Postgres, run_dir: Path, uclient: Path
) -> None:
    """A crash leaves socket and lock; once the stale socket is removed (socktui's own fix), the lock file is
    what says a socket belongs there. The directory is mounted where no convention applies (/sockets)."""
    postgres.start(run_dir, port())
    name, cid = run_mounting(containers, uclient, run_dir, "/sockets")
    inner = f"/sockets/{postgres.socket.name}"
    postgres.kill()
    assert postgres.socket.exists() and postgres.lock.exists()
    assert inside(engine, cid, "/uclient", inner).startswith("error ECONNREFUSED")
    m = check(engine, name, rc=1)
    assert (m["role"], m["verdict"]) == ("socket-dir", "stale")
    assert [s["name"] for s in m["sockets"]] == [postgres.socket.name]  # the lock file is not a socket candidate
    assert "remove-stale-socket" in [f["id"] for f in m["fixes"]]

    fixed = socktui("fix", "-H", engine.host, name, inner, "remove-stale-socket", "--yes")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert not postgres.socket.exists() and postgres.lock.exists()
    assert inside(engine, cid, "/uclient", inner).startswith("error ENOENT")
    m = check(engine, name, rc=1)
    assert (m["role"], m["verdict"]) == ("socket-dir", "missing")
    lock, sock = postgres.lock.name, postgres.socket.name
    assert f"PostgreSQL's lock file {lock} names {sock}; nothing is bound there" in m["reason"]
    assert [(s["name"], s["verdict"]) for s in m["sockets"]] == [(sock, "missing")]


@pytest.mark.timeout(300)
def test_the_monitor_follows_postgres_stopping_and_starting_again_without_a_recheck(
    engine: Engine, containers: ContainerFactory, postgres: Postgres, run_dir: Path, uclient: Path
) -> None:
    """Item 3: the TUI's live loop (its Monitor, with the real watchers and event stream) shows the directory
    missing when PostgreSQL stops and ok again when it starts, with no r. The directory is mounted where no
    convention applies, so only the session's memory keeps it a socket directory once empty. Each change is on
    screen well before the watcher's 10 s safety-net rescan could have found it."""
    pg_port = port()
    postgres.start(run_dir, pg_port)
    name, cid = run_mounting(containers, uclient, run_dir, "/sockets")
    inner = f"/sockets/{postgres.socket.name}"
    monitor = Monitor(make_session(Options(host=engine.host)))
    updates: list[Update] = []
    cancel = threading.Event()
    thread = threading.Thread(target=monitor.run, args=(cancel, updates.append), daemon=True)
    thread.start()

    def verdict() -> Verdict | None:
        for update in reversed(updates):
            for c in update.report.containers:
                if c.container.id == cid and c.mounts:
                    return next(m.verdict for m in c.mounts if m.mount.destination == "/sockets")
        return None

    def until(what: Verdict, timeout: float) -> None:
        end = time.monotonic() + timeout
        while verdict() is not what:
            assert time.monotonic() < end, f"{name} still {verdict()}, not {what.value}, after {timeout:.0f} s"
            time.sleep(0.05)

    try:
        until(Verdict.OK, 60)
        assert monitor.armed and monitor.looks == 1
        postgres.stop()
        assert inside(engine, cid, "/uclient", inner).startswith("error ENOENT")
        until(Verdict.MISSING, 8)
        postgres.start(run_dir, pg_port, own_dir=False)  # returns once the socket exists
        until(Verdict.OK, 8)
        assert inside(engine, cid, "/uclient", inner) == "connected"
        assert monitor.looks == 1  # followed live: no whole look again, no r
    finally:
        monitor.stop()
        thread.join(10)


# --------------------------------------------------------------------------- nginx, through a session


def test_nginx_stopped_keeps_its_directory_in_the_session_and_expect_dir_names_it_for_check(
    engine: Engine, containers: ContainerFactory, run_dir: Path, uclient: Path
) -> None:
    """``nginx -s stop`` unlinks its socket and pid file: nothing in the directory says what was there. The TUI's
    session remembers the socket it saw; ``socktui check`` (no memory) needs ``--expect DIR/``."""
    with Nginx(run_dir / "nginx.sock") as nginx:
        name, cid = run_mounting(containers, uclient, run_dir, "/srv/web")
        assert inside(engine, cid, "/uclient", "/srv/web/nginx.sock") == "connected"
        session = make_session(Options(host=engine.host))
        first = {r.container.id: r for r in session.full_check().containers}[cid]
        [m] = first.socket_mounts
        assert (m.role, m.verdict) == (Role.SOCKET_DIR, Verdict.OK)

        nginx.stop()
        assert not (run_dir / "nginx.sock").exists()
        assert inside(engine, cid, "/uclient", "/srv/web/nginx.sock").startswith("error ENOENT")
        [later], changes = session.refresh_ids([cid])
        [m] = later.socket_mounts
        assert (m.role, m.verdict) == (Role.SOCKET_DIR, Verdict.MISSING)
        assert f"no socket in {run_dir} (at /srv/web inside): it held nginx.sock earlier in this session" in m.reason
        assert [(s.name, s.verdict) for s in m.sockets] == [("nginx.sock", Verdict.MISSING)]
        assert any("missing" in c.text for c in changes), changes
        assert session.counts()[2] == 1  # one problem, not "no socket mounts"

    plain = check(engine, name, rc=0)
    assert plain["role"] == "other"  # one look, no memory: nothing in the directory says sockets belong there
    expected = check(engine, name, "--expect", f"{run_dir}/", rc=1)
    assert (expected["role"], expected["verdict"]) == ("socket-dir", "missing")
    assert f"--expect {run_dir}/ names it as a directory of sockets" in expected["reason"]


# --------------------------------------------------------------------------- no false alarm


def test_data_directories_stay_out_of_the_report(engine: Engine, containers: ContainerFactory, run_dir: Path) -> None:
    """An application's data, its own pid and lock files, a database's data directory: not socket mounts."""
    data = run_dir / "data"
    data.mkdir()
    for file in ("app.pid", "data.lock", "db.sqlite", "postmaster.pid", "yarn.lock"):
        (data / file).write_text("1\n")
    (data / "cache").mkdir()
    name = unique_name()
    containers.run(name=name, command=TRAP, binds=[f"{data}:/var/lib/app"])
    proc = socktui("check", "--json", "--all", "-H", engine.host, name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [container] = json.loads(proc.stdout)["containers"]
    assert [(m["role"], m["verdict"]) for m in container["mounts"]] == [("other", None)]
