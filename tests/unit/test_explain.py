"""The plumbing picture: each verdict's chain drawn from its report, the broken link marked and labelled.

Pure: hand-built observations go through the real decision (``diagnose.report_for``), then ``explain.picture``.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import plumbing_world as world
from socktui.explain import (
    ASCII,
    PANE_WIDTH,
    UNICODE,
    LineKind,
    LinkState,
    Part,
    charset_for,
    picture,
    plumbing,
    text_explainer,
)
from socktui.model import Listener, MountSpec, Verdict
from socktui.report import to_text


def utc(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


GOLDEN = {
    "live": (
        "server  pid 4242 python3 sockserver.p…",
        "  │ listens on",
        "socket  inode 2187301",
        "host    /run/socktui-demo/srv/api.sock",
        "  │ -v bind, rw",
        "inside  /run/api.sock",
        "  │ same inode",
        "sees    inode 2187301, connects",
    ),
    "ok": (
        "server  pid 4300 python3 server.py",
        "  │ listen in the directory",
        "sockets 2 inside: ipc.sock events.sock",
        "host    /run/socktui-demo/srv/ipc/",
        "  │ -v bind, rw",
        "inside  /ipc/",
        "  │ same directory",
        "sees    directory inode 4600",
    ),
    "shadowed": (
        "server  cannot bind here",
        "  ╳ Docker created this directory at",
        "  ╳ 18:00:01 when web started",
        "socket  none: an empty directory",
        "host    /run/socktui-demo/srv/app.sock",
        "  │ -v bind, rw",
        "inside  /run/app.sock",
        "  │ the same directory",
        "sees    directory inode 2187290",
    ),
    "stale": (
        "server  nobody listens",
        "  ╳ connect() refused: the server died",
        "  ╳ and left its socket behind",
        "socket  inode 2187280, stale",
        "host    /run/…/srv/queue.sock",
        "  │ -v bind, rw",
        "inside  /run/queue.sock",
        "  │ same inode",
        "sees    inode 2187280",
    ),
    "detached": (
        "server  pid 4250 python3 sockserver.p…",
        "  │ listens on",
        "socket  inode 2187295",
        "host    /run/…/srv/metrics.sock",
        "  │ -v bind, rw",
        "inside  /run/metrics.sock",
        "  ╳ still holds inode 2187294, deleted",
        "sees    inode 2187294, deleted",
    ),
    "missing": (
        "server  none bound here",
        "  ╳ starting batch will make Docker",
        "  ╳ create a directory here",
        "socket  none: nothing at the host path",
        "host    /run/…/srv/batch.sock",
        "  │ -v bind, rw",
        "inside  /run/batch.sock",
        "sees    nothing yet: batch is created",
    ),
    "denied": (
        "server  pid 4260 python3 sockserver.p…",
        "  │ listens on",
        "socket  inode 2187310",
        "host    /run/…/srv/admin.sock",
        "  │ -v bind, rw",
        "inside  /run/admin.sock",
        "  ╳ user 1000:1000 may not connect:",
        "  ╳ the socket is 0660 0:999",
        "sees    inode 2187310",
    ),
    "not-socket": (
        "server  cannot bind here",
        "  ╳ bind() fails: a regular file is in",
        "  ╳ the way",
        "socket  none: a regular file, 0644 0:0",
        "host    /run/…/srv/notes.sock",
        "  │ -v bind, rw",
        "inside  /run/notes.sock",
        "  │ the same file",
        "sees    file inode 2187330",
    ),
    "unstartable": (
        "server  pid 4270 python3 sockserver.p…",
        "  │ listens on",
        "socket  inode 2187360",
        "host    /run/…/srv/legacy.sock",
        "  │ -v bind, rw",
        "inside  /run/legacy.sock",
        "  ╳ docker start fails: its own layer",
        "  ╳ has a directory here",
        "sees    nothing yet: legacy is exited",
    ),
    "unknown": (
        "server  listening (process not named)",
        "  │ listens on",
        "socket  inode 2187340",
        "host    /run/…/srv/agent.sock",
        "  │ -v bind, rw",
        "inside  /run/agent.sock",
        "  ? no permission to look into",
        "  ? /proc/1009/root (run socktui as r…",
        "sees    not looked into",
    ),
    "empty-dir": (
        "server  none",
        "  ╳ no server has bound a socket here",
        "sockets none inside",
        "host    /run/socktui-demo/srv/x11/",
        "  │ -v bind, rw",
        "inside  /x11/",
        "  │ same directory",
        "sees    directory inode 4600",
    ),
    "dir-stale": (
        "server  nobody listens on db.sock",
        "  ╳ db.sock: connect() refused, its",
        "  ╳ server died",
        "sockets 2 inside: db.sock cache.sock",
        "host    /run/socktui-demo/srv/shared/",
        "  │ -v bind, rw",
        "inside  /shared/",
        "  │ same directory",
        "sees    directory inode 4600",
    ),
    "stopped-live": (
        "server  pid 4242 python3 sockserver.p…",
        "  │ listens on",
        "socket  inode 2187301",
        "host    /run/socktui-demo/srv/api.sock",
        "  │ -v bind, rw",
        "inside  /run/api.sock",
        "  │ sees it when started",
        "sees    nothing yet: nightly is exited",
    ),
    "remote": (
        "server  not looked at",
        "  ? the engine at tcp://10.0.0.5:2376",
        "  ? is remote",
        "socket  not looked at",
        "host    /run/socktui-demo/srv/api.sock",
        "  │ -v bind, rw",
        "inside  /run/api.sock",
        "sees    not looked into",
    ),
}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_the_picture_of_each_case(name: str) -> None:
    container, mount = world.cases()[name]
    assert tuple(line.text for line in picture(mount, container, clock=utc)) == GOLDEN[name]


def test_the_cases_cover_every_verdict_there_is_today() -> None:
    verdicts = {world.cases()[name][1].verdict for name in world.VERDICT_CASES}
    assert verdicts == set(Verdict)
    assert [world.cases()[name][1].verdict.value for name in world.VERDICT_CASES] == list(world.VERDICT_CASES)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", list(GOLDEN))
def test_exactly_the_unhealthy_ones_carry_a_mark(name: str) -> None:
    container, mount = world.cases()[name]
    assert mount.verdict is not None
    marks = [line for line in picture(mount, container, clock=utc) if line.kind in (LineKind.BROKEN, LineKind.UNKNOWN)]
    if mount.verdict.healthy:
        assert marks == []
    else:
        assert marks, f"{name} is {mount.verdict} but nothing is marked"
        want = LineKind.UNKNOWN if mount.verdict is Verdict.UNKNOWN else LineKind.BROKEN
        assert {line.kind for line in marks} == {want}


@pytest.mark.parametrize("name", list(GOLDEN))
@pytest.mark.parametrize("width", [PANE_WIDTH, 49, 67])
def test_it_fits_the_detail_pane_at_80x24_and_wider(name: str, width: int) -> None:
    # At 80x24 the detail pane shows 10 rows of 38 columns: the verdict line, then the picture.
    container, mount = world.cases()[name]
    lines = picture(mount, container, width=width, clock=utc)
    assert all(len(line.text) <= width for line in lines), [line.text for line in lines if len(line.text) > width]
    assert len(lines) <= 9


@pytest.mark.parametrize("name", list(GOLDEN))
def test_ascii_draws_the_same_picture_with_plain_characters(name: str) -> None:
    container, mount = world.cases()[name]
    fancy = picture(mount, container, clock=utc)
    plain = picture(mount, container, charset=ASCII, clock=utc)
    assert all(line.text.isascii() for line in plain)
    assert [line.kind for line in plain] == [line.kind for line in fancy]
    for a, b in zip(fancy, plain, strict=True):
        expected = a.text.replace("│", "|").replace("╳", "X").replace("…", "...")
        if "…" not in a.text:
            assert b.text == expected


def test_the_broken_link_names_the_inode_the_container_still_holds() -> None:
    container, mount = world.cases()["detached"]
    p = plumbing(mount, container)
    assert p.broken == 3  # inside -> what the container sees
    assert p.links[3].state is LinkState.BROKEN
    assert p.links[3].note == "still holds inode 2187294, deleted"
    assert p.nodes[1].text == "inode 2187295"  # the host's socket, the one the server listens on


def test_a_detached_mount_whose_old_inode_still_exists_says_not_the_hosts() -> None:
    container, mount = world.cases()["detached"]
    assert mount.container is not None and mount.container.stat is not None
    kept = replace(mount, container=replace(mount.container, stat=replace(mount.container.stat, nlink=1)))
    assert plumbing(kept, container).links[3].note == "still holds inode 2187294, not the host's 2187295"


def test_the_shadow_directory_is_dated_with_the_clock_given() -> None:
    container, mount = world.cases()["shadowed"]
    assert mount.shadow_created_by_docker_at is not None
    p = plumbing(mount, container, clock=lambda t: "CLOCK")
    assert p.broken == 0
    assert p.links[0].note == "Docker created this directory at CLOCK when web started"


def test_a_shadow_directory_docker_did_not_date_still_blocks_the_bind() -> None:
    container, mount = world.cases()["shadowed"]
    p = plumbing(replace(mount, shadow_created_by_docker_at=None), container)
    assert p.links[0].note == "bind() fails (EADDRINUSE): a directory is in the way"


def test_mount_kind_says_v_or_mount_or_nothing_when_unknown() -> None:
    container, mount = world.cases()["live"]
    for from_binds, text in ((True, "-v bind, rw"), (False, "--mount bind, rw"), (None, "bind, rw")):
        spec = MountSpec(**{**mount.mount.__dict__, "from_binds": from_binds})
        assert plumbing(replace(mount, mount=spec), container).links[2].note == text
    ro = MountSpec(**{**mount.mount.__dict__, "rw": False})
    assert plumbing(replace(mount, mount=ro), container).links[2].note == "-v bind, ro"


def test_the_server_is_named_with_its_container_when_it_runs_in_one() -> None:
    container, mount = world.cases()["live"]
    inside = replace(mount, listener=Listener(pid=77, command="/usr/sbin/nginx -g daemon off;", container="proxy"))
    assert plumbing(inside, container).nodes[0].text == "pid 77 nginx -g daemon off; in proxy"


def test_a_mount_that_is_not_a_sockets_has_no_picture() -> None:
    container, mount = world.cases()["live"]
    from socktui.model import Role

    assert picture(replace(mount, role=Role.OTHER, verdict=None), container) == ()


def test_an_unknown_future_verdict_still_gets_a_mark_with_its_reason() -> None:
    # A verdict this module does not know by name (say one added later) must not be drawn as healthy.
    container, mount = world.cases()["stopped-live"]
    odd = replace(mount, verdict=Verdict.NOT_SOCKET, reason="Docker refuses to start it: not a directory; more")
    p = plumbing(odd, container)
    assert p.broken == 3
    assert p.links[3].note == "Docker refuses to start it"


@pytest.mark.parametrize(
    ("encoding", "charset"),
    [
        ("utf-8", UNICODE),
        ("UTF8", UNICODE),
        ("ascii", ASCII),
        ("latin-1", ASCII),
        ("ANSI_X3.4-1968", ASCII),
        (None, ASCII),
    ],
)
def test_box_characters_only_for_utf8(encoding: str | None, charset: object) -> None:
    assert charset_for(encoding) is charset


def test_check_explain_puts_each_picture_under_its_mount() -> None:
    text = to_text(world.report(), explain=text_explainer(UNICODE, clock=utc))
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    at = lines.index("  detached   /run/socktui-demo/srv/metrics.sock -> /run/metrics.sock")
    block = lines[at : at + 14]
    assert "               ╳ still holds inode 2187294, deleted" in block
    assert "             host    /run/socktui-demo/srv/metrics.sock" in block  # 67 columns: the whole path fits
    plain = to_text(world.report(), explain=text_explainer(ASCII, clock=utc))
    assert "│" not in plain and "╳" not in plain  # the reasons may hold other characters; the picture does not
    assert "               X still holds inode 2187294, deleted" in plain.splitlines()


odd_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=120)


@settings(max_examples=150, deadline=None)
@given(
    source=odd_text,
    destination=odd_text,
    command=odd_text,
    name=odd_text,
    width=st.integers(min_value=20, max_value=100),
    ascii_only=st.booleans(),
    case=st.sampled_from(sorted(GOLDEN)),
)
def test_any_path_name_or_command_stays_on_its_line_and_within_width(
    source: str, destination: str, command: str, name: str, width: int, ascii_only: bool, case: str
) -> None:
    container, mount = world.cases()[case]
    spec = MountSpec(**{**mount.mount.__dict__, "source": source, "destination": destination})
    odd = replace(mount, mount=spec, listener=Listener(pid=1, command=command, container=name or None))
    lines = picture(
        odd, replace(container, name=name, user=name), width=width, charset=ASCII if ascii_only else UNICODE
    )
    for line in lines:
        assert len(line.text) <= width
        assert line.text.isprintable()
        assert not ascii_only or line.text.isascii()
    assert [line.text.split(" ", 1)[0] for line in lines if line.kind is LineKind.NODE][0] in (
        Part.SERVER.value,
        "servers",
    )
