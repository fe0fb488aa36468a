"""Fixtures shared by the reliability tests (the engine, containers and sockserver fixtures come from tests/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_support import NonRoot, nonroot_python


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_STATE_HOME for everything here: an applied fix's audit line never lands in the real home."""
    path = tmp_path / "state"
    path.mkdir()
    monkeypatch.setenv("XDG_STATE_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def nonroot() -> NonRoot:
    how = nonroot_python()
    if isinstance(how, str):
        pytest.skip(how)
    return how
