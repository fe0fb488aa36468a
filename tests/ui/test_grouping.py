"""The container list grouped by compose project, and the top bar naming the engine, on the private daemon.

Containers carry the labels docker-compose 1.29.2 writes (tests/engine/test_compose_engine.py checks those against
the real tool), so a project is two containers here and a third container stands alone.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, TypeVar

import pytest
from rich.text import Text
from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import Input, Static

from harness import TRAP, ContainerFactory, Engine, SocketServers, until
from socktui.session import Options, make_session
from socktui.ui.app import SocktuiApp, engine_label
from socktui.ui.widgets import GROUP_PREFIX, ContainerList, MountInfo

pytestmark = pytest.mark.engine

T = TypeVar("T")


def compose_labels(project: str, service: str, where: Path) -> dict[str, str]:
    return {
        "com.docker.compose.project": project,
        "com.docker.compose.service": service,
        "com.docker.compose.version": "1.29.2",
        "com.docker.compose.project.working_dir": str(where),
        "com.docker.compose.project.config_files": "docker-compose.yml",
        "com.docker.compose.container-number": "1",
        "com.docker.compose.oneoff": "False",
    }


def row_keys(table: ContainerList) -> list[str]:
    return [str(table.coordinate_to_cell_key(Coordinate(i, 0)).row_key.value) for i in range(table.row_count)]


def cell(table: ContainerList, key: str, column: str) -> str:
    value = table.get_cell(key, column)
    return value.plain if isinstance(value, Text) else str(value)


async def move_to(pilot: Pilot[Any], table: ContainerList, key: str) -> None:
    target = table.get_row_index(key)
    press = "down" if target > table.cursor_row else "up"
    for _ in range(abs(target - table.cursor_row)):
        await pilot.press(press)
    await until(pilot, lambda: table.cursor_row == target, f"the cursor on {key}")


async def test_containers_are_grouped_by_project_with_its_worst_verdict_and_fold(
    engine: Engine, containers: ContainerFactory, sockserver: SocketServers, d: Path
) -> None:
    project = f"st{uuid.uuid4().hex[:8]}"
    (d / "x.sock").write_text("not a socket\n")
    server = sockserver.start(d / "db.sock")
    web = containers.run(
        name=f"{project}_web_1",
        command=TRAP,
        binds=[f"{d / 'x.sock'}:/run/x.sock"],
        labels=compose_labels(project, "web", d),
    )
    db = containers.run(
        name=f"{project}_db_1",
        command=TRAP,
        binds=[f"{server.path}:/run/db.sock"],
        labels=compose_labels(project, "db", d),
    )
    lone = containers.run(name=f"{project}-lone", command=TRAP, binds=[f"{server.path}:/run/db.sock"])

    app = SocktuiApp(make_session(Options(host=engine.host)), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(ContainerList)
        group = GROUP_PREFIX + project
        await until(pilot, lambda: app.report is not None and group in table.rows and web in table.rows, "the list")

        # The project row carries its worst verdict; its containers follow it, worst first; the lone one is apart.
        keys = row_keys(table)
        assert keys.index(group) + 1 == keys.index(web) and keys.index(web) + 1 == keys.index(db), keys
        assert cell(table, group, "verdict").strip() == "not-socket"
        assert cell(table, group, "name").startswith(f"▾ {project} (2)")
        assert cell(table, web, "name").startswith(f"  {project}_web_1 web")
        assert cell(table, lone, "verdict").strip() == "live"
        assert keys.index(lone) > keys.index(db), "a healthy lone container sorts after the project with a problem"

        # On the project row: its summary, with the compose that made it.
        await move_to(pilot, table, group)
        info = str(app.query_one(MountInfo).content)
        assert f"compose project {project}" in info and "docker-compose in" in info and "-f " in info

        # Enter folds it (its containers leave the list), and unfolds it again.
        await pilot.press("enter")
        await until(pilot, lambda: web not in table.rows and db not in table.rows, "the project folded")
        assert cell(table, group, "name").startswith(f"▸ {project} (2)")
        assert table.cursor_row == table.get_row_index(group)
        await pilot.press("enter")
        await until(pilot, lambda: web in table.rows and db in table.rows, "the project unfolded")

        # `/` still filters: by service name, the project keeps only the match; by project, all of it.
        await pilot.press("slash")
        await pilot.press(*"_db_")
        await until(pilot, lambda: web not in table.rows and db in table.rows and lone not in table.rows, "filtered")
        assert cell(table, group, "name").startswith(f"▾ {project} (1)")
        app.query_one("#filter", Input).value = project
        await until(pilot, lambda: web in table.rows and db in table.rows and lone in table.rows, "all again")
        await pilot.press("escape")

        # The top bar names the product and its version, and fits in 80 columns.
        bar = str(app.query_one("#topbar", Static).content)
        assert "Docker " in bar and len(bar) <= 80, bar


def test_engine_label_keeps_product_version_and_context_and_shortens_the_endpoint() -> None:
    from socktui.model import EngineInfo, Product

    info = EngineInfo(
        endpoint="unix:///tmp/socktui-podman-abcdefgh/podman.sock",
        local=True,
        version="4.3.1",
        product=Product.PODMAN,
        context="prod",
    )
    assert engine_label(info, 80) == "Podman 4.3.1 /tmp/socktui-podman-abcdefgh/podman.sock · context prod"
    short = engine_label(info, 40)
    assert len(short) <= 40 and short.startswith("Podman 4.3.1 …") and short.endswith("podman.sock · context prod")
    assert engine_label(info, 20) == "Podman 4.3.1 · context prod"


def test_the_filter_finds_a_container_by_its_compose_project_alone() -> None:
    """``container_name:`` in a compose file gives names that need not hold the project's: `/` still finds them."""
    from socktui.model import ContainerReport, ContainerSpec
    from socktui.ui.widgets import matches

    labels = (("com.docker.compose.project", "shop"), ("com.docker.compose.service", "web"))
    report = ContainerReport(
        ContainerSpec(id="a" * 64, name="storefront", state="running", image="nginx", labels=labels)
    )
    assert matches(report, "SHOP") and matches(report, "shop/web") and matches(report, "front")
    assert not matches(report, "cart")


