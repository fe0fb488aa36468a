"""The settings file cannot be turned against the user socktui runs as (root, often under sudo -E).

Every test runs as whoever runs the suite (root in CI); "another user" is uid 65534, made the owner with chown.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from socktui import settings as settings_module
from socktui.settings import SETTINGS_FILE, Settings

OTHER = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


def store(base: Path) -> Settings:
    return Settings.for_user(env={"XDG_CONFIG_HOME": str(base)})


def test_saved_and_read_back_private(tmp_path: Path) -> None:
    s = store(tmp_path / "config")
    assert s.load() == ({}, "")
    assert s.save(theme="nord") == ""
    assert s.load() == ({"theme": "nord"}, "")
    assert s.save(other=1) == ""
    assert s.load()[0] == {"theme": "nord", "other": 1}
    path = tmp_path / "config" / "socktui" / SETTINGS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [SETTINGS_FILE]  # no temporary file left behind


def test_a_symlink_at_the_file_is_replaced_never_followed(tmp_path: Path) -> None:
    s = store(tmp_path)
    (tmp_path / "socktui").mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "socktui" / SETTINGS_FILE
    link.symlink_to(victim)

    settings, problem = s.load()
    assert settings == {} and "settings not read" in problem  # O_NOFOLLOW: ELOOP, not the victim's bytes
    assert s.save(theme="nord") == ""
    assert victim.read_text() == "precious\n"
    assert not link.is_symlink() and json.loads(link.read_text()) == {"theme": "nord"}


def test_a_symlinked_socktui_directory_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "socktui").symlink_to(elsewhere)
    s = store(tmp_path / "base")
    problem = s.save(theme="nord")
    assert "symlink" in problem, problem
    assert list(elsewhere.iterdir()) == []
    assert "symlink" in s.load()[1]


def test_a_fifo_or_a_huge_file_is_not_read_and_nothing_blocks(tmp_path: Path) -> None:
    s = store(tmp_path)
    (tmp_path / "socktui").mkdir(mode=0o700)
    target = tmp_path / "socktui" / SETTINGS_FILE
    os.mkfifo(target)
    result: list[tuple[dict[str, object], str]] = []
    reader = threading.Thread(target=lambda: result.append(s.load()), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert result, "reading a FIFO blocked"
    assert result[0][0] == {} and "not a regular file" in result[0][1]
    target.unlink()
    target.write_bytes(b"{" + b" " * (settings_module.MAX_BYTES + 1) + b"}")
    assert "larger than" in s.load()[1]
    target.write_text("not json")
    assert "not valid JSON" in s.load()[1]


@needs_root
def test_a_socktui_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    (tmp_path / "socktui").mkdir(mode=0o700)
    os.chown(tmp_path / "socktui", OTHER, OTHER)
    s = store(tmp_path)
    assert f"belongs to uid {OTHER}" in s.save(theme="nord")
    assert list((tmp_path / "socktui").iterdir()) == []


@needs_root
def test_a_settings_file_of_another_user_is_not_read(tmp_path: Path) -> None:
    s = store(tmp_path)
    assert s.save(theme="nord") == ""
    os.chown(tmp_path / "socktui" / SETTINGS_FILE, OTHER, OTHER)
    assert s.load() == ({}, f"settings not read: {s.path} belongs to uid {OTHER}, not {os.geteuid()}")


@needs_root
def test_under_sudo_the_users_config_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # sudo -E keeps the user's HOME and XDG_CONFIG_HOME: root must not write there (a root-owned file in their
    # home, or one written where their symlink points), but in its own config directory.
    home = tmp_path / "alice"
    (home / ".config").mkdir(parents=True)
    for path in (home, home / ".config"):
        os.chown(path, OTHER, OTHER)
    root_home = tmp_path / "root"
    root_home.mkdir()
    monkeypatch.setattr(settings_module, "_own_home", lambda euid: str(root_home))

    for env in ({"HOME": str(home)}, {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}):
        s = Settings.for_user(env=env, euid=0)
        assert s.base == str(root_home / ".config")
        assert f"belongs to uid {OTHER}" in s.note
        assert s.save(theme="nord") == ""
    assert list((home / ".config").iterdir()) == []
    assert json.loads((root_home / ".config" / "socktui" / SETTINGS_FILE).read_text()) == {"theme": "nord"}


def test_no_home_at_all_is_a_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module, "_own_home", lambda euid: "")
    s = Settings.for_user(env={})
    assert s.load() == ({}, "settings not read: no config directory (neither XDG_CONFIG_HOME nor HOME is set)")
    assert "no config directory" in s.save(theme="nord")
