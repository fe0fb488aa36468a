"""SVG snapshots of the plumbing picture in the mount detail pane, one per verdict, at 80x24.

Deterministic: no daemon (a fake session hands the app the hand-built world of ``tests/plumbing_world.py``), a
fixed size, the UI's clock frozen and read as UTC, box characters forced (the terminal's encoding would otherwise
choose). One more snapshot shows the ASCII picture a terminal that is not UTF-8 gets.

Regenerate after an intended change with ``pytest tests/ui/test_picture_snapshots.py --snapshot-update`` and look
at the SVGs under ``tests/ui/__snapshots__/test_picture_snapshots/`` before committing them.
"""

from __future__ import annotations

import time as real_time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from textual.pilot import Pilot

import plumbing_world as world
from socktui.explain import ASCII, UNICODE, Charset
from socktui.model import CheckReport, Verdict
from socktui.session import Options
from socktui.ui import picture, widgets
from socktui.ui.app import SocktuiApp
from socktui.ui.widgets import ContainerList, MountInfo

SIZE = (80, 24)


@dataclass
class WorldSession:
    """What the app reads from a Session, and nothing more: rendering is what is under test."""

    report: CheckReport = field(default_factory=world.report)
    options: Options = field(default_factory=Options)
    engine: Any = field(
        default_factory=lambda: SimpleNamespace(endpoint=SimpleNamespace(url=world.ENGINE.endpoint, source="--host"))
    )

    def full_check(self, cancel: object = None, on_listed: object = None) -> CheckReport:
        return self.report

    def snapshot(self) -> CheckReport:
        return self.report

    def counts(self) -> tuple[int, int, int, Verdict | None]:
        containers = self.report.containers
        worst = max((c.worst for c in containers if c.worst), key=lambda v: v.severity, default=None)
        problems = sum(c.problems for c in containers)
        return len(containers), sum(len(c.socket_mounts) for c in containers), problems, worst

    def versions(self) -> dict[str, int]:
        return {}

    def watched_paths(self) -> set[str]:
        return set()

    def socket_dirs(self) -> set[str]:
        return set()

    def listener_pids(self) -> set[int]:
        return set()

    def live_socket_paths(self) -> set[str]:
        return set()


class FrozenClock:
    """Stands in for the ``time`` module inside ``socktui.ui.widgets``: always FROZEN, always UTC."""

    @staticmethod
    def localtime(seconds: float | None = None) -> real_time.struct_time:
        return real_time.gmtime(world.FROZEN if seconds is None else seconds)

    @staticmethod
    def strftime(fmt: str, when: real_time.struct_time | None = None) -> str:
        return real_time.strftime(fmt, when if when is not None else real_time.gmtime(world.FROZEN))


@pytest.fixture(autouse=True)
def deterministic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(widgets, "time", FrozenClock)
    monkeypatch.setattr(picture, "terminal_charset", lambda: UNICODE)
    monkeypatch.setenv("TZ", "UTC")  # the reasons, made when the world is built, read local time
    real_time.tzset()
    yield
    monkeypatch.undo()
    real_time.tzset()


def select(name: str) -> Callable[[Pilot[Any]], Any]:
    container, _ = world.cases()[name]

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, SocktuiApp)
        table = app.query_one(ContainerList)
        deadline = real_time.monotonic() + 5
        while not (app.report is not None and container.id in table.rows):
            assert real_time.monotonic() < deadline, "the rows never came"
            await pilot.pause(0.02)
        table.move_cursor(row=table.get_row_index(container.id), animate=False)
        while app.selected_id != container.id:
            assert real_time.monotonic() < deadline, "the selection never moved"
            await pilot.pause(0.02)
        await pilot.pause()

    return run_before


def shown(app: SocktuiApp) -> str:
    return str(app.query_one(MountInfo).render())


@pytest.mark.parametrize("name", world.VERDICT_CASES)
def test_the_picture_of_each_verdict_at_80x24(name: str, snap_compare: Any) -> None:
    assert snap_compare(SocktuiApp(WorldSession(), live=False), terminal_size=SIZE, run_before=select(name))  # type: ignore[arg-type]


def test_the_ascii_picture_for_a_terminal_that_is_not_utf8(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(picture, "terminal_charset", lambda: ASCII)
    assert snap_compare(SocktuiApp(WorldSession(), live=False), terminal_size=SIZE, run_before=select("detached"))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", world.VERDICT_CASES)
async def test_the_whole_picture_is_on_screen_at_80x24(name: str) -> None:
    # The snapshots are read by eye; this says in words what they must show: every line of the picture, unscrolled.
    container, mount = world.cases()[name]
    app = SocktuiApp(WorldSession(), live=False)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await select(name)(pilot)
        expected = [line.text for line in picture_lines(mount, container)]
        visible = app.query_one("#info-scroll").scrollable_content_region.height
        text_lines = shown(app).splitlines()
        assert text_lines[1 : 1 + len(expected)] == expected
        assert 1 + len(expected) <= visible


def picture_lines(mount: Any, container: Any, charset: Charset = UNICODE) -> Any:
    from socktui.explain import picture as draw

    return draw(mount, container, charset=charset, clock=lambda t: real_time.strftime("%H:%M:%S", real_time.gmtime(t)))
