"""A busybox-only image made with ``docker import``: no registry, no network, one static binary.

Applets are symlinks in /bin; users root(0) and app(1000); groups root, docker(999), app. The same image serves the
tests, bench/ and ``socktui demo``.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Literal

import docker

IMAGE = "socktui-test:latest"
BUSYBOX = Path("/bin/busybox")
INSTALL_BUSYBOX = "apt-get install busybox-static"


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a PT_INTERP header (i.e. needs no dynamic loader)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return False
        is64 = head[4] == 2
        order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
        if is64:
            phoff = int.from_bytes(head[0x20:0x28], order)
            phentsize = int.from_bytes(head[0x36:0x38], order)
            phnum = int.from_bytes(head[0x38:0x3A], order)
        else:
            phoff = int.from_bytes(head[0x1C:0x20], order)
            phentsize = int.from_bytes(head[0x2A:0x2C], order)
            phnum = int.from_bytes(head[0x2C:0x2E], order)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    pt_interp = 3
    return all(int.from_bytes(table[i * phentsize : i * phentsize + 4], order) != pt_interp for i in range(phnum))


def check_busybox(path: Path = BUSYBOX) -> str | None:
    """Return why ``path`` cannot be the image's only binary, or None when it can."""
    if not path.is_file():
        return f"{path} is missing: install the Debian package busybox-static"
    if not is_static_elf(path):
        return f"{path} is dynamically linked: install busybox-static (it replaces busybox)"
    return None


def image_exists(client: docker.APIClient, tag: str) -> bool:
    return bool(client.images(name=tag, quiet=True))


def rootfs_tar(busybox: Path) -> bytes:
    """The image's root filesystem as a tar, built in memory so owners and modes are exact."""
    applets = subprocess.run([str(busybox), "--list"], check=True, capture_output=True, text=True)
    mtime = int(time.time())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "", owner: int = 0) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = kind, mode, mtime
            info.uid = info.gid = owner
            info.linkname = link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        for d in ("bin", "dev", "etc", "proc", "sys", "run", "var", "var/run", "home"):
            add(d, tarfile.DIRTYPE, 0o755)
        add("root", tarfile.DIRTYPE, 0o700)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        add("home/app", tarfile.DIRTYPE, 0o755, owner=1000)
        add("bin/busybox", tarfile.REGTYPE, 0o755, busybox.read_bytes())
        for applet in sorted(set(applets.stdout.split()) - {"busybox"}):
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
        add(
            "etc/passwd",
            tarfile.REGTYPE,
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\ndocker:x:999:\napp:x:1000:\n")
    return buf.getvalue()


def build_image(client: docker.APIClient, tag: str = IMAGE, busybox: Path = BUSYBOX) -> str:
    """Make ``tag`` from a static busybox with ``docker import`` unless it exists; return ``tag``."""
    if image_exists(client, tag):
        return tag
    problem = check_busybox(busybox)
    if problem:
        raise RuntimeError(f"cannot build the image {tag}: {problem}")
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    client.import_image_from_data(
        rootfs_tar(busybox),
        repository=repository,
        tag=version,
        changes=["ENV PATH=/bin", 'CMD ["sh"]'],
    )
    if not image_exists(client, tag):
        raise RuntimeError(f"docker import reported success but {tag} does not exist")
    return tag
