"""Choosing the endpoint exactly as the docker CLI does, then as Podman's clients do (no daemon needed).

Every test runs against a temporary HOME (and so a temporary ``~/.docker``), with and without a config.json:
docker-py 7.2 only finds contexts next to a config.json and otherwise looks in ``./contexts``; socktui reads the
CLI's context store itself.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from socktui.engine import EndpointError, EngineError, parse_host, podman_socket_candidates, resolve_endpoint

REMOTE = "tcp://10.1.2.3:2376"
ROOTLESS = "unix:///run/user/1000/docker.sock"


def write_context(config_dir: Path, name: str, host: str, *, skip_tls_verify: bool = False) -> Path:
    """A context exactly as ``docker context create NAME --docker host=HOST`` stores it."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    doc = {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_tls_verify}}}
    (meta / "meta.json").write_text(json.dumps(doc))
    return config_dir / "contexts" / "tls" / digest / "docker"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME with ``.docker/`` holding contexts ``remote`` and ``rootless`` and *no* config.json."""
    home = tmp_path / "home"
    config = home / ".docker"
    config.mkdir(parents=True)
    write_context(config, "remote", REMOTE)
    write_context(config, "rootless", ROOTLESS)
    # Run from somewhere that has no ./contexts either, where docker-py would look.
    monkeypatch.chdir(tmp_path)
    return home


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(home), **extra}


def set_current_context(home: Path, name: str) -> None:
    (home / ".docker" / "config.json").write_text(json.dumps({"currentContext": name}))


NO_DOCKER = "/nonexistent/docker.sock"


# --------------------------------------------------------------------------- contexts, with and without config.json


@pytest.mark.parametrize("config_json", [False, True], ids=["no-config.json", "config.json"])
def test_a_context_is_found_with_or_without_a_config_json(home: Path, config_json: bool) -> None:
    if config_json:
        (home / ".docker" / "config.json").write_text("{}")
    ep = resolve_endpoint(context="remote", environ=env_for(home))
    assert (ep.url, ep.source, ep.context) == (REMOTE, "--context remote", "remote")
    assert not ep.local


def test_a_context_made_by_the_real_docker_cli_without_a_config_json(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    assert docker is not None, "the docker CLI is needed (Debian's docker.io, which .ci/run installs)"
    home = tmp_path / "cli-home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    made = subprocess.run(
        [docker, "context", "create", "made-by-cli", "--docker", "host=unix:///run/made-by-cli.sock"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert not (home / ".docker" / "config.json").exists(), "the CLI made a config.json: the case is not covered"
    ep = resolve_endpoint(context="made-by-cli", environ={"HOME": str(home)})
    assert (ep.url, ep.context) == ("unix:///run/made-by-cli.sock", "made-by-cli")


def test_docker_config_points_at_another_config_dir(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    write_context(other, "ci", "unix:///run/ci.sock")
    ep = resolve_endpoint(context="ci", environ=env_for(home, DOCKER_CONFIG=str(other)))
    assert ep.url == "unix:///run/ci.sock"
    with pytest.raises(EndpointError):
        resolve_endpoint(context="remote", environ=env_for(home, DOCKER_CONFIG=str(other)))


def test_context_tls_material_is_used(home: Path) -> None:
    tls_dir = write_context(home / ".docker", "secure", "tcp://10.9.9.9:2376")
    tls_dir.mkdir(parents=True)
    for name in ("ca", "cert", "key"):
        (tls_dir / f"{name}.pem").write_text("-----BEGIN-----\n")
    ep = resolve_endpoint(context="secure", environ=env_for(home))
    assert ep.tls is not None
    assert ep.tls.cert == (str(tls_dir / "cert.pem"), str(tls_dir / "key.pem"))
    assert (ep.tls.ca_cert, ep.tls.verify) == (str(tls_dir / "ca.pem"), True)
    assert resolve_endpoint(context="remote", environ=env_for(home)).tls is None


# --------------------------------------------------------------------------- precedence, as the CLI


def test_context_with_host_is_refused_like_the_cli(home: Path) -> None:
    with pytest.raises(EndpointError) as info:
        resolve_endpoint(host="unix:///flag.sock", context="remote", environ=env_for(home))
    assert "cannot be used together" in info.value.problem
    assert "--context" in str(info.value) and "--host" in str(info.value)
    assert "cannot reach" not in str(info.value)


def test_host_option_wins_over_environment_and_config(home: Path) -> None:
    set_current_context(home, "remote")
    env = env_for(home, DOCKER_HOST="unix:///env.sock", DOCKER_CONTEXT="remote")
    ep = resolve_endpoint(host="unix:///flag.sock", environ=env)
    assert (ep.url, ep.source, ep.context) == ("unix:///flag.sock", "--host", None)


def test_docker_host_wins_over_docker_context_and_config(home: Path) -> None:
    set_current_context(home, "remote")
    ep = resolve_endpoint(environ=env_for(home, DOCKER_HOST="unix:///env.sock", DOCKER_CONTEXT="remote"))
    assert (ep.url, ep.source) == ("unix:///env.sock", "DOCKER_HOST")


def test_empty_docker_host_is_ignored(home: Path) -> None:
    ep = resolve_endpoint(environ=env_for(home, DOCKER_HOST="", DOCKER_CONTEXT="remote"))
    assert (ep.source, ep.context) == ("DOCKER_CONTEXT=remote", "remote")


def test_docker_context_wins_over_the_current_context(home: Path) -> None:
    set_current_context(home, "rootless")
    ep = resolve_endpoint(environ=env_for(home, DOCKER_CONTEXT="remote"))
    assert (ep.url, ep.source) == (REMOTE, "DOCKER_CONTEXT=remote")


def test_current_context_from_config_wins_over_the_default(home: Path) -> None:
    set_current_context(home, "rootless")
    ep = resolve_endpoint(environ=env_for(home), docker_socket=NO_DOCKER)
    assert ep.source == f"currentContext in {home / '.docker' / 'config.json'}"
    assert (ep.url, ep.context) == (ROOTLESS, "rootless")
    assert ep.local


def test_a_current_context_that_does_not_exist_is_an_error_naming_it(home: Path) -> None:
    set_current_context(home, "ghost")
    with pytest.raises(EndpointError) as info:
        resolve_endpoint(environ=env_for(home))
    assert '"ghost"' in info.value.problem and "does not exist" in info.value.problem
    assert "config.json" in info.value.problem
    assert "docker context use" in info.value.advice


@pytest.mark.parametrize("how", ["option", "env"])
def test_an_unknown_context_is_an_error_naming_it(home: Path, how: str) -> None:
    with pytest.raises(EngineError) as info:
        if how == "option":
            resolve_endpoint(context="nope", environ=env_for(home))
        else:
            resolve_endpoint(environ=env_for(home, DOCKER_CONTEXT="nope"))
    assert '"nope"' in info.value.problem
    assert "docker context ls" in info.value.advice


def test_the_default_context_is_the_default_socket(home: Path, tmp_path: Path) -> None:
    docker_sock = tmp_path / "docker.sock"
    docker_sock.touch()
    set_current_context(home, "default")
    ep = resolve_endpoint(environ=env_for(home), docker_socket=str(docker_sock))
    assert (ep.url, ep.source) == (f"unix://{docker_sock}", "default socket")
    ep = resolve_endpoint(context="default", environ=env_for(home), docker_socket=str(docker_sock))
    assert (ep.url, ep.context) == (f"unix://{docker_sock}", "default")


def test_resolve_endpoint_reads_os_environ_when_not_given_one(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///from-os-environ.sock")
    assert resolve_endpoint().url == "unix:///from-os-environ.sock"


# --------------------------------------------------------------------------- Podman, when nothing names an endpoint


def test_docker_socket_wins_when_it_exists(home: Path, tmp_path: Path) -> None:
    docker_sock, podman_sock = tmp_path / "docker.sock", tmp_path / "podman.sock"
    docker_sock.touch()
    podman_sock.touch()
    ep = resolve_endpoint(
        environ=env_for(home, CONTAINER_HOST="unix:///ch.sock"),
        docker_socket=str(docker_sock),
        podman_sockets=[str(podman_sock)],
    )
    assert (ep.url, ep.source) == (f"unix://{docker_sock}", "default socket")


def test_container_host_when_the_docker_socket_is_absent(home: Path, tmp_path: Path) -> None:
    podman_sock = tmp_path / "podman.sock"
    podman_sock.touch()
    ep = resolve_endpoint(
        environ=env_for(home, CONTAINER_HOST="unix:///run/user/0/podman/podman.sock"),
        docker_socket=NO_DOCKER,
        podman_sockets=[str(podman_sock)],
    )
    assert ep.url == "unix:///run/user/0/podman/podman.sock"
    assert ep.source == f"CONTAINER_HOST, no Docker socket at {NO_DOCKER}"


def test_podmans_sockets_in_order_when_nothing_else_is_there(home: Path, tmp_path: Path) -> None:
    rootful, rootless = tmp_path / "rootful.sock", tmp_path / "rootless.sock"
    rootless.touch()
    ep = resolve_endpoint(environ=env_for(home), docker_socket=NO_DOCKER, podman_sockets=[str(rootful), str(rootless)])
    assert (ep.url, ep.source) == (f"unix://{rootless}", f"Podman's socket, no Docker socket at {NO_DOCKER}")
    rootful.touch()
    ep = resolve_endpoint(environ=env_for(home), docker_socket=NO_DOCKER, podman_sockets=[str(rootful), str(rootless)])
    assert ep.url == f"unix://{rootful}"


def test_podman_candidates_follow_xdg_runtime_dir(home: Path, tmp_path: Path) -> None:
    runtime = tmp_path / "run-user"
    (runtime / "podman").mkdir(parents=True)
    (runtime / "podman" / "podman.sock").touch()
    ep = resolve_endpoint(environ=env_for(home, XDG_RUNTIME_DIR=str(runtime)), docker_socket=NO_DOCKER)
    if Path("/run/podman/podman.sock").exists():  # a rootful Podman on this machine comes first, as for podman
        assert ep.url == "unix:///run/podman/podman.sock"
    else:
        assert ep.url == f"unix://{runtime}/podman/podman.sock"


def test_podmans_own_places_rootful_first_then_xdg_runtime_dir() -> None:
    """Where podman's clients look when nothing is given: these paths, in this order (the tests above pass theirs)."""
    assert podman_socket_candidates({}) == ["/run/podman/podman.sock"]
    assert podman_socket_candidates({"XDG_RUNTIME_DIR": "/run/user/1000"}) == [
        "/run/podman/podman.sock",
        "/run/user/1000/podman/podman.sock",
    ]


