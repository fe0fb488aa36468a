"""Modal screens: help, the fix flow (list → plan → confirm → progress → result) and test connect."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ..fixes import ContainerActions, FixResult, Plan, Status, StepResult, apply_plan, render_plan
from ..model import ProbeResult, Verdict
from ..text import printable, printable_lines
from .commands import COMMANDS, NAVIGATION_HELP
from .widgets import outside

VERDICT_HELP = (
    (Verdict.LIVE, "the socket accepts connections and the container sees the same inode"),
    (Verdict.OK, "a shared directory whose sockets are all live"),
    (Verdict.SHADOWED, "a directory stands where the socket should be (Docker made it for a -v mount)"),
    (Verdict.STALE, "a socket file nobody listens on: the server died without removing it"),
    (Verdict.DETACHED, "the container still holds an old inode: the server re-created its socket"),
    (Verdict.MISSING, "nothing at the host path"),
    (Verdict.DENIED, "the container's user may not connect (write on the socket, search on directories)"),
    (Verdict.NOT_SOCKET, "a file, FIFO, device or symlink where a socket is expected"),
    (Verdict.UNSTARTABLE, "docker start fails: its own layer has a directory where the socket goes"),
    (Verdict.UNKNOWN, "cannot be checked from here; the reason says what would allow it"),
)


CHOOSE_TITLE = "Fixes for this mount (Enter to preview, Esc to close)"


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("Keys\n", style="bold")
        for key, what in NAVIGATION_HELP:
            text.append(f"  {key:<10}", style="bold")
            text.append(f"{what}\n")
        for c in COMMANDS:
            if c.show:
                text.append(f"  {c.key_display or c.key:<10}", style="bold")
                text.append(f"{c.help}\n")
        text.append("\nVerdicts\n", style="bold")
        for verdict, meaning in VERDICT_HELP:
            text.append(f"  {verdict.value:<12}", style="bold")
            text.append(f"{meaning}\n")
        with VerticalScroll(id="help-body", classes="dialog"):
            yield Static(text)
            yield Static(Text("Esc closes"), classes="hint")


FIX_LEGEND = "LIVE changes things, the containers keep running · STOPS stops or restarts them · advice: a snippet"


def _effect(plan: Plan) -> str:
    """What choosing the fix does to the containers, in one word for the list."""
    if not plan.changes:
        return "advice"
    return "LIVE" if plan.keeps_running else "STOPS"


class FixScreen(ModalScreen[FixResult | None]):
    """Pick a fix, read its exact plan, confirm with y, watch it run. Esc backs out (or cancels a wait)."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("y", "confirm", "Apply", show=False),
        Binding("n", "back", "No", show=False),
        Binding("c", "copy", "Copy", show=False),
    ]

    @dataclass
    class Progress(Message):
        step: StepResult

    @dataclass
    class Finished(Message):
        result: FixResult

    def __init__(self, plans: list[Plan], read_only: bool, engine: ContainerActions, wait_seconds: float) -> None:
        super().__init__()
        self.plans = plans
        self.read_only = read_only
        self.engine = engine
        self.wait_seconds = wait_seconds
        self.plan: Plan | None = None
        self.stage = "choose"
        self.cancel = threading.Event()
        self.result: FixResult | None = None
        self.progress_lines: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="fix-body", classes="dialog"):
            yield Static(Text(CHOOSE_TITLE), id="fix-title")
            yield Static(Text(FIX_LEGEND), id="fix-hint")
            yield OptionList(
                *[Option(outside(f"{p.fix.id:<20} {_effect(p):<7}  {p.fix.title}"), id=p.fix.id) for p in self.plans],
                id="fix-options",
            )
            with VerticalScroll(id="fix-plan-scroll"):
                yield Static("", id="fix-plan")
                yield Static("", id="fix-progress")

    def on_mount(self) -> None:
        self.query_one("#fix-plan-scroll").display = False

    @on(OptionList.OptionSelected, "#fix-options")
    def preview(self, event: OptionList.OptionSelected) -> None:
        self.plan = next(p for p in self.plans if p.fix.id == event.option.id)
        self.stage = "preview"
        self.query_one("#fix-options").display = False
        self.query_one("#fix-plan-scroll").display = True
        self.query_one("#fix-title", Static).update(outside(f"Plan: {self.plan.fix.id}"))
        # The plan's own lines stay lines; everything in them that came from outside is escaped.
        self.query_one("#fix-plan", Static).update(Text(printable_lines(render_plan(self.plan))))
        hint = self.query_one("#fix-hint", Static)
        if self.plan.refusal:
            hint.update(Text("Cannot be applied. Esc goes back."))
        elif not self.plan.changes:
            hint.update(Text("Changes nothing. c copies the snippet, Esc goes back."))
        elif self.read_only:
            hint.update(Text("Read-only mode: fixes are shown, never run. Esc goes back."))
        else:
            hint.update(Text("Apply these steps? y applies, n or Esc goes back.", style="bold"))

    def action_confirm(self) -> None:
        plan = self.plan
        if self.stage != "preview" or plan is None or plan.refusal or not plan.changes:
            return
        if self.read_only:
            self.notify("Read-only mode: no change was made.", severity="warning", markup=False)
            self.dismiss(FixResult(plan, Status.REFUSED, "read-only mode: no change was made"))
            return
        self.stage = "running"
        self.query_one("#fix-hint", Static).update(Text("Running… Esc cancels a wait (steps already done stay done)."))
        self.query_one("#fix-progress", Static).update(Text("progress:"))
        self.run_fix(plan)

    @work(thread=True, exclusive=True, group="fix", exit_on_error=False)
    def run_fix(self, plan: Plan) -> None:
        def progress(step: StepResult) -> None:
            self.post_message(self.Progress(step))

        result = apply_plan(plan, self.engine, wait_seconds=self.wait_seconds, cancel=self.cancel, progress=progress)
        self.post_message(self.Finished(result))

    def on_fix_screen_progress(self, message: Progress) -> None:
        # One step, one line: a newline in a path inside the message cannot forge a "[done]" line.
        self.progress_lines.append(f"  [{'done' if message.step.ok else 'STOP'}] {printable(message.step.message)}")
        self.query_one("#fix-progress", Static).update(Text("progress:\n" + "\n".join(self.progress_lines)))
        self.query_one("#fix-plan-scroll", VerticalScroll).scroll_end(animate=False)

    def on_fix_screen_finished(self, message: Finished) -> None:
        self.result = message.result
        self.stage = "done"
        self.query_one("#fix-hint", Static).update(outside(f"{message.result.status}. Esc closes.", style="bold"))
        self.query_one("#fix-plan-scroll", VerticalScroll).scroll_end(animate=False)

    def action_copy(self) -> None:
        if self.plan is not None and self.plan.advice:
            self.app.copy_to_clipboard(self.plan.advice)
            self.notify("Copied to the clipboard (OSC 52).", markup=False)

    def action_back(self) -> None:
        if self.stage == "running":
            self.cancel.set()
            return
        if self.stage == "preview":
            self.stage = "choose"
            self.query_one("#fix-options").display = True
            self.query_one("#fix-plan-scroll").display = False
            self.query_one("#fix-title", Static).update(Text(CHOOSE_TITLE))
            self.query_one("#fix-hint", Static).update(Text(FIX_LEGEND))
            self.query_one("#fix-options").focus()
            return
        self.dismiss(self.result)