class _BusySession:
    """What the App reads from a Session (live=False): a thousand containers' totals on a long endpoint."""

    def __init__(self, endpoint: str, context: str | None = None) -> None:
        from types import SimpleNamespace

        from socktui.model import CheckReport, EngineInfo
        from socktui.session import Options

        self.options = Options()
        self.engine = SimpleNamespace(endpoint=SimpleNamespace(url=endpoint, source="test", local=True))
        info = EngineInfo(endpoint=endpoint, local=True, version="20.10.24+dfsg1", context=context)
        self.report = CheckReport(info, ())

    def full_check(self, cancel: object = None, on_listed: object = None) -> object:
        return self.report

    def snapshot(self) -> object:
        return self.report

    def counts(self) -> tuple[int, int, int, None]:
        return 1000, 2000, 1000, None


@pytest.mark.parametrize("context", [None, "prod"])
async def test_at_80_columns_the_totals_give_way_so_the_top_bar_always_names_the_endpoint(context: str | None) -> None:
    from socktui.live import Counts

    session = _BusySession("unix:///tmp/socktui-dockerd-jm32yb95/docker.sock", context)
    app = SocktuiApp(session, live=False)  # type: ignore[arg-type]
    async with app.run_test(size=(80, 24)) as pilot:
        app.counts = Counts(containers=1000, mounts=2000, problems=1000)
        app.update_topbar(session.report)
        await pilot.pause()
        bar = str(app.query_one("#topbar", Static).content)
        assert len(bar) <= 78, bar
        assert (
            "1000 problems" in bar and "Docker 20.10.24" in bar and bar.split(" · context")[0].endswith("docker.sock")
        )
        assert ("context prod" in bar) is (context == "prod")
    async with SocktuiApp(session, live=False).run_test(size=(200, 24)) as pilot:  # type: ignore[arg-type]
        app = pilot.app  # type: ignore[assignment]
        app.counts = Counts(containers=1000, mounts=2000, problems=1000)
        app.update_topbar(session.report)
        await pilot.pause()
        wide = str(app.query_one("#topbar", Static).content)
        assert "1000 containers" in wide and "2000 sockets" in wide, "with room, every total shows"


async def test_a_filter_that_hides_most_of_a_long_list_rebuilds_it_and_keeps_the_selection() -> None:
    """More than REBUILD_AFTER_REMOVALS rows leaving at once: the list is rebuilt rather than emptied row by row; the
    same rows, the same order, and the cursor still on the container it was on."""
    from socktui.model import ContainerReport, ContainerSpec
    from socktui.ui.widgets import REBUILD_AFTER_REMOVALS, ContainerList

    session = _BusySession("unix:///tmp/fake.sock")
    reports = [
        ContainerReport(ContainerSpec(id=f"{i:064x}", name=f"web-{i:03d}", state="running", image="img"))
        for i in range(REBUILD_AFTER_REMOVALS * 3)
    ]
    async with SocktuiApp(session, live=False).run_test(size=(100, 30)) as pilot:  # type: ignore[arg-type]
        table = pilot.app.query_one(ContainerList)
        table.show(reports)
        await pilot.pause()
        everyone = row_keys(table)
        assert len(everyone) == len(reports)
        table.move_cursor(row=table.get_row_index(reports[27].container.id), animate=False)
        kept = [r for r in reports if r.container.name.endswith("7")]
        table.show(kept)  # most of them leave at once
        await pilot.pause()
        assert row_keys(table) == [k for k in everyone if k in {r.container.id for r in kept}]
        assert table.selected_id == reports[27].container.id
        table.show(reports)
        await pilot.pause()
        assert row_keys(table) == everyone and table.selected_id == reports[27].container.id
