"""The socktui app: a thin view over a Session. Every engine call, probe and fix runs in a thread worker."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.filter import LineFilter, Monochrome, NoColor
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static
from textual.worker import Worker, WorkerState

from ..compose import compose_of
from ..engine import EngineError
from ..fixes import DEFAULT_WAIT_SECONDS, FixResult, plan_fix
from ..fsview import host_lstat
from ..model import CheckReport, ContainerReport, ContainerSpec, EngineInfo, Kind, MountReport, ProbeResult
from ..observe import ContainerLook
from ..probe import probe_host_path
from ..session import Change, Options, Session, make_session
from ..settings import Settings
from ..socktable import listener_at
from ..text import printable, printable_lines
from ..verdict import api_server
from .commands import COMMANDS, bindings
from .messages import ContainersUpdated, EngineProblem, EngineRecovered, Listed, LogLine, ReportReady
from .screens import ConnectScreen, FixScreen, HelpScreen
from .terminal import AsciiFilter, ControlFilter, not_utf8_sentence, terminal_is_utf8
from .widgets import (
    CHECKING,
    ContainerList,
    EventLog,
    MountInfo,
    MountTable,
    describe_mount,
    outside,
    project_of,
    sort_key,
    verdict_color,
    verdict_text,
)

if TYPE_CHECKING:
    from ..sources.dirs import DirectoryWatcher
    from ..sources.events import EngineEventStream
    from ..sources.exits import ListenerExitWatcher
    from ..sources.reprobe import Reprober

RETRY_MAX_SECONDS = 10.0


@dataclass
class PathsChanged(Message):
    changes: list[tuple[str, str]]  # (path, "added" | "modified" | "deleted" | "probe")


@dataclass
class ContainerEvent(Message):
    action: str
    container_id: str
    name: str


@dataclass
class ListenerExited(Message):
    pid: int


class SocktuiApp(App[int]):
    CSS_PATH = "socktui.tcss"
    TITLE = "socktui"
    BINDINGS = bindings()

    needle: reactive[str] = reactive("")
    """The filter text; narrows the container list."""
    show_all: reactive[bool] = reactive(False)
    """Show every mount, not only socket-relevant ones."""
    selected_id: reactive[str | None] = reactive(None)
    """The container whose mounts the detail pane shows."""

    def __init__(
        self,
        session: Session,
        *,
        live: bool = True,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        ascii_only: bool = False,
        theme: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.ascii_only = ascii_only
        """The terminal is not UTF-8: every cell is drawn as ASCII (see ``ui.terminal``)."""
        # Filter instances are kept: Textual caches filtered lines per filter object.
        self._own_filters: list[LineFilter] = [ControlFilter()] + ([AsciiFilter()] if ascii_only else [])
        self._no_color = NoColor()
        self.settings = settings
        """Where the theme picked in the palette is remembered; None remembers nothing (tests)."""
        self.startup_notes: list[str] = []
        self._settings_lock = threading.Lock()
        self._theme_to_save = ""
        if theme is not None:
            self.theme = theme
        elif settings is not None:
            self._restore_theme(settings)
        self.live = live
        self.wait_seconds = wait_seconds
        self.report: CheckReport | None = None
        self.engine_down: str | None = None
        self.retry_delay = 0.5
        self.stop_live = threading.Event()
        self.live_started = False
        self.last_tests: dict[tuple[str, str], str] = {}
        self._mounts_title: Text | None = None
        self._interest_versions: dict[str, int] = {}
        # Live sources, made once the first look is in (watchfiles is imported only then).
        self.dir_watcher: DirectoryWatcher | None = None
        self.events_stream: EngineEventStream | None = None
        self.exit_watcher: ListenerExitWatcher | None = None
        self.reprober: Reprober | None = None

    def get_line_filters(self) -> list[LineFilter]:
        """Textual's filters, with NO_COLOR meaning no colour at all, then socktui's own (see ``ui.terminal``)."""
        filters = [self._no_color if isinstance(f, Monochrome) else f for f in super().get_line_filters()]
        return filters + self._own_filters

    def _restore_theme(self, settings: Settings) -> None:
        saved, problem = settings.load()
        for note in (settings.note, problem):
            if note:
                self.startup_notes.append(note)
        name = saved.get("theme")
        if isinstance(name, str) and name:
            if name in self.available_themes:
                self.theme = name
            else:
                self.startup_notes.append(f"the saved theme {name!r} is not one socktui knows; using {self.theme}")

    def _theme_changed(self, theme: object) -> None:
        if self.settings is not None:
            self._theme_to_save = self.theme
            self.save_settings(self.settings)

    @work(thread=True, group="settings", exit_on_error=False)
    def save_settings(self, settings: Settings) -> None:
        # One save at a time, each writing the newest choice: a slow older save can never overwrite a newer one.
        with self._settings_lock:
            problem = settings.save(theme=self._theme_to_save)
        if problem:
            self.post(LogLine(problem, "bold"))

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static("socktui", id="topbar")
        yield Static("", id="banner")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield Input(placeholder="filter: name, project, image, verdict", id="filter")
                yield ContainerList(id="containers")
            with Vertical(id="detail"):
                yield MountTable(id="mounts")
                with VerticalScroll(id="info-scroll"):
                    yield MountInfo("", id="info")
        yield EventLog(id="log", max_lines=2000, wrap=True, min_width=1)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.query_one("#banner").display = False
        self.query_one("#containers").border_title = "containers"
        self.query_one("#mounts").border_title = "mounts"
        self.query_one("#log").border_title = "events"
        self.log_line(f"looking at {self.session.engine.endpoint.url} ({self.session.engine.endpoint.source})")
        if self.ascii_only:
            self.add_class("-ascii")  # socktui.tcss gives the thick and tall borders their ASCII form
            self.log_line(not_utf8_sentence(), style="bold")
        for note in self.startup_notes:
            self.log_line(note)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.session.options.read_only:
            self.log_line("read-only mode: fixes are shown, never run")
        self.query_one(ContainerList).focus()
        self.load_all()
        if self.live and self.session.options.watch_dirs:
            self.start_live(engine=False)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for c in COMMANDS:
            if c.show:
                yield SystemCommand(c.label, c.help, self._runner(c.action))

    def _runner(self, action: str) -> Callable[[], object]:
        return lambda: self.run_action(action)

    # ------------------------------------------------------------------ loading
    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load_all(self) -> None:
        def listed(info: EngineInfo, specs: list[ContainerSpec]) -> None:
            if self.report is None:
                pending = tuple(ContainerReport(container=c, note=CHECKING) for c in specs)
                self.post(Listed(CheckReport(engine=info, containers=pending)))

        try:
            report = self.session.full_check(on_listed=listed)
        except EngineError as exc:
            self.post_message(EngineProblem(str(exc)))
            return
        self.post_message(ReportReady(report))

    def on_listed(self, message: Listed) -> None:
        if self.report is not None:
            return  # the full look won the race: nothing provisional to show
        self.update_topbar(message.report, checking=True)
        self.query_one(ContainerList).show(message.report.containers, self.needle)

    def on_report_ready(self, message: ReportReady) -> None:
        if self.engine_down:
            self.post_message(EngineRecovered())
        self.retry_delay = 0.5
        first = self.report is None
        self.report = message.report
        self.refresh_view()
        if first:
            for note in message.report.notes:
                self.log_line(f"note: {note}", style="bold")
            # The provisional list was in engine order; once the verdicts are in, start on the worst problem.
            table = self.query_one(ContainerList)
            if table.row_count:
                table.move_cursor(row=table.first_container_row(), animate=False)
                self.selected_id = table.selected_id
                self.show_detail()
                self.query_one(MountTable).move_cursor(row=self.worst_mount_row(), animate=False)
                self.show_mount_info()
        problems = sum(c.problems for c in message.report.containers)
        count = len(message.report.containers)
        self.log_line(f"checked {count} container{'s' * (count != 1)}: {problems} problem{'s' * (problems != 1)}")
        if self.live and not self.live_started:
            self.start_live(engine=True)
        self.update_interest()

    def on_engine_problem(self, message: EngineProblem) -> None:
        first = self.engine_down is None
        self.engine_down = message.message
        banner = self.query_one("#banner", Static)
        # "Retrying" first: at 80 columns the wrapped advice may not all fit, and that line must always show.
        banner.update(Text(printable_lines(f"Retrying in the background. {message.message}"), style="bold"))
        banner.display = True
        if first:
            self.log_line(f"engine unreachable: {message.message.splitlines()[0]}", style="bold")
        self.set_timer(self.retry_delay, self.load_all)
        self.retry_delay = min(self.retry_delay * 2, RETRY_MAX_SECONDS)

    def on_engine_recovered(self, message: EngineRecovered) -> None:
        if self.engine_down:
            self.log_line("engine reachable again", style="bold")
        self.engine_down = None
        self.query_one("#banner").display = False

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a failed worker is reported: what happened, and that the app keeps going."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.log_line(f"{event.worker.name} failed: {type(error).__name__}: {error}", style="bold")
            self.notify(
                printable(f"{event.worker.name} failed: {error}. socktui keeps running; press r to re-check."),
                severity="error",
                markup=False,
            )

    # ------------------------------------------------------------------ view
    def refresh_view(self) -> None:
        report = self.report
        if report is None:
            return
        self.update_topbar(report)
        table = self.query_one(ContainerList)
        table.show(report.containers, self.needle)
        if table.selected_id != self.selected_id or self.selected_id is None:
            self.selected_id = table.selected_id
        self.show_detail()

    def update_topbar(self, report: CheckReport, checking: bool = False) -> None:
        text = Text("socktui ", style="bold")
        if checking:
            text.append(f"checking {len(report.containers)} containers… · ")
        else:
            containers, mounts, problems, worst = self.session.counts()
            text.append(f"{problems} problems", style=f"bold {verdict_color(self, worst)}" if problems else "")
            text.append(f" · {containers} containers · {mounts} sockets · ")
        tail = "  read-only" if self.session.options.read_only else ""
        bar = self.query_one("#topbar", Static)
        width = bar.size.width or (self.size.width or 80) - 2  # the bar's own width, inside its padding
        text.append(engine_label(report.engine, max(width - text.cell_len - len(tail), 12)), style="dim")
        if tail:
            text.append(tail, style="bold")
        bar.update(text)

    def selected_report(self) -> ContainerReport | None:
        if self.report is None or self.selected_id is None:
            return None
        for c in self.report.containers:
            if c.container.id == self.selected_id:
                return c
        return None

    def visible_mounts(self, report: ContainerReport) -> tuple[MountReport, ...]:
        return report.mounts if self.show_all else report.socket_mounts

    def selected_mount(self) -> tuple[ContainerReport, MountReport] | None:
        report = self.selected_report()
        if report is None:
            return None
        mounts = self.visible_mounts(report)
        if not mounts:
            return None
        row = self.query_one(MountTable).cursor_row
        return report, mounts[min(max(row, 0), len(mounts) - 1)]

    def show_detail(self) -> None:
        report = self.selected_report()
        table = self.query_one(MountTable)
        info = self.query_one(MountInfo)
        if report is None:
            table.show(())
            project = self.query_one(ContainerList).selected_project
            info.show(self.describe_project(project) if project else "")
            return
        mounts = self.visible_mounts(report)
        table.show(mounts)
        c = report.container
        title = outside(f"{c.name} · {c.state} · {c.image}")
        title.truncate(60)
        if self._mounts_title != title:
            self._mounts_title = title
            table.border_title = title  # a Text: never parsed as markup
        if not mounts:
            hidden = len(report.mounts)
            info.show(outside(f"{c.name} has no socket mounts" + (f" ({hidden} others: press a)" if hidden else "")))
            return
        self.show_mount_info()

    def describe_project(self, project: str) -> Text:
        """A compose project's row: its containers, worst first, and how to recreate them with its compose."""
        members = [c for c in (self.report.containers if self.report else ()) if project_of(c) == project]
        text = Text(f"compose project {printable(project)}", style="bold")
        compose = compose_of(members[0].container) if members else None
        if compose is not None:
            where = f" in {printable(compose.working_dir)}" if compose.working_dir else ""
            text.append(f"\n{compose.flavour.value}{where}\n")
            for f in compose.config_files:
                text.append(f"  -f {printable(f)}\n", style="dim")
        for c in sorted(members, key=sort_key):
            text.append("  ")
            text.append_text(verdict_text(self, c.worst, 11))
            text.append(f"{printable(c.container.name)} [{c.container.state}]\n")
        text.append("\nEnter folds or unfolds the project.", style="dim")
        return text

    def worst_mount_row(self) -> int:
        """Start on the mount with the problem, so f and t act on it without a detour through Tab."""
        report = self.selected_report()
        if report is None:
            return 0
        mounts = self.visible_mounts(report)
        ranked = [(m.verdict.severity if m.verdict else -1, -i) for i, m in enumerate(mounts)]
        return -max(ranked)[1] if ranked else 0

    def show_mount_info(self) -> None:
        picked = self.selected_mount()
        info = self.query_one(MountInfo)
        if picked is None:
            if self.selected_id is None and self.query_one(ContainerList).selected_project is not None:
                return  # a project row: show_detail wrote its summary
            info.show("")
            return
        report, mount = picked
        last = self.last_tests.get((report.container.id, mount.mount.destination))
        info.show(describe_mount(self, mount, last, container=report.container))

    @on(DataTable.RowHighlighted, "#containers")
    def container_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # Read the cursor, not the event: an event queued before a re-sort names the row that *was* under it.
        table = self.query_one(ContainerList)
        key = table.selected_id
        if key is None and table.selected_project is not None:
            self.selected_id = None
            self.show_detail()  # a project row: its summary
        elif key != self.selected_id:
            self.selected_id = key
            self.show_detail()
            self.query_one(MountTable).move_cursor(row=self.worst_mount_row(), animate=False)
            self.show_mount_info()

    @on(DataTable.RowHighlighted, "#mounts")
    def mount_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_mount_info()

    def watch_needle(self, needle: str) -> None:
        self.refresh_view()

    def watch_show_all(self, show_all: bool) -> None:
        self.show_detail()

    def log_line(self, text: str, style: str = "") -> None:
        self.query_one(EventLog).add(text, style)

    def on_log_line(self, message: LogLine) -> None:
        self.log_line(message.text, message.style)

    # ------------------------------------------------------------------ live updates
    def start_live(self, *, engine: bool) -> None:
        from ..sources.dirs import DirectoryWatcher
        from ..sources.events import EngineEventStream
        from ..sources.exits import ListenerExitWatcher
        from ..sources.reprobe import Reprober

        if engine:
            self.live_started = True
            self.events_stream = EngineEventStream()
            self.follow_engine(self.events_stream)
            self.exit_watcher = ListenerExitWatcher()
            self.watch_listeners(self.exit_watcher)
            self.reprober = Reprober()
            self.reprobe(self.reprober)
        if self.dir_watcher is None:
            self.dir_watcher = DirectoryWatcher()
            self.dir_watcher.set_paths(self.session.watched_paths(), self.session.socket_dirs())
            self.watch_files(self.dir_watcher)
        self._interest_versions = {}  # new sources: hand them every set on the next update

    def update_interest(self) -> None:
        """Tell the live sources what matters now, only the sets that changed (a new watch set means a rebuild)."""
        versions = self.session.versions()
        if versions == self._interest_versions:
            return
        changed = {k for k, v in versions.items() if self._interest_versions.get(k) != v}
        self._interest_versions = versions
        if self.dir_watcher is not None and changed & {"paths", "dirs"}:
            self.dir_watcher.set_paths(self.session.watched_paths(), self.session.socket_dirs())
        if self.exit_watcher is not None and "pids" in changed:
            self.exit_watcher.set_pids(self.session.listener_pids())
        if self.reprober is not None and "live" in changed:
            self.reprober.set_paths(self.session.live_socket_paths())

    @work(thread=True, group="watch-files", exit_on_error=False)
    def watch_files(self, watcher: DirectoryWatcher) -> None:
        watcher.run(
            lambda changes: self.post(PathsChanged([(c.path, c.change) for c in changes])),
            self.stop_live,
            on_notice=lambda text: self.post(LogLine(text, "bold")),
        )

    @work(thread=True, group="engine-events", exit_on_error=False)
    def follow_engine(self, stream: EngineEventStream) -> None:
        from ..sources.events import EngineBack, EngineLost

        def on_state(state: object) -> None:
            if isinstance(state, EngineLost):
                endpoint = self.session.engine.endpoint
                self.post_message(
                    EngineProblem(
                        f"lost the engine at {endpoint.url} ({endpoint.source}): {state.reason}\n"
                        "Start the daemon again, or point socktui at the right engine with --host or DOCKER_HOST."
                    )
                )
            elif isinstance(state, EngineBack):
                self.post_message(EngineRecovered())
                self.call_from_thread(self.load_all)

        stream.run(
            self.session.engine,
            lambda e: self.post(ContainerEvent(e.action, e.container_id, e.name)),
            on_state,
            self.stop_live,
        )

    @work(thread=True, group="listeners", exit_on_error=False)
    def watch_listeners(self, watcher: ListenerExitWatcher) -> None:
        watcher.run(lambda pid: self.post(ListenerExited(pid)), self.stop_live)

    @work(thread=True, group="reprobe", exit_on_error=False)
    def reprobe(self, reprober: Reprober) -> None:
        reprober.run(lambda path, probe: self.post(PathsChanged([(path, "probe")])), self.stop_live)

    def post(self, message: Message) -> None:
        """``post_message`` for callbacks from watcher threads (it is thread-safe)."""
        self.post_message(message)

    def on_paths_changed(self, message: PathsChanged) -> None:
        self.recheck_paths(message.changes)

    def on_container_event(self, message: ContainerEvent) -> None:
        if message.action in ("start", "die", "destroy", "rename", "create", "restart"):
            verb = {"die": "stopped", "destroy": "removed", "create": "created", "rename": "renamed"}.get(
                message.action, message.action + "ed" if not message.action.endswith("e") else message.action + "d"
            )
            self.log_line(f"{message.name or message.container_id[:12]} {verb}")
        self.recheck_container(message.container_id)

    def on_listener_exited(self, message: ListenerExited) -> None:
        self.log_line(f"listener pid {message.pid} exited")
        self.recheck_listener(message.pid)

    @work(thread=True, group="recheck", exit_on_error=False)
    def recheck_paths(self, changes: list[tuple[str, str]]) -> None:
        watched = self.session.options.watch_dirs
        for path, change in changes:
            if os.path.dirname(path) in watched or path in watched:
                self.post(LogLine(describe_path_change(path, change)))
        reports, found = self.session.refresh_paths([path for path, _ in changes])
        if reports or found:
            self.post(ContainersUpdated(reports, [], found))

    @work(thread=True, group="recheck", exit_on_error=False)
    def recheck_listener(self, pid: int) -> None:
        ids = [
            r.container.id
            for r in self.session.snapshot().containers
            for m in r.socket_mounts
            if (m.listener and m.listener.pid == pid) or any(s.listener and s.listener.pid == pid for s in m.sockets)
        ]
        reports, changes = self.session.refresh_ids(ids)
        self.post_message(ContainersUpdated(reports, [], changes))

    @work(thread=True, group="recheck", exit_on_error=False)
    def recheck_container(self, container_id: str) -> None:
        try:
            report, changes = self.session.refresh_container(container_id)
        except EngineError as exc:
            self.post_message(EngineProblem(str(exc)))
            return
        removed = [container_id] if report is None else []
        self.post_message(ContainersUpdated([report] if report else [], removed, changes))

    def on_containers_updated(self, message: ContainersUpdated) -> None:
        for change in message.changes:
            self.log_change(change)
        self.report = report = self.session.snapshot()
        current = {c.container.id: c for c in report.containers}
        touched = [current[r.container.id] for r in message.reports if r.container.id in current]
        gone = [cid for cid in message.removed if cid not in current]
        gone += [r.container.id for r in message.reports if r.container.id not in current]
        self.update_topbar(report)
        table = self.query_one(ContainerList)
        table.update_rows(touched, gone, self.needle)
        if table.selected_id != self.selected_id:
            self.selected_id = table.selected_id
            self.show_detail()
        elif self.selected_id in {r.container.id for r in touched}:
            self.show_detail()
        self.update_interest()

    def log_change(self, change: Change) -> None:
        style = f"bold {verdict_color(self, change.verdict)}" if change.verdict and not change.verdict.healthy else ""
        self.log_line(change.text, style)

    # ------------------------------------------------------------------ actions
    def action_recheck(self) -> None:
        self.log_line("re-checking everything")
        self.load_all()

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.needle = event.value

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.query_one(ContainerList).focus()

    def key_escape(self) -> None:
        field = self.query_one("#filter", Input)
        if field.display:
            field.value = ""
            field.display = False
            self.query_one(ContainerList).focus()

    def action_cursor_down(self) -> None:
        focused = self.focused
        if isinstance(focused, DataTable):
            focused.action_cursor_down()

    def action_cursor_up(self) -> None:
        focused = self.focused
        if isinstance(focused, DataTable):
            focused.action_cursor_up()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_copy_command(self) -> None:
        picked = self.selected_mount()
        if picked is None:
            self.notify("Select a socket mount first.", markup=False)
            return
        report, mount = picked
        text = suggested_command(report, mount, self.report.containers if self.report else (report,))
        self.copy_to_clipboard(text)  # OSC 52 carries it base64-encoded: no byte of it reaches the terminal raw
        self.notify(printable(f"Copied: {text.splitlines()[0][:70]}"), markup=False)

    def action_fix(self) -> None:
        picked = self.selected_mount()
        if picked is None:
            self.notify("Select a socket mount first.", markup=False)
            return
        report, mount = picked
        if self.session.options.read_only:
            self.notify(
                "Read-only mode: fixes are disabled (started with --read-only).", severity="warning", markup=False
            )
            self.log_line("fix refused: read-only mode")
            return
        if not mount.fixes:
            self.notify(
                f"No fix applies to this {mount.verdict.value if mount.verdict else 'plain'} mount.", markup=False
            )
            return
        everyone = self.report.containers if self.report else (report,)
        plans = [plan_fix(f.id, report, mount, everyone, self.wait_seconds) for f in mount.fixes]
        self.push_screen(
            FixScreen(plans, read_only=False, engine=self.session.engine, wait_seconds=self.wait_seconds),
            self.fix_done,
        )

    def fix_done(self, result: FixResult | None) -> None:
        if result is None:
            return
        self.write_audit(result)
        self.log_line(f"fix {result.plan.fix.id} {result.status}: {result.message}")
        # One fix can act on several containers (every holder of a socket): look at each of them again.
        touched = {result.plan.container.id, *(s.container_id for s in result.plan.steps if s.container_id)}
        for container_id in sorted(touched):
            self.recheck_container(container_id)

    @work(thread=True, group="audit", exit_on_error=False)
    def write_audit(self, result: FixResult) -> None:
        """The audit line is written off the UI thread: whatever the log's filesystem does, the screen never waits."""
        from ..audit import record

        warning = record(result)
        if warning:
            self.post_message(LogLine(warning, "bold"))

    def action_test_connect(self) -> None:
        picked = self.selected_mount()
        if picked is None:
            self.notify("Select a socket mount first.", markup=False)
            return
        self.run_test_connect(*picked)

    @work(thread=True, exclusive=True, group="test-connect", exit_on_error=False)
    def run_test_connect(self, report: ContainerReport, mount: MountReport) -> None:
        target = mount.sockets[0].host_path if mount.sockets else mount.mount.source
        inside = mount.sockets[0].container_path if mount.sockets else mount.mount.destination
        listener = mount.sockets[0].listener if mount.sockets else mount.listener
        # Asked for: a connect from each side; an HTTP /_ping only to an engine's own daemon (known by who listens).
        host = probe_host_path(target, ping=api_server(listener) in ("Docker", "Podman"))
        look = ContainerLook(report.container)
        try:
            view = look.view(inside, with_parents=False, connect=True) if report.container.running else None
        finally:
            look.close()
        lines = [f"host {target}: {_probe_text(host)}"]
        if view is None:
            lines.append(f"container {inside}: {report.container.name} is not running")
        elif view.stat is None:
            lines.append(f"container {inside}: {view.unavailable}")
        elif view.probe is None:
            lines.append(f"container {inside}: {view.stat.kind.value}, not a socket")
        else:
            lines.append(f"container {inside}: {_probe_text(view.probe)}")
        self.last_tests[(report.container.id, mount.mount.destination)] = " · ".join(lines)
        self.post_message(LogLine(f"test connect {target}: {_probe_text(host)}"))
        self.call_from_thread(self._show_connect, f"Test connect: {report.container.name}", lines, target)

    def _show_connect(self, title: str, lines: list[str], target: str) -> None:
        self.show_mount_info()
        self.push_screen(ConnectScreen(title, lines, target, send_line))

    def on_unmount(self) -> None:
        self.stop_live.set()
        if self.events_stream is not None:
            self.events_stream.stop()


