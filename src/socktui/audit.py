"""The audit log: one JSON line per applied or refused fix, so there is always a record of what was touched."""

from __future__ import annotations

import getpass
import json
import os
import time
from pathlib import Path

from .fixes import FixResult


def log_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "socktui" / "actions.log"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry for this uid: still record who
        return f"uid {os.getuid()}"


def record(result: FixResult, *, dry_run: bool = False) -> str | None:
    """Append one line; returns a warning instead of raising when the log cannot be written."""
    plan = result.plan
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "user": _user(),
        "fix": plan.fix.id,
        "target": {
            "container": plan.container.name,
            "container_id": plan.container.id,
            "source": plan.mount.source,
            "destination": plan.mount.destination,
        },
        "steps": [{"op": r.step.op, "target": r.step.target, "ok": r.ok, "message": r.message} for r in result.steps],
        "result": "dry-run" if dry_run else result.status,
        "message": result.message,
    }
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=True) + "\n")
    except OSError as exc:
        return f"could not write the audit log {path}: {exc.strerror}"
    return None
