"""The diagnosis core never imports Textual or Rich: ``socktui check`` must stay fast and UI-free."""

from __future__ import annotations

import json
import subprocess
import sys

CORE = [
    "socktui.model",
    "socktui.roles",
    "socktui.permissions",
    "socktui.verdict",
    "socktui.engine",
    "socktui.unixhttp",
    "socktui.observe",
    "socktui.diagnose",
    "socktui.report",
    "socktui.fsview",
    "socktui.probe",
    "socktui.listeners",
    "socktui.fixes",
    "socktui.cli",
    "socktui.session",
    "socktui.sources.dirs",
    "socktui.sources.events",
    "socktui.sources.exits",
    "socktui.sources.reprobe",
    "socktui.audit",
    "socktui.cli.fix",
    "socktui.cli.check",
    "socktui.cli.main",
    "socktui.linux",
    "socktui.explain",
    "socktui.demo.daemon",
    "socktui.demo.image",
    "socktui.demo.servers",
    "socktui.remount",
    "socktui._nsexec",
]

PROGRAM = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
ui = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
print(json.dumps({"ui": ui, "loaded": [n for n in sys.argv[1:] if n in sys.modules]}))
"""


def run_imports(modules: list[str]) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, *modules], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def test_core_modules_import_without_textual_or_rich() -> None:
    result = run_imports(CORE)
    assert result["loaded"] == CORE
    assert result["ui"] == []


def test_the_check_probe_is_able_to_see_a_ui_import() -> None:
    # The same probe on the UI library itself must report it, or the test above proves nothing.
    result = run_imports(["rich.text"])
    assert "rich" in result["ui"]
