"""Which compose made a container, the commands for that compose, and what Podman changes in verdicts (pure logic).

The labels here are the ones each tool really writes (checked against docker-compose 1.29.2 and podman-compose 1.0.3
in tests/engine/test_compose_engine.py, and against docker compose v2's source).
"""

from __future__ import annotations

import shlex

import pytest
from builders import STARTED, bind, container, directory, local_engine, missing, observation, target

from socktui.compose import ComposeInfo, Flavour, bind_volume_yaml, compose_of
from socktui.model import ContainerSpec, Product, Verdict
from socktui.report import to_document, to_text
from socktui.sources.events import parse_engine_event
from socktui.verdict import decide

V1_LABELS = {
    "com.docker.compose.project": "shop",
    "com.docker.compose.service": "web",
    "com.docker.compose.version": "1.29.2",
    "com.docker.compose.project.working_dir": "/srv/shop",
    "com.docker.compose.project.config_files": "/srv/shop/docker-compose.yml,/srv/shop/docker-compose.prod.yml",
    "com.docker.compose.container-number": "1",
    "com.docker.compose.oneoff": "False",
}
V2_LABELS = {**V1_LABELS, "com.docker.compose.version": "2.24.5"}
PODMAN_LABELS = {
    "io.podman.compose.config-hash": "123",
    "io.podman.compose.project": "shop",
    "io.podman.compose.version": "0.0.1",
    "com.docker.compose.project": "shop",
    "com.docker.compose.project.working_dir": "/srv/shop",
    "com.docker.compose.project.config_files": "docker-compose.yml",
    "com.docker.compose.container-number": "1",
    "com.docker.compose.service": "web",
}


def labelled(labels: dict[str, str], **kw: object) -> ContainerSpec:
    return container(labels=tuple(sorted(labels.items())), **kw)  # type: ignore[arg-type]


def info(labels: dict[str, str]) -> ComposeInfo:
    found = compose_of(labelled(labels))
    assert found is not None
    return found


# --------------------------------------------------------------------------- reading the labels


def test_no_compose_labels_means_no_compose() -> None:
    assert compose_of(container()) is None
    assert compose_of(labelled({"com.docker.compose.service": "web"})) is None  # a service alone names no project


@pytest.mark.parametrize(
    ("labels", "flavour", "version"),
    [
        (V1_LABELS, Flavour.V1, "1.29.2"),
        (V2_LABELS, Flavour.V2, "2.24.5"),
        ({**V1_LABELS, "com.docker.compose.version": "v2.3.0"}, Flavour.V2, "v2.3.0"),
        ({**V1_LABELS, "com.docker.compose.version": ""}, Flavour.V2, None),
        (PODMAN_LABELS, Flavour.PODMAN, "0.0.1"),
    ],
)
def test_the_flavour_comes_from_the_labels(labels: dict[str, str], flavour: Flavour, version: str | None) -> None:
    found = info(labels)
    assert (found.project, found.service, found.flavour, found.version) == ("shop", "web", flavour, version)
    assert found.label == "shop/web"


def test_config_files_keep_their_order_and_relative_ones_are_made_absolute() -> None:
    assert info(V1_LABELS).config_files == ("/srv/shop/docker-compose.yml", "/srv/shop/docker-compose.prod.yml")
    assert info(PODMAN_LABELS).config_files == ("/srv/shop/docker-compose.yml",)
    no_files = {k: v for k, v in V2_LABELS.items() if k != "com.docker.compose.project.config_files"}
    assert info(no_files).config_files == ()


# --------------------------------------------------------------------------- the commands for that compose


def test_recreate_for_compose_v1_is_docker_compose_with_every_file_from_the_working_dir() -> None:
    assert info(V1_LABELS).recreate() == (
        "cd /srv/shop && docker-compose -p shop -f /srv/shop/docker-compose.yml -f /srv/shop/docker-compose.prod.yml "
        "up -d --force-recreate web"
    )


def test_recreate_for_compose_v2_is_docker_compose_plugin() -> None:
    assert (
        info(V2_LABELS).recreate().startswith("cd /srv/shop && docker compose -p shop -f /srv/shop/docker-compose.yml")
    )
    assert info(V2_LABELS).up().endswith(" up -d web")


def test_recreate_for_podman_compose() -> None:
    assert info(PODMAN_LABELS).recreate() == (
        "cd /srv/shop && podman-compose -p shop -f /srv/shop/docker-compose.yml up -d --force-recreate web"
    )


