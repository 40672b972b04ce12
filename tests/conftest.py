"""Shared fixtures. Lab fixtures start real tor processes: they run only inside a loopback-only
network namespace (the test command enters one), and one lab serves the whole test session.

Every test is bounded by pytest-timeout (see pyproject.toml); the hooks below add a backstop,
and ``readline_within`` bounds reading a child's output."""

from __future__ import annotations

import faulthandler
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

#: The control password of the session lab (cookie authentication works too).
LAB_PASSWORD = "lab-control-password"

#: Seconds past a test's timeout after which the backstop dumps every thread and exits.
TIMEOUT_BACKSTOP = 60.0


_stderr_fd = 2


def pytest_configure(config: pytest.Config) -> None:
    """Keep the real stderr for the backstop: during a test, fd 2 is pytest's capture file."""
    global _stderr_fd
    _stderr_fd = os.dup(2)


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    """pytest-timeout's signal method fails a hung test, but only once the main thread runs
    Python again; should it not (stuck in C code, or a teardown that hangs too), faulthandler
    dumps every thread's stack and ends the run. Returning None lets the plugin set its timer."""
    faulthandler.dump_traceback_later(settings.timeout + TIMEOUT_BACKSTOP, exit=True, file=_stderr_fd)


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    faulthandler.cancel_dump_traceback_later()


def readline_within(stream: IO[str] | None, timeout: float, what: str) -> str:
    """One line from a child's pipe, or a test failure naming ``what`` after ``timeout`` s. The
    reader thread is a daemon: it ends when the caller kills the child (its pipe closes)."""
    assert stream is not None, f"{what}: started without a pipe"
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not line:
        pytest.fail(f"{what}: no line within {timeout:g} s")
    return line[0]


@pytest.fixture(scope="session")
def lab():
    """A running private Tor network (TorLab, 12 exits, cookie and password auth) for the session."""
    from yt_study_buddy.testing.network import TorLab

    with TorLab(exits=12, control_password=LAB_PASSWORD) as running:
        yield running


@pytest.fixture(scope="session")
def fake_youtube_server():
    """The fake YouTube on 127.0.0.1:443 (TLS, test CA), reachable through the lab's exits."""
    from yt_study_buddy.testing.fake_youtube import FakeYouTube

    with FakeYouTube() as server:
        yield server


@pytest.fixture
def fake_youtube(fake_youtube_server):
    """The session's fake YouTube with its scripts and request log cleared for each test."""
    fake_youtube_server.reset()
    return fake_youtube_server


#: The DSN of a PostgreSQL server the ledger tests may create schemas in (test.sh sets it).
POSTGRES_ENV = "YTSB_TEST_POSTGRES"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """test.sh's throwaway PostgreSQL cluster; without one the tests skip, except under CI."""
    dsn = os.environ.get(POSTGRES_ENV)
    if not dsn:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{POSTGRES_ENV} is unset under CI: run the tests through test.sh, which starts PostgreSQL")
        pytest.skip(f"no PostgreSQL: {POSTGRES_ENV} is unset (./test.sh starts a throwaway cluster and sets it)")
    return dsn


def with_search_path(dsn: str, schema: str) -> str:
    """``dsn`` with ``schema`` first on its search_path (libpq's options parameter)."""
    return f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_schema(postgres_server: str) -> Iterator[str]:
    """A DSN whose search_path is a fresh, empty schema of its own, dropped after the test."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield with_search_path(postgres_server, name)
    with psycopg.connect(postgres_server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh exit ledger lives: a SQLite file's path, or a PostgreSQL URL (own schema)."""
    if request.param == "sqlite":
        return str(tmp_path / "state" / "exit-ledger.sqlite3")
    location: str = request.getfixturevalue("postgres_schema")
    return location
