"""Rendering a CheckReport: the JSON contract of ``socktui check --json`` and the 80-column text form."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .compose import compose_of
from .model import CheckReport, ContainerReport, ContainerSpec, EngineInfo, Listener, MountReport, Role, SocketReport
from .text import counted
from .text import printable as printable  # re-exported: callers have long imported it from here

SCHEMA = 1


def _listener(listener: Listener | None) -> dict[str, Any] | None:
    if listener is None:
        return None
    return {"pid": listener.pid, "command": listener.command, "container": listener.container}


def _socket(sock: SocketReport) -> dict[str, Any]:
    return {
        "name": sock.name,
        "host_path": sock.host_path,
        "container_path": sock.container_path,
        "verdict": sock.verdict.value,
        "reason": sock.reason,
    }


def _mount(m: MountReport) -> dict[str, Any]:
    return {
        "type": m.mount.type,
        "source": m.mount.source,
        "destination": m.mount.destination,
        "rw": m.mount.rw,
        "role": m.role.value,
        "verdict": m.verdict.value if m.verdict else None,
        "reason": m.reason,
        "listener": _listener(m.listener),
        "sockets": [_socket(s) for s in m.sockets] if m.role is Role.SOCKET_DIR else [],
        "fixes": [{"id": f.id, "title": f.title, "destructive": f.destructive} for f in m.fixes],
    }


def _compose(container: ContainerSpec) -> dict[str, Any] | None:
    info = compose_of(container)
    if info is None:
        return None
    return {
        "project": info.project,
        "service": info.service,
        "working_dir": info.working_dir,
        "config_files": list(info.config_files),
        "flavour": info.flavour.value,
        "version": info.version,
        "recreate": info.recreate(),
    }


def _container(c: ContainerReport, include_all: bool) -> dict[str, Any]:
    mounts = c.mounts if include_all else c.socket_mounts
    return {
        "id": c.container.id,
        "name": c.container.name,
        "state": c.container.state,
        "image": c.container.image,
        "compose": _compose(c.container),
        "mounts": [_mount(m) for m in mounts],
    }


def _engine(engine: EngineInfo) -> dict[str, Any]:
    return {
        "endpoint": engine.endpoint,
        "local": engine.local,
        "version": engine.version,
        "product": engine.product.value,
        "context": engine.context,
    }


def to_document(report: CheckReport, include_all: bool = False) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "engine": _engine(report.engine),
        "containers": [_container(c, include_all) for c in report.containers],
    }


def engine_words(engine: EngineInfo) -> str:
    """The product, where it is and why there: 'Podman 4.3.1 at unix:///run/podman/podman.sock (local, via ...)'."""
    details = ["local" if engine.local else "remote"]
    if engine.context:
        details.append(f"context {engine.context}")
    elif engine.source:
        details.append(f"via {engine.source}")
    return f"{engine.product.display} {engine.version or '?'} at {engine.endpoint} ({', '.join(details)})"


def to_json(report: CheckReport, include_all: bool = False, *, pretty: bool = True) -> str:
    """The one JSON document. ``pretty`` indents it for a person; compact, it is written by the json module's C
    encoder, about ten times faster on a thousand containers (what a script piping it gets)."""
    document = to_document(report, include_all)
    # ensure_ascii keeps the document valid whatever bytes a path held (lone surrogates become \udcxx escapes).
    if pretty:
        return json.dumps(document, ensure_ascii=True, indent=2)
    return json.dumps(document, ensure_ascii=True, separators=(",", ":"))


def to_text(
    report: CheckReport,
    include_all: bool = False,
    width: int = 80,
    explain: Callable[[ContainerReport, MountReport], Iterable[str]] | None = None,
) -> str:
    """The 80-column report. ``explain`` adds lines after each mount (``check --explain``: its plumbing picture)."""
    import textwrap  # the text report only: check --json never needs it

    lines = textwrap.wrap(
        printable("engine: " + engine_words(report.engine)), width=width, subsequent_indent="  ", break_on_hyphens=False
    )
    total = sum(len(c.socket_mounts) for c in report.containers)
    problems = sum(c.problems for c in report.containers)
    lines.append(
        f"{counted(len(report.containers), 'container')}, {counted(total, 'socket mount')}, "
        f"{counted(problems, 'problem')}"
    )
    for note in report.notes:
        lines.extend(textwrap.wrap(f"note: {printable(note)}", width=width, subsequent_indent="      "))
    for c in report.containers:
        mounts = c.mounts if include_all else c.socket_mounts
        worst = c.worst.value if c.worst else "-"
        lines.append("")
        lines.extend(
            textwrap.wrap(f"{printable(c.container.name)}  [{printable(c.container.state)}]  {worst}", width=width)
        )
        compose = compose_of(c.container)
        if compose is not None:
            files = ", ".join(compose.config_files) or "no files named"
            where = f" in {compose.working_dir}" if compose.working_dir else ""
            lines.extend(
                textwrap.wrap(
                    printable(f"compose: {compose.label} ({compose.flavour.value}{where}; {files})"),
                    width=width,
                    initial_indent="  ",
                    subsequent_indent="    ",
                    break_on_hyphens=False,
                )
            )
        if not mounts:
            lines.append("  (no socket mounts)")
        for m in mounts:
            verdict = m.verdict.value if m.verdict else m.role.value
            paths = f"{printable(m.mount.source)} -> {printable(m.mount.destination)}"
            lines.extend(
                textwrap.wrap(
                    f"{verdict:<10} {paths}",
                    width=width,
                    initial_indent="  ",
                    subsequent_indent=" " * 13,
                    break_on_hyphens=False,
                )
            )
            if m.reason:
                lines.extend(
                    textwrap.wrap(printable(m.reason), width=width, initial_indent=" " * 13, subsequent_indent=" " * 13)
                )
            for s in m.sockets:
                lines.extend(
                    textwrap.wrap(
                        f"{s.verdict.value:<10} {printable(s.name)}",
                        width=width,
                        initial_indent="    ",
                        subsequent_indent=" " * 15,
                    )
                )
                if not s.verdict.healthy:
                    lines.extend(
                        textwrap.wrap(
                            printable(s.reason), width=width, initial_indent=" " * 15, subsequent_indent=" " * 15
                        )
                    )
            if explain is not None:
                lines.extend(explain(c, m))
            if m.fixes:
                lines.append(" " * 13 + "fixes: " + ", ".join(f.id for f in m.fixes))
    return "\n".join(lines) + "\n"
