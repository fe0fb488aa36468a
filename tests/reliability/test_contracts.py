"""Output contracts: ``check --json`` is one valid document of the documented shape whatever the engine and the
filesystem say, and every failure ends in a sentence, never a traceback.

The property tests feed generated engine payloads (odd, missing and null fields, every mount type, odd strings)
through the same path ``socktui check`` takes (``container_from_list`` / ``container_from_inspect``, then
``diagnose_containers`` and ``report.to_json``) against a directory holding every kind of file a source can be.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import (
    FakeEngine,
    FakeWorld,
    api_container,
    api_inspect,
    listening_socket,
    log_text,
    socktui_cli,
    until,
    validate_document,
)

from socktui.diagnose import diagnose_containers
from socktui.engine import container_from_inspect, container_from_list, merge_inspect
from socktui.model import CheckReport, EngineInfo
from socktui.report import to_json, to_text
from socktui.session import Options, make_session

LOCAL = EngineInfo(endpoint="unix:///var/run/docker.sock", local=True, version="27.0.0")
REMOTE = EngineInfo(endpoint="tcp://10.0.0.5:2376", local=False, version="27.0.0")
MISSING = object()  # a key left out of the payload altogether


# --------------------------------------------------------------------------- a directory of every kind of source


@pytest.fixture(scope="module")
def world_dir() -> Iterator[tuple[Path, list[str]]]:
    """Every kind of thing a source can be: live, stale, datagram, directories, file, FIFO, links, missing."""
    root = Path(tempfile.mkdtemp(prefix="st-fs-"))
    held: list[socket.socket] = []
    try:
        held.append(listening_socket(root / "live.sock"))
        held.append(listening_socket(root / "dgram.sock", socket.SOCK_DGRAM))
        listening_socket(root / "stale.sock").close()
        (root / "empty.sock").mkdir()
        (root / "shared").mkdir()
        held.append(listening_socket(root / "shared" / "a.sock"))
        listening_socket(root / "shared" / "b.sock").close()
        (root / "shared" / "evil.sock").symlink_to("/etc/passwd")
        (root / "file.sock").write_text("x")
        os.mkfifo(root / "fifo.sock")
        (root / "loop.sock").symlink_to(root / "loop.sock")
        (root / "private").mkdir(mode=0o700)
        held.append(listening_socket(root / "private" / "app.sock"))
        paths = [
            str(root / n)
            for n in (
                "live.sock",
                "dgram.sock",
                "stale.sock",
                "empty.sock",
                "shared",
                "file.sock",
                "fifo.sock",
                "loop.sock",
                "loop.sock/x.sock",
                "private/app.sock",
                "nothing.sock",
                "nothing/deeper.sock",
                "file.sock/under-a-file.sock",
            )
        ]
        yield root, paths + ["/dev/null", "", "/", "relative.sock", "/run/host-services/ssh-auth.sock"]
    finally:
        for s in held:
            s.close()
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- payload strategies


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field that may hold a value, be null, or be left out."""
    return st.one_of(strategy, st.none(), st.just(MISSING))


