from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import (
    ENV_REQUIRE_ENGINE,
    ContainerFactory,
    Engine,
    SocketServers,
    engine_from_env,
    open_engine,
    open_podman,
    podman_from_env,
    short_dir,
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With SOCKTUI_REQUIRE_ENGINE=1 (CI) a skipped test fails the run: a skip there proves nothing."""
    if os.environ.get(ENV_REQUIRE_ENGINE) != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and reporter is not None:
        names = ", ".join(sorted({report.nodeid for report in skipped}))
        reporter.write_line(f"{ENV_REQUIRE_ENGINE}=1: {len(skipped)} test(s) skipped, which fails the run: {names}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def audit_log_follows_xdg_state_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `sudo make test` the audit log would go to root's own state directory whatever XDG_STATE_HOME says
    (socktui.audit): the tests that point XDG_STATE_HOME at a temporary directory must not depend on that."""
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.delenv("SOCKTUI_AUDIT_LOG", raising=False)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    """A Docker engine with the test image: SOCKTUI_TEST_DOCKER_HOST, or a private dockerd for the session.

    Skips when neither is possible, unless SOCKTUI_REQUIRE_ENGINE=1 (CI), where a silent skip
    would hide that the engine tests never ran.
    """
    choice = engine_from_env()
    if not choice.available:
        if os.environ.get(ENV_REQUIRE_ENGINE) == "1":
            pytest.fail(f"{ENV_REQUIRE_ENGINE}=1 but {choice.reason}", pytrace=False)
        pytest.skip(choice.reason)
    with open_engine(choice) as eng:
        yield eng


@pytest.fixture(scope="session")
def engine(docker_engine: Engine) -> Engine:
    """The Docker engine; a test module may override this name to run its tests on Podman too."""
    return docker_engine


@pytest.fixture(scope="session")
def podman_engine() -> Iterator[Engine]:
    """A private rootful ``podman system service`` with the test image, for the session (started on first use).

    Skips only where the Docker engine would (not root, no podman), and never with SOCKTUI_REQUIRE_ENGINE=1.
    """
    choice = podman_from_env()
    if not choice.available:
        if os.environ.get(ENV_REQUIRE_ENGINE) == "1":
            pytest.fail(f"{ENV_REQUIRE_ENGINE}=1 but {choice.reason}", pytrace=False)
        pytest.skip(choice.reason)
    with open_podman() as eng:
        yield eng


@pytest.fixture
def containers(engine: Engine) -> Iterator[ContainerFactory]:
    factory = ContainerFactory(engine)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def sockserver() -> Iterator[SocketServers]:
    servers = SocketServers()
    try:
        yield servers
    finally:
        servers.cleanup()


@pytest.fixture
def d() -> Iterator[Path]:
    """A fresh short directory (mode 0755) per test: socket paths under it fit in sun_path, uid 65534 can reach it."""
    with short_dir() as path:
        yield path
