"""Which mounts matter: socket names, --expect, socket directories, and robustness on arbitrary text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socktui.model import Kind, MountSpec, Role
from socktui.roles import expected_in, looks_like_socket, role_of


def bind(source: str, destination: str | None = None, type: str = "bind") -> MountSpec:
    return MountSpec(type=type, source=source, destination=destination if destination is not None else source)


# looks_like_socket ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/run/podman/podman.sock",
        "/run/user/1000/podman/podman.sock",
        "/srv/app/app.sock",
        "/run/systemd/journal/stdout.socket",
        "/var/run/postgresql/.s.PGSQL.5432",
        "/var/run/mysqld/mysqld.sock",
        "/tmp/.X11-unix/X0",
        "/tmp/.X11-unix/X12",
        "/tmp/ssh-XXXXabcd/agent.4242",
        "/run/host-services/ssh-auth.sock",
        "/run/user/1000/gnupg/S.gpg-agent.ssh",
        "/run/user/1000/gnupg/S.gpg-agent",
        "/home/me/.ssh/agent.1234",
        "/run/ssh-agent",
        "/run/app.sock/",  # a trailing slash does not hide the name
        "app.sock",
    ],
)
def test_socket_names_look_like_sockets(path: str) -> None:
    assert looks_like_socket(path) is True


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "/data",
        "/etc/hosts",
        "/srv/sock.txt",
        "/srv/app.sock.bak",
        "/run/sockets",
        "/tmp/.X11-unix",
        "/tmp/.X11-unix/Xauthority",
        "/home/me/agent.txt",
        "/var/lib/docker/volumes/db/_data",
        "/run/Docker.SOCK",  # names are case-sensitive on Linux
    ],
)
def test_other_names_do_not_look_like_sockets(path: str) -> None:
    assert looks_like_socket(path) is False


# role_of --------------------------------------------------------------------------------------------------------------


def test_a_socket_on_the_host_is_a_socket_whatever_its_name() -> None:
    assert role_of(bind("/srv/weird-name", "/in/weird"), Kind.SOCKET) is Role.SOCKET


@pytest.mark.parametrize("kind", [Kind.MISSING, None, Kind.DIRECTORY, Kind.FILE, Kind.ERROR])
def test_a_socket_name_keeps_the_socket_role_whatever_the_host_has(kind: Kind | None) -> None:
    # A missing path, a shadow directory or a plain file where docker.sock should be must still be judged.
    assert role_of(bind("/var/run/docker.sock"), kind) is Role.SOCKET


def test_the_container_side_name_alone_is_enough() -> None:
    assert role_of(bind("/srv/thing", "/var/run/docker.sock"), Kind.MISSING) is Role.SOCKET


@pytest.mark.parametrize("path", ["/data", "/etc/hosts", "/srv/sock.txt"])
def test_plain_paths_are_other(path: str) -> None:
    assert role_of(bind(path), Kind.FILE) is Role.OTHER
    assert role_of(bind(path), Kind.DIRECTORY) is Role.OTHER
    assert role_of(bind(path), None) is Role.OTHER


def test_a_directory_with_sockets_inside_is_a_socket_dir() -> None:
    assert role_of(bind("/run/app", "/run/app"), Kind.DIRECTORY, ["api.sock"]) is Role.SOCKET_DIR


def test_a_directory_with_an_empty_socket_list_is_other() -> None:
    assert role_of(bind("/run/app", "/run/app"), Kind.DIRECTORY, []) is Role.OTHER


def test_the_x11_socket_directory_is_a_socket_dir_even_when_empty() -> None:
    assert role_of(bind("/tmp/.X11-unix", "/tmp/.X11-unix/"), Kind.DIRECTORY) is Role.SOCKET_DIR


def test_a_volume_with_sockets_inside_is_a_socket_dir() -> None:
    volume = MountSpec(type="volume", source="/var/lib/docker/volumes/run/_data", destination="/run/app", name="run")
    assert role_of(volume, Kind.DIRECTORY, ["app.sock"]) is Role.SOCKET_DIR


def test_a_volume_without_sockets_is_other() -> None:
    volume = MountSpec(type="volume", source="/var/lib/docker/volumes/db/_data", destination="/var/lib/db", name="db")
    assert role_of(volume, Kind.DIRECTORY, []) is Role.OTHER


def test_a_volume_named_like_a_socket_is_not_a_file_mount() -> None:
    volume = MountSpec(type="volume", source="/var/lib/docker/volumes/x/_data", destination="/run/app.sock")
    assert role_of(volume, Kind.DIRECTORY, []) is Role.OTHER


@pytest.mark.parametrize("mount_type", ["tmpfs", "npipe", "cluster"])
def test_tmpfs_and_other_types_are_other_even_with_socket_names(mount_type: str) -> None:
    mount = MountSpec(type=mount_type, source="", destination="/run/docker.sock")
    assert role_of(mount, None, ["x.sock"], ["/run/docker.sock"]) is Role.OTHER


def test_expect_makes_any_path_a_socket() -> None:
    mount = bind("/srv/plain", "/in/plain")
    assert role_of(mount, Kind.FILE) is Role.OTHER
    assert role_of(mount, Kind.FILE, expected=["/srv/plain"]) is Role.SOCKET
    assert role_of(mount, Kind.MISSING, expected=["/in/plain/"]) is Role.SOCKET  # container side, trailing slash


def test_expect_a_path_inside_a_directory_makes_it_a_socket_dir() -> None:
    mount = bind("/srv/run", "/run/svc")
    assert role_of(mount, Kind.DIRECTORY) is Role.OTHER
    assert role_of(mount, Kind.DIRECTORY, expected=["/srv/run/api"]) is Role.SOCKET_DIR
    assert role_of(mount, Kind.DIRECTORY, expected=["/run/svc/api"]) is Role.SOCKET_DIR
    # Deeper than one level does not count.
    assert role_of(mount, Kind.DIRECTORY, expected=["/srv/run/deeper/api"]) is Role.OTHER


def test_expected_in_lists_names_directly_inside_a_directory() -> None:
    expected = ["/run/svc/api", "/run/svc/admin.sock", "/run/svc/sub/deep.sock", "/other/x.sock", "/run/svc/"]
    assert expected_in("/run/svc", expected) == ("api", "admin.sock")
    assert expected_in("/run/svc/", expected) == ("api", "admin.sock")
    assert expected_in("/", ["/docker.sock"]) == ("docker.sock",)
    assert expected_in("/run/svc", []) == ()


# hypothesis: never raise, whatever the text ---------------------------------------------------------------------------

odd_text = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(["/", ".", "\n", "\0", "*", "[", "]", "?", "\\", "é", "☃", "\udcff", "s"])),
    st.text(min_size=4000, max_size=6000),
)


@given(odd_text)
def test_looks_like_socket_never_raises(path: str) -> None:
    looks_like_socket(path)  # what can fail here is a crash on odd input (the result is a bool by its type)


@given(st.text(min_size=1))
def test_adding_sock_to_any_non_empty_name_makes_it_look_like_a_socket(name: str) -> None:
    assert looks_like_socket(name + ".sock")


@given(
    mount_type=st.sampled_from(["bind", "volume", "tmpfs", "npipe", "", "weird\n"]),
    source=odd_text,
    destination=odd_text,
    kind=st.one_of(st.none(), st.sampled_from(list(Kind))),
    inside=st.lists(odd_text, max_size=3),
    expected=st.lists(odd_text, max_size=3),
)
def test_role_of_never_raises(
    mount_type: str, source: str, destination: str, kind: Kind | None, inside: list[str], expected: list[str]
) -> None:
    mount = MountSpec(type=mount_type, source=source, destination=destination)
    assert role_of(mount, kind, inside, expected) in set(Role)
