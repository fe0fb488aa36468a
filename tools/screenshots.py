"""Build a real scenario on a private Docker daemon and save screenshots of the app to screenshots/.

One container per verdict, made the way each breaks in real life; the app runs headless against it. SVGs are
always written; PNGs too when ``rsvg-convert`` or ``cairosvg`` is available.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from textual.pilot import Pilot  # noqa: E402

import harness  # noqa: E402
from socktui.session import Options, make_session  # noqa: E402
from socktui.ui.app import SocktuiApp  # noqa: E402
from socktui.ui.screens import FixScreen  # noqa: E402
from socktui.ui.widgets import ContainerList  # noqa: E402

LOOP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]


def build_scenario(engine: harness.Engine, base: Path, servers: harness.SocketServers) -> None:
    factory = harness.ContainerFactory(engine)
    run = factory.run
    # live: server first, then the container
    servers.start(str(base / "api.sock"))
    run(name="api", binds=[f"{base}/api.sock:/run/api.sock"], command=LOOP)
    # shadowed: container first; Docker creates a directory where the socket should be
    run(name="web", binds=[f"{base}/app.sock:/run/app.sock"], command=LOOP)
    # ok: a shared directory holding live sockets
    (base / "shared").mkdir()
    servers.start(str(base / "shared" / "db.sock"))
    servers.start(str(base / "shared" / "cache.sock"))
    run(name="worker", binds=[f"{base}/shared:/shared"], command=LOOP)
    # stale: a server that died without unlinking
    servers.start(str(base / "queue.sock"))
    run(name="consumer", binds=[f"{base}/queue.sock:/run/queue.sock"], command=LOOP)
    servers.servers[-1].kill()
    # detached: the server restarted after the container started
    restarted = servers.start(str(base / "metrics.sock"))
    run(name="exporter", binds=[f"{base}/metrics.sock:/run/metrics.sock"], command=LOOP)
    restarted.stop()
    servers.start(str(base / "metrics.sock"))
    # denied: a non-root container user against a 0600 root socket
    servers.start(str(base / "admin.sock"), mode=0o600)
    run(name="reporter", user="1000:1000", binds=[f"{base}/admin.sock:/run/admin.sock"], command=LOOP)
    # the engine's own socket, as so many containers mount it
    run(name="portainer", binds=[f"{engine.host.removeprefix('unix://')}:/var/run/docker.sock"], command=LOOP)
    # missing: created, not started
    factory.create(name="batch", binds=[f"{base}/batch.sock:/run/batch.sock"], command=LOOP)
    # not-socket: a regular file where a socket is expected
    (base / "notes.sock").write_text("not a socket\n")
    run(name="notes", binds=[f"{base}/notes.sock:/run/notes.sock"], command=LOOP)
    # unstartable: a shadow directory was mounted; now the server has bound, and Docker cannot start it again
    legacy = run(name="legacy", binds=[f"{base}/legacy.sock:/run/legacy.sock"], command=LOOP)
    engine.client.stop(legacy, timeout=0)
    (base / "legacy.sock").rmdir()
    servers.start(str(base / "legacy.sock"))


async def shoot(host: str, out: Path) -> list[Path]:
    app = SocktuiApp(make_session(Options(host=host)), live=False)
    saved = []
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(200):
            await pilot.pause(0.05)
            if app.report is not None:
                break
        await pilot.pause(0.3)
        saved.append(Path(app.save_screenshot("main.svg", str(out))))
        table = app.query_one(ContainerList)
        table.move_cursor(row=1)
        await pilot.pause(0.2)
        saved.append(Path(app.save_screenshot("detail.svg", str(out))))
        await pilot.press("f")
        await pilot.pause(0.2)
        await pilot.press("enter")
        await pilot.pause(0.3)
        saved.append(Path(app.save_screenshot("fix.svg", str(out))))
        await pilot.press("escape", "escape", "question_mark")
        await pilot.pause(0.3)
        saved.append(Path(app.save_screenshot("help.svg", str(out))))
        await pilot.press("escape")
        saved.append(await shoot_live_repair(pilot, app, out))
    return saved


async def shoot_live_repair(pilot: Pilot[SocktuiApp], app: SocktuiApp, out: Path) -> Path:
    """The detached exporter re-attached while it runs: the fix list's LIVE mark, then the finished plan."""
    table = app.query_one(ContainerList)
    exporter = next(c.container.id for c in app.report.containers if c.container.name == "exporter")  # type: ignore[union-attr]
    table.move_cursor(row=table.get_row_index(exporter))
    await pilot.pause(0.2)
    await pilot.press("f")
    await pilot.pause(0.2)
    await pilot.press("enter")
    await pilot.pause(0.2)
    await pilot.press("y")
    screen = app.screen
    for _ in range(200):
        await pilot.pause(0.05)
        if isinstance(screen, FixScreen) and screen.stage == "done":
            break
    await pilot.pause(0.3)
    return Path(app.save_screenshot("live-repair.svg", str(out)))


def to_png(svg: Path) -> Path | None:
    png = svg.with_suffix(".png")
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", "-o", str(png), str(svg)], check=True)
        return png
    try:
        import cairosvg  # type: ignore[import-not-found]
    except ImportError:
        return None
    cairosvg.svg2png(url=str(svg), write_to=str(png))
    return png


def main() -> int:
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="st-shots-"))
    servers = harness.SocketServers()
    try:
        with harness.open_engine() as engine:
            try:
                build_scenario(engine, base, servers)
                os.environ.pop("DOCKER_HOST", None)
                saved = asyncio.run(shoot(engine.host, out))
            finally:
                servers.cleanup()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for svg in saved:
        png = to_png(svg)
        print(f"wrote {svg.relative_to(ROOT)}" + (f" and {png.relative_to(ROOT)}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
