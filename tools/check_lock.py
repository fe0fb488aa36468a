"""Refuse to install from a lock that lacks a dependency pyproject.toml names: ``make lock`` pins it.

Run with the system python before the virtualenv has anything in it, so standard library only.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return canonical(match.group(1)) if match else ""


def missing(pyproject: Path, lock: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        wanted += extra
    pinned = {requirement_name(line) for line in lock.read_text().splitlines() if "==" in line}
    return sorted({requirement_name(spec) for spec in wanted} - pinned)


def main(argv: list[str]) -> int:
    pyproject, lock = Path(argv[1]), Path(argv[2])
    if not lock.exists():
        print(f"{lock} is missing: run `make lock` and commit it", file=sys.stderr)
        return 1
    absent = missing(pyproject, lock)
    if absent:
        print(
            f"{lock} does not pin {', '.join(absent)} from {pyproject}: run `make lock` and commit it", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
