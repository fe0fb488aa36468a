"""The first look: containers appear in engine order (checking…), then the cursor lands on the worst problem."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from socktui.model import CheckReport, ContainerReport, ContainerSpec, EngineInfo, MountReport, MountSpec, Role, Verdict
from socktui.session import Options
from socktui.ui.app import SocktuiApp
from socktui.ui.widgets import ContainerList

INFO = EngineInfo(endpoint="unix:///fake.sock", local=True, version="27.0")


def _report(cid: str, verdict: Verdict) -> ContainerReport:
    spec = ContainerSpec(id=cid * 12, name=f"c-{cid}", state="running", image="img")
    mount = MountReport(MountSpec("bind", f"/s/{cid}.sock", "/run/x.sock"), Role.SOCKET, verdict, "because")
    return ContainerReport(spec, (mount,))


class ListingSession:
    """Calls on_listed with the healthy container first, as an engine's list order may well be."""

    options = Options()
    engine: Any = SimpleNamespace(endpoint=SimpleNamespace(url=INFO.endpoint, source="test"))

    def __init__(self) -> None:
        self.report = CheckReport(INFO, (_report("a", Verdict.LIVE), _report("b", Verdict.SHADOWED)))

    def full_check(self, cancel: object = None, on_listed: Any = None) -> CheckReport:
        if on_listed is not None:
            on_listed(INFO, [c.container for c in self.report.containers])
        return self.report

    def snapshot(self) -> CheckReport:
        return self.report

    def counts(self) -> tuple[int, int, int, Verdict | None]:
        return 2, 2, 1, Verdict.SHADOWED

    def versions(self) -> dict[str, int]:
        return {}


async def test_after_the_first_look_the_cursor_is_on_the_worst_problem() -> None:
    app = SocktuiApp(ListingSession(), live=False)  # type: ignore[arg-type]
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(100):
            await pilot.pause(0.02)
            if app.report is not None:
                break
        await pilot.pause(0.1)
        table = app.query_one(ContainerList)
        assert table.cursor_row == 0
        assert app.selected_id == "b" * 12  # shadowed sorts first and is selected, not the first one listed