def test_odd_names_are_shell_quoted() -> None:
    odd = {**V2_LABELS, "com.docker.compose.project.working_dir": "/srv/my shop", "com.docker.compose.service": "a;b"}
    odd["com.docker.compose.project.config_files"] = "/srv/my shop/c.yml"
    line = info(odd).recreate()
    assert shlex.split(line) == [
        "cd",
        "/srv/my shop",
        "&&",
        "docker",
        "compose",
        "-p",
        "shop",
        "-f",
        "/srv/my shop/c.yml",
        "up",
        "-d",
        "--force-recreate",
        "a;b",
    ]


# --------------------------------------------------------------------------- YAML this compose accepts


def test_create_host_path_only_for_compose_v2() -> None:
    v2 = bind_volume_yaml(info(V2_LABELS), "/run/app.sock", "/run/app.sock")
    assert "create_host_path: false" in v2
    v1 = bind_volume_yaml(info(V1_LABELS), "/run/app.sock", "/run/app.sock")
    assert "create_host_path" not in v1.replace("rejects create_host_path", "") and "type: bind" in v1
    podman = bind_volume_yaml(info(PODMAN_LABELS), "/run/app.sock", "/run/app.sock")
    assert "create_host_path: false" not in podman and "podman-compose makes a missing source" in podman
    assert Flavour.V2.accepts_create_host_path and not Flavour.V1.accepts_create_host_path


def test_a_newline_in_a_working_dir_cannot_start_a_new_command_line() -> None:
    odd = {**V2_LABELS, "com.docker.compose.project.working_dir": "/srv/x\nrm -rf ~"}
    line = info(odd).recreate()
    assert "\n" not in line and line.startswith("cd $'/srv/x\\x0arm -rf ~' && docker compose")


# --------------------------------------------------------------------------- JSON and text


def test_json_and_text_carry_the_compose_project() -> None:
    from socktui.model import CheckReport, ContainerReport

    report = CheckReport(
        local_engine(), (ContainerReport(labelled(V1_LABELS)), ContainerReport(container(name="plain")))
    )
    doc = to_document(report)
    assert doc["containers"][0]["compose"] == {
        "project": "shop",
        "service": "web",
        "working_dir": "/srv/shop",
        "config_files": ["/srv/shop/docker-compose.yml", "/srv/shop/docker-compose.prod.yml"],
        "flavour": "docker-compose",
        "version": "1.29.2",
        "recreate": info(V1_LABELS).recreate(),
    }
    assert doc["containers"][1]["compose"] is None
    text = to_text(report)
    assert "  compose: shop/web (docker-compose in /srv/shop; /srv/shop/docker-compose.yml," in text
    assert all(len(line) <= 80 for line in text.splitlines())


def test_json_and_text_name_the_product_and_the_context() -> None:
    from socktui.model import CheckReport

    engine = local_engine(product=Product.PODMAN, version="4.3.1", context="pod", source="--context pod")
    doc = to_document(CheckReport(engine, ()))
    assert (doc["engine"]["product"], doc["engine"]["context"]) == ("podman", "pod")
    assert to_text(CheckReport(engine, ())).splitlines()[0] == (
        "engine: Podman 4.3.1 at unix:///var/run/docker.sock (local, context pod)"
    )
    found = local_engine(source="CONTAINER_HOST, no Docker socket at /var/run/docker.sock")
    first = to_text(CheckReport(found, ())).splitlines()[:2]
    assert " ".join(" ".join(first).split()).startswith(
        "engine: Docker 20.10.24 at unix:///var/run/docker.sock (local, via CONTAINER_HOST,"
    )
    assert all(len(line) <= 80 for line in first)


# --------------------------------------------------------------------------- Podman's rules in verdicts and events

PODMAN = local_engine(product=Product.PODMAN, version="4.3.1")


def test_podman_never_predicts_a_directory_for_a_missing_source() -> None:
    for state in ("created", "exited"):
        obs = observation(target(missing()), engine=PODMAN, ctr=container(state), mount=bind(from_binds=True))
        d = decide(obs)
        assert d is not None and d.verdict is Verdict.MISSING
        assert "create a directory" not in d.reason
        assert "Podman" in d.reason and "start" in d.reason
    docker_d = decide(observation(target(missing()), ctr=container("created"), mount=bind(from_binds=True)))
    assert docker_d is not None and "will make Docker create a directory" in docker_d.reason


