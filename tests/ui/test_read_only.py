"""--read-only in the TUI, for every fix that changes something: `f` refuses, no fix screen, no container action."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from socktui.fixes import FIXES, offers
from socktui.model import CheckReport, ContainerReport, ContainerSpec, EngineInfo, MountReport, MountSpec, Role, Verdict
from socktui.session import Options
from socktui.ui.app import SocktuiApp
from socktui.ui.screens import FixScreen
from socktui.ui.widgets import EventLog, MountTable

INFO = EngineInfo(endpoint="unix:///fake.sock", local=True, version="test")
CHANGING = sorted({f.id for f in FIXES if f.changes})


class RecordingEngine:
    endpoint = SimpleNamespace(url=INFO.endpoint, source="test", local=True)

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def stop(self, container_id: str, timeout: int = 10) -> None:
        self.calls.append(("stop", container_id))

    def start(self, container_id: str) -> None:
        self.calls.append(("start", container_id))

    def restart(self, container_id: str, timeout: int = 10) -> None:
        self.calls.append(("restart", container_id))


def _mount(destination: str, verdict: Verdict) -> MountReport:
    spec = MountSpec("bind", f"/srv{destination}", destination, from_binds=True)
    return MountReport(
        spec, Role.SOCKET, verdict, f"{verdict.value} for the test", fixes=offers(verdict, spec, Role.SOCKET)
    )


MOUNTS = (
    _mount("/run/a.sock", Verdict.SHADOWED),
    _mount("/run/b.sock", Verdict.STALE),
    _mount("/run/c.sock", Verdict.DETACHED),
    _mount("/run/d.sock", Verdict.UNSTARTABLE),
)


class ReadOnlySession:
    """What the App and its Monitor read from a Session (live=False), with read-only set."""

    options = Options(read_only=True)

    def __init__(self) -> None:
        self.engine = RecordingEngine()
        container = ContainerSpec(id="c" * 64, name="web", state="running", image="img", pid=1, inspected=True)
        self.report = CheckReport(INFO, (ContainerReport(container, MOUNTS),))

    def full_check(self, cancel: object = None, on_listed: Any = None) -> CheckReport:
        return self.report

    def snapshot(self) -> CheckReport:
        return self.report

    def counts(self) -> tuple[int, int, int, Verdict | None]:
        return 1, 4, 4, Verdict.SHADOWED


def test_the_mounts_offer_every_fix_that_changes_something() -> None:
    assert {f.id for m in MOUNTS for f in m.fixes if f.destructive} == set(CHANGING)


@pytest.mark.parametrize("row", range(len(MOUNTS)), ids=[m.verdict.value for m in MOUNTS if m.verdict])
async def test_read_only_refuses_f_for_every_fix(row: int) -> None:
    session = ReadOnlySession()
    app = SocktuiApp(session, live=False)  # type: ignore[arg-type]
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(200):
            await pilot.pause(0.01)
            if app.report is not None and app.query_one(MountTable).row_count == len(MOUNTS):
                break
        assert app.report is not None
        table = app.query_one(MountTable)
        table.move_cursor(row=row, animate=False)
        await pilot.pause()
        picked = app.selected_mount()
        assert picked is not None and picked[1] is MOUNTS[row]
        await pilot.press("f")
        for _ in range(200):
            if any("fix refused: read-only mode" in strip.text for strip in app.query_one(EventLog).lines):
                break
            await pilot.pause(0.01)
        else:
            raise AssertionError("no refusal in the log")
        # Logged by the very handler that would have opened the fix screen: it did not.
        assert not isinstance(app.screen, FixScreen) and not app.screen_stack[1:]
    assert session.engine.calls == []
