"""Layer-1 tests of the live-repair mechanics that need no daemon: overlay layer resolution on real directories, the
stopped-layer repair and its refusals, the kernel sentences, and the namespace helper's own contract."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from socktui import linux, remount


@pytest.fixture
def layers(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An upper layer and two lower ones, like overlay2's diff directories (upper first)."""
    upper, init, image = tmp_path / "upper", tmp_path / "init", tmp_path / "image"
    for layer in (upper, init, image):
        (layer / "run").mkdir(parents=True)
    return upper, init, image


def resolve(layers: tuple[Path, ...], destination: str) -> remount.LayerEntry:
    return remount.layer_mount_point(str(layers[0]), [str(p) for p in layers[1:]], destination)


def repair(layers: tuple[Path, ...], destination: str) -> str:
    return remount.repair_upper_dir(str(layers[0]), [str(p) for p in layers[1:]], destination)


def whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


# --------------------------------------------------------------------------- resolving through layers


def test_an_empty_directory_in_the_upper_layer_is_found_there(layers: tuple[Path, Path, Path]) -> None:
    (layers[0] / "run" / "app.sock").mkdir()
    entry = resolve(layers, "/run/app.sock")
    assert (entry.path, entry.layer, stat.S_ISDIR(entry.mode), entry.empty, entry.in_lower) == (
        "/run/app.sock",
        0,
        True,
        True,
        False,
    )


def test_a_symlink_in_a_lower_layer_is_followed_like_runc(layers: tuple[Path, Path, Path]) -> None:
    upper, _, image = layers
    (image / "var").mkdir()
    (image / "var" / "run").symlink_to("../run")
    (upper / "run" / "app.sock").mkdir()
    entry = resolve(layers, "/var/run/app.sock")
    assert (entry.path, entry.layer) == ("/run/app.sock", 0)


