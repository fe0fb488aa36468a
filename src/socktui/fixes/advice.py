"""Fixes that change nothing: each prints a ready-to-copy ``docker run`` / compose snippet with the real values."""

from __future__ import annotations

import posixpath

from ..compose import bind_volume_yaml, compose_of
from ..model import ContainerReport, ContainerSpec, Denial, Grant, MountReport, MountSpec, Role, Verdict
from ..permissions import socket_mode_setting
from .base import Fix, Situation, comment_text, q, yaml_scalar


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
    verdicts = frozenset({Verdict.DETACHED, Verdict.STALE, Verdict.MISSING})
    roles = frozenset({Role.SOCKET})

    def suits(self, verdict: Verdict | None, role: Role, situation: Situation) -> bool:
        # A running container's file mount pins the dead socket: a restarted server will not reach it either.
        # (Without knowing that it runs, only where the pinned inode is certain to be the cause.)
        return verdict is Verdict.DETACHED or situation.running

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
        src, dst, name = mount.mount.source, mount.mount.destination, c.name
        first = "remove the directory (remove-shadow-dir), then " if mount.verdict is Verdict.SHADOWED else ""
        if c.running and mount.role is Role.SOCKET_DIR:
            return (
                f"# {comment_text(name)} mounts the directory, so it sees a socket as soon as the server binds it:\n"
                f"# {first}start the server that creates its socket in {comment_text(src)}; no restart needed"
            )
        if c.running:
            # Never `docker start` here: the container runs, and its file mount pins what it mounted at start.
            return (
                f"# {comment_text(name)} is running, and a file mount pins the inode it mounted at start: it will\n"
                f"# not see the server's new socket by itself. {first}start the server that creates\n"
                f"# {comment_text(src)}, then give the container the new socket, live (no restart):\n"
                f"socktui fix {q(name)} {q(dst)} reattach-socket\n"
                f"# or restart it: {c.product.cli} restart {q(name)}\n"
                f"# for good, mount the socket's directory instead: socktui fix {q(name)} {q(dst)} mount-parent-dir"
            )
        compose = compose_of(c)
        start = compose.up() if compose is not None and compose.service else f"{c.product.cli} start {q(name)}"
        return (
            f"# {first}start the server that creates {comment_text(src)} before {comment_text(name)}, then:\n"
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

    def suits(self, verdict: Verdict | None, role: Role, situation: Situation) -> bool:
        # Only when the mode grants the group what connecting needs (and the group is mapped into the container).
        return situation.denial is None or situation.denial.grant is Grant.GROUP

    def advice(self, report: ContainerReport, mount: MountReport) -> str:
        denial = mount.denial
        if denial is not None and denial.group_to_add is not None:
            gid = denial.group_to_add
        else:
            gid = mount.host.gid if mount.host is not None else 0
        c = report.container
        return (
            f"# let {comment_text(c.name)}'s user connect: give it the socket's group (gid {gid})\n"
            f'{c.product.cli} run --group-add {gid} ...\n# compose:\n    group_add:\n      - "{gid}"' + _then_apply(c)
        )


def _refusing(mount: MountReport) -> tuple[Denial, str] | None:
    denial = mount.denial
    if denial is None:
        return None
    listener = mount.listener.command if mount.listener is not None else None
    if listener is None:
        listener = next((s.listener.command for s in mount.sockets if s.listener is not None), None)
    name = posixpath.basename(denial.path.rstrip("/"))
    return denial, socket_mode_setting(listener, name)


class SocketMode(Fix):
    id = "socket-mode"
    title = "Have the server create its socket group-writable"
    verdicts = frozenset({Verdict.DENIED})

    def suits(self, verdict: Verdict | None, role: Role, situation: Situation) -> bool:
        return situation.denial is not None and situation.denial.grant in (Grant.OWNER, Grant.NOBODY)

    def advice(self, report: ContainerReport, mount: MountReport) -> str:
        found = _refusing(mount)
        if found is None:
            return ""
        denial, setting = found
        c = report.container
        gid = denial.group_to_add if denial.group_to_add is not None else denial.gid
        return (
            f"# {comment_text(denial.path)} is {denial.mode:04o} {denial.uid}:{denial.gid}: only its owner may "
            "connect.\n"
            "# Have the server create it group-writable, in its own configuration:\n"
            f"#   {comment_text(setting)}\n"
            f"# then give {comment_text(c.name)} the socket's group:\n"
            f'{c.product.cli} run --group-add {gid} ...\n# compose:\n    group_add:\n      - "{gid}"' + _then_apply(c)
        )


class RunAsOwner(Fix):
    id = "run-as-owner"
    title = "Run the container as the socket's owner (--user)"
    verdicts = frozenset({Verdict.DENIED})

    def suits(self, verdict: Verdict | None, role: Role, situation: Situation) -> bool:
        return situation.denial is not None and situation.denial.grant is Grant.OWNER

    def advice(self, report: ContainerReport, mount: MountReport) -> str:
        denial = mount.denial
        if denial is None or denial.owner_inside is None:
            return ""
        uid, c = denial.owner_inside, report.container
        return (
            f"# only uid {uid}, the owner of {comment_text(denial.path)} ({denial.mode:04o}), may connect: run "
            f"{comment_text(c.name)} as it\n"
            f'{c.product.cli} run --user {uid} ...\n# compose:\n    user: "{uid}"' + _then_apply(c)
        )
