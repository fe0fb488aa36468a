"""What the terminal can take: UTF-8 or not, colour or not. The last step before bytes reach it.

Three line filters run on every line any widget draws (Textual's own widgets too):

- ``ControlFilter`` always: no raw control character (C0, C1, ESC, DEL, bidi controls) ever reaches the terminal.
  Text from outside is already shown escaped (``socktui.text.printable``); this is the net under it.
- ``AsciiFilter`` when the locale is not UTF-8: box drawing becomes ``+-|``, a few glyphs their ASCII look-alikes,
  anything else ``?`` (cell for cell, so the layout stays put).
- Textual's ``NoColor`` instead of its ``Monochrome`` under ``NO_COLOR``: Monochrome still paints greys; NoColor
  leaves every colour to the terminal (SGR 39/49), as https://no-color.org asks.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

from rich.cells import cell_len
from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

from ..text import printable

# The characters Python's UTF-8 coercion of a C/POSIX locale puts into LC_CTYPE (PEP 538).
_COERCED_CTYPES = {"C.UTF-8", "C.utf8", "UTF-8"}

RAW_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def deciding_locale(env: Mapping[str, str] | None = None, *, coerced: bool | None = None) -> tuple[str, str]:
    """The variable that decides the terminal's character set and its value: LC_ALL, else LC_CTYPE, else LANG (as
    tmux decides); ``("", "")`` when none is set.

    When Python found a C or POSIX locale at start-up it switched itself to UTF-8 (PEP 538/540) and wrote
    ``LC_CTYPE=C.UTF-8`` into the environment: that value is Python's, not the user's, so it is skipped.
    """
    env = os.environ if env is None else env
    if coerced is None:
        coerced = bool(sys.flags.utf8_mode) and "PYTHONUTF8" not in env and "utf8" not in sys._xoptions
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = env.get(name, "")
        if name == "LC_CTYPE" and coerced and value in _COERCED_CTYPES:
            continue
        if value:
            return name, value
    return "", ""


def locale_is_utf8(env: Mapping[str, str] | None = None, *, coerced: bool | None = None) -> bool:
    """Whether the user's locale says the terminal speaks UTF-8 (``en_US.UTF-8``, ``C.utf8``)."""
    _, value = deciding_locale(env, coerced=coerced)
    codeset = value.partition(".")[2].partition("@")[0].lower().replace("-", "")
    return codeset == "utf8"


def stream_is_utf8(stream: object) -> bool:
    encoding = getattr(stream, "encoding", None) or ""
    return encoding.lower().replace("-", "").replace("_", "") == "utf8"


def terminal_is_utf8() -> bool:
    """UTF-8 only when the locale says so and the stream Textual writes to (stderr) encodes it."""
    return locale_is_utf8() and stream_is_utf8(sys.__stderr__)


def not_utf8_sentence() -> str:
    name, value = deciding_locale()
    chosen = f"{name}={value}" if name else "none of LC_ALL, LC_CTYPE, LANG is set"
    return (
        f"the terminal's locale is not UTF-8 ({printable(chosen)}): drawing with ASCII; "
        "for the full picture use a UTF-8 locale, e.g. LANG=C.UTF-8"
    )


class ControlFilter(LineFilter):
    """Drops raw control characters from what is drawn; they take no cell, so the layout stays put."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        search = RAW_CONTROLS.search
        if not any(search(text) for text, _, control in segments if not control):
            return segments
        return [
            seg if seg.control else Segment(RAW_CONTROLS.sub("", seg.text), seg.style, seg.control) for seg in segments
        ]


# Box drawing, blocks and the few glyphs socktui and Textual draw, as ASCII of the same width.
_LOOKALIKES = {
    "→": ">",
    "←": "<",
    "↑": "^",
    "↓": "v",
    "·": "|",
    "…": ".",
    "•": "*",
    "●": "*",
    "▶": ">",
    "▸": ">",  # a folded compose project
    "▾": "v",  # an unfolded one
    "◀": "<",
    "❯": ">",
    "✓": "v",
    "✔": "v",
    "✗": "x",
    "✕": "x",
    "×": "x",
    "–": "-",
    "—": "-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
}


@lru_cache(4096)
def ascii_cell(ch: str) -> str:
    """One character as ASCII occupying the same number of cells."""
    if ch in _LOOKALIKES:
        return _LOOKALIKES[ch]
    code = ord(ch)
    if 0x2500 <= code <= 0x257F:  # box drawing: by what the name says it joins
        name = unicodedata.name(ch, "")
        horizontal = "HORIZONTAL" in name or "LEFT" in name or "RIGHT" in name
        vertical = "VERTICAL" in name or "UP" in name or "DOWN" in name
        if horizontal and vertical or "ARC" in name:
            return "+"
        if "DIAGONAL" in name:
            return "/" if "UPPER RIGHT TO LOWER LEFT" in name else "\\"
        return "|" if vertical else "-"
    if 0x2580 <= code <= 0x259F:  # block elements: half blocks of tall/wide borders, scrollbar ends, shading
        name = unicodedata.name(ch, "")
        if "LEFT" in name or "RIGHT" in name:
            return "|"
        if "UPPER" in name or "LOWER" in name:
            return "-" if "EIGHTH" in name or "HALF" in name else " "
        return " "
    return "?" * cell_len(ch)


class AsciiFilter(LineFilter):
    """For a terminal that is not UTF-8: every cell drawn as ASCII."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        if all(text.isascii() for text, _, _ in segments):
            return segments
        return [
            seg
            if seg.control or seg.text.isascii()
            else Segment("".join(ch if ch.isascii() else ascii_cell(ch) for ch in seg.text), seg.style, None)
            for seg in segments
        ]