def test_an_absolute_symlink_stays_inside_the_layers(layers: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """An absolute link resolves against the container's root, never the host's (the host has /etc)."""
    upper, _, image = layers
    (image / "srv").symlink_to("/run")
    (upper / "run" / "app.sock").mkdir()
    assert resolve(layers, "/srv/app.sock").path == "/run/app.sock"
    (image / "escape").symlink_to("/../../../../etc")
    assert resolve(layers, "/escape/passwd").layer is None


def test_the_final_component_is_never_followed(layers: tuple[Path, Path, Path]) -> None:
    upper = layers[0]
    (upper / "run" / "elsewhere").mkdir()
    (upper / "run" / "app.sock").symlink_to("elsewhere")
    entry = resolve(layers, "/run/app.sock")
    assert stat.S_ISLNK(entry.mode)
    with pytest.raises(remount.RepairRefused, match="symlink"):
        repair(layers, "/run/app.sock")
    assert (upper / "run" / "elsewhere").is_dir() and (upper / "run" / "app.sock").is_symlink()


def test_a_directory_from_the_image_is_seen_as_such(layers: tuple[Path, Path, Path]) -> None:
    (layers[2] / "run" / "app.sock").mkdir()
    entry = resolve(layers, "/run/app.sock")
    assert (entry.layer, entry.in_lower) == (2, True)
    (layers[0] / "run" / "app.sock").mkdir()  # copied up: the upper has it, and so does the image
    assert resolve(layers, "/run/app.sock").in_lower


def test_a_whiteout_hides_what_the_image_has(layers: tuple[Path, Path, Path]) -> None:
    upper, _, image = layers
    (image / "run" / "app.sock").mkdir()
    whiteout(upper / "run" / "app.sock")
    assert resolve(layers, "/run/app.sock").layer is None


def test_an_opaque_directory_hides_the_layers_below_it(layers: tuple[Path, Path, Path]) -> None:
    upper, _, image = layers
    (image / "run" / "app.sock").mkdir()
    os.setxattr(upper / "run", remount.OVERLAY_OPAQUE, b"y")
    (upper / "run" / "app.sock").mkdir()
    entry = resolve(layers, "/run/app.sock")
    assert (entry.layer, entry.in_lower) == (0, False)


# --------------------------------------------------------------------------- repairing a stopped container's layer


def test_repair_replaces_the_empty_directory_by_an_empty_file(layers: tuple[Path, Path, Path]) -> None:
    point = layers[0] / "run" / "app.sock"
    point.mkdir()
    (layers[0] / "kept").write_text("the container's file")
    message = repair(layers, "/run/app.sock")
    st = point.lstat()
    assert stat.S_ISREG(st.st_mode) and st.st_size == 0
    assert (layers[0] / "kept").read_text() == "the container's file"
    assert "/run/app.sock" in message


@pytest.mark.parametrize(
    ("prepare", "refusal"),
    [
        (lambda up, img: (up / "run" / "app.sock").mkdir() or (up / "run" / "app.sock" / "x").touch(), "not empty"),
        (lambda up, img: (img / "run" / "app.sock").mkdir(), "comes from the image"),
        (lambda up, img: (up / "run" / "app.sock").touch(), "already a regular file"),
        (lambda up, img: None, "nothing at"),
    ],
    ids=["non-empty", "from-the-image", "already-a-file", "nothing-there"],
)
def test_repair_refusals_change_nothing(layers: tuple[Path, Path, Path], prepare: object, refusal: str) -> None:
    upper, _, image = layers
    assert callable(prepare)
    prepare(upper, image)
    before = sorted((str(p.relative_to(upper)), p.lstat().st_ino) for p in upper.rglob("*"))
    with pytest.raises(remount.RepairRefused, match=refusal):
        repair(layers, "/run/app.sock")
    assert sorted((str(p.relative_to(upper)), p.lstat().st_ino) for p in upper.rglob("*")) == before


def test_a_mounted_overlay_means_running(tmp_path: Path) -> None:
    upper = "/var/lib/docker/overlay2/abc/diff"
    info = tmp_path / "mountinfo"
    info.write_text(
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
        f"77 52 0:40 / /merged rw,relatime - overlay overlay rw,lowerdir=/l/A:/l/B,upperdir={upper},workdir=/w\n"
    )
    assert remount.overlay_in_use(upper, str(info))
    assert not remount.overlay_in_use("/var/lib/docker/overlay2/abcd/diff", str(info))
    assert not remount.overlay_in_use(upper, str(tmp_path / "missing"))


# --------------------------------------------------------------------------- the kernel


def test_kernel_sentences_name_the_missing_feature(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_syscall(*args: object) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(linux, "open_tree", no_syscall)
    sentence = remount.kernel_support()
    assert sentence is not None and "open_tree" in sentence and "Linux 5.2" in sentence

    def refused(*args: object) -> int:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(linux, "open_tree", refused)
    sentence = remount.kernel_support()
    assert sentence is not None and "CAP_SYS_ADMIN" in sentence and "rootless" in sentence


def test_kernel_sentences_name_the_linux_version_each_call_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_syscall(*args: object) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(linux, "move_mount", no_syscall)
    sentence = remount.kernel_support()
    assert sentence is not None and "move_mount" in sentence and "Linux 5.2" in sentence
    monkeypatch.undo()
    monkeypatch.setattr(linux, "openat2", no_syscall)
    sentence = remount.kernel_support()
    assert sentence is not None and "openat2" in sentence and "Linux 5.6" in sentence


# --------------------------------------------------------------------------- the namespace helper


HELPER_IMPORTS = """
import sys
before = set(sys.modules)
import socktui._nsexec
print(" ".join(sorted(m for m in set(sys.modules) - before if m.split(".")[0] not in sys.stdlib_module_names)))
"""


def test_the_helper_imports_only_the_standard_library_and_socktui_linux() -> None:
    done = subprocess.run([sys.executable, "-I", "-c", HELPER_IMPORTS], capture_output=True, text=True, check=True)
    assert set(done.stdout.split()) == {"socktui", "socktui.linux", "socktui._nsexec"}


def helper(request: dict[str, object], fds: tuple[int, ...] = ()) -> dict[str, object]:
    done = subprocess.run(
        remount.helper_argv(),
        input=json.dumps(request),
        capture_output=True,
        text=True,
        pass_fds=fds,
        timeout=30,
        check=True,
    )
    reply: dict[str, object] = json.loads(done.stdout)
    return reply


def test_the_helper_refuses_a_descriptor_that_is_not_a_mount_namespace(tmp_path: Path) -> None:
    """setns on a plain file fails before anything is touched: a refusal, with the kernel's errno."""
    not_ns = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        reply = helper(
            {
                "op": "reattach",
                "ns": not_ns,
                "root": not_ns,
                "tree": not_ns,
                "destination": "/run/app.sock",
                "expect": [0, 0],
                "want": [0, 0],
            },
            (not_ns,),
        )
    finally:
        os.close(not_ns)
    assert reply["status"] == "refused"
    assert "EINVAL" in str(reply["message"])


def test_the_helper_runs_from_the_running_copy_of_socktui_even_without_an_install(tmp_path: Path) -> None:
    """-I ignores PYTHONPATH, so a source tree run that way must still find its own helper."""
    env = {"PATH": os.defpath, "PYTHONPATH": str(Path(remount.__file__).parent.parent)}
    program = (
        "from socktui import remount; import subprocess, sys; "
        "sys.exit(subprocess.run(remount.helper_argv(), input='{}', text=True, capture_output=True).returncode)"
    )
    done = subprocess.run(["/usr/bin/python3", "-c", program], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_helper_refuses_an_unknown_request() -> None:
    reply = helper({"op": "format-disk"})
    assert reply["status"] == "refused" and "bad request" in str(reply["message"])
