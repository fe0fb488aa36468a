"""The engine's socket judged when the engine is unreachable: every verdict of ``decide_engine_socket``, and when
``explain_unreachable`` replaces the engine's error (only when the socket is what failed), on real paths too."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from builders import directory, lstat_error, missing, regular_file, sock

from socktui.engine import Endpoint, EndpointError, EngineError, Failure
from socktui.enginesock import decide_engine_socket, engine_socket_command, explain_unreachable, judge_engine_socket
from socktui.model import Creds, Listener, Liveness, Product, SocketState, Verdict

PATH = "/var/run/docker.sock"
ROOT = (Creds(0, 0), "uid 0 gid 0")
USER = (Creds(1000, 1000), "uid 1000 gid 1000")
LISTENING = SocketState(Liveness.LISTENING, sock_type="stream", queued=0, backlog=128, looked_in=1)
UNBOUND = SocketState(Liveness.UNBOUND, looked_in=1)


def test_missing() -> None:
    j = decide_engine_socket(PATH, missing(PATH), None, None, ROOT)
    assert j.verdict is Verdict.MISSING and "dockerd is not running" in j.reason and j.fix is None
    assert j.advice.startswith("Start the daemon")


def test_an_empty_directory_is_shadowed_and_offers_its_removal() -> None:
    j = decide_engine_socket(PATH, directory(PATH, entries=0), None, None, ROOT)
    assert j.verdict is Verdict.SHADOWED and j.fix == "remove-shadow-dir"
    assert f"can't create unix socket {PATH}: is a directory" in j.reason
    assert "sudo socktui fix --engine-socket remove-shadow-dir" in j.advice


def test_a_directory_with_something_in_it_is_shadowed_with_no_fix() -> None:
    j = decide_engine_socket(PATH, directory(PATH, entries=2), None, None, ROOT)
    assert j.verdict is Verdict.SHADOWED and j.fix is None and "will not remove it" in j.advice
    assert "2 entries" in j.reason


def test_a_file_is_not_socket() -> None:
    j = decide_engine_socket(PATH, regular_file(PATH), None, None, ROOT)
    assert j.verdict is Verdict.NOT_SOCKET and "a regular file" in j.reason


def test_a_socket_nobody_is_bound_to_is_stale() -> None:
    j = decide_engine_socket(PATH, sock(PATH), UNBOUND, None, ROOT)
    assert j.verdict is Verdict.STALE and "it replaces the stale file itself" in j.advice


@pytest.mark.parametrize(("mode", "words"), [(0o660, "Join its group (gid 999"), (0o600, "only the socket's owner")])
def test_a_socket_the_user_may_not_write_is_denied_with_advice_for_its_mode(mode: int, words: str) -> None:
    j = decide_engine_socket(PATH, sock(PATH, mode=mode, gid=999), LISTENING, None, USER)
    assert j.verdict is Verdict.DENIED
    assert "permission denied on the engine socket" in j.reason and "uid 1000 gid 1000" in j.reason
    assert words in j.advice


def test_a_listening_socket_is_live_and_named_by_its_listener() -> None:
    dockerd = Listener(pid=42, command="/usr/bin/dockerd -H fd://")
    j = decide_engine_socket(PATH, sock(PATH), LISTENING, dockerd, ROOT)
    assert j.verdict is Verdict.LIVE and "pid 42 /usr/bin/dockerd listens" in j.reason


def test_a_full_queue_and_an_unreadable_path_are_unknown() -> None:
    full = SocketState(Liveness.NOT_ACCEPTING, queued=129, backlog=128, looked_in=1)
    assert decide_engine_socket(PATH, sock(PATH), full, None, ROOT).verdict is Verdict.UNKNOWN
    j = decide_engine_socket(PATH, lstat_error(PATH, "EACCES"), None, None, USER)
    assert j.verdict is Verdict.UNKNOWN and "EACCES" in j.reason


def test_podman_is_named_for_podman() -> None:
    j = decide_engine_socket("/run/podman/podman.sock", missing(), None, None, ROOT, Product.PODMAN)
    assert "Podman's API service is not running" in j.reason and "podman.socket" in j.advice


def test_the_fix_command_names_the_endpoint_unless_it_is_the_default() -> None:
    assert engine_socket_command(Endpoint("unix:///var/run/docker.sock", "default socket")) == (
        "socktui fix --engine-socket"
    )
    assert engine_socket_command(Endpoint("unix:///tmp/a b/docker.sock", "--host")) == (
        "socktui fix -H 'unix:///tmp/a b/docker.sock' --engine-socket"
    )


# --------------------------------------------------------------------------- on real paths


def test_explain_replaces_nothing_is_listening_with_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "docker.sock").mkdir()
    endpoint = Endpoint(f"unix://{tmp_path}/docker.sock", "--host")
    exc = EngineError(
        f"{endpoint.url} (--host)", "nothing is listening there", "Start the daemon.", Failure.UNREACHABLE
    )
    explained = explain_unreachable(exc, endpoint)
    assert explained.problem.startswith("shadowed: a directory (empty, root-owned")
    assert f"socktui fix -H unix://{tmp_path}/docker.sock --engine-socket remove-shadow-dir" in explained.advice
    assert explained.endpoint == exc.endpoint


def test_explain_keeps_errors_the_socket_did_not_cause(tmp_path: Path) -> None:
    (tmp_path / "docker.sock").mkdir()
    endpoint = Endpoint(f"unix://{tmp_path}/docker.sock", "--host")
    timeout = EngineError("x", "the engine did not answer in time", "Try again.", Failure.TIMEOUT)
    assert explain_unreachable(timeout, endpoint) is timeout
    chosen = EndpointError("-H x", "-H 'x': is a path", "Write it as unix://x.")
    assert explain_unreachable(chosen, endpoint) is chosen
    remote = Endpoint("tcp://10.0.0.5:2375", "--host")
    refused = EngineError("tcp", "nothing is listening there", "Start it.", Failure.UNREACHABLE)
    assert explain_unreachable(refused, remote) is refused and judge_engine_socket(remote) is None


def test_a_live_socket_leaves_the_engine_error_alone(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    try:
        endpoint = Endpoint(f"unix://{path}", "--host")
        judged = judge_engine_socket(endpoint)
        assert judged is not None and judged.verdict is Verdict.LIVE
        exc = EngineError("x", "nothing is listening there", "Start the daemon.", Failure.UNREACHABLE)
        assert explain_unreachable(exc, endpoint) is exc
    finally:
        server.close()
    judged = judge_engine_socket(Endpoint(f"unix://{path}", "--host"))
    assert judged is not None and judged.verdict is Verdict.STALE
