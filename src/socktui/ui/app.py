"""The socktui app: a thin view over the Monitor's updates. Every engine call, probe and fix runs in a thread worker."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.filter import LineFilter, Monochrome, NoColor
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from ..compose import compose_of
from ..connect import probe_text, send_line, test_connect
from ..fixes import DEFAULT_WAIT_SECONDS, FixResult, plan_fix
from ..live import Counts, LookKind, Monitor, Update
from ..model import CheckReport, ContainerReport, EngineInfo, MountReport
from ..session import Change, Options, Session, make_session
from ..settings import Settings
from ..text import counted, printable, printable_lines
from .commands import COMMANDS, bindings
from .messages import LogLine, Updated
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


class SocktuiApp(App[int]):
    CSS_PATH = "socktui.tcss"
    TITLE = "socktui"
    BINDINGS = bindings()
    BADGE = ""
    """A word shown first in the top bar, reversed (the demo's DEMO): first, so a narrow terminal still shows it."""

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
        self.monitor = Monitor(session, live=live, wait_for_screen=True)
        """The one owner of the live loop: it looks, follows every change and hands the screen an Update."""
        self.report: CheckReport | None = None
        self.counts = Counts()
        self.engine_down: str | None = None
        self.last_tests: dict[tuple[str, str], str] = {}
        self._mounts_title: Text | None = None

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
            self.post_message(LogLine(problem, "bold"))

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
        self.run_monitor()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for c in COMMANDS:
            if c.show:
                yield SystemCommand(c.label, c.help, self._runner(c.action))

    def _runner(self, action: str) -> Callable[[], object]:
        return lambda: self.run_action(action)

    # ------------------------------------------------------------------ the live loop
    @work(thread=True, exclusive=True, group="monitor", exit_on_error=False)
    def run_monitor(self) -> None:
        """The App's one live worker: the Monitor looks, follows every change, and hands over each Update."""
        worker = get_current_worker()
        self.monitor.run(worker.cancelled_event, self.post_update)

    def post_update(self, update: Update) -> None:
        """Called on the Monitor's thread: ``post_message`` is thread-safe."""
        self.post_message(Updated(update))

    def _torn_down(self) -> bool:
        """The screen's widgets are gone (the app is closing): a message still queued has nothing to draw on."""
        return not self.query(ContainerList)

    def on_updated(self, message: Updated) -> None:
        if self._torn_down():
            return
        update = message.update
        self.counts = update.counts
        if update.engine_problem:
            self.show_engine_problem(update.engine_problem)
        for change in update.log:
            self.log_change(change)
        if update.look is LookKind.LISTED:
            self.show_listed(update.report)
        elif update.look is LookKind.FULL:
            self.show_look(update.report)
        elif update.changed or update.removed:
            self.show_changes(update)
        if update.engine_back:
            self.engine_recovered()

    def show_listed(self, report: CheckReport) -> None:
        if self.report is not None:
            return  # the full look won the race: nothing provisional to show
        pending = CheckReport(
            engine=report.engine, containers=tuple(replace(c, note=CHECKING) for c in report.containers)
        )
        self.update_topbar(pending, checking=True)
        self.query_one(ContainerList).show(pending.containers, self.needle)
        self.call_after_refresh(self.monitor.listed_shown.set)

    def show_look(self, report: CheckReport) -> None:
        first = self.report is None
        self.report = report
        self.refresh_view()
        if first:
            for note in report.notes:
                self.log_line(f"note: {note}", style="bold")
            # The provisional list was in engine order; once the verdicts are in, start on the worst problem.
            table = self.query_one(ContainerList)
            if table.row_count:
                table.move_cursor(row=table.first_container_row(), animate=False)
                self.selected_id = table.selected_id
                self.show_detail()
                self.query_one(MountTable).move_cursor(row=self.worst_mount_row(), animate=False)
                self.show_mount_info()
        problems = sum(c.problems for c in report.containers)
        count = len(report.containers)
        self.log_line(f"checked {counted(count, 'container')}: {counted(problems, 'problem')}")

    def show_changes(self, update: Update) -> None:
        self.report = report = update.report
        current = {c.container.id: c for c in report.containers}
        touched = [current[cid] for cid in update.changed if cid in current]
        gone = [cid for cid in update.removed | update.changed if cid not in current]
        self.update_topbar(report)
        table = self.query_one(ContainerList)
        table.update_rows(touched, gone, self.needle)
        if table.selected_id != self.selected_id:
            self.selected_id = table.selected_id
            self.show_detail()
        elif self.selected_id in update.changed:
            self.show_detail()

    def show_engine_problem(self, problem: str) -> None:
        self.engine_down = problem
        banner = self.query_one("#banner", Static)
        # "Retrying" first: at 80 columns the wrapped advice may not all fit, and that line must always show.
        banner.update(Text(printable_lines(f"Retrying in the background. {problem}"), style="bold"))
        banner.display = True

    def engine_recovered(self) -> None:
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
        tail = "  read-only" if self.session.options.read_only else ""
        badge = Text.assemble((self.BADGE, "bold reverse"), " ") if self.BADGE else Text()
        bar = self.query_one("#topbar", Static)
        width = bar.size.width or (self.size.width or 80) - 2  # the bar's own width, inside its padding
        # The totals give way before the engine's label does: it always names the product, version and endpoint.
        c = self.counts
        extras = [] if checking else [counted(c.containers, "container"), counted(c.mounts, "socket")]
        while True:
            text = Text("socktui ", style="bold")
            if checking:
                text.append(f"checking {counted(len(report.containers), 'container')}… · ")
            else:
                style = f"bold {verdict_color(self, c.worst)}" if c.problems else ""
                text.append(counted(c.problems, "problem"), style=style)
                text.append("".join(f" · {extra}" for extra in extras) + " · ")
            room = width - badge.cell_len - text.cell_len - len(tail)
            if not extras or room >= engine_label_least(report.engine):
                break
            extras.pop()
        text.append(engine_label(report.engine, max(room, 12)), style="dim")
        if tail:
            text.append(tail, style="bold")
        bar.update(Text.assemble(badge, text) if self.BADGE else text)

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
        if self._torn_down():
            return
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
        if self._torn_down():
            return
        self.show_mount_info()

    def watch_needle(self, needle: str) -> None:
        self.refresh_view()

    def watch_show_all(self, show_all: bool) -> None:
        self.show_detail()

    def log_line(self, text: str, style: str = "") -> None:
        self.query_one(EventLog).add(text, style)

    def on_log_line(self, message: LogLine) -> None:
        if self._torn_down():
            return
        self.log_line(message.text, message.style)

    def log_change(self, change: Change) -> None:
        style = f"bold {verdict_color(self, change.verdict)}" if change.verdict and not change.verdict.healthy else ""
        self.log_line(change.text, style or ("bold" if change.loud else ""))

    # ------------------------------------------------------------------ actions
    def action_recheck(self) -> None:
        self.log_line("re-checking everything")
        self.monitor.recheck_all()

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
            self.monitor.recheck_container(container_id)

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
        test = test_connect(report, mount)
        self.last_tests[(report.container.id, mount.mount.destination)] = " · ".join(test.lines)
        self.post_message(LogLine(f"test connect {test.target}: {probe_text(test.host)}"))
        self.call_from_thread(self._show_connect, f"Test connect: {report.container.name}", test.lines, test.target)

    def _show_connect(self, title: str, lines: list[str], target: str) -> None:
        self.show_mount_info()
        self.push_screen(ConnectScreen(title, lines, target, send_line))

    def on_unmount(self) -> None:
        self.monitor.stop()


ENDPOINT_LEAST = 14  # the end of an endpoint that still tells it apart: "…n/docker.sock", "…st.lan:2376"


def engine_label_least(engine: EngineInfo) -> int:
    """The columns :func:`engine_label` needs to show the endpoint at all (its end, at least)."""
    head = f"{engine.product.display} {printable(engine.version.split('+')[0]) or '?'}"
    context = f" · context {printable(engine.context)}" if engine.context else ""
    return len(head) + len(context) + 1 + min(ENDPOINT_LEAST, len(printable(engine.endpoint.removeprefix("unix://"))))


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


def build_app(args: argparse.Namespace, session: Session | None = None) -> SocktuiApp:
    """The app as ``socktui`` starts it: the terminal's encoding decides ASCII, the user's settings the theme."""
    return SocktuiApp(
        session or make_session(Options.from_args(args)),
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


def run_app(args: argparse.Namespace, session: Session | None = None) -> int:
    problem = unknown_theme(args.theme)
    if problem:
        print(printable(problem), file=sys.stderr)
        return 2
    app = build_app(args, session)
    app.run(mouse=not args.no_mouse)
    return app.return_code or 0
