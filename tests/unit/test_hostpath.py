"""socktui.hostpath: every resolution rule, on real directories and links (the tests run as root, as socktui does)."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from socktui.fixes import Step, StepKind
from socktui.fixes.act import open_target, remove_aside, still_refused
from socktui.fsview import host_lstat
from socktui.hostpath import MAX_SYMLINKS, HostPath, UntrustedSymlink, resolve
from socktui.model import Kind

NOBODY = 65534


@pytest.fixture
def d() -> Iterator[Path]:
    """A root-owned 0755 directory: links in it are trusted (mkdtemp makes 0700; either is writable by root only)."""
    path = Path(tempfile.mkdtemp(prefix="hp-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def parent_identity(hp: HostPath) -> tuple[int, int]:
    st = os.fstat(hp.parent_fd)
    return st.st_dev, st.st_ino


def identity(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_dev, st.st_ino


# --------------------------------------------------------------------------- plain paths


@pytest.mark.parametrize("keep_ancestors", [False, True])
def test_a_plain_path_gives_its_parent_by_descriptor_and_the_entry(d: Path, keep_ancestors: bool) -> None:
    (d / "a").mkdir()
    (d / "a" / "f").write_text("x")
    with resolve(str(d / "a" / "f"), keep_ancestors=keep_ancestors) as hp:
        assert hp.name == "f" and hp.real == str(d / "a" / "f") and hp.parent == str(d / "a")
        assert parent_identity(hp) == identity(d / "a")
        assert hp.identity == identity(d / "a" / "f") and hp.kind is Kind.FILE
        assert hp.links == ()
        if keep_ancestors:
            parts = str(d / "a").split("/")[1:]
            assert [a.path for a in hp.ancestors] == ["/"] + [
                "/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)
            ]
            assert hp.ancestors[-1].fd == hp.parent_fd
        else:
            assert hp.ancestors == ()


def test_a_missing_final_entry_is_a_result_not_an_error(d: Path) -> None:
    with resolve(str(d / "nothing.sock")) as hp:
        assert hp.stat is None and hp.kind is Kind.MISSING and hp.identity is None
        assert parent_identity(hp) == identity(d)


def test_the_final_symlink_is_not_followed_by_default(d: Path) -> None:
    (d / "target").mkdir()
    (d / "lnk").symlink_to(d / "target")
    with resolve(str(d / "lnk")) as hp:
        assert hp.kind is Kind.SYMLINK and hp.identity == identity(d / "lnk")
    with resolve(str(d / "lnk"), follow_final=True) as hp:
        assert hp.kind is Kind.DIRECTORY and hp.real == str(d / "target") and hp.links == (str(d / "lnk"),)


# --------------------------------------------------------------------------- trusted links


@pytest.mark.parametrize("absolute", [True, False])
def test_a_root_owned_link_in_a_root_only_directory_is_followed(d: Path, absolute: bool) -> None:
    """The /var/run -> /run case: a system link, owned by root, in a directory only root can write."""
    (d / "run").mkdir()
    (d / "run" / "app.sock").write_text("")
    (d / "var").mkdir()
    (d / "var" / "run").symlink_to(d / "run" if absolute else "../run")
    with resolve(str(d / "var" / "run" / "app.sock")) as hp:
        assert hp.real == str(d / "run" / "app.sock")
        assert hp.links == (str(d / "var" / "run"),)
        assert parent_identity(hp) == identity(d / "run")
        assert hp.identity == identity(d / "run" / "app.sock")


def test_the_systems_own_links_resolve() -> None:
    with resolve("/proc/self/status") as hp:
        assert hp.real == f"/proc/{os.getpid()}/status" and hp.kind is Kind.FILE
    if os.path.islink("/var/run"):  # Debian's /var/run -> /run
        with resolve("/var/run/nothing-here.sock") as hp:
            assert hp.real == "/run/nothing-here.sock"


# --------------------------------------------------------------------------- untrusted links


def test_a_link_in_a_directory_others_can_write_is_not_followed(d: Path) -> None:
    """Like /tmp: anyone could have made the link, or swap it between two looks."""
    shared = d / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    (d / "victim").mkdir()
    (shared / "lnk").symlink_to(d / "victim")
    with pytest.raises(UntrustedSymlink) as raised:
        resolve(str(shared / "lnk" / "x"))
    assert raised.value.errno == errno.EPERM
    assert "writable by others" in str(raised.value) and str(shared / "lnk") in str(raised.value)


def test_a_link_in_a_directory_another_user_owns_is_not_followed(d: Path) -> None:
    home = d / "home"
    home.mkdir(mode=0o755)
    os.chown(home, NOBODY, NOBODY)
    (d / "victim").mkdir()
    (home / "lnk").symlink_to(d / "victim")  # root made the link, but the owner of home can replace it at will
    with pytest.raises(UntrustedSymlink) as raised:
        resolve(str(home / "lnk" / "x"))
    assert f"belongs to uid {NOBODY}" in str(raised.value)


def test_a_link_another_user_owns_is_not_followed(d: Path) -> None:
    (d / "victim").mkdir()
    (d / "lnk").symlink_to(d / "victim")
    os.lchown(d / "lnk", NOBODY, NOBODY)
    with pytest.raises(UntrustedSymlink) as raised:
        resolve(str(d / "lnk" / "x"))
    assert f"it belongs to uid {NOBODY}" in str(raised.value)
    # ... and as the final entry it is only looked at, unless asked to follow it.
    with resolve(str(d / "lnk")) as hp:
        assert hp.kind is Kind.SYMLINK
    with pytest.raises(UntrustedSymlink):
        resolve(str(d / "lnk"), follow_final=True)


def test_a_user_directory_on_the_way_is_walked_but_its_links_are_not(d: Path) -> None:
    """Directories another user owns can be walked through (the user's own socket dirs); only links are judged."""
    home = d / "home"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    (home / "proj").mkdir()
    with resolve(str(home / "proj" / "app.sock")) as hp:
        assert parent_identity(hp) == identity(home / "proj") and hp.stat is None


# --------------------------------------------------------------------------- loops, .., missing, not a directory


def test_link_loops_are_eloop(d: Path) -> None:
    (d / "a").symlink_to("b")
    (d / "b").symlink_to("a")
    (d / "self").symlink_to("self")
    for start in ("a", "self"):
        with pytest.raises(OSError) as raised:
            resolve(str(d / start / "x"))
        assert raised.value.errno == errno.ELOOP


def test_more_than_forty_links_is_eloop_and_forty_is_not(d: Path) -> None:
    (d / "end").mkdir()
    (d / "l0").symlink_to("end")
    for i in range(1, MAX_SYMLINKS + 1):
        (d / f"l{i}").symlink_to(f"l{i - 1}")
    with resolve(str(d / f"l{MAX_SYMLINKS - 1}" / "x")) as hp:
        assert hp.real == str(d / "end" / "x") and len(hp.links) == MAX_SYMLINKS
    with pytest.raises(OSError) as raised:
        resolve(str(d / f"l{MAX_SYMLINKS}" / "x"))
    assert raised.value.errno == errno.ELOOP


def test_dot_dot_goes_back_to_the_directory_the_walk_came_from(d: Path) -> None:
    (d / "a" / "b").mkdir(parents=True)
    (d / "a" / "c").write_text("")
    with resolve(str(d / "a" / "b" / ".." / "c")) as hp:
        assert hp.real == str(d / "a" / "c") and hp.kind is Kind.FILE
    with resolve("/../../" + str(d).lstrip("/") + "/a/./c") as hp:  # ".." at / stays at /
        assert hp.real == str(d / "a" / "c")
    with resolve(str(d / "a" / "b" / "..")) as hp:  # names a itself: an entry of d
        assert hp.name == "a" and parent_identity(hp) == identity(d) and hp.kind is Kind.DIRECTORY
    # After a link, ".." is the parent of where the link led (what the kernel does too).
    (d / "lnk").symlink_to(d / "a" / "b")
    with resolve(str(d / "lnk" / ".." / "c")) as hp:
        assert hp.real == str(d / "a" / "c")
    for nothing in ("/", "/..", "/."):
        with pytest.raises(OSError) as raised:
            resolve(nothing)
        assert raised.value.errno == errno.EINVAL


def test_a_missing_directory_on_the_way_is_enoent(d: Path) -> None:
    with pytest.raises(FileNotFoundError):
        resolve(str(d / "nope" / "app.sock"))
    (d / "dangling").symlink_to(d / "gone")
    with pytest.raises(FileNotFoundError):
        resolve(str(d / "dangling" / "app.sock"))


def test_a_non_directory_on_the_way_is_enotdir(d: Path) -> None:
    (d / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        resolve(str(d / "file" / "app.sock"))
    (d / "to-file").symlink_to("file")
    with pytest.raises(NotADirectoryError):
        resolve(str(d / "to-file" / "app.sock"))


def test_relative_paths_and_nul_bytes_are_refused() -> None:
    for bad in ("relative/app.sock", "/a\0b"):
        with pytest.raises(OSError) as raised:
            resolve(bad)
        assert raised.value.errno == errno.EINVAL


# --------------------------------------------------------------------------- long paths


def test_very_long_paths(d: Path) -> None:
    # Deep but within PATH_MAX: resolves, with and without a link on the way.
    deep = d
    while len(str(deep)) < 3800:
        deep = deep / ("x" * 200)
    deep.mkdir(parents=True)
    with resolve(str(deep / "app.sock")) as hp:
        assert hp.real == str(deep / "app.sock") and parent_identity(hp) == identity(deep)
    (d / "lnk").symlink_to(d / ("x" * 200))
    via = str(deep).replace(str(d / ("x" * 200)), str(d / "lnk"), 1)
    with resolve(via + "/app.sock") as hp:
        assert parent_identity(hp) == identity(deep)
    # PATH_MAX bytes or more, or a component longer than NAME_MAX: what lstat says.
    for too_long in ("/" + "a/" * 2048 + "b", str(d / ("n" * 256)), str(d / ("n" * 256) / "x")):
        with pytest.raises(OSError) as raised:
            resolve(too_long)
        assert raised.value.errno == errno.ENAMETOOLONG, too_long


# --------------------------------------------------------------------------- what holding the directory buys


def test_an_ancestor_swapped_for_a_symlink_after_resolving_does_not_redirect_the_act(d: Path) -> None:
    """The attack the module exists for: the act goes to the directory walked into, not to what the name is now."""
    (d / "share" / "proj").mkdir(parents=True)
    (d / "share" / "proj" / "app.sock").mkdir()
    (d / "victim" / "app.sock").mkdir(parents=True)
    with resolve(str(d / "share" / "proj" / "app.sock")) as hp:
        expected = hp.identity
        (d / "share" / "proj").rename(d / "share" / "moved")
        (d / "share" / "proj").symlink_to(d / "victim")
        assert hp.restat() is not None and (hp.restat().st_dev, hp.restat().st_ino) == expected  # type: ignore[union-attr]
        os.rmdir(hp.name, dir_fd=hp.parent_fd)
    assert (d / "victim" / "app.sock").is_dir()  # untouched
    assert not (d / "share" / "moved" / "app.sock").exists()


def test_a_fix_removes_the_socket_it_checked_through_the_held_directory_after_an_ancestor_swap(d: Path) -> None:
    """The same attack against a fix: between its checks and its act the parent is moved away, and a symlink to a
    directory holding another stale socket of the same name takes its place. The act moves and removes the socket it
    checked, through the directory it holds; the other one keeps its name."""
    checked, decoy = d / "share" / "proj" / "app.sock", d / "victim" / "app.sock"
    for path in (checked, decoy):
        path.parent.mkdir(parents=True)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))  # closed without unlink: a stale socket file
    decoy_before = identity(decoy)
    step = Step(StepKind.UNLINK_SOCKET, str(checked), "remove the stale socket", expect=host_lstat(str(checked)))
    target = open_target(step, Kind.SOCKET)
    try:
        (d / "share" / "proj").rename(d / "share" / "moved")
        (d / "share" / "proj").symlink_to(d / "victim")
        remove_aside(target, verify=still_refused)
    finally:
        target.close()
    assert identity(decoy) == decoy_before, "the socket the path names now was removed instead"
    assert list((d / "share" / "moved").iterdir()) == [], "the socket that was checked is still there"
    assert sorted(p.name for p in (d / "share").iterdir()) == ["moved", "proj"], "a private directory was left"


def test_the_quick_path_and_the_walk_agree(d: Path) -> None:
    (d / "a" / "b").mkdir(parents=True)
    for entry in ("b", "missing"):
        path = str(d / "a" / entry)
        with resolve(path) as quick, resolve(path, keep_ancestors=True) as walked:
            assert (quick.real, quick.name, quick.identity, parent_identity(quick)) == (
                walked.real,
                walked.name,
                walked.identity,
                parent_identity(walked),
            )


def test_closing_releases_every_descriptor(d: Path) -> None:
    (d / "a" / "b").mkdir(parents=True)
    (d / "lnk").symlink_to("a")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        resolve(str(d / "lnk" / "b" / "x"), keep_ancestors=True).close()
        resolve(str(d / "a" / "b" / "x")).close()
        with pytest.raises(FileNotFoundError):
            resolve(str(d / "lnk" / "nope" / "x"))
    assert len(os.listdir("/proc/self/fd")) == before
