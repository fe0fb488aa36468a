"""The plumbing picture (``socktui.explain``) as styled text for the mount detail pane.

The lines are the CLI's; only the styling is added here. Colour never carries the meaning alone: a broken link is
also a cross and a sentence.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.text import Text
from textual.app import App

from ..explain import ASCII, PANE_WIDTH, Charset, Clock, LineKind, charset_for, hhmmss, picture
from ..model import ContainerSpec, MountReport

# The detail pane is what the container list (45%, at least 36 columns) leaves, less border, padding and scrollbar.
_LEFT_SHARE, _LEFT_MIN, _CHROME = 0.45, 36, 6
_WIDEST = 72


def pane_width(app: App[Any]) -> int:
    """How wide the picture may be in the detail pane at the app's current size (never below the 80x24 width)."""
    total = app.size.width
    left = max(int(total * _LEFT_SHARE), _LEFT_MIN)
    return max(PANE_WIDTH, min(_WIDEST, total - left - _CHROME))


def terminal_charset() -> Charset:
    stream = sys.__stdout__
    return charset_for(getattr(stream, "encoding", None))


def plumbing_text(
    app: App[Any],
    mount: MountReport,
    container: ContainerSpec | None = None,
    *,
    clock: Clock = hhmmss,
    charset: Charset | None = None,
) -> Text:
    theme = app.current_theme
    styles = {
        LineKind.NODE: "",
        LineKind.LINK: "dim",
        LineKind.BROKEN: f"bold {theme.error or '#e0475b'}",
        LineKind.UNKNOWN: f"bold {theme.accent or '#5f87d7'}",
    }
    text = Text()
    if charset is None:  # the app knows when the terminal is not UTF-8 (ui.terminal), whatever stdout says
        charset = ASCII if getattr(app, "ascii_only", False) else terminal_charset()
    lines = picture(mount, container, width=pane_width(app), charset=charset, clock=clock)
    for line in lines:
        if line.kind is LineKind.NODE:
            label, _, rest = line.text.partition(" ")
            text.append(label, style="bold")
            text.append(line.text[len(label) : len(line.text) - len(rest)] + rest + "\n")
        else:
            text.append(line.text + "\n", style=styles[line.kind])
    return text
