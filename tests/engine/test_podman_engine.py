"""What is Podman's own, on a private rootful Podman service: found without -H, named, its rules, its events.

The verdict situations shared with Docker run on both engines in test_check_engine.py.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from textual.widgets import Static

from harness import TRAP, ContainerFactory, Engine, SocketServers, wait_for
from socktui import engine as engine_module
from socktui.cli.main import main
from socktui.diagnose import diagnose
from socktui.engine import Engine as SocktuiEngine
from socktui.engine import resolve_endpoint
from socktui.model import Product, Verdict
from socktui.session import Options, make_session
from socktui.sources.events import EngineEvent, EngineEventStream
from socktui.ui.app import SocktuiApp
from socktui.ui.widgets import EventLog
from socktui.unixhttp import Response, UnixHTTPClient

pytestmark = pytest.mark.engine


@pytest.fixture
def pods(podman_engine: Engine) -> Iterator[ContainerFactory]:
    factory = ContainerFactory(podman_engine)
    try:
        yield factory
    finally:
        factory.cleanup()


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_podman_is_found_through_container_host_when_the_docker_socket_is_absent(
    podman_engine: Engine, pods: ContainerFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    name = f"st-{uuid.uuid4().hex[:10]}"
    pods.run(name=name, command=TRAP)
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CONTAINER_HOST", podman_engine.host)
    monkeypatch.setattr(engine_module, "DOCKER_SOCKET_PATH", str(tmp_path / "no-docker.sock"))

    rc, out, err = run_cli(["check", "--json", name])
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["engine"]["product"] == "podman"
    assert doc["engine"]["endpoint"] == podman_engine.host
    assert doc["engine"]["version"].startswith("4.")

    rc, out, err = run_cli(["check", name])
    lines = out.splitlines()
    header = " ".join(" ".join(lines[: next(i for i, x in enumerate(lines) if " socket mount" in x)]).split())
    assert header.startswith(
        f"engine: Podman {doc['engine']['version']} at {podman_engine.host} (local, via CONTAINER_HOST,"
    )
    assert f"no Docker socket at {tmp_path / 'no-docker.sock'}" in header


async def test_the_tui_logs_how_podman_was_found_and_names_it_in_the_top_bar(
    podman_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CONTAINER_HOST", podman_engine.host)
    absent = tmp_path / "no-docker.sock"
    monkeypatch.setattr(engine_module, "DOCKER_SOCKET_PATH", str(absent))

    app = SocktuiApp(make_session(Options()), live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(600):
            if app.report is not None:
                break
            await pilot.pause(0.05)
        assert app.report is not None
        logged = " ".join(" ".join(line.text.split()) for line in app.query_one(EventLog).lines)
        assert f"looking at {podman_engine.host} (CONTAINER_HOST, no Docker socket at {absent})" in logged, logged
        bar = str(app.query_one("#topbar", Static).content)
        assert f"Podman {app.report.engine.version}" in bar, bar


def test_podmans_rootful_socket_is_found_when_nothing_else_is_there(podman_engine: Engine, tmp_path: Path) -> None:
    assert podman_engine.podman is not None
    ep = resolve_endpoint(
        environ={"HOME": str(tmp_path)},
        docker_socket=str(tmp_path / "absent.sock"),
        podman_sockets=[str(tmp_path / "not-here.sock"), str(podman_engine.podman.socket_path)],
    )
    info = SocktuiEngine(ep).info()
    assert (info.product, info.endpoint, info.local) == (Product.PODMAN, podman_engine.host, True)
    assert info.source.startswith("Podman's socket")


def test_one_ping_and_no_version_or_info(podman_engine: Engine) -> None:
    """Podman is asked once, ``/_ping`` (milliseconds; its ``/version`` and ``/info`` take up to a second each): its
    headers give the API version to speak, the product and its version."""
    eng = SocktuiEngine.from_options(host=podman_engine.host)
    asked: list[str] = []
    real_request = UnixHTTPClient.request

    def counting(client: UnixHTTPClient, method: str, path: str, *args: Any, **kw: Any) -> Response:
        asked.append(path)
        return real_request(client, method, path, *args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(UnixHTTPClient, "request", counting)
        info = eng.info()
        eng.list_containers()
    assert info.product is Product.PODMAN and info.api_version == "1.41"
    assert info.version == podman_engine.client.version()["Version"]
    assert [p for p in asked if p.endswith(("/_ping", "/version", "/info"))] == ["/_ping"]


def test_a_missing_source_on_podman_stays_missing_and_start_fails(
    podman_engine: Engine, pods: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    sock = d / "app.sock"
    server = sockserver.start(sock)
    name = f"st-{uuid.uuid4().hex[:10]}"
    cid = pods.create(name=name, command=TRAP, binds=[f"{sock}:/run/app.sock"])
    server.stop()  # it unlinks its socket: the source is now missing, for a created container
    assert not sock.exists()

    report = diagnose(SocktuiEngine.from_options(host=podman_engine.host), names=[name])
    [m] = report.containers[0].socket_mounts
    assert m.verdict is Verdict.MISSING
    assert "Podman never creates a missing bind source at start" in m.reason
    assert "create a directory" not in m.reason
    assert [f.id for f in m.fixes] == ["start-server-first"]

    with pytest.raises(docker.errors.APIError) as failed:
        podman_engine.client.start(cid)
    assert "no such file or directory" in str(failed.value)
    assert not sock.exists(), "Podman created the missing source at start after all"


def test_podmans_remove_event_is_followed(podman_engine: Engine, pods: ContainerFactory) -> None:
    # ``since`` a moment ago: events from before the stream is open are replayed, not lost to the race.
    stream = EngineEventStream(since=time.time() - 1)
    seen: list[EngineEvent] = []
    stop = threading.Event()
    eng = SocktuiEngine.from_options(host=podman_engine.host)
    worker = threading.Thread(target=stream.run, args=(eng, seen.append, lambda state: None, stop), daemon=True)
    worker.start()
    try:
        name = f"st-{uuid.uuid4().hex[:10]}"
        cid = pods.run(name=name, command=TRAP)
        wait_for(lambda: any(e.action == "start" and e.container_id == cid for e in seen), timeout=30)
        podman_engine.client.remove_container(cid, force=True)
        gone = wait_for(lambda: [e for e in seen if e.action == "destroy" and e.container_id == cid], timeout=30)
        assert gone[0].name == name
    finally:
        stream.stop()
        worker.join(timeout=10)