def build(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(fields).map(lambda d: {k: v for k, v in d.items() if v is not MISSING})


odd_text = st.text(max_size=40)
names = st.one_of(st.sampled_from(["web", "db_1", "a.b-c", "x" * 200, "app\nname", "snow☃", "/leading"]), odd_text)
destinations = st.one_of(
    st.sampled_from(
        ["/run/app.sock", "/var/run/docker.sock", "/tmp/.X11-unix", "/shared", "/data", "/", "run/rel.sock"]
    ),
    odd_text,
)
states = st.sampled_from(["running", "exited", "created", "paused", "restarting", "removing", "dead", "", "weird"])
labels = st.dictionaries(odd_text, odd_text, max_size=3)


def mount_payloads(sources: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return build(
        {
            "Type": maybe(st.sampled_from(["bind", "volume", "tmpfs", "npipe", "cluster", "image", "BIND"])),
            "Source": maybe(st.one_of(st.sampled_from(sources), odd_text)),
            "Destination": maybe(destinations),
            "RW": maybe(st.booleans()),
            "Mode": maybe(st.sampled_from(["", "z", "ro", "rw,Z"])),
            "Propagation": maybe(st.sampled_from(["", "rprivate", "rshared"])),
            "Name": maybe(odd_text),
        }
    )


def payloads(sources: list[str]) -> st.SearchStrategy[tuple[dict[str, Any], dict[str, Any] | None]]:
    """A /containers/json entry and (maybe) the inspect body for the same container."""
    mounts = st.lists(mount_payloads(sources), max_size=4)
    listed = build(
        {
            "Id": maybe(st.one_of(st.just("f" * 64), odd_text)),
            "Names": maybe(st.lists(names.map(lambda n: "/" + n), max_size=2)),
            "Image": maybe(odd_text),
            "State": maybe(states),
            "Labels": maybe(labels),
            "Mounts": maybe(mounts),
        }
    )
    inspected = build(
        {
            "Id": maybe(st.just("f" * 64)),
            "Name": maybe(names),
            "Image": maybe(odd_text),
            "State": maybe(
                build(
                    {
                        "Status": maybe(states),
                        "Pid": maybe(st.sampled_from([0, 1, os.getpid(), 2**22 + 12345])),
                        "StartedAt": maybe(
                            st.one_of(
                                st.sampled_from(
                                    ["0001-01-01T00:00:00Z", "2026-01-02T03:04:05.123456789Z", "2026-13-45", ""]
                                ),
                                odd_text,
                            )
                        ),
                    }
                )
            ),
            "HostConfig": maybe(
                build(
                    {
                        "Binds": maybe(
                            st.lists(
                                st.one_of(st.sampled_from(sources).map(lambda s: s + ":/run/app.sock"), odd_text),
                                max_size=3,
                            )
                        ),
                        "GroupAdd": maybe(
                            st.lists(st.sampled_from(["999", "docker", "nogroup", "", "x:y"]), max_size=2)
                        ),
                    }
                )
            ),
            "Config": maybe(
                build(
                    {
                        "Image": maybe(odd_text),
                        "User": maybe(st.sampled_from(["", "0", "1000", "1000:1000", "app", "nobody:nogroup", "x:"])),
                        "Labels": maybe(labels),
                    }
                )
            ),
            "Mounts": maybe(mounts),
        }
    )
    return st.tuples(listed, st.one_of(st.none(), inspected))


@st.composite
def engine_answers(draw: st.DrawFn, sources: list[str]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    return draw(st.lists(payloads(sources), max_size=4))


def run_check(answers: list[tuple[dict[str, Any], dict[str, Any] | None]], info: EngineInfo) -> tuple[str, str]:
    """What socktui check does with these engine answers: list, merge what was inspected, diagnose, render."""
    specs = []
    for listed_raw, inspected_raw in answers:
        listed = container_from_list(listed_raw)
        if inspected_raw is None:
            specs.append(listed)
            continue
        merged = merge_inspect(listed, container_from_inspect(inspected_raw))
        if merged is not None:
            specs.append(merged)
    report = CheckReport(info, tuple(diagnose_containers(info, specs)))
    return to_json(report, include_all=True), to_text(report, include_all=True)


# --------------------------------------------------------------------------- the properties


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_engine_answer_gives_one_valid_document(world_dir: tuple[Path, list[str]], data: st.DataObject) -> None:
    _, sources = world_dir
    answers = data.draw(engine_answers(sources))
    document, text = run_check(answers, LOCAL)
    doc = json.loads(document)
    assert validate_document(doc) == [], doc
    assert len(doc["containers"]) == len(answers)
    document.encode("ascii")  # every odd byte escaped: safe for any consumer
    text.encode("utf-8")  # lone surrogates escaped too
    assert all(len(line) <= 80 or " -> " in line or "  [" in line for line in text.splitlines())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_remote_engine_never_looks_at_local_paths(world_dir: tuple[Path, list[str]], data: st.DataObject) -> None:
    _, sources = world_dir
    answers = data.draw(engine_answers(sources))
    doc = json.loads(run_check(answers, REMOTE)[0])
    assert validate_document(doc) == []
    for c in doc["containers"]:
        for m in c["mounts"]:
            assert m["verdict"] in (None, "unknown")
            assert m["fixes"] == []


def test_text_output_fits_80_columns_with_long_paths_and_names(world_dir: tuple[Path, list[str]]) -> None:
    root, _ = world_dir
    deep = "/srv/" + "/".join(["component"] * 12) + "/app.sock"
    mounts = [{"Type": "bind", "Source": deep, "Destination": "/run/" + "d" * 90 + ".sock", "RW": True}]
    answers: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
        (api_container("a" * 64, "n" * 120, mounts), api_inspect("a" * 64, "n" * 120, mounts))
    ]
    _, text = run_check(answers, LOCAL)
    too_long = [line for line in text.splitlines() if len(line) > 80]
    assert too_long == []


def test_every_kind_of_source_gets_its_verdict(world_dir: tuple[Path, list[str]]) -> None:
    """The filesystem side of the contract, one source of each kind, seen by a "container" that is this process."""
    root, _ = world_dir
    expected = {
        "live.sock": "live",
        "dgram.sock": "live",
        "stale.sock": "stale",
        "empty.sock": "shadowed",
        "shared": "stale",  # a.sock live, b.sock stale, evil.sock a planted link: the worst (stale) wins
        "file.sock": "not-socket",
        "fifo.sock": "not-socket",
        # A symlinked source is judged by what Docker mounts, which only a real container shows:
        # tests/reliability/test_paths.py::test_a_symlinked_source_is_judged_by_what_docker_mounted.
        "loop.sock": "not-socket",
        "loop.sock/x.sock": "unknown",  # lstat says ELOOP
        "private/app.sock": "live",
        "nothing.sock": "missing",
        "nothing/deeper.sock": "missing",
        "file.sock/under-a-file.sock": "missing",  # ENOTDIR
    }
    mounts = [{"Type": "bind", "Source": str(root / n), "Destination": str(root / n), "RW": True} for n in expected]
    raw = api_inspect("e" * 64, "self", mounts, state="running")
    raw["State"]["Pid"] = os.getpid()  # our own root: every path is seen as it is on the host
    document, _ = run_check([(api_container("e" * 64, "self", mounts, state="running"), raw)], LOCAL)
    doc = json.loads(document)
    assert validate_document(doc) == []
    got = {m["source"].removeprefix(str(root) + "/"): m["verdict"] for m in doc["containers"][0]["mounts"]}
    assert got == expected
    shared = next(m for m in doc["containers"][0]["mounts"] if m["source"] == str(root / "shared"))
    assert [(s["name"], s["verdict"]) for s in shared["sockets"]] == [
        ("a.sock", "live"),
        ("b.sock", "stale"),
        ("evil.sock", "not-socket"),
    ]


# --------------------------------------------------------------------------- failures end in a sentence


def test_an_engine_sending_garbage_ends_in_a_sentence_not_a_traceback(d: Path) -> None:
    world = FakeWorld(containers={"message": "this is not a list"})
    with FakeEngine(d / "e.sock", world) as fake:
        for argv in (["check", "--json"], ["check"], ["fix", "web", "/run/app.sock"]):
            proc = socktui_cli(*argv, "-H", fake.url, timeout=30)
            assert proc.returncode == 2, (argv, proc.stderr)
            assert proc.stdout == "" or argv[0] == "fix", proc.stdout  # never half a document
            assert "Traceback" not in proc.stderr
            assert proc.stderr.startswith("socktui: unexpected AttributeError")
            assert "SOCKTUI_DEBUG=1" in proc.stderr
        debug = dict(os.environ, SOCKTUI_DEBUG="1")
        proc = subprocess.run(
            [sys.executable, "-m", "socktui.cli", "check", "-H", fake.url],
            capture_output=True,
            text=True,
            timeout=30,
            env=debug,
            check=False,
        )
        assert "Traceback" in proc.stderr  # the details are there when asked for


def test_a_closed_stdout_is_not_reported_as_a_bug(d: Path) -> None:
    (d / "x.sock").write_text("")
    mounts = [{"Type": "bind", "Source": str(d / "x.sock"), "Destination": "/run/x.sock", "RW": True}]
    world = FakeWorld(
        containers=[api_container("a" * 64, "web", mounts)], inspect={"a" * 64: api_inspect("a" * 64, "web", mounts)}
    )
    with FakeEngine(d / "e.sock", world) as fake:
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader has gone, like `| head -1` after its line
        try:
            proc = socktui_cli("check", "--json", "-H", fake.url, stdout=write_end, timeout=30)
        finally:
            os.close(write_end)
    assert "bug" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode != 2


def test_text_output_survives_a_stdout_that_cannot_encode_the_path(d: Path) -> None:
    (d / "snow☃.sock").write_text("")
    mounts = [{"Type": "bind", "Source": str(d / "snow☃.sock"), "Destination": "/run/x.sock", "RW": True}]
    world = FakeWorld(
        containers=[api_container("a" * 64, "web", mounts)], inspect={"a" * 64: api_inspect("a" * 64, "web", mounts)}
    )
    with FakeEngine(d / "e.sock", world) as fake:
        proc = socktui_cli("check", "-H", fake.url, env=dict(os.environ, PYTHONIOENCODING="ascii"), timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert "snow" in proc.stdout and "not-socket" in proc.stdout


async def test_the_tui_turns_an_unexpected_failure_into_a_sentence_and_keeps_running(d: Path) -> None:
    from socktui.ui.app import SocktuiApp
    from socktui.ui.screens import HelpScreen

    world = FakeWorld(containers={"message": "this is not a list"})
    with FakeEngine(d / "e.sock", world) as fake:
        app = SocktuiApp(make_session(Options(host=fake.url)), live=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: "failed" in log_text(app), "the failure in the log")
            text = log_text(app)
            assert "AttributeError" in text and "Traceback" not in text
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the app to keep answering keys")
            await pilot.press("escape")
            assert app.return_code is None
