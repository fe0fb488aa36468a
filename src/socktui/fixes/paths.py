"""Reaching the object a fix acts on: a descriptor of its host parent and the one entry name inside it."""

from __future__ import annotations

import os
import posixpath

from ..linux import errno_name
from ..model import PathStat
from .base import Refused


def open_parent(path: str) -> tuple[int, str]:
    """A directory fd on the host parent of ``path`` and the entry name to act on inside it."""
    parent, name = posixpath.split(posixpath.normpath(path))
    if not name or name in (".", ".."):
        raise Refused(f"{path!r} does not name an entry that can be removed")
    try:
        return os.open(parent or "/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), name
    except OSError as exc:
        raise Refused(f"cannot open the directory {parent}: {errno_name(exc.errno)}") from exc


def same_object(st: os.stat_result, expect: PathStat | None, path: str, what: str) -> None:
    if expect is None:
        raise Refused(f"{path} was not observed before; diagnose again")
    if (st.st_dev, st.st_ino) != expect.identity:
        raise Refused(
            f"{path} changed since it was diagnosed: it is now inode {st.st_ino} on device {st.st_dev}, "
            f"not the {what} seen before (inode {expect.ino})"
        )