def test_a_directory_podman_made_at_create_is_attributed_to_podman() -> None:
    created = STARTED - 3600  # made at create, long before the start
    obs = observation(
        target(directory(mtime=created + 0.2)),
        engine=PODMAN,
        ctr=container(created_at=created),
        mount=bind(from_binds=True),
    )
    d = decide(obs)
    assert d is not None and d.verdict is Verdict.SHADOWED
    assert "Podman created it" in d.reason and "Docker" not in d.reason.replace("Docker-compatible", "")
    assert d.shadow_created_at == created + 0.2


def test_a_directory_podman_compose_made_is_attributed_to_it() -> None:
    obs = observation(
        target(directory(mtime=STARTED - 0.5)),
        engine=PODMAN,
        ctr=labelled(PODMAN_LABELS, created_at=STARTED - 0.3),
        mount=bind(from_binds=True),
    )
    d = decide(obs)
    assert d is not None and "podman-compose created it" in d.reason and "mkdir" in d.reason


def test_podman_remove_event_is_followed_like_destroy() -> None:
    raw = {"Type": "container", "Action": "remove", "Actor": {"ID": "abc", "Attributes": {"name": "web"}}}
    event = parse_engine_event(raw)
    assert event is not None and event.action == "destroy" and event.container_id == "abc"


# --------------------------------------------------------------------------- snippets and recreate commands in fixes


def _advice(fix_id: str, spec: ContainerSpec, verdict: Verdict = Verdict.MISSING) -> str:
    from socktui.fixes import advice_for
    from socktui.model import ContainerReport, MountReport, Role

    mount = MountReport(bind(from_binds=True), Role.SOCKET, verdict, "", host=directory())
    return advice_for(fix_id, ContainerReport(spec), mount)


def test_recreate_advice_is_for_the_compose_and_the_engine_that_made_the_container() -> None:
    from socktui.fixes.base import recreate_advice

    assert recreate_advice(labelled(V1_LABELS)) == info(V1_LABELS).recreate()
    assert recreate_advice(labelled(PODMAN_LABELS, product=Product.PODMAN)).startswith("cd /srv/shop && podman-compose")
    assert recreate_advice(container()) == "docker rm web, then run it again with the same docker run command"
    assert recreate_advice(container(product=Product.PODMAN)).startswith("podman rm web, then run it again with")


def test_use_mount_flag_snippet_is_yaml_the_compose_accepts() -> None:
    v1 = _advice("use-mount-flag", labelled(V1_LABELS))
    assert "create_host_path: false" not in v1 and "# compose (docker-compose):" in v1
    assert info(V1_LABELS).up() in v1  # how to apply the edited files, with that compose
    v2 = _advice("use-mount-flag", labelled(V2_LABELS))
    assert "create_host_path: false" in v2 and info(V2_LABELS).up() in v2
    plain = _advice("use-mount-flag", container())
    assert "docker run --mount type=bind" in plain and "create_host_path: false" in plain


def test_snippets_use_podmans_commands_on_podman() -> None:
    pod = container(product=Product.PODMAN)
    assert "podman run --group-add 0" in _advice("group-add", pod, Verdict.DENIED)
    stopped = container("exited", product=Product.PODMAN)
    assert "podman start web" in _advice("start-server-first", stopped)
    # A running container is never told to start (its file mount pins the old inode): restart, or re-attach.
    running = _advice("start-server-first", pod)
    assert "podman restart web" in running and "podman start web" not in running
    assert "podman run -v /run/app:" in _advice("mount-parent-dir", pod, Verdict.DETACHED)
    composed = _advice("start-server-first", labelled(PODMAN_LABELS, product=Product.PODMAN, state="exited"))
    assert info(PODMAN_LABELS).up() in composed and "podman start" not in composed
    for fix_id, verdict in (("group-add", Verdict.DENIED), ("start-server-first", Verdict.MISSING)):
        assert "docker" not in _advice(fix_id, pod, verdict)


def test_containers_carry_the_product_of_their_engine() -> None:
    from socktui.engine import container_from_inspect, container_from_list

    raw = {"Id": "a" * 64, "Names": ["/x"], "State": "running"}
    assert container_from_list(raw, Product.PODMAN).product is Product.PODMAN
    assert container_from_list(raw).product is Product.DOCKER
    assert container_from_inspect({"Id": "a" * 64, "Name": "/x"}, Product.PODMAN).product is Product.PODMAN
