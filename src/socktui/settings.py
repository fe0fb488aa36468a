"""What socktui remembers between runs (the theme last picked in the palette).

Kept in ``$XDG_CONFIG_HOME/socktui/settings.json`` (default ``~/.config``).

socktui usually runs as root, often with ``sudo -E`` and so with another user's ``HOME``. Written carelessly, a
settings file is a way to make root write where that user points (a symlink at the file or its directory) or to
leave root-owned files in their home. So:

- The directory socktui writes into must belong to the user socktui runs as, and be writable by nobody else. When
  ``XDG_CONFIG_HOME`` (or ``~/.config``) belongs to someone else, as under ``sudo -E``, socktui uses the config
  directory of its own user instead (root's, under sudo): it never creates a file as another user's.
- ``socktui/`` is opened with ``O_NOFOLLOW``; a symlink there is refused, not followed.
- The file is written to a fresh name (``O_CREAT|O_EXCL|O_NOFOLLOW``, 0600) and renamed over ``settings.json``: a
  symlink planted at ``settings.json`` is replaced, its target never opened.
- Reading opens ``settings.json`` ``O_NOFOLLOW|O_NONBLOCK``, insists on a regular file of ours, at most 64 KiB.

Every failure is a sentence for the event log, never an exception: the app works the same without its settings.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import stat
from dataclasses import dataclass

SETTINGS_FILE = "settings.json"
MAX_BYTES = 64 * 1024


class SettingsRefused(Exception):
    """A directory or file socktui will not use; the message says why."""


def _own_home(euid: int) -> str:
    try:
        return pwd.getpwuid(euid).pw_dir
    except KeyError:
        return ""


def _config_base(env: dict[str, str] | os._Environ[str], euid: int) -> str:
    base = env.get("XDG_CONFIG_HOME", "")
    if os.path.isabs(base):
        return base
    home = env.get("HOME") or _own_home(euid)
    return os.path.join(home, ".config") if home else ""


def _owner_of_nearest(path: str) -> int | None:
    """The owner of ``path``, or of its nearest existing ancestor (following links: the user's dotfiles may be)."""
    while True:
        try:
            return os.stat(path).st_uid
        except FileNotFoundError:
            parent = os.path.dirname(path)
            if parent == path:
                return None
            path = parent
        except OSError:
            return None


@dataclass(frozen=True)
class Settings:
    """The settings file in one directory: ``base`` (the config home) / ``socktui`` / ``settings.json``."""

    base: str
    euid: int
    note: str = ""  # why this base and not the one the environment names, when they differ

    @classmethod
    def for_user(cls, env: dict[str, str] | os._Environ[str] | None = None, euid: int | None = None) -> Settings:
        env = os.environ if env is None else env
        euid = os.geteuid() if euid is None else euid
        base = _config_base(env, euid)
        owner = _owner_of_nearest(base) if base else None
        if base and owner is not None and owner != euid:
            own = os.path.join(_own_home(euid), ".config") if _own_home(euid) else ""
            note = f"{base} belongs to uid {owner}, not to uid {euid} that socktui runs as: settings are kept in " + (
                f"{own} instead" if own else "no file"
            )
            return cls(own, euid, note)
        return cls(base, euid)

    @property
    def path(self) -> str:
        return os.path.join(self.base, "socktui", SETTINGS_FILE) if self.base else ""

    # ------------------------------------------------------------------ directories
    def _check_dir(self, fd: int, what: str, others: int) -> None:
        st = os.fstat(fd)
        if st.st_uid != self.euid:
            raise SettingsRefused(f"{what} belongs to uid {st.st_uid}, not {self.euid}")
        if st.st_mode & others:
            raise SettingsRefused(f"{what} is writable by others (mode {stat.S_IMODE(st.st_mode):04o})")

    def _open_dir(self, create: bool) -> int:
        if not self.base:
            raise SettingsRefused("no config directory (neither XDG_CONFIG_HOME nor HOME is set)")
        if create:
            parent = os.path.dirname(self.base)
            if not os.path.isdir(self.base) and _owner_of_nearest(parent) == self.euid:
                os.makedirs(self.base, mode=0o700, exist_ok=True)
        base_fd = os.open(self.base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            # Group-writable is common for a home with a private group (umask 002); only socktui/ must be ours alone.
            self._check_dir(base_fd, self.base, 0o002)
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir("socktui", 0o700, dir_fd=base_fd)
            try:
                fd = os.open("socktui", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=base_fd)
            except OSError as exc:
                if os.path.islink(os.path.join(self.base, "socktui")):
                    raise SettingsRefused(f"{self.base}/socktui is a symlink: not followed") from exc
                raise
        finally:
            os.close(base_fd)
        try:
            self._check_dir(fd, f"{self.base}/socktui", 0o022)
        except BaseException:
            os.close(fd)
            raise
        return fd

    # ------------------------------------------------------------------ reading and writing
    def load(self) -> tuple[dict[str, object], str]:
        """The saved settings (empty when there are none) and a sentence when something was refused."""
        try:
            dir_fd = self._open_dir(create=False)
        except FileNotFoundError:
            return {}, ""
        except (OSError, SettingsRefused) as exc:
            return {}, f"settings not read: {_why(exc)}"
        try:
            fd = os.open(SETTINGS_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            return {}, ""
        except OSError as exc:
            return {}, f"settings not read: {self.path}: {_why(exc)}"
        finally:
            os.close(dir_fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return {}, f"settings not read: {self.path} is not a regular file"
            if st.st_uid != self.euid:
                return {}, f"settings not read: {self.path} belongs to uid {st.st_uid}, not {self.euid}"
            if st.st_size > MAX_BYTES:
                return {}, f"settings not read: {self.path} is larger than {MAX_BYTES} bytes"
            data = os.read(fd, MAX_BYTES + 1)
        finally:
            os.close(fd)
        try:
            value = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return {}, f"settings not read: {self.path} is not valid JSON"
        return (value, "") if isinstance(value, dict) else ({}, f"settings not read: {self.path} is not an object")

    def save(self, **changes: object) -> str:
        """Merge ``changes`` into the file; returns a sentence when it could not, else ""."""
        current, _ = self.load()
        current.update(changes)
        data = (json.dumps(current, indent=2, sort_keys=True) + "\n").encode()
        try:
            dir_fd = self._open_dir(create=True)
        except (OSError, SettingsRefused) as exc:
            return f"settings not saved: {_why(exc)}"
        temp = f".{SETTINGS_FILE}.{secrets.token_hex(6)}"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(temp, flags, 0o600, dir_fd=dir_fd)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            # rename() replaces whatever name is there (a planted symlink included) and never follows it.
            os.rename(temp, SETTINGS_FILE, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=dir_fd)
            return f"settings not saved: {self.path}: {_why(exc)}"
        finally:
            os.close(dir_fd)
        return ""


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename + ': ' if isinstance(exc.filename, str) else ''}{exc.strerror}"
    return str(exc)
