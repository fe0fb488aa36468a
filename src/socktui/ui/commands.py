"""Every command declared once: its key, footer label, help text. Bindings, the palette and the help screen derive
from this table, so they cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Command:
    key: str
    action: str
    label: str
    help: str
    show: bool = True
    key_display: str | None = None


COMMANDS: tuple[Command, ...] = (
    Command("t", "test_connect", "Test", "Test connect to the selected mount from the host and the container's view"),
    Command("f", "fix", "Fix", "Fixes for the selected mount: list, preview the exact steps, confirm, apply"),
    Command("c", "copy_command", "Copy", "Copy the suggested command for the selected mount (OSC 52, works over ssh)"),
    Command(
        "slash", "filter", "Filter", "Filter the container list by name, project, image or verdict", key_display="/"
    ),
    Command("a", "toggle_all", "All mounts", "Show every mount, not only the socket-relevant ones"),
    Command("r", "recheck", "Re-check", "Look at everything again now"),
    Command("question_mark", "help", "Help", "Show the keys and what the verdicts mean", key_display="?"),
    Command("q", "quit", "Quit", "Quit socktui"),
    Command("j", "cursor_down", "Down", "Move down", show=False),
    Command("k", "cursor_up", "Up", "Move up", show=False),
)

NAVIGATION_HELP: tuple[tuple[str, str], ...] = (
    ("↑ ↓  j k", "Move in the focused list"),
    ("Tab", "Switch pane: containers, mounts, log"),
    ("Esc", "Clear the filter, close a dialog, go back"),
    ("ctrl+p", "Command palette: every command by name"),
)


def bindings() -> list[Binding | tuple[str, str] | tuple[str, str, str]]:
    return [Binding(c.key, c.action, c.label, show=c.show, key_display=c.key_display) for c in COMMANDS]
