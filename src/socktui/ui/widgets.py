"""The panes: container list, mount table, mount detail, event log. They turn core objects into rows and text."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable, RichLog, Static

from ..compose import compose_of
from ..model import ContainerReport, ContainerSpec, Kind, MountReport, PathStat, ProbeResult, Verdict
from ..text import printable
from .picture import plumbing_text


def outside(text: str, style: str = "") -> Text:
    """Text from outside (a path, a name, a label, a reply), as the UI shows it: control characters escaped, and a
    ``Text``, which Textual never parses as markup (a ``str`` handed to a widget would be: ``[/]`` raises
    ``MarkupError``, ``[@click=...]`` runs an action)."""
    return Text(printable(text), style=style)


_FALLBACK = {
    "error": "#e0475b",
    "warning": "#d7a000",
    "success": "#3fa34d",
    "accent": "#5f87d7",
    "secondary": "#888888",
}


CHECKING = "checking"  # ContainerReport.note of a container listed but not yet looked at


def verdict_color(app: App[Any], verdict: Verdict | None) -> str:
    theme = app.current_theme
    if verdict is None:
        return theme.secondary or _FALLBACK["secondary"]
    if verdict.healthy:
        return theme.success or _FALLBACK["success"]
    if verdict is Verdict.UNKNOWN:
        return theme.accent or _FALLBACK["accent"]
    if verdict in (Verdict.DENIED, Verdict.MISSING, Verdict.NOT_SOCKET):
        return theme.warning or _FALLBACK["warning"]
    return theme.error or _FALLBACK["error"]


def verdict_text(app: App[Any], verdict: Verdict | None, width: int = 10) -> Text:
    """A verdict as a coloured word: the word carries the meaning, the colour only helps."""
    word = verdict.value if verdict else "-"
    return Text(word.ljust(width), style=f"bold {verdict_color(app, verdict)}") if verdict else Text(word.ljust(width))


def sort_key(report: ContainerReport) -> tuple[int, int, str]:
    worst = report.worst
    severity = worst.severity if worst else -1
    return (-severity, 0 if report.container.running else 1, report.container.name.lower())


def matches(report: ContainerReport, needle: str) -> bool:
    if not needle:
        return True
    needle = needle.lower()
    c = report.container
    hay = [c.name, c.image, c.state, c.compose or "", report.worst.value if report.worst else ""]
    return any(needle in h.lower() for h in hay)


GROUP_PREFIX = "project:"  # row keys of compose project rows; container ids are hex, so they never clash
FOLDED, UNFOLDED = "▸", "▾"


def project_of(report: ContainerReport) -> str | None:
    """The compose project a container belongs to (its group in the list), or None."""
    compose = compose_of(report.container)
    return compose.project if compose is not None else None


def group_worst(reports: Iterable[ContainerReport]) -> Verdict | None:
    worst = [r.worst for r in reports if r.worst is not None and r.note != CHECKING]
    return max(worst, key=lambda v: v.severity) if worst else None


REBUILD_AFTER_REMOVALS = 50  # more rows than this leaving the list at once: clear it and add the rest again


class ContainerList(DataTable[Text | str]):
    """Containers, problems first, grouped by compose project. Rows are keyed by container id and updated in place.

    A project is one row (``project:NAME``) with its worst verdict, its containers under it; Enter on it folds or
    unfolds it. Projects and lone containers sort together, worst first; a project's containers follow it.
    """

    BINDINGS = [Binding("j", "cursor_down", show=False), Binding("k", "cursor_up", show=False)]

    def on_mount(self) -> None:
        self._order: dict[str, tuple[object, ...]] = {}
        self._names: dict[str, str] = {}  # name cell's first word -> container row key
        self._groups: dict[str, str] = {}  # project row's name -> its row key
        self._shown: dict[str, ContainerReport] = {}  # the containers that pass the filter
        self._members: dict[str, set[str]] = {}  # project -> container ids shown under it
        self.folded: set[str] = set()
        self.cursor_type = "row"
        self.cell_padding = 0
        self.add_column("verdict", key="verdict", width=12)
        self.add_column("container ", key="name")
        self.add_column(" state", key="state", width=8)
        self.add_column(" #", key="count", width=3)

    def _cells(self, report: ContainerReport) -> tuple[Text | str, ...]:
        c = report.container
        project = project_of(report)
        name = Text("  " if project is not None else "")
        name.append_text(outside(c.name))
        compose = compose_of(c)
        if compose is not None and compose.service:
            name.append_text(outside(f" {compose.service}", style="dim"))
        elif c.compose:
            name.append_text(outside(f" {c.compose}", style="dim"))
        # Every cell is a Text: a str cell would be parsed as markup.
        state = outside(f" {c.state[:7]}")
        if report.note == CHECKING:
            return (Text("checking…".ljust(12), style="dim"), name, state, Text(""))
        count = len(report.socket_mounts)
        return (verdict_text(self.app, report.worst, 12), name, state, Text(f" {count}" if count else ""))

    def _group_cells(self, project: str, members: list[ContainerReport]) -> tuple[Text | str, ...]:
        mark = FOLDED if project in self.folded else UNFOLDED
        name = Text(f"{mark} ", style="bold")
        name.append(printable(project), style="bold")
        name.append(f" ({len(members)}) ", style="dim")
        checking = all(r.note == CHECKING for r in members)
        verdict: Text = (
            Text("checking…".ljust(11), style="dim") if checking else verdict_text(self.app, group_worst(members), 11)
        )
        count = sum(len(r.socket_mounts) for r in members)
        return (verdict, name, " project", f" {count}" if count else "")

    def _set_row(self, key: str, cells: tuple[Text | str, ...]) -> bool:
        """Make row ``key`` show ``cells``; True when it had to be added."""
        if key in self.rows:
            for column, value in zip(("verdict", "name", "state", "count"), cells, strict=True):
                if self.get_cell(key, column) != value:
                    self.update_cell(key, column, value)
            return False
        self.add_row(*cells, key=key)
        return True

    def _drop_row(self, key: str) -> None:
        if key in self.rows:
            self.remove_row(key)
        self._order.pop(key, None)

    def show(self, reports: Iterable[ContainerReport], needle: str = "") -> None:
        """Make the rows match ``reports`` (filtered): a whole new picture, such as after a filter change."""
        reports = list(reports)
        wanted = {r.container.id for r in reports}
        gone = [cid for cid in self._shown if cid not in wanted]
        gone += [str(k.value) for k in self.rows if k.value not in wanted and not str(k.value).startswith(GROUP_PREFIX)]
        if len(gone) > REBUILD_AFTER_REMOVALS:
            # DataTable.remove_row walks every row: a filter that hides most of a thousand would take seconds one
            # by one, and a rebuild takes a fraction of one.
            keep_key = self._selected_key()
            self.clear()
            for index in (self._order, self._names, self._groups, self._shown, self._members):
                index.clear()
            self.update_rows(reports, (), needle, keep_key=keep_key)
            return
        self.update_rows(reports, gone, needle)

    def update_rows(
        self,
        reports: Iterable[ContainerReport],
        removed: Iterable[str],
        needle: str = "",
        *,
        keep_key: str | None = None,
    ) -> None:
        """Touch only these rows (and their projects' rows); re-sort only when the order moved."""
        keep_key = keep_key or self._selected_key()
        resort = False
        touched: set[str] = set()  # projects whose row must be redrawn
        for cid in removed:
            self._forget(cid, touched)
        for report in reports:
            cid = report.container.id
            if not matches(report, needle):
                self._forget(cid, touched)
                continue
            before = self._shown.get(cid)
            if before is not None and project_of(before) != project_of(report):
                self._forget(cid, touched)
            self._shown[cid] = report
            project = project_of(report)
            if project is not None:
                self._members.setdefault(project, set()).add(cid)
                touched.add(project)
                if project in self.folded:
                    self._drop_row(cid)
                continue  # drawn with its project below, once the project's place is known
            resort |= self._set_row(cid, self._cells(report))
            resort |= self._place(cid, (sort_key(report), "c", 0, ()), printable(report.container.name))
        for project in touched:
            resort |= self._redraw_group(project, reports_changed={r.container.id for r in reports})
        if resort:
            self._resort()
        if keep_key and keep_key in self.rows:
            self.move_cursor(row=self.get_row_index(keep_key), animate=False)

    def _resort(self) -> None:
        order, names, groups = self._order, self._names, self._groups
        missing = ((9, 9, ""), "", 9, ())

        def row_order(cell: Text | str) -> tuple[object, ...]:
            plain = cell.plain if isinstance(cell, Text) else cell
            if plain.startswith((FOLDED, UNFOLDED)):
                return order.get(groups.get(plain[2:].split(" (", 1)[0], ""), missing)
            # Container names are unique and never contain spaces: the first word identifies the row.
            return order.get(names.get(plain.lstrip(" ").split(" ", 1)[0], ""), missing)

        self.sort("name", key=row_order)

    def _forget(self, cid: str, touched: set[str]) -> None:
        old = self._shown.pop(cid, None)
        if old is not None:
            project = project_of(old)
            if project is not None:
                self._members.get(project, set()).discard(cid)
                touched.add(project)
        self._drop_row(cid)

    def _place(self, key: str, order: tuple[object, ...], ident: str, group: bool = False) -> bool:
        """Record where row ``key`` sorts; True when that changed."""
        (self._groups if group else self._names)[ident] = key
        if self._order.get(key) == order:
            return False
        self._order[key] = order
        return True

    def _redraw_group(self, project: str, reports_changed: set[str]) -> bool:
        key = GROUP_PREFIX + project
        members = [self._shown[cid] for cid in self._members.get(project, ()) if cid in self._shown]
        if not members:
            self._members.pop(project, None)
            self._groups.pop(printable(project), None)
            self._drop_row(key)
            return False
        moved = self._set_row(key, self._group_cells(project, members))
        group_key = min(sort_key(r) for r in members)
        moved |= self._place(key, (group_key, "p:" + project, 0, ()), printable(project), group=True)
        if project in self.folded:
            return moved
        for report in members:
            cid = report.container.id
            if cid not in self.rows or cid in reports_changed:
                moved |= self._set_row(cid, self._cells(report))
            place = (group_key, "p:" + project, 1, sort_key(report))
            moved |= self._place(cid, place, printable(report.container.name))
        return moved

    def toggle_fold(self, project: str) -> None:
        """Fold a project's containers under its row, or show them again."""
        if project in self.folded:
            self.folded.discard(project)
        else:
            self.folded.add(project)
            for cid in self._members.get(project, ()):
                self._drop_row(cid)
        self._redraw_group(project, reports_changed=set(self._members.get(project, ())))
        self._resort()
        key = GROUP_PREFIX + project
        if key in self.rows:
            self.move_cursor(row=self.get_row_index(key), animate=False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a project row folds or unfolds it."""
        key = str(event.row_key.value)
        if key.startswith(GROUP_PREFIX):
            event.stop()
            self.toggle_fold(key.removeprefix(GROUP_PREFIX))

    def first_container_row(self) -> int:
        """The first container's row (past its project's row): where the cursor starts, on the worst problem."""
        for index in range(self.row_count):
            key = str(self.coordinate_to_cell_key(Coordinate(index, 0)).row_key.value)
            if not key.startswith(GROUP_PREFIX):
                return index
        return 0

    @property
    def selected_project(self) -> str | None:
        key = self._selected_key()
        return key.removeprefix(GROUP_PREFIX) if key and key.startswith(GROUP_PREFIX) else None

    def _selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return str(key.value) if key.value is not None else None

    @property
    def selected_id(self) -> str | None:
        """The selected container's id; None on a project row."""
        key = self._selected_key()
        return None if key is None or key.startswith(GROUP_PREFIX) else key


class MountTable(DataTable[Text | str]):
    """The selected container's mounts: verdict, source → destination."""

    BINDINGS = [Binding("j", "cursor_down", show=False), Binding("k", "cursor_up", show=False)]

    def on_mount(self) -> None:
        self._shown: list[tuple[Text, Text]] = []
        self.cursor_type = "row"
        self.cell_padding = 0
        self.add_column("verdict", key="verdict", width=12)
        self.add_column("source → destination", key="paths")

    def show(self, mounts: Iterable[MountReport]) -> None:
        rows = []
        for m in mounts:
            label = verdict_text(self.app, m.verdict, 12) if m.relevant else Text(m.role.value.ljust(12), style="dim")
            rows.append((label, outside(m.mount.source) + Text(" → ") + outside(m.mount.destination)))
        if rows == self._shown:
            return  # nothing to redraw: a rebuild would cost a layout of the whole screen
        keep = self.cursor_row
        if len(rows) == len(self._shown):
            for index, (new, old) in enumerate(zip(rows, self._shown, strict=True)):
                for column, value, before in zip(("verdict", "paths"), new, old, strict=True):
                    if value != before:
                        self.update_cell(str(index), column, value)
        else:
            self.clear()
            for index, row in enumerate(rows):
                self.add_row(*row, key=str(index))
            if self.row_count:
                self.move_cursor(row=min(keep, self.row_count - 1), animate=False)
        self._shown = rows


def _stat_line(label: str, st: PathStat | None) -> str:
    if st is None:
        return f"{label}: not looked at"
    if st.kind is Kind.MISSING:
        return f"{label}: nothing there"
    if st.kind is Kind.ERROR:
        return f"{label}: cannot look ({printable(st.error or '')})"
    extra = f", {st.entries} entries" if st.entries is not None else ""
    gone = " (deleted)" if st.kind is Kind.SOCKET and st.nlink == 0 else ""
    return f"{label}: {st.kind.value} inode {st.ino}{gone}, {st.mode:04o} {st.uid}:{st.gid}{extra}"


def _probe_line(label: str, probe: ProbeResult | None) -> str:
    if probe is None:
        return f"{label}: not probed"
    if probe.ok:
        api = f", {probe.api} API" if probe.api else ""
        return f"{label}: connected in {probe.latency_ms:.2f} ms ({probe.sock_type}{api})"
    return f"{label}: {probe.errno} ({printable(probe.detail)})"


def describe_mount(
    app: App[Any], m: MountReport, last_test: str | None = None, container: ContainerSpec | None = None
) -> Text:
    text = Text()
    text.append_text(verdict_text(app, m.verdict, width=0) if m.relevant else Text(m.role.value, style="dim"))
    text.append(f"   {m.role.value}  {m.mount.type} {'rw' if m.mount.rw else 'ro'}\n")
    if m.relevant:
        clock = lambda t: time.strftime("%H:%M:%S", time.localtime(t))  # noqa: E731 - this module's clock
        text.append_text(plumbing_text(app, m, container, clock=clock))
        text.append("\n")
    text.append(f"{printable(m.mount.source)}\n  → {printable(m.mount.destination)}\n", style="bold")
    if m.reason:
        text.append(printable(m.reason) + "\n")
    if not m.relevant:
        return text
    text.append("\n")
    text.append(_stat_line("host", m.host) + "\n", style="dim")
    view = m.container
    if view is not None:
        if view.stat is None:
            text.append(f"container: {printable(view.unavailable or 'not looked at')}\n", style="dim")
        else:
            text.append(_stat_line("container", view.stat) + "\n", style="dim")
    text.append(_probe_line("host connect", m.host_probe) + "\n", style="dim")
    if view is not None and view.probe is not None:
        text.append(_probe_line("container connect", view.probe) + "\n", style="dim")
    if m.listener is not None:
        where = f" in {printable(m.listener.container)}" if m.listener.container else ""
        text.append(f"listener: pid {m.listener.pid} {printable(m.listener.command)}{where}\n")
    if m.shadow_created_by_docker_at is not None:
        when = time.strftime("%H:%M:%S", time.localtime(m.shadow_created_by_docker_at))
        text.append(f"Docker created this directory at {when}\n", style="bold")
    for s in m.sockets:
        text.append("  ")
        text.append_text(verdict_text(app, s.verdict))
        text.append(f" {printable(s.name)}")
        if s.listener is not None:
            text.append(f"  pid {s.listener.pid} {printable(s.listener.command)[:40]}", style="dim")
        text.append("\n")
        if not s.verdict.healthy:
            text.append(f"    {printable(s.reason)}\n", style="dim")
    if m.fixes:
        text.append("\nfixes (f): " + ", ".join(f.id for f in m.fixes) + "\n")
    if last_test:
        text.append(f"\nlast test connect: {printable(last_test)}\n")
    return text


class MountInfo(Static):
    """Everything known about the selected mount, in words."""

    _last: Text | str | None = None

    def show(self, text: Text | str) -> None:
        if isinstance(text, str):
            text = outside(text)  # never markup
        if text != self._last:  # an unchanged update would still cost a layout
            self._last = text
            self.update(text)


class EventLog(RichLog):
    """Timestamped lines for what changed."""

    def add(self, line: str, style: str = "") -> None:
        stamp = time.strftime("%H:%M:%S")
        text = Text(f"{stamp} ", style="dim")
        text.append(printable(line), style=style)
        self.write(text)
