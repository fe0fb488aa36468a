"""Fixes that change nothing: each prints a ready-to-copy ``docker run`` / compose snippet with the real values."""

from __future__ import annotations

import posixpath

from ..compose import bind_volume_yaml, compose_of
from ..model import ContainerReport, ContainerSpec, MountReport, MountSpec, Role, Verdict
from .base import Fix, comment_text, q, yaml_scalar


def container_dir_for(mount: MountSpec) -> str:
    dst_dir = posixpath.dirname(mount.destination.rstrip("/")) or "/"
    if dst_dir in ("/", "/run", "/var/run", "/tmp", "/var", "/etc", "/usr"):
        # Mounting over a system directory would hide the image's own files: use a dedicated one inside it.
        return posixpath.join(dst_dir, posixpath.basename(posixpath.dirname(mount.source)) or "sockets")
    return dst_dir


def mount_flag_value(src: str, dst: str) -> str:
    """The value of ``--mount``, which the docker CLI reads as one CSV record: a field holding a comma or a quote
    is double-quoted, its quotes doubled."""

    def field(text: str) -> str:
        return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text

    return ",".join(("type=bind", field(f"src={src}"), field(f"dst={dst}")))


def _then_apply(container: ContainerSpec) -> str:
    """For a compose container: the command that applies the edited files, for the compose that made it."""
    compose = compose_of(container)
    if compose is None or not compose.service:
        return ""
    files = ", ".join(compose.config_files) or "the compose file"
    return f"\n# then, after editing {comment_text(files)}:\n{compose.up()}"


def _uses_v(mount: MountSpec) -> bool:
    return mount.from_binds is not False


class MountParentDir(Fix):
    id = "mount-parent-dir"
    title = "Mount the socket's directory instead of the file"
    verdicts = frozenset({Verdict.DETACHED})
    roles = frozenset({Role.SOCKET})

    def advice(self, report: ContainerReport, mount: MountReport) -> str:
        m, c = mount.mount, report.container
        src, dst = m.source, m.destination
        src_dir = posixpath.dirname(src.rstrip("/")) or "/"
        dst_dir = container_dir_for(m)
        new_path = posixpath.join(dst_dir, posixpath.basename(src))
        return (
            f"# mount the directory, so a restarted server's new socket is seen at once\n"
            f"{c.product.cli} run -v {q(src_dir)}:{q(dst_dir)} ...   # instead of -v {q(src)}:{q(dst)}\n"
            f"# compose:\n    volumes:\n      - {yaml_scalar(f'{src_dir}:{dst_dir}')}\n"
            f"# then point the client at {comment_text(new_path)} inside {comment_text(c.name)}" + _then_apply(c)
        )


class StartServerFirst(Fix):
    id = "start-server-first"
    title = "Start the server before the container"
    verdicts = frozenset({Verdict.SHADOWED, Verdict.STALE, Verdict.MISSING})

    def advice(self, report: ContainerReport, mount: MountReport) -> str:
        c = report.container
        src, name = mount.mount.source, c.name
        compose = compose_of(c)
        start = compose.up() if compose is not None and compose.service else f"{c.product.cli} start {q(name)}"
        return (
            f"# start the server that creates {comment_text(src)} before {comment_text(name)}, then:\n"
            f"{start}\n"
            f"# compose: make {comment_text(name)}'s service depend on the server being healthy:\n"
            "    depends_on:\n      server:\n        condition: service_healthy\n"
            f"# with a healthcheck on the server such as: test -S {q(src)}"
        )


class UseMountFlag(Fix):
    id = "use-mount-flag"
    title = "Use --mount so a missing socket is an error, not a directory"
    verdicts = frozenset({Verdict.SHADOWED, Verdict.MISSING})

    def applies(self, verdict: Verdict | None, mount: MountSpec, role: Role) -> bool:
        if not _uses_v(mount):
            return False
        if verdict is Verdict.MISSING:
            return role is Role.SOCKET
        return super().applies(verdict, mount, role)

    def advice(self, report: ContainerReport, mount: MountReport) -> str:
        c = report.container
        src, dst = mount.mount.source, mount.mount.destination
        compose = compose_of(c)
        # Only compose v2 accepts create_host_path; the snippet is YAML the compose that made the container accepts.
        return (
            "# a missing socket becomes an error instead of a directory\n"
            f"{c.product.cli} run --mount {q(mount_flag_value(src, dst))} ...\n"
            f"# compose{f' ({compose.flavour.value})' if compose is not None else ''}:\n    volumes:\n"
            + bind_volume_yaml(compose, src, dst, indent="      ")
            + _then_apply(c)
        )


class GroupAdd(Fix):
    id = "group-add"
    title = "Give the container the socket's group (--group-add)"
    verdicts = frozenset({Verdict.DENIED})

    def advice(self, report: ContainerReport, mount: MountReport) -> str:
        gid = mount.host.gid if mount.host is not None else 0
        c = report.container
        return (
            f"# let {comment_text(c.name)}'s user connect: give it the socket's group (gid {gid})\n"
            f'{c.product.cli} run --group-add {gid} ...\n# compose:\n    group_add:\n      - "{gid}"' + _then_apply(c)
        )