def test_nothing_anywhere_is_the_docker_default(home: Path) -> None:
    ep = resolve_endpoint(environ=env_for(home), docker_socket=NO_DOCKER, podman_sockets=[])
    assert (ep.url, ep.source) == (f"unix://{NO_DOCKER}", "default socket")


def test_an_explicit_docker_host_wins_over_podman(home: Path, tmp_path: Path) -> None:
    podman_sock = tmp_path / "podman.sock"
    podman_sock.touch()
    ep = resolve_endpoint(
        environ=env_for(home, DOCKER_HOST="unix:///d.sock"), docker_socket=NO_DOCKER, podman_sockets=[str(podman_sock)]
    )
    assert ep.url == "unix:///d.sock"


# --------------------------------------------------------------------------- -H as the CLI reads it


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("tcp://10.0.0.1", "tcp://10.0.0.1:2375"),
        ("tcp://10.0.0.1:2376", "tcp://10.0.0.1:2376"),
        ("tcp://[::1]", "tcp://[::1]:2375"),
        ("10.0.0.1:2380", "tcp://10.0.0.1:2380"),
        ("build-host", "tcp://build-host:2375"),
        ("unix:///run/docker.sock", "unix:///run/docker.sock"),
        ("unix://", "unix:///var/run/docker.sock"),
        ("ssh://me@build-host", "ssh://me@build-host"),
        ("ssh://me@build-host:2222", "ssh://me@build-host:2222"),
        ("  unix:///run/docker.sock  ", "unix:///run/docker.sock"),
    ],
)
def test_host_addresses_are_read_like_the_cli(given: str, url: str) -> None:
    assert parse_host(given, "-H") == url


