"""Who the container runs as, and whether that user may connect."""

from __future__ import annotations

import pytest

from socktui.model import Creds, Kind, PathStat
from socktui.permissions import SEARCH, WRITE, can_access, resolve_creds

PASSWD = """\
# a comment line
root:x:0:0:root:/root:/bin/sh

app:x:1000:1000:App:/home/app:/bin/sh
svc:x:1001:1001::/srv:/sbin/nologin
broken:x:notanumber:1:
"""

GROUP = """\
root:x:0:
wheel:x:10:app,svc
docker:x:999:app
app:x:1000:
svc:x:1001:
nogid:x:abc:app
"""


def node(mode: int, uid: int = 0, gid: int = 0, kind: Kind = Kind.SOCKET) -> PathStat:
    return PathStat(path="/run/x", kind=kind, mode=mode, uid=uid, gid=gid)


# can_access -----------------------------------------------------------------------------------------------------------


def test_owner_with_write_bit_may_connect() -> None:
    assert can_access(Creds(1000, 1000), node(0o600, uid=1000), WRITE)


def test_owner_without_write_bit_may_not() -> None:
    assert not can_access(Creds(1000, 1000), node(0o400, uid=1000), WRITE)


def test_owner_class_wins_even_when_group_would_allow() -> None:
    # Unix checks the owner class first and stops there: 0060 denies the owner even if the group may write.
    assert not can_access(Creds(1000, 1000), node(0o060, uid=1000, gid=1000), WRITE)


def test_primary_group_member_may_connect_on_0660() -> None:
    assert can_access(Creds(1000, 999), node(0o660, uid=0, gid=999), WRITE)


def test_group_without_write_bit_may_not() -> None:
    assert not can_access(Creds(1000, 999), node(0o640, uid=0, gid=999), WRITE)


def test_supplementary_group_member_may_connect() -> None:
    assert can_access(Creds(1000, 1000, groups=(10, 999)), node(0o660, uid=0, gid=999), WRITE)


def test_others_need_the_other_bits() -> None:
    assert not can_access(Creds(1000, 1000), node(0o660, uid=0, gid=999), WRITE)
    assert can_access(Creds(1000, 1000), node(0o666, uid=0, gid=999), WRITE)


def test_root_passes_every_check() -> None:
    assert can_access(Creds(0, 0), node(0o000, uid=1234, gid=1234), WRITE)
    assert can_access(Creds(0, 0), node(0o000, kind=Kind.DIRECTORY), SEARCH)


@pytest.mark.parametrize(("mode", "allowed"), [(0o711, True), (0o755, True), (0o700, False), (0o766, False)])
def test_search_permission_on_a_directory(mode: int, allowed: bool) -> None:
    assert can_access(Creds(1000, 1000), node(mode, kind=Kind.DIRECTORY), SEARCH) is allowed


# resolve_creds --------------------------------------------------------------------------------------------------------


def test_empty_user_is_root() -> None:
    creds, note = resolve_creds("", (), PASSWD, GROUP)
    assert creds == Creds(uid=0, gid=0, groups=())
    assert creds.root
    assert note == "uid 0 gid 0"


def test_empty_user_is_root_even_without_passwd() -> None:
    creds, _ = resolve_creds("", (), None, None)
    assert creds == Creds(0, 0)


def test_numeric_uid_takes_gid_and_memberships_from_passwd_and_group() -> None:
    creds, note = resolve_creds("1000", (), PASSWD, GROUP)
    assert creds == Creds(uid=1000, gid=1000, groups=(10, 999))
    assert note == "uid 1000 gid 1000 groups 10,999"


def test_numeric_uid_unknown_to_passwd_gets_gid_0() -> None:
    creds, note = resolve_creds("4321", (), PASSWD, GROUP)
    assert creds == Creds(uid=4321, gid=0)
    assert note == "uid 4321 gid 0"


def test_numeric_uid_without_any_passwd() -> None:
    creds, _ = resolve_creds("1000", (), None, None)
    assert creds == Creds(1000, 0)


