"""The exit ledger on both of its stores, a real SQLite file and a real PostgreSQL schema (test.sh's
throwaway cluster), with real threads and real processes racing on one ledger. Tests that take
``location`` run on both; those about files (``path``) or about the server are one store's."""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import platformdirs
import pytest

from tests.conftest import readline_within, with_search_path
from yt_study_buddy._exceptions import LedgerAuthError, LedgerError, LedgerSchemaError, LedgerUnavailable
from yt_study_buddy.testing.postgres import PostgresCluster, postgres_bindir, postgres_cluster
from yt_study_buddy.tor import _ledger
from yt_study_buddy.tor._ledger import (
    ABANDONED,
    QUARANTINED,
    ExitLease,
    ExitLedger,
    PostgresDsn,
    parse_ledger_location,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CHILD_TIMEOUT = 60  # seconds; generous, only there so a broken child cannot hang the suite


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A SQLite ledger's file, for the tests about files."""
    return tmp_path / "state" / "exit-ledger.sqlite3"


@pytest.fixture
def location(ledger_backend: str) -> str:
    """A fresh ledger's location on each store: a file's path, or a URL with its own schema."""
    return ledger_backend


@pytest.fixture
def ledger(location: str, clock: FakeClock) -> Iterator[ExitLedger]:
    with ExitLedger(location, cooldown=HOUR, clock=clock) as opened:
        yield opened


def reserve(ledger: ExitLedger, exit_ip: str, label: str = "w") -> ExitLease:
    lease = ledger.try_reserve(exit_ip, holder=ExitLedger.make_holder(label))
    assert lease is not None, f"{exit_ip} should be free"
    return lease


def run_child(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=True,
    )


# -- reserve, release, cooldown, quarantine ---------------------------------------------------


def test_cooldown_runs_from_release_not_from_reservation(ledger: ExitLedger, clock: FakeClock) -> None:
    lease = reserve(ledger, "10.0.0.1")
    assert lease.reserved_at == T0
    clock.advance(timedelta(minutes=30))
    ledger.release(lease, outcome="ok", label="dQw4w9WgXcQ")

    clock.advance(timedelta(minutes=40))  # 70 min after reserving, 40 after the last use
    assert ledger.try_reserve("10.0.0.1", holder="b") is None
    state = ledger.state("10.0.0.1")
    assert state is not None
    assert state.last_used_at == T0 + timedelta(minutes=30)
    assert state.free_at == T0 + timedelta(minutes=90)
    assert state.reserved_by is None

    clock.advance(timedelta(minutes=20))
    assert ledger.try_reserve("10.0.0.1", holder="b") is not None

    [record] = ledger.history()
    assert (record.exit_ip, record.label, record.outcome) == ("10.0.0.1", "dQw4w9WgXcQ", "ok")
    assert (record.reserved_at, record.ended_at, record.lease_id) == (
        T0,
        T0 + timedelta(minutes=30),
        lease.lease_id,
    )


def test_reserved_exit_is_not_given_to_anyone_else(ledger: ExitLedger, clock: FakeClock) -> None:
    lease = reserve(ledger, "10.0.0.1", "first")
    clock.advance(timedelta(minutes=90))  # past the cooldown, within the 2 h lease_ttl
    assert ledger.try_reserve("10.0.0.1", holder=ExitLedger.make_holder("second")) is None
    assert ledger.try_reserve("10.0.0.1", holder=lease.holder) is None
    state = ledger.state("10.0.0.1")
    assert state is not None and state.reserved_by == lease.holder
    assert state.free_at == clock.now + HOUR  # earliest possible: released now, then cooled
    assert reserve(ledger, "10.0.0.2").exit_ip == "10.0.0.2"


def test_quarantine_outlasts_the_cooldown(ledger: ExitLedger, clock: FakeClock) -> None:
    lease = reserve(ledger, "10.0.0.1")
    ledger.release(lease, outcome="blocked", label="dQw4w9WgXcQ")
    ledger.quarantine("10.0.0.1", reason="RequestBlocked")

    clock.advance(2 * HOUR)
    assert ledger.try_reserve("10.0.0.1", holder="b") is None
    state = ledger.state("10.0.0.1")
    assert state is not None and state.quarantined_until == state.free_at == T0 + 6 * HOUR

    ledger.quarantine("10.0.0.1", reason="shorter one", duration=timedelta(minutes=5))
    state = ledger.state("10.0.0.1")
    assert state is not None and state.quarantined_until == T0 + 6 * HOUR  # never shortened

    clock.advance(4 * HOUR)
    assert ledger.try_reserve("10.0.0.1", holder="b") is not None
    outcomes = [(r.outcome, r.detail) for r in ledger.history(exit_ip="10.0.0.1")]
    assert outcomes == [
        (QUARANTINED, "shorter one"),
        (QUARANTINED, "RequestBlocked"),
        ("blocked", None),
    ]


def test_cancel_leaves_no_cooldown_and_no_history(ledger: ExitLedger) -> None:
    lease = reserve(ledger, "10.0.0.1")
    ledger.cancel(lease)
    ledger.cancel(lease)  # harmless in cleanup paths
    again = reserve(ledger, "10.0.0.1")
    assert ledger.history() == []
    with pytest.raises(ValueError, match="already cancelled"):
        ledger.release(lease, outcome="ok")
    ledger.release(again, outcome="ok")
    with pytest.raises(ValueError, match="already released"):
        ledger.release(again, outcome="ok")
    assert len(ledger.history()) == 1


def test_record_use_without_a_lease(ledger: ExitLedger, clock: FakeClock) -> None:
    ledger.record_use("10.0.0.9", "ABCDEF0123", outcome="drifted", label="dQw4w9WgXcQ")
    assert ledger.try_reserve("10.0.0.9", holder="a") is None
    state = ledger.state("10.0.0.9")
    assert state is not None
    assert (state.fingerprint, state.last_used_at, state.free_at) == ("ABCDEF0123", T0, T0 + HOUR)
    [record] = ledger.history(exit_ip="10.0.0.9")
    assert (record.lease_id, record.reserved_at, record.outcome) == (None, None, "drifted")
    clock.advance(HOUR)
    assert ledger.try_reserve("10.0.0.9", holder="a") is not None


def test_unavailable_and_earliest_free_at(ledger: ExitLedger, clock: FakeClock) -> None:
    ledger.record_use("10.0.0.1", outcome="ok")
    ledger.quarantine("10.0.0.2", reason="blocked")
    held = reserve(ledger, "10.0.0.3")
    ledger.release(reserve(ledger, "10.0.0.4"), outcome="ok")
    clock.advance(timedelta(minutes=30))
    ledger.record_use("10.0.0.4", outcome="ok")  # a later use pushes the cooldown on
    ledger.cancel(reserve(ledger, "10.0.0.5"))

    assert [s.exit_ip for s in ledger.unavailable()] == [
        "10.0.0.1",
        "10.0.0.3",
        "10.0.0.4",
        "10.0.0.2",
    ]
    assert ledger.earliest_free_at() == T0 + HOUR
    assert ledger.earliest_free_at(["10.0.0.2", "10.0.0.4", "10.0.0.5"]) == T0 + 90 * timedelta(minutes=1)
    assert ledger.earliest_free_at(["10.0.0.2"]) == T0 + 6 * HOUR
    assert ledger.earliest_free_at(["10.0.0.5", "192.0.2.1"]) is None
    assert ledger.state("192.0.2.1") is None
    ledger.release(held, outcome="ok")


def test_times_are_aware_utc_whatever_the_clock_zone(location: str) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    ledger = ExitLedger(location, cooldown=HOUR, clock=lambda: T0.astimezone(india))
    ledger.record_use("10.0.0.1", outcome="ok")
    [record] = ledger.history()
    assert record.ended_at == T0 and record.ended_at.utcoffset() == timedelta(0)

    naive = ExitLedger(location, cooldown=HOUR, clock=lambda: datetime(2030, 1, 1, 12))
    with pytest.raises(ValueError, match="naive"):
        naive.record_use("10.0.0.1", outcome="ok")


def test_addresses_are_validated_and_normalised(ledger: ExitLedger) -> None:
    lease = reserve(ledger, "2001:DB8:0::1")
    assert lease.exit_ip == "2001:db8::1"
    assert ledger.try_reserve("2001:db8::1", holder="b") is None
    with pytest.raises(ValueError, match="not an IP address"):
        ledger.try_reserve("unknown", holder="b")
    with pytest.raises(ValueError, match="holder"):
        ledger.try_reserve("10.0.0.1", holder=" ")


def test_make_holder_names_host_and_process() -> None:
    first, second = ExitLedger.make_holder("worker-1"), ExitLedger.make_holder("worker-1")
    assert first != second
    assert first.startswith(f"worker-1@{socket.gethostname()}:{os.getpid()}:")
    assert ExitLedger.make_holder().startswith(f"{socket.gethostname()}:{os.getpid()}:")


# -- stale leases -------------------------------------------------------------------------------

RESERVE_AND_DIE = """
import sys
from datetime import datetime, timedelta
from yt_study_buddy.tor._ledger import ExitLedger
location, now, exit_ip = sys.argv[1], datetime.fromisoformat(sys.argv[2]), sys.argv[3]
ledger = ExitLedger(location, cooldown=timedelta(hours=1), clock=lambda: now)
lease = ledger.try_reserve(exit_ip, holder=ExitLedger.make_holder("child"))
print(lease.holder)
"""


def test_lease_of_a_dead_process_is_stale_and_counts_as_used(
    ledger: ExitLedger, location: str, clock: FakeClock
) -> None:
    child_holder = run_child(RESERVE_AND_DIE, location, T0.isoformat(), "10.0.0.1").stdout.strip()
    dead_pid = int(child_holder.rsplit(":", 2)[1])
    assert ledger.state("10.0.0.1") is not None

    clock.advance(timedelta(minutes=10))
    state = ledger.state("10.0.0.1")
    assert state is not None
    assert state.reserved_by is None  # its holder is dead
    assert state.last_used_at == T0  # conservatively: used when reserved
    assert ledger.try_reserve("10.0.0.1", holder="b") is None  # still cooling from T0

    # The same dead pid on another host says nothing about liveness: only lease_ttl applies.
    other_host = f"x@not-{socket.gethostname()}:{dead_pid}:abc"
    assert ledger.try_reserve("10.0.0.2", holder=other_host) is not None
    clock.advance(HOUR)
    assert ledger.try_reserve("10.0.0.2", holder="b") is None

    lease = ledger.try_reserve("10.0.0.1", holder="b")
    assert lease is not None
    [record] = ledger.history(exit_ip="10.0.0.1")
    assert (record.outcome, record.detail, record.reserved_at) == (ABANDONED, child_holder, T0)


def test_lease_older_than_ttl_is_stale_and_late_release_still_counts(
    location: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = ExitLedger(location, cooldown=timedelta(minutes=10), lease_ttl=2 * HOUR, clock=clock)
    slow = reserve(ledger, "10.0.0.1", "slow")  # our own pid: alive
    clock.advance(2 * HOUR - timedelta(seconds=1))
    assert ledger.try_reserve("10.0.0.1", holder="b") is None
    clock.advance(timedelta(seconds=1))
    taken = ledger.try_reserve("10.0.0.1", holder="b")
    assert taken is not None

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="yt_study_buddy.tor._ledger"):
        ledger.release(slow, outcome="ok", label="dQw4w9WgXcQ")
    assert "ended as stale before its release" in caplog.text
    state = ledger.state("10.0.0.1")
    assert state is not None and state.reserved_by == "b" and state.last_used_at == clock.now
    assert [r.outcome for r in ledger.history()] == ["ok", ABANDONED]


# -- concurrency ----------------------------------------------------------------------------


def test_threads_racing_get_each_exit_at_most_once(location: str) -> None:
    ledger = ExitLedger(location, cooldown=timedelta(0))
    ips = [f"10.0.0.{i}" for i in range(1, 6)]
    rounds, workers = 15, 8
    barrier = threading.Barrier(workers, timeout=CHILD_TIMEOUT)
    won: list[list[ExitLease]] = [[] for _ in range(rounds)]
    errors: list[BaseException] = []
    guard = threading.Lock()

    def worker(index: int) -> None:
        holder = ExitLedger.make_holder(f"thread-{index}")
        order = ips[index % 5 :] + ips[: index % 5]
        try:
            for round_ in range(rounds):
                barrier.wait()
                mine = [lease for ip in order if (lease := ledger.try_reserve(ip, holder=holder))]
                with guard:
                    won[round_].extend(mine)
                barrier.wait()
                for lease in mine:
                    ledger.release(lease, outcome="ok")
        except BaseException as exc:  # reported below; a silent thread would pass the test
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(CHILD_TIMEOUT)
    assert not errors
    for leases in won:
        assert Counter(lease.exit_ip for lease in leases) == Counter(ips)
    assert len(ledger.history(limit=1000)) == rounds * len(ips)


RACE_CHILD = """
import json, sys
from datetime import timedelta
from yt_study_buddy.tor._ledger import ExitLedger
location, count = sys.argv[1], int(sys.argv[2])
ledger = ExitLedger(location, cooldown=timedelta(hours=1))
holder = ExitLedger.make_holder("racer")
print("ready", flush=True)
sys.stdin.readline()
won = [ip for ip in (f"10.1.0.{i}" for i in range(count)) if ledger.try_reserve(ip, holder=holder)]
print(json.dumps(won), flush=True)
"""


def test_processes_racing_on_one_ledger_never_share_an_exit(location: str) -> None:
    ExitLedger(location, cooldown=HOUR).close()  # created once, so the racers only race to reserve
    count = 20
    children = [
        subprocess.Popen(
            [sys.executable, "-c", RACE_CHILD, location, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for child in children:
            assert child.stdout is not None and readline_within(child.stdout, CHILD_TIMEOUT, "a racer") == "ready\n"
        for child in children:  # all start together, each walking the same addresses in order
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [json.loads(child.communicate(timeout=CHILD_TIMEOUT)[0]) for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait(CHILD_TIMEOUT)
    assert all(child.returncode == 0 for child in children)
    counts = Counter(ip for won in results for ip in won)
    assert counts == Counter(f"10.1.0.{i}" for i in range(count))  # every exit exactly once


def test_threads_opening_a_new_ledger_at_once_all_get_it(location: str) -> None:
    """The first creates the schema; the others wait for it and check it (never a half one)."""
    barrier = threading.Barrier(6, timeout=CHILD_TIMEOUT)
    errors: list[BaseException] = []

    def open_it() -> None:
        barrier.wait()
        try:
            ExitLedger(location, cooldown=HOUR).record_use("10.0.0.1", outcome="ok")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(CHILD_TIMEOUT)
    assert errors == []
    assert len(ExitLedger(location, cooldown=HOUR).history()) == 6


#: Each store's writer lock, held by another process until its stdin closes.
HOLD_LOCK = {
    "sqlite": """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
""",
    "postgres": """
import psycopg, sys
conn = psycopg.connect(sys.argv[1], connect_timeout=10)
conn.execute("LOCK TABLE exits IN EXCLUSIVE MODE")
print("locked", flush=True)
sys.stdin.read()
""",
}


def test_lock_held_by_another_process_gives_ledger_error_not_a_hang(location: str) -> None:
    ledger = ExitLedger(location, cooldown=HOUR, busy_timeout=0.5)
    ledger.record_use("10.0.0.1", outcome="ok")
    store = "sqlite" if ledger.path is not None else "postgres"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK[store], location],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and readline_within(holder.stdout, CHILD_TIMEOUT, "the holder") == "locked\n"
        # busy_timeout bounds the wait; without it the store would wait for the holder (and
        # the test's timeout would end it).
        with pytest.raises(LedgerError, match="is locked: another process") as raised:
            ledger.try_reserve("10.0.0.2", holder="a")
        assert ledger.location in str(raised.value)
        assert ledger.state("10.0.0.1") is not None  # readers are not blocked (WAL; EXCLUSIVE mode)
    finally:
        holder.communicate(timeout=CHILD_TIMEOUT)  # closes its stdin: it lets go and exits
    assert ledger.try_reserve("10.0.0.2", holder="a") is not None


# -- damaged files and bad locations -------------------------------------------------------------


def test_garbage_file_is_refused_and_left_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    garbage = b"these are my notes, not a database\n" * 100
    path.write_bytes(garbage)
    with pytest.raises(LedgerError, match="is unreadable: .*move it aside"):
        ExitLedger(path, cooldown=HOUR)
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_truncated_database_is_refused_and_left_untouched(path: Path) -> None:
    with ExitLedger(path, cooldown=HOUR) as ledger:
        for i in range(300):
            ledger.record_use(f"10.2.{i // 200}.{i % 200}", outcome="ok", label="dQw4w9WgXcQ")
    whole = path.read_bytes()
    truncated = whole[: len(whole) // 2]
    path.write_bytes(truncated)
    with pytest.raises(LedgerError, match="is unreadable: .*malformed.*move it aside"):
        ExitLedger(path, cooldown=HOUR)
    assert path.read_bytes() == truncated


def test_unknown_schema_version_and_foreign_database_are_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite3"
    ExitLedger(newer, cooldown=HOUR).close()
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(LedgerError, match="unknown schema version 99"):
        ExitLedger(newer, cooldown=HOUR)

    foreign = tmp_path / "foreign.sqlite3"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    before = foreign.read_bytes()
    with pytest.raises(LedgerError, match="not an exit ledger"):
        ExitLedger(foreign, cooldown=HOUR)
    assert foreign.read_bytes() == before


def test_ledger_file_removed_while_open_is_not_silently_recreated(path: Path) -> None:
    ledger = ExitLedger(path, cooldown=HOUR)
    ledger.record_use("10.0.0.1", outcome="ok")
    for leftover in path.parent.iterdir():
        leftover.unlink()
    with pytest.raises(LedgerError, match=str(path)):
        ledger.record_use("10.0.0.1", outcome="ok")
    assert not path.exists()


def test_uncreatable_location_gives_ledger_error(tmp_path: Path) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("a regular file, so nothing can be created under it")
    with pytest.raises(LedgerError, match="cannot create the directory"):
        ExitLedger(a_file / "ledger.sqlite3", cooldown=HOUR)
    with pytest.raises(LedgerError, match="cannot use exit ledger"):
        ExitLedger(tmp_path, cooldown=HOUR)  # a directory where the file should be


def test_parent_directories_are_created_and_default_path_is_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
    default = ExitLedger.default_path()
    assert default == platformdirs.user_state_path("yt-study-buddy") / "exit-ledger.sqlite3"
    if sys.platform.startswith("linux"):
        assert default == tmp_path / "state-home" / "yt-study-buddy" / "exit-ledger.sqlite3"
    with ExitLedger(default, cooldown=HOUR) as ledger:
        assert ledger.path == default
    assert default.is_file()


def test_closed_ledger_refuses_use(ledger: ExitLedger) -> None:
    ledger.close()
    with pytest.raises(ValueError, match="closed"):
        ledger.state("10.0.0.1")


# -- the store's clock ---------------------------------------------------------------------------


def test_times_come_from_the_store_clock_the_servers_for_postgres(
    location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a clock of the caller's, a file takes this machine's and PostgreSQL the server's:
    a client whose clock is 29 years slow still records the server's time."""
    slow = datetime(2001, 1, 1, tzinfo=UTC)
    monkeypatch.setattr(_ledger, "_utc_now", lambda: slow)
    ledger = ExitLedger(location, cooldown=HOUR)
    if ledger.path is not None:
        ledger.record_use("10.0.0.1", outcome="ok")
        assert ledger.history()[0].ended_at == slow
        return
    import psycopg

    def server_now() -> datetime:
        with psycopg.connect(location, connect_timeout=10) as conn:
            row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        moment: datetime = row[0]
        return moment

    before = server_now()
    lease = ledger.try_reserve("10.0.0.1", holder="a")
    assert lease is not None
    ledger.release(lease, outcome="ok")
    after = server_now()
    [record] = ledger.history()
    assert record.reserved_at is not None and before <= record.reserved_at <= record.ended_at <= after
    state = ledger.state("10.0.0.1")
    assert state is not None and state.free_at == record.ended_at + HOUR


# -- PostgreSQL: locations, errors, schemas -----------------------------------------------------------


def test_a_postgres_url_is_postgres_and_anything_else_a_file() -> None:
    dsn = parse_ledger_location("postgresql://ytsb:s3cret@db.example/ledger?password=s3cret")
    assert isinstance(dsn, PostgresDsn)
    assert "s3cret" not in str(dsn) and "s3cret" not in repr(dsn) and "s3cret" not in dsn.redacted
    assert str(dsn) == "postgresql://ytsb:[redacted]@db.example/ledger?password=[redacted]"
    assert isinstance(parse_ledger_location("postgres:///ledger"), PostgresDsn)
    assert parse_ledger_location("ledger.sqlite3") == Path("ledger.sqlite3")
    assert parse_ledger_location("postgresql-notes/ledger.sqlite3") == Path("postgresql-notes/ledger.sqlite3")
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        PostgresDsn("mysql://root:pw@localhost/db")


def test_unreachable_server_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://ytsb:s3cret@/ledger?host={tmp_path}&connect_timeout=2"  # no server listens there
    with pytest.raises(LedgerUnavailable, match=r"^cannot reach exit ledger postgresql://ytsb:\[redacted\]@") as raised:
        ExitLedger(url, cooldown=HOUR)
    message = str(raised.value)
    assert "\n" not in message and "s3cret" not in message
    assert str(tmp_path) in message  # says where it looked


def test_wrong_user_and_wrong_password_are_refused_in_one_line(postgres_server: str) -> None:
    with pytest.raises(LedgerAuthError, match='refused us: .*role "ytsb_nobody" does not exist') as raised:
        ExitLedger(postgres_server.replace("user=postgres", "user=ytsb_nobody"), cooldown=HOUR)
    assert "\n" not in str(raised.value)
    # test.sh's cluster asks this role for a password (scram-sha-256), and there is none right.
    url = postgres_server.replace("postgresql:///", "postgresql://ytsb_password:s3cret@/").replace("&user=postgres", "")
    with pytest.raises(LedgerAuthError, match="refused us") as raised:
        ExitLedger(url, cooldown=HOUR)
    assert "s3cret" not in str(raised.value) and "\n" not in str(raised.value)


def test_a_schema_that_is_not_a_ledger_or_a_newer_one_is_refused_and_left_alone(
    postgres_schema: str, postgres_server: str
) -> None:
    import psycopg

    with psycopg.connect(postgres_schema, autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE history (body TEXT)")
        conn.execute("INSERT INTO history VALUES ('my own history')")
    with pytest.raises(LedgerSchemaError, match="has tables named history but is not an exit ledger"):
        ExitLedger(postgres_schema, cooldown=HOUR)
    with psycopg.connect(postgres_schema, autocommit=True, connect_timeout=10) as conn:
        assert conn.execute("SELECT body FROM history").fetchall() == [("my own history",)]
        conn.execute("DROP TABLE history")

    ExitLedger(postgres_schema, cooldown=HOUR).record_use("10.0.0.1", outcome="ok")
    with psycopg.connect(postgres_schema, autocommit=True, connect_timeout=10) as conn:
        conn.execute("UPDATE ledger_meta SET schema_version = 99")
    with pytest.raises(LedgerSchemaError, match=r"unknown ledger version \(99; this program knows 1\)"):
        ExitLedger(postgres_schema, cooldown=HOUR)

    missing = with_search_path(postgres_server, "no_such_schema")
    with pytest.raises(LedgerSchemaError, match=r"no schema of its search_path \(no_such_schema\) exists"):
        ExitLedger(missing, cooldown=HOUR)


def test_tables_dropped_while_open_are_not_silently_recreated(postgres_schema: str) -> None:
    import psycopg

    ledger = ExitLedger(postgres_schema, cooldown=HOUR)
    ledger.record_use("10.0.0.1", outcome="ok")
    with psycopg.connect(postgres_schema, autocommit=True, connect_timeout=10) as conn:
        conn.execute("DROP TABLE exits, leases, history, ledger_meta")
    with pytest.raises(LedgerSchemaError, match="lost its tables"):
        ledger.record_use("10.0.0.1", outcome="ok")
    with psycopg.connect(postgres_schema, autocommit=True, connect_timeout=10) as conn:
        assert conn.execute("SELECT to_regclass('exits')").fetchone() == (None,)


# -- PostgreSQL restarted under an open ledger --------------------------------------------------------


@pytest.fixture
def own_postgres(postgres_server: str) -> Iterator[PostgresCluster]:
    """Needs what test.sh's cluster needs (its binaries, the postgres user), so it runs where that does."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql")
    with postgres_cluster(bindir) as cluster:
        yield cluster


@pytest.mark.timeout(180)
def test_a_restarted_server_is_reconnected_and_its_downtime_is_one_line(own_postgres: PostgresCluster) -> None:
    ledger = ExitLedger(own_postgres.dsn, cooldown=HOUR)
    lease = ledger.try_reserve("10.0.0.1", holder=ExitLedger.make_holder("w"))
    assert lease is not None
    own_postgres.stop()
    with pytest.raises(LedgerUnavailable, match="^cannot reach exit ledger postgresql:///postgres") as raised:
        ledger.release(lease, outcome="ok")
    assert "\n" not in str(raised.value)
    own_postgres.start()
    ledger.release(lease, outcome="ok")  # the same ledger object, a new connection; the lease survived
    assert ledger.try_reserve("10.0.0.1", holder="b") is None  # cooling from that release
    assert [record.outcome for record in ledger.history()] == ["ok"]
