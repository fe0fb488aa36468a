"""The JSON contract of ``socktui check --json`` and the 80-column text form, on hand-built reports."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from socktui.fixes import REMOVE_STALE_SOCKET, START_SERVER_FIRST
from socktui.model import (
    CheckReport,
    ContainerReport,
    ContainerSpec,
    EngineInfo,
    Listener,
    MountReport,
    MountSpec,
    Role,
    SocketReport,
    Verdict,
)
from socktui.report import SCHEMA, printable, to_document, to_json, to_text

ENGINE = EngineInfo(endpoint="unix:///var/run/docker.sock", local=True, version="20.10.24")


def spec(name: str = "web", state: str = "running") -> ContainerSpec:
    return ContainerSpec(id=name * 3 + "0" * 40, name=name, state=state, image="busybox:latest")


def live_mount(source: str = "/run/app/app.sock", destination: str = "/run/app.sock") -> MountReport:
    return MountReport(
        mount=MountSpec("bind", source, destination),
        role=Role.SOCKET,
        verdict=Verdict.LIVE,
        reason="accepts connections (0.05 ms); pid 812 server listens; web sees the same inode 4242",
        listener=Listener(pid=812, command="/usr/bin/server --flag", container=None),
        # A stray socket list on a file mount must not leak into the document.
        sockets=(SocketReport("x", "/x", "/x", Verdict.LIVE, "stray"),),
    )


def stale_dir_mount() -> MountReport:
    return MountReport(
        mount=MountSpec("bind", "/run/app", "/run/app", rw=False),
        role=Role.SOCKET_DIR,
        verdict=Verdict.STALE,
        reason="1 of 2 sockets inside are not live; b.sock: a socket file nobody listens on",
        sockets=(
            SocketReport("a.sock", "/run/app/a.sock", "/run/app/a.sock", Verdict.LIVE, "accepts connections"),
            SocketReport("b.sock", "/run/app/b.sock", "/run/app/b.sock", Verdict.STALE, "nobody listens"),
        ),
        fixes=(REMOVE_STALE_SOCKET, START_SERVER_FIRST),
    )


def other_mount() -> MountReport:
    return MountReport(
        mount=MountSpec("volume", "/var/lib/docker/volumes/d/_data", "/data"), role=Role.OTHER, verdict=None, reason=""
    )


def sample_report() -> CheckReport:
    return CheckReport(
        engine=ENGINE,
        containers=(
            ContainerReport(spec("web"), mounts=(live_mount(), other_mount())),
            ContainerReport(spec("db", "exited"), mounts=(stale_dir_mount(),)),
            ContainerReport(spec("plain"), mounts=(other_mount(),)),
        ),
        checked_at=1_700_000_000.0,
    )


TOP_KEYS = {"schema", "engine", "containers"}
ENGINE_KEYS = {"endpoint": str, "local": bool, "version": str, "product": str, "context": (str, type(None))}
CONTAINER_KEYS = {"id": str, "name": str, "state": str, "image": str, "compose": (dict, type(None)), "mounts": list}
MOUNT_KEYS = {
    "type": str,
    "source": str,
    "destination": str,
    "rw": bool,
    "role": str,
    "verdict": (str, type(None)),
    "reason": str,
    "listener": (dict, type(None)),
    "sockets": list,
    "fixes": list,
}
LISTENER_KEYS = {"pid": int, "command": str, "container": (str, type(None))}
SOCKET_KEYS = {"name": str, "host_path": str, "container_path": str, "verdict": str, "reason": str}
FIX_KEYS = {"id": str, "title": str, "destructive": bool}


def check_shape(obj: dict[str, Any], keys: dict[str, Any]) -> None:
    assert set(obj) == set(keys)
    for key, kind in keys.items():
        assert isinstance(obj[key], kind), (key, obj[key])


def test_document_shape_matches_the_contract() -> None:
    doc = to_document(sample_report(), include_all=True)
    assert set(doc) == TOP_KEYS
    assert doc["schema"] == SCHEMA == 1
    check_shape(doc["engine"], ENGINE_KEYS)
    assert doc["engine"] == {
        "endpoint": "unix:///var/run/docker.sock",
        "local": True,
        "version": "20.10.24",
        "product": "docker",
        "context": None,
    }
    assert [c["name"] for c in doc["containers"]] == ["web", "db", "plain"]
    for c in doc["containers"]:
        check_shape(c, CONTAINER_KEYS)
        for m in c["mounts"]:
            check_shape(m, MOUNT_KEYS)
            assert m["role"] in {r.value for r in Role}
            assert m["verdict"] is None or m["verdict"] in {v.value for v in Verdict}
            if m["listener"] is not None:
                check_shape(m["listener"], LISTENER_KEYS)
            for s in m["sockets"]:
                check_shape(s, SOCKET_KEYS)
            for f in m["fixes"]:
                check_shape(f, FIX_KEYS)


def test_document_values_for_each_mount() -> None:
    doc = to_document(sample_report(), include_all=True)
    web, db, plain = doc["containers"]
    assert web["state"] == "running" and web["image"] == "busybox:latest"
    live = web["mounts"][0]
    assert live["verdict"] == "live"
    assert live["listener"] == {"pid": 812, "command": "/usr/bin/server --flag", "container": None}
    assert live["sockets"] == []  # only a socket-dir lists sockets
    assert live["fixes"] == []
    stale = db["mounts"][0]
    assert stale["role"] == "socket-dir"
    assert stale["rw"] is False
    assert [(s["name"], s["verdict"]) for s in stale["sockets"]] == [("a.sock", "live"), ("b.sock", "stale")]
    assert stale["fixes"][0] == {
        "id": "remove-stale-socket",
        "title": "Remove the socket file nobody listens on",
        "destructive": True,
    }
    assert plain["mounts"] == [{**plain["mounts"][0], "role": "other", "verdict": None, "reason": ""}]


def test_role_other_mounts_appear_only_with_include_all() -> None:
    doc = to_document(sample_report())
    roles = [m["role"] for c in doc["containers"] for m in c["mounts"]]
    assert "other" not in roles
    assert roles == ["socket", "socket-dir"]
    assert doc["containers"][2]["mounts"] == []  # the container stays, with nothing to show
    with_all = to_document(sample_report(), include_all=True)
    assert [m["role"] for m in with_all["containers"][0]["mounts"]] == ["socket", "other"]


def test_to_json_is_the_document() -> None:
    report = sample_report()
    assert json.loads(to_json(report)) == to_document(report)
    assert json.loads(to_json(report, include_all=True)) == to_document(report, include_all=True)
    compact = to_json(report, pretty=False)
    assert json.loads(compact) == to_document(report)
    assert "\n" not in compact and compact.startswith('{"schema":1,"engine":{')


@pytest.mark.parametrize(
    "source",
    [
        "/run/two\nlines.sock",
        "/run/tab\there.sock",
        "/run/☃ snow.sock",
        os.fsdecode(b"/run/\xff\xfe-latin1.sock"),  # lone surrogates from non-UTF-8 bytes
        '/run/quote"back\\slash.sock',
    ],
)
@pytest.mark.parametrize("pretty", [True, False], ids=["pretty", "compact"])
def test_json_round_trips_odd_paths(source: str, pretty: bool) -> None:
    mount = MountReport(MountSpec("bind", source, source), Role.SOCKET, Verdict.STALE, f"nothing listens at {source}")
    report = CheckReport(ENGINE, (ContainerReport(spec(), (mount,)),))
    text = to_json(report, pretty=pretty)
    text.encode("ascii")  # ensure_ascii: valid whatever the path held
    assert "\n" not in text or pretty  # a raw newline in a path could never split the compact document
    back = json.loads(text)["containers"][0]["mounts"][0]
    assert back["source"] == source
    assert back["destination"] == source
    assert back["reason"] == f"nothing listens at {source}"
    assert os.fsencode(back["source"]) == os.fsencode(source)


def test_text_summary_lines() -> None:
    text = to_text(sample_report())
    lines = text.splitlines()
    assert lines[0] == "engine: Docker 20.10.24 at unix:///var/run/docker.sock (local)"
    assert lines[1] == "3 containers, 2 socket mounts, 1 problem"
    assert "web  [running]  live" in lines
    assert "db  [exited]  stale" in lines
    assert "plain  [running]  -" in lines
    assert "  (no socket mounts)" in lines
    assert "  live       /run/app/app.sock -> /run/app.sock" in lines
    assert "    stale      b.sock" in lines
    assert "             fixes: remove-stale-socket, start-server-first" in lines
    assert text.endswith("\n")


def test_text_shows_reasons_of_unhealthy_sockets_only() -> None:
    text = to_text(sample_report())
    assert "nobody listens" in text
    assert "               accepts connections" not in text  # a live socket inside gets no reason line


def test_text_include_all_shows_other_mounts_by_role() -> None:
    text = to_text(sample_report(), include_all=True)
    assert "  other      /var/lib/docker/volumes/d/_data -> /data" in text.splitlines()


def test_text_lines_fit_80_columns() -> None:
    long_reason = (
        "a directory stands where the socket should be: Docker created it (empty, root-owned) at 2024-05-01 "
        "12:34:56 when web started with a -v mount of a missing path; the server's bind() now fails with EADDRINUSE"
    )
    shadow = MountReport(
        MountSpec("bind", "/run/app/app.sock", "/run/app.sock"),
        Role.SOCKET,
        Verdict.SHADOWED,
        long_reason + " /a/very/long/path/without/any/spaces/at/all/that/goes/on/and/on/and/on/and/on/and/on.sock",
        fixes=(REMOVE_STALE_SOCKET, START_SERVER_FIRST),
    )
    dir_mount = stale_dir_mount()
    dir_mount = MountReport(
        dir_mount.mount,
        dir_mount.role,
        dir_mount.verdict,
        long_reason,
        sockets=(SocketReport("b.sock", "/run/app/b.sock", "/run/app/b.sock", Verdict.STALE, long_reason),),
    )
    report = CheckReport(ENGINE, (ContainerReport(spec(), (shadow, dir_mount, other_mount())),))
    for include_all in (False, True):
        for line in to_text(report, include_all=include_all).splitlines():
            assert len(line) <= 80, line


def test_text_escapes_newlines_and_control_characters() -> None:
    source = "/run/evil\nFAKE  live       /run/ok.sock"
    mount = MountReport(MountSpec("bind", source, "/run/x.sock"), Role.SOCKET, Verdict.STALE, "reason\nwith\rbreaks")
    name = "web\x1b[31m"
    report = CheckReport(ENGINE, (ContainerReport(ContainerSpec("id", name, "running", "img"), (mount,)),))
    text = to_text(report)
    lines = text.splitlines()
    assert not any(line.startswith("FAKE") for line in lines)
    assert "/run/evil\\nFAKE" in text
    assert "reason\\nwith\\rbreaks" in text
    assert "\x1b" not in text
    assert "web\\x1b[31m" in text


def test_text_of_lone_surrogates_can_be_written_as_utf8() -> None:
    source = os.fsdecode(b"/run/\xff.sock")
    mount = MountReport(MountSpec("bind", source, source), Role.SOCKET, Verdict.MISSING, f"nothing at {source}")
    text = to_text(CheckReport(ENGINE, (ContainerReport(spec(), (mount,)),)))
    text.encode("utf-8")  # would raise on an unescaped surrogate
    assert "\\udcff" in text


def test_printable_keeps_unicode_and_escapes_controls() -> None:
    assert printable("☃ café") == "☃ café"
    assert printable("a\nb\tc\0") == "a\\nb\\tc\\x00"


def test_remote_engine_header() -> None:
    report = CheckReport(EngineInfo(endpoint="ssh://me@build", local=False), ())
    assert to_text(report).splitlines()[:2] == [
        "engine: Docker ? at ssh://me@build (remote)",
        "0 containers, 0 socket mounts, 0 problems",
    ]