@pytest.mark.parametrize(
    ("given", "words", "suggestion"),
    [
        ("tcp://10.0.0.1:2375/", "ends with a slash", "tcp://10.0.0.1:2375"),
        ("unix:///run/docker.sock/", "ends with a slash", "unix:///run/docker.sock"),
        ("tcp://10.0.0.1:2375/v1.41", "has a path", "tcp://10.0.0.1:2375"),
        ("/var/run/docker.sock", "is a path, not an engine address", "unix:///var/run/docker.sock"),
        ("tcp://h:notaport", "port that is not a number", "HOST:PORT"),
        ("tcp://h:99999", "port that is not a number", "HOST:PORT"),
        ("tcp://", "no host name", "tcp://HOST:2375"),
        ("unix://run/docker.sock", "relative socket path", "unix:///"),
        ("ftp://h", "not an engine address scheme", "unix://PATH"),
        ("npipe:////./pipe/docker_engine", "do not exist on Linux", "unix://PATH"),
        ("", "is empty", "unix:///var/run/docker.sock"),
    ],
)
def test_a_malformed_host_gets_a_sentence(given: str, words: str, suggestion: str) -> None:
    with pytest.raises(EndpointError) as info:
        parse_host(given, "--host")
    text = str(info.value)
    assert words in text and suggestion in text
    assert "cannot reach" not in text


