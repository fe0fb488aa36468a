"""socktui.text.printable: text from outside, shown inert on one line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from socktui.text import printable, printable_lines


def test_the_bytes_an_attacker_uses_are_escaped() -> None:
    assert printable("a\x1b]0;title\x07b") == "a\\x1b]0;title\\x07b"  # window title
    assert printable("\x1b]52;c;eA==\x07") == "\\x1b]52;c;eA==\\x07"  # clipboard
    assert printable("x\x9b31my") == "x\\x9b31my"  # C1 CSI
    assert printable("\x7f") == "\\x7f"
    assert printable("abc\u202edef\u2066") == "abc\\u202edef\\u2066"  # bidi override and isolate
    assert printable("a\u2028b\u200bc") == "a\\u2028b\\u200bc"  # line separator, zero-width space
    assert printable("bad\udcff") == "bad\\udcff"  # an undecodable byte
    assert printable("a\nb\r\tc") == "a\\nb\\r\\tc"


def test_printable_text_and_markup_pass_unchanged() -> None:
    # Escaping markup is the UI's business (it never parses outside text as markup); here it is just text.
    for text in ("/run/app.sock", "[@click=app.quit]q[/]", "café ☃ 中文", "a b", "back\\slash"):
        assert printable(text) == text


def test_printable_lines_keeps_only_the_line_breaks() -> None:
    assert printable_lines("first \x1b]0;t\x07\nsecond\t") == "first \\x1b]0;t\\x07\nsecond\\t"


@given(st.text())
def test_whatever_the_text_the_result_is_one_printable_line(text: str) -> None:
    shown = printable(text)
    assert shown.isprintable()
    assert printable(shown) == shown
    assert all(line.isprintable() for line in printable_lines(text).split("\n"))