def engine_label(engine: EngineInfo, room: int) -> str:
    """'Podman 4.3.1 /run/podman/podman.sock · context prod' in at most ``room`` columns.

    The product, its version and the context name always show; the endpoint gives way, keeping its end (the
    socket's name, or host:port), since that is what tells endpoints apart.
    """
    head = f"{engine.product.display} {printable(engine.version.split('+')[0]) or '?'}"
    context = f" · context {printable(engine.context)}" if engine.context else ""
    where = printable(engine.endpoint.removeprefix("unix://"))
    space = room - len(head) - len(context) - 1
    if len(where) > space:
        where = "…" + where[-(space - 1) :] if space > 8 else ""
    return f"{head} {where}{context}" if where else f"{head}{context}"


def describe_path_change(path: str, change: str) -> str:
    """A log line for a change in a directory the user asked to watch, by what is there now."""
    if change == "deleted":
        return f"{path} removed"
    st = host_lstat(path)
    if st.kind is Kind.MISSING:
        return f"{path} removed"
    if st.kind is Kind.SOCKET:
        # From the socket table: a change in a watched directory must not make socktui connect to a server.
        listening = listener_at(st.identity) is not None
        return f"{path} socket {'listening' if listening else 'with nobody listening'}"
    return f"{path} {change}: {st.kind.value}"