class ConnectScreen(ModalScreen[None]):
    """Test connect results, and a line to send to echo-style servers."""

    BINDINGS = [Binding("escape", "dismiss", "Close")]

    @dataclass
    class Reply(Message):
        probe: ProbeResult

    def __init__(
        self, title: str, lines: list[str], target: str, send_line: Callable[[str, bytes], ProbeResult]
    ) -> None:
        super().__init__()
        self.title_text = title
        self.lines = lines
        self.target = target
        self.send_line = send_line

    def compose(self) -> ComposeResult:
        with Vertical(id="connect-body", classes="dialog"):
            yield Static(outside(self.title_text, style="bold"))
            yield Static(Text("\n".join(printable(line) for line in self.lines)), id="connect-summary")
            yield Input(placeholder="type a line to send (Enter), Esc closes", id="connect-input")
            yield Static("", id="connect-reply")

    @on(Input.Submitted, "#connect-input")
    def submitted(self, event: Input.Submitted) -> None:
        self.query_one("#connect-reply", Static).update(Text("sending…"))
        self.exchange(event.value)

    @work(thread=True, exclusive=True, group="connect", exit_on_error=False)
    def exchange(self, line: str) -> None:
        probe = self.send_line(self.target, (line + "\n").encode())
        self.post_message(self.Reply(probe))

    def on_connect_screen_reply(self, message: Reply) -> None:
        p = message.probe
        if not p.ok:
            text = f"connect failed: {p.errno} ({p.detail})"
        elif p.reply is None:
            text = f"connected; {p.detail}"
        else:
            text = f"reply: {p.reply.rstrip()}"  # whatever the server sent, shown escaped on one line
        self.query_one("#connect-reply", Static).update(outside(text))
