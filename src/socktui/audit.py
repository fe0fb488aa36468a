"""The audit log: one JSON line per applied or refused fix, so there is always a record of what was touched.

socktui runs as root, often under ``sudo -E``, where ``XDG_STATE_HOME`` and ``HOME`` still name the invoking user's
directories. A log written by root where another user controls the path could be turned against root (a symlink
at the log's path makes root append to any file; a FIFO makes it hang after a fix). So:

- where: ``$SOCKTUI_AUDIT_LOG`` if set (a file path, for whoever wants it elsewhere); else, under ``sudo`` (euid 0
  with ``SUDO_USER`` set), root's own state directory (``~root/.local/state/socktui/actions.log``), whatever the
  environment says; else ``$XDG_STATE_HOME/socktui/actions.log`` (default ``~/.local/state/…``);
- the directories are reached with :func:`socktui.hostpath.resolve` (no symlink a user controls is followed) and
  missing ones are made ``0700``; the log's own directory must be a real directory owned by socktui's user and
  writable by nobody else;
- the log must be a regular file owned by socktui's user with one link, checked (``fstatat``, no follow) *before*
  it is opened, so a FIFO or a device is never opened; it is opened ``O_NOFOLLOW|O_NONBLOCK|O_APPEND|O_CLOEXEC``
  (``0600`` when created) and checked again through the descriptor;
- anything else is refused with a sentence (returned as a warning); the fix itself is unaffected;
- every string in an entry is JSON-escaped (``ensure_ascii``, and DEL too), so ``cat`` of the log shows no control
  character from a path or a container's name.

``record`` does a handful of non-blocking system calls; the TUI still calls it from a worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import json
import os
import pwd
import stat
import time
from pathlib import Path

from .fixes import FixResult
from .hostpath import UntrustedSymlink, kind_of_mode, resolve, writable_by_others
from .linux import errno_name

ENV_AUDIT_LOG = "SOCKTUI_AUDIT_LOG"
LOG_NAME = "actions.log"


class AuditRefused(Exception):
    """The log (or its directory) is not one root may safely write: the sentence says why."""


def _root_state_home() -> str:
    try:
        home = pwd.getpwuid(0).pw_dir or "/root"
    except KeyError:
        home = "/root"
    return os.path.join(home, ".local", "state")


def log_path() -> Path:
    """Where the log goes (see the module docstring for the order)."""
    named = os.environ.get(ENV_AUDIT_LOG)
    if named:
        return Path(os.path.abspath(named))
    if os.geteuid() == 0 and os.environ.get("SUDO_USER"):
        state = _root_state_home()  # sudo -E keeps the user's HOME and XDG_STATE_HOME: not root's to write
    else:
        state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(os.path.abspath(state)) / "socktui" / LOG_NAME


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry for this uid: still record who
        return f"uid {os.getuid()}"


def entry_line(result: FixResult, *, dry_run: bool = False) -> str:
    """One line of the log: JSON, pure ASCII, no control character at all (DEL included)."""
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
    return json.dumps(entry, ensure_ascii=True).replace("\x7f", "\\u007f") + "\n"


def _open_dir(path: str) -> int:
    """An ``O_PATH`` descriptor of directory ``path``, made (0700) with any missing parents, never through a link
    someone else controls."""
    try:
        hp = resolve(path)
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if parent == path:
            raise
        os.close(_open_dir(parent))
        hp = resolve(path)
    except UntrustedSymlink as exc:
        raise AuditRefused(f"{exc.strerror}") from exc
    with hp:
        if hp.stat is None:
            with contextlib.suppress(FileExistsError):
                os.mkdir(hp.name, 0o700, dir_fd=hp.parent_fd)
        try:
            return os.open(hp.name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=hp.parent_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                now = hp.restat()
                what = "nothing" if now is None else kind_of_mode(now.st_mode).words
                raise AuditRefused(f"{path} is {what}, not a directory") from exc
            raise


def _check_owned(st: os.stat_result, what: str) -> None:
    if st.st_uid != os.geteuid():
        raise AuditRefused(f"{what} belongs to uid {st.st_uid}, not to socktui's user (uid {os.geteuid()})")


def append(path: Path, line: str) -> None:
    """Append ``line`` to the log at ``path`` under the rules above; raise ``AuditRefused`` or ``OSError``."""
    directory, name = str(path.parent), path.name
    dir_fd = _open_dir(directory)
    try:
        dir_st = os.fstat(dir_fd)
        _check_owned(dir_st, f"its directory {directory}")
        if writable_by_others(dir_st):
            raise AuditRefused(
                f"its directory {directory} is writable by others (mode {stat.S_IMODE(dir_st.st_mode):04o})"
            )
        try:
            before: os.stat_result | None = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            before = None
        if before is not None:
            if not stat.S_ISREG(before.st_mode):
                raise AuditRefused(f"{path} is {kind_of_mode(before.st_mode).words}, not a regular file")
            _check_owned(before, str(path))
            if before.st_nlink != 1:
                raise AuditRefused(f"{path} has {before.st_nlink} hard links")
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise AuditRefused(f"{path} is {kind_of_mode(st.st_mode).words}, not a regular file")
            _check_owned(st, str(path))
            if before is not None and (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
                raise AuditRefused(f"{path} was replaced while being opened")
            data = line.encode("ascii")
            while data:
                written = os.write(fd, data)
                data = data[written:]
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def record(result: FixResult, *, dry_run: bool = False) -> str | None:
    """Append one line; returns a warning instead of raising when the log cannot (or may not) be written."""
    path = log_path()
    try:
        append(path, entry_line(result, dry_run=dry_run))
    except AuditRefused as exc:
        return f"could not write the audit log {path}: refused, {exc} (the fix itself is unaffected)"
    except OSError as exc:
        return f"could not write the audit log {path}: {exc.strerror or errno_name(exc.errno)}"
    return None