def test_uid_and_gid_given_numerically_skip_memberships() -> None:
    creds, note = resolve_creds("1000:1000", (), PASSWD, GROUP)
    assert creds == Creds(uid=1000, gid=1000, groups=())
    assert note == "uid 1000 gid 1000"


def test_uid_and_gid_work_without_passwd_or_group() -> None:
    creds, _ = resolve_creds("1000:1000", (), None, None)
    assert creds == Creds(1000, 1000)


def test_user_name_resolves_through_passwd_with_memberships() -> None:
    creds, note = resolve_creds("app", (), PASSWD, GROUP)
    assert creds == Creds(uid=1000, gid=1000, groups=(10, 999))
    assert "uid 1000 gid 1000" in note


def test_user_and_group_names() -> None:
    creds, note = resolve_creds("app:docker", (), PASSWD, GROUP)
    assert creds == Creds(uid=1000, gid=999, groups=())
    assert note == "uid 1000 gid 999"


def test_unknown_user_name_gives_none_and_a_note() -> None:
    creds, note = resolve_creds("nobody", (), PASSWD, GROUP)
    assert creds is None
    assert "'nobody'" in note
    assert "/etc/passwd" in note


def test_user_name_needs_a_passwd() -> None:
    creds, note = resolve_creds("app", (), None, None)
    assert creds is None
    assert "/etc/passwd" in note


def test_user_with_non_numeric_uid_in_passwd_is_unknown() -> None:
    creds, _ = resolve_creds("broken", (), PASSWD, GROUP)
    assert creds is None


def test_unknown_group_name_gives_none_and_a_note() -> None:
    creds, note = resolve_creds("app:nosuchgroup", (), PASSWD, GROUP)
    assert creds is None
    assert "'nosuchgroup'" in note
    assert "/etc/group" in note


def test_group_add_by_name() -> None:
    creds, note = resolve_creds("svc", ["docker"], PASSWD, GROUP)
    assert creds == Creds(uid=1001, gid=1001, groups=(10, 999))
    assert "groups 10,999" in note


def test_group_add_by_number_needs_no_group_file() -> None:
    creds, _ = resolve_creds("1001:1001", ["4242"], None, None)
    assert creds == Creds(uid=1001, gid=1001, groups=(4242,))


def test_group_add_applies_with_an_explicit_group() -> None:
    creds, _ = resolve_creds("app:app", ["docker"], PASSWD, GROUP)
    assert creds == Creds(uid=1000, gid=1000, groups=(999,))


def test_group_add_of_unknown_name_is_ignored() -> None:
    creds, _ = resolve_creds("svc", ["nosuchgroup"], PASSWD, GROUP)
    assert creds == Creds(uid=1001, gid=1001, groups=(10,))


def test_group_add_of_the_primary_group_is_not_listed_twice() -> None:
    creds, _ = resolve_creds("svc", ["1001", "svc"], PASSWD, GROUP)
    assert creds is not None
    assert creds.gid == 1001
    assert 1001 not in creds.groups


def test_membership_comes_from_the_fourth_field_of_etc_group() -> None:
    # "svc" is listed in wheel only; "app" in wheel and docker; a group with a non-numeric gid is skipped.
    svc, _ = resolve_creds("svc", (), PASSWD, GROUP)
    app, _ = resolve_creds("app", (), PASSWD, GROUP)
    assert svc is not None and app is not None
    assert svc.groups == (10,)
    assert app.groups == (10, 999)


def test_resolved_creds_feed_the_permission_check() -> None:
    docker_sock = node(0o660, uid=0, gid=999)
    plain, _ = resolve_creds("svc", (), PASSWD, GROUP)
    added, _ = resolve_creds("svc", ["docker"], PASSWD, GROUP)
    assert plain is not None and added is not None
    assert not can_access(plain, docker_sock, WRITE)
    assert can_access(added, docker_sock, WRITE)