def test_tcp_without_a_port_through_the_whole_resolution(home: Path) -> None:
    ep = resolve_endpoint(environ=env_for(home, DOCKER_HOST="tcp://127.0.0.1"))
    assert ep.url == "tcp://127.0.0.1:2375" and ep.local


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:2375/", "tcp://h:notaport", "/var/run/docker.sock", "ftp://x"])
def test_check_with_a_malformed_host_says_a_sentence_and_exits_2(host: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "socktui.cli", "check", "-H", host],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"socktui: --host {host!r}: ")
    assert "bug" not in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 2, proc.stderr


def test_check_with_context_and_host_is_refused_before_connecting(home: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "socktui.cli", "check", "--context", "remote", "-H", "unix:///x.sock"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    assert "cannot be used together" in proc.stderr and "bug" not in proc.stderr


# --------------------------------------------------------------------------- what /version alone tells


def test_version_names_the_product_rootless_and_desktop() -> None:
    from socktui.engine import Endpoint, info_from_version
    from socktui.model import Product

    ep = Endpoint(url="unix:///run/user/1000/docker.sock", source="DOCKER_HOST")
    rootless = {
        "Version": "24.0.7",
        "ApiVersion": "1.43",
        "Platform": {"Name": "Docker Engine - Community"},
        "Components": [{"Name": "Engine"}, {"Name": "containerd"}, {"Name": "rootlesskit"}],
    }
    info = info_from_version(rootless, ep)
    assert (info.product, info.rootless, info.desktop, info.api_version) == (Product.DOCKER, True, False, "1.43")
    assert (info.source, info.context) == ("DOCKER_HOST", None)
    desktop = {"Version": "27.3.1", "Platform": {"Name": "Docker Desktop 4.36.0 (175267)"}, "Components": []}
    assert info_from_version(desktop, ep).desktop
    podman = {"Version": "4.3.1", "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}
    assert info_from_version(podman, ep).product is Product.PODMAN
    assert info_from_version({"Version": "20.10.24", "Components": [{"Name": "Engine"}]}, ep).product is Product.DOCKER
    assert not info_from_version({"Components": "junk", "Platform": "junk"}, ep).rootless