def _probe_text(p: ProbeResult) -> str:
    if p.ok:
        api = f", {p.api} API" if p.api else ""
        return f"connected in {p.latency_ms:.2f} ms ({p.sock_type}{api})"
    return f"{p.errno}: {p.detail}"


def send_line(path: str, payload: bytes) -> ProbeResult:
    return probe_host_path(path, send=payload, deadline=1.0)


def suggested_command(report: ContainerReport, mount: MountReport, everyone: Iterable[ContainerReport]) -> str:
    """What ``c`` copies: the first advice snippet, else the fix command line, else the path."""
    from ..fixes import advice_for, fix_command, shell_word

    for fix in mount.fixes:
        if not fix.destructive:
            snippet = advice_for(fix.id, report, mount)
            if snippet:
                return snippet
    # Quoted: pasted into a shell, no byte of a name or path can end the command or start another line.
    if mount.fixes:
        return fix_command(report.container.name, mount.mount.destination, mount.fixes[0].id)
    return shell_word(mount.mount.source)


def build_app(args: argparse.Namespace) -> SocktuiApp:
    """The app as ``socktui`` starts it: the terminal's encoding decides ASCII, the user's settings the theme."""
    options = Options(
        host=args.host,
        context=args.context,
        read_only=args.read_only,
        expected=tuple(args.expect),
        watch_dirs=tuple(os.path.abspath(d) for d in args.watch),
    )
    return SocktuiApp(
        make_session(options),
        ascii_only=not terminal_is_utf8(),
        theme=args.theme,
        settings=Settings.for_user(),
    )


def unknown_theme(name: str | None) -> str | None:
    """A sentence when ``--theme NAME`` names no theme, listing those there are."""
    from textual.theme import BUILTIN_THEMES

    if name is None or name in BUILTIN_THEMES:
        return None
    return f"socktui: no theme {name!r}; choose one of: {', '.join(sorted(BUILTIN_THEMES))}"


def run_app(args: argparse.Namespace) -> int:
    problem = unknown_theme(args.theme)
    if problem:
        print(printable(problem), file=sys.stderr)
        return 2
    app = build_app(args)
    app.run(mouse=not args.no_mouse)
    return app.return_code or 0
