"""Text from outside, made safe to show.

Paths, container names, labels, images, command lines, server replies and engine messages are written by whoever
controls a container, a shared directory or the engine. Shown raw, an ``ESC ] 52`` in a socket name writes the
admin's clipboard, an ``ESC ] 0`` sets the window title, a newline forges a line of a fix plan, and a bidi override
reverses what the eye reads. Everything from outside goes through :func:`printable` before it reaches a terminal;
the TUI additionally never lets such text be parsed as markup (``socktui.ui.widgets.outside``).
"""

from __future__ import annotations

# Not printable by str.isprintable's definition, which is what decides: the categories Cc (C0, C1, DEL), Cf (bidi
# overrides and isolates, zero-width joiners, the BOM), Cs (lone surrogates from undecodable bytes), Co, Cn, and
# every separator but the plain space (line and paragraph separators, no-break and other odd spaces).


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in "\n\t\r":
        return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}[ch]
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped (``\\x1b``, ``\\n``, ``\\u202e``): one line, inert."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def printable_lines(text: str) -> str:
    """Like :func:`printable`, but keeps the line breaks of a message socktui itself laid out on several lines."""
    return "\n".join(printable(line) for line in text.split("\n"))


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """A count in words: '1 container', '2 containers', '0 problems'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
