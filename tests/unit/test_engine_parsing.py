"""Turning API payloads into specs (no daemon needed). Choosing the endpoint is tested in test_endpoints.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from socktui.engine import (
    Endpoint,
    _parse_time,
    container_from_inspect,
    container_from_list,
    merge_inspect,
    mount_from_api,
)
from socktui.model import MountSpec


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("unix:///var/run/docker.sock", True),
        ("http+unix:///run/user/1000/docker.sock", True),
        ("/var/run/docker.sock", True),
        ("npipe:////./pipe/docker_engine", True),
        ("tcp://127.0.0.1:2375", True),
        ("tcp://localhost:2375", True),
        ("tcp://[::1]:2375", True),
        ("http://127.0.0.1:2375", True),
        ("tcp://10.0.0.5:2376", False),
        ("https://docker.example.com:2376", False),
        ("tcp://127.0.0.1.example.com:2375", False),
        ("ssh://me@build-host", False),
        ("ssh://me@localhost", False),  # over ssh, paths belong to the ssh target's filesystem
    ],
)
def test_endpoint_local(url: str, local: bool) -> None:
    assert Endpoint(url=url, source="test").local is local


# payload parsing ------------------------------------------------------------------------------------------------------

LIST_ITEM = {
    "Id": "f" * 64,
    "Names": ["/web"],
    "Image": "nginx:1.25",
    "State": "running",
    "Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": "web", "a": "1"},
    "Mounts": [
        {
            "Type": "bind",
            "Source": "/run/app/app.sock",
            "Destination": "/run/app.sock",
            "Mode": "",
            "RW": True,
            "Propagation": "rprivate",
        },
        {
            "Type": "volume",
            "Name": "data",
            "Source": "/var/lib/docker/volumes/data/_data",
            "Destination": "/data",
            "Driver": "local",
            "Mode": "z",
            "RW": False,
            "Propagation": "",
        },
    ],
}


def test_container_from_list() -> None:
    spec = container_from_list(LIST_ITEM)
    assert spec.id == "f" * 64
    assert spec.short_id == "f" * 12
    assert spec.name == "web"
    assert spec.state == "running" and spec.running
    assert spec.image == "nginx:1.25"
    assert spec.labels == (("a", "1"), ("com.docker.compose.project", "shop"), ("com.docker.compose.service", "web"))
    assert spec.compose == "shop/web"
    assert spec.inspected is False
    assert spec.pid is None  # the list has no Pid
    assert spec.mounts == (
        MountSpec("bind", "/run/app/app.sock", "/run/app.sock", rw=True, propagation="rprivate", from_binds=None),
        MountSpec("volume", "/var/lib/docker/volumes/data/_data", "/data", rw=False, mode="z", name="data"),
    )


def test_container_from_list_with_sparse_payload() -> None:
    spec = container_from_list({"Id": "abcdef0123456789", "Names": None, "Labels": None, "Mounts": None})
    assert spec.name == "abcdef012345"
    assert spec.state == "unknown"
    assert spec.mounts == () and spec.labels == ()


def inspect_payload(**over: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "Id": "e" * 64,
        "Name": "/api",
        "Image": "sha256:" + "1" * 64,
        "State": {
            "Status": "running",
            "Running": True,
            "Pid": 4321,
            "StartedAt": "2024-05-01T12:34:56.123456789Z",
            "FinishedAt": "0001-01-01T00:00:00Z",
        },
        "Config": {"Image": "api:latest", "User": "app:docker", "Labels": {"team": "core"}},
        "HostConfig": {
            "Binds": ["/run/app/app.sock:/run/app.sock", "/srv/conf:/etc/conf/:ro"],
            "GroupAdd": ["docker", 4242],
        },
        "Mounts": [
            {"Type": "bind", "Source": "/run/app/app.sock", "Destination": "/run/app.sock", "RW": True},
            {"Type": "bind", "Source": "/run/db", "Destination": "/run/db", "RW": True},
            {"Type": "bind", "Source": "/srv/conf", "Destination": "/etc/conf", "RW": False, "Mode": "ro"},
        ],
    }
    payload.update(over)
    return payload


def test_container_from_inspect() -> None:
    spec = container_from_inspect(inspect_payload())
    assert spec.name == "api"
    assert spec.state == "running"
    assert spec.pid == 4321
    assert spec.image == "api:latest"
    assert spec.user == "app:docker"
    assert spec.group_add == ("docker", "4242")
    assert spec.labels == (("team", "core"),)
    assert spec.inspected is True
    expected = datetime(2024, 5, 1, 12, 34, 56, 123456, tzinfo=UTC).timestamp()
    assert spec.started_at == pytest.approx(expected, abs=1e-6)


def test_binds_tell_v_mounts_from_mount_flag_mounts() -> None:
    by_dest = {m.destination: m for m in container_from_inspect(inspect_payload()).mounts}
    assert by_dest["/run/app.sock"].from_binds is True
    assert by_dest["/etc/conf"].from_binds is True  # trailing slash in the bind is normalised
    assert by_dest["/run/db"].from_binds is False  # --mount: listed in HostConfig.Mounts, not Binds


def test_no_binds_at_all_means_every_mount_came_from_mount_flags() -> None:
    spec = container_from_inspect(inspect_payload(HostConfig={"Binds": None, "Mounts": [{"Type": "bind"}]}))
    assert all(m.from_binds is False for m in spec.mounts)


def test_mount_from_api_without_binds_leaves_from_binds_unknown() -> None:
    m = mount_from_api({"Source": "/a", "Destination": "/b"})
    assert m.from_binds is None
    assert m.type == "bind"
    assert m.rw is True
    assert mount_from_api({"Source": "/a", "Destination": "/b"}, ["/x:/b:rw,z"]).from_binds is True
    assert mount_from_api({"Source": "/a", "Destination": "/b"}, ["/x:/bb"]).from_binds is False


def test_mount_order_is_irrelevant() -> None:
    payload = inspect_payload()
    baseline = set(container_from_inspect(payload).mounts)
    rng = random.Random(7)
    for _ in range(6):
        mounts = list(payload["Mounts"])
        binds = list(payload["HostConfig"]["Binds"])
        rng.shuffle(mounts)
        rng.shuffle(binds)
        shuffled = inspect_payload(Mounts=mounts, HostConfig={"Binds": binds, "GroupAdd": []})
        assert set(container_from_inspect(shuffled).mounts) == baseline


def test_a_stopped_container_has_no_pid() -> None:
    state = {"Status": "exited", "Pid": 0, "StartedAt": "2024-05-01T12:34:56Z"}
    spec = container_from_inspect(inspect_payload(State=state))
    assert spec.pid is None
    assert not spec.running


def test_a_created_container_has_the_zero_start_time() -> None:
    state = {"Status": "created", "Pid": 0, "StartedAt": "0001-01-01T00:00:00Z"}
    assert container_from_inspect(inspect_payload(State=state)).started_at is None


def test_merge_inspect_keeps_the_listed_image_name() -> None:
    listed = container_from_list({**LIST_ITEM, "Id": "e" * 64})
    merged = merge_inspect(listed, container_from_inspect(inspect_payload()))
    assert merged is not None
    assert merged.image == "nginx:1.25"
    assert merged.pid == 4321
    assert merge_inspect(listed, None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T12:34:56.123456789Z", datetime(2024, 5, 1, 12, 34, 56, 123456, tzinfo=UTC)),
        ("2024-05-01T12:34:56Z", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
        ("2024-05-01T12:34:56.5Z", datetime(2024, 5, 1, 12, 34, 56, 500000, tzinfo=UTC)),
        ("2024-05-01T12:34:56.05Z", datetime(2024, 5, 1, 12, 34, 56, 50000, tzinfo=UTC)),
    ],
)
def test_parse_time(value: str, expected: datetime) -> None:
    assert _parse_time(value) == pytest.approx(expected.timestamp(), abs=1e-6)


@pytest.mark.parametrize("value", [None, "", "0001-01-01T00:00:00Z", "not a time", "2024-13-45T99:99:99Z"])
def test_parse_time_of_zero_or_junk_is_none(value: str | None) -> None:
    assert _parse_time(value) is None


def test_a_nameless_container_whose_id_starts_with_a_slash_gets_no_leading_slash() -> None:
    # Found by hypothesis: the short id stands in for a missing name, and must follow the same rule as names.
    assert container_from_list({"Id": "/", "Names": None}).name == ""
    assert container_from_list({"Id": "//abc"}).name == "abc"
