"""Make the README's screenshots from ``socktui demo``'s own scenario, on its own private daemon.

The same world ``sudo make demo`` shows (one container per way a shared socket breaks, made for real), with the
demo's app running headless against it; everything is removed afterwards. SVGs are always written; PNGs too when
``rsvg-convert`` or ``cairosvg`` is available. Needs what the demo needs: root, docker.io, busybox-static.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

from socktui.demo.lab import DemoError, Lab, missing_prerequisites  # noqa: E402
from socktui.demo.state import DemoPaths, demo_root  # noqa: E402
from socktui.ui.demo import DemoApp  # noqa: E402
from socktui.ui.screens import FixScreen  # noqa: E402
from socktui.ui.widgets import ContainerList, MountTable  # noqa: E402

SIZE = (100, 30)


async def _settle(pilot: Any, app: DemoApp) -> None:
    for _ in range(600):
        await pilot.pause(0.05)
        if app.report is not None:
            break
    await pilot.pause(0.5)


async def _select(pilot: Any, app: DemoApp, name: str) -> None:
    table = app.query_one(ContainerList)
    cid = next(c.container.id for c in app.session.snapshot().containers if c.container.name == name)
    table.move_cursor(row=table.get_row_index(cid), animate=False)
    for _ in range(100):
        await pilot.pause(0.05)
        if app.selected_id == cid:
            break
    app.query_one(MountTable).move_cursor(row=app.worst_mount_row(), animate=False)
    await pilot.pause(0.3)


async def shoot(lab: Lab, out: Path) -> list[Path]:
    app = DemoApp(lab, live=False)
    saved = []
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot, app)
        # The first screen a demo shows: the worst problem first (the shadow story), with its plumbing picture.
        saved.append(Path(app.save_screenshot("main.svg", str(out))))
        await _select(pilot, app, "exporter")
        saved.append(Path(app.save_screenshot("detail.svg", str(out))))
        await pilot.press("f")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.5)
        saved.append(Path(app.save_screenshot("fix.svg", str(out))))
        # The detached exporter re-attached while it runs: the finished plan.
        await pilot.press("y")
        screen = app.screen
        for _ in range(400):
            await pilot.pause(0.05)
            if isinstance(screen, FixScreen) and screen.stage == "done":
                break
        await pilot.pause(0.3)
        saved.append(Path(app.save_screenshot("live-repair.svg", str(out))))
        await pilot.press("escape", "escape", "question_mark")
        await pilot.pause(0.5)
        saved.append(Path(app.save_screenshot("help.svg", str(out))))
    return saved


PRESERVE = '<svg xml:space="preserve" '


def keep_spaces(svg: Path) -> None:
    """Textual's SVG spells spaces as no-break spaces at the ends of text runs; without ``xml:space="preserve"``
    rsvg-convert drops them and glues neighbouring runs together ("servercannot bind")."""
    text = svg.read_text(encoding="utf-8")
    if PRESERVE not in text:
        svg.write_text(text.replace("<svg ", PRESERVE, 1), encoding="utf-8")


def to_png(svg: Path) -> Path | None:
    keep_spaces(svg)
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
    problems = missing_prerequisites()
    if problems:
        print("screenshots: they come from the demo, which cannot start:", *problems, sep="\n  - ", file=sys.stderr)
        return 2
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    os.environ.pop("DOCKER_HOST", None)
    lab = Lab(DemoPaths(demo_root()), lambda text: print(f"screenshots: {text}", file=sys.stderr))
    try:
        lab.open()
        saved = asyncio.run(shoot(lab, out))
    except DemoError as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 2
    finally:
        lab.close()
    for svg in saved:
        png = to_png(svg)
        print(f"wrote {svg.relative_to(ROOT)}" + (f" and {png.relative_to(ROOT)}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
