"""The last step before the terminal (socktui.ui.terminal): the locale decision and the line filters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.color import Color

from socktui.ui.terminal import AsciiFilter, ControlFilter, deciding_locale, locale_is_utf8

BLACK = Color(0, 0, 0)


@pytest.mark.parametrize(
    ("env", "coerced", "utf8"),
    [
        ({"LANG": "en_US.UTF-8"}, False, True),
        ({"LANG": "C.utf8"}, False, True),
        ({"LANG": "de_DE.utf-8@euro"}, False, True),
        ({"LANG": "C"}, False, False),
        ({"LANG": "en_US.ISO-8859-1"}, False, False),
        ({"LC_ALL": "C", "LANG": "en_US.UTF-8"}, False, False),  # LC_ALL decides
        ({"LC_CTYPE": "en_US.UTF-8", "LANG": "C"}, False, True),  # then LC_CTYPE
        ({}, False, False),
        # Python found LANG=C and put LC_CTYPE=C.UTF-8 there itself (PEP 538): the user's locale is still C
        ({"LC_CTYPE": "C.UTF-8", "LANG": "C"}, True, False),
        ({"LC_CTYPE": "C.UTF-8"}, True, False),
        # ... but a user who sets LC_CTYPE=C.UTF-8 means it
        ({"LC_CTYPE": "C.UTF-8", "LANG": "C"}, False, True),
    ],
)
def test_the_locale_decides_like_tmux(env: dict[str, str], coerced: bool, utf8: bool) -> None:
    assert locale_is_utf8(env, coerced=coerced) is utf8


def test_the_deciding_variable_is_named() -> None:
    assert deciding_locale({"LC_CTYPE": "C.UTF-8", "LANG": "C"}, coerced=True) == ("LANG", "C")
    assert deciding_locale({}, coerced=False) == ("", "")


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_ascii_keeps_every_cell_where_it_was(texts: list[str]) -> None:
    segments = [Segment(t, Style(bold=True)) for t in texts]
    out = AsciiFilter().apply(segments, BLACK)
    assert all(seg.text.isascii() for seg in out)
    assert [cell_len(seg.text) for seg in out] == [cell_len(t) for t in texts]
    assert [seg.style for seg in out] == [seg.style for seg in segments]


def test_ascii_draws_boxes_and_glyphs_as_their_look_alikes() -> None:
    (line,) = AsciiFilter().apply([Segment("╭─ events ─╮│→·…中é")], BLACK)
    assert line.text == "+- events -+|>|.???"


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_no_raw_control_character_survives(texts: list[str]) -> None:
    out = ControlFilter().apply([Segment(t) for t in texts], BLACK)
    for seg in out:
        assert not any(0 <= ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in seg.text)
        assert not any(ch in seg.text for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert [cell_len(seg.text) for seg in out] == [cell_len(t) for t in texts]
