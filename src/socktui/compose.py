"""Which compose made a container, and the exact commands and YAML for *that* compose.

Compose tools label what they create: ``com.docker.compose.project``, ``.service``, ``.project.working_dir``,
``.project.config_files`` (comma-separated) and ``.version``; podman-compose also sets ``io.podman.compose.*``.
The three tools differ where it matters for a fix:

- ``docker-compose`` 1.x (Debian 12 ships 1.29.2 and no ``docker compose`` plugin) rejects the long-syntax
  ``bind: {create_host_path: false}``;
- ``docker compose`` 2.x accepts it;
- ``podman-compose`` creates every missing bind source itself with ``mkdir`` before it runs the container, whatever
  the YAML says.

A recreate command names the compose that made the container, its project (``-p``) and its files (``-f``, in order),
and runs from the project's working directory, where relative paths in those files are resolved.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from enum import StrEnum

from .model import ContainerSpec

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
WORKING_DIR = "com.docker.compose.project.working_dir"
CONFIG_FILES = "com.docker.compose.project.config_files"
VERSION = "com.docker.compose.version"
PODMAN_PROJECT = "io.podman.compose.project"
PODMAN_VERSION = "io.podman.compose.version"


class Flavour(StrEnum):
    """The compose program that made a container, spelled as it is typed."""

    V1 = "docker-compose"
    V2 = "docker compose"
    PODMAN = "podman-compose"

    @property
    def accepts_create_host_path(self) -> bool:
        """Only compose v2 knows ``bind: {create_host_path: false}``; v1 rejects the file, podman-compose ignores it."""
        return self is Flavour.V2

    @property
    def creates_missing_sources(self) -> str:
        """Who makes the directory when a bind source is missing, in words."""
        if self is Flavour.PODMAN:
            return "podman-compose creates it with mkdir before it runs the container"
        return "the engine creates it when the container starts (short syntax, or create_host_path: true)"


@dataclass(frozen=True)
class ComposeInfo:
    """What a container's labels say about the compose project it belongs to."""

    project: str
    service: str | None
    working_dir: str | None
    config_files: tuple[str, ...]
    flavour: Flavour
    version: str | None  # the compose tool's version as it labelled it (podman-compose 1.0 writes 0.0.1)

    def command(self, *args: str) -> str:
        """``cd WORKING_DIR && COMPOSE -p PROJECT -f FILE... ARGS``, every part one inert shell word."""
        from .fixes.base import shell_word  # at call time: the fixes package imports this module

        words = ["-p", self.project]
        for f in self.config_files:
            words += ["-f", f]
        line = " ".join([self.flavour.value, *(shell_word(w) for w in [*words, *args])])
        return f"cd {shell_word(self.working_dir)} && {line}" if self.working_dir else line

    def recreate(self) -> str:
        """Recreate this service's container (a new writable layer, same definition)."""
        return self.command("up", "-d", "--force-recreate", *([self.service] if self.service else []))

    def up(self) -> str:
        """Create and start this service as its files define it (after the files were edited)."""
        return self.command("up", "-d", *([self.service] if self.service else []))

    @property
    def label(self) -> str:
        """``project/service`` as users see it in ``docker compose ps``."""
        return f"{self.project}/{self.service}" if self.service else self.project


def _files(raw: str | None, working_dir: str | None) -> tuple[str, ...]:
    """config_files is comma-separated; podman-compose (and some v1 runs) write them relative to the working dir."""
    if not raw:
        return ()
    files = []
    for name in raw.split(","):
        name = name.strip()
        if not name:
            continue
        if working_dir and not posixpath.isabs(name):
            name = posixpath.normpath(posixpath.join(working_dir, name))
        files.append(name)
    return tuple(files)


def flavour_of(labels: dict[str, str]) -> Flavour:
    if PODMAN_PROJECT in labels or PODMAN_VERSION in labels:
        return Flavour.PODMAN
    version = labels.get(VERSION) or ""
    major = version.split(".", 1)[0].lstrip("v")
    if major == "1":
        return Flavour.V1
    # 2.x, and any newer or unreadable version: the v2 plugin is what compose is today.
    return Flavour.V2


def compose_of(container: ContainerSpec) -> ComposeInfo | None:
    """The compose project a container belongs to, or None when no compose made it."""
    labels = dict(container.labels)
    project = labels.get(PROJECT) or labels.get(PODMAN_PROJECT)
    if not project:
        return None
    flavour = flavour_of(labels)
    working_dir = labels.get(WORKING_DIR) or None
    return ComposeInfo(
        project=project,
        service=labels.get(SERVICE) or None,
        working_dir=working_dir,
        config_files=_files(labels.get(CONFIG_FILES), working_dir),
        flavour=flavour,
        version=(labels.get(PODMAN_VERSION) if flavour is Flavour.PODMAN else labels.get(VERSION)) or None,
    )


def bind_volume_yaml(info: ComposeInfo | None, source: str, target: str, indent: str = "      ") -> str:
    """A ``volumes:`` entry this compose accepts that makes a missing source an error where it can.

    Only compose v2 can refuse a missing source (``create_host_path: false``); compose v1 rejects that key (the whole
    file fails to load), and podman-compose creates the directory regardless, so for them the entry is plain long
    syntax and the comment says what it cannot do.
    """
    from .fixes.base import yaml_scalar  # at call time: the fixes package imports this module

    lines = [
        f"{indent}- type: bind",
        f"{indent}  source: {yaml_scalar(source)}",
        f"{indent}  target: {yaml_scalar(target)}",
    ]
    flavour = info.flavour if info is not None else Flavour.V2
    if flavour.accepts_create_host_path:
        lines += [f"{indent}  bind:", f"{indent}    create_host_path: false"]
    elif flavour is Flavour.V1:
        lines.insert(0, f"{indent}# docker-compose 1.x rejects create_host_path: start the server before the service")
    else:
        lines.insert(0, f"{indent}# podman-compose makes a missing source with mkdir: start the server first")
    return "\n".join(lines)
